//! The dialect's decoders as a fuzz target: an Engine.IO WebSocket frame through
//! socketioxide's parsers ([`socketio_common::fuzz::event`]) into what the session does
//! with a request before it calls the service.

use crate::session::EVENTS;
use crate::{media, wire::*};
use dialect_kit::FuzzTarget;
use serde_json::Value;
use socketio_common::error::decode;
use socketio_common::WireError;

pub const TARGETS: &[FuzzTarget] =
    socketio_common::event_targets!("socketio-pubsub", request, FRAMES);

fn request(event: &str, payload: &Value) -> Result<(), WireError> {
    match event {
        "fetch-users" => {}
        "fetch-conversation-with-user"
        | "fetch-chats-with-user"
        | "wait-for-user"
        | "stop-waiting-for-user" => {
            let req: WithUser = decode(event, payload)?;
            let _ = req.user.trim();
        }
        "fetch-unread-chats-count" => {
            let req: UnreadCount = if payload.is_null() {
                UnreadCount::default()
            } else {
                decode(event, payload)?
            };
            let _ = req.user.filter(|u| !u.trim().is_empty());
        }
        "read-chat" => {
            let req: ReadChat = decode(event, payload)?;
            let _ = req.id.0;
        }
        "send-message" => {
            let req: SendMessage = decode(event, payload)?;
            for (i, url) in req.media.iter().flatten().enumerate() {
                for base in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/", ""] {
                    if let Ok((id, token)) = media::attachment_ref(base, url) {
                        assert!(id.0 > 0, "media[{i}]: an attachment id is positive");
                        assert!(!token.is_empty(), "media[{i}]: a file URL has a token");
                    }
                }
            }
        }
        other => return Err(WireError::unknown_event(other, EVENTS)),
    }
    Ok(())
}

const FRAMES: &[&str] = &[
    r#"42/chat,1["fetch-users"]"#,
    r#"42/chat,2["fetch-conversation-with-user",{"user":"bob"}]"#,
    r#"42/chat,3["fetch-unread-chats-count",{"user":"bob"}]"#,
    r#"42/chat,["fetch-unread-chats-count"]"#,
    r#"42/chat,4["read-chat",{"id":"12"}]"#,
    r#"42/chat,5["send-message",{"message":"hi bob","user":"bob","media":["http://127.0.0.1:8080/files/12/a%20b.png"]}]"#,
    r#"42/chat,["wait-for-user",{"user":"bob"}]"#,
    r#"42/chat,["stop-waiting-for-user",{"user":"bob"}]"#,
    r#"40/chat,{"token":"Bearer abc"}"#,
];
