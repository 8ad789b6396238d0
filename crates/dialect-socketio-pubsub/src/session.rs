//! The connect decision and the per-socket session of socketio-pubsub.
//!
//! **Connecting.** The token travels in the handshake (`auth.token`; `?token=` and
//! `Authorization` work too). As the original server did, a socket with a missing or
//! bad token is accepted only to be told `auth-failed` and disconnected.
//!
//! **Replies** go through the ack of each request. A failure is `{error, message,
//! event}` in the ack, or an `error` event when the client passed no ack.
//!
//! **Waiting.** `wait-for-user {user}` means "I have my conversation with `user`
//! open". The peer is told `user-join {user: me}` (through core's attention event,
//! on every connection they have), and `user-leave` when I stop waiting or my last
//! waiting socket closes. If the peer is already waiting for me, I am told
//! `user-join {user: peer}` at once, so both sides know they are both looking. A
//! registry shared by the dialect's sockets counts waiting sockets per pair, so a
//! second tab does not announce twice and closing one of two does not announce a
//! leave.

use crate::media;
use crate::wire::{self, *};
use async_trait::async_trait;
use chat_core::unread::UnreadTracker;
use chat_core::{
    ChatError, ChatService, Event, MessageId, Principal, Published, RoomKind, RoomRef, RoomView,
    User, UserId,
};
use serde_json::{json, Value};
use socketio_common::error::{chat_err, decode, json_of, Reply};
use socketio_common::{Handshake, Opening, Request, SioCtx, SioDialect, SioSession, WireError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The dialect's name, as used on the command line and in event origins.
pub const NAME: &str = "socketio-pubsub";

/// The events a client may send.
pub const EVENTS: &[&str] = &[
    "fetch-users",
    "fetch-conversation-with-user",
    "fetch-chats-with-user",
    "fetch-unread-chats-count",
    "read-chat",
    "send-message",
    "wait-for-user",
    "stop-waiting-for-user",
];

/// Most users `fetch-users` lists (the first ones by id). The old server listed every
/// user of its database; this bound keeps one ack within a few hundred KiB.
pub const USERS_LIMIT: i64 = 10_000;
/// Most chats `fetch-conversation-with-user` returns (the most recent ones).
pub const CONVERSATION_LIMIT: usize = 5000;

/// Sockets waiting, per (waiter, peer).
type Waiting = Arc<Mutex<HashMap<(UserId, UserId), usize>>>;

/// The dialect: decides at connect time; holds the registry of waiting sockets.
#[derive(Default)]
pub struct PubsubDialect {
    waiting: Waiting,
}

#[async_trait]
impl SioDialect for PubsubDialect {
    type Session = PubsubSession;

    fn name(&self) -> &'static str {
        NAME
    }

    async fn open(&self, service: &Arc<ChatService>, hs: &Handshake) -> Opening<PubsubSession> {
        let failed = |message: String| Opening::Reject {
            events: vec![("auth-failed".to_string(), json!({ "message": message }))],
        };
        let Some(token) = hs.token() else {
            return failed("no token was given; connect with auth: {token: \"<JWT>\"}".to_string());
        };
        match service.authenticate(&token).await {
            Ok(p) => Opening::Accept {
                session: PubsubSession {
                    waiting: self.waiting.clone(),
                    waits_for: Vec::new(),
                    unread: UnreadTracker::new(),
                },
                principal: Some(Box::new(p)),
            },
            Err(ChatError::Unauthenticated(why)) => failed(why.to_string()),
            Err(e) => failed(e.to_string()),
        }
    }
}

/// One socket.
pub struct PubsubSession {
    waiting: Waiting,
    /// Peers this socket waits for (each at most once).
    waits_for: Vec<UserId>,
    /// The `unread-chats-count` pushed after each message, kept running.
    unread: UnreadTracker,
}

/// The user with this username; not the caller.
async fn peer(cx: &SioCtx, event: &str, username: &str, me: &Principal) -> Result<User, WireError> {
    let username = username.trim();
    if username.is_empty() {
        return Err(WireError::invalid(event, "user must be a username"));
    }
    let user = cx
        .service()
        .user_by_username(username)
        .await
        .map_err(chat_err(event))?
        .ok_or_else(|| WireError::new("not_found", event, format!("no user `{username}`")))?;
    if user.id == me.id() {
        return Err(WireError::invalid(
            event,
            "user must be another user: a conversation has two people",
        ));
    }
    Ok(user)
}

impl PubsubSession {
    async fn fetch_users(&mut self, cx: &SioCtx, event: &str) -> Reply {
        cx.caller(event)?;
        let service = cx.service();
        let users = service
            .list_users(USERS_LIMIT)
            .await
            .map_err(chat_err(event))?;
        // Every user, the caller included, as the old server listed them.
        Ok(json_of(&UsersReply {
            users: users
                .iter()
                .map(|u| UserOut::new(u, service.is_online(u.id)))
                .collect(),
        }))
    }

    async fn conversation(&mut self, cx: &SioCtx, event: &str, payload: &Value) -> Reply {
        let me = cx.caller(event)?;
        let req: WithUser = decode(event, payload)?;
        let peer = peer(cx, event, &req.user, &me).await?;
        let service = cx.service();
        if peer.id == me.id() {
            return Err(WireError::invalid(event, "user must be another user"));
        }
        // Looking at a conversation does not start one: find the room, never create it.
        let room = match service.find_room(&me, &RoomRef::DirectWith(peer.id)).await {
            Ok(room) => room,
            Err(ChatError::NotFound { .. }) => {
                return Ok(json_of(&ChatsReply { chats: Vec::new() }))
            }
            Err(e) => return Err(WireError::from_chat(event, &e)),
        };
        let mut views = Vec::new();
        let mut before: Option<MessageId> = None;
        let mut view = None;
        while views.len() < CONVERSATION_LIMIT {
            let (v, page) = service
                .history(&me, &RoomRef::Id(room.id()), before, 500)
                .await
                .map_err(chat_err(event))?;
            let full = page.len() == 500;
            before = page.last().map(|m| m.message.id);
            views.extend(page);
            view = Some(v);
            if !full {
                break;
            }
        }
        views.truncate(CONVERSATION_LIMIT);
        views.reverse();
        let Some(view) = view else {
            return Ok(json_of(&ChatsReply { chats: Vec::new() }));
        };
        let file_url = |a: &chat_core::Attachment| service.file_url(a);
        Ok(json_of(&ChatsReply {
            chats: views
                .iter()
                .filter(|m| !m.message.is_deleted())
                .filter_map(|m| ChatOut::from_view(&view, m, &file_url))
                .collect(),
        }))
    }

    async fn unread_count(&mut self, cx: &SioCtx, event: &str, payload: &Value) -> Reply {
        let me = cx.caller(event)?;
        let req: UnreadCount = if payload.is_null() {
            UnreadCount::default()
        } else {
            decode(event, payload)?
        };
        let service = cx.service();
        let named = req
            .user
            .filter(|u| !u.trim().is_empty() && u.trim() != me.user.username);
        let count = match named {
            Some(username) => {
                let peer = peer(cx, event, &username, &me).await?;
                match service.find_room(&me, &RoomRef::DirectWith(peer.id)).await {
                    Ok(room) => service
                        .unread_in(&me, &room)
                        .await
                        .map_err(chat_err(event))?,
                    Err(ChatError::NotFound { .. } | ChatError::Invalid { .. }) => 0,
                    Err(e) => return Err(WireError::from_chat(event, &e)),
                }
            }
            None => {
                let rooms = service.rooms(&me).await.map_err(chat_err(event))?;
                let mut total = 0;
                for room in rooms
                    .iter()
                    .filter(|r| matches!(r.room.kind, RoomKind::Direct { .. }))
                {
                    total += service
                        .unread_in(&me, room)
                        .await
                        .map_err(chat_err(event))?;
                }
                total
            }
        };
        Ok(json_of(&CountReply {
            unread_chats_count: count,
        }))
    }

    async fn read_chat(&mut self, cx: &SioCtx, event: &str, payload: &Value) -> Reply {
        let me = cx.caller(event)?;
        let req: ReadChat = decode(event, payload)?;
        let service = cx.service();
        let id = MessageId(req.id.0);
        service
            .mark_read_message(&me, id, cx.origin())
            .await
            .map_err(|e| match e {
                // A chat of a conversation the caller is not part of does not exist
                // for them.
                ChatError::NotFound { .. } | ChatError::Forbidden(_) => {
                    WireError::new("not_found", event, format!("chat {} not found", id))
                }
                other => WireError::from_chat(event, &other),
            })?;
        Ok(json_of(&Empty {}))
    }

    async fn send_message(&mut self, cx: &SioCtx, event: &str, payload: &Value) -> Reply {
        let me = cx.caller(event)?;
        let req: wire::SendMessage = decode(event, payload)?;
        let service = cx.service();
        let base = service.config().public_base_url.clone();
        let mut attachments = Vec::new();
        for (i, url) in req.media.iter().flatten().enumerate() {
            let (id, token) = media::attachment_ref(&base, url)
                .map_err(|why| WireError::invalid(event, format!("media[{i}]: {why}")))?;
            // The URL's token must be the file's: an id alone opens nothing.
            let known = service
                .attachment(id)
                .await
                .map_err(chat_err(event))?
                .is_some_and(|a| chat_core::files::token_matches(&a.token, &token));
            if !known {
                return Err(WireError::invalid(
                    event,
                    format!("media[{i}]: `{url}` is not a file of this server"),
                ));
            }
            if !attachments.contains(&id) {
                attachments.push(id);
            }
        }
        let peer = peer(cx, event, &req.user, &me).await?;
        let cmd = chat_core::SendMessage {
            attachments,
            ..chat_core::SendMessage::text(RoomRef::DirectWith(peer.id), req.message)
        };
        let (room, message) = service
            .send_message(&me, cmd, cx.origin())
            .await
            .map_err(chat_err(event))?;
        let chat =
            ChatOut::from_view(&room, &message, &|a| service.file_url(a)).ok_or_else(|| {
                WireError::new("server_error", event, "the conversation is not direct")
            })?;
        Ok(json_of(&ChatReply { chat }))
    }

    async fn wait(&mut self, cx: &mut SioCtx, event: &str, payload: &Value, on: bool) -> Reply {
        let me = cx.caller(event)?;
        let req: WithUser = decode(event, payload)?;
        let peer = peer(cx, event, &req.user, &me).await?;
        if on {
            if !self.waits_for.contains(&peer.id) {
                self.waits_for.push(peer.id);
                if self.count(me.id(), peer.id, true) {
                    cx.service()
                        .attention(&me, peer.id, true)
                        .await
                        .map_err(chat_err(event))?;
                }
            }
            // Waiting on this node, or (in a cluster) on another one.
            let peer_waits = self
                .waiting
                .lock()
                .map(|w| w.get(&(peer.id, me.id())).is_some_and(|n| *n > 0))
                .unwrap_or(false)
                || cx.service().is_waiting_for(peer.id, me.id());
            if peer_waits {
                cx.emit(
                    "user-join",
                    &UserPush {
                        user: peer.username,
                    },
                );
            }
        } else if let Some(pos) = self.waits_for.iter().position(|p| *p == peer.id) {
            self.waits_for.remove(pos);
            if self.count(me.id(), peer.id, false) {
                cx.service()
                    .attention(&me, peer.id, false)
                    .await
                    .map_err(chat_err(event))?;
            }
        }
        Ok(json_of(&Empty {}))
    }

    /// Count a socket in or out of waiting for (me, peer). True when this changed
    /// whether anyone waits (first in, last out).
    fn count(&self, me: UserId, peer: UserId, up: bool) -> bool {
        let Ok(mut w) = self.waiting.lock() else {
            return true;
        };
        let n = w.entry((me, peer)).or_insert(0);
        if up {
            *n += 1;
            *n == 1
        } else {
            *n = n.saturating_sub(1);
            let last = *n == 0;
            if last {
                w.remove(&(me, peer));
            }
            last
        }
    }

    async fn push_unread(&mut self, cx: &SioCtx, room: &RoomView) {
        let Some(me) = cx.principal().cloned() else {
            return;
        };
        let Some(peer) = room.peer_of(me.id()) else {
            return;
        };
        let service = cx.service();
        match self.unread.count(&service, &me, room).await {
            Ok(n) => {
                cx.emit(
                    "unread-chats-count",
                    &CountPush {
                        unread_chats_count: n,
                        user: peer.username.clone(),
                    },
                );
            }
            Err(e) => tracing::warn!(dialect = NAME, error = %e, "unread count not pushed"),
        }
    }
}

#[async_trait]
impl SioSession for PubsubSession {
    async fn on_request(&mut self, cx: &mut SioCtx, mut req: Request) {
        let event = req.event.clone();
        let payload = std::mem::take(&mut req.payload);
        let reply = match event.as_str() {
            "fetch-users" => self.fetch_users(cx, &event).await,
            "fetch-conversation-with-user" | "fetch-chats-with-user" => {
                self.conversation(cx, &event, &payload).await
            }
            "fetch-unread-chats-count" => self.unread_count(cx, &event, &payload).await,
            "read-chat" => self.read_chat(cx, &event, &payload).await,
            "send-message" => self.send_message(cx, &event, &payload).await,
            "wait-for-user" => self.wait(cx, &event, &payload, true).await,
            "stop-waiting-for-user" => self.wait(cx, &event, &payload, false).await,
            other => Err(WireError::unknown_event(other, EVENTS)),
        };
        cx.count(&event, EVENTS, &reply);
        match reply {
            Ok(v) => {
                cx.ack(&mut req, &v);
            }
            Err(e) => {
                if !cx.ack(&mut req, &e) {
                    cx.emit("error", &e);
                }
            }
        }
    }

    async fn on_push(&mut self, cx: &mut SioCtx, event: &Arc<Published>) {
        let Some(me) = cx.principal().map(Principal::id) else {
            return;
        };
        let service = cx.service();
        match &event.event {
            Event::MessageCreated { room, message } => {
                if !matches!(room.room.kind, RoomKind::Direct { .. }) {
                    return;
                }
                if !event.is_from(cx.conn.conn) {
                    cx.emit_shared("chat", event, *crate::SLOT, || {
                        ChatOut::from_view(room, message, &|a| service.file_url(a))
                            .map(|chat| ChatReply { chat })
                    });
                }
                if message.message.author_id != me {
                    self.unread.message_created(
                        room.id(),
                        message.message.id,
                        message.message.author_id,
                        me,
                    );
                    self.push_unread(cx, room).await;
                }
            }
            Event::MessagesRead {
                room,
                reader,
                newly_read,
                ..
            } => {
                if !matches!(room.room.kind, RoomKind::Direct { .. }) {
                    return;
                }
                if *reader == me {
                    self.unread.forget(room.id());
                    self.push_unread(cx, room).await;
                } else if let Some(reader) = room.member(*reader) {
                    for id in newly_read {
                        cx.emit(
                            "read-chat",
                            &ReadPush {
                                id: id.0,
                                user: reader.username.clone(),
                            },
                        );
                    }
                }
            }
            Event::MessagesDeleted { room, .. } => {
                // A deleted message may have been unread (no push: the original has none).
                self.unread.forget(room.id());
            }
            Event::Presence { user, online } => {
                let name = if *online {
                    "user-online"
                } else {
                    "user-offline"
                };
                cx.emit(
                    name,
                    &UserPush {
                        user: user.username.clone(),
                    },
                );
            }
            Event::Attention { user, waiting } => {
                let name = if *waiting { "user-join" } else { "user-leave" };
                cx.emit(
                    name,
                    &UserPush {
                        user: user.username.clone(),
                    },
                );
            }
            _ => {}
        }
    }

    async fn on_close(&mut self, cx: &mut SioCtx) {
        let Some(me) = cx.principal().cloned() else {
            return;
        };
        for peer in std::mem::take(&mut self.waits_for) {
            if self.count(me.id(), peer, false) {
                if let Err(e) = cx.service().attention(&me, peer, false).await {
                    tracing::debug!(dialect = NAME, error = %e, "user-leave not published");
                }
            }
        }
    }
}
