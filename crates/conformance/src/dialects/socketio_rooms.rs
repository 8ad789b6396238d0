//! socketio-rooms: Socket.IO at `/socket.io/`, namespace `/`, token in the handshake
//! `auth`. Every request is answered twice with the same object — an event of the
//! request's name and the ack — and the run checks both.
//!
//! Needs two users (A and B); it creates their chat itself with `create-chat`.

use super::{ensure, error_is, has_all, lists, marker, token_peers, users_or_record};
use crate::case;
use crate::peer::{Expect, SioPeer};
use crate::report::{need, CaseError};
use crate::spec::Spec;
use crate::{Config, Report};
use chat_client::dialects::socketio_rooms::NAMESPACE;
use serde_json::{json, Value};

/// The request's answer: through the ack (validated as `reply_key`), then as the
/// event of the same name (or `error`), which must be the same object.
async fn answer(
    p: &mut SioPeer<'_>,
    key: &str,
    payload: &Value,
    reply_key: &str,
) -> Result<Value, CaseError> {
    let acked = if reply_key == "error" {
        let name = p
            .spec_name(key)
            .ok_or_else(|| CaseError::Fail(format!("no message `{key}`")))?;
        p.call(&name, Some(payload), "error").await?
    } else {
        p.call_as(key, payload, reply_key).await?
    };
    let emitted = p.expect(reply_key).await?;
    ensure(emitted == acked, || {
        format!("the `{reply_key}` event differs from the ack: event {emitted}, ack {acked}")
    })?;
    Ok(acked)
}

/// The answer to `key` when it succeeds: `<key>_reply`, as [`answer`] checks it.
async fn ask(p: &mut SioPeer<'_>, key: &str, payload: &Value) -> Result<Value, CaseError> {
    answer(p, key, payload, &format!("{key}_reply")).await
}

fn error_code(v: &Value) -> Option<&str> {
    v.get("error").and_then(Value::as_str)
}

async fn expect_error(
    p: &mut SioPeer<'_>,
    key: &str,
    payload: &Value,
    code: &str,
) -> Result<(), CaseError> {
    let v = answer(p, key, payload, "error").await?;
    error_is(&v, code)
}

pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    let Some([ua, ub]) = users_or_record(cfg, report) else {
        return;
    };
    let t = cfg.timing;
    let h = cfg.headers(None);
    let hr = crate::header_refs(&h);

    for (case_name, auth) in [
        (
            "without a token: connect_error `authentication failed: …`",
            None,
        ),
        (
            "with an invalid token: connect_error",
            Some(json!({"token": "not.a.token"})),
        ),
    ] {
        case!(report, [], "(connect)", case_name, {
            match chat_client::SioClient::connect(
                &cfg.url,
                NAMESPACE,
                auth.as_ref(),
                &hr,
                t.timeout,
            )
            .await
            {
                Err(chat_client::Error::ConnectError(payload)) => {
                    spec.check("connect_error", None, &payload)
                        .map_err(|e| format!("connect_error payload: {e}: {payload}"))?;
                    Ok(())
                }
                Err(e) => Err(format!("expected connect_error, got {e}").into()),
                Ok(c) => {
                    c.disconnect().await;
                    Err("the namespace connection was accepted".into())
                }
            }
        });
    }

    let what = "connect with auth {token}";
    let peers = token_peers(cfg, spec, NAMESPACE, [&ua, &ub], &[], what, report);
    let Some([mut a, mut b]) = peers.await else {
        return;
    };
    let (a_id, b_id) = (ua.id.to_string(), ub.id.to_string());

    case!(
        report,
        [a, b],
        "create-user",
        "the token's user: the user with id, name and photo",
        {
            let v = ask(
                &mut a,
                "create_user",
                &json!({"user": {"id": a_id, "name": "Ann", "photo": ""}}),
            )
            .await?;
            ensure(
                v.pointer("/user/id") == Some(&json!(a_id))
                    && v.pointer("/user/name") == Some(&json!("Ann")),
                || format!("wrong user: {v}"),
            )?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b],
        "create-user",
        "another user's id: error forbidden",
        {
            expect_error(
                &mut a,
                "create_user",
                &json!({"user": {"id": b_id, "name": "Bob", "photo": ""}}),
                "forbidden",
            )
            .await
        }
    );
    case!(report, [a, b], "create-user", "no name: error invalid", {
        expect_error(
            &mut a,
            "create_user",
            &json!({"user": {"id": a_id, "photo": ""}}),
            "invalid",
        )
        .await
    });
    case!(
        report,
        [a, b],
        "create-user",
        "an external_id from a user who is not an admin: error forbidden",
        {
            let ext = marker("ext");
            expect_error(
                &mut b,
                "create_user",
                &json!({"user": {"id": b_id, "external_id": ext, "name": "Bob", "photo": ""}}),
                "forbidden",
            )
            .await
        }
    );
    let mut chat: Option<String> = None;
    case!(
        report,
        [a, b],
        "create-chat",
        "a chat with B: the chat, creator first; nobody else is told",
        {
            let v = ask(
                &mut a,
                "create_chat",
                &json!({"chat": {"name": "conformance"}, "users": [b_id]}),
            )
            .await?;
            ensure(
                v.pointer("/chat/users") == Some(&json!([a_id, b_id])),
                || format!("wrong users: {v}"),
            )?;
            chat = v
                .pointer("/chat/id")
                .and_then(Value::as_str)
                .map(str::to_string);
            ensure(chat.is_some(), || format!("no chat id: {v}"))?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b],
        "create-chat",
        "users not a list: error invalid",
        {
            expect_error(
                &mut a,
                "create_chat",
                &json!({"chat": {"name": "x"}, "users": "2"}),
                "invalid",
            )
            .await
        }
    );
    case!(
        report,
        [a, b],
        "list-chats",
        "B's chats include the new chat",
        {
            let c = need(&chat, "create-chat")?;
            let v = ask(&mut b, "list_chats", &json!({"user": {"id": b_id}})).await?;
            let listed = lists(&v, "chats", "id", &json!(c));
            ensure(listed, || format!("chat {c} is not listed: {v}"))?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b],
        "list-chats",
        "another user's id: error forbidden",
        {
            expect_error(
                &mut b,
                "list_chats",
                &json!({"user": {"id": a_id}}),
                "forbidden",
            )
            .await
        }
    );
    let mut sent: Option<(String, String)> = None;
    case!(
        report,
        [a, b],
        "new-message",
        "text: the sender's answer (event and ack), a new-message push to B",
        {
            let c = need(&chat, "create-chat")?;
            let text = marker("socketio-rooms");
            let v = ask(&mut a, "new_message", &json!({"chat": {"id": c}, "user": {"id": a_id}, "message": {"value": text, "type": "text"}})).await?;
            let want = [
                ("/msg", json!(text)),
                ("/user_id", json!(a_id)),
                ("/chat_id", json!(c)),
            ];
            ensure(has_all(&v, &want), || format!("wrong message: {v}"))?;
            let id = v.get("id").cloned().unwrap_or(Value::Null);
            b.expect_where("new_message_push", "it is another message", |p| {
                p.get("id") == Some(&id)
            })
            .await?;
            sent = id.as_str().map(|i| (i.to_string(), text.clone()));
            Ok(())
        }
    );
    case!(
        report,
        [a, b],
        "new-message",
        "an image by URL: type img",
        {
            let c = need(&chat, "create-chat")?;
            let v = ask(&mut a, "new_message", &json!({"chat": {"id": c}, "user": {"id": a_id}, "message": {"value": "https://example.com/cat.png", "type": "img"}})).await?;
            ensure(v.get("type") == Some(&json!("img")), || {
                format!("not an img: {v}")
            })?;
            b.expect_where("new_message_push", "it is not the image", |p| {
                p.get("type") == Some(&json!("img"))
            })
            .await?;
            Ok(())
        }
    );
    // The refused new messages: (case, sent by B, the chat's id when not `create-chat`'s,
    // the message, the error).
    let no_chat = (i64::MAX - 5).to_string();
    for (case_name, by_b, chat_id, message, code) in [
        (
            "an unknown type: error invalid",
            false,
            None,
            json!({"value": "x", "type": "video"}),
            "invalid",
        ),
        (
            "an empty text: error invalid",
            false,
            None,
            json!({"value": ""}),
            "invalid",
        ),
        (
            "a chat that does not exist: error not_found",
            false,
            Some(&no_chat),
            json!({"value": "x"}),
            "not_found",
        ),
        (
            "another user's id: error forbidden",
            true,
            None,
            json!({"value": "x"}),
            "forbidden",
        ),
    ] {
        case!(report, [a, b], "new-message", case_name, {
            let c = match chat_id {
                Some(c) => c.clone(),
                None => need(&chat, "create-chat")?,
            };
            let p = if by_b { &mut b } else { &mut a };
            let payload = json!({"chat": {"id": c}, "user": {"id": a_id}, "message": message});
            expect_error(p, "new_message", &payload, code).await
        });
    }
    case!(
        report,
        [a, b],
        "list-messages",
        "B reads the chat: the message, oldest first",
        {
            let c = need(&chat, "create-chat")?;
            let (id, text) = need(&sent, "new-message text")?;
            let v = ask(&mut b, "list_messages", &json!({"chat": {"id": c}})).await?;
            let found = v["messages"].as_array().is_some_and(|ms| {
                ms.iter()
                    .any(|m| m.get("id") == Some(&json!(id)) && m.get("msg") == Some(&json!(text)))
            });
            ensure(found, || format!("message {id} is not listed: {v}"))?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b],
        "list-messages",
        "from after to: error invalid",
        {
            let c = need(&chat, "create-chat")?;
            expect_error(&mut b, "list_messages", &json!({"query": {"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}, "chat": {"id": c}}), "invalid").await
        }
    );
    case!(
        report,
        [a, b],
        "(unknown event)",
        "an event that is not in the API: error unknown_event",
        {
            let v = a.call("send-everything", Some(&json!({})), "error").await?;
            ensure(error_code(&v) == Some("unknown_event"), || {
                format!("expected unknown_event, got {v}")
            })?;
            a.expect("error").await?;
            Ok(())
        }
    );
    a.close().await;
    b.close().await;
}
