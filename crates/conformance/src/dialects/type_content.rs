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

use super::{bearer_peers, ensure, handshake_refused, int, marker, users_or_record};
use crate::case;
use crate::peer::{Expect, Outgoing, WsPeer};
use crate::report::{need, CaseError, CaseResult};
use crate::spec::Spec;
use crate::{Config, Report};
use chat_client::dialects::type_content::{direct_chat_id, event, new_message};
use serde_json::{json, Value};
use Outgoing::{Checked, Unchecked};

const PRESENCE: &[&str] = &["push_set_online", "push_set_offline"];

fn content_is(field: &'static str, want: Value) -> impl Fn(&Value) -> bool {
    move |v: &Value| v.pointer(&format!("/content/{field}")) == Some(&want)
}

/// Send `frame` (`how`: checked as its client message `client_<type>`, or as it is).
async fn send(p: &mut WsPeer<'_>, how: Outgoing, frame: &Value) -> CaseResult {
    let key = format!("client_{}", frame["type"].as_str().unwrap_or_default());
    p.send_outgoing(how, &key, frame).await
}

/// Send `frame` as [`send`] does and expect an `error`.
async fn refused(p: &mut WsPeer<'_>, how: Outgoing, frame: &Value) -> CaseResult {
    send(p, how, frame).await?;
    p.expect("error").await?;
    Ok(())
}

/// The event `kind` about message `m` of the direct chat `dm`.
fn on_message(kind: &str, dm: &Value, m: i64) -> Value {
    event(
        kind,
        json!({"chat_type": "direct", "chat_id": dm, "message_id": m}),
    )
}

/// `a` sends the direct message `frame`: `a`'s push must satisfy `is` (else `what`)
/// and then `check`, and `b` must get the same message. Its id.
async fn posted(
    [a, b]: [&mut WsPeer<'_>; 2],
    frame: &Value,
    (what, is): (&str, impl Fn(&Value) -> bool),
    check: impl FnOnce(&Value) -> Result<(), String>,
) -> Result<i64, CaseError> {
    send(a, Checked, frame).await?;
    let v = a.expect_where("push_new_message", what, is).await?;
    let id = int(&v, "/content/message_id")?;
    check(&v)?;
    let same = content_is("message_id", json!(id));
    b.expect_where("push_new_message", "it is another message", same)
        .await?;
    Ok(id)
}

pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    let Some([ua, ub, uc]) = users_or_record(cfg, report) else {
        return;
    };
    for (token, case_name) in [
        (None, "an upgrade without a token is refused with HTTP 403"),
        (
            Some("not.a.token"),
            "an upgrade with an invalid token is refused with HTTP 403",
        ),
    ] {
        handshake_refused(cfg, report, token, case_name).await;
    }
    let what = "open a WebSocket with Authorization: Bearer";
    let peers = bearer_peers(cfg, spec, [&ua, &ub, &uc], PRESENCE, what, report);
    let Some([mut a, mut b, mut c]) = peers.await else {
        return;
    };
    let dm = json!(direct_chat_id(ua.id, ub.id));
    // What earlier cases hand to later ones: the messages sent.
    let mut first: Option<i64> = None;
    let mut second: Option<i64> = None;

    // ------------------------------------------------------------ new_message
    case!(
        report,
        [a, b, c],
        "new_message",
        "direct chat: sender and recipient both get new_message",
        {
            let text = marker("type-content direct");
            let frame = new_message("direct", dm.clone(), &text, None);
            let sent = (
                "it is not the message sent",
                content_is("text", json!(text)),
            );
            let by_a = |v: &Value| {
                ensure(
                    v.pointer("/content/author_id") == Some(&json!(ua.id))
                        && v.pointer("/content/chat_id") == Some(&dm),
                    || format!("wrong author or chat: {v}"),
                )
            };
            first = Some(posted([&mut a, &mut b], &frame, sent, by_a).await?);
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "new_message",
        "reply_to: the push carries it",
        {
            let m = need(&first, "new_message direct")?;
            let frame = new_message("direct", dm.clone(), "a reply", Some(m));
            let replied = (
                "reply_to is not the replied message",
                content_is("reply_to", json!(m)),
            );
            second = Some(posted([&mut a, &mut b], &frame, replied, |_| Ok(())).await?);
            Ok(())
        }
    );
    case!(report, [a], "new_message", "reply_to missing: error", {
        let content = json!({"chat_type": "direct", "chat_id": dm, "message": "x"});
        refused(&mut a, Unchecked, &event("new_message", content)).await
    });
    case!(
        report,
        [a],
        "new_message",
        "a direct chat_id with the larger id first: error",
        {
            let reversed = format!("{}_{}", ua.id.max(ub.id), ua.id.min(ub.id));
            refused(
                &mut a,
                Unchecked,
                &new_message("direct", json!(reversed), "x", None),
            )
            .await
        }
    );
    case!(report, [a], "new_message", "empty text: error", {
        refused(
            &mut a,
            Unchecked,
            &new_message("direct", dm.clone(), "", None),
        )
        .await
    });
    case!(
        report,
        [a, b, c],
        "new_message",
        "the direct chat of two other users: error",
        {
            refused(
                &mut c,
                Checked,
                &new_message("direct", dm.clone(), "intruder", None),
            )
            .await
        }
    );

    // ------------------------------------------------------------ typing
    case!(
        report,
        [a, b, c],
        "user_typing",
        "the other member gets user_typing with end_time; the typist nothing",
        {
            let typing = event("user_typing", json!({"chat_type": "direct", "chat_id": dm}));
            send(&mut a, Checked, &typing).await?;
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
            send(&mut b, Checked, &on_message("message_read", &dm, m)).await?;
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
            let absent = i64::MAX - 7;
            refused(&mut b, Unchecked, &on_message("message_read", &dm, absent)).await
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
            refused(&mut b, Checked, &on_message("delete_message", &dm, m)).await
        }
    );
    case!(
        report,
        [a, b, c],
        "delete_message",
        "the author deletes: every member gets delete_message",
        {
            let m = need(&first, "new_message direct")?;
            send(&mut a, Checked, &on_message("delete_message", &dm, m)).await?;
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
            send(&mut b, Checked, &on_message("message_read", &dm, m)).await?;
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
            send(&mut a, Checked, &on_message("delete_message", &dm, m)).await?;
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
            send(
                &mut a,
                Checked,
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
            refused(
                &mut c,
                Checked,
                &new_message("project", json!(p), "intruder", None),
            )
            .await
        }
    );

    // ------------------------------------------------------------ bad frames
    case!(report, [a], "(frame)", "a frame that is not JSON: error", {
        a.send_text("{not json").await?;
        a.expect("error").await?;
        Ok(())
    });
    case!(report, [a], "(frame)", "an unknown type: error", {
        refused(&mut a, Unchecked, &event("send_message", json!({}))).await
    });
    case!(report, [a], "(frame)", "a missing content: error", {
        refused(&mut a, Unchecked, &json!({"type": "delete_message"})).await
    });
    report.notes.push(
        "type-content: group chats (chat_type \"group\") and file lists only arise through other dialects; see the gateway's cross-dialect tests".into(),
    );
    a.close().await;
    b.close().await;
    c.close().await;
}
