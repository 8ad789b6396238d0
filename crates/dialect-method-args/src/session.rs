//! The per-connection state machine: decode → call the core service → encode.
//!
//! A method-args socket is accepted without credentials; the channel becomes
//! authorized by the first message whose `access_token` is valid (or at open, when the
//! upgrade request already carried a valid token). The only state kept here is the
//! token that authorized the channel; who the caller is lives in [`ConnCtx`], and
//! *what* the caller may do is decided by the core service, never here.
//!
//! Replies versus pushes: the connection that sent a command answers from the value
//! the service returned (after the commit), because only it knows the request's
//! `event_response_key`. The service also publishes the change on the hub, and that
//! copy reaches this same connection too; it is dropped here ([`Published::is_from`])
//! so the client gets one answer, not two. Every other connection — the same user's
//! other tabs included — renders the hub event ([`crate::render::push`]).

use crate::decode::{decode, Envelope};
use crate::render::{self, chat_error, error, MemberChange};
use crate::upload::decode_file;
use crate::wire::{Call, Chat, ErrorType, MembersArgs, Message, Outbound, SendMessageArgs};
use async_trait::async_trait;
use chat_core::{
    ChatError, ChatService, ConnCtx, CreateRoom, Handshake, MessageKind, Origin, Outgoing,
    Principal, Published, Refusal, RoomId, RoomRef, RoomShape, SendMessage, Session, TokenError,
    UserId, WsDialect,
};
use serde_json::Value;
use std::sync::Arc;

/// The dialect's name, as used on the command line and in event origins.
pub const NAME: &str = "method-args";

/// The method-args dialect: `{method, access_token, args}` in, `{type, data}` out.
#[derive(Clone, Copy, Debug, Default)]
pub struct MethodArgs;

impl WsDialect for MethodArgs {
    fn carries_files(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        NAME
    }

    /// Every upgrade is accepted: this dialect authorizes by message.
    fn accept(&self, hs: &Handshake) -> Result<Box<dyn Session>, Refusal> {
        Ok(Box::new(MethodArgsSession {
            handshake_principal: hs.principal.clone(),
            handshake_token_error: hs.token_error.clone(),
            accepted_token: None,
        }))
    }
}

/// One method-args connection.
pub struct MethodArgsSession {
    handshake_principal: Option<Principal>,
    handshake_token_error: Option<TokenError>,
    /// The `access_token` that authorized the channel. The same string sent again is
    /// not verified again (clients often repeat it in every message), so repeating it
    /// costs nothing; any other token is verified.
    accepted_token: Option<String>,
}

fn send(cx: &mut ConnCtx, out: &Outbound) {
    cx.send(out.to_json());
}

/// The origin tag of a command: its `event_response_key` as JSON text, for tracing
/// and for other dialects that want to correlate (this one echoes the key only on the
/// originating connection, from the command's result).
fn tag(key: &Value) -> Option<Arc<str>> {
    (!key.is_null()).then(|| Arc::from(key.to_string()))
}

impl MethodArgsSession {
    /// Verify a message's token and authorize the channel with it. On failure, the
    /// `error` to answer; the channel keeps whatever authorization it had.
    async fn authorize(
        &mut self,
        cx: &mut ConnCtx,
        token: &str,
        key: &Value,
    ) -> Result<(), Outbound> {
        if cx.principal.is_some() && self.accepted_token.as_deref() == Some(token) {
            return Ok(());
        }
        let principal = cx
            .service
            .authenticate(token)
            .await
            .map_err(|e| failure(&e, key.clone()))?;
        if let Some(current) = &cx.principal {
            if current.id() != principal.id() {
                return Err(error(
                    ErrorType::AuthorizationError,
                    format!(
                        "this connection is authorized as user {}; a token of user {} cannot be used on it (open another connection for that user)",
                        current.id(),
                        principal.id()
                    ),
                    key.clone(),
                ));
            }
        }
        cx.sign_in(principal).await;
        self.accepted_token = Some(token.to_string());
        Ok(())
    }

    /// Run one decoded method for `actor`; the frames for this connection.
    async fn dispatch(&mut self, cx: &mut ConnCtx, actor: &Principal, call: Call) -> Vec<Outbound> {
        let key = call.event_response_key().clone();
        let origin = Some(cx.origin(NAME, tag(&key)));
        let service = cx.service.clone();
        let name = call.method();
        let result: Result<Vec<Outbound>, ChatError> = match call {
            Call::Auth(_) => Ok(vec![Outbound::Authenticated {
                event_response_key: key.clone(),
            }]),
            Call::CreateChat(a) => {
                let cmd = CreateRoom {
                    id: None,
                    shape: RoomShape::Auto,
                    title: a.title.unwrap_or_default(),
                    members: a.users.iter().map(|u| UserId(u.0)).collect(),
                    include_creator: true,
                    has_business: false,
                };
                service.create_room(actor, cmd, origin).await.map(|room| {
                    vec![Outbound::ChatCreated {
                        chat: Chat::from(&*room),
                        event_response_key: key.clone(),
                    }]
                })
            }
            Call::UpdateChat(a) => {
                let title = a.title.unwrap_or_default();
                service
                    .rename_room(actor, RoomId(a.chat.0), &title, origin)
                    .await
                    .map(|room| {
                        vec![Outbound::ChatUpdated {
                            chat: Chat::from(&*room),
                        }]
                    })
            }
            Call::SendMessage(a) => {
                let limit = service.config().max_attachment_bytes;
                let uploads = a
                    .files
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| decode_file(i, f, limit))
                    .collect::<Result<Vec<_>, _>>();
                match uploads {
                    Err(e) => Err(e),
                    Ok(uploads) => {
                        let cmd = SendMessage {
                            room: RoomRef::Id(RoomId(a.chat.0)),
                            text: a.text.unwrap_or_default(),
                            kind: MessageKind::Text,
                            reply_to: None,
                            uploads,
                            attachments: Vec::new(),
                        };
                        service
                            .send_message(actor, cmd, origin)
                            .await
                            .map(|(_, message)| {
                                vec![Outbound::MessageCreated {
                                    message: Message::from_view(&message, &|a| service.file_url(a)),
                                    event_response_key: key.clone(),
                                }]
                            })
                    }
                }
            }
            Call::ReadMessages(a) => service
                .mark_read(actor, &RoomRef::Id(RoomId(a.chat.0)), None, origin)
                .await
                .map(|outcome| {
                    vec![Outbound::MessagesRead {
                        chat: outcome.room.id().0,
                    }]
                }),
            Call::AddToChat(a) => {
                change_members(&service, actor, a, MemberChange::Added, key.clone(), origin).await
            }
            Call::RemoveFromChat(a) => {
                change_members(
                    &service,
                    actor,
                    a,
                    MemberChange::Removed,
                    key.clone(),
                    origin,
                )
                .await
            }
        };
        cx.count_command(name, &result);
        result.unwrap_or_else(|e| vec![failure(&e, key)])
    }
}

/// `send_message` without files, pipelined: placed in its chat's commit order now,
/// answered once committed without holding up the frames behind it (see
/// [`ConnCtx::defer`]).
async fn pipeline_send(cx: &mut ConnCtx, actor: &Principal, a: SendMessageArgs) {
    let key = a.event_response_key;
    let origin = Some(cx.origin(NAME, tag(&key)));
    let cmd = SendMessage::text(RoomRef::Id(RoomId(a.chat.0)), a.text.unwrap_or_default());
    let service = cx.service.clone();
    let meter = cx.meter.clone();
    let queued = service.queue_message(actor, cmd, origin).await;
    cx.defer(async move {
        let result = match queued {
            Ok(queued) => service.complete_send(queued).await,
            Err(e) => Err(e),
        };
        if let Some(m) = &meter {
            m.command_result("send_message", &result);
        }
        let out = result
            .map(|(_, message)| Outbound::MessageCreated {
                message: Message::from_view(&message, &|a| service.file_url(a)),
                event_response_key: key.clone(),
            })
            .unwrap_or_else(|e| failure(&e, key));
        vec![Outgoing::Text(out.to_json())]
    });
}

/// A domain error as this dialect's `error`, logged when it is the server's fault.
/// `add_to_chat` and `remove_from_chat`: the change, then the initiator's
/// acknowledgement and, when the initiator is one of the users changed, the frame
/// of that role too.
async fn change_members(
    service: &ChatService,
    actor: &Principal,
    a: MembersArgs,
    change: MemberChange,
    key: Value,
    origin: Option<Origin>,
) -> Result<Vec<Outbound>, ChatError> {
    let users: Vec<UserId> = a.users.iter().map(|u| UserId(u.0)).collect();
    let room = RoomId(a.chat.0);
    let (room, changed) = match change {
        MemberChange::Added => service.add_members(actor, room, &users, origin).await,
        MemberChange::Removed => service.remove_members(actor, room, &users, origin).await,
    }?;
    let chat = Chat::from(&*room);
    let mut out = vec![change.successful(key, &changed, chat.clone())];
    if changed.contains(&actor.id()) {
        out.push(change.target(chat));
    }
    Ok(out)
}

fn failure(e: &ChatError, key: Value) -> Outbound {
    if let ChatError::Storage(detail) = e {
        tracing::error!(dialect = NAME, error = %detail, "command failed in storage");
    }
    chat_error(e, key)
}

#[async_trait]
impl Session for MethodArgsSession {
    async fn on_open(&mut self, cx: &mut ConnCtx) {
        if let Some(principal) = self.handshake_principal.take() {
            cx.sign_in(principal).await;
        } else if let Some(e) = self.handshake_token_error.take() {
            send(
                cx,
                &error(
                    ErrorType::AuthorizationError,
                    format!(
                        "the token given with the connection request was refused ({e}); the channel is not authorized until a message carries a valid `access_token`"
                    ),
                    Value::Null,
                ),
            );
        }
    }

    async fn on_text(&mut self, cx: &mut ConnCtx, text: &str) {
        let Envelope {
            key,
            access_token,
            call,
        } = match decode(text) {
            Ok(envelope) => envelope,
            Err(e) => {
                cx.count_outcome(chat_core::meter::UNDECODABLE, "invalid");
                return send(cx, &error(e.kind, e.detail, e.key));
            }
        };
        if let Some(token) = access_token {
            if let Err(out) = self.authorize(cx, &token, &key).await {
                return send(cx, &out);
            }
        }
        let Some(actor) = cx.principal.clone() else {
            return send(
                cx,
                &error(
                    ErrorType::AuthorizationError,
                    "this channel is not authorized yet: send a valid `access_token` with this or an earlier message, e.g. {\"method\": \"auth\", \"access_token\": \"<JWT>\"}",
                    key,
                ),
            );
        };
        let call = match call {
            Ok(call) => call,
            Err(e) => {
                cx.count_outcome(chat_core::meter::UNDECODABLE, "invalid");
                return send(cx, &error(e.kind, e.detail, e.key));
            }
        };
        let call = match call {
            Call::SendMessage(a) if a.files.as_ref().is_none_or(Vec::is_empty) => {
                return pipeline_send(cx, &actor, a).await;
            }
            // Anything else sees what the messages before it did.
            call => call,
        };
        cx.settle().await;
        for out in self.dispatch(cx, &actor, call).await {
            send(cx, &out);
        }
    }

    async fn on_oversize(&mut self, cx: &mut ConnCtx, size: usize) {
        send(
            cx,
            &error(
                ErrorType::FieldError,
                format!(
                    "frame too large ({size} bytes) for this server; it was dropped unread. Send smaller or fewer files per message"
                ),
                Value::Null,
            ),
        );
    }

    async fn on_binary(&mut self, cx: &mut ConnCtx, bytes: &[u8]) {
        send(
            cx,
            &error(
                ErrorType::FieldError,
                format!(
                    "binary frames are not part of this protocol ({} bytes ignored); send each request as a JSON text frame",
                    bytes.len()
                ),
                Value::Null,
            ),
        );
    }

    async fn on_event(&mut self, cx: &mut ConnCtx, event: &Arc<Published>) {
        if event.is_from(cx.conn) {
            return;
        }
        let Some(me) = cx.principal.as_ref().map(Principal::id) else {
            return;
        };
        let service = cx.service.clone();
        for out in render::push(event, me, &|a| service.file_url(a)) {
            match out {
                Outgoing::Text(t) => cx.send(t),
                Outgoing::Shared(t) => cx.send_shared(t),
                Outgoing::Close { code, reason } => cx.close(code, reason),
            }
        }
    }
}
