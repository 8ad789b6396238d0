//! action-request (djangochannelsrestframework): `{action, request_id, …}` in, the
//! envelope `{errors, data, action, response_status, request_id}` out, on a user
//! endpoint and an admin endpoint.
//!
//! This protocol cannot create rooms, so it needs `--room PK`: a room whose members
//! include A and B but not C. The admin cases need `--admin-token` (an `is_staff`
//! user); whether the admin may write there depends on the room's `has_business`,
//! which the run reads from the `join_room` reply and expects accordingly.

use super::{bearer_peers, ensure, int, marker, refused_with_403, users_or_record};
use crate::case;
use crate::peer::Expect;
use crate::report::{need, CaseError};
use crate::spec::Spec;
use crate::{Config, Report};
use chat_client::dialects::action_request::{request, ADMIN_PATH};
use serde_json::{json, Value};

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

/// The skip of a case that needs `--room`.
fn no_room() -> CaseError {
    CaseError::Skip("pass --room PK (a room of A and B, without C)".into())
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

    let Some(mut peers) = bearer_peers(
        cfg,
        spec,
        &[ua, ub, uc],
        &[],
        "open the user endpoint with Authorization: Bearer",
        report,
    )
    .await
    else {
        return;
    };
    let mut c = peers.pop().expect("three peers");
    let mut b = peers.pop().expect("three peers");
    let mut a = peers.pop().expect("three peers");
    let room = cfg.room;

    case!(
        report,
        [a],
        "list",
        "200 with the user's rooms, --room among them",
        {
            a.send_as("list", &request("list", json!(1), json!({})))
                .await?;
            let v = a
                .expect_where(
                    "list_ok",
                    "it is not the 200 reply to request 1",
                    reply(200, json!(1)),
                )
                .await?;
            if let Some(r) = room {
                let listed = v["data"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|x| x.get("pk") == Some(&json!(r))));
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
            a.send_as(
                "create_message",
                &request(
                    "create_message",
                    json!("r-nojoin"),
                    json!({"msg_text": "x"}),
                ),
            )
            .await?;
            a.expect_where("error", "it is not a 400", reply(400, json!("r-nojoin")))
                .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "current_room_info",
        "without a joined room: 400",
        {
            a.send_as(
                "current_room_info",
                &request("current_room_info", json!(2), json!({})),
            )
            .await?;
            a.expect_where("error", "it is not a 400", reply(400, json!(2)))
                .await?;
            Ok(())
        }
    );
    case!(report, [a], "leave_room", "without a joined room: 400", {
        a.send_as("leave_room", &request("leave_room", json!(3), json!({})))
            .await?;
        a.expect_where("error", "it is not a 400", reply(400, json!(3)))
            .await?;
        Ok(())
    });
    let mut has_business: Option<bool> = None;
    case!(
        report,
        [a, b, c],
        "join_room",
        "a member joins: 200 with the room",
        {
            let r = room.ok_or_else(no_room)?;
            for p in [&mut a, &mut b] {
                p.send_as(
                    "join_room",
                    &request("join_room", json!(10), json!({"room_pk": r})),
                )
                .await?;
                let v = p
                    .expect_where(
                        "join_room_ok",
                        "it is not the 200 reply to request 10",
                        reply(200, json!(10)),
                    )
                    .await?;
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
            c.send_as(
                "join_room",
                &request("join_room", json!(11), json!({"room_pk": r})),
            )
            .await?;
            c.expect_where("error", "it is not a 404", reply(404, json!(11)))
                .await?;
            Ok(())
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
    let mut msg: Option<i64> = None;
    case!(
        report,
        [a, b, c],
        "create_message",
        "201 to the sender; the same envelope with its request_id to the others joined",
        {
            need(&has_business, "join_room")?;
            let text = marker("action-request");
            a.send_as(
                "create_message",
                &request("create_message", json!(1001), json!({"msg_text": text})),
            )
            .await?;
            let v = a
                .expect_where(
                    "create_message_ok",
                    "it is not the 201 reply to request 1001",
                    reply(201, json!(1001)),
                )
                .await?;
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
            a.send(&request(
                "create_message",
                json!(1002),
                json!({"msg_text": "   "}),
            ))
            .await?;
            a.expect_where("error", "it is not a 400 naming msg_text", |v| {
                reply(400, json!(1002))(v) && v.pointer("/errors/0/msg_text").is_some()
            })
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "edit_message",
        "the author edits: 200 to the sender, pushed to the others joined",
        {
            let m = need(&msg, "create_message")?;
            a.send_as(
                "edit_message",
                &request(
                    "edit_message",
                    json!("e1"),
                    json!({"msg_id": m, "edited_msg_text": "edited"}),
                ),
            )
            .await?;
            let v = a
                .expect_where(
                    "edit_message_ok",
                    "it is not the 200 reply to request e1",
                    reply(200, json!("e1")),
                )
                .await?;
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
            b.send_as(
                "edit_message",
                &request(
                    "edit_message",
                    json!("e2"),
                    json!({"msg_id": m, "edited_msg_text": "mine now"}),
                ),
            )
            .await?;
            b.expect_where("error", "it is not a 403", reply(403, json!("e2")))
                .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "edit_message",
        "a message that does not exist: 404",
        {
            need(&has_business, "join_room")?;
            a.send_as(
                "edit_message",
                &request(
                    "edit_message",
                    json!("e3"),
                    json!({"msg_id": i64::MAX - 3, "edited_msg_text": "x"}),
                ),
            )
            .await?;
            a.expect_where("error", "it is not a 404", reply(404, json!("e3")))
                .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a],
        "edit_message",
        "fields missing: 400 naming each",
        {
            need(&has_business, "join_room")?;
            a.send(&request("edit_message", json!("e4"), json!({})))
                .await?;
            a.expect_where(
                "error",
                "it is not a 400 naming msg_id and edited_msg_text",
                |v| {
                    reply(400, json!("e4"))(v)
                        && v.pointer("/errors/0/msg_id").is_some()
                        && v.pointer("/errors/0/edited_msg_text").is_some()
                },
            )
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [b],
        "delete_messages",
        "another user's message: 403, nothing deleted",
        {
            let m = need(&msg, "create_message")?;
            b.send_as(
                "delete_messages",
                &request("delete_messages", json!("d1"), json!({"msg_id_list": [m]})),
            )
            .await?;
            b.expect_where("error", "it is not a 403", reply(403, json!("d1")))
                .await?;
            Ok(())
        }
    );
    case!(report, [a], "delete_messages", "an empty list: 400", {
        need(&has_business, "join_room")?;
        a.send(&request(
            "delete_messages",
            json!("d2"),
            json!({"msg_id_list": []}),
        ))
        .await?;
        a.expect_where("error", "it is not a 400 naming msg_id_list", |v| {
            reply(400, json!("d2"))(v) && v.pointer("/errors/0/msg_id_list").is_some()
        })
        .await?;
        Ok(())
    });
    case!(
        report,
        [a, b, c],
        "delete_messages",
        "the author deletes: 200 with messages_ids, pushed to the others joined",
        {
            let m = need(&msg, "create_message")?;
            a.send_as(
                "delete_messages",
                &request("delete_messages", json!("d3"), json!({"msg_id_list": [m]})),
            )
            .await?;
            let v = a
                .expect_where(
                    "delete_messages_ok",
                    "it is not the 200 reply to request d3",
                    reply(200, json!("d3")),
                )
                .await?;
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
            a.send_as(
                "edit_message",
                &request(
                    "edit_message",
                    json!("e5"),
                    json!({"msg_id": m, "edited_msg_text": "again"}),
                ),
            )
            .await?;
            a.expect_where("error", "it is not a 400 naming msg_id", |v| {
                reply(400, json!("e5"))(v) && v.pointer("/errors/0/msg_id").is_some()
            })
            .await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c],
        "delete_messages",
        "every id deleted already: 404, nothing pushed",
        {
            let m = need(&msg, "create_message")?;
            a.send_as(
                "delete_messages",
                &request("delete_messages", json!("d4"), json!({"msg_id_list": [m]})),
            )
            .await?;
            a.expect_where("error", "it is not a 404", reply(404, json!("d4")))
                .await?;
            Ok(())
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
            a.send_as(
                "current_room_info",
                &request("current_room_info", json!(20), json!({})),
            )
            .await?;
            let v = a
                .expect_where(
                    "current_room_info_ok",
                    "it is not the 200 reply to request 20",
                    reply(200, json!(20)),
                )
                .await?;
            ensure(v.pointer("/data/pk") == Some(&json!(r)), || {
                format!("another room: {v}")
            })?;
            Ok(())
        }
    );
    case!(report, [a], "(unknown action)", "an unknown action: 405", {
        a.send(&request("no_such_action", json!(21), json!({})))
            .await?;
        a.expect_where("error", "it is not a 405", reply(405, json!(21)))
            .await?;
        Ok(())
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
            a.send_as("leave_room", &request("leave_room", json!(30), json!({})))
                .await?;
            let v = a
                .expect_where(
                    "leave_room_ok",
                    "it is not the 200 reply to request 30",
                    reply(200, json!(30)),
                )
                .await?;
            ensure(
                v.pointer("/data/response")
                    == Some(&json!(format!("leaved room {r} successfully!"))),
                || format!("wrong text: {v}"),
            )?;
            Ok(())
        }
    );

    admin::run(cfg, spec, report, ua, [a, b, c], room, has_business).await;
}
