//! `/console` in a real browser: `tests/browser/console.mjs` drives Debian's Chromium
//! with playwright-core. It signs in with an admin token, sees the connection this
//! test opened appear, and sends a message from the "try it" pane over a WebSocket
//! dialect and over a Socket.IO dialect; this test's WebSocket client must receive
//! both. The screenshot is kept in `target/test-artifacts/console.png`.
//!
//! Without Node, playwright-core (`npm ci --prefix tests/browser`) or Chromium the
//! test prints a loud SKIPPED line; under `CI=true` it fails instead.

use chat_core::{RoomKind, UserId};
use chat_testkit::{TestGateway, WsClient};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("the console browser test cannot run under CI: {why}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED (console browser test): {why}. Run `bash scripts/test.sh` (it installs Chromium and playwright-core). !!!!!!!!\n"
    );
}

/// Chromium's executable: `CHROMIUM`, else the first of Debian's names on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

fn ready() -> Option<PathBuf> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        skip("`node` is not installed");
        return None;
    }
    if !root()
        .join("tests/browser/node_modules/playwright-core")
        .is_dir()
    {
        skip("playwright-core is not installed (npm ci --prefix tests/browser)");
        return None;
    }
    let found = chromium();
    if found.is_none() {
        skip("Chromium is not installed (apt-get install chromium)");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_signs_in_sees_connections_and_sends_in_two_dialects() {
    let Some(chromium) = ready() else { return };
    let gw = TestGateway::sqlite().await;
    gw.create_user(1, "alice").await;
    gw.create_user(2, "bob").await;
    let kind = RoomKind::direct(UserId(1), UserId(2)).expect("two users");
    let room = gw.create_room(kind, &[1, 2], false).await.0;

    // Bob listens on method-args; the page must see his connection.
    let mut bob = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    bob.send_json(&json!({"method": "auth", "access_token": gw.token(2, "bob")}))
        .await;
    assert_eq!(bob.recv_json().await["type"], "authenticated");
    gw.wait_connections(2, 1).await;

    let artifacts = root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifact folder");
    let screenshot = artifacts.join("console.png");
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("node")
            .arg(root().join("tests/browser/console.mjs"))
            .current_dir(root().join("tests/browser"))
            .env("CONSOLE_URL", gw.http_url("/console"))
            .env("ADMIN_TOKEN", gw.admin_token(99, "root"))
            .env("USER_TOKEN", gw.token(1, "alice"))
            .env("ROOM", room.to_string())
            .env("RECEIVER", "bob")
            .env("WATCH_DIALECT", "method-args")
            .env("WS_DIALECT", "method-args")
            .env("SIO_DIALECT", "socketio-pubsub")
            .env("SCREENSHOT", &screenshot)
            .env("CHROMIUM", &chromium)
            .output(),
    )
    .await
    .expect("the browser run finishes in time")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    assert!(
        out.status.success() && report["ok"] == true,
        "the browser run failed: {stdout}\n{}\n(screenshot: {})",
        String::from_utf8_lossy(&out.stderr),
        screenshot.display()
    );
    assert!(Path::new(&screenshot).is_file(), "a screenshot was kept");

    // Both messages reached Bob's WebSocket client, from Alice.
    for text in [
        "from the browser over method-args",
        "from the browser over socketio-pubsub",
    ] {
        let m = bob
            .recv_until(|v| v["type"] == "new_message" && v["data"]["message"]["text"] == text)
            .await;
        assert_eq!(m["data"]["message"]["user"]["pk"], 1, "{m}");
    }
    // The page's Socket.IO connection was counted like any other.
    let m = gw.scrape_metrics().await;
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    assert_eq!(
        get(r#"chat_messages_committed_total{dialect="socketio-pubsub"}"#),
        1.0
    );
    assert_eq!(
        get(r#"chat_commands_total{command="send-message",dialect="socketio-pubsub",result="ok"}"#),
        1.0
    );
    assert_eq!(
        get(r#"chat_connections_accepted_total{dialect="socketio-pubsub"}"#),
        1.0
    );
    assert_eq!(
        get(r#"chat_messages_committed_total{dialect="method-args"}"#),
        1.0
    );
}

/// The console's data is an admin's: no token, a bad one and a user's are refused in
/// the REST error shape; the page and its dialect list are public and hold no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_stats_are_for_admins_only() {
    let gw = TestGateway::sqlite().await;
    gw.create_user(1, "alice").await;
    let user = gw.token(1, "alice");
    let forged = gw.forged_token(1);
    for (token, status, code) in [
        (None, 401, "unauthenticated"),
        (Some(forged.as_str()), 401, "unauthenticated"),
        (Some(user.as_str()), 403, "forbidden"),
    ] {
        let r = gw.http("GET", "/console/api/stats", token, None).await;
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.json()["error"], code, "{}", r.text());
    }
    let admin = gw.admin_token(99, "root");
    let ok = gw
        .http("GET", "/console/api/stats", Some(&admin), None)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.json()["dialects"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));
    let page = gw.http("GET", "/console", None, None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("try-it"));
    let list = gw
        .http("GET", "/console/api/dialects", None, None)
        .await
        .json();
    let names: Vec<&str> = list["dialects"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(
        names.contains(&"method-args") && names.contains(&"socketio-pubsub"),
        "{names:?}"
    );
    let missing = gw.http("GET", "/console/nothing-here", None, None).await;
    assert_eq!(missing.status, 404);
}
