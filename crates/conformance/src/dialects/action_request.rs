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
use crate::{Config, Report};
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
async fn answered(
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
    let room = cfg.room;
    // What earlier cases hand to later ones.
    let mut has_business: Option<bool> = None;
    let mut msg: Option<i64> = None;

    case!(
        report,
        [a],
        "list",
        "200 with the user's rooms, --room among them",
        {
            let to_1 = "it is not the 200 reply to request 1";
            let v = answered(&mut a, to_1, 200, "list", json!(1), json!({})).await?;
            if let Some(r) = room {
                let listed = lists(&v, "data", "pk", &json!(r));
                ensure(listed, || format!("room {r} is not listed: {v}"))?;
            }
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "create_message",
        "without a joined room: 400",
        {
            let data = json!({"msg_text": "x"});
            refused(
                &mut a,
                Checked,
                400,
                &[],
                "create_message",
                json!("r-nojoin"),
                data,
            )
            .await
        }
    );
    case!(
        report,
        [a],
        "current_room_info",
        "without a joined room: 400",
        {
            refused(
                &mut a,
                Checked,
                400,
                &[],
                "current_room_info",
                json!(2),
                json!({}),
            )
            .await
        }
    );
    case!(report, [a], "leave_room", "without a joined room: 400", {
        refused(&mut a, Checked, 400, &[], "leave_room", json!(3), json!({})).await
    });
    case!(
        report,
        [a, b, c],
        "join_room",
        "a member joins: 200 with the room",
        {
            let r = room.ok_or_else(no_room)?;
            for p in [&mut a, &mut b] {
                let to_10 = "it is not the 200 reply to request 10";
                let data = json!({"room_pk": r});
                let v = answered(p, to_10, 200, "join_room", json!(10), data).await?;
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
            c.send(&request("join_room", json!(12), json!({"room_pk": "x"})))
                .await?;
            c.expect_where("error", "it is not a 400 naming room_pk", |v| {
                status(400)(v) && v.pointer("/errors/0/room_pk").is_some()
            })
            .await?;
            Ok(())
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
            let to_1001 = "it is not the 201 reply to request 1001";
            let data = json!({"msg_text": text});
            let v = answered(&mut a, to_1001, 201, "create_message", json!(1001), data).await?;
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
            refused(
                &mut a,
                Unchecked,
                400,
                &["msg_text"],
                "create_message",
                json!(1002),
                blank,
            )
            .await
        }
    );
    case!(
        report,
        [a, b, c],
        "edit_message",
        "the author edits: 200 to the sender, pushed to the others joined",
        {
            let m = need(&msg, "create_message")?;
            let to_e1 = "it is not the 200 reply to request e1";
            let edit = json!({"msg_id": m, "edited_msg_text": "edited"});
            let v = answered(&mut a, to_e1, 200, "edit_message", json!("e1"), edit).await?;
            ensure(
                v.pointer("/data/message_id") == Some(&json!(m))
                    && v.pointer("/data/message_text") == Some(&json!("edited")),
                || format!("wrong data: {v}"),
            )?;
            b.expect_where(
                "edit_message_ok",
                "it is not the push with A's request_id",
                reply(200, json!("e1")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [b],
        "edit_message",
        "another user's message: 403",
        {
            let m = need(&msg, "create_message")?;
            let edit = json!({"msg_id": m, "edited_msg_text": "mine now"});
            refused(&mut b, Checked, 403, &[], "edit_message", json!("e2"), edit).await
        }
    );
    case!(
        report,
        [a],
        "edit_message",
        "a message that does not exist: 404",
        {
            need(&has_business, "join_room")?;
            let edit = json!({"msg_id": i64::MAX - 3, "edited_msg_text": "x"});
            refused(&mut a, Checked, 404, &[], "edit_message", json!("e3"), edit).await
        }
    );
    case!(
        report,
        [a],
        "edit_message",
        "fields missing: 400 naming each",
        {
            need(&has_business, "join_room")?;
            let both = ["msg_id", "edited_msg_text"];
            refused(
                &mut a,
                Unchecked,
                400,
                &both,
                "edit_message",
                json!("e4"),
                json!({}),
            )
            .await
        }
    );
    case!(
        report,
        [b],
        "delete_messages",
        "another user's message: 403, nothing deleted",
        {
            let m = need(&msg, "create_message")?;
            let ids = json!({"msg_id_list": [m]});
            refused(
                &mut b,
                Checked,
                403,
                &[],
                "delete_messages",
                json!("d1"),
                ids,
            )
            .await
        }
    );
    case!(report, [a], "delete_messages", "an empty list: 400", {
        need(&has_business, "join_room")?;
        let none = json!({"msg_id_list": []});
        refused(
            &mut a,
            Unchecked,
            400,
            &["msg_id_list"],
            "delete_messages",
            json!("d2"),
            none,
        )
        .await
    });
    case!(
        report,
        [a, b, c],
        "delete_messages",
        "the author deletes: 200 with messages_ids, pushed to the others joined",
        {
            let m = need(&msg, "create_message")?;
            let to_d3 = "it is not the 200 reply to request d3";
            let ids = json!({"msg_id_list": [m]});
            let v = answered(&mut a, to_d3, 200, "delete_messages", json!("d3"), ids).await?;
            ensure(v.pointer("/data/messages_ids") == Some(&json!([m])), || {
                format!("wrong ids: {v}")
            })?;
            b.expect_where(
                "delete_messages_ok",
                "it is not the push with A's request_id",
                reply(200, json!("d3")),
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "edit_message",
        "a deleted message: 400 naming msg_id",
        {
            let m = need(&msg, "create_message")?;
            let edit = json!({"msg_id": m, "edited_msg_text": "again"});
            refused(
                &mut a,
                Checked,
                400,
                &["msg_id"],
                "edit_message",
                json!("e5"),
                edit,
            )
            .await
        }
    );
    case!(
        report,
        [a, b, c],
        "delete_messages",
        "every id deleted already: 404, nothing pushed",
        {
            let m = need(&msg, "create_message")?;
            let ids = json!({"msg_id_list": [m]});
            refused(
                &mut a,
                Checked,
                404,
                &[],
                "delete_messages",
                json!("d4"),
                ids,
            )
            .await
        }
    );
    case!(
        report,
        [a],
        "current_room_info",
        "200 with the joined room",
        {
            let r = need(&room, "--room")?;
            need(&has_business, "join_room")?;
            let to_20 = "it is not the 200 reply to request 20";
            let v = answered(
                &mut a,
                to_20,
                200,
                "current_room_info",
                json!(20),
                json!({}),
            )
            .await?;
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
            a.send_text("{not json").await?;
            a.expect_where("error", "it is not a 400 with null action", |v| {
                reply(400, Value::Null)(v) && v.get("action") == Some(&Value::Null)
            })
            .await?;
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
            need(&has_business, "join_room")?;
            let to_30 = "it is not the 200 reply to request 30";
            let v = answered(&mut a, to_30, 200, "leave_room", json!(30), json!({})).await?;
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
