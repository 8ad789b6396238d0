//! The method-args dialect on real sockets, against a real gateway, on SQLite and on
//! PostgreSQL. Each test follows a section of `protocol-specs/method-args/README.md`:
//! who receives what ("Answer" / "Receive"), which error type each bad input gets,
//! that the connection stays usable afterwards, and that nothing was stored.

use chat_core::{MessageId, RoomId, RoomRef, UserId};
use chat_testkit::{
    dual_backend_test, dual_backend_test_with, http_request, TestGateway, WsClient,
};
use serde_json::{json, Value};

const PATH: &str = "/ws/chat/";
/// How long "nothing else arrives" is watched for.
const QUIET_MS: u64 = 300;
/// The answers to a successful `add_to_chat` and `remove_from_chat`.
const ADDED: &str = "user_added_successful";
const REMOVED: &str = "user_removed_successful";

// ------------------------------------------------------------------------- helpers

fn name(id: i64) -> String {
    format!("user{id}")
}

/// Provision a user and return a token for them.
async fn user(gw: &TestGateway, id: i64) -> String {
    gw.create_user(id, &name(id)).await;
    gw.token(id, &name(id))
}

/// A connection authorized with `auth`.
async fn open(gw: &TestGateway, token: &str) -> WsClient {
    let mut c = WsClient::connect(&gw.ws_url(PATH)).await;
    c.send_json(&json!({"method": "auth", "access_token": token}))
        .await;
    assert_eq!(
        c.recv_json().await,
        json!({"type": "authenticated", "data": {"event_response_key": null}})
    );
    c
}

/// Provision the users `ids` (repeats are further connections of the same user) and
/// open one authorized connection per entry, in order.
async fn sign_in<const N: usize>(gw: &TestGateway, ids: [i64; N]) -> [WsClient; N] {
    let mut provisioned = std::collections::HashSet::new();
    let mut conns = Vec::with_capacity(N);
    for id in ids {
        if provisioned.insert(id) {
            user(gw, id).await;
        }
        conns.push(open(gw, &gw.token(id, &name(id))).await);
    }
    conns
        .try_into()
        .unwrap_or_else(|_| panic!("{N} connections"))
}

/// Send a method and return the next frame.
async fn call(c: &mut WsClient, method: &str, args: Value) -> Value {
    c.send_json(&json!({"method": method, "args": args})).await;
    c.recv_json().await
}

fn assert_error(v: &Value, kind: &str, key: &Value) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["data"]["type"], kind, "{v}");
    assert_eq!(&v["data"]["event_response_key"], key, "{v}");
    assert!(
        v["data"]["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail is a non-empty string: {v}"
    );
}

/// Send a method that must be refused with an error of `kind`, echoing the key of
/// `args` (null when it has none); the error frame.
async fn refused(c: &mut WsClient, method: &str, args: Value, kind: &str) -> Value {
    let v = call(c, method, args.clone()).await;
    assert_error(&v, kind, &args["event_response_key"]);
    v
}

/// Send `text` to `chat`; the answer must be `message_created`, and is returned.
async fn posted(c: &mut WsClient, chat: i64, text: &str) -> Value {
    let v = call(c, "send_message", json!({"chat": chat, "text": text})).await;
    assert_type(&v, "message_created");
    v
}

/// A membership change by `c` that succeeds with an answer of type `ty`: the answer
/// echoes the key of `args`, lists the users of `args` and shows the chat with
/// `members`; the chat.
async fn members_changed(
    c: &mut WsClient,
    method: &str,
    args: Value,
    ty: &str,
    members: &[i64],
) -> Value {
    let v = call(c, method, args.clone()).await;
    let data = assert_type(&v, ty);
    assert_eq!(data["event_response_key"], args["event_response_key"]);
    assert_eq!(data["user_ids"], args["users"]);
    assert_eq!(member_ids(&data["chat"]), members);
    data["chat"].clone()
}

/// Each of `conns` receives `frame` next.
async fn all_receive(conns: &mut [&mut WsClient], frame: &Value) {
    for c in conns.iter_mut() {
        assert_eq!(&c.recv_json().await, frame);
    }
}

fn assert_type<'a>(v: &'a Value, ty: &str) -> &'a Value {
    assert_eq!(v["type"], ty, "{v}");
    &v["data"]
}

fn member_ids(chat: &Value) -> Vec<i64> {
    chat["users"]
        .as_array()
        .unwrap_or_else(|| panic!("chat without users: {chat}"))
        .iter()
        .map(|u| u["pk"].as_i64().unwrap_or(-1))
        .collect()
}

/// The connection still answers: an `auth` without a token on an authorized channel.
async fn assert_usable(c: &mut WsClient) {
    assert_eq!(
        call(c, "auth", json!({"event_response_key": "still-there"})).await,
        json!({"type": "authenticated", "data": {"event_response_key": "still-there"}})
    );
}

/// Messages stored in a chat, through the REST history.
async fn stored(gw: &TestGateway, token: &str, chat: i64) -> Vec<Value> {
    let r = gw
        .http(
            "GET",
            &format!("/api/rooms/{chat}/messages"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["messages"].as_array().cloned().unwrap_or_default()
}

/// `creator` makes a group chat with `others`; everyone's `new_chat` is consumed.
async fn group(creator: &mut WsClient, others: &mut [&mut WsClient], users: &[i64]) -> i64 {
    let v = call(
        creator,
        "create_chat",
        json!({"users": users, "title": "Team"}),
    )
    .await;
    let chat = assert_type(&v, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{v}"));
    for c in others.iter_mut() {
        assert_type(&c.recv_json().await, "new_chat");
    }
    chat
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ------------------------------------------------------------------------- authorization

async fn unauthorized_channel_refuses_everything(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let mut c = WsClient::connect(&gw.ws_url(PATH)).await;
    for (method, args) in [
        ("auth", json!({"event_response_key": "k0"})),
        (
            "send_message",
            json!({"chat": 1, "text": "x", "event_response_key": "k1"}),
        ),
        (
            "create_chat",
            json!({"users": [2], "event_response_key": "k2"}),
        ),
        ("no_such_method", json!({"event_response_key": "k3"})),
        (
            "read_messages",
            json!({"chat": "not-an-id", "event_response_key": "k4"}),
        ),
    ] {
        let v = call(&mut c, method, args.clone()).await;
        assert_error(&v, "authorization_error", &args["event_response_key"]);
    }
    // The first valid token authorizes the channel, whatever the method.
    c.send_json(&json!({"method": "read_messages", "access_token": t1, "args": {"chat": 999, "event_response_key": 5}}))
        .await;
    assert_error(&c.recv_json().await, "access_error", &json!(5));
    assert_usable(&mut c).await;
    c.send_json(&json!({"method": "auth", "access_token": t1, "args": {"event_response_key": [1, {"a": null}]}}))
        .await;
    assert_eq!(
        c.recv_json().await,
        json!({"type": "authenticated", "data": {"event_response_key": [1, {"a": null}]}})
    );
    c.assert_silent(QUIET_MS).await;
}
dual_backend_test!(unauthorized_channel_refuses_everything);

async fn bad_tokens_are_refused_and_do_not_deauthorize(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let bad = [
        gw.expired_token(1),
        gw.forged_token(1),
        gw.alg_none_token(1),
        "garbage".to_string(),
    ];

    // On a fresh channel: refused, and the channel stays unauthorized.
    let mut c = WsClient::connect(&gw.ws_url(PATH)).await;
    for (i, token) in bad.iter().enumerate() {
        c.send_json(
            &json!({"method": "auth", "access_token": token, "args": {"event_response_key": i}}),
        )
        .await;
        assert_error(&c.recv_json().await, "authorization_error", &json!(i));
        let v = call(&mut c, "auth", json!({})).await;
        assert_error(&v, "authorization_error", &Value::Null);
    }

    // On an authorized channel: refused, not executed, and the channel stays authorized.
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let v = call(&mut a, "create_chat", json!({"users": [2]})).await;
    let chat = assert_type(&v, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or(0);
    assert_type(&b.recv_json().await, "new_chat");
    for token in &bad {
        a.send_json(&json!({"method": "send_message", "access_token": token, "args": {"chat": chat, "text": "no", "event_response_key": "bad"}}))
            .await;
        assert_error(&a.recv_json().await, "authorization_error", &json!("bad"));
    }
    // A valid token of another user: refused, the channel keeps its user.
    a.send_json(&json!({"method": "send_message", "access_token": t2, "args": {"chat": chat, "text": "as 2?", "event_response_key": "other"}}))
        .await;
    let v = a.recv_json().await;
    assert_error(&v, "authorization_error", &json!("other"));
    b.assert_silent(QUIET_MS).await;
    assert!(
        stored(&gw, &t1, chat).await.is_empty(),
        "nothing was stored"
    );

    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "text": "still me"}),
    )
    .await;
    assert_eq!(
        assert_type(&v, "message_created")["message"]["user"]["pk"],
        1
    );
    assert_type(&b.recv_json().await, "new_message");
    // Repeating the channel's own token in every message is fine.
    a.send_json(&json!({"method": "send_message", "access_token": t1, "args": {"chat": chat, "text": "again"}}))
        .await;
    assert_type(&a.recv_json().await, "message_created");
    assert_eq!(stored(&gw, &t1, chat).await.len(), 2);
}
dual_backend_test!(bad_tokens_are_refused_and_do_not_deauthorize);

async fn handshake_tokens(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    // Authorization: Bearer
    let mut h = WsClient::connect_with_headers(
        &gw.ws_url(PATH),
        &[("authorization", &format!("Bearer {t2}"))],
    )
    .await
    .unwrap_or_else(|s| panic!("refused with {s}"));
    // ?token=
    let mut q = WsClient::connect(&gw.ws_url(&format!("{PATH}?token={t1}"))).await;
    let v = call(
        &mut q,
        "create_chat",
        json!({"users": [2], "event_response_key": "q"}),
    )
    .await;
    assert_eq!(assert_type(&v, "chat_created")["event_response_key"], "q");
    assert_type(&h.recv_json().await, "new_chat");
    assert_usable(&mut h).await;
    // Sec-WebSocket-Protocol: Bearer, <token>
    let mut s = WsClient::connect_with_headers(
        &gw.ws_url(PATH),
        &[("sec-websocket-protocol", &format!("Bearer, {t1}"))],
    )
    .await
    .unwrap_or_else(|s| panic!("refused with {s}"));
    assert_eq!(s.subprotocol.as_deref(), Some("Bearer"));
    assert_usable(&mut s).await;
    // A refused handshake token: the socket opens, one authorization_error, unauthorized.
    let expired = gw.expired_token(1);
    let mut e = WsClient::connect(&gw.ws_url(&format!("{PATH}?token={expired}"))).await;
    assert_error(&e.recv_json().await, "authorization_error", &Value::Null);
    refused(&mut e, "auth", json!({}), "authorization_error").await;
    e.send_json(&json!({"method": "auth", "access_token": t1}))
        .await;
    assert_type(&e.recv_json().await, "authenticated");
}
dual_backend_test!(handshake_tokens);

// ------------------------------------------------------------------------- chats

async fn create_direct_chat_and_duplicate(gw: TestGateway) {
    let [mut a1, mut a2, mut b1, mut b2] = sign_in(&gw, [1, 1, 2, 2]).await;
    let t1 = gw.token(1, &name(1));

    let v = call(
        &mut a1,
        "create_chat",
        json!({"users": [1, 2], "event_response_key": {"id": 9}}),
    )
    .await;
    let data = assert_type(&v, "chat_created");
    assert_eq!(data["event_response_key"], json!({"id": 9}));
    let chat = &data["chat"];
    let id = chat["id"].as_i64().unwrap_or(0);
    assert_eq!(member_ids(chat), vec![1, 2]);
    assert_eq!(chat["title"], "", "no title is an empty string");
    let keys: Vec<&str> = chat
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 5, "{chat}");
    for k in ["id", "users", "title", "created_at", "updated_at"] {
        assert!(chat.get(k).is_some(), "{k} in {chat}");
    }
    let u = &chat["users"][0];
    for k in [
        "pk",
        "email",
        "first_name",
        "last_name",
        "photo",
        "color",
        "role",
    ] {
        assert!(u.get(k).is_some(), "{k} in {u}");
    }
    let created = chat["created_at"].as_str().unwrap_or("");
    assert!(
        created.ends_with('Z') && created.len() == 27,
        "DRF-style time: {created}"
    );

    assert_eq!(
        a2.recv_json().await,
        json!({"type": "chat_created", "data": {"chat": chat, "event_response_key": null}})
    );
    for b in [&mut b1, &mut b2] {
        assert_eq!(
            b.recv_json().await,
            json!({"type": "new_chat", "data": {"chat": chat}})
        );
    }
    a1.assert_silent(QUIET_MS).await;

    // A second direct chat for the pair, from either side.
    let v = refused(
        &mut a1,
        "create_chat",
        json!({"users": [2], "event_response_key": "dup"}),
        "chat_duplication_error",
    )
    .await;
    assert_eq!(v["data"]["chat_id"], id);
    let v = call(&mut b1, "create_chat", json!({"users": [1]})).await;
    assert_error(&v, "chat_duplication_error", &Value::Null);
    assert_eq!(v["data"]["chat_id"], id);
    a2.assert_silent(QUIET_MS).await;
    b2.assert_silent(0).await;

    // A chat with nobody else, or with someone who does not exist.
    refused(&mut a1, "create_chat", json!({"users": []}), "field_error").await;
    refused(&mut a1, "create_chat", json!({"users": [1]}), "field_error").await;
    refused(
        &mut a1,
        "create_chat",
        json!({"users": [424242]}),
        "field_error",
    )
    .await;
    let rooms = gw.http("GET", "/api/rooms", Some(&t1), None).await.json();
    assert_eq!(
        rooms["rooms"].as_array().map(Vec::len),
        Some(1),
        "nothing else was created"
    );
}
dual_backend_test!(create_direct_chat_and_duplicate);

async fn create_group_chat(gw: TestGateway) {
    let [mut a, mut b, mut c] = sign_in(&gw, [1, 2, 3]).await;
    let v = call(
        &mut a,
        "create_chat",
        json!({"users": ["2", 3], "title": "Weekend", "event_response_key": 1}),
    )
    .await;
    let data = assert_type(&v, "chat_created");
    assert_eq!(data["event_response_key"], 1);
    assert_eq!(data["chat"]["title"], "Weekend");
    assert_eq!(member_ids(&data["chat"]), vec![1, 2, 3]);
    for x in [&mut b, &mut c] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "new_chat", "data": {"chat": data["chat"]}})
        );
    }
    // Groups are not deduplicated; a null title is "".
    let v = call(
        &mut a,
        "create_chat",
        json!({"users": [2, 3], "title": null}),
    )
    .await;
    assert_eq!(assert_type(&v, "chat_created")["chat"]["title"], "");
    assert_type(&b.recv_json().await, "new_chat");
    assert_type(&c.recv_json().await, "new_chat");
}
dual_backend_test!(create_group_chat);

async fn update_chat(gw: TestGateway) {
    let [mut a1, mut a2, mut b, mut c, mut outsider] = sign_in(&gw, [1, 1, 2, 3, 4]).await;
    let chat = group(&mut a1, &mut [&mut b, &mut c], &[2, 3]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    // Any member renames; everyone gets chat_updated, the caller once.
    let rename = json!({"chat": chat, "title": "Renamed", "event_response_key": "r"});
    let v = call(&mut b, "update_chat", rename).await;
    let data = assert_type(&v, "chat_updated");
    assert_eq!(data["chat"]["title"], "Renamed");
    assert!(
        data.get("event_response_key").is_none(),
        "chat_updated has no key: {v}"
    );
    for x in [&mut a1, &mut a2, &mut c] {
        assert_eq!(x.recv_json().await, v);
    }
    b.assert_silent(QUIET_MS).await;
    // null clears the title.
    let v = call(&mut a1, "update_chat", json!({"chat": chat, "title": null})).await;
    assert_eq!(assert_type(&v, "chat_updated")["chat"]["title"], "");
    for x in [&mut a2, &mut b, &mut c] {
        assert_eq!(x.recv_json().await, v);
    }
    // Not a member, unknown chat, too long.
    let rename = json!({"chat": chat, "title": "mine", "event_response_key": 1});
    refused(&mut outsider, "update_chat", rename, "access_error").await;
    refused(
        &mut a1,
        "update_chat",
        json!({"chat": 987654, "title": "x"}),
        "access_error",
    )
    .await;
    let long = "x".repeat(300);
    refused(
        &mut a1,
        "update_chat",
        json!({"chat": chat, "title": long}),
        "field_error",
    )
    .await;
    b.assert_silent(QUIET_MS).await;
}
dual_backend_test!(update_chat);

// ------------------------------------------------------------------------- messages

async fn send_message_reaches_every_connection(gw: TestGateway) {
    let [mut a1, mut a2, mut b1, mut b2, mut c] = sign_in(&gw, [1, 1, 2, 2, 3]).await;
    let t2 = gw.token(2, &name(2));
    let chat = group(&mut a1, &mut [&mut b1, &mut b2, &mut c], &[2, 3]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    let hello = json!({"chat": chat, "text": "hello", "event_response_key": "m1"});
    let v = call(&mut a1, "send_message", hello).await;
    let data = assert_type(&v, "message_created");
    assert_eq!(data["event_response_key"], "m1");
    let m = &data["message"];
    assert_eq!(m["chat"], chat);
    assert_eq!(m["text"], "hello");
    assert_eq!(m["user"]["pk"], 1);
    assert_eq!(m["attached_files"], json!([]));
    assert_eq!(m["is_read"], false);
    for k in [
        "id",
        "chat",
        "user",
        "attached_files",
        "text",
        "created_at",
        "updated_at",
        "is_read",
    ] {
        assert!(m.get(k).is_some(), "{k} in {m}");
    }
    assert_eq!(
        a2.recv_json().await,
        json!({"type": "message_created", "data": {"message": m, "event_response_key": null}})
    );
    for x in [&mut b1, &mut b2, &mut c] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "new_message", "data": {"message": m}})
        );
    }
    a1.assert_silent(QUIET_MS).await;
    let history = stored(&gw, &t2, chat).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], m["id"]);
}
dual_backend_test!(send_message_reaches_every_connection);

async fn files_are_stored_and_served(gw: TestGateway) {
    let [mut a, mut b] = sign_in(&gw, [1, 2]).await;
    let chat = group(&mut a, &mut [&mut b], &[2]).await;

    let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let text = b"hello, file\n".to_vec();
    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "files": [
            {"name": "blob.bin", "data": b64(&binary)},
            {"name": "note.txt", "data": format!("data:text/plain;base64,{}", b64(&text))},
        ], "event_response_key": "f"}),
    )
    .await;
    let m = &assert_type(&v, "message_created")["message"];
    assert_eq!(m["text"], "", "a files-only message has empty text");
    let files = m["attached_files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 2, "{m}");
    assert_eq!(files[0]["name"], "blob.bin");
    assert_eq!(files[1]["name"], "note.txt");
    for f in &files {
        for k in ["id", "name", "file", "created_at"] {
            assert!(f.get(k).is_some(), "{k} in {f}");
        }
    }
    let pushed = b.recv_json().await;
    assert_eq!(
        assert_type(&pushed, "new_message")["message"]["attached_files"],
        json!(files)
    );

    for (f, want, ty) in [
        (&files[0], &binary, None),
        (&files[1], &text, Some("text/plain")),
    ] {
        let url = f["file"].as_str().unwrap_or("");
        assert!(url.starts_with("http://"), "absolute URL: {url}");
        let r = http_request("GET", url, &[], Vec::new()).await;
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(&r.body[..], &want[..], "{url}");
        if let Some(ty) = ty {
            let got = r
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(got.starts_with(ty), "{got}");
        }
    }
}
dual_backend_test!(files_are_stored_and_served);

async fn read_messages(gw: TestGateway) {
    let [mut a, mut b1, mut b2, mut c] = sign_in(&gw, [1, 2, 2, 3]).await;
    let t1 = gw.token(1, &name(1));
    let chat = group(&mut a, &mut [&mut b1, &mut b2, &mut c], &[2, 3]).await;

    // Reading an empty chat: answered, but nothing changed, so nobody else is told.
    let v = call(&mut b1, "read_messages", json!({"chat": chat})).await;
    assert_eq!(v, json!({"type": "messages_read", "data": {"chat": chat}}));
    b2.assert_silent(QUIET_MS).await;
    a.assert_silent(0).await;

    let mut ids = Vec::new();
    for text in ["one", "two"] {
        let v = call(&mut a, "send_message", json!({"chat": chat, "text": text})).await;
        ids.push(assert_type(&v, "message_created")["message"]["id"].clone());
        for x in [&mut b1, &mut b2, &mut c] {
            assert_type(&x.recv_json().await, "new_message");
        }
    }
    let v = call(
        &mut b1,
        "read_messages",
        json!({"chat": chat, "event_response_key": "r"}),
    )
    .await;
    assert_eq!(v, json!({"type": "messages_read", "data": {"chat": chat}}));
    assert_eq!(b2.recv_json().await, v, "the reader's other connection");
    let updates = json!({"type": "messages_updated", "data": {"updates": [
        {"id": ids[0], "fields": {"is_read": true}},
        {"id": ids[1], "fields": {"is_read": true}},
    ]}});
    assert_eq!(a.recv_json().await, updates);
    assert_eq!(c.recv_json().await, updates);
    b1.assert_silent(QUIET_MS).await;

    // Already read by B: C reading tells the others nothing new.
    let v = call(&mut c, "read_messages", json!({"chat": chat})).await;
    assert_type(&v, "messages_read");
    a.assert_silent(QUIET_MS).await;
    b1.assert_silent(0).await;
    // B reading again moves nothing: answered, and B's other connection is not told.
    let v = call(&mut b1, "read_messages", json!({"chat": chat})).await;
    assert_type(&v, "messages_read");
    b2.assert_silent(QUIET_MS).await;
    let history = stored(&gw, &t1, chat).await;
    assert!(history.iter().all(|m| m["is_read"] == true), "{history:?}");

    refused(
        &mut a,
        "read_messages",
        json!({"chat": 55555}),
        "access_error",
    )
    .await;
}
dual_backend_test!(read_messages);

// ------------------------------------------------------------------------- membership

/// `add_to_chat` of `users` to `chat` must be refused with an error of `kind`.
async fn refused_add(c: &mut WsClient, users: Value, chat: i64, kind: &str) {
    refused(
        c,
        "add_to_chat",
        json!({"users": users, "chat": chat}),
        kind,
    )
    .await;
}

async fn add_to_chat(gw: TestGateway) {
    let [mut a1, mut a2, mut b, mut c, mut d] = sign_in(&gw, [1, 1, 2, 3, 4]).await;
    let chat = group(&mut a1, &mut [&mut b, &mut c], &[2, 3]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    let add = json!({"users": [4], "chat": chat, "event_response_key": "add"});
    let chat_obj = members_changed(&mut a1, "add_to_chat", add, ADDED, &[1, 2, 3, 4]).await;
    let answer = json!({"type": "user_added_successful", "data": {"event_response_key": null, "user_ids": [4], "chat": chat_obj}});
    all_receive(&mut [&mut a2], &answer).await;
    let told = json!({"type": "user_added", "data": {"user_ids": [4], "chat": chat_obj}});
    all_receive(&mut [&mut b, &mut c], &told).await;
    assert_eq!(
        d.recv_json().await,
        json!({"type": "new_chat", "data": {"chat": chat_obj}})
    );
    a1.assert_silent(QUIET_MS).await;

    // The new member takes part at once.
    posted(&mut d, chat, "hi all").await;
    for x in [&mut a1, &mut a2, &mut b, &mut c] {
        assert_type(&x.recv_json().await, "new_message");
    }

    // Adding a member again changes nothing and tells nobody.
    let v = call(&mut b, "add_to_chat", json!({"users": [4], "chat": chat})).await;
    assert_eq!(
        assert_type(&v, "user_added_successful")["user_ids"],
        json!([])
    );
    d.assert_silent(QUIET_MS).await;
    a1.assert_silent(0).await;

    // Errors: unknown user, empty list, a direct chat, not a member.
    refused_add(&mut a1, json!([777]), chat, "field_error").await;
    refused_add(&mut a1, json!([]), chat, "field_error").await;
    let direct = call(&mut a1, "create_chat", json!({"users": [2]})).await;
    let direct = assert_type(&direct, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or(0);
    assert_type(&a2.recv_json().await, "chat_created");
    assert_type(&b.recv_json().await, "new_chat");
    refused_add(&mut a1, json!([3]), direct, "access_error").await;
    let other = call(&mut b, "create_chat", json!({"users": [3, 4]})).await;
    let other = assert_type(&other, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or(0);
    refused_add(&mut a1, json!([1]), other, "access_error").await;
}
dual_backend_test!(add_to_chat);

async fn remove_from_chat(gw: TestGateway) {
    let [mut a1, mut a2, mut b, mut c1, mut c2, mut d] = sign_in(&gw, [1, 1, 2, 3, 3, 4]).await;
    let chat = group(&mut a1, &mut [&mut b, &mut c1, &mut c2, &mut d], &[2, 3, 4]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    // Only the creator (or an admin) removes others.
    refused(
        &mut b,
        "remove_from_chat",
        json!({"users": [3], "chat": chat, "event_response_key": "no"}),
        "access_error",
    )
    .await;

    let rm = json!({"users": [3], "chat": chat, "event_response_key": "rm"});
    let chat_obj = members_changed(&mut a1, "remove_from_chat", rm, REMOVED, &[1, 2, 4]).await;
    let answer = json!({"type": "user_removed_successful", "data": {"event_response_key": null, "user_ids": [3], "chat": chat_obj}});
    all_receive(&mut [&mut a2], &answer).await;
    let told = json!({"type": "user_removed", "data": {"user_ids": [3], "chat": chat_obj}});
    all_receive(&mut [&mut b, &mut d], &told).await;
    let gone = json!({"type": "chat_removed", "data": {"chat": chat_obj}});
    all_receive(&mut [&mut c1, &mut c2], &gone).await;
    a1.assert_silent(QUIET_MS).await;

    // The removed user is out: no posting, no more pushes.
    refused(
        &mut c1,
        "send_message",
        json!({"chat": chat, "text": "hey"}),
        "access_error",
    )
    .await;
    posted(&mut b, chat, "bye C").await;
    for x in [&mut a1, &mut a2, &mut d] {
        assert_type(&x.recv_json().await, "new_message");
    }
    c2.assert_silent(QUIET_MS).await;

    // Leaving: the caller is initiator and removed user at once.
    let leave = json!({"users": [4], "chat": chat, "event_response_key": "leave"});
    let after = members_changed(&mut d, "remove_from_chat", leave, REMOVED, &[1, 2]).await;
    all_receive(
        &mut [&mut d],
        &json!({"type": "chat_removed", "data": {"chat": after}}),
    )
    .await;
    let told = json!({"type": "user_removed", "data": {"user_ids": [4], "chat": after}});
    all_receive(&mut [&mut a1, &mut a2, &mut b], &told).await;
    d.assert_silent(QUIET_MS).await;
    c1.assert_silent(0).await;
}
dual_backend_test!(remove_from_chat);

// ------------------------------------------------------------------------- bad input

async fn bad_input_gets_the_right_error_and_nothing_is_stored(gw: TestGateway) {
    let [mut a, mut b, mut outsider] = sign_in(&gw, [1, 2, 3]).await;
    let t1 = gw.token(1, &name(1));
    let chat = group(&mut a, &mut [&mut b], &[2]).await;

    let raw: [(&str, &str, Value); 9] = [
        ("not json at all", "field_error", Value::Null),
        (
            "{\"method\": \"send_message\", ",
            "field_error",
            Value::Null,
        ),
        ("[1, 2, 3]", "field_error", Value::Null),
        ("\"send_message\"", "field_error", Value::Null),
        (
            r#"{"args": {"chat": 1, "text": "x", "event_response_key": "nomethod"}}"#,
            "field_error",
            json!("nomethod"),
        ),
        (
            r#"{"method": "delete_everything", "args": {"event_response_key": "unknown"}}"#,
            "access_error",
            json!("unknown"),
        ),
        (
            r#"{"method": "send_message", "args": {"event_response_key": "missing"}}"#,
            "field_error",
            json!("missing"),
        ),
        (
            r#"{"method": "send_message", "args": {"chat": "abc", "text": "x", "event_response_key": "typed"}}"#,
            "field_error",
            json!("typed"),
        ),
        (
            r#"{"method": "send_message", "args": [1]}"#,
            "field_error",
            Value::Null,
        ),
    ];
    for (text, kind, key) in raw {
        a.send_text(text).await;
        let v = a.recv_json().await;
        assert_error(&v, kind, &key);
        assert_usable(&mut a).await;
    }
    let detail = {
        a.send_text(r#"{"method": "send_message", "args": {"chat": [], "text": "x"}}"#)
            .await;
        a.recv_json().await["data"]["detail"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        detail.contains("args.chat"),
        "the detail names the field: {detail}"
    );

    let cases = [
        (
            json!({"chat": 31337, "text": "x", "event_response_key": "nochat"}),
            "access_error",
        ),
        (
            json!({"chat": chat, "event_response_key": "empty"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "text": "   ", "files": [], "event_response_key": "blank"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "files": [{"name": "x.bin", "data": "@@@ not base64 @@@"}], "event_response_key": "b64"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "files": [{"name": "x.bin"}], "event_response_key": "nodata"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "text": "y".repeat(20_000), "event_response_key": "long"}),
            "field_error",
        ),
    ];
    for (args, kind) in cases {
        let v = call(&mut a, "send_message", args.clone()).await;
        assert_error(&v, kind, &args["event_response_key"]);
    }
    let intrude = json!({"chat": chat, "text": "intruder", "event_response_key": 0});
    refused(&mut outsider, "send_message", intrude, "access_error").await;
    a.send_binary(b"\x00\x01binary").await;
    assert_error(&a.recv_json().await, "field_error", &Value::Null);

    b.assert_silent(QUIET_MS).await;
    assert!(
        stored(&gw, &t1, chat).await.is_empty(),
        "nothing was stored"
    );
    assert_usable(&mut a).await;
    assert_usable(&mut outsider).await;
    posted(&mut a, chat, "finally").await;
    assert_type(&b.recv_json().await, "new_message");
}
dual_backend_test!(bad_input_gets_the_right_error_and_nothing_is_stored);

/// Oversize frames and files need a gateway with small limits.
async fn oversize(gw: TestGateway) {
    let [mut a, mut b] = sign_in(&gw, [1, 2]).await;
    let t1 = gw.token(1, &name(1));
    let chat = group(&mut a, &mut [&mut b], &[2]).await;

    // A frame over the limit: dropped unread, no key can be recovered.
    let big = json!({"method": "send_message", "args": {"chat": chat, "text": "z".repeat(20 * 1024), "event_response_key": "big"}});
    a.send_json(&big).await;
    let v = a.recv_json().await;
    assert_error(&v, "field_error", &Value::Null);
    assert!(
        v["data"]["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("frame too large"),
        "{v}"
    );
    assert_usable(&mut a).await;

    // A file over the attachment limit, in a frame under the frame limit.
    let file = vec![7u8; 2000];
    let v = call(&mut a, "send_message", json!({"chat": chat, "text": "see file", "files": [{"name": "big.bin", "data": b64(&file)}], "event_response_key": "f"})).await;
    assert_error(&v, "field_error", &json!("f"));
    // One just under the limit is fine.
    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "files": [{"name": "ok.bin", "data": b64(&file[..1000])}]}),
    )
    .await;
    assert_type(&v, "message_created");
    assert_type(&b.recv_json().await, "new_message");
    b.assert_silent(QUIET_MS).await;
    assert_eq!(
        stored(&gw, &t1, chat).await.len(),
        1,
        "only the valid message was stored"
    );
}
dual_backend_test_with!(oversize, |c| {
    c.limits.max_upload_frame_bytes = 16 * 1024;
    c.limits.max_attachment_bytes = 1024;
});

// ------------------------------------------------------------------------- other dialects

async fn events_from_other_dialects(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let service = gw.service();
    let p1 = service
        .authenticate(&t1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let p2 = service
        .authenticate(&t2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let mut c = open(&gw, &t3).await;

    // A direct chat created implicitly elsewhere (e.g. a first message on type-content).
    let room = service
        .direct_room(&p1, UserId(3))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v = a.recv_json().await;
    assert_eq!(
        assert_type(&v, "chat_created")["event_response_key"],
        Value::Null
    );
    let v = c.recv_json().await;
    assert_eq!(assert_type(&v, "new_chat")["chat"]["id"], room.id().0);
    b.assert_silent(QUIET_MS).await;

    let chat = group(&mut a, &mut [&mut b], &[2]).await;
    // A message sent elsewhere.
    let (_, m) = service
        .send_message(
            &p2,
            chat_core::SendMessage::text(RoomRef::Id(RoomId(chat)), "from afar"),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v = a.recv_json().await;
    assert_eq!(
        assert_type(&v, "new_message")["message"]["text"],
        "from afar"
    );
    let v = b.recv_json().await;
    assert_eq!(
        assert_type(&v, "message_created")["event_response_key"],
        Value::Null
    );

    // Typing and presence have no words here.
    service
        .typing(&p2, &RoomRef::Id(RoomId(chat)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.close().await;
    let mut c = open(&gw, &t3).await;
    a.assert_silent(QUIET_MS).await;
    c.assert_silent(0).await;

    // An edit and a deletion become messages_updated, for everyone.
    let (_, edited) = service
        .edit_message(&p2, m.message.id, "fixed text", None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let updated_at = {
        let v = a.recv_json().await;
        let u = &assert_type(&v, "messages_updated")["updates"][0];
        assert_eq!(u["id"], m.message.id.0);
        assert_eq!(u["fields"]["text"], "fixed text");
        u["fields"]["updated_at"].clone()
    };
    assert!(updated_at.is_string(), "{updated_at}");
    assert_eq!(edited.message.text, "fixed text");
    assert_type(&b.recv_json().await, "messages_updated");
    service
        .delete_messages(&p2, &[MessageId(m.message.id.0)], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let want = json!({"type": "messages_updated", "data": {"updates": [
        {"id": m.message.id.0, "fields": {"is_deleted": true, "text": ""}}]}});
    assert_eq!(a.recv_json().await, want);
    assert_eq!(b.recv_json().await, want);

    // A read elsewhere.
    let id = posted(&mut a, chat, "read me").await["data"]["message"]["id"].clone();
    assert_type(&b.recv_json().await, "new_message");
    service
        .mark_read(&p2, &RoomRef::Id(RoomId(chat)), None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        b.recv_json().await,
        json!({"type": "messages_read", "data": {"chat": chat}})
    );
    assert_eq!(
        a.recv_json().await,
        json!({"type": "messages_updated", "data": {"updates": [{"id": id, "fields": {"is_read": true}}]}})
    );
}
dual_backend_test!(events_from_other_dialects);

// ------------------------------------------------------------------------- durability

async fn acknowledged_messages_survive_a_restart(mut gw: TestGateway) {
    let [mut a, mut b] = sign_in(&gw, [1, 2]).await;
    let t2 = gw.token(2, &name(2));
    let chat = group(&mut a, &mut [&mut b], &[2]).await;
    let id = posted(&mut a, chat, "durable").await["data"]["message"]["id"].clone();
    drop(a);
    drop(b);
    gw.restart().await;
    let history = stored(&gw, &t2, chat).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], id);
    let mut b = open(&gw, &t2).await;
    posted(&mut b, chat, "after restart").await;
}
dual_backend_test!(acknowledged_messages_survive_a_restart);
