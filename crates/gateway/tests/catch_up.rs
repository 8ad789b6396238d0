//! Catching up over REST after a reconnect (`GET /api/rooms/{id}/messages?after=`,
//! `GET /api/sync`), room lists with unread counts and last messages, and deleting a
//! room (`DELETE /api/rooms/{id}`) as every dialect shows it — on a real gateway, on
//! SQLite and on PostgreSQL.

use chat_core::{MessageId, Principal, RoomId, RoomRef, SendMessage};
use chat_testkit::steps::create_users;
use chat_testkit::{dual_backend_test, HttpResponse, TestGateway, WsClient};
use serde_json::{json, Value};

/// The principal a token of `id` signs in as (through the gateway's own verifier).
async fn principal(gw: &TestGateway, id: i64, name: &str) -> Principal {
    gw.service()
        .authenticate(&gw.token(id, name))
        .await
        .expect("a valid token")
}

/// `who` sends `text` in `room`; the committed message's id.
async fn send(gw: &TestGateway, who: &Principal, room: i64, text: &str) -> i64 {
    let (_, m) = gw
        .service()
        .send_message(
            who,
            SendMessage::text(RoomRef::Id(RoomId(room)), text),
            None,
        )
        .await
        .expect("sent");
    m.message.id.0
}

async fn get(gw: &TestGateway, path: &str, token: &str) -> HttpResponse {
    gw.http("GET", path, Some(token), None).await
}

/// An admin-made group room of `members`; its id.
async fn group(gw: &TestGateway, members: &[i64]) -> i64 {
    let admin = gw.admin_token(100, "root");
    let r = gw
        .http(
            "POST",
            "/api/rooms",
            Some(&admin),
            Some(json!({"kind": "group", "title": "team", "members": members})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_i64().expect("a room id")
}

fn ids(messages: &Value) -> Vec<i64> {
    messages
        .as_array()
        .expect("a list of messages")
        .iter()
        .map(|m| m["id"].as_i64().expect("an id"))
        .collect()
}

/// The entry of room `id` in a `rooms` list.
fn room_in(rooms: &Value, id: i64) -> Option<Value> {
    rooms
        .as_array()
        .expect("a list of rooms")
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
}

async fn messages_after_pages_oldest_first(gw: TestGateway) {
    create_users(&gw, &[(1, "ann"), (2, "bob"), (3, "cat")]).await;
    let (ann, bob) = (
        principal(&gw, 1, "ann").await,
        principal(&gw, 2, "bob").await,
    );
    let room = group(&gw, &[1, 2]).await;
    let m1 = send(&gw, &ann, room, "one").await;
    let m2 = send(&gw, &bob, room, "two").await;
    let m3 = send(&gw, &ann, room, "three").await;
    let t = gw.token(1, "ann");
    let path = |q: &str| format!("/api/rooms/{room}/messages?{q}");

    let r = get(&gw, &path(&format!("after={m1}&limit=1")), &t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ids(&r.json()["messages"]), vec![m2]);
    assert_eq!(r.json()["has_more"], true);
    let r = get(&gw, &path(&format!("after={m2}&limit=1")), &t).await;
    assert_eq!(ids(&r.json()["messages"]), vec![m3]);
    assert_eq!(r.json()["has_more"], false, "m3 is the last one");
    let r = get(&gw, &path("after=0"), &t).await;
    assert_eq!(ids(&r.json()["messages"]), vec![m1, m2, m3], "oldest first");
    assert_eq!(r.json()["messages"][1]["author"]["username"], "bob");
    assert_eq!(r.json()["has_more"], false);
    let r = get(&gw, &path(&format!("after={m3}")), &t).await;
    assert_eq!(ids(&r.json()["messages"]), Vec::<i64>::new());
    // Paging back is unchanged: newest first.
    let r = get(&gw, &path(&format!("before={m3}")), &t).await;
    assert_eq!(ids(&r.json()["messages"]), vec![m2, m1]);

    // Bad input: the REST error shape, nothing else happens.
    for q in [
        "after=x",
        "after=1&limit=0",
        "after=1&limit=501",
        "after=1&before=3",
    ] {
        let r = get(&gw, &path(q), &t).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid", "{q}");
    }
    // A non-member is refused as history refuses one; no token is 401.
    let r = get(&gw, &path("after=0"), &gw.token(3, "cat")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"], "not_found");
    let r = gw.http("GET", &path("after=0"), None, None).await;
    assert_eq!(r.status, 401);
}
dual_backend_test!(messages_after_pages_oldest_first);

async fn sync_reports_everything_after_an_id(gw: TestGateway) {
    create_users(&gw, &[(1, "ann"), (2, "bob"), (3, "cat")]).await;
    let (ann, bob, cat) = (
        principal(&gw, 1, "ann").await,
        principal(&gw, 2, "bob").await,
        principal(&gw, 3, "cat").await,
    );
    let team = group(&gw, &[1, 2]).await;
    let pair = group(&gw, &[1, 3]).await;
    let foreign = group(&gw, &[2, 3]).await;
    let m1 = send(&gw, &ann, team, "one").await;
    let m2 = send(&gw, &ann, team, "two").await;
    let m3 = send(&gw, &bob, team, "three").await;
    send(&gw, &bob, foreign, "not for ann").await;
    let t = gw.token(1, "ann");

    // Room lists: unread counts and last messages, per caller.
    let r = get(&gw, "/api/rooms", &t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rooms = &r.json()["rooms"];
    let entry = room_in(rooms, team).expect("ann is in team");
    assert_eq!(entry["unread"], 1, "bob's m3");
    assert_eq!(entry["last_message"]["id"], m3);
    assert_eq!(entry["members"].as_array().map(Vec::len), Some(2));
    let entry = room_in(rooms, pair).expect("ann is in pair");
    assert_eq!(entry["unread"], 0);
    assert_eq!(entry["last_message"], Value::Null);
    assert!(room_in(rooms, foreign).is_none(), "not ann's room");
    let r = get(&gw, "/api/rooms", &gw.token(2, "bob")).await;
    let entry = room_in(&r.json()["rooms"], team).expect("bob is in team");
    assert_eq!(entry["unread"], 2, "ann's m1 and m2, for bob");

    // Ann saw up to m3, then went away. Meanwhile: a new message in each of her
    // rooms, an edit and a deletion of older messages, and a read mark.
    let m4 = send(&gw, &bob, team, "four").await;
    gw.service()
        .edit_message(&ann, MessageId(m2), "two, edited", None, None)
        .await
        .expect("edited");
    gw.service()
        .delete_messages(&ann, &[MessageId(m1)], None, None)
        .await
        .expect("deleted");
    gw.service()
        .mark_read(&bob, &RoomRef::Id(RoomId(team)), Some(MessageId(m4)), None)
        .await
        .expect("read");
    let m5 = send(&gw, &cat, pair, "five").await;

    let r = get(&gw, &format!("/api/sync?since={m3}"), &t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["since"], m3);
    assert_eq!(body["next_since"], m5);
    assert_eq!(body["has_more"], false);
    assert!(room_in(&body["rooms"], foreign).is_none());
    let t_room = room_in(&body["rooms"], team).expect("team");
    assert_eq!(ids(&t_room["messages"]), vec![m4]);
    assert_eq!(t_room["has_more"], false);
    assert_eq!(
        ids(&t_room["changed"]),
        vec![m2, m1],
        "in the order they changed"
    );
    assert_eq!(t_room["changed"][0]["text"], "two, edited");
    assert!(t_room["changed"][0]["edited_at"].is_string());
    assert_eq!(t_room["changed"][1]["deleted"], true);
    assert_eq!(t_room["changed"][1]["text"], "");
    assert_eq!(t_room["changed_has_more"], false);
    let marks = t_room["read_marks"].as_array().expect("read marks");
    assert!(
        marks.contains(&json!({"user_id": 2, "last_read": m4})),
        "{marks:?}"
    );
    assert!(marks.contains(&json!({"user_id": 1, "last_read": null})));
    assert_eq!(t_room["unread"], 2, "m3 and m4 are bob's, unread by ann");
    assert_eq!(t_room["last_message"]["id"], m4);
    let p_room = room_in(&body["rooms"], pair).expect("pair");
    assert_eq!(ids(&p_room["messages"]), vec![m5]);
    assert_eq!(ids(&p_room["changed"]), Vec::<i64>::new());

    // From where that sync left off: nothing new.
    let r = get(&gw, &format!("/api/sync?since={m5}"), &t).await;
    for room in r.json()["rooms"].as_array().expect("rooms") {
        assert_eq!(ids(&room["messages"]), Vec::<i64>::new());
        assert_eq!(ids(&room["changed"]), Vec::<i64>::new());
    }
    assert_eq!(r.json()["next_since"], m5);

    // Truncated: a room says has_more, and the rest comes from `after`.
    let r = get(&gw, "/api/sync?since=0&limit=2", &t).await;
    let body = r.json();
    assert_eq!(body["has_more"], true);
    let t_room = room_in(&body["rooms"], team).expect("team");
    assert_eq!(ids(&t_room["messages"]), vec![m1, m2]);
    assert_eq!(t_room["has_more"], true);
    let rest = get(
        &gw,
        &format!("/api/rooms/{team}/messages?after={m2}&limit=2"),
        &t,
    )
    .await;
    assert_eq!(ids(&rest.json()["messages"]), vec![m3, m4]);
    assert_eq!(rest.json()["has_more"], false);

    for q in ["", "?since=x", "?since=1&limit=0", "?since=1&limit=9999"] {
        let r = get(&gw, &format!("/api/sync{q}"), &t).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid");
    }
    assert_eq!(
        gw.http("GET", "/api/sync?since=0", None, None).await.status,
        401
    );
    assert_eq!(
        gw.http("POST", "/api/sync?since=0", Some(&t), None)
            .await
            .status,
        405
    );
}
dual_backend_test!(sync_reports_everything_after_an_id);

/// A method-args connection signed in as `id`.
async fn method_args(gw: &TestGateway, token: &str) -> WsClient {
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    c.send_json(&json!({"method": "auth", "access_token": token}))
        .await;
    c.recv_where("type", "authenticated").await;
    c
}

async fn deleting_a_room(gw: TestGateway) {
    create_users(&gw, &[(1, "ann"), (2, "bob")]).await;
    let ann = principal(&gw, 1, "ann").await;
    let admin = gw.admin_token(100, "root");
    let room = group(&gw, &[1, 2]).await;
    let m1 = send(&gw, &ann, room, "soon gone").await;
    let mut bob = method_args(&gw, &gw.token(2, "bob")).await;
    let bearer = format!("Bearer {}", gw.token(1, "ann"));
    let mut tc =
        WsClient::connect_with_headers(&gw.ws_url("/ws/chats/"), &[("authorization", &bearer)])
            .await
            .expect("type-content takes the token");

    // Only an admin deletes; a missing room is 404.
    let r = gw
        .http(
            "DELETE",
            &format!("/api/rooms/{room}"),
            Some(&gw.token(1, "ann")),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"], "forbidden");
    let r = gw
        .http("DELETE", "/api/rooms/999999", Some(&admin), None)
        .await;
    assert_eq!(r.status, 404);
    let r = gw.http("DELETE", "/api/rooms/x", Some(&admin), None).await;
    assert_eq!(r.status, 400);

    let r = gw
        .http("DELETE", &format!("/api/rooms/{room}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], room);
    assert_eq!(r.json()["members"].as_array().map(Vec::len), Some(2));

    // method-args: chat_removed with the chat as it was.
    let v = bob.recv_where("type", "chat_removed").await;
    assert_eq!(v["data"]["chat"]["id"], room);
    assert_eq!(v["data"]["chat"]["users"].as_array().map(Vec::len), Some(2));
    // type-content has no word for it: nothing but presence before the answer to
    // its next request, and the connection is still usable.
    tc.send_json(&json!({"type": "message_read", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": 1}}))
        .await;
    loop {
        let v = tc.recv_json().await;
        if v.get("error").is_some() {
            break;
        }
        let kind = v["type"].as_str().unwrap_or_default();
        assert!(kind == "set_online" || kind == "set_offline", "{v}");
    }

    // Gone for everyone: the room, its history, a second deletion.
    let t = gw.token(1, "ann");
    let r = get(&gw, "/api/rooms", &t).await;
    assert!(room_in(&r.json()["rooms"], room).is_none());
    let r = get(&gw, &format!("/api/rooms/{room}/messages"), &t).await;
    assert_eq!(r.status, 404);
    let r = get(&gw, &format!("/api/sync?since={}", m1 - 1), &t).await;
    assert!(room_in(&r.json()["rooms"], room).is_none());
    let r = gw
        .http("DELETE", &format!("/api/rooms/{room}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, 404);
    assert!(gw
        .service()
        .store()
        .message(MessageId(m1))
        .await
        .expect("read")
        .is_none());

    // A deleted direct room can be made again (the pair's key is free).
    let mut ann_ma = method_args(&gw, &t).await;
    ann_ma
        .send_json(&json!({"method": "create_chat", "args": {"users": [2]}}))
        .await;
    let direct = ann_ma.recv_where("type", "chat_created").await["data"]["chat"]["id"]
        .as_i64()
        .expect("a chat id");
    bob.recv_where("type", "new_chat").await;
    let r = gw
        .http(
            "DELETE",
            &format!("/api/rooms/{direct}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    ann_ma.recv_where("type", "chat_removed").await;
    ann_ma
        .send_json(&json!({"method": "create_chat", "args": {"users": [2]}}))
        .await;
    let again = ann_ma.recv_where("type", "chat_created").await["data"]["chat"]["id"]
        .as_i64()
        .expect("a chat id");
    assert_ne!(again, direct);
}
dual_backend_test!(deleting_a_room);

async fn an_admins_other_connections_hear_of_members_added(gw: TestGateway) {
    create_users(&gw, &[(1, "ann"), (2, "bob"), (3, "cat")]).await;
    let room = group(&gw, &[1, 2]).await;
    let admin = gw.admin_token(100, "root");
    let (mut a1, mut a2) = (
        method_args(&gw, &admin).await,
        method_args(&gw, &admin).await,
    );
    a1.send_json(&json!({"method": "add_to_chat", "args": {"users": [3], "chat": room, "event_response_key": "add"}}))
        .await;
    let mine = a1.recv_where("type", "user_added_successful").await;
    assert_eq!(mine["data"]["event_response_key"], "add");
    let other = a2.recv_where("type", "user_added_successful").await;
    assert_eq!(other["data"]["event_response_key"], Value::Null);
    assert_eq!(other["data"]["user_ids"], json!([3]));
    assert_eq!(other["data"]["chat"]["id"], room);
    // As removing already did.
    a1.send_json(&json!({"method": "remove_from_chat", "args": {"users": [3], "chat": room}}))
        .await;
    a1.recv_where("type", "user_removed_successful").await;
    a2.recv_where("type", "user_removed_successful").await;
}
dual_backend_test!(an_admins_other_connections_hear_of_members_added);
