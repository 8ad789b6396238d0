//! The dialect's decoder as a fuzz target: a text frame into a typed command for both
//! endpoints, or into the DRF error envelope; a `request_id` must survive its trip
//! through a correlation tag.

use dialect_kit::fuzz::{assert_json, text};
use dialect_kit::FuzzTarget;
use serde_json::Value;

pub const TARGETS: &[FuzzTarget] = &[FuzzTarget {
    name: "action-request",
    about:
        "action-request text frame → decode::Command (both endpoints), or the DRF error envelope",
    run: frame,
    seeds: FRAMES,
}];

fn frame(data: &[u8]) {
    use crate::{decode, render, Endpoint};
    let text = text(data);
    for endpoint in [Endpoint::User, Endpoint::Admin] {
        match decode::decode(&text, endpoint) {
            Ok(frame) => {
                // The request_id travels as a correlation tag and is read back for
                // the push to the other connections of the room.
                if let Some(tag) = render::tag_of(&frame.request_id) {
                    let back: Value = serde_json::from_str(&tag).expect("a tag is JSON");
                    assert_eq!(back, frame.request_id, "the request_id survives its tag");
                }
                let _ = frame.action.as_str().unwrap_or_default();
            }
            Err(r) => assert_json(&render::failure(&r.failure, &r.action, &r.request_id)),
        }
    }
}

const FRAMES: &[&str] = &[
    r#"{"action":"list","request_id":1500000}"#,
    r#"{"action":"join_room","room_pk":1,"request_id":1}"#,
    r#"{"action":"leave_room","request_id":1}"#,
    r#"{"action":"create_message","msg_text":"hello","request_id":1}"#,
    r#"{"action":"edit_message","msg_id":1,"edited_msg_text":"edited_text","request_id":1}"#,
    r#"{"action":"delete_messages","msg_id_list":[1,2],"request_id":1}"#,
    r#"{"action":"current_room_info","request_id":1}"#,
    r#"{"action":"list","request_id":{"a":[1]}}"#,
    r#"{"action":"leave_room","room_pk":"x","extra":[1],"request_id":2}"#,
    r#"{"action":"delete_messages","msg_id_list":[1,"a",null]}"#,
    r#"{"action":5}"#,
    r#"[1,2]"#,
];
