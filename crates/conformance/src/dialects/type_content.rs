//! type-content: `{type, content}` both ways, `{error}` for refusals, token in the
//! upgrade request.
//!
//! Needs three users: A and B talk in their direct chat (which the first message
//! creates), C is the outsider whose attempts must fail. Project chats can only be
//! made by an administrator, so the project cases run only with `--project N` (a
//! project whose chat has A and B as members and not C).
//!
//! Presence pushes (`set_online`/`set_offline`) may arrive whenever a user who shares
//! a chat connects or disconnects, so they are validated and otherwise ignored, except
//! in the cases that provoke them.

use super::{bearer_peers, ensure, int, marker, refused_with_403, users_or_record};
use crate::case;
use crate::peer::Expect;
use crate::report::{need, CaseError};
use crate::spec::Spec;
use crate::{Config, Report};
use chat_client::dialects::type_content::{direct_chat_id, event, new_message};
use serde_json::{json, Value};

const PRESENCE: &[&str] = &["push_set_online", "push_set_offline"];

fn content_is(field: &'static str, want: Value) -> impl Fn(&Value) -> bool {
    move |v: &Value| v.pointer(&format!("/content/{field}")) == Some(&want)
}

pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    let Some(users) = users_or_record(cfg, 3, report) else {
        return;
    };
    let (ua, ub, uc) = (&users[0], &users[1], &users[2]);

    case!(
        report,
        [],
        "(handshake)",
        "an upgrade without a token is refused with HTTP 403",
        { refused_with_403(cfg, &cfg.url, None).await }
    );
    case!(
        report,
        [],
        "(handshake)",
        "an upgrade with an invalid token is refused with HTTP 403",
        { refused_with_403(cfg, &cfg.url, Some("not.a.token")).await }
    );

    let Some(mut peers) = bearer_peers(
        cfg,
        spec,
        &[ua, ub, uc],
        PRESENCE,
        "open a WebSocket with Authorization: Bearer",
        report,
    )
    .await
    else {
        return;
    };
    let mut c = peers.pop().expect("three peers");
    let mut b = peers.pop().expect("three peers");
    let mut a = peers.pop().expect("three peers");
    let dm = json!(direct_chat_id(ua.id, ub.id));

    // ------------------------------------------------------------ new_message
    let mut first: Option<i64> = None;
    case!(
        report,
        [a, b, c],
        "new_message",
        "direct chat: sender and recipient both get new_message",
        {
            let text = marker("type-content direct");
            a.send_as(
                "client_new_message",
                &new_message("direct", dm.clone(), &text, None),
            )
            .await?;
            let v = a
                .expect_where(
                    "push_new_message",
                    "it is not the message sent",
                    content_is("text", json!(text)),
                )
                .await?;
            let id = int(&v, "/content/message_id")?;
            ensure(
                v.pointer("/content/author_id") == Some(&json!(ua.id))
                    && v.pointer("/content/chat_id") == Some(&dm),
                || format!("wrong author or chat: {v}"),
            )?;
            b.expect_where(
                "push_new_message",
                "it is another message",
                content_is("message_id", json!(id)),
            )
            .await?;
            first = Some(id);
            Ok(())
        }
    );
    let mut second: Option<i64> = None;
    case!(
        report,
        [a, b, c],
        "new_message",
        "reply_to: the push carries it",
        {
            let m = need(&first, "new_message direct")?;
            a.send_as(
                "client_new_message",
                &new_message("direct", dm.clone(), "a reply", Some(m)),
            )
            .await?;
            let v = a
                .expect_where(
                    "push_new_message",
                    "reply_to is not the replied message",
                    content_is("reply_to", json!(m)),
                )
                .await?;
            let id = int(&v, "/content/message_id")?;
            b.expect_where(
                "push_new_message",
                "it is another message",
                content_is("message_id", json!(id)),
            )
            .await?;
            second = Some(id);
            Ok(())
        }
    );
    case!(report, [a], "new_message", "reply_to missing: error", {
        a.send(&event(
            "new_message",
            json!({"chat_type": "direct", "chat_id": dm, "message": "x"}),
        ))
        .await?;
        a.expect("error").await?;
        Ok(())
    });
    case!(
        report,
        [a],
        "new_message",
        "a direct chat_id with the larger id first: error",
        {
            let reversed = format!("{}_{}", ua.id.max(ub.id), ua.id.min(ub.id));
            a.send(&new_message("direct", json!(reversed), "x", None))
                .await?;
            a.expect("error").await?;
            Ok(())
        }
    );
    case!(report, [a], "new_message", "empty text: error", {
        a.send(&new_message("direct", dm.clone(), "", None)).await?;
        a.expect("error").await?;
        Ok(())
    });
    case!(
        report,
        [a, b, c],
        "new_message",
        "the direct chat of two other users: error",
        {
            c.send_as(
                "client_new_message",
                &new_message("direct", dm.clone(), "intruder", None),
            )
            .await?;
            c.expect("error").await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ typing
    case!(
        report,
        [a, b, c],
        "user_typing",
        "the other member gets user_typing with end_time; the typist nothing",
        {
            a.send_as(
                "client_user_typing",
                &event("user_typing", json!({"chat_type": "direct", "chat_id": dm})),
            )
            .await?;
            b.expect_where("push_user_typing", "it is not A typing in the chat", |v| {
                v.pointer("/content/user_id") == Some(&json!(ua.id))
                    && v.pointer("/content/chat_id") == Some(&dm)
            })
            .await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ reads
    case!(
        report,
        [a, b, c],
        "message_read",
        "every member, the reader included, gets message_read",
        {
            let m = need(&second, "new_message reply_to")?;
            b.send_as(
                "client_message_read",
                &event(
                    "message_read",
                    json!({"chat_type": "direct", "chat_id": dm, "message_id": m}),
                ),
            )
            .await?;
            for p in [&mut a, &mut b] {
                p.expect_where(
                    "push_message_read",
                    "it is not B's read of the message",
                    |v| {
                        v.pointer("/content/user_id") == Some(&json!(ub.id))
                            && v.pointer("/content/message_id") == Some(&json!(m))
                    },
                )
                .await?;
            }
            Ok(())
        }
    );
    case!(
        report,
        [b],
        "message_read",
        "a message that is not in the chat: error",
        {
            b.send(&event(
                "message_read",
                json!({"chat_type": "direct", "chat_id": dm, "message_id": i64::MAX - 7}),
            ))
            .await?;
            b.expect("error").await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ deletes
    case!(
        report,
        [a, b, c],
        "delete_message",
        "someone else's message: error",
        {
            let m = need(&first, "new_message direct")?;
            b.send_as(
                "client_delete_message",
                &event(
                    "delete_message",
                    json!({"chat_type": "direct", "chat_id": dm, "message_id": m}),
                ),
            )
            .await?;
            b.expect("error").await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "delete_message",
        "the author deletes: every member gets delete_message",
        {
            let m = need(&first, "new_message direct")?;
            a.send_as(
                "client_delete_message",
                &event(
                    "delete_message",
                    json!({"chat_type": "direct", "chat_id": dm, "message_id": m}),
                ),
            )
            .await?;
            for p in [&mut a, &mut b] {
                p.expect_where(
                    "push_delete_message",
                    "it names another message",
                    content_is("message_id", json!(m)),
                )
                .await?;
            }
            Ok(())
        }
    );

    case!(
        report,
        [a, b, c],
        "message_read",
        "a read that does not move the mark: echoed to the reader only",
        {
            let m = need(&first, "new_message direct")?;
            b.send_as(
                "client_message_read",
                &event(
                    "message_read",
                    json!({"chat_type": "direct", "chat_id": dm, "message_id": m}),
                ),
            )
            .await?;
            b.expect_where(
                "push_message_read",
                "it is not the echo of B's read",
                content_is("user_id", json!(ub.id)),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "delete_message",
        "a message deleted already: echoed to the sender only",
        {
            let m = need(&first, "new_message direct")?;
            a.send_as(
                "client_delete_message",
                &event(
                    "delete_message",
                    json!({"chat_type": "direct", "chat_id": dm, "message_id": m}),
                ),
            )
            .await?;
            a.expect_where(
                "push_delete_message",
                "it names another message",
                content_is("message_id", json!(m)),
            )
            .await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ presence
    for (key, push) in [
        ("client_set_online", "push_set_online"),
        ("client_set_offline", "push_set_offline"),
    ] {
        let name = if key == "client_set_online" {
            "set_online"
        } else {
            "set_offline"
        };
        b.ignore(&[]);
        case!(
            report,
            [a, b, c],
            name,
            &format!("users who share a chat get {name} about the sender"),
            {
                a.send_as(key, &json!({"type": name})).await?;
                b.expect_where(
                    push,
                    "it is about someone else",
                    content_is("user_id", json!(ua.id)),
                )
                .await?;
                Ok(())
            }
        );
        b.ignore(PRESENCE);
    }

    // ------------------------------------------------------------ project chats
    let project = cfg.project;
    case!(
        report,
        [a, b, c],
        "new_message",
        "project chat: every member gets new_message",
        {
            let p = project.ok_or_else(|| {
                CaseError::Skip("pass --project N (a project chat of A and B, without C)".into())
            })?;
            let text = marker("type-content project");
            a.send_as(
                "client_new_message",
                &new_message("project", json!(p), &text, None),
            )
            .await?;
            for peer in [&mut a, &mut b] {
                peer.expect_where("push_new_message", "it is not the project message", |v| {
                    v.pointer("/content/text") == Some(&json!(text))
                        && v.pointer("/content/chat_type") == Some(&json!("project"))
                        && v.pointer("/content/chat_id") == Some(&json!(p))
                })
                .await?;
            }
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "new_message",
        "a project chat the user is not a member of: error",
        {
            let p = project.ok_or_else(|| CaseError::Skip("pass --project N".into()))?;
            c.send_as(
                "client_new_message",
                &new_message("project", json!(p), "intruder", None),
            )
            .await?;
            c.expect("error").await?;
            Ok(())
        }
    );

    // ------------------------------------------------------------ bad frames
    case!(report, [a], "(frame)", "a frame that is not JSON: error", {
        a.send_text("{not json").await?;
        a.expect("error").await?;
        Ok(())
    });
    case!(report, [a], "(frame)", "an unknown type: error", {
        a.send(&event("send_message", json!({}))).await?;
        a.expect("error").await?;
        Ok(())
    });
    case!(report, [a], "(frame)", "a missing content: error", {
        a.send(&json!({"type": "delete_message"})).await?;
        a.expect("error").await?;
        Ok(())
    });
    report.notes.push(
        "type-content: group chats (chat_type \"group\") and file lists only arise through other dialects; see the gateway's cross-dialect tests".into(),
    );
    a.close().await;
    b.close().await;
    c.close().await;
}
