//! The abuse suite: each attack an outsider or an ordinary signed-in user can mount,
//! run against a real gateway on real sockets, with the defence asserted and one
//! figure printed per attack (`ABUSE <attack>: <figure>`; nextest shows it, see
//! `.config/nextest.toml`).

use chat_testkit::{dual_backend_test, Options, TestGateway, WsClient};
use serde_json::json;
use std::time::{Duration, Instant};

fn figure(attack: &str, what: impl std::fmt::Display) {
    println!("ABUSE {attack}: {what}");
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ------------------------------------------------------------------ tokens

async fn admin_follows_the_current_token(gw: TestGateway) {
    let body = json!({"kind": "group", "title": "ops", "members": [7]});
    let r = gw
        .http(
            "POST",
            "/api/rooms",
            Some(&gw.admin_token(7, "eve")),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The same user, with a token that no longer says is_staff: not an admin.
    let r = gw
        .http(
            "POST",
            "/api/rooms",
            Some(&gw.token(7, "eve")),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    figure(
        "sticky admin",
        "refused (403) once the token drops is_staff",
    );
}
dual_backend_test!(admin_follows_the_current_token);

async fn tokens_not_yet_valid_or_in_rest_queries_are_refused(gw: TestGateway) {
    let tomorrow = gw.signed(json!({
        "token_type": "access", "user_id": 5, "exp": now() + 2 * 86_400, "nbf": now() + 86_400
    }));
    let r = gw.http("GET", "/api/rooms", Some(&tomorrow), None).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("nbf"), "{}", r.text());
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    c.send_json(&json!({"method": "auth", "access_token": tomorrow}))
        .await;
    let v = c.recv_json().await;
    assert_ne!(v["type"], "authenticated", "{v}");
    // A REST token in the query string (where logs and proxies keep it) is refused
    // even when valid.
    let good = gw.token(5, "dan");
    let r = gw
        .http("GET", &format!("/api/rooms?token={good}"), None, None)
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("query string"), "{}", r.text());
    assert_eq!(
        gw.http("GET", "/api/rooms", Some(&good), None).await.status,
        200
    );
    figure("nbf tomorrow / REST query token", "401 both");
}
dual_backend_test!(tokens_not_yet_valid_or_in_rest_queries_are_refused);

#[tokio::test]
async fn sockets_close_when_their_token_expires_if_asked() {
    let gw = TestGateway::start(Options {
        tweak: |c| c.close_on_token_expiry = true,
        ..Options::default()
    })
    .await
    .expect("SQLite gateway");
    let short = gw.signed(json!({"token_type": "access", "user_id": 3, "exp": now() + 2}));
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    c.send_json(&json!({"method": "auth", "access_token": short}))
        .await;
    assert_eq!(c.recv_json().await["type"], "authenticated");
    let t0 = Instant::now();
    let close = tokio::time::timeout(Duration::from_secs(10), c.recv_close())
        .await
        .expect("closed within 10 s");
    let (_, reason) = close.expect("a close frame");
    assert!(reason.contains("token expired"), "{reason}");
    figure(
        "expired token socket",
        format!("closed {:?} after auth", t0.elapsed()),
    );
}
