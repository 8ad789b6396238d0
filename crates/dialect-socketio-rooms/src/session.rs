//! The connect decision and the per-socket session of socketio-rooms.
//!
//! **Who the caller is.** By default a socket must present a token (handshake
//! `auth.token`, `?token=` or `Authorization`); without a valid one the namespace is
//! refused with `connect_error`. The ids the protocol puts in bodies (`user.id` of
//! `list-chats` and `new-message`, `user.id` of `create-user`) must then be the
//! token's user — the protocol had no authentication, so a body id is a claim the
//! token must back. An admin token may create or fetch other users.
//!
//! In the **trusted mode** an operator chose for a legacy deployment behind a trusted
//! network, no token is needed and body ids are taken as they are: the caller acts as
//! the user its body names. Such a socket is bound, for pushes, to the first user it
//! names (in `create-user`, `list-chats` or `new-message`).
//!
//! **Replies.** Every answer is emitted as the event the client sent and also passed
//! to the ack when the client gave one; a failure is an `error` event (and the ack).
//! The hub's copy of this socket's own `new-message` is dropped, so the sender sees
//! its message once.

use crate::wire::{self, *};
use async_trait::async_trait;
use chat_core::{
    ChatError, ChatService, CreateRoom, Event, MessageKind, Principal, Published, RoomId, RoomRef,
    RoomShape, SendMessage, User, UserId, UserProfile,
};
use serde_json::Value;
use socketio_common::error::{chat_err, decode, json_of, Reply};
use socketio_common::{Handshake, Opening, Request, SioCtx, SioDialect, SioSession, WireError};
use std::sync::Arc;

/// The dialect's name, as used on the command line and in event origins.
pub const NAME: &str = "socketio-rooms";

/// The events a client may send.
pub const EVENTS: &[&str] = &[
    "create-user",
    "create-chat",
    "list-chats",
    "list-messages",
    "new-message",
];

/// Most messages one `list-messages` returns.
pub const LIST_LIMIT: i64 = 5000;

/// The dialect: decides at connect time.
pub struct RoomsDialect {
    pub trusted: bool,
}

#[async_trait]
impl SioDialect for RoomsDialect {
    type Session = RoomsSession;

    fn name(&self) -> &'static str {
        NAME
    }

    async fn open(&self, service: &Arc<ChatService>, hs: &Handshake) -> Opening<RoomsSession> {
        match hs.token() {
            Some(token) => match service.authenticate(&token).await {
                Ok(p) => Opening::Accept {
                    session: RoomsSession::new(true),
                    principal: Some(Box::new(p)),
                },
                Err(e) => Opening::Refuse(match e {
                    ChatError::Unauthenticated(why) => format!("authentication failed: {why}"),
                    other => other.to_string(),
                }),
            },
            None if self.trusted => Opening::Accept {
                session: RoomsSession::new(false),
                principal: None,
            },
            None => Opening::Refuse(
                "authentication failed: no token was given; connect with auth: {token: \"<JWT>\"} (or ?token=<JWT>)"
                    .to_string(),
            ),
        }
    }
}

/// One socket.
pub struct RoomsSession {
    /// The socket's principal came from a token: body ids must match it.
    authenticated: bool,
}

/// A principal for a user named by a trusted body.
fn acting_as(user: User) -> Principal {
    Principal {
        is_admin: user.is_admin,
        user,
        moderator: false,
        expires_at: None,
    }
}

/// In the trusted mode, the reader behind `list-messages`, whose body names no
/// user: it may read any chat (a moderator) and write nothing.
fn trusted_reader() -> Principal {
    Principal {
        user: User {
            username: "trusted-backend".into(),
            ..User::placeholder(UserId(0))
        },
        is_admin: false,
        moderator: true,
        expires_at: None,
    }
}

impl RoomsSession {
    pub fn new(authenticated: bool) -> Self {
        RoomsSession { authenticated }
    }

    /// The principal a request acts as, given the user its body names.
    async fn actor(
        &self,
        cx: &mut SioCtx,
        event: &str,
        named: UserId,
    ) -> Result<Principal, WireError> {
        if self.authenticated {
            let p = cx.caller(event)?;
            if p.id() != named {
                return Err(WireError::new(
                    "forbidden",
                    event,
                    format!(
                        "user.id {named} is not the user of this connection's token ({}); a client acts only as its own user",
                        p.id()
                    ),
                ));
            }
            return Ok(p);
        }
        let user = cx
            .service()
            .user(named)
            .await
            .map_err(chat_err(event))?
            .ok_or_else(|| WireError::new("not_found", event, format!("user {named} not found")))?;
        let p = acting_as(user);
        if cx.principal().is_none() {
            cx.sign_in(p.clone()).await;
        }
        Ok(p)
    }

    async fn create_user(&mut self, cx: &mut SioCtx, event: &str, payload: &Value) -> Reply {
        let CreateUser { user: u } = decode(event, payload)?;
        if u.name.trim().is_empty() {
            return Err(WireError::invalid(event, "user.name must not be empty"));
        }
        if u.id.is_none() && u.external_id.is_none() {
            return Err(WireError::invalid(
                event,
                "give user.id or user.external_id (or both) to create or fetch a user",
            ));
        }
        let profile = UserProfile {
            id: u.id.map(|i| UserId(i.0)),
            external_id: u.external_id.map(|e| e.0),
            display_name: Some(u.name),
            photo: Some(u.photo),
            ..Default::default()
        };
        if let Some(ext) = &profile.external_id {
            if ext.trim().is_empty() || ext.chars().count() > 255 {
                return Err(WireError::invalid(
                    event,
                    "user.external_id: 1 to 255 characters",
                ));
            }
        }
        let service = cx.service();
        let user = if self.authenticated {
            let me = cx.caller(event)?;
            service.upsert_user_as(&me, &profile).await
        } else {
            service.upsert_user(&profile).await
        }
        .map_err(chat_err(event))?;
        if !self.authenticated && cx.principal().is_none() {
            cx.sign_in(acting_as(user.clone())).await;
        }
        Ok(json_of(&UserReply {
            user: UserOut::from(&user),
        }))
    }

    async fn create_chat(&mut self, cx: &mut SioCtx, event: &str, payload: &Value) -> Reply {
        let req: CreateChat = decode(event, payload)?;
        let users: Vec<UserId> = req.users.iter().map(|u| UserId(u.0)).collect();
        let (actor, members) = if self.authenticated {
            let me = cx.caller(event)?;
            (me, users)
        } else {
            // No token: the chat's first user is its creator.
            let Some(first) = users.first().copied() else {
                return Err(WireError::invalid(
                    event,
                    "users must name at least two users",
                ));
            };
            let actor = self.actor(cx, event, first).await?;
            (actor, users)
        };
        let service = cx.service();
        let cmd = CreateRoom {
            id: None,
            shape: RoomShape::Group,
            title: req.chat.name.unwrap_or_default(),
            members,
            include_creator: true,
            has_business: false,
        };
        let room = service
            .create_room(&actor, cmd, cx.origin())
            .await
            .map_err(chat_err(event))?;
        Ok(json_of(&ChatReply {
            chat: ChatOut::from(&*room),
        }))
    }

    async fn list_chats(&mut self, cx: &mut SioCtx, event: &str, payload: &Value) -> Reply {
        let req: ListChats = decode(event, payload)?;
        let actor = self.actor(cx, event, wire::user_id(&req.user)).await?;
        let rooms = cx.service().rooms(&actor).await.map_err(chat_err(event))?;
        Ok(json_of(&ChatsReply {
            chats: rooms.iter().map(|r| ChatOut::from(&**r)).collect(),
        }))
    }

    async fn list_messages(&mut self, cx: &mut SioCtx, event: &str, payload: &Value) -> Reply {
        let req: ListMessages = decode(event, payload)?;
        let window = req.query.unwrap_or_default();
        let when = |v: &Option<Value>, field: &str| match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => dialect_kit::time::parse(v)
                .map(Some)
                .map_err(|e| WireError::invalid(event, format!("query.{field}: {e}"))),
        };
        let from = when(&window.from, "from")?;
        let to = when(&window.to, "to")?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(WireError::invalid(event, "query.from is after query.to"));
            }
        }
        let actor = match cx.principal() {
            Some(p) if self.authenticated => p.clone(),
            _ => trusted_reader(),
        };
        let service = cx.service();
        let (_, messages) = service
            .messages_between(
                &actor,
                &RoomRef::Id(RoomId(req.chat.id.0)),
                from,
                to,
                LIST_LIMIT,
            )
            .await
            .map_err(chat_err(event))?;
        let file_url = |a: &chat_core::Attachment| service.file_url(a);
        Ok(json_of(&MessagesReply {
            messages: messages
                .iter()
                .filter(|m| !m.message.is_deleted())
                .map(|m| MessageOut::from_view(m, &file_url))
                .collect(),
        }))
    }

    async fn new_message(&mut self, cx: &mut SioCtx, event: &str, payload: &Value) -> Reply {
        let req: wire::NewMessage = decode(event, payload)?;
        let kind = match req.message.kind.as_str() {
            "text" => MessageKind::Text,
            "img" => MessageKind::Image,
            "file" => MessageKind::File,
            other => {
                return Err(WireError::invalid(
                    event,
                    format!("message.type must be \"text\", \"img\" or \"file\", not \"{other}\""),
                ))
            }
        };
        if kind != MessageKind::Text && req.message.value.trim().is_empty() {
            return Err(WireError::invalid(
                event,
                "message.value of an img or file message is its URL",
            ));
        }
        let actor = self.actor(cx, event, wire::user_id(&req.user)).await?;
        let service = cx.service();
        let cmd = SendMessage {
            kind,
            ..SendMessage::text(RoomRef::Id(RoomId(req.chat.id.0)), req.message.value)
        };
        let (_, message) = service
            .send_message(&actor, cmd, cx.origin())
            .await
            .map_err(chat_err(event))?;
        Ok(json_of(&MessageOut::from_view(&message, &|a| {
            service.file_url(a)
        })))
    }
}

#[async_trait]
impl SioSession for RoomsSession {
    async fn on_request(&mut self, cx: &mut SioCtx, mut req: Request) {
        let event = req.event.clone();
        let reply = match event.as_str() {
            "create-user" => self.create_user(cx, &event, &req.payload).await,
            "create-chat" => self.create_chat(cx, &event, &req.payload).await,
            "list-chats" => self.list_chats(cx, &event, &req.payload).await,
            "list-messages" => self.list_messages(cx, &event, &req.payload).await,
            "new-message" => self.new_message(cx, &event, &req.payload).await,
            other => Err(WireError::unknown_event(other, EVENTS)),
        };
        cx.count(&event, EVENTS, &reply);
        match reply {
            Ok(v) => {
                cx.emit(&event, &v);
                cx.ack(&mut req, &v);
            }
            Err(e) => {
                cx.emit("error", &e);
                cx.ack(&mut req, &e);
            }
        }
    }

    async fn on_push(&mut self, cx: &mut SioCtx, event: &Arc<Published>) {
        if event.is_from(cx.conn.conn) {
            return;
        }
        if let Event::MessageCreated { message, .. } = &event.event {
            let service = cx.service();
            cx.emit_shared("new-message", event, *crate::SLOT, || {
                Some(MessageOut::from_view(message, &|a| service.file_url(a)))
            });
        }
    }
}
