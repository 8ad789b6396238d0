//! The dialect's decoders as a fuzz target: an Engine.IO WebSocket frame through
//! socketioxide's parsers ([`socketio_common::fuzz::event`]) into what the session does
//! with a request before it calls the service — the payload decoded into its wire type,
//! and the checks made on it there.

use crate::session::EVENTS;
use crate::wire::*;
use dialect_kit::time;
use dialect_kit::FuzzTarget;
use serde_json::Value;
use socketio_common::error::decode;
use socketio_common::WireError;

pub const TARGETS: &[FuzzTarget] =
    socketio_common::event_targets!("socketio-rooms", request, FRAMES);

fn request(event: &str, payload: &Value) -> Result<(), WireError> {
    match event {
        "create-user" => {
            let CreateUser { user } = decode(event, payload)?;
            let _ = user.name.trim().is_empty();
            if let Some(ext) = &user.external_id {
                let _ = ext.0.trim().is_empty() || ext.0.chars().count() > 255;
            }
        }
        "create-chat" => {
            let req: CreateChat = decode(event, payload)?;
            let _ = req.users.first().map(|u| u.0);
        }
        "list-chats" => {
            let req: ListChats = decode(event, payload)?;
            let _ = user_id(&req.user);
        }
        "list-messages" => {
            let req: ListMessages = decode(event, payload)?;
            let window = req.query.unwrap_or_default();
            let when = |v: &Option<Value>| match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => time::parse(v)
                    .map(Some)
                    .map_err(|e| WireError::invalid(event, e)),
            };
            let (from, to) = (when(&window.from)?, when(&window.to)?);
            for t in [from, to].into_iter().flatten() {
                // RFC 3339 has four-digit years: within them, a time the server
                // writes reads back.
                let shown = time::millis(&t);
                if (0..=9999).contains(&chrono::Datelike::year(&t)) {
                    assert_eq!(
                        time::parse(&Value::String(shown.clone())).ok(),
                        Some(t),
                        "a time reads back from its wire form {shown}"
                    );
                }
            }
            let _ = req.chat.id.0;
        }
        "new-message" => {
            let req: NewMessage = decode(event, payload)?;
            let _ = matches!(req.message.kind.as_str(), "text" | "img" | "file");
            let _ = req.message.value.trim().is_empty();
            let _ = (user_id(&req.user), req.chat.id.0);
        }
        other => return Err(WireError::unknown_event(other, EVENTS)),
    }
    Ok(())
}

const FRAMES: &[&str] = &[
    r#"42["create-user",{"user":{"external_id":"crm-42","id":"7","name":"Ann","photo":"https://h/ann.png"}}]"#,
    r#"421["create-chat",{"chat":{"name":"project x"},"users":["2","3"]}]"#,
    r#"42["list-chats",{"user":{"id":"1"}}]"#,
    r#"422["list-messages",{"query":{"from":"2024-05-01T00:00:00Z","to":1714564805123},"chat":{"id":"5"}}]"#,
    r#"42["new-message",{"chat":{"id":"5"},"user":{"id":1},"message":{"value":"hello","type":"text"}}]"#,
    r#"42["new-message",{"chat":{"id":"5"},"user":{"id":"1"},"message":{"value":"http://h/a.png","type":"img"}}]"#,
    r#"40{"token":"abc"}"#,
    r#"42["nope"]"#,
];
