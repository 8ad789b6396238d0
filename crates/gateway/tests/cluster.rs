//! Several nodes on one PostgreSQL behave as one server: real node processes (the
//! binary), an in-process node where the test needs the service, real WebSocket
//! clients, and the faults the cluster must survive (kill -9, a SIGTERM, the LISTEN
//! session cut).

mod cluster_support;

use chat_core::RoomKind;
use chat_testkit::steps::create_users;
use chat_testkit::{TestGateway, WsClient};
use cluster_support::{Node, RedisServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A type-content client at `base` (`ws://host:port`).
async fn tc(base: &str, token: &str) -> WsClient {
    WsClient::connect_with_headers(
        &format!("{base}/ws/chats/"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .expect("type-content upgrade")
}

/// Options on PostgreSQL without the per-user and per-connection rates: these tests
/// push bursts of hundreds of messages from one user (the limits are tested in
/// tests/abuse.rs).
fn unthrottled(opts: chat_testkit::Options) -> chat_testkit::Options {
    let mut opts = chat_testkit::Options {
        backend: chat_testkit::Backend::Postgres,
        ..opts
    };
    opts.limits.user_rate = chat_core::throttle::Rate::UNLIMITED;
    opts.limits.conn_rate = chat_core::throttle::Rate::UNLIMITED;
    opts
}

/// `(id, text)` of every message stored in `room`, oldest first.
async fn stored_oldest_first(gw: &TestGateway, room: chat_core::RoomId) -> Vec<(i64, String)> {
    let mut stored: Vec<(i64, String)> = gw
        .service()
        .store()
        .history(room, None, 1000)
        .await
        .expect("history")
        .into_iter()
        .map(|m| (m.id.0, m.text))
        .collect();
    stored.reverse();
    stored
}

fn ws_base(gw: &TestGateway) -> String {
    gw.ws_url("").trim_end_matches('/').to_string()
}

fn node_base(n: &Node) -> String {
    format!("ws://{}", n.addr)
}

fn say(room: i64, text: &str) -> Value {
    json!({"type": "new_message", "content": {
        "chat_type": "group", "chat_id": room, "message": text, "reply_to": null}})
}

/// The next `n` new messages a client receives (other frames skipped), within `limit`.
async fn messages(ws: &mut WsClient, n: usize, limit: Duration) -> Vec<(i64, String)> {
    let until = Instant::now() + limit;
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let left = until.saturating_duration_since(Instant::now());
        let Some(text) = ws.try_recv_text(left).await else {
            panic!(
                "only {} of {n} messages arrived within {limit:?}",
                got.len()
            );
        };
        let v: Value = serde_json::from_str(&text).expect("JSON frame");
        if v["type"] == "new_message" {
            got.push((
                v["content"]["message_id"].as_i64().expect("message id"),
                v["content"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
    }
    got
}

/// The next presence push about `user` within `limit`: (online, when).
async fn presence(ws: &mut WsClient, user: i64, limit: Duration) -> Option<(bool, Instant)> {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let text = ws.try_recv_text(left).await?;
        let v: Value = serde_json::from_str(&text).expect("JSON frame");
        let t = v["type"].as_str().unwrap_or_default();
        if (t == "set_online" || t == "set_offline") && v["content"]["user_id"] == user {
            return Some((t == "set_online", Instant::now()));
        }
    }
}

/// An unthrottled gateway on PostgreSQL and a second node on its database.
async fn cluster_of_two() -> Option<(TestGateway, Node)> {
    let a = TestGateway::start(unthrottled(chat_testkit::Options::default())).await?;
    let b = Node::spawn(a.database_url(), &[]).await;
    Some((a, b))
}

async fn cluster_of_three() -> Option<(TestGateway, Node, Node)> {
    let (a, b) = cluster_of_two().await?;
    let c = Node::spawn(a.database_url(), &[]).await;
    Some((a, b, c))
}

/// Three nodes with the Redis broker on a Redis server of the test's own.
async fn redis_cluster_of_three() -> Option<(TestGateway, Node, Node, RedisServer)> {
    let redis = RedisServer::start().await?;
    let a = TestGateway::start(unthrottled(chat_testkit::Options {
        broker: Some(redis.url()),
        ..Default::default()
    }))
    .await?;
    let flag = ["--broker", &redis.url()];
    let b = Node::spawn(a.database_url(), &flag).await;
    let c = Node::spawn(a.database_url(), &flag).await;
    Some((a, b, c, redis))
}

fn assert_in_order_once(got: &[(i64, String)], texts: &[String], who: &str) {
    let seen: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    let want: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_eq!(
        seen, want,
        "{who}: the burst out of order, or not once each"
    );
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "{who}: message ids not increasing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_two_connections_of_a_user_on_two_nodes_in_order_once() {
    let Some((a, b, c)) = cluster_of_three().await else {
        return;
    };
    burst_to_two_nodes(&a, &b, &c, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_burst_survives_a_redis_restart_in_order_once() {
    let Some((a, b, c, mut redis)) = redis_cluster_of_three().await else {
        return;
    };
    burst_to_two_nodes(&a, &b, &c, Some(&mut redis)).await;
    for node in [&b, &c] {
        let log = node.log_text();
        assert!(
            log.contains(&format!("redis 127.0.0.1:{}", redis.port)),
            "{log}"
        );
        assert!(
            log.contains("Redis subscription was lost"),
            "the node noticed the restart: {log}"
        );
    }
    // Every node of a database uses the same broker: one without is refused.
    let mut refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-gateway"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            a.database_url(),
        ])
        .args(["--jwt-secret", chat_testkit::TEST_SECRET])
        .args([
            "--data-dir",
            &std::env::temp_dir()
                .join(format!("chat-refused-{}", std::process::id()))
                .display()
                .to_string(),
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let status = tokio::time::timeout(Duration::from_secs(30), refused.wait())
        .await
        .expect("a node with another broker exits at once")
        .expect("exit status");
    assert!(!status.success());
    let mut err = String::new();
    use tokio::io::AsyncReadExt;
    refused
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .await
        .expect("stderr text");
    assert!(err.contains("same --broker"), "{err}");
}

/// 300 messages from node A to one user's connections on B and C. With `redis`,
/// Redis is restarted a third of the way through.
async fn burst_to_two_nodes(
    a: &TestGateway,
    b: &Node,
    c: &Node,
    mut redis: Option<&mut RedisServer>,
) {
    a.create_user(1, "sender").await;
    a.create_user(2, "reader").await;
    let room = a.create_room(RoomKind::Group, &[1, 2], false).await.0;
    let admin = a.admin_token(99, "admin");
    let reader = a.token(2, "reader");
    let mut on_b = tc(&node_base(b), &reader).await;
    let mut on_c = tc(&node_base(c), &reader).await;
    b.wait_connections(&admin, 2, 1).await;
    c.wait_connections(&admin, 2, 1).await;
    let mut sender = tc(&ws_base(a), &a.token(1, "sender")).await;
    let texts: Vec<String> = (0..300).map(|i| format!("burst {i}")).collect();
    for (i, t) in texts.iter().enumerate() {
        sender.send_json(&say(room, t)).await;
        if i == 100 {
            if let Some(r) = redis.as_deref_mut() {
                r.restart().await;
            }
        }
    }
    let limit = Duration::from_secs(60);
    let (got_b, got_c, got_a) = tokio::join!(
        messages(&mut on_b, 300, limit),
        messages(&mut on_c, 300, limit),
        messages(&mut sender, 300, limit),
    );
    assert_in_order_once(&got_b, &texts, "reader on node B");
    assert_in_order_once(&got_c, &texts, "reader on node C");
    assert_in_order_once(&got_a, &texts, "sender on node A");
    assert_eq!(got_b, got_c, "both connections saw the same ids");
    // Nothing more: exactly once.
    on_b.assert_silent(300).await;
    on_c.assert_silent(300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_corrected_after_kill_9_and_at_once_after_sigterm() {
    let Some((a, mut b, mut c)) = cluster_of_three().await else {
        return;
    };
    a.create_user(3, "leaver").await;
    a.create_user(4, "watcher").await;
    a.create_room(RoomKind::Group, &[3, 4], false).await;
    let admin = a.admin_token(99, "admin");
    let mut watcher = tc(&ws_base(&a), &a.token(4, "watcher")).await;
    a.wait_connections(4, 1).await;

    let leaver_token = a.token(3, "leaver");
    let _on_c = tc(&node_base(&c), &leaver_token).await;
    c.wait_connections(&admin, 3, 1).await;
    let (online, _) = presence(&mut watcher, 3, Duration::from_secs(10))
        .await
        .expect("the watcher is told the leaver came online on another node");
    assert!(online);
    assert!(a.service().is_online(chat_core::UserId(3)));

    let killed = Instant::now();
    c.kill9().await;
    let (online, at) = presence(&mut watcher, 3, Duration::from_secs(15))
        .await
        .expect("the watcher is told the leaver went offline after kill -9");
    assert!(!online);
    let took = at - killed;
    eprintln!("presence corrected {took:?} after kill -9");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(!a.service().is_online(chat_core::UserId(3)));

    let _on_b = tc(&node_base(&b), &leaver_token).await;
    let (online, _) = presence(&mut watcher, 3, Duration::from_secs(10))
        .await
        .expect("online again on node B");
    assert!(online);
    let stopped = Instant::now();
    let code = b.terminate(Duration::from_secs(30)).await;
    assert_eq!(
        code,
        Some(0),
        "a SIGTERM'd node exits 0; log:\n{}",
        b.log_text()
    );
    let (online, at) = presence(&mut watcher, 3, Duration::from_secs(10))
        .await
        .expect("offline after the clean shutdown");
    assert!(!online);
    eprintln!("presence corrected {:?} after SIGTERM", at - stopped);
    assert!(at - stopped < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_session_killed_mid_burst_loses_nothing() {
    let Some((a, b)) = cluster_of_two().await else {
        return;
    };
    create_users(&a, &[(1, "sender"), (2, "reader")]).await;
    let room = a.create_room(RoomKind::Group, &[1, 2], false).await.0;
    let admin = a.admin_token(99, "admin");
    let mut reader = tc(&node_base(&b), &a.token(2, "reader")).await;
    b.wait_connections(&admin, 2, 1).await;
    let mut sender = tc(&ws_base(&a), &a.token(1, "sender")).await;
    let texts: Vec<String> = (0..300).map(|i| format!("cut {i}")).collect();
    let mut killed = 0;
    for (i, t) in texts.iter().enumerate() {
        sender.send_json(&say(room, t)).await;
        if i == 100 {
            killed = chat_store::testing::terminate_cluster_listeners(a.database_url()).await;
        }
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        killed >= 2,
        "both nodes' LISTEN sessions were cut (got {killed})"
    );
    let got = messages(&mut reader, 300, Duration::from_secs(60)).await;
    assert_in_order_once(&got, &texts, "reader on node B");
    reader.assert_silent(300).await;
    // The sessions came back: a message after the cut arrives without the poll's delay
    // being the only way (and at all).
    sender.send_json(&say(room, "after")).await;
    let after = messages(&mut reader, 1, Duration::from_secs(10)).await;
    assert_eq!(after[0].1, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_gets_no_message_sent_right_after_on_any_node() {
    let Some((a, b)) = cluster_of_two().await else {
        return;
    };
    create_users(&a, &[(1, "owner"), (2, "stays"), (3, "goes")]).await;
    let room = a.create_room(RoomKind::Group, &[1, 2, 3], false).await;
    let admin = a.admin_token(99, "admin");
    let mut stays = tc(&node_base(&b), &a.token(2, "stays")).await;
    let mut goes = tc(&node_base(&b), &a.token(3, "goes")).await;
    b.wait_connections(&admin, 2, 1).await;
    b.wait_connections(&admin, 3, 1).await;
    let svc = a.service();
    let owner = svc
        .authenticate(&a.admin_token(1, "owner"))
        .await
        .expect("owner signs in");
    for round in 0..5 {
        svc.remove_members(&owner, room, &[chat_core::UserId(3)], None)
            .await
            .expect("removed");
        let text = format!("after removal {round}");
        svc.send_message(
            &owner,
            chat_core::SendMessage::text(chat_core::RoomRef::Id(room), text.clone()),
            None,
        )
        .await
        .expect("sent");
        let got = messages(&mut stays, 1, Duration::from_secs(10)).await;
        assert_eq!(got[0].1, text);
        // The removed member's node knew before it delivered the message.
        let deadline = Instant::now() + Duration::from_millis(300);
        while let Some(f) = goes
            .try_recv_text(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            assert!(
                !f.contains(&text),
                "round {round}: the removed member got the next message: {f}"
            );
        }
        svc.add_members(&owner, room, &[chat_core::UserId(3)], None)
            .await
            .expect("added back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_one_node_downloads_from_another() {
    let Some((a, b, c)) = cluster_of_three().await else {
        return;
    };
    a.create_user(1, "uploader").await;
    let token = a.token(1, "uploader");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let up = chat_testkit::steps::upload_raw(
        &b.http_url("/api/files?name=report.bin"),
        &token,
        "application/octet-stream",
        &bytes,
    )
    .await;
    assert!(
        up.status == 200 || up.status == 201,
        "{:?}",
        String::from_utf8_lossy(&up.body)
    );
    let v = up.json();
    let url = v["url"]
        .as_str()
        .or_else(|| v["file"]["url"].as_str())
        .unwrap_or_else(|| panic!("no url in {v}"))
        .to_string();
    let path = url
        .split_once(&b.addr.to_string())
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| panic!("{url} is not on node B"));
    for node_url in [c.http_url(&path), a.http_url(&path)] {
        let got = chat_testkit::http_request(
            "GET",
            &node_url,
            &[("authorization".into(), format!("Bearer {token}"))],
            Vec::new(),
        )
        .await;
        assert_eq!(got.status, 200, "{node_url}");
        assert_eq!(
            got.body.as_ref(),
            bytes.as_slice(),
            "{node_url}: the same bytes"
        );
    }
}

/// Send `n` more numbered messages into `room`, remembering their texts.
/// The ids of the next `n` messages `ws` receives (see [`messages`]).
async fn acked_ids(ws: &mut WsClient, n: usize, limit: Duration) -> Vec<i64> {
    messages(ws, n, limit)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

async fn send_more(ws: &mut WsClient, room: i64, texts: &mut Vec<String>, n: usize) {
    for _ in 0..n {
        let t = format!("roll {}", texts.len());
        ws.send_json(&say(room, &t)).await;
        texts.push(t);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_fails_readiness_closes_clients_to_reconnect_and_loses_no_ack() {
    let Some(a) = TestGateway::start(unthrottled(chat_testkit::Options::default())).await else {
        return;
    };
    let Some(mut sio) = socketio_common::node::NodeSio::start().await else {
        return;
    };
    let grace = ["--drain-grace", "1"];
    let mut b = Node::spawn(a.database_url(), &grace).await;
    a.create_user(1, "writer").await;
    a.create_user(2, "reader").await;
    let room = a.create_room(RoomKind::Group, &[1, 2], false).await;
    let admin = a.admin_token(99, "admin");
    let ann = a.user_token(5, "ann").await;
    let bob = a.user_token(6, "bob").await;

    let mut writer = tc(&node_base(&b), &a.token(1, "writer")).await;
    let mut reader = tc(&ws_base(&a), &a.token(2, "reader")).await;
    a.wait_connections(2, 1).await;
    let sio_opts = |t: &str| socketio_common::node::client_options("/ws", Some(t), None);
    sio.connect_ok("ann", &b.http_url("/chat"), sio_opts(&ann))
        .await;
    sio.connect_ok("bob", &a.http_url("/chat"), sio_opts(&bob))
        .await;
    b.wait_connections(&admin, 5, 1).await;
    assert_eq!(b.status_of("/readyz").await, 200);

    let mut texts = Vec::new();
    send_more(&mut writer, room.0, &mut texts, 100).await;
    let mut acked = acked_ids(&mut writer, 100, Duration::from_secs(30)).await;
    // SIGTERM: /readyz fails at once (liveness does not) while the node still serves
    // commands for the grace period; then its clients are closed to reconnect
    // elsewhere.
    let pid = b.pid();
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    let mut saw_unready = false;
    for _ in 0..5 {
        send_more(&mut writer, room.0, &mut texts, 10).await;
        acked.extend(acked_ids(&mut writer, 10, Duration::from_secs(10)).await);
        if b.status_of("/readyz").await == 503 {
            saw_unready = true;
            assert_eq!(b.status_of("/livez").await, 200);
        }
    }
    assert!(saw_unready, "/readyz kept answering 200 while draining");
    // A last burst races the close: some of it may be answered, some not.
    send_more(&mut writer, room.0, &mut texts, 30).await;
    let close = loop {
        match writer.try_recv_text(Duration::from_secs(20)).await {
            Some(text) => {
                let v: Value = serde_json::from_str(&text).expect("JSON frame");
                if v["type"] == "new_message" {
                    acked.push(v["content"]["message_id"].as_i64().expect("id"));
                }
            }
            None => break writer.recv_close().await,
        }
    };
    let code = b.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "log:\n{}", b.log_text());
    assert_eq!(close.map(|c| c.0), Some(1001), "WebSocket clients get 1001");
    assert!(acked.len() >= 150, "served through the grace period");
    // Every acknowledged message is stored, and the reader on the other node got
    // exactly what is stored, in order.
    let stored = stored_oldest_first(&a, room).await;
    let ids: std::collections::HashSet<i64> = stored.iter().map(|m| m.0).collect();
    assert!(acked.iter().all(|id| ids.contains(id)), "an ack was lost");
    let got = messages(&mut reader, stored.len(), Duration::from_secs(30)).await;
    assert_eq!(got, stored, "the reader on node A");
    // Nothing twice (the writer's going offline may follow).
    while let Some(f) = reader.try_recv_text(Duration::from_millis(300)).await {
        assert!(!f.contains("new_message"), "more than once: {f}");
    }

    // The Socket.IO client saw its transport close (not a server disconnect, after
    // which socket.io-client would not reconnect) and reconnects by itself once a
    // node answers at that address again.
    let gone = sio.expect("ann", |m| m["type"] == "disconnect").await;
    assert_eq!(gone["reason"], "transport close", "{gone}");
    sio.expect("ann", |m| m["type"] == "reconnect_attempt")
        .await;
    let b2 = Node::spawn_at(a.database_url(), &[], b.addr).await;
    sio.expect("ann", |m| m["type"] == "connect").await;
    b2.wait_connections(&admin, 5, 1).await;
    sio.call(
        "bob",
        "send-message",
        json!({"message": "welcome back", "user": "ann"}),
    )
    .await;
    let chat = sio.event("ann", "chat").await;
    assert_eq!(chat["chat"]["message"], "welcome back", "{chat}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_acknowledged_message() {
    let Some(a) = TestGateway::start(unthrottled(chat_testkit::Options::default())).await else {
        return;
    };
    let mut b = Node::spawn(a.database_url(), &[]).await;
    a.create_user(1, "writer").await;
    a.create_user(2, "reader").await;
    let room = a.create_room(RoomKind::Group, &[1, 2], false).await;
    let admin = a.admin_token(99, "admin");
    let mut writer = tc(&node_base(&b), &a.token(1, "writer")).await;
    let mut reader = tc(&ws_base(&a), &a.token(2, "reader")).await;
    b.wait_connections(&admin, 1, 1).await;
    a.wait_connections(2, 1).await;
    // 400 messages without waiting; kill -9 once a quarter are acknowledged.
    let mut texts = Vec::new();
    send_more(&mut writer, room.0, &mut texts, 400).await;
    let mut acked = acked_ids(&mut writer, 100, Duration::from_secs(30)).await;
    b.kill9().await;
    while let Some(text) = writer.try_recv_text(Duration::from_secs(5)).await {
        let v: Value = serde_json::from_str(&text).expect("JSON frame");
        if v["type"] == "new_message" {
            acked.push(v["content"]["message_id"].as_i64().expect("id"));
        }
    }
    let stored = stored_oldest_first(&a, room).await;
    eprintln!(
        "kill -9 under load: {} sent, {} acknowledged, {} stored",
        texts.len(),
        acked.len(),
        stored.len()
    );
    let ids: std::collections::HashSet<i64> = stored.iter().map(|m| m.0).collect();
    assert!(acked.iter().all(|id| ids.contains(id)), "an ack was lost");
    // The reader on the surviving node gets every stored message once, in order.
    let got = messages(&mut reader, stored.len(), Duration::from_secs(30)).await;
    assert_eq!(got, stored);
    while let Some(f) = reader.try_recv_text(Duration::from_millis(300)).await {
        assert!(!f.contains("new_message"), "more than once: {f}");
    }
}

/// Assert that each `(client, event, payload)` arrives, in this order.
async fn assert_events(n: &mut socketio_common::node::NodeSio, want: &[(&str, &str, Value)]) {
    for (client, event, payload) in want {
        assert_eq!(&n.event(client, event).await, payload, "{client} {event}");
    }
}

/// socketio-pubsub's own events across nodes: `wait-for-user` / `user-join` /
/// `user-leave`, and the running `unread-chats-count`, ann on node B and bob on C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_pubsub_waits_and_unread_counts_cross_nodes() {
    let Some((a, b, c)) = cluster_of_three().await else {
        return;
    };
    let Some(mut n) = socketio_common::node::NodeSio::start().await else {
        return;
    };
    let ann = a.user_token(1, "ann").await;
    let bob = a.user_token(2, "bob").await;
    let admin = a.admin_token(99, "admin");
    let opts = |t: &str| socketio_common::node::client_options("/ws", Some(t), None);
    n.connect_ok("a", &b.http_url("/chat"), opts(&ann)).await;
    n.connect_ok("b", &c.http_url("/chat"), opts(&bob)).await;
    b.wait_connections(&admin, 1, 1).await;
    c.wait_connections(&admin, 2, 1).await;

    assert_eq!(
        n.call("a", "wait-for-user", json!({"user": "bob"})).await,
        json!({})
    );
    assert_events(&mut n, &[("b", "user-join", json!({"user": "ann"}))]).await;
    n.call("b", "wait-for-user", json!({"user": "ann"})).await;
    let joins = [
        ("b", "user-join", json!({"user": "ann"})),
        ("a", "user-join", json!({"user": "bob"})),
    ];
    assert_events(&mut n, &joins).await;

    let mut ids = Vec::new();
    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        let sent = n
            .call("a", "send-message", json!({"message": text, "user": "bob"}))
            .await;
        ids.push(sent["chat"]["id"].as_i64().expect("an id"));
        assert_eq!(n.event("b", "chat").await, sent, "the same chat on node C");
        assert_eq!(
            n.event("b", "unread-chats-count").await,
            json!({"unreadChatsCount": i + 1, "user": "ann"}),
            "after `{text}`"
        );
    }
    n.call("b", "read-chat", json!({"id": ids[1].to_string()}))
        .await;
    let unread = json!({"unreadChatsCount": 1, "user": "ann"});
    assert_events(&mut n, &[("b", "unread-chats-count", unread)]).await;
    n.emit("a", "stop-waiting-for-user", json!([{"user": "bob"}]))
        .await;
    assert_events(&mut n, &[("b", "user-leave", json!({"user": "ann"}))]).await;
    n.close("b").await;
    assert_eq!(
        n.event("a", "user-leave").await,
        json!({"user": "bob"}),
        "a socket closing on node C stops its waits on node B"
    );
    n.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_deleted_on_one_node_is_removed_and_forgotten_on_another() {
    let Some((a, b)) = cluster_of_two().await else {
        return;
    };
    create_users(&a, &[(1, "ann"), (2, "bob")]).await;
    let admin = a.admin_token(99, "admin");
    // ann's method-args connection is on node b.
    let mut ann = WsClient::connect(&format!("{}/ws/chat/", node_base(&b))).await;
    ann.send_json(&json!({"method": "auth", "access_token": a.token(1, "ann")}))
        .await;
    ann.recv_where("type", "authenticated").await;
    b.wait_connections(&admin, 1, 1).await;
    ann.send_json(&json!({"method": "create_chat", "args": {"users": [2]}}))
        .await;
    let direct = ann.recv_where("type", "chat_created").await["data"]["chat"]["id"]
        .as_i64()
        .expect("a chat id");

    // Deleted through node a: node b tells its member with the chat as it was.
    let r = a
        .http(
            "DELETE",
            &format!("/api/rooms/{direct}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gone = ann.recv_where("type", "chat_removed").await;
    assert_eq!(gone["data"]["chat"]["id"], direct);
    assert_eq!(
        gone["data"]["chat"]["users"].as_array().map(Vec::len),
        Some(2)
    );
    // Node b forgot the pair's room: the same pair makes a new one there.
    ann.send_json(&json!({"method": "create_chat", "args": {"users": [2]}}))
        .await;
    let again = ann.recv_where("type", "chat_created").await["data"]["chat"]["id"]
        .as_i64()
        .expect("a chat id");
    assert_ne!(again, direct);
}
