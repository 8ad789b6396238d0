//! `/metrics` counts exactly: N messages sent → the committed, command and delivery
//! counters rise by N; the open-connections gauge follows connections up and down;
//! refusals and slow-consumer closes are counted by reason; `--metrics-listen`
//! moves the endpoint off the main listener.

use chat_core::{Event, Published, RoomKind, UserId};
use chat_testkit::{dual_backend_test, http_request, Options, TestGateway, WsClient};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const PROJECT: i64 = 700;

async fn scrape(gw: &TestGateway) -> HashMap<String, f64> {
    gw.scrape_metrics().await
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

#[track_caller]
fn expect(m: &HashMap<String, f64>, key: &str, want: f64) {
    assert_eq!(get(m, key), want, "{key}");
}

#[track_caller]
fn expect_all(m: &HashMap<String, f64>, rows: &[(&str, f64)]) {
    for (key, want) in rows {
        expect(m, key, *want);
    }
}

/// A type-content client of `user`, signed in by its bearer token.
async fn type_content(gw: &TestGateway, user: i64, name: &str) -> WsClient {
    let bearer = format!("Bearer {}", gw.token(user, name));
    let c = WsClient::connect_with_headers(&gw.ws_url("/ws/chats/"), &[("authorization", &bearer)])
        .await
        .expect("type-content upgrade");
    gw.wait_connections(user, 1).await;
    c
}

/// Scrape until `key` reads `want` (a connection's end is counted by its task).
async fn wait_for(gw: &TestGateway, key: &str, want: f64) -> HashMap<String, f64> {
    for _ in 0..200 {
        let m = scrape(gw).await;
        if get(&m, key) == want {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{key} never reached {want}");
}

async fn counts_are_exact(gw: TestGateway) {
    chat_testkit::steps::create_users(&gw, &[(1, "ma"), (2, "tc")]).await;
    let project = RoomKind::Project {
        project_id: PROJECT,
    };
    let room = gw.create_room(project, &[1, 2], false).await.0;
    let mut tc = type_content(&gw, 2, "tc").await;
    let mut ma = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    ma.send_json(&json!({"method": "auth", "access_token": gw.token(1, "ma")}))
        .await;
    assert_eq!(ma.recv_json().await["type"], "authenticated");
    gw.wait_connections(1, 1).await;
    // The type-content client hears that user 1 came online.
    let online = tc.recv_json().await;
    assert_eq!(online["type"], "set_online", "{online}");

    let raw = gw.http("GET", "/metrics", None, None).await.text();
    let clustered = gw.backend == chat_testkit::Backend::Postgres;
    assert_eq!(
        raw.contains("node=\""),
        clustered,
        "a node label exactly in a cluster"
    );
    let before = scrape(&gw).await;
    expect(
        &before,
        r#"chat_connections_open{dialect="method-args"}"#,
        1.0,
    );
    expect(
        &before,
        r#"chat_connections_open{dialect="type-content"}"#,
        1.0,
    );

    const N: usize = 7;
    for i in 0..N {
        ma.send_json(
            &json!({"method": "send_message", "args": {"chat": room, "text": format!("m{i}")}}),
        )
        .await;
        ma.recv_where("type", "message_created").await;
        let got = tc.recv_json().await;
        assert_eq!(got["type"], "new_message", "{got}");
    }
    // A refused command is counted under its error code.
    ma.send_json(&json!({"method": "send_message", "args": {"chat": 999_999, "text": "x"}}))
        .await;
    ma.recv_where("type", "error").await;

    let after = scrape(&gw).await;
    let rose = |key: &str| get(&after, key) - get(&before, key);
    let expect_rise = |key: &str, by: f64| assert_eq!(rose(key), by, "{key}");
    let n = N as f64;
    expect_rise(r#"chat_messages_committed_total{dialect="method-args"}"#, n);
    expect_rise(
        r#"chat_commands_total{command="send_message",dialect="method-args",result="ok"}"#,
        n,
    );
    expect_rise(
        r#"chat_commands_total{command="send_message",dialect="method-args",result="not_found"}"#,
        1.0,
    );
    expect_rise(r#"chat_events_delivered_total{dialect="type-content"}"#, n);
    expect_rise(r#"chat_frames_out_total{dialect="type-content"}"#, n);
    // The sender's answers are replies (its own hub echo is dropped, not delivered).
    expect_rise(r#"chat_frames_in_total{dialect="method-args"}"#, n + 1.0);
    expect_rise(r#"chat_frames_out_total{dialect="method-args"}"#, n + 1.0);
    expect_rise(r#"chat_events_delivered_total{dialect="method-args"}"#, 0.0);
    assert!(rose(r#"chat_sent_bytes_total{dialect="type-content"}"#) > 0.0);
    expect_rise("chat_commit_latency_seconds_count{}", n);
    expect_rise(
        r#"chat_delivery_latency_seconds_count{dialect="type-content"}"#,
        n,
    );
    expect(
        &after,
        r#"chat_delivery_latency_seconds_bucket{dialect="type-content",le="+Inf"}"#,
        get(
            &after,
            r#"chat_delivery_latency_seconds_count{dialect="type-content"}"#,
        ),
    );

    ma.close().await;
    tc.close().await;
    let end = wait_for(&gw, r#"chat_connections_open{dialect="method-args"}"#, 0.0).await;
    let end = match get(&end, r#"chat_connections_open{dialect="type-content"}"#) {
        0.0 => end,
        _ => wait_for(&gw, r#"chat_connections_open{dialect="type-content"}"#, 0.0).await,
    };
    for d in ["method-args", "type-content"] {
        expect(
            &end,
            &format!(r#"chat_connections_accepted_total{{dialect="{d}"}}"#),
            1.0,
        );
        expect(
            &end,
            &format!(r#"chat_connections_closed_total{{dialect="{d}",reason="client"}}"#),
            1.0,
        );
    }
}
dual_backend_test!(counts_are_exact);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_slow_consumers_are_counted_by_reason() {
    let mut opts = Options::default();
    opts.limits.outbound_queue = 2;
    let gw = TestGateway::start(opts).await.expect("SQLite");
    let user = gw.create_user(2, "tc").await;
    // No token: type-content refuses the upgrade.
    assert!(
        WsClient::connect_with_headers(&gw.ws_url("/ws/chats/"), &[])
            .await
            .is_err()
    );
    expect_all(
        &scrape(&gw).await,
        &[
            (
                r#"chat_connections_refused_total{dialect="type-content",reason="auth"}"#,
                1.0,
            ),
            (
                r#"chat_connections_accepted_total{dialect="type-content"}"#,
                0.0,
            ),
        ],
    );

    let mut tc = type_content(&gw, 2, "tc").await;
    // Far more events at once than its queue of 2 holds: closed as a slow consumer.
    let hub = gw.service().hub().clone();
    for _ in 0..10_000 {
        let ev = Event::Presence {
            user: user.clone(),
            online: true,
        };
        hub.publish(&[UserId(2)], Arc::new(Published::new(ev, None)));
    }
    let (code, _) = tc.recv_close().await.expect("a close frame");
    assert_eq!(code, 1008);
    let m = wait_for(&gw, r#"chat_connections_open{dialect="type-content"}"#, 0.0).await;
    expect_all(
        &m,
        &[
            (
                r#"chat_connections_closed_total{dialect="type-content",reason="slow_consumer"}"#,
                1.0,
            ),
            (
                r#"chat_slow_consumer_closes_total{dialect="type-content"}"#,
                1.0,
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_moves_the_endpoint() {
    let gw = TestGateway::start(Options {
        tweak: |c| c.metrics_listen = Some("127.0.0.1:0".parse().expect("address")),
        ..Options::default()
    })
    .await
    .expect("SQLite");
    let main = gw.http("GET", "/metrics", None, None).await;
    assert_eq!(main.status, 404, "not on the main listener any more");
    let addr = gw.metrics_addr().expect("a metrics listener");
    let r = http_request("GET", &format!("http://{addr}/metrics"), &[], Vec::new()).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("chat_build_info"));
    let api = http_request("GET", &format!("http://{addr}/api/users"), &[], Vec::new()).await;
    assert_eq!(api.status, 404, "the API is not served there");
}
