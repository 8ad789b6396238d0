//! Text frame → typed [`Request`], without ever panicking.
//!
//! Decoding happens in two stages on purpose. The frame is first parsed into a loose
//! `serde_json::Value`, so that whatever is wrong with the rest of it, the client's
//! `args.event_response_key` can still be recovered and echoed in the `error` event:
//! that key is how a client matches an answer to its request, and an error without
//! it is an error the client cannot attribute. Only then is the typed [`Call`]
//! decoded from the `{method, args}` part.
//!
//! The envelope-level problems (not JSON, not an object, an `access_token` that is not
//! a string) make the whole frame unusable. Problems of the method or its args are
//! kept apart ([`Envelope::call`]) because the frame's `access_token` still counts:
//! the channel is authorized by the first valid token, whatever method it came with.

use crate::wire::{Call, ErrorType, Request};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a frame could not be turned into a command: an `error` event to send.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeError {
    pub kind: ErrorType,
    pub detail: String,
    /// The `event_response_key` recovered from the raw frame (`null` if none).
    pub key: Value,
}

/// A frame whose envelope is sound; the method and args may still be wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// `args.event_response_key`, recovered from the raw JSON (`null` if none).
    pub key: Value,
    /// A non-empty `access_token`, if the frame carried one.
    pub access_token: Option<String>,
    pub call: Result<Call, DecodeError>,
}

impl Envelope {
    /// The typed request, when the method and args decoded.
    pub fn into_request(self) -> Result<Request, DecodeError> {
        let access_token = self.access_token;
        self.call.map(|call| Request { access_token, call })
    }
}

fn field_error(detail: impl Into<String>, key: &Value) -> DecodeError {
    DecodeError {
        kind: ErrorType::FieldError,
        detail: detail.into(),
        key: key.clone(),
    }
}

/// A field error for `what` (a field, or the frame) holding `got` where it must hold
/// `expected`.
fn wrong_type(what: &str, expected: &str, got: &Value, key: &Value) -> DecodeError {
    field_error(
        format!(
            "{what} must be {expected}; got {}",
            dialect_kit::json::kind(got)
        ),
        key,
    )
}

/// Decode one text frame.
pub fn decode(text: &str) -> Result<Envelope, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        field_error(
            format!("the frame is not valid JSON ({e}); send an object like {{\"method\": \"auth\", \"access_token\": \"…\", \"args\": {{}}}}"),
            &Value::Null,
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(wrong_type(
            "the frame",
            "a JSON object with `method`, `access_token` and `args`",
            &value,
            &Value::Null,
        ));
    };
    let key = obj
        .get("args")
        .and_then(Value::as_object)
        .and_then(|a| a.get("event_response_key"))
        .cloned()
        .unwrap_or(Value::Null);

    let access_token = match obj.remove("access_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => (!s.trim().is_empty()).then_some(s),
        Some(other) => return Err(wrong_type("`access_token`", "a string", &other, &key)),
    };

    let call = decode_call(obj, &key);
    Ok(Envelope {
        key,
        access_token,
        call,
    })
}

fn methods_list() -> String {
    Call::METHODS.join(", ")
}

fn decode_call(mut obj: Map<String, Value>, key: &Value) -> Result<Call, DecodeError> {
    let method = match obj.remove("method") {
        None | Some(Value::Null) => {
            return Err(field_error(
                format!("`method` is missing; it is one of: {}", methods_list()),
                key,
            ))
        }
        Some(Value::String(m)) => m,
        Some(other) => return Err(wrong_type("`method`", "a string", &other, key)),
    };
    if !Call::METHODS.contains(&method.as_str()) {
        return Err(DecodeError {
            kind: ErrorType::AccessError,
            detail: format!(
                "unknown method `{method}`; the methods are: {}",
                methods_list()
            ),
            key: key.clone(),
        });
    }
    let args = match obj.remove("args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a,
        Some(other) => {
            return Err(wrong_type(
                &format!("`args` of `{method}`"),
                "an object",
                &other,
                key,
            ))
        }
    };
    decode_args(&method, args).map_err(|detail| field_error(detail, key))
}

/// The most args keys [`culprit`] probes; real requests have at most four.
const MAX_PROBES: usize = 16;

/// Decode `args` for a known method; on failure, the `detail` of the field error.
fn decode_args(method: &str, args: Map<String, Value>) -> Result<Call, String> {
    let mut tagged = Map::with_capacity(2);
    tagged.insert("method".into(), Value::String(method.to_string()));
    tagged.insert("args".into(), Value::Object(args));
    let mut tagged = Value::Object(tagged);
    let message = match Call::deserialize(&tagged) {
        Ok(call) => return Ok(call),
        Err(e) => e.to_string(),
    };
    let place = match culprit(&mut tagged, &message) {
        Some(field) => format!("args.{field}"),
        None => "args".to_string(),
    };
    Err(format!(
        "invalid arguments for `{method}`: {place}: {message}"
    ))
}

/// Which argument made decoding fail. serde's messages for a wrongly typed value do not
/// name the field ("invalid type: string, expected an integer id"), which is no help
/// to a client developer. Args are small, so find it by elimination: the field whose
/// removal changes the outcome is the one that was wrong. Each key is taken out and
/// put back in place, so nothing is copied; a request with more keys than any real
/// one is not probed at all. (A missing top-level field is found by nobody, which is
/// right: serde's message already names it.)
fn culprit(tagged: &mut Value, message: &str) -> Option<String> {
    let keys: Vec<String> = tagged.get("args")?.as_object()?.keys().cloned().collect();
    if keys.len() > MAX_PROBES {
        return None;
    }
    for k in keys {
        let removed = tagged.get_mut("args")?.as_object_mut()?.remove(&k)?;
        let outcome = Call::deserialize(&*tagged).map(|_| ());
        tagged
            .get_mut("args")?
            .as_object_mut()?
            .insert(k.clone(), removed);
        match outcome {
            Ok(()) => return Some(k),
            Err(e) if e.to_string() != message => return Some(k),
            Err(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::*;
    use serde_json::json;

    fn call(text: &str) -> Call {
        match decode(text).and_then(Envelope::into_request) {
            Ok(r) => r.call,
            Err(e) => panic!("{text} did not decode: {e:?}"),
        }
    }

    fn fails(text: &str) -> DecodeError {
        match decode(text).and_then(Envelope::into_request) {
            Ok(r) => panic!("{text} decoded to {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn auth_with_and_without_args() {
        let e = decode(r#"{"method":"auth","access_token":"abc"}"#).unwrap();
        assert_eq!(e.access_token.as_deref(), Some("abc"));
        assert_eq!(e.key, Value::Null);
        assert_eq!(e.call, Ok(Call::Auth(AuthArgs::default())));
        assert_eq!(
            call(r#"{"method":"auth","args":null}"#),
            Call::Auth(AuthArgs::default())
        );
        assert_eq!(
            call(r#"{"method":"auth","args":{"event_response_key":{"n":[1,2]}}}"#),
            Call::Auth(AuthArgs {
                event_response_key: json!({"n": [1, 2]})
            })
        );
    }

    #[test]
    fn create_chat() {
        assert_eq!(
            call(
                r#"{"method":"create_chat","args":{"users":[1,"2"],"title":"t","event_response_key":7}}"#
            ),
            Call::CreateChat(CreateChatArgs {
                users: vec![WireId(1), WireId(2)],
                title: Some("t".into()),
                event_response_key: json!(7),
            })
        );
        assert_eq!(
            call(r#"{"method":"create_chat","args":{"users":[2],"title":null}}"#),
            Call::CreateChat(CreateChatArgs {
                users: vec![WireId(2)],
                title: None,
                event_response_key: Value::Null,
            })
        );
    }

    #[test]
    fn update_chat() {
        assert_eq!(
            call(r#"{"method":"update_chat","args":{"chat":3,"title":"new"}}"#),
            Call::UpdateChat(UpdateChatArgs {
                chat: WireId(3),
                title: Some("new".into()),
                event_response_key: Value::Null,
            })
        );
        assert_eq!(
            call(r#"{"method":"update_chat","args":{"chat":3,"title":null}}"#),
            Call::UpdateChat(UpdateChatArgs {
                chat: WireId(3),
                title: None,
                event_response_key: Value::Null,
            })
        );
    }

    #[test]
    fn send_message() {
        assert_eq!(
            call(
                r#"{"method":"send_message","access_token":"t","args":{"chat":1,"text":"hi","files":[{"name":"a.txt","data":"aGk="}],"event_response_key":"k"}}"#
            ),
            Call::SendMessage(SendMessageArgs {
                chat: WireId(1),
                text: Some("hi".into()),
                files: Some(vec![FileArg {
                    name: "a.txt".into(),
                    data: "aGk=".into()
                }]),
                event_response_key: json!("k"),
            })
        );
        assert_eq!(
            call(r#"{"method":"send_message","args":{"chat":1,"text":null,"files":null}}"#),
            Call::SendMessage(SendMessageArgs {
                chat: WireId(1),
                text: None,
                files: None,
                event_response_key: Value::Null,
            })
        );
    }

    #[test]
    fn read_add_remove() {
        assert_eq!(
            call(r#"{"method":"read_messages","args":{"chat":9}}"#),
            Call::ReadMessages(ReadMessagesArgs {
                chat: WireId(9),
                event_response_key: Value::Null
            })
        );
        let members = MembersArgs {
            users: vec![WireId(4), WireId(5)],
            chat: WireId(9),
            event_response_key: json!([1]),
        };
        assert_eq!(
            call(
                r#"{"method":"add_to_chat","args":{"users":[4,5],"chat":9,"event_response_key":[1]}}"#
            ),
            Call::AddToChat(members.clone())
        );
        assert_eq!(
            call(
                r#"{"method":"remove_from_chat","args":{"users":[4,5],"chat":9,"event_response_key":[1]}}"#
            ),
            Call::RemoveFromChat(members)
        );
    }

    #[test]
    fn unknown_args_are_ignored() {
        assert_eq!(
            call(r#"{"method":"read_messages","args":{"chat":9,"extra":true},"other":1}"#),
            Call::ReadMessages(ReadMessagesArgs {
                chat: WireId(9),
                event_response_key: Value::Null
            })
        );
    }

    #[test]
    fn not_json_is_a_field_error_without_key() {
        for text in ["", "{", "hello", "{\"method\": \"auth\",}"] {
            let e = fails(text);
            assert_eq!(e.kind, ErrorType::FieldError, "{text}");
            assert_eq!(e.key, Value::Null);
            assert!(e.detail.contains("not valid JSON"), "{}", e.detail);
        }
    }

    #[test]
    fn non_objects_are_field_errors() {
        for text in [
            "[]",
            "1",
            "\"auth\"",
            "null",
            "true",
            "[{\"method\":\"auth\"}]",
        ] {
            let e = fails(text);
            assert_eq!(e.kind, ErrorType::FieldError, "{text}");
            assert!(e.detail.contains("must be a JSON object"), "{}", e.detail);
        }
    }

    #[test]
    fn missing_or_ill_typed_method_is_a_field_error_with_key() {
        let e = fails(r#"{"args":{"event_response_key":"k1"}}"#);
        assert_eq!(e.kind, ErrorType::FieldError);
        assert_eq!(e.key, json!("k1"));
        assert!(e.detail.contains("`method` is missing"), "{}", e.detail);
        let e = fails(r#"{"method":5,"args":{"event_response_key":"k2"}}"#);
        assert_eq!(e.kind, ErrorType::FieldError);
        assert_eq!(e.key, json!("k2"));
        assert!(e.detail.contains("must be a string"), "{}", e.detail);
    }

    #[test]
    fn unknown_method_is_an_access_error_with_key() {
        let e = fails(r#"{"method":"drop_tables","args":{"event_response_key":{"a":1}}}"#);
        assert_eq!(e.kind, ErrorType::AccessError);
        assert_eq!(e.key, json!({"a": 1}));
        assert!(e.detail.contains("drop_tables"), "{}", e.detail);
        assert!(e.detail.contains("send_message"), "{}", e.detail);
    }

    #[test]
    fn the_token_survives_a_bad_method() {
        let env = decode(r#"{"method":"nope","access_token":"tok"}"#).unwrap();
        assert_eq!(env.access_token.as_deref(), Some("tok"));
        assert!(env.call.is_err());
        let env = decode(r#"{"method":"auth","access_token":"  "}"#).unwrap();
        assert_eq!(env.access_token, None, "a blank token is no token");
    }

    #[test]
    fn ill_typed_token_is_a_field_error() {
        let e = fails(r#"{"method":"auth","access_token":42,"args":{"event_response_key":1}}"#);
        assert_eq!(e.kind, ErrorType::FieldError);
        assert_eq!(e.key, json!(1));
        assert!(e.detail.contains("access_token"), "{}", e.detail);
    }

    #[test]
    fn args_that_are_not_an_object() {
        let e = fails(r#"{"method":"read_messages","args":[1]}"#);
        assert_eq!(e.kind, ErrorType::FieldError);
        assert!(e.detail.contains("must be an object"), "{}", e.detail);
    }

    #[test]
    fn missing_args_name_the_field() {
        let e = fails(r#"{"method":"send_message","args":{"text":"x","event_response_key":"k"}}"#);
        assert_eq!(e.kind, ErrorType::FieldError);
        assert_eq!(e.key, json!("k"));
        assert!(e.detail.contains("missing field `chat`"), "{}", e.detail);
        let e = fails(r#"{"method":"read_messages"}"#);
        assert!(e.detail.contains("missing field `chat`"), "{}", e.detail);
        let e = fails(r#"{"method":"create_chat","args":{}}"#);
        assert!(e.detail.contains("missing field `users`"), "{}", e.detail);
        let e = fails(r#"{"method":"add_to_chat","args":{"chat":1}}"#);
        assert!(e.detail.contains("missing field `users`"), "{}", e.detail);
    }

    #[test]
    fn ill_typed_args_name_the_field() {
        let cases = [
            (
                r#"{"method":"read_messages","args":{"chat":"abc","event_response_key":"k"}}"#,
                "args.chat",
            ),
            (
                r#"{"method":"read_messages","args":{"chat":1.5}}"#,
                "args.chat",
            ),
            (
                r#"{"method":"read_messages","args":{"chat":18446744073709551615}}"#,
                "args.chat",
            ),
            (
                r#"{"method":"create_chat","args":{"users":2}}"#,
                "args.users",
            ),
            (
                r#"{"method":"create_chat","args":{"users":[2],"title":5}}"#,
                "args.title",
            ),
            (
                r#"{"method":"send_message","args":{"chat":1,"text":["a"]}}"#,
                "args.text",
            ),
            (
                r#"{"method":"send_message","args":{"chat":1,"files":{"name":"a"}}}"#,
                "args.files",
            ),
            (
                r#"{"method":"send_message","args":{"chat":1,"files":[{"name":"a"}]}}"#,
                "args.files",
            ),
            (
                r#"{"method":"send_message","args":{"chat":1,"files":[{"name":"a","data":7}]}}"#,
                "args.files",
            ),
            (
                r#"{"method":"remove_from_chat","args":{"chat":1,"users":[true]}}"#,
                "args.users",
            ),
            (
                r#"{"method":"update_chat","args":{"chat":{},"title":"x"}}"#,
                "args.chat",
            ),
        ];
        for (text, place) in cases {
            let e = fails(text);
            assert_eq!(e.kind, ErrorType::FieldError, "{text}");
            assert!(e.detail.contains(place), "{text}: {}", e.detail);
        }
        let e = fails(cases[0].0);
        assert_eq!(e.key, json!("k"), "the key survives ill-typed args");
    }

    #[test]
    fn many_keys_are_not_probed_but_still_refused() {
        let mut args: Map<String, Value> = (0..100).map(|i| (format!("k{i}"), json!(i))).collect();
        args.insert("chat".into(), json!("x"));
        args.insert("event_response_key".into(), json!("many"));
        let text = json!({"method": "read_messages", "args": args}).to_string();
        let e = fails(&text);
        assert_eq!(e.kind, ErrorType::FieldError);
        assert_eq!(e.key, json!("many"));
        assert!(e.detail.contains("args: "), "{}", e.detail);
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(fails(&deep).kind, ErrorType::FieldError);
        let deep_args = format!(
            r#"{{"method":"auth","args":{{"event_response_key":{}1{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(fails(&deep_args).kind, ErrorType::FieldError);
    }

    #[test]
    fn key_is_not_taken_from_outside_args() {
        let e = fails(r#"{"method":"nope","event_response_key":"outer"}"#);
        assert_eq!(e.key, Value::Null);
        let e = fails(r#"{"method":"nope","args":"event_response_key"}"#);
        assert_eq!(e.key, Value::Null);
    }
}
