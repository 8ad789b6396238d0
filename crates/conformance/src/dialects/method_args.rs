//! method-args: `{method, access_token, args}` in, `{type, data}` out.
//!
//! Needs three users (a group chat has at least two members besides its creator).
//! Everything else it creates itself: a group chat of A, B and C, and the direct
//! chat of A and B (on a server where that pair already has one, the
//! `chat_duplication_error` names it and the run goes on with it).

use super::{ensure, int, marker, users_or_record};
use crate::case;
use crate::peer::{Expect, WsPeer};
use crate::report::{need, CaseError};
use crate::spec::Spec;
use crate::{header_refs, Config, Report};
use chat_client::dialects::method_args::call;
use serde_json::{json, Value};

fn erk_is(v: &Value, key: &Value) -> bool {
    v.pointer("/data/event_response_key") == Some(key)
}

fn error_of(kind: &'static str, key: Value) -> impl Fn(&Value) -> bool {
    move |v: &Value| {
        v.pointer("/data/type").and_then(Value::as_str) == Some(kind) && erk_is(v, &key)
    }
}

/// Send `frame` (checked as the client message `key` when given) and expect the
/// `error` push that `is` accepts.
async fn refused(
    p: &mut WsPeer<'_>,
    key: Option<&str>,
    frame: &Value,
    what: &str,
    is: impl Fn(&Value) -> bool,
) -> Result<Value, CaseError> {
    match key {
        Some(k) => p.send_as(k, frame).await?,
        None => p.send(frame).await?,
    }
    p.expect_where("error", what, is).await
}

fn member_ids(chat: &Value) -> Vec<i64> {
    chat.get("users")
        .and_then(Value::as_array)
        .map(|us| us.iter().filter_map(|u| u.get("pk")?.as_i64()).collect())
        .unwrap_or_default()
}

pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    let Some(users) = users_or_record(cfg, 3, report) else {
        return;
    };
    let (ua, ub, uc) = (&users[0], &users[1], &users[2]);
    let t = cfg.timing;
    let h = cfg.headers(None);
    let hr = header_refs(&h);
    let mut peers = Vec::new();
    for label in ["A", "B", "C", "anonymous"] {
        match WsPeer::connect(label, &cfg.url, &hr, spec, t).await {
            Ok(p) => peers.push(p),
            Err(e) => {
                report.record(
                    "(connect)",
                    "open a WebSocket without credentials",
                    Err(CaseError::Fail(format!("{label}: {e}"))),
                );
                return;
            }
        }
    }
    let mut x = peers.pop().expect("four peers were pushed");
    let mut c = peers.pop().expect("four peers were pushed");
    let mut b = peers.pop().expect("four peers were pushed");
    let mut a = peers.pop().expect("four peers were pushed");

    // ------------------------------------------------------------ authorization
    case!(
        report,
        [x],
        "auth",
        "a request on an unauthorized channel: error authorization_error with the key",
        {
            let key = json!("k-unauthorized");
            refused(
                &mut x,
                None,
                &call(
                    "send_message",
                    None,
                    json!({"chat": 1, "text": "x", "event_response_key": key}),
                ),
                "it is not an authorization_error echoing the key",
                error_of("authorization_error", key),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [x],
        "auth",
        "an invalid access_token: error authorization_error",
        {
            let key = json!({"k": "bad-token"});
            refused(
                &mut x,
                None,
                &call(
                    "auth",
                    Some("not.a.token"),
                    json!({"event_response_key": key}),
                ),
                "it is not an authorization_error echoing the key",
                error_of("authorization_error", key),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [x],
        "(frame)",
        "a frame that is not JSON: error field_error",
        {
            x.send_text("{not json").await?;
            x.expect_where(
                "error",
                "it is not a field_error",
                error_of("field_error", Value::Null),
            )
            .await?;
            Ok(())
        }
    );
    x.close().await;

    case!(
        report,
        [a, b, c],
        "auth",
        "a valid token: authenticated echoing the key, the channel is authorized",
        {
            for (p, u, key) in [
                (&mut a, ua, json!("k-auth")),
                (&mut b, ub, json!(2)),
                (&mut c, uc, Value::Null),
            ] {
                let mut args = json!({});
                if !key.is_null() {
                    args = json!({"event_response_key": key});
                }
                p.send_as("auth", &call("auth", Some(&u.token), args))
                    .await?;
                let v = p.expect("authenticated").await?;
                ensure(erk_is(&v, &key), || {
                    format!("{}: the key was not echoed: {v}", p.label)
                })?;
            }
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "(unknown method)",
        "an unknown method: error access_error with the key",
        {
            refused(
                &mut a,
                None,
                &call(
                    "no_such_method",
                    None,
                    json!({"event_response_key": "k-unknown"}),
                ),
                "it is not an access_error echoing the key",
                error_of("access_error", json!("k-unknown")),
            )
            .await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ chats
    let mut group: Option<i64> = None;
    case!(
        report,
        [a, b, c],
        "create_chat",
        "a group: chat_created with the key to the creator, new_chat to the others",
        {
            let key = json!("k-create");
            a.send_as("create_chat", &call("create_chat", None, json!({"users": [ub.id, uc.id], "title": "conformance group", "event_response_key": key}))).await?;
            let v = a.expect("chat_created").await?;
            ensure(erk_is(&v, &key), || format!("the key was not echoed: {v}"))?;
            let id = int(&v, "/data/chat/id")?;
            let mut members = member_ids(&v["data"]["chat"]);
            members.sort_unstable();
            let mut want = vec![ua.id, ub.id, uc.id];
            want.sort_unstable();
            ensure(members == want, || {
                format!("members {members:?}, expected {want:?}")
            })?;
            for p in [&mut b, &mut c] {
                p.expect_where("new_chat", "it names another chat", |v| {
                    v.pointer("/data/chat/id").and_then(Value::as_i64) == Some(id)
                })
                .await?;
            }
            group = Some(id);
            Ok(())
        }
    );
    let mut direct: Option<i64> = None;
    case!(
        report,
        [a, b, c],
        "create_chat",
        "a direct chat: chat_created to the creator, new_chat to the other user",
        {
            a.send_as(
                "create_chat",
                &call("create_chat", None, json!({"users": [ub.id]})),
            )
            .await?;
            // On a server with history the pair may already have its chat: then the
            // duplication error names it, nobody else is told, and the run uses it.
            let (kind, v) = a
                .expect_one_of(
                    &["chat_created", "error"],
                    "it is neither chat_created nor chat_duplication_error",
                    |v| {
                        v["type"] == "chat_created"
                            || v.pointer("/data/type").and_then(Value::as_str)
                                == Some("chat_duplication_error")
                    },
                )
                .await?;
            if kind == "error" {
                direct = Some(int(&v, "/data/chat_id")?);
                return Err(CaseError::Skip(format!(
                    "A and B already had direct chat {direct:?}; using it"
                )));
            }
            let id = int(&v, "/data/chat/id")?;
            b.expect_where("new_chat", "it names another chat", |v| {
                v.pointer("/data/chat/id").and_then(Value::as_i64) == Some(id)
            })
            .await?;
            direct = Some(id);
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "create_chat",
        "the same pair again: error chat_duplication_error with chat_id",
        {
            let dm = need(&direct, "create_chat direct")?;
            a.send_as(
                "create_chat",
                &call(
                    "create_chat",
                    None,
                    json!({"users": [ub.id], "event_response_key": 9}),
                ),
            )
            .await?;
            let v = a
                .expect_where(
                    "error",
                    "it is not a chat_duplication_error echoing the key",
                    error_of("chat_duplication_error", json!(9)),
                )
                .await?;
            ensure(
                v.pointer("/data/chat_id").and_then(Value::as_i64) == Some(dm),
                || format!("chat_id is not {dm}: {v}"),
            )?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "create_chat",
        "no other user: error field_error",
        {
            a.send_as(
                "create_chat",
                &call(
                    "create_chat",
                    None,
                    json!({"users": [], "event_response_key": "k-empty"}),
                ),
            )
            .await?;
            a.expect_where(
                "error",
                "it is not a field_error echoing the key",
                error_of("field_error", json!("k-empty")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "update_chat",
        "rename: every member, the caller included, gets chat_updated",
        {
            let g = need(&group, "create_chat group")?;
            a.send_as(
                "update_chat",
                &call("update_chat", None, json!({"chat": g, "title": "renamed"})),
            )
            .await?;
            for p in [&mut a, &mut b, &mut c] {
                p.expect_where("chat_updated", "the title is not the new one", |v| {
                    v.pointer("/data/chat/title").and_then(Value::as_str) == Some("renamed")
                })
                .await?;
            }
            Ok(())
        }
    );
    case!(
        report,
        [c],
        "update_chat",
        "a chat the caller is not in: error access_error",
        {
            let dm = need(&direct, "create_chat direct")?;
            c.send_as(
                "update_chat",
                &call(
                    "update_chat",
                    None,
                    json!({"chat": dm, "title": "x", "event_response_key": "k-upd"}),
                ),
            )
            .await?;
            c.expect_where(
                "error",
                "it is not an access_error echoing the key",
                error_of("access_error", json!("k-upd")),
            )
            .await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ messages
    let mut text_msg: Option<i64> = None;
    case!(
        report,
        [a, b, c],
        "send_message",
        "text: message_created with the key to the author, new_message to the others",
        {
            let g = need(&group, "create_chat group")?;
            let text = marker("method-args text");
            a.send_as(
                "send_message",
                &call(
                    "send_message",
                    None,
                    json!({"chat": g, "text": text, "event_response_key": {"n": 1}}),
                ),
            )
            .await?;
            let v = a.expect("message_created").await?;
            ensure(erk_is(&v, &json!({"n": 1})), || {
                format!("the key was not echoed: {v}")
            })?;
            ensure(
                v.pointer("/data/message/text").and_then(Value::as_str) == Some(text.as_str()),
                || format!("the text changed: {v}"),
            )?;
            let id = int(&v, "/data/message/id")?;
            for p in [&mut b, &mut c] {
                p.expect_where("new_message", "it is another message", |v| {
                    v.pointer("/data/message/id").and_then(Value::as_i64) == Some(id)
                })
                .await?;
            }
            text_msg = Some(id);
            Ok(())
        }
    );
    case!(
        report,
        [a, b],
        "send_message",
        "a file: attached_files carries an absolute URL, to author and member",
        {
            let dm = need(&direct, "create_chat direct")?;
            a.send_as("send_message", &call("send_message", None, json!({"chat": dm, "text": "with a file", "files": [{"name": "hello.txt", "data": "aGVsbG8="}]}))).await?;
            let has_file = |v: &Value| {
                v.pointer("/data/message/attached_files/0/file")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
            };
            a.expect_where("message_created", "it has no attached file URL", has_file)
                .await?;
            b.expect_where("new_message", "it has no attached file URL", has_file)
                .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "send_message",
        "neither text nor files: error field_error",
        {
            let g = need(&group, "create_chat group")?;
            a.send_as(
                "send_message",
                &call(
                    "send_message",
                    None,
                    json!({"chat": g, "text": "", "event_response_key": "k-blank"}),
                ),
            )
            .await?;
            a.expect_where(
                "error",
                "it is not a field_error echoing the key",
                error_of("field_error", json!("k-blank")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "send_message",
        "args.chat missing: error field_error",
        {
            refused(
                &mut a,
                None,
                &call(
                    "send_message",
                    None,
                    json!({"text": "x", "event_response_key": "k-nochat"}),
                ),
                "it is not a field_error echoing the key",
                error_of("field_error", json!("k-nochat")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [c],
        "send_message",
        "a chat the caller is not in: error access_error",
        {
            let dm = need(&direct, "create_chat direct")?;
            refused(
                &mut c,
                Some("send_message"),
                &call(
                    "send_message",
                    None,
                    json!({"chat": dm, "text": "intruder", "event_response_key": "k-out"}),
                ),
                "it is not an access_error echoing the key",
                error_of("access_error", json!("k-out")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "read_messages",
        "the reader gets messages_read; the others messages_updated is_read",
        {
            let g = need(&group, "create_chat group")?;
            let m = need(&text_msg, "send_message text")?;
            b.send_as(
                "read_messages",
                &call("read_messages", None, json!({"chat": g})),
            )
            .await?;
            b.expect_where("messages_read", "it names another chat", |v| {
                v.pointer("/data/chat").and_then(Value::as_i64) == Some(g)
            })
            .await?;
            let read = move |v: &Value| {
                v.pointer("/data/updates")
                    .and_then(Value::as_array)
                    .is_some_and(|us| {
                        us.iter().any(|u| {
                            u.get("id").and_then(Value::as_i64) == Some(m)
                                && u.pointer("/fields/is_read") == Some(&json!(true))
                        })
                    })
            };
            a.expect_where(
                "messages_updated",
                "it does not mark the message read",
                read,
            )
            .await?;
            c.expect_where(
                "messages_updated",
                "it does not mark the message read",
                read,
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [b],
        "read_messages",
        "args.chat missing: error field_error",
        {
            b.send(&call(
                "read_messages",
                None,
                json!({"event_response_key": "k-read"}),
            ))
            .await?;
            b.expect_where(
                "error",
                "it is not a field_error echoing the key",
                error_of("field_error", json!("k-read")),
            )
            .await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ members
    case!(
        report,
        [b],
        "remove_from_chat",
        "removing others without being the creator: error access_error",
        {
            let g = need(&group, "create_chat group")?;
            refused(
                &mut b,
                Some("remove_from_chat"),
                &call(
                    "remove_from_chat",
                    None,
                    json!({"users": [ua.id], "chat": g, "event_response_key": "k-rm"}),
                ),
                "it is not an access_error echoing the key",
                error_of("access_error", json!("k-rm")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "remove_from_chat",
        "the creator removes C: user_removed_successful, user_removed, chat_removed",
        {
            let g = need(&group, "create_chat group")?;
            a.send_as(
                "remove_from_chat",
                &call(
                    "remove_from_chat",
                    None,
                    json!({"users": [uc.id], "chat": g, "event_response_key": "k-rm2"}),
                ),
            )
            .await?;
            let v = a.expect("user_removed_successful").await?;
            ensure(
                erk_is(&v, &json!("k-rm2")) && v.pointer("/data/user_ids") == Some(&json!([uc.id])),
                || format!("wrong key or user_ids: {v}"),
            )?;
            let v = b.expect("user_removed").await?;
            ensure(v.pointer("/data/user_ids") == Some(&json!([uc.id])), || {
                format!("wrong user_ids: {v}")
            })?;
            let v = c.expect("chat_removed").await?;
            ensure(!member_ids(&v["data"]["chat"]).contains(&uc.id), || {
                format!("the removed user is still listed: {v}")
            })?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "add_to_chat",
        "the creator adds C back: user_added_successful, user_added, new_chat",
        {
            let g = need(&group, "create_chat group")?;
            a.send_as(
                "add_to_chat",
                &call(
                    "add_to_chat",
                    None,
                    json!({"users": [uc.id], "chat": g, "event_response_key": "k-add"}),
                ),
            )
            .await?;
            let v = a.expect("user_added_successful").await?;
            ensure(
                erk_is(&v, &json!("k-add")) && v.pointer("/data/user_ids") == Some(&json!([uc.id])),
                || format!("wrong key or user_ids: {v}"),
            )?;
            let v = b.expect("user_added").await?;
            ensure(v.pointer("/data/user_ids") == Some(&json!([uc.id])), || {
                format!("wrong user_ids: {v}")
            })?;
            c.expect_where("new_chat", "it names another chat", |v| {
                v.pointer("/data/chat/id").and_then(Value::as_i64) == Some(g)
            })
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "add_to_chat",
        "a direct chat's users cannot change: error access_error",
        {
            let dm = need(&direct, "create_chat direct")?;
            a.send_as(
                "add_to_chat",
                &call(
                    "add_to_chat",
                    None,
                    json!({"users": [uc.id], "chat": dm, "event_response_key": "k-add-dm"}),
                ),
            )
            .await?;
            a.expect_where(
                "error",
                "it is not an access_error echoing the key",
                error_of("access_error", json!("k-add-dm")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "add_to_chat",
        "users missing: error field_error",
        {
            let g = need(&group, "create_chat group")?;
            refused(
                &mut a,
                None,
                &call(
                    "add_to_chat",
                    None,
                    json!({"chat": g, "event_response_key": "k-add-nousers"}),
                ),
                "it is not a field_error echoing the key",
                error_of("field_error", json!("k-add-nousers")),
            )
            .await?;
            Ok(())
        }
    );
    report.notes.push(
        "method-args: system_error (the store failing) cannot be provoked from the wire; messages_updated for edits and deletions needs another dialect".into(),
    );
    a.close().await;
    b.close().await;
    c.close().await;
}
