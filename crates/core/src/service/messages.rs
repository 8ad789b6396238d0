//! Messages: send, edit, delete, history.
//!
//! Invariant: a message event is published only after its row committed, to the
//! members of the room the author was authorized against. Mechanism: each command
//! checks sizes and policy, commits through the store, then publishes the committed
//! row (in a cluster: the event written with the row comes back through the broker
//! before the command returns). Consequence: an acknowledged message is durable and
//! every member's event names the same id; history pages stay within
//! [`super::Caps::page_bytes`], so no reply grows with the room.

use super::rooms::RoomRef;
use super::uploads::Upload;
use super::{check_limit, named_ids, ChatService};
use crate::auth::Principal;
use crate::cluster::Local;
use crate::error::ChatError;
use crate::event::{Event, Origin, Published};
use crate::ids::{AttachmentId, MessageId, RoomId, UserId};
use crate::model::*;
use crate::policy;
use crate::store::{Committing, NewMessage, StoreResult};
use crate::Result;
use std::sync::Arc;

/// A message to send ([`ChatService::send_message`]).
#[derive(Clone, Debug)]
pub struct SendMessage {
    pub room: RoomRef,
    pub text: String,
    pub kind: MessageKind,
    pub reply_to: Option<MessageId>,
    /// Files to store and attach.
    pub uploads: Vec<Upload>,
    /// Files uploaded before (`POST /api/files`) to attach.
    pub attachments: Vec<AttachmentId>,
}

impl SendMessage {
    /// Whether a connection may pipeline it ([`crate::ConnCtx::defer`]): a message
    /// without files, whose commit goes through the store's ordered queue. One with
    /// files commits as it is queued, so it must not overtake the messages before it.
    pub fn pipelines(&self) -> bool {
        self.uploads.is_empty() && self.attachments.is_empty()
    }

    pub fn text(room: RoomRef, text: impl Into<String>) -> Self {
        SendMessage {
            room,
            text: text.into(),
            kind: MessageKind::Text,
            reply_to: None,
            uploads: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// A message placed in its room's commit order and not yet published
/// ([`ChatService::queue_message`]).
pub struct QueuedMessage {
    room: SharedRoom,
    author: User,
    origin: Option<Origin>,
    committing: Committing,
    started: std::time::Instant,
}

impl ChatService {
    fn message_view(
        &self,
        room: &RoomView,
        message: Message,
        author: Option<&User>,
    ) -> MessageView {
        let author = author
            .cloned()
            .or_else(|| room.member(message.author_id).cloned())
            .unwrap_or_else(|| User::placeholder(message.author_id));
        MessageView {
            is_read: room.is_read(message.author_id, message.id),
            message,
            author,
        }
    }

    /// Views of messages of a room, with authors who may have left the room.
    pub(super) async fn message_views(
        &self,
        room: &RoomView,
        messages: Vec<Message>,
    ) -> Result<Vec<MessageView>> {
        let mut missing: Vec<UserId> = messages
            .iter()
            .map(|m| m.author_id)
            .filter(|a| !room.is_member(*a))
            .collect();
        missing.sort();
        missing.dedup();
        let former = if missing.is_empty() {
            Vec::new()
        } else {
            self.store.users(&missing).await?
        };
        Ok(messages
            .into_iter()
            .map(|m| {
                let author = former.iter().find(|u| u.id == m.author_id);
                self.message_view(room, m, author)
            })
            .collect())
    }

    /// The view of one message of a room (see [`Self::message_views`]).
    pub(super) async fn one_message_view(
        &self,
        room: &RoomView,
        message: Message,
    ) -> Result<MessageView> {
        let mut views = self.message_views(room, vec![message]).await?;
        views
            .pop()
            .ok_or_else(|| ChatError::Storage("a message without its view".into()))
    }

    /// Send a message. Returns after the message is committed, then publishes it to
    /// every member of the room.
    pub async fn send_message(
        &self,
        actor: &Principal,
        cmd: SendMessage,
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Arc<MessageView>)> {
        let queued = self.queue_message(actor, cmd, origin).await?;
        self.complete_send(queued).await
    }

    /// [`ChatService::send_message`] up to the commit: checks the message, then places
    /// it in its room's commit order and returns without waiting for the commit, so a
    /// connection may admit its next command meanwhile (see
    /// [`crate::ConnCtx::defer`]). Messages queued one after the other by one caller
    /// commit in that order. [`ChatService::complete_send`] finishes it.
    pub async fn queue_message(
        &self,
        actor: &Principal,
        cmd: SendMessage,
        origin: Option<Origin>,
    ) -> Result<QueuedMessage> {
        self.throttle(actor)?;
        self.check_text_size(&cmd.text)?;
        if cmd.text.trim().is_empty() && cmd.uploads.is_empty() && cmd.attachments.is_empty() {
            return Err(ChatError::invalid("text", "a message needs text or files"));
        }
        for u in &cmd.uploads {
            self.check_file_size(u)?;
        }
        let room = self.resolve_room(actor, &cmd.room).await?;
        policy::can_post(actor, &room)?;
        if let Some(reply_to) = cmd.reply_to {
            match self.store.message(reply_to).await? {
                Some(m) if m.room_id == room.id() => {}
                _ => {
                    return Err(ChatError::invalid(
                        "reply_to",
                        format!("message {reply_to} is not a message of this chat"),
                    ))
                }
            }
        }
        let mut attachments = Vec::with_capacity(cmd.attachments.len() + cmd.uploads.len());
        for id in &cmd.attachments {
            match self.store.attachment(*id).await? {
                Some(a) if a.uploader_id == actor.id() && a.message_id.is_none() => {
                    attachments.push(a.id)
                }
                _ => {
                    return Err(ChatError::invalid(
                        "media",
                        format!("attachment {id} is not an unused upload of yours"),
                    ))
                }
            }
        }
        for u in cmd.uploads {
            attachments.push(self.store_upload(actor, u).await?.id);
        }
        let started = std::time::Instant::now();
        let committing = self
            .store
            .queue_message(NewMessage {
                room_id: room.id(),
                author_id: actor.id(),
                kind: cmd.kind,
                text: cmd.text,
                reply_to: cmd.reply_to,
                attachments,
                note: self
                    .broker
                    .get()
                    .map(|b| b.message_note(room.id(), origin.as_ref())),
            })
            .await?;
        Ok(QueuedMessage {
            room,
            author: actor.user.clone(),
            origin,
            committing,
            started,
        })
    }

    /// Wait for a queued message's commit, then publish it to every member of its
    /// room; the room and the message's view, as [`ChatService::send_message`].
    pub async fn complete_send(
        &self,
        queued: QueuedMessage,
    ) -> Result<(SharedRoom, Arc<MessageView>)> {
        let QueuedMessage {
            room,
            author,
            origin,
            committing,
            started,
        } = queued;
        let committed = committing.await?;
        let message = committed.message;
        self.meter.commit_latency.observe(started.elapsed());
        let from = origin.as_ref().map_or(crate::meter::HTTP, |o| o.dialect);
        self.meter
            .dialect(from)
            .messages_committed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.typing.clear(room.id(), author.id);
        let view = Arc::new(self.message_view(&room, message, Some(&author)));
        let event = Event::MessageCreated {
            room: room.clone(),
            message: view.clone(),
        };
        match self.broker.get() {
            // Its event was written with it: wait for it to come back.
            Some(broker) => {
                let local = Local {
                    recipients: room.member_ids(),
                    event: Arc::new(Published::new(event, origin)),
                };
                broker
                    .message_committed(view.message.id, committed.note_at, local)
                    .await;
            }
            None => self.publish_to_members(event, origin).await,
        }
        Ok((room, view))
    }

    /// The room of a message, if the actor may view it.
    async fn viewable_room(&self, actor: &Principal, room: RoomId) -> Result<SharedRoom> {
        let view = self.room_by_id(room).await?;
        policy::can_view(actor, &view)?;
        Ok(view)
    }

    pub(super) async fn message_in(&self, id: MessageId, room: Option<RoomId>) -> Result<Message> {
        match self.store.message(id).await? {
            Some(m) if room.is_none_or(|r| r == m.room_id) => Ok(m),
            _ => Err(ChatError::not_found("message")),
        }
    }

    /// A message text within `--max-message-bytes` and [`ServiceConfig::max_text_chars`]
    /// (bytes first: counting characters is then bounded too).
    fn check_text_size(&self, text: &str) -> Result<()> {
        check_limit("message", text.len(), self.config.caps.text_bytes)?;
        check_limit("text", text.chars().count(), self.config.max_text_chars)
    }

    /// Edit a message's text (author only). `room`: the room the caller is in, when the
    /// dialect has that notion; a message of another room is then not found.
    pub async fn edit_message(
        &self,
        actor: &Principal,
        id: MessageId,
        text: &str,
        room: Option<RoomId>,
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Arc<MessageView>)> {
        self.throttle(actor)?;
        if text.trim().is_empty() {
            return Err(ChatError::invalid("text", "the new text must not be empty"));
        }
        self.check_text_size(text)?;
        let msg = self.message_in(id, room).await?;
        let view = self.viewable_room(actor, msg.room_id).await?;
        policy::can_edit(actor, &view, &msg)?;
        let edited = self.store.edit_message(id, text).await?;
        let mv = Arc::new(self.one_message_view(&view, edited).await?);
        self.publish_to_members(
            Event::MessageEdited {
                room: view.clone(),
                message: mv.clone(),
            },
            origin,
        )
        .await;
        Ok((view, mv))
    }

    /// Delete messages (tombstones). All must be in one room (`room` when given) and
    /// deletable by the actor, or nothing is deleted. Returns the ids newly deleted.
    pub async fn delete_messages(
        &self,
        actor: &Principal,
        ids: &[MessageId],
        room: Option<RoomId>,
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Vec<MessageId>)> {
        self.throttle(actor)?;
        let ids = &named_ids(
            "messages",
            "message id",
            ids,
            self.config.caps.ids_per_request,
        )?[..];
        let mut room_id = room;
        let mut msgs = Vec::with_capacity(ids.len());
        for id in ids {
            let m = self.message_in(*id, room_id).await?;
            room_id = Some(m.room_id);
            msgs.push(m);
        }
        let room_id = room_id.expect("at least one message");
        let view = self.viewable_room(actor, room_id).await?;
        for m in &msgs {
            policy::can_delete(actor, &view, m)?;
        }
        let stored = self.store.delete_messages(room_id, ids).await?;
        // Report in the order the caller named them (each once: `ids` has no repeats).
        let deleted: Vec<MessageId> = ids
            .iter()
            .copied()
            .filter(|id| stored.contains(id))
            .collect();
        let by = actor.id();
        let event = |room, ids| Event::MessagesDeleted { room, ids, by };
        Ok(self
            .publish_changed(view, deleted, None, event, origin)
            .await)
    }

    /// History, newest first, below `before`.
    pub async fn history(
        &self,
        actor: &Principal,
        room: &RoomRef,
        before: Option<MessageId>,
        limit: i64,
    ) -> Result<(SharedRoom, Vec<MessageView>)> {
        self.read_page(actor, room, |id| {
            self.store.history(id, before, limit.clamp(1, 500))
        })
        .await
    }

    /// Messages created in a time window, oldest first.
    pub async fn messages_between(
        &self,
        actor: &Principal,
        room: &RoomRef,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: i64,
    ) -> Result<(SharedRoom, Vec<MessageView>)> {
        self.read_page(actor, room, |id| {
            self.store
                .messages_between(id, from, to, limit.clamp(1, 5000))
        })
        .await
    }

    /// The step of every read of a room's messages: the room as the actor may view
    /// it, then the messages `read` gives for its id, cut to a reply page (the first
    /// of them within [`super::Caps::page_bytes`]) and shown as views of the room.
    async fn read_page<F>(
        &self,
        actor: &Principal,
        room: &RoomRef,
        read: impl FnOnce(RoomId) -> F,
    ) -> Result<(SharedRoom, Vec<MessageView>)>
    where
        F: std::future::Future<Output = StoreResult<Vec<Message>>>,
    {
        self.throttle(actor)?;
        let view = self.resolve_room(actor, room).await?;
        let messages = cut_page(read(view.id()).await?, self.config.caps.page_bytes);
        let views = self.message_views(&view, messages).await?;
        Ok((view, views))
    }
}

/// The first messages of `page` whose texts fit in `max_bytes` (at least one).
pub(super) fn cut_page(mut page: Vec<Message>, max_bytes: usize) -> Vec<Message> {
    let mut total = 0usize;
    let keep = page
        .iter()
        .position(|m| {
            total += m.text.len();
            total > max_bytes
        })
        .unwrap_or(page.len())
        .max(1);
    page.truncate(keep);
    page
}
