//! socketio-pubsub: Socket.IO at `/ws/`, namespace `/chat`, token in the handshake
//! `auth`, answers through acks, users named by username.
//!
//! Needs two users whose usernames are known (the tokens' `username` claims, or
//! `--username`). Their conversation is created by the first `send-message`.
//! Presence pushes (`user-online`/`user-offline`) may arrive whenever one of them
//! connects somewhere, so they are validated and otherwise ignored, except in the
//! case that provokes them. Media needs an HTTP upload, which is outside the wire
//! protocol, so only the refusal of a foreign media URL is checked.

use super::{ensure, error_is, has_all, int, lists, marker, token_peers, users_or_record};
use crate::case;
use crate::peer::{Expect, SioPeer};
use crate::report::{need, CaseError};
use crate::spec::Spec;
use crate::{header_refs, Config, Report};
use chat_client::dialects::socketio_pubsub::NAMESPACE;
use serde_json::{json, Value};

const PRESENCE: &[&str] = &["user_online", "user_offline"];

fn is_error(code: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v.get("error").and_then(Value::as_str) == Some(code)
}

/// Whether a push is about `user` (a username).
fn about(user: &str) -> impl Fn(&Value) -> bool + '_ {
    move |p: &Value| p.get("user") == Some(&json!(user))
}

async fn call_error(
    p: &mut SioPeer<'_>,
    event: &str,
    payload: &Value,
    code: &'static str,
) -> Result<(), CaseError> {
    let v = p.call(event, Some(payload), "error").await?;
    error_is(&v, code)
}

pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    let Some([ua, ub]) = users_or_record(cfg, report) else {
        return;
    };
    let (Some(an), Some(bn)) = (ua.username.clone(), ub.username.clone()) else {
        report.record(
            "(setup)",
            "usernames of both users",
            Err(CaseError::Fail(
                "the tokens carry no `username` claim; pass --username for each".into(),
            )),
        );
        return;
    };
    let t = cfg.timing;
    let h = cfg.headers(None);
    let hr = header_refs(&h);

    for (case_name, auth) in [
        ("without a token: auth-failed, then a disconnect", None),
        (
            "with an invalid token: auth-failed, then a disconnect",
            Some(json!({"token": "not.a.token"})),
        ),
    ] {
        case!(report, [], "(connect)", case_name, {
            let mut p = SioPeer::connect(
                "anonymous",
                &cfg.url,
                NAMESPACE,
                auth.as_ref(),
                &hr,
                spec,
                t,
            )
            .await?;
            p.expect("auth_failed").await?;
            p.expect_disconnect().await?;
            Ok(())
        });
    }

    let what = "connect to /chat with auth {token}";
    let peers = token_peers(cfg, spec, NAMESPACE, [&ua, &ub], PRESENCE, what, report);
    let Some([mut a, mut b]) = peers.await else {
        return;
    };

    case!(
        report,
        [a, b],
        "fetch-users",
        "every user, A and B among them",
        {
            let v = a
                .call_as("fetch_users", &json!({}), "fetch_users_reply")
                .await?;
            for name in [&an, &bn] {
                let listed = lists(&v, "users", "username", &json!(name));
                ensure(listed, || format!("{name} is not listed: {v}"))?;
            }
            Ok(())
        }
    );
    let mut chat: Option<i64> = None;
    case!(
        report,
        [a, b],
        "send-message",
        "ack {chat}; B gets chat and unread-chats-count",
        {
            let text = marker("socketio-pubsub");
            let v = a
                .call_as(
                    "send_message",
                    &json!({"message": text, "user": bn}),
                    "send_message_reply",
                )
                .await?;
            let want = [
                ("/chat/sender", json!(an)),
                ("/chat/recipient", json!(bn)),
                ("/chat/message", json!(text)),
            ];
            ensure(has_all(&v, &want), || format!("wrong chat: {v}"))?;
            let id = int(&v, "/chat/id")?;
            b.expect_where("chat_push", "it is another chat", |p| {
                p.pointer("/chat/id") == Some(&json!(id))
            })
            .await?;
            b.expect_where("unread_chats_count_push", "it is not about A", about(&an))
                .await?;
            chat = Some(id);
            Ok(())
        }
    );
    let nobody = format!("nobody-{}", marker("u").len());
    let elsewhere = ["https://elsewhere.example/cat.png"];
    for (case_name, payload, code) in [
        (
            "an unknown username: ack error not_found",
            json!({"message": "x", "user": nobody}),
            "not_found",
        ),
        (
            "to oneself: ack error invalid",
            json!({"message": "x", "user": an}),
            "invalid",
        ),
        (
            "no text and no media: ack error invalid",
            json!({"message": "", "user": bn}),
            "invalid",
        ),
        (
            "a media URL that is not this server's upload: ack error invalid",
            json!({"message": "x", "user": bn, "media": elsewhere}),
            "invalid",
        ),
    ] {
        case!(report, [a, b], "send-message", case_name, {
            call_error(&mut a, "send-message", &payload, code).await
        });
    }
    case!(
        report,
        [a, b],
        "send-message",
        "a failure without an ack: an error event",
        {
            a.emit("send-message", Some(&json!({"message": "x", "user": an})))
                .await?;
            a.expect_where("error", "it is not `invalid`", is_error("invalid"))
                .await?;
            Ok(())
        }
    );
    for (key, event) in [
        (
            "fetch_conversation_with_user",
            "fetch-conversation-with-user",
        ),
        ("fetch_chats_with_user", "fetch-chats-with-user"),
    ] {
        case!(
            report,
            [a, b],
            event,
            "B's conversation with A contains the chat",
            {
                let id = need(&chat, "send-message")?;
                let v = b
                    .call_as(key, &json!({"user": an}), "conversation_reply")
                    .await?;
                let found = lists(&v, "chats", "id", &json!(id));
                ensure(found, || {
                    format!("chat {id} is not in the conversation: {v}")
                })?;
                Ok(())
            }
        );
    }
    case!(
        report,
        [a, b],
        "fetch-conversation-with-user",
        "an unknown username: ack error not_found",
        {
            call_error(
                &mut b,
                "fetch-conversation-with-user",
                &json!({"user": "nobody-at-all-xyz"}),
                "not_found",
            )
            .await
        }
    );
    for (case_name, payload) in [
        ("B has unread chats from A", json!({"user": an})),
        (
            "without a user: the total over all conversations",
            json!({}),
        ),
    ] {
        case!(report, [a, b], "fetch-unread-chats-count", case_name, {
            need(&chat, "send-message")?;
            let v = b
                .call_as(
                    "fetch_unread_chats_count",
                    &payload,
                    "unread_chats_count_reply",
                )
                .await?;
            ensure(
                v.get("unreadChatsCount")
                    .and_then(Value::as_i64)
                    .is_some_and(|n| n >= 1),
                || format!("no unread chat: {v}"),
            )?;
            Ok(())
        });
    }
    let mut read = false;
    // B's count push is left queued for the next case (which settles B): the seed
    // promises read-chat to the sender, not when unread-chats-count is pushed.
    case!(report, [a], "read-chat", "ack {}; A gets read-chat", {
        let id = need(&chat, "send-message")?;
        b.call_as("read_chat", &json!({"id": id}), "empty_reply")
            .await?;
        // Earlier unread chats of the conversation (from other dialects or earlier
        // runs) become read too, each with its own push; this chat's must come.
        a.expect_eventually("read_chat_push", "B reads this chat", |p| {
            p.get("id") == Some(&json!(id)) && p.get("user") == Some(&json!(bn))
        })
        .await?;
        read = true;
        Ok(())
    });
    case!(
        report,
        [a, b],
        "read-chat",
        "B gets an updated unread-chats-count",
        {
            need(&read.then_some(()), "read-chat")?;
            b.expect_where("unread_chats_count_push", "it is not about A", about(&an))
                .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b],
        "read-chat",
        "a chat that does not exist: ack error not_found",
        {
            call_error(
                &mut b,
                "read-chat",
                &json!({"id": i64::MAX - 9}),
                "not_found",
            )
            .await
        }
    );
    for (event, key, push, case_name) in [
        (
            "wait-for-user",
            "wait_for_user",
            "user_join",
            "ack {}; B gets user-join about A",
        ),
        (
            "stop-waiting-for-user",
            "stop_waiting_for_user",
            "user_leave",
            "ack {}; B gets user-leave about A",
        ),
    ] {
        case!(report, [a, b], event, case_name, {
            a.call_as(key, &json!({"user": bn}), "empty_reply").await?;
            b.expect_where(push, "it is not about A", about(&an))
                .await?;
            Ok(())
        });
    }
    case!(
        report,
        [a, b],
        "(unknown event)",
        "an event that is not in the API: ack error unknown_event",
        { call_error(&mut a, "fetch-everything", &json!({}), "unknown_event").await }
    );
    // Presence: B leaves and comes back; A shares a conversation with B.
    let auth_b = json!({"token": ub.token});
    b.close().await;
    a.ignore(&["user_online"]);
    case!(
        report,
        [a],
        "(presence)",
        "B's last connection closes: A gets user-offline about B",
        {
            a.expect_where("user_offline", "it is not about B", about(&bn))
                .await?;
            Ok(())
        }
    );
    a.ignore(&["user_offline"]);
    let mut b2: Option<SioPeer<'_>> = None;
    case!(
        report,
        [a],
        "(presence)",
        "B connects again: A gets user-online about B",
        {
            let p = SioPeer::connect("B", &cfg.url, NAMESPACE, Some(&auth_b), &hr, spec, t).await?;
            b2 = Some(p);
            a.expect_where("user_online", "it is not about B", about(&bn))
                .await?;
            Ok(())
        }
    );
    a.close().await;
    if let Some(p) = b2 {
        p.close().await;
    }
}
