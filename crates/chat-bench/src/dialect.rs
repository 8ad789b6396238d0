//! What each dialect looks like on the wire, as much as a load generator needs: where
//! to connect, how to authenticate, how to say "send this text to that room", and how
//! to tell that the session is usable.
//!
//! Recognising *our own* messages in pushes and replies does not parse JSON at all:
//! every benchmark text carries a marker (`bench:<conn>:<seq>:<nanos>`) that the
//! receiving side finds in the raw frame (see [`crate::conn`]). Only set-up frames
//! (authentication, joins) are matched here, by short byte patterns.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Dialect {
    MethodArgs,
    TypeContent,
    ActionRequest,
    SocketioRooms,
    SocketioPubsub,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a connection names the room it sends to, in its own dialect.
#[derive(Clone, Debug)]
pub struct Target {
    pub room_id: i64,
    /// True for a two-member direct room.
    pub direct: bool,
    /// The other member (direct rooms only): user id and username.
    pub peer: Option<(i64, String)>,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::MethodArgs => "method-args",
            Dialect::TypeContent => "type-content",
            Dialect::ActionRequest => "action-request",
            Dialect::SocketioRooms => "socketio-rooms",
            Dialect::SocketioPubsub => "socketio-pubsub",
        }
    }

    pub fn is_socketio(self) -> bool {
        matches!(self, Dialect::SocketioRooms | Dialect::SocketioPubsub)
    }

    /// Whether members on this dialect see messages of rooms with more than two members.
    pub fn sees_groups(self) -> bool {
        self != Dialect::SocketioPubsub
    }

    /// The Engine.IO namespace prefix of a Socket.IO packet (`/chat,`), empty for `/`.
    pub fn nsp_prefix(self) -> &'static str {
        match self {
            Dialect::SocketioPubsub => "/chat,",
            _ => "",
        }
    }

    /// The first frame after the upgrade, if the dialect needs one to become usable.
    pub fn hello(self, token: &str) -> Option<String> {
        match self {
            // The legacy way: the token travels in the first message.
            Dialect::MethodArgs => Some(format!(
                r#"{{"method":"auth","access_token":"{token}","args":{{"event_response_key":"bench"}}}}"#
            )),
            // Both Socket.IO dialects: connect to the namespace with `auth.token`. This is
            // sent after the Engine.IO open packet arrives.
            Dialect::SocketioRooms | Dialect::SocketioPubsub => {
                Some(format!(r#"40{}{{"token":"{token}"}}"#, self.nsp_prefix()))
            }
            Dialect::TypeContent | Dialect::ActionRequest => None,
        }
    }

    /// Whether `frame` says the session is usable (after [`Dialect::hello`]).
    pub fn is_ready(self, frame: &str) -> Ready {
        match self {
            Dialect::MethodArgs => {
                if frame.contains(r#""type":"authenticated""#) {
                    Ready::Yes
                } else if frame.contains(r#""type":"error""#) {
                    Ready::Refused
                } else {
                    Ready::NotYet
                }
            }
            Dialect::SocketioRooms | Dialect::SocketioPubsub => {
                let nsp = self.nsp_prefix();
                if let Some(rest) = frame.strip_prefix("40") {
                    if rest.starts_with(nsp) {
                        return Ready::Yes;
                    }
                }
                if frame.starts_with("44") || frame.contains("auth-failed") {
                    Ready::Refused
                } else {
                    Ready::NotYet
                }
            }
            // Authenticated at the handshake: usable once upgraded.
            Dialect::TypeContent | Dialect::ActionRequest => Ready::Yes,
        }
    }

    /// A frame that makes this connection show the room's pushes, when the dialect
    /// needs one (action-request: only the joined room is shown).
    pub fn join(self, target: &Target) -> Option<String> {
        match self {
            Dialect::ActionRequest => Some(format!(
                r#"{{"action":"join_room","room_pk":{},"request_id":"join"}}"#,
                target.room_id
            )),
            _ => None,
        }
    }

    pub fn is_joined(self, frame: &str) -> Ready {
        if frame.contains(r#""action":"join_room""#) {
            if frame.contains(r#""response_status":200"#) {
                Ready::Yes
            } else {
                Ready::Refused
            }
        } else {
            Ready::NotYet
        }
    }

    /// The frame that sends `text` to `target`. `ack_id` numbers Socket.IO acks.
    pub fn send(self, me: i64, target: &Target, text: &str, ack_id: u64) -> String {
        match self {
            Dialect::MethodArgs => format!(
                r#"{{"method":"send_message","args":{{"chat":{},"text":"{text}","event_response_key":{ack_id}}}}}"#,
                target.room_id
            ),
            Dialect::TypeContent => {
                if target.direct {
                    let peer = target.peer.as_ref().map_or(me, |p| p.0);
                    let (lo, hi) = if me < peer { (me, peer) } else { (peer, me) };
                    format!(
                        r#"{{"type":"new_message","content":{{"chat_type":"direct","chat_id":"{lo}_{hi}","message":"{text}","reply_to":null}}}}"#
                    )
                } else {
                    format!(
                        r#"{{"type":"new_message","content":{{"chat_type":"group","chat_id":{},"message":"{text}","reply_to":null}}}}"#,
                        target.room_id
                    )
                }
            }
            Dialect::ActionRequest => format!(
                r#"{{"action":"create_message","msg_text":"{text}","request_id":{ack_id}}}"#
            ),
            // The answer comes back as a same-named event; no ack is asked for, so the
            // reply arrives once.
            Dialect::SocketioRooms => format!(
                r#"42["new-message",{{"chat":{{"id":"{}"}},"user":{{"id":"{me}"}},"message":{{"value":"{text}","type":"text"}}}}]"#,
                target.room_id
            ),
            // Replies travel only in acks.
            Dialect::SocketioPubsub => {
                let peer = target.peer.as_ref().map_or("", |p| p.1.as_str());
                format!(
                    r#"42/chat,{ack_id}["send-message",{{"message":"{text}","user":"{peer}"}}]"#
                )
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    Yes,
    NotYet,
    Refused,
}
