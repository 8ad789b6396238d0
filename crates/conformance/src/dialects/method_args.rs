//! method-args: `{method, access_token, args}` in, `{type, data}` out.
//!
//! Needs three users (a group chat has at least two members besides its creator).
//! Everything else it creates itself: a group chat of A, B and C, and the direct
//! chat of A and B (on a server where that pair already has one, the
//! `chat_duplication_error` names it and the run goes on with it).

use super::{connect_all, ensure, int, marker, users_or_record};
use crate::case;
use crate::peer::{Expect, Outgoing, WsPeer};
use crate::report::{need, CaseError, CaseResult};
use crate::spec::Spec;
use crate::{header_refs, Config, Report};
use chat_client::dialects::method_args::call;
use serde_json::{json, Value};
use Outgoing::{Checked, Unchecked};

fn erk_is(v: &Value, key: &Value) -> bool {
    v.pointer("/data/event_response_key") == Some(key)
}

fn error_of(kind: &'static str, key: Value) -> impl Fn(&Value) -> bool {
    move |v: &Value| {
        v.pointer("/data/type").and_then(Value::as_str) == Some(kind) && erk_is(v, &key)
    }
}

/// Send the request `frame` (`how`: checked as the client message of its method, or
/// as it is) and expect the `error` of type `kind` echoing its `event_response_key`.
async fn refusal(
    p: &mut WsPeer<'_>,
    how: Outgoing,
    kind: &'static str,
    frame: &Value,
) -> Result<Value, CaseError> {
    let method = frame["method"].as_str().unwrap_or_default();
    p.send_outgoing(how, method, frame).await?;
    let key = frame["args"]["event_response_key"].clone();
    let article = if kind.starts_with('a') { "an" } else { "a" };
    let what = format!("it is not {article} {kind} echoing the key");
    p.expect_where("error", &what, error_of(kind, key)).await
}

/// [`refusal`], as a case's whole check.
async fn refused(
    p: &mut WsPeer<'_>,
    how: Outgoing,
    kind: &'static str,
    frame: &Value,
) -> CaseResult {
    refusal(p, how, kind, frame).await?;
    Ok(())
}

/// Send `method` with `args` (no token), checked against the spec.
async fn send(p: &mut WsPeer<'_>, method: &str, args: Value) -> CaseResult {
    p.send_as(method, &call(method, None, args)).await
}

/// The `new_chat` push about chat `id` to `p`.
async fn told_of_chat(p: &mut WsPeer<'_>, id: i64) -> CaseResult {
    p.expect_where("new_chat", "it names another chat", |v| {
        v.pointer("/data/chat/id").and_then(Value::as_i64) == Some(id)
    })
    .await?;
    Ok(())
}

/// `a` changes chat `g`'s members by `method` (key `erk`, the user `user`): `a` gets
/// `<change>_successful` echoing the key, `b` gets `<change>`, both naming the user.
async fn members_changed(
    [a, b]: [&mut WsPeer<'_>; 2],
    (method, change): (&str, &str),
    g: i64,
    user: i64,
    erk: &str,
) -> CaseResult {
    let args = json!({"users": [user], "chat": g, "event_response_key": erk});
    send(a, method, args).await?;
    let v = a.expect(&format!("{change}_successful")).await?;
    ensure(
        erk_is(&v, &json!(erk)) && v.pointer("/data/user_ids") == Some(&json!([user])),
        || format!("wrong key or user_ids: {v}"),
    )?;
    let v = b.expect(change).await?;
    ensure(v.pointer("/data/user_ids") == Some(&json!([user])), || {
        format!("wrong user_ids: {v}")
    })?;
    Ok(())
}

fn member_ids(chat: &Value) -> Vec<i64> {
    chat.get("users")
        .and_then(Value::as_array)
        .map(|us| us.iter().filter_map(|u| u.get("pk")?.as_i64()).collect())
        .unwrap_or_default()
}

pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    let Some([ua, ub, uc]) = users_or_record(cfg, report) else {
        return;
    };
    let t = cfg.timing;
    let h = cfg.headers(None);
    let hr = header_refs(&h);
    let what = "open a WebSocket without credentials";
    let labels = ["A", "B", "C", "anonymous"];
    let open = async |label: &&str| WsPeer::connect(label, &cfg.url, &hr, spec, t).await;
    let Some([mut a, mut b, mut c, mut x]) = connect_all(labels, |l| *l, what, report, open).await
    else {
        return;
    };
    // What earlier cases hand to later ones: the chats, the message.
    let mut group: Option<i64> = None;
    let mut direct: Option<i64> = None;
    let mut text_msg: Option<i64> = None;

    // ------------------------------------------------------------ authorization
    let unauthorized = json!({"chat": 1, "text": "x", "event_response_key": "k-unauthorized"});
    let bad_token = json!({"event_response_key": {"k": "bad-token"}});
    for (case_name, frame) in [
        (
            "a request on an unauthorized channel: error authorization_error with the key",
            call("send_message", None, unauthorized),
        ),
        (
            "an invalid access_token: error authorization_error",
            call("auth", Some("not.a.token"), bad_token),
        ),
    ] {
        case!(report, [x], "auth", case_name, {
            refused(&mut x, Unchecked, "authorization_error", &frame).await
        });
    }
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
                (&mut a, &ua, json!("k-auth")),
                (&mut b, &ub, json!(2)),
                (&mut c, &uc, Value::Null),
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
            let unknown = call(
                "no_such_method",
                None,
                json!({"event_response_key": "k-unknown"}),
            );
            refused(&mut a, Unchecked, "access_error", &unknown).await
        }
    );

    // ------------------------------------------------------------ chats
    case!(
        report,
        [a, b, c],
        "create_chat",
        "a group: chat_created with the key to the creator, new_chat to the others",
        {
            let key = json!("k-create");
            let args = json!({"users": [ub.id, uc.id], "title": "conformance group", "event_response_key": key});
            send(&mut a, "create_chat", args).await?;
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
                told_of_chat(p, id).await?;
            }
            group = Some(id);
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "create_chat",
        "a direct chat: chat_created to the creator, new_chat to the other user",
        {
            send(&mut a, "create_chat", json!({"users": [ub.id]})).await?;
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
            told_of_chat(&mut b, id).await?;
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
            let again = call(
                "create_chat",
                None,
                json!({"users": [ub.id], "event_response_key": 9}),
            );
            let v = refusal(&mut a, Checked, "chat_duplication_error", &again).await?;
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
            let nobody = call(
                "create_chat",
                None,
                json!({"users": [], "event_response_key": "k-empty"}),
            );
            refused(&mut a, Checked, "field_error", &nobody).await
        }
    );
    case!(
        report,
        [a, b, c],
        "update_chat",
        "rename: every member, the caller included, gets chat_updated",
        {
            let g = need(&group, "create_chat group")?;
            send(
                &mut a,
                "update_chat",
                json!({"chat": g, "title": "renamed"}),
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
            let args = json!({"chat": dm, "title": "x", "event_response_key": "k-upd"});
            refused(
                &mut c,
                Checked,
                "access_error",
                &call("update_chat", None, args),
            )
            .await
        }
    );

    // ------------------------------------------------------------ messages
    case!(
        report,
        [a, b, c],
        "send_message",
        "text: message_created with the key to the author, new_message to the others",
        {
            let g = need(&group, "create_chat group")?;
            let text = marker("method-args text");
            let args = json!({"chat": g, "text": text, "event_response_key": {"n": 1}});
            send(&mut a, "send_message", args).await?;
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
            let file = json!({"name": "hello.txt", "data": "aGVsbG8="});
            send(
                &mut a,
                "send_message",
                json!({"chat": dm, "text": "with a file", "files": [file]}),
            )
            .await?;
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
    // Refused messages: (case, sent by C, how, the error, the request's args).
    for (case_name, by_c, how, kind, args) in [
        (
            "neither text nor files: error field_error",
            false,
            Checked,
            "field_error",
            need(&group, "create_chat group")
                .map(|g| json!({"chat": g, "text": "", "event_response_key": "k-blank"})),
        ),
        (
            "args.chat missing: error field_error",
            false,
            Unchecked,
            "field_error",
            Ok(json!({"text": "x", "event_response_key": "k-nochat"})),
        ),
        (
            "a chat the caller is not in: error access_error",
            true,
            Checked,
            "access_error",
            need(&direct, "create_chat direct")
                .map(|dm| json!({"chat": dm, "text": "intruder", "event_response_key": "k-out"})),
        ),
    ] {
        let p = if by_c { &mut c } else { &mut a };
        case!(report, [p], "send_message", case_name, {
            refused(p, how, kind, &call("send_message", None, args?)).await
        });
    }
    case!(
        report,
        [a, b, c],
        "read_messages",
        "the reader gets messages_read; the others messages_updated is_read",
        {
            let g = need(&group, "create_chat group")?;
            let m = need(&text_msg, "send_message text")?;
            send(&mut b, "read_messages", json!({"chat": g})).await?;
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
            let unread = call(
                "read_messages",
                None,
                json!({"event_response_key": "k-read"}),
            );
            refused(&mut b, Unchecked, "field_error", &unread).await
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
            let args = json!({"users": [ua.id], "chat": g, "event_response_key": "k-rm"});
            refused(
                &mut b,
                Checked,
                "access_error",
                &call("remove_from_chat", None, args),
            )
            .await
        }
    );
    case!(
        report,
        [a, b, c],
        "remove_from_chat",
        "the creator removes C: user_removed_successful, user_removed, chat_removed",
        {
            let g = need(&group, "create_chat group")?;
            let removal = ("remove_from_chat", "user_removed");
            members_changed([&mut a, &mut b], removal, g, uc.id, "k-rm2").await?;
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
            let addition = ("add_to_chat", "user_added");
            members_changed([&mut a, &mut b], addition, g, uc.id, "k-add").await?;
            told_of_chat(&mut c, g).await
        }
    );
    // Refused member changes: (case, how, the error, the request's args).
    for (case_name, how, kind, args) in [
        (
            "a direct chat's users cannot change: error access_error",
            Checked,
            "access_error",
            need(&direct, "create_chat direct")
                .map(|dm| json!({"users": [uc.id], "chat": dm, "event_response_key": "k-add-dm"})),
        ),
        (
            "users missing: error field_error",
            Unchecked,
            "field_error",
            need(&group, "create_chat group")
                .map(|g| json!({"chat": g, "event_response_key": "k-add-nousers"})),
        ),
    ] {
        case!(report, [a], "add_to_chat", case_name, {
            refused(&mut a, how, kind, &call("add_to_chat", None, args?)).await
        });
    }
    report.notes.push(
        "method-args: system_error (the store failing) cannot be provoked from the wire; messages_updated for edits and deletions needs another dialect".into(),
    );
    a.close().await;
    b.close().await;
    c.close().await;
}
