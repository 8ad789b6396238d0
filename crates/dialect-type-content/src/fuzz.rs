//! The dialect's decoder as a fuzz target: a text frame into a typed request (with its
//! chat id resolved), or into the `{"error": …}` frame.

use dialect_kit::fuzz::{assert_json, text};
use dialect_kit::FuzzTarget;

pub const TARGETS: &[FuzzTarget] = &[FuzzTarget {
    name: "type-content",
    about: "type-content text frame → decode::Request (chat ids resolved), or `{\"error\"}`",
    run: frame,
    seeds: FRAMES,
}];

fn frame(data: &[u8]) {
    use crate::decode::{decode, Request};
    use crate::encode::error_frame;
    match decode(&text(data)) {
        Ok(req) => {
            let _ = req.event();
            match req {
                Request::Send { chat, .. }
                | Request::Typing { chat }
                | Request::Read { chat, .. }
                | Request::Delete { chat, .. } => {
                    let _ = chat.room_ref();
                }
                Request::Presence { .. } => {}
            }
        }
        Err(e) => assert_json(&error_frame(e.to_string())),
    }
}

const FRAMES: &[&str] = &[
    r#"{"type":"new_message","content":{"chat_type":"direct","chat_id":"12_23","message":"hello world","reply_to":54}}"#,
    r#"{"type":"new_message","content":{"chat_type":"project","chat_id":7,"message":"hi","reply_to":null}}"#,
    r#"{"type":"new_message","content":{"chat_type":"project","chat_id":"7","message":"hi","reply_to":"3"}}"#,
    r#"{"type":"user_typing","content":{"chat_type":"group","chat_id":5}}"#,
    r#"{"type":"message_read","content":{"chat_type":"direct","chat_id":"1_2","message_id":"9"}}"#,
    r#"{"type":"delete_message","content":{"chat_type":"direct","chat_id":"1_2","message_id":9}}"#,
    r#"{"type":"set_online"}"#,
    r#"{"type":"set_offline","content":{}}"#,
];
