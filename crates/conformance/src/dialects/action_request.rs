//! action-request (djangochannelsrestframework): `{action, request_id, …}` in, the
//! envelope `{errors, data, action, response_status, request_id}` out, on a user
//! endpoint and an admin endpoint.
//!
//! This protocol cannot create rooms, so it needs `--room PK`: a room whose members
//! include A and B but not C. The admin cases need `--admin-token` (an `is_staff`
//! user); whether the admin may write there depends on the room's `has_business`,
//! which the run reads from the `join_room` reply and expects accordingly.

use super::{bearer_peers, ensure, handshake_refused, int, lists, marker, users_or_record};
use crate::case;
use crate::peer::{Expect, Outgoing, WsPeer};
use crate::report::{need, CaseError, CaseResult};
use crate::spec::Spec;
use crate::{header_refs, Config, Report};
use chat_client::dialects::action_request::{request, ADMIN_PATH};
use serde_json::{json, Value};
use Outgoing::{Checked, Unchecked};

mod admin;

fn status(code: i64) -> impl Fn(&Value) -> bool {
    move |v: &Value| v.get("response_status").and_then(Value::as_i64) == Some(code)
}

fn reply(code: i64, request_id: Value) -> impl Fn(&Value) -> bool {
    move |v: &Value| {
        v.get("response_status").and_then(Value::as_i64) == Some(code)
            && v.get("request_id") == Some(&request_id)
    }
}

/// Send `action` as request `id` with `data`, checked against the spec, and return
/// the `<action>_ok` reply with `code` (`what` describes a wrong one).
async fn answered_as(
    p: &mut WsPeer<'_>,
    what: &str,
    code: i64,
    action: &str,
    id: Value,
    data: Value,
) -> Result<Value, CaseError> {
    p.send_as(action, &request(action, id.clone(), data))
        .await?;
    p.expect_where(&format!("{action}_ok"), what, reply(code, id))
        .await
}

/// [`answered_as`], a wrong reply described as not the `code` reply to request `id`.
async fn answered(
    p: &mut WsPeer<'_>,
    code: i64,
    action: &str,
    id: Value,
    data: Value,
) -> Result<Value, CaseError> {
    let shown = id.as_str().map_or_else(|| id.to_string(), str::to_string);
    let what = format!("it is not the {code} reply to request {shown}");
    answered_as(p, &what, code, action, id, data).await
}

/// The author `a` changes the message `m` by `action`, sent as request `id` with
/// `data(m)`: the 200 reply must pass `check`, and `b`, who joined, gets the same
/// envelope with `a`'s request_id.
async fn authored(
    a: &mut WsPeer<'_>,
    b: &mut WsPeer<'_>,
    m: &Result<i64, CaseError>,
    (action, id): (&str, Value),
    data: impl FnOnce(i64) -> Value,
    check: impl FnOnce(&Value, i64) -> Result<(), String>,
) -> CaseResult {
    let m = m.clone()?;
    let v = answered(a, 200, action, id.clone(), data(m)).await?;
    check(&v, m)?;
    let push = format!("{action}_ok");
    b.expect_where(
        &push,
        "it is not the push with A's request_id",
        reply(200, id),
    )
    .await?;
    Ok(())
}

/// Send `action` as request `id` with `data` (`how`: checked against the spec, or
/// malformed and sent as it is) and expect the `error` reply with `code`, its
/// `errors` naming each of `fields`.
async fn refused(
    p: &mut WsPeer<'_>,
    how: Outgoing,
    code: i64,
    fields: &[&str],
    action: &str,
    id: Value,
    data: Value,
) -> CaseResult {
    p.send_outgoing(how, action, &request(action, id.clone(), data))
        .await?;
    let what = match fields {
        [] => format!("it is not a {code}"),
        _ => format!("it is not a {code} naming {}", fields.join(" and ")),
    };
    let named = |v: &Value| {
        fields
            .iter()
            .all(|f| v.pointer(&format!("/errors/0/{f}")).is_some())
    };
    p.expect_where("error", &what, |v| reply(code, id.clone())(v) && named(v))
        .await?;
    Ok(())
}

/// The skip of a case that needs `--room`.
fn no_room() -> CaseError {
    CaseError::Skip("pass --room PK (a room of A and B, without C)".into())
}

pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    let Some([ua, ub, uc]) = users_or_record(cfg, report) else {
        return;
    };
    let no_token = "an upgrade without a token is refused with HTTP 403";
    handshake_refused(cfg, report, None, no_token).await;
    let what = "open the user endpoint with Authorization: Bearer";
    let Some([mut a, mut b, mut c]) =
        bearer_peers(cfg, spec, [&ua, &ub, &uc], &[], what, report).await
    else {
        return;
    };
    // What earlier cases hand to later ones, and the room they work in.
    let mut has_business: Option<bool> = None;
    let mut msg: Option<i64> = None;
    let room = cfg.room;

    case!(
        report,
        [a],
        "list",
        "200 with the user's rooms, --room among them",
        {
            let v = answered(&mut a, 200, "list", json!(1), json!({})).await?;
            if let Some(r) = room {
                let listed = lists(&v, "data", "pk", &json!(r));
                ensure(listed, || format!("room {r} is not listed: {v}"))?;
            }
            Ok(())
        }
    );
    for (op, id, data) in [
        (
            "create_message",
            json!("r-nojoin"),
            json!({"msg_text": "x"}),
        ),
        ("current_room_info", json!(2), json!({})),
        ("leave_room", json!(3), json!({})),
    ] {
        case!(report, [a], op, "without a joined room: 400", {
            refused(&mut a, Checked, 400, &[], op, id, data).await
        });
    }
    case!(
        report,
        [a, b, c],
        "join_room",
        "a member joins: 200 with the room",
        {
            let r = room.ok_or_else(no_room)?;
            for p in [&mut a, &mut b] {
                let data = json!({"room_pk": r});
                let v = answered(p, 200, "join_room", json!(10), data).await?;
                ensure(v.pointer("/data/pk") == Some(&json!(r)), || {
                    format!("another room: {v}")
                })?;
                has_business = v.pointer("/data/has_business").and_then(Value::as_bool);
            }
            Ok(())
        }
    );
    case!(
        report,
        [c],
        "join_room",
        "a room the user is not a member of: 404",
        {
            let r = room.ok_or_else(no_room)?;
            let data = json!({"room_pk": r});
            refused(&mut c, Checked, 404, &[], "join_room", json!(11), data).await
        }
    );
    case!(
        report,
        [c],
        "join_room",
        "room_pk not an integer: 400 field error",
        {
            // Only the status and the field: this refusal is not held to the request_id.
            let naming = |v: &Value| status(400)(v) && v.pointer("/errors/0/room_pk").is_some();
            c.send(&request("join_room", json!(12), json!({"room_pk": "x"})))
                .await?;
            c.expect_where("error", "it is not a 400 naming room_pk", naming)
                .await
                .map(drop)
        }
    );
    case!(
        report,
        [a, b, c],
        "create_message",
        "201 to the sender; the same envelope with its request_id to the others joined",
        {
            need(&has_business, "join_room")?;
            let text = marker("action-request");
            let data = json!({"msg_text": text});
            let v = answered(&mut a, 201, "create_message", json!(1001), data).await?;
            ensure(
                v.pointer("/data/text") == Some(&json!(text))
                    && v.pointer("/data/user/id") == Some(&json!(ua.id)),
                || format!("wrong text or author: {v}"),
            )?;
            let id = int(&v, "/data/id")?;
            b.expect_where(
                "create_message_ok",
                "it is not the push of A's message with A's request_id",
                |p| reply(201, json!(1001))(p) && p.pointer("/data/id") == Some(&json!(id)),
            )
            .await?;
            msg = Some(id);
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "create_message",
        "blank text: 400 field error",
        {
            need(&has_business, "join_room")?;
            let blank = json!({"msg_text": "   "});
            let naming = ["msg_text"];
            refused(
                &mut a,
                Unchecked,
                400,
                &naming,
                "create_message",
                json!(1002),
                blank,
            )
            .await
        }
    );
    // The message the later cases edit and delete; a skip naming the case that failed.
    let sent = need(&msg, "create_message");
    let joined = need(&has_business, "join_room");
    case!(
        report,
        [a, b, c],
        "edit_message",
        "the author edits: 200 to the sender, pushed to the others joined",
        {
            authored(
                &mut a,
                &mut b,
                &sent,
                ("edit_message", json!("e1")),
                |m| json!({"msg_id": m, "edited_msg_text": "edited"}),
                |v, m| {
                    ensure(
                        v.pointer("/data/message_id") == Some(&json!(m))
                            && v.pointer("/data/message_text") == Some(&json!("edited")),
                        || format!("wrong data: {v}"),
                    )
                },
            )
            .await
        }
    );
    // Refused edits and deletes: (operation, case, sent by B, how, status, the fields the
    // errors name, request id, the request's fields).
    for (op, case_name, by_b, how, code, naming, id, data) in [
        (
            "edit_message",
            "another user's message: 403",
            true,
            Checked,
            403,
            &[][..],
            json!("e2"),
            sent.clone()
                .map(|m| json!({"msg_id": m, "edited_msg_text": "mine now"})),
        ),
        (
            "edit_message",
            "a message that does not exist: 404",
            false,
            Checked,
            404,
            &[][..],
            json!("e3"),
            joined
                .clone()
                .map(|_| json!({"msg_id": i64::MAX - 3, "edited_msg_text": "x"})),
        ),
        (
            "edit_message",
            "fields missing: 400 naming each",
            false,
            Unchecked,
            400,
            &["msg_id", "edited_msg_text"][..],
            json!("e4"),
            joined.clone().map(|_| json!({})),
        ),
        (
            "delete_messages",
            "another user's message: 403, nothing deleted",
            true,
            Checked,
            403,
            &[][..],
            json!("d1"),
            sent.clone().map(|m| json!({"msg_id_list": [m]})),
        ),
        (
            "delete_messages",
            "an empty list: 400",
            false,
            Unchecked,
            400,
            &["msg_id_list"][..],
            json!("d2"),
            joined.clone().map(|_| json!({"msg_id_list": []})),
        ),
    ] {
        let p = if by_b { &mut b } else { &mut a };
        case!(report, [p], op, case_name, {
            refused(p, how, code, naming, op, id, data?).await
        });
    }
    case!(
        report,
        [a, b, c],
        "delete_messages",
        "the author deletes: 200 with messages_ids, pushed to the others joined",
        {
            authored(
                &mut a,
                &mut b,
                &sent,
                ("delete_messages", json!("d3")),
                |m| json!({"msg_id_list": [m]}),
                |v, m| {
                    ensure(v.pointer("/data/messages_ids") == Some(&json!([m])), || {
                        format!("wrong ids: {v}")
                    })
                },
            )
            .await
        }
    );
    // What the deleted message still gets: (operation, case, status, the fields the
    // errors name, request id, the request's fields).
    for (op, case_name, code, naming, id, data) in [
        (
            "edit_message",
            "a deleted message: 400 naming msg_id",
            400,
            &["msg_id"][..],
            json!("e5"),
            sent.clone()
                .map(|m| json!({"msg_id": m, "edited_msg_text": "again"})),
        ),
        (
            "delete_messages",
            "every id deleted already: 404, nothing pushed",
            404,
            &[][..],
            json!("d4"),
            sent.clone().map(|m| json!({"msg_id_list": [m]})),
        ),
    ] {
        case!(report, [a, b, c], op, case_name, {
            refused(&mut a, Checked, code, naming, op, id, data?).await
        });
    }
    case!(
        report,
        [a],
        "current_room_info",
        "200 with the joined room",
        {
            let r = need(&room, "--room")?;
            joined.clone()?;
            let v = answered(&mut a, 200, "current_room_info", json!(20), json!({})).await?;
            ensure(v.pointer("/data/pk") == Some(&json!(r)), || {
                format!("another room: {v}")
            })?;
            Ok(())
        }
    );
    case!(report, [a], "(unknown action)", "an unknown action: 405", {
        refused(
            &mut a,
            Unchecked,
            405,
            &[],
            "no_such_action",
            json!(21),
            json!({}),
        )
        .await
    });
    case!(
        report,
        [a],
        "(frame)",
        "a frame that is not JSON: 400 with action and request_id null",
        {
            // On a connection of its own: a server that closes the socket on such a
            // frame (the old DCRF stack does) must not take A's joined room with it.
            let h = cfg.headers(Some(&ua.token));
            let mut p = WsPeer::connect("A'", &cfg.url, &header_refs(&h), spec, cfg.timing).await?;
            p.send_text("{not json").await?;
            let answered = p
                .expect_where("error", "it is not a 400 with null action", |v| {
                    reply(400, Value::Null)(v) && v.get("action") == Some(&Value::Null)
                })
                .await;
            p.close().await;
            answered?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "leave_room",
        "200 `leaved room <pk> successfully!`",
        {
            let r = room.ok_or_else(no_room)?;
            joined.clone()?;
            let v = answered(&mut a, 200, "leave_room", json!(30), json!({})).await?;
            ensure(
                v.pointer("/data/response")
                    == Some(&json!(format!("leaved room {r} successfully!"))),
                || format!("wrong text: {v}"),
            )?;
            Ok(())
        }
    );

    admin::run(cfg, spec, report, &ua, [a, b, c], room, has_business).await;
}
