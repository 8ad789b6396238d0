//! The dialect over real sockets: a gateway on 127.0.0.1:0 (SQLite and PostgreSQL),
//! real upgrades with headers, every action on both endpoints, fan-out between
//! connections and dialects, admin rules, handshake refusals and bad input.

mod replies;

use chat_core::{RoomId, RoomKind};
use chat_testkit::steps::{create_users, direct_room, sqlite_with};
use chat_testkit::{dual_backend_test, Options, TestGateway, WsClient};
use replies::{err, ok};
use serde_json::{json, Value};

const USER: &str = "/ws/dcrf/chat/";
const ADMIN: &str = "/ws/admin-chat/";
const PERMISSION_DENIED: &str = "You do not have permission to perform this action.";

async fn connect(gw: &TestGateway, path: &str, token: &str) -> WsClient {
    let auth = format!("Bearer {token}");
    match WsClient::connect_with_headers(
        &gw.ws_url(path),
        &[("Authorization", &auth), ("Origin", "http://localhost:80")],
    )
    .await
    {
        Ok(c) => c,
        Err(status) => panic!("upgrade to {path} refused with {status}"),
    }
}

async fn status_of(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Result<(), u16> {
    WsClient::connect_with_headers(&gw.ws_url(path), headers)
        .await
        .map(|_| ())
}

async fn req(c: &mut WsClient, v: Value) -> Value {
    c.send_json(&v).await;
    c.recv_json().await
}

/// Send a request that must be refused with 403 and the permission-denied error.
async fn denied(c: &mut WsClient, v: Value) {
    let r = req(c, v).await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));
}

async fn join(c: &mut WsClient, room: RoomId) {
    let r = req(
        c,
        json!({"action": "join_room", "room_pk": room.0, "request_id": "join"}),
    )
    .await;
    ok(&r, "join_room", 200, json!("join"));
}

async fn group(gw: &TestGateway, members: &[i64], has_business: bool) -> RoomId {
    gw.create_room(RoomKind::Group, members, has_business).await
}

/// alice (1) and bob (2) share a group room; alice is connected and joined to it.
async fn alice_joined(gw: &TestGateway) -> (RoomId, WsClient) {
    create_users(gw, &[(1, "alice"), (2, "bob")]).await;
    let room = group(gw, &[1, 2], false).await;
    let mut alice = connect(gw, USER, &gw.token(1, "alice")).await;
    join(&mut alice, room).await;
    (room, alice)
}

async fn every_user_action(gw: TestGateway) {
    create_users(&gw, &[(1, "alice"), (2, "bob"), (3, "carol")]).await;
    let room = direct_room(&gw, 1, 2, true).await;
    let other = group(&gw, &[2, 3], false).await;
    let mut alice = connect(&gw, USER, &gw.token(1, "alice")).await;
    let mut bob = connect(&gw, USER, &gw.token(2, "bob")).await;

    let r = req(&mut alice, json!({"action": "list", "request_id": 1500000})).await;
    let data = ok(&r, "list", 200, json!(1500000));
    assert_eq!(data.as_array().map(Vec::len), Some(1), "{data}");
    assert_eq!(data[0]["pk"], json!(room.0));
    assert_eq!(data[0]["has_business"], json!(true));
    let ids: Vec<i64> = data[0]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&1) && ids.contains(&2));
    assert!(data[0]["participants"][0]["username"].is_string());

    let r = req(
        &mut alice,
        json!({"action": "join_room", "room_pk": other.0, "request_id": 2}),
    )
    .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "x", "request_id": 3}),
    )
    .await;
    assert_eq!(
        err(&r, 400),
        json!(["Action not allowed. You are not in the room!"])
    );

    join(&mut alice, room).await;
    join(&mut bob, room).await;
    let r = req(
        &mut alice,
        json!({"action": "current_room_info", "request_id": 4}),
    )
    .await;
    assert_eq!(
        ok(&r, "current_room_info", 200, json!(4))["pk"],
        json!(room.0)
    );

    // create: 201 to the sender, the same frame to bob with alice's request_id.
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "hello", "request_id": 1500001}),
    )
    .await;
    let data = ok(&r, "create_message", 201, json!(1500001));
    assert_eq!(data["text"], json!("hello"));
    assert_eq!(data["user"]["id"], json!(1));
    assert_eq!(data["room"]["pk"], json!(room.0));
    let msg = data["id"].as_i64().expect("id");
    assert_eq!(bob.recv_json().await, r);
    alice.assert_silent(200).await;

    // edit and delete, each pushed to bob.
    let r = req(
        &mut alice,
        json!({"action": "edit_message", "msg_id": msg, "edited_msg_text": "edit", "request_id": "e"}),
    )
    .await;
    assert_eq!(
        ok(&r, "edit_message", 200, json!("e")),
        json!({"room_id": room.0, "message_id": msg, "message_text": "edit"})
    );
    assert_eq!(bob.recv_json().await, r);
    denied(
        &mut bob,
        json!({"action": "edit_message", "msg_id": msg, "edited_msg_text": "mine now"}),
    )
    .await;
    denied(
        &mut bob,
        json!({"action": "delete_messages", "msg_id_list": [msg]}),
    )
    .await;
    alice.assert_silent(200).await;
    let r = req(
        &mut alice,
        json!({"action": "delete_messages", "msg_id_list": [msg], "request_id": [1, 2]}),
    )
    .await;
    assert_eq!(
        ok(&r, "delete_messages", 200, json!([1, 2])),
        json!({"room_id": room.0, "messages_ids": [msg]})
    );
    assert_eq!(bob.recv_json().await, r);
    let r = req(
        &mut alice,
        json!({"action": "delete_messages", "msg_id_list": [msg]}),
    )
    .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));

    // leave: then bob's messages no longer reach alice.
    let r = req(&mut alice, json!({"action": "leave_room", "request_id": 9})).await;
    assert_eq!(
        ok(&r, "leave_room", 200, json!(9)),
        json!({"response": format!("leaved room {} successfully!", room.0)})
    );
    let r = req(
        &mut bob,
        json!({"action": "create_message", "msg_text": "anyone?"}),
    )
    .await;
    ok(&r, "create_message", 201, Value::Null);
    alice.assert_silent(300).await;
    let r = req(&mut alice, json!({"action": "leave_room"})).await;
    assert_eq!(
        err(&r, 400),
        json!(["Action 'leave_room' not allowed. You are not in the room"])
    );
}
dual_backend_test!(every_user_action);

async fn admin_endpoint_rules(gw: TestGateway) {
    gw.create_user(1, "alice").await;
    gw.create_user(2, "bob").await;
    let business = group(&gw, &[1, 2], true).await;
    let plain = group(&gw, &[1, 2], false).await;
    let mut root = connect(&gw, ADMIN, &gw.admin_token(9, "root")).await;
    let mut alice = connect(&gw, USER, &gw.token(1, "alice")).await;
    let mut bob = connect(&gw, USER, &gw.token(2, "bob")).await;

    let r = req(&mut root, json!({"action": "list", "request_id": 1})).await;
    let pks: Vec<i64> = ok(&r, "list", 200, json!(1))
        .as_array()
        .expect("list")
        .iter()
        .map(|x| x["pk"].as_i64().expect("pk"))
        .collect();
    assert!(
        pks.contains(&business.0) && pks.contains(&plain.0),
        "{pks:?}"
    );
    let r = req(
        &mut root,
        json!({"action": "current_room_info", "request_id": 2}),
    )
    .await;
    assert_eq!(
        err(&r, 405),
        json!(["Method \"current_room_info\" not allowed."])
    );

    // View any room; write only where has_business.
    join(&mut root, plain).await;
    denied(
        &mut root,
        json!({"action": "create_message", "msg_text": "hi", "request_id": 3}),
    )
    .await;

    join(&mut root, business).await;
    join(&mut alice, business).await;
    join(&mut bob, business).await;
    let r = req(
        &mut root,
        json!({"action": "create_message", "msg_text": "support", "request_id": "a1"}),
    )
    .await;
    let admin_msg = ok(&r, "create_message", 201, json!("a1"))["id"].clone();
    assert_eq!(alice.recv_json().await, r);
    assert_eq!(bob.recv_json().await, r);

    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "help", "request_id": 5}),
    )
    .await;
    let alice_msg = ok(&r, "create_message", 201, json!(5))["id"].clone();
    assert_eq!(bob.recv_json().await, r);
    // Not a member, but joined: the admin watches the room and gets the push too.
    assert_eq!(root.recv_json().await, r);

    // Edit own only; delete any.
    denied(
        &mut root,
        json!({"action": "edit_message", "msg_id": alice_msg, "edited_msg_text": "x"}),
    )
    .await;
    let r = req(
        &mut root,
        json!({"action": "edit_message", "msg_id": admin_msg, "edited_msg_text": "support!", "request_id": 6}),
    )
    .await;
    ok(&r, "edit_message", 200, json!(6));
    assert_eq!(alice.recv_json().await, r);
    assert_eq!(bob.recv_json().await, r);
    let r = req(
        &mut root,
        json!({"action": "delete_messages", "msg_id_list": [alice_msg], "request_id": 7}),
    )
    .await;
    assert_eq!(
        ok(&r, "delete_messages", 200, json!(7)),
        json!({"room_id": business.0, "messages_ids": [alice_msg]})
    );
    assert_eq!(alice.recv_json().await, r);
    assert_eq!(bob.recv_json().await, r);
    let r = req(&mut root, json!({"action": "join_room", "room_pk": 987654})).await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
}
dual_backend_test!(admin_endpoint_rules);

async fn handshake_refusals(gw: TestGateway) {
    gw.create_user(1, "alice").await;
    let token = format!("Bearer {}", gw.token(1, "alice"));
    let origin = ("Origin", "http://localhost:80");
    // Missing, forged, expired, alg:none tokens.
    assert_eq!(status_of(&gw, USER, &[origin]).await, Err(403));
    for bad in [
        gw.forged_token(1),
        gw.expired_token(1),
        gw.alg_none_token(1),
        "garbage".to_string(),
    ] {
        let h = format!("Bearer {bad}");
        assert_eq!(
            status_of(&gw, USER, &[("Authorization", &h), origin]).await,
            Err(403),
            "{bad}"
        );
        assert_eq!(
            status_of(&gw, ADMIN, &[("Authorization", &h), origin]).await,
            Err(403),
            "{bad}"
        );
    }
    // A non-admin on the admin endpoint.
    assert_eq!(
        status_of(&gw, ADMIN, &[("Authorization", &token), origin]).await,
        Err(403)
    );
    // Accepted: bearer, raw, query string, subprotocol.
    assert_eq!(
        status_of(&gw, USER, &[("Authorization", &token), origin]).await,
        Ok(())
    );
    let raw = gw.token(1, "alice");
    assert_eq!(
        status_of(&gw, USER, &[("Authorization", &raw), origin]).await,
        Ok(())
    );
    let url = format!("{}?token={raw}", gw.ws_url(USER));
    assert!(WsClient::connect_with_headers(&url, &[origin])
        .await
        .is_ok());
    let proto = format!("Bearer, {raw}");
    let c = WsClient::connect_with_headers(
        &gw.ws_url(USER),
        &[("Sec-WebSocket-Protocol", &proto), origin],
    )
    .await
    .expect("subprotocol carrier");
    assert_eq!(c.subprotocol.as_deref(), Some("Bearer"));
    // The subprotocols later versions of the original backend required.
    let c = WsClient::connect_with_headers(
        &gw.ws_url(USER),
        &[
            ("Authorization", &token),
            ("Sec-WebSocket-Protocol", "chat"),
            origin,
        ],
    )
    .await
    .expect("chat subprotocol");
    assert_eq!(c.subprotocol.as_deref(), Some("chat"));
    let admin = format!("Bearer {}", gw.admin_token(9, "root"));
    assert_eq!(
        status_of(&gw, ADMIN, &[("Authorization", &admin), origin]).await,
        Ok(())
    );
    // Without the trailing slash.
    assert_eq!(
        status_of(&gw, "/ws/admin-chat", &[("Authorization", &admin), origin]).await,
        Ok(())
    );
}
dual_backend_test!(handshake_refusals);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_allow_list() {
    let gw = TestGateway::start(Options {
        allowed_origins: vec!["example.com".into(), ".corp.net".into()],
        ..Options::default()
    })
    .await
    .expect("sqlite gateway");
    gw.create_user(1, "alice").await;
    let token = format!("Bearer {}", gw.token(1, "alice"));
    let admin = format!("Bearer {}", gw.admin_token(9, "root"));
    // (endpoint, bearer, Origin or none, the answer).
    let cases = [
        (USER, &token, Some("http://example.com"), Ok(())),
        (USER, &token, Some("https://chat.corp.net"), Ok(())),
        (USER, &token, Some("http://evil.com"), Err(403)),
        (USER, &token, Some("http://sub.example.com"), Err(403)),
        (USER, &token, None, Err(403)),
        (ADMIN, &admin, Some("http://evil.com"), Err(403)),
        (ADMIN, &admin, Some("http://example.com"), Ok(())),
    ];
    for (path, bearer, origin, want) in cases {
        let mut headers = vec![("Authorization", bearer.as_str())];
        headers.extend(origin.map(|o| ("Origin", o)));
        assert_eq!(
            status_of(&gw, path, &headers).await,
            want,
            "{path} with Origin {origin:?} (none with a list is refused)"
        );
    }
}

async fn bad_input_keeps_the_connection(gw: TestGateway) {
    let (room, mut alice) = alice_joined(&gw).await;

    alice.send_text("this is not json").await;
    let r = alice.recv_json().await;
    assert!(
        err(&r, 400)[0]
            .as_str()
            .is_some_and(|s| s.starts_with("JSON parse error")),
        "{r}"
    );
    alice.send_text("[1, 2, 3]").await;
    assert_eq!(
        err(&alice.recv_json().await, 400),
        json!(["Invalid data. Expected a dictionary, but got list."])
    );
    alice.send_text("42").await;
    err(&alice.recv_json().await, 400);
    alice.send_binary(b"{\"action\": \"list\"}").await;
    err(&alice.recv_json().await, 400);
    let r = req(&mut alice, json!({"request_id": 5})).await;
    assert_eq!(err(&r, 405), json!(["Method \"None\" not allowed."]));
    assert_eq!(r["request_id"], json!(5));
    let r = req(&mut alice, json!({"action": "rm -rf", "request_id": 6})).await;
    assert_eq!(err(&r, 405), json!(["Method \"rm -rf\" not allowed."]));
    assert_eq!(r["action"], json!("rm -rf"));
    let r = req(&mut alice, json!({"action": "join_room", "room_pk": "one"})).await;
    assert_eq!(
        err(&r, 400),
        json!([{"room_pk": ["A valid integer is required."]}])
    );
    let r = req(&mut alice, json!({"action": "create_message"})).await;
    assert_eq!(
        err(&r, 400),
        json!([{"msg_text": ["This field is required."]}])
    );
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": {"a": 1}}),
    )
    .await;
    assert_eq!(err(&r, 400), json!([{"msg_text": ["Not a valid string."]}]));
    let r = req(
        &mut alice,
        json!({"action": "edit_message", "msg_id": 424242, "edited_msg_text": "x"}),
    )
    .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    let r = req(
        &mut alice,
        json!({"action": "delete_messages", "msg_id_list": [424242]}),
    )
    .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    let r = req(
        &mut alice,
        json!({"action": "delete_messages", "msg_id_list": [1, "x"]}),
    )
    .await;
    assert_eq!(
        err(&r, 400),
        json!([{"msg_id_list": {"1": ["A valid integer is required."]}}])
    );
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "x".repeat(20_000)}),
    )
    .await;
    assert_eq!(
        err(&r, 400)[0]["msg_text"][0],
        json!("Ensure this field has no more than 16384 characters.")
    );

    // Nothing was stored; the socket still works.
    let (_, history) = gw
        .service()
        .history(
            &gw.service()
                .authenticate(&gw.token(1, "alice"))
                .await
                .expect("principal"),
            &chat_core::RoomRef::Id(room),
            None,
            50,
        )
        .await
        .expect("history");
    assert!(history.is_empty(), "{history:?}");
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "fine", "request_id": 1}),
    )
    .await;
    ok(&r, "create_message", 201, json!(1));
}
dual_backend_test!(bad_input_keeps_the_connection);

/// A legacy client that sends ids as digit strings (`"room_pk": "1"`), as DRF's
/// `IntegerField` took them: accepted with the whitespace stripped, in every integer
/// field; anything else that is not an integer keeps the DRF field error, and the
/// connection stays usable.
async fn integer_fields_accept_digit_strings(gw: TestGateway) {
    create_users(&gw, &[(1, "alice"), (2, "bob")]).await;
    let room = group(&gw, &[1, 2], false).await;
    let mut alice = connect(&gw, USER, &gw.token(1, "alice")).await;
    let pk = format!(" {} ", room.0);
    let r = req(
        &mut alice,
        json!({"action": "join_room", "room_pk": pk, "request_id": 1}),
    )
    .await;
    assert_eq!(ok(&r, "join_room", 200, json!(1))["pk"], json!(room.0));
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "first", "request_id": 2}),
    )
    .await;
    let id = ok(&r, "create_message", 201, json!(2))["id"]
        .as_i64()
        .expect("message id");
    let r = req(
        &mut alice,
        json!({"action": "edit_message", "msg_id": id.to_string(), "edited_msg_text": "again", "request_id": 3}),
    )
    .await;
    assert_eq!(
        ok(&r, "edit_message", 200, json!(3))["message_id"],
        json!(id)
    );
    for bad in [
        json!("1.5"),
        json!("x1"),
        json!(""),
        json!("1_0"),
        json!(true),
    ] {
        let r = req(
            &mut alice,
            json!({"action": "edit_message", "msg_id": bad, "edited_msg_text": "no"}),
        )
        .await;
        assert_eq!(
            err(&r, 400),
            json!([{"msg_id": ["A valid integer is required."]}]),
            "{bad}"
        );
    }
    let r = req(
        &mut alice,
        json!({"action": "delete_messages", "msg_id_list": [format!("{id}\n")], "request_id": 4}),
    )
    .await;
    assert_eq!(
        ok(&r, "delete_messages", 200, json!(4))["messages_ids"],
        json!([id])
    );
}
dual_backend_test!(integer_fields_accept_digit_strings);

/// The legacy deployment's URL on the main listener: with method-args moved off
/// `/ws/chat/`, `--mount action-request=/ws/chat/` serves the user endpoint there (and
/// only there), next to the admin endpoint at its default path; method-args answers at
/// the path it was moved to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_endpoint_at_the_legacy_path_on_the_main_listener() {
    let gw = chat_testkit::TestGateway::start(Options {
        mounts: vec![
            "action-request=/ws/chat/".parse().expect("mount"),
            "method-args=/ws/method-args/".parse().expect("mount"),
        ],
        ..Options::default()
    })
    .await
    .expect("SQLite is always available");
    create_users(&gw, &[(1, "alice"), (2, "bob")]).await;
    let room = group(&gw, &[1, 2], true).await;
    let mut alice = connect(&gw, "/ws/chat/", &gw.token(1, "alice")).await;
    let mut bob = connect(&gw, "/ws/chat", &gw.token(2, "bob")).await;
    join(&mut alice, room).await;
    join(&mut bob, room).await;
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "old url", "request_id": 7}),
    )
    .await;
    assert_eq!(
        ok(&r, "create_message", 201, json!(7))["text"],
        json!("old url")
    );
    let push = bob.recv_json().await;
    ok(&push, "create_message", 201, json!(7));
    // The default user path is not served any more; the admin endpoint still is.
    let auth = format!("Bearer {}", gw.token(1, "alice"));
    let headers = [
        ("Authorization", auth.as_str()),
        ("Origin", "http://localhost:80"),
    ];
    assert!(status_of(&gw, USER, &headers).await.is_err());
    let mut admin = connect(&gw, ADMIN, &gw.admin_token(9, "root")).await;
    let r = req(&mut admin, json!({"action": "list", "request_id": 1})).await;
    ok(&r, "list", 200, json!(1));
    // method-args lives at its new path: the first frame without a token is refused in
    // its own error shape.
    let mut ma = WsClient::connect_with_headers(&gw.ws_url("/ws/method-args/"), &[])
        .await
        .expect("method-args upgrade");
    ma.send_json(&json!({"method": "get_chats", "args": {}}))
        .await;
    let r = ma.recv_json().await;
    assert_eq!(r["type"], json!("error"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_are_refused_in_the_envelope() {
    let gw = sqlite_with(|c| c.limits.max_frame_bytes = 1024).await;
    gw.create_user(1, "alice").await;
    let mut alice = connect(&gw, USER, &gw.token(1, "alice")).await;
    let big = json!({"action": "create_message", "msg_text": "x".repeat(2000), "request_id": 1});
    alice.send_json(&big).await;
    let r = alice.recv_json().await;
    err(&r, 400);
    assert_eq!(r["request_id"], Value::Null);
    let r = req(&mut alice, json!({"action": "list", "request_id": 2})).await;
    ok(&r, "list", 200, json!(2));
}

async fn other_dialects_reach_joined_connections(gw: TestGateway) {
    let (room, mut alice) = alice_joined(&gw).await;

    // Bob speaks method-args.
    let mut bob = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    bob.send_json(&json!({
        "method": "send_message",
        "access_token": gw.token(2, "bob"),
        "args": {"chat": room.0, "text": "hi from method-args", "event_response_key": "k"}
    }))
    .await;
    let answer = bob.recv_where("type", "message_created").await;
    assert_eq!(answer["data"]["event_response_key"], json!("k"));

    let push = alice.recv_json().await;
    let data = ok(&push, "create_message", 201, Value::Null);
    assert_eq!(data["text"], json!("hi from method-args"));
    assert_eq!(data["user"]["id"], json!(2));
    assert_eq!(data["room"]["pk"], json!(room.0));

    // Alice's message reaches bob on method-args.
    let r = req(
        &mut alice,
        json!({"action": "create_message", "msg_text": "hi back", "request_id": 3}),
    )
    .await;
    ok(&r, "create_message", 201, json!(3));
    let pushed = bob.recv_where("type", "new_message").await;
    assert!(pushed.to_string().contains("hi back"), "{pushed}");
    // Nothing else for alice (read marks, presence are silent).
    alice.assert_silent(300).await;
}
dual_backend_test!(other_dialects_reach_joined_connections);

async fn concurrent_senders_see_every_message_once(gw: TestGateway) {
    gw.create_user(1, "alice").await;
    gw.create_user(2, "bob").await;
    let room = group(&gw, &[1, 2], false).await;
    let mut alice = connect(&gw, USER, &gw.token(1, "alice")).await;
    let mut bob = connect(&gw, USER, &gw.token(2, "bob")).await;
    join(&mut alice, room).await;
    join(&mut bob, room).await;
    const N: usize = 40;
    // Both send without waiting for replies; each then reads 2N frames: N replies to
    // itself (its request_ids, in order) and N pushes of the other's messages.
    for i in 0..N {
        alice
            .send_json(&json!({"action": "create_message", "msg_text": format!("a{i}"), "request_id": format!("a{i}")}))
            .await;
        bob.send_json(&json!({"action": "create_message", "msg_text": format!("b{i}"), "request_id": format!("b{i}")}))
            .await;
    }
    for (me, other, c) in [("a", "b", &mut alice), ("b", "a", &mut bob)] {
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..2 * N {
            let f = c.recv_json().await;
            let rid = f["request_id"].as_str().expect("request_id").to_string();
            ok(&f, "create_message", 201, json!(rid.clone()));
            assert_eq!(f["data"]["text"], json!(rid.clone()));
            if rid.starts_with(me) {
                mine.push(rid);
            } else {
                theirs.push((f["data"]["id"].as_i64().expect("id"), rid));
            }
        }
        let expected: Vec<String> = (0..N).map(|i| format!("{me}{i}")).collect();
        assert_eq!(mine, expected, "replies in request order");
        let mut texts: Vec<String> = theirs.iter().map(|(_, t)| t.clone()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), N, "every push of {other} once");
        c.assert_silent(200).await;
    }
}
dual_backend_test!(concurrent_senders_see_every_message_once);
