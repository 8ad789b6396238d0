//! One type-content connection: decode → call [`ChatService`] → let the hub deliver.
//!
//! Handlers are thin on purpose. Each one turns a decoded [`Request`] into exactly one
//! service call (plus, where this dialect's chat naming needs it, a read-only lookup
//! to turn a chat name into a room), and words a refusal as `{"error": …}`. Who may
//! post, read or delete is decided by core; what is stored and who hears of it too.
//!
//! The sender gets its own `new_message` (and `message_read`, `delete_message`) as
//! every other member does, after the commit: the legacy backend pushed those to the
//! whole chat group, sender included, and had no separate acknowledgement, so neither
//! do we. The sending connection's `new_message` is rendered from the command's result
//! (its hub copy dropped), because sends are pipelined and it must keep its place among
//! the answers; the sender's other connections hear it from the hub. Besides that, the only frames a handler writes directly are errors and the echo
//! of a read or delete that changed nothing (nothing is published then, yet the client
//! still deserves an answer).
//!
//! A refused frame never closes the connection and never changes stored state: decoding
//! happens before any service call, and core checks before it commits.

use crate::decode::{decode, Chat, Request};
use crate::encode;
use crate::error::describe;
use crate::wire::PresenceNames;
use chat_core::model::{Attachment, RoomKind, SharedRoom};
use chat_core::{
    ChatError, ChatService, ConnCtx, Outgoing, Principal, Published, QueuedMessage, RoomId,
    RoomRef, SendMessage, Session,
};
use std::sync::Arc;

/// The state of one connection: who it is. Nothing else lives here; typing, presence
/// and read state are core's.
pub struct TypeContentSession {
    principal: Principal,
    /// The presence names this connection used last (its presence pushes use them).
    presence_names: PresenceNames,
}

impl TypeContentSession {
    pub fn new(principal: Principal) -> Self {
        TypeContentSession {
            principal,
            presence_names: PresenceNames::default(),
        }
    }

    async fn handle(&self, cx: &mut ConnCtx, req: Request) -> Result<(), ChatError> {
        let svc = cx.service.clone();
        let me = &self.principal;
        let origin = Some(cx.origin(crate::NAME, None));
        match req {
            Request::Send {
                chat,
                text,
                reply_to,
            } => {
                let queued = self.queue_send(&svc, chat, text, reply_to, origin).await?;
                svc.complete_send(queued).await?;
            }
            Request::Typing { chat } => {
                let room = self.address(&svc, chat).await?;
                svc.typing(me, &room).await?;
            }
            Request::Read { chat, message } => {
                let room = self.existing(&svc, chat).await?;
                let out = svc
                    .mark_read(me, &RoomRef::Id(room.id()), Some(message), origin)
                    .await?;
                // Already read past it: core publishes nothing, so answer this connection.
                if !out.moved {
                    cx.send(encode::read_frame(&out.room, me.id(), message));
                }
            }
            Request::Delete { chat, message } => {
                let room = self.existing(&svc, chat).await?;
                let (room, deleted) = svc
                    .delete_messages(me, &[message], Some(room.id()), origin)
                    .await?;
                // Deleted before: core publishes nothing, so answer this connection.
                if deleted.is_empty() {
                    cx.send(encode::delete_frame(&room, message));
                }
            }
            Request::Presence { online, .. } => svc.set_presence(me, online).await?,
        }
        Ok(())
    }

    /// `new_message` up to its commit (see [`ChatService::queue_message`]).
    async fn queue_send(
        &self,
        svc: &ChatService,
        chat: Chat,
        text: String,
        reply_to: Option<chat_core::MessageId>,
        origin: Option<chat_core::Origin>,
    ) -> Result<QueuedMessage, ChatError> {
        let room = self.address(svc, chat).await?;
        let cmd = SendMessage {
            reply_to,
            ..SendMessage::text(room, text)
        };
        svc.queue_message(&self.principal, cmd, origin).await
    }

    /// The room reference for commands that may start a chat (`new_message`,
    /// `user_typing`): a direct chat is created by core on first use.
    async fn address(&self, svc: &ChatService, chat: Chat) -> Result<RoomRef, ChatError> {
        match chat {
            Chat::Group(id) => Ok(RoomRef::Id(self.group(svc, id).await?.id())),
            other => Ok(other.room_ref()),
        }
    }

    /// An existing room, for commands about messages in it (`message_read`,
    /// `delete_message`). Unlike [`Self::address`], a direct chat that was never used
    /// is not created: there is no message in it to read or delete, so it is "not found"
    /// and nothing is stored.
    async fn existing(&self, svc: &ChatService, chat: Chat) -> Result<SharedRoom, ChatError> {
        match chat {
            Chat::Direct { low, high } => {
                svc.find_room(&self.principal, &RoomRef::DirectPair(low, high))
                    .await
            }
            Chat::Project(id) => {
                svc.resolve_room(&self.principal, &RoomRef::Project(id))
                    .await
            }
            Chat::Group(id) => self.group(svc, id).await,
        }
    }

    /// A group room by id. `chat_type: "group"` must name a group room, so that a
    /// chat is always called the same way on the way in and on the way out.
    async fn group(&self, svc: &ChatService, id: RoomId) -> Result<SharedRoom, ChatError> {
        let room = svc.room(&self.principal, id).await.map_err(|e| match e {
            ChatError::NotFound { .. } => ChatError::not_found("group chat"),
            other => other,
        })?;
        match room.room.kind {
            RoomKind::Group => Ok(room),
            _ => Err(ChatError::not_found("group chat")),
        }
    }
}

#[async_trait::async_trait]
impl Session for TypeContentSession {
    async fn on_open(&mut self, cx: &mut ConnCtx) {
        cx.sign_in(self.principal.clone()).await;
    }

    async fn on_text(&mut self, cx: &mut ConnCtx, text: &str) {
        let req = match decode(text) {
            Ok(req) => req,
            Err(e) => {
                cx.count_outcome(chat_core::meter::UNDECODABLE, "invalid");
                cx.send(encode::error_frame(e.to_string()));
                return;
            }
        };
        let event = req.event();
        if let Request::Send {
            chat,
            text,
            reply_to,
        } = req
        {
            // Pipelined. This connection's `new_message` is rendered from the result
            // rather than heard from the hub (its echo is dropped in `on_event`), so it
            // keeps its place among the answers to the commands around it.
            let svc = cx.service.clone();
            let meter = cx.meter.clone();
            let origin = Some(cx.origin(crate::NAME, None));
            let queued = self.queue_send(&svc, chat, text, reply_to, origin).await;
            cx.defer(async move {
                let result = match queued {
                    Ok(queued) => svc.complete_send(queued).await,
                    Err(e) => Err(e),
                };
                if let Some(m) = &meter {
                    m.command_result(event, &result);
                }
                let frames = match result {
                    Ok((room, message)) => {
                        let created = chat_core::Event::MessageCreated { room, message };
                        encode::render(&created, &|a| svc.file_url(a))
                    }
                    Err(e) => vec![encode::error_frame(describe(event, &e))],
                };
                frames.into_iter().map(Outgoing::Text).collect()
            });
            return;
        }
        if let Request::Presence { names, .. } = req {
            self.presence_names = names;
        }
        // Anything else sees what the messages before it did.
        cx.settle().await;
        let result = self.handle(cx, req).await;
        cx.count_command(event, &result);
        if let Err(e) = result {
            cx.send(encode::error_frame(describe(event, &e)));
        }
    }

    async fn on_oversize(&mut self, cx: &mut ConnCtx, size: usize) {
        cx.send(encode::error_frame(format!(
            "the frame is too large ({size} bytes) and was dropped; send a shorter message"
        )));
    }

    async fn on_binary(&mut self, cx: &mut ConnCtx, _bytes: &[u8]) {
        cx.send(encode::error_frame(
            "binary frames are not supported; send JSON text frames {\"type\": \"<event>\", \"content\": {...}}",
        ));
    }

    async fn on_event(&mut self, cx: &mut ConnCtx, published: &Arc<Published>) {
        let svc = cx.service.clone();
        let file_url = |a: &Attachment| svc.file_url(a);
        match &published.event {
            // Answered from the command's result (see `on_text`).
            chat_core::Event::MessageCreated { .. } if published.is_from(cx.conn) => {}
            // Presence in the prose names, for a connection that speaks them.
            chat_core::Event::Presence { user, online }
                if self.presence_names == PresenceNames::User =>
            {
                cx.send(encode::presence_frame(
                    user.id,
                    *online,
                    PresenceNames::User,
                ));
            }
            // Several deletions at once (other dialects) become several frames; too
            // rare to be worth caching.
            chat_core::Event::MessagesDeleted { ids, .. } if ids.len() > 1 => {
                for frame in encode::render(&published.event, &file_url) {
                    cx.send(frame);
                }
            }
            event => {
                // One frame or none, the same for every type-content recipient: render
                // once per event. An empty rendering (no word for it) is cached too.
                let frame = published.rendered(*crate::SLOT, || {
                    encode::render(event, &file_url)
                        .into_iter()
                        .next()
                        .unwrap_or_default()
                });
                if !frame.is_empty() {
                    cx.send_shared(frame);
                }
            }
        }
    }

    async fn on_close(&mut self, cx: &mut ConnCtx) {
        cx.sign_out().await;
    }
}
