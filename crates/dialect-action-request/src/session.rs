//! The per-connection state machine.
//!
//! A djangochannelsrestframework consumer keeps one piece of state per socket: the
//! room it has joined (`self.room` and its channel-layer group). Writes go to that
//! room, and pushes about that room reach every socket joined to it. Here the joined
//! room is [`ActionSession::joined`]; the hub delivers every event of the user's rooms
//! to the connection, and [`Session::on_event`] shows only those of the joined room —
//! the group membership of the original, without a group per room.
//!
//! Handlers are thin: decode, call [`chat_core::ChatService`], render. Who may do what
//! (members, moderators, business rooms, authors) is core's policy; this module only
//! knows which room the client is in.

use crate::decode::{self, Command, Frame};
use crate::render::{self, Failure, NOT_IN_ROOM, NOT_IN_ROOM_LEAVE};
use crate::wire::{LeftOut, RoomOut};
use crate::{Endpoint, DIALECT};
use async_trait::async_trait;
use chat_core::{
    ChatError, ConnCtx, Outgoing, Principal, Published, RoomId, RoomRef, SendMessage, Session,
};
use serde_json::Value;
use std::sync::Arc;

/// One connection of either endpoint.
pub struct ActionSession {
    endpoint: Endpoint,
    /// Who the handshake token named; on the admin endpoint with `moderator` set.
    principal: Principal,
    /// The room this connection has joined, if any.
    joined: Option<RoomId>,
}

impl ActionSession {
    pub fn new(endpoint: Endpoint, principal: Principal) -> Self {
        ActionSession {
            endpoint,
            principal,
            joined: None,
        }
    }

    /// The room this connection has joined.
    pub fn joined(&self) -> Option<RoomId> {
        self.joined
    }

    fn joined_or_400(&self) -> Result<RoomId, Failure> {
        self.joined.ok_or_else(|| Failure::bad_request(NOT_IN_ROOM))
    }

    /// Run one decoded request; the reply frame, success or failure.
    async fn handle(&mut self, cx: &mut ConnCtx, f: &Frame) -> String {
        let result = self.run(cx, f).await;
        let code = result.as_ref().map_or_else(|e| e.code, |_| "ok");
        cx.count_outcome(f.command.name(), code);
        match result {
            Ok(reply) => reply,
            Err(failure) => render::failure(&failure, &f.action, &f.request_id),
        }
    }

    async fn run(&mut self, cx: &mut ConnCtx, f: &Frame) -> Result<String, Failure> {
        let action = f.action.as_str().unwrap_or_default();
        let chat = |e: ChatError| refused(&e, action);
        let service = cx.service.clone();
        let actor = &self.principal;
        match &f.command {
            Command::List => {
                let rooms = service.rooms(actor).await.map_err(chat)?;
                let data: Vec<RoomOut<'_>> = rooms.iter().map(|r| render::room(r)).collect();
                Ok(render::success(data, &f.action, 200, &f.request_id))
            }
            Command::JoinRoom { room } => {
                // A refused join keeps the previously joined room (the original refused
                // non-members before leaving the old room).
                let view = service.room(actor, *room).await.map_err(chat)?;
                self.joined = Some(view.id());
                // A moderator viewing a room they are not a member of still gets its
                // pushes while joined.
                cx.watch_room(self.joined).await.map_err(chat)?;
                Ok(render::success(
                    render::room(&view),
                    &f.action,
                    200,
                    &f.request_id,
                ))
            }
            Command::LeaveRoom => {
                let room = self
                    .joined
                    .take()
                    .ok_or_else(|| Failure::bad_request(NOT_IN_ROOM_LEAVE))?;
                cx.watch_room(None).await.map_err(chat)?;
                let data = LeftOut {
                    response: format!("leaved room {room} successfully!"),
                };
                Ok(render::success(data, &f.action, 200, &f.request_id))
            }
            Command::CurrentRoomInfo => {
                let room = self.joined_or_400()?;
                let view = service.room(actor, room).await.map_err(chat)?;
                Ok(render::success(
                    render::room(&view),
                    &f.action,
                    200,
                    &f.request_id,
                ))
            }
            Command::CreateMessage { text } => {
                let room = self.joined_or_400()?;
                let origin = cx.origin(DIALECT, render::tag_of(&f.request_id));
                let (view, message) = service
                    .send_message(
                        actor,
                        SendMessage::text(RoomRef::Id(room), text.clone()),
                        Some(origin),
                    )
                    .await
                    .map_err(chat)?;
                Ok(render::created(&view, &message, &f.request_id))
            }
            Command::EditMessage { message, text } => {
                let room = self.joined_or_400()?;
                let origin = cx.origin(DIALECT, render::tag_of(&f.request_id));
                let (view, edited) = service
                    .edit_message(actor, *message, text, Some(room), Some(origin))
                    .await
                    .map_err(chat)?;
                Ok(render::edited(view.id(), &edited, &f.request_id))
            }
            Command::DeleteMessages { messages } => {
                let room = self.joined_or_400()?;
                let origin = cx.origin(DIALECT, render::tag_of(&f.request_id));
                let (view, deleted) = service
                    .delete_messages(actor, messages, Some(room), Some(origin))
                    .await
                    .map_err(chat)?;
                if deleted.is_empty() {
                    // Every message named was deleted before: nothing changed, and the
                    // original (which removed rows) found none of them.
                    return Err(Failure::not_found());
                }
                Ok(render::deleted(view.id(), &deleted, &f.request_id))
            }
        }
    }
}

/// A domain error as this dialect's failure, logged (as a warning when it is the
/// server's fault).
fn refused(e: &ChatError, action: &str) -> Failure {
    if let ChatError::Storage(msg) = e {
        tracing::warn!(dialect = DIALECT, action, error = %msg, "storage error");
    } else {
        tracing::debug!(dialect = DIALECT, action, error = %e, "request refused");
    }
    Failure::from_chat(e, action)
}

impl ActionSession {
    /// `create_message` in the joined room, pipelined: placed in the room's commit
    /// order now, answered once committed without holding up the frames behind it
    /// (see [`ConnCtx::defer`]).
    async fn pipeline_create(&self, cx: &mut ConnCtx, f: &Frame, room: RoomId, text: &str) {
        let service = cx.service.clone();
        let meter = cx.meter.clone();
        let origin = cx.origin(DIALECT, render::tag_of(&f.request_id));
        let cmd = SendMessage::text(RoomRef::Id(room), text);
        let queued = service
            .queue_message(&self.principal, cmd, Some(origin))
            .await;
        let (action, request_id, name) = (f.action.clone(), f.request_id.clone(), f.command.name());
        cx.defer(async move {
            let (code, reply) = match queued {
                Ok(queued) => service.complete_send(queued).await,
                Err(e) => Err(e),
            }
            .map_or_else(
                |e| {
                    let failure = refused(&e, action.as_str().unwrap_or_default());
                    (
                        failure.code,
                        render::failure(&failure, &action, &request_id),
                    )
                },
                |(view, message)| ("ok", render::created(&view, &message, &request_id)),
            );
            if let Some(m) = &meter {
                m.command(name, code);
            }
            vec![Outgoing::Text(reply)]
        });
    }
}

#[async_trait]
impl Session for ActionSession {
    async fn on_open(&mut self, cx: &mut ConnCtx) {
        cx.sign_in(self.principal.clone()).await;
    }

    async fn on_text(&mut self, cx: &mut ConnCtx, text: &str) {
        let frame = match decode::decode(text, self.endpoint) {
            Ok(frame) => frame,
            Err(r) => {
                cx.count_outcome(chat_core::meter::UNDECODABLE, r.failure.code);
                return cx.send(render::failure(&r.failure, &r.action, &r.request_id));
            }
        };
        if let (Command::CreateMessage { text }, Some(room)) = (&frame.command, self.joined) {
            return self.pipeline_create(cx, &frame, room, text).await;
        }
        // Anything else sees what the messages before it did.
        cx.settle().await;
        let reply = self.handle(cx, &frame).await;
        cx.send(reply);
    }

    async fn on_oversize(&mut self, cx: &mut ConnCtx, size: usize) {
        let f = Failure::bad_request(format!(
            "Request body too large ({size} bytes); the frame was dropped."
        ));
        cx.send(render::failure(&f, &Value::Null, &Value::Null));
    }

    async fn on_binary(&mut self, cx: &mut ConnCtx, _bytes: &[u8]) {
        let f = Failure::bad_request("Binary frames are not supported; send JSON in a text frame.");
        cx.send(render::failure(&f, &Value::Null, &Value::Null));
    }

    async fn on_event(&mut self, cx: &mut ConnCtx, event: &Arc<Published>) {
        // Only the joined room's messages, edits and deletions have a word here; the
        // sender's own connection already answered from the command's result.
        let Some(room) = render::shown_in_room(&event.event) else {
            return;
        };
        if self.joined != Some(room) || event.is_from(cx.conn) {
            return;
        }
        let frame = event.rendered(*crate::SLOT, || render::event(event).unwrap_or_default());
        if !frame.is_empty() {
            cx.send_shared(frame);
        }
    }
}
