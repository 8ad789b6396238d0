//! The dialect's decoders as fuzz targets: a text frame through the envelope and the
//! typed request (and inline files into uploads), or into the `error` event; and the
//! upload decoder alone against several size limits.

use dialect_kit::fuzz::{assert_json, text};
use dialect_kit::FuzzTarget;

pub const TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "method-args",
        about: "method-args text frame → Envelope/Request, inline files → uploads, or the `error` event",
        run: frame,
        seeds: FRAMES,
    },
    FuzzTarget {
        name: "method-args-upload",
        about: "method-args send_message file data (base64, data: URLs) → Upload within a size limit",
        run: upload,
        seeds: UPLOADS,
    },
];

/// The file limits uploads are decoded against: none, tiny, and the default-ish.
const LIMITS: [usize; 4] = [0, 3, 1000, 10 << 20];

fn frame(data: &[u8]) {
    use crate::decode::decode;
    use crate::render::{chat_error, error};
    use crate::upload::decode_file;
    use crate::wire::Call;
    let text = text(data);
    let envelope = match decode(&text) {
        Ok(e) => e,
        Err(e) => return assert_json(&error(e.kind, e.detail, e.key).to_json()),
    };
    let key = envelope.key.clone();
    let request = match envelope.into_request() {
        Ok(r) => r,
        Err(e) => return assert_json(&error(e.kind, e.detail, e.key).to_json()),
    };
    let _ = (!key.is_null()).then(|| key.to_string());
    assert_eq!(request.call.event_response_key(), &key);
    if let Call::SendMessage(args) = &request.call {
        for (i, file) in args.files.iter().flatten().enumerate() {
            for limit in LIMITS {
                match decode_file(i, file, limit) {
                    Ok(u) => assert!(u.bytes.len() <= limit, "an upload over its limit"),
                    Err(e) => assert_json(&chat_error(&e, key.clone()).to_json()),
                }
            }
        }
    }
}

fn upload(data: &[u8]) {
    use crate::upload::decode_file;
    use crate::wire::FileArg;
    let (limit, rest) = match data.split_first() {
        Some((b, rest)) => (LIMITS[usize::from(*b) % LIMITS.len()], rest),
        None => (0, data),
    };
    let file = FileArg {
        name: "f.bin".into(),
        data: text(rest).into_owned(),
    };
    if let Ok(u) = decode_file(
        usize::from(data.first().copied().unwrap_or(0)),
        &file,
        limit,
    ) {
        assert!(u.bytes.len() <= limit, "an upload over its limit");
    }
}

const FRAMES: &[&str] = &[
    r#"{"method":"auth","access_token":"token"}"#,
    r#"{"method":"create_chat","access_token":"t","args":{"users":[1,2],"title":"title","event_response_key":"k1"}}"#,
    r#"{"method":"update_chat","args":{"chat":1,"title":null,"event_response_key":{"n":1}}}"#,
    r#"{"method":"send_message","args":{"chat":1,"text":"string","files":[{"name":"a.txt","data":"aGVsbG8="}]}}"#,
    r#"{"method":"send_message","args":{"chat":"1","files":[{"name":"a.png","data":"data:image/png;base64,iVBORw0KGgo="},{"name":"b","data":"-_8"}],"event_response_key":7}}"#,
    r#"{"method":"read_messages","args":{"chat":1}}"#,
    r#"{"method":"remove_from_chat","args":{"users":[1],"chat":1}}"#,
    r#"{"method":"add_to_chat","args":{"users":["2"],"chat":1,"event_response_key":[1,2]}}"#,
    r#"{"method":"fly","args":{"event_response_key":"x"}}"#,
];

const UPLOADS: &[&str] = &[
    "\u{2}aGVsbG8=",
    "\u{2}aGVs\nbG8",
    "\u{3}data:text/plain;base64,aGVsbG8=",
    "\u{2}DATA:image/png;name=x.png;base64,aGk=",
    "\u{1}-_8=",
    "\u{0}",
    "\u{2}data:;base64,",
    "\u{2}data:text/plain,hello",
];
