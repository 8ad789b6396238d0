//! The conformance runner against a real gateway, for every dialect, on SQLite and
//! on PostgreSQL (skipped loudly when PostgreSQL is unreachable outside CI).
//!
//! The test does what an operator would do before pointing the runner at a server:
//! provision users and mint their tokens, and create the rooms a dialect cannot create
//! itself (an action-request room with A and B but not C, a type-content project
//! chat). Then it runs the runner — as a library for every dialect, and once as the
//! `chat-conformance` binary to prove the command line and its exit status — and
//! requires every case to pass.

use chat_conformance::{run, Config, Dialect, Level, Report};
use chat_core::RoomKind;
use chat_testkit::{Backend, TestGateway};
use serde_json::json;

const ADMIN: i64 = 90;
const PROJECT: i64 = 4242;

struct Fixture {
    gw: TestGateway,
    tokens: Vec<String>,
    admin: String,
    room: i64,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    let gw = TestGateway::on(backend).await?;
    let mut tokens = Vec::new();
    for (id, name) in [(1, "ann"), (2, "bob"), (3, "cid")] {
        gw.create_user(id, name).await;
        tokens.push(gw.token(id, name));
    }
    let admin = gw.admin_token(ADMIN, "root");
    // The admin's first request provisions them from the token (is_staff).
    let r = gw
        .http(
            "POST",
            "/api/rooms",
            Some(&admin),
            Some(json!({"kind": "project", "project_id": PROJECT, "members": [1, 2], "title": "conformance project"})),
        )
        .await;
    assert_eq!(
        r.status,
        201,
        "project room: {}",
        String::from_utf8_lossy(&r.body)
    );
    let room = gw.create_room(RoomKind::Group, &[1, 2], true).await.0;
    Some(Fixture {
        gw,
        tokens,
        admin,
        room,
    })
}

fn config(f: &Fixture, dialect: Dialect) -> Config {
    let mut cfg = Config::new(
        dialect,
        &f.gw.ws_url(dialect.default_path()),
        f.tokens.clone(),
    );
    cfg.admin_token = Some(f.admin.clone());
    cfg.admin_url = Some(f.gw.ws_url("/ws/admin-chat/"));
    cfg.room = Some(f.room);
    cfg.project = Some(PROJECT);
    cfg
}

fn assert_passed(report: &Report) {
    println!("{}", report.render());
    assert!(
        report.success(),
        "{} conformance failures:\n{}",
        report.dialect,
        report.failures().join("\n")
    );
    // A mark in the spec that names no case is a typo that would hide a failure.
    assert!(
        report.unmatched_gateway_cases().is_empty(),
        "{}: x-conformance.gateway-cases naming no case: {:?}",
        report.dialect,
        report.unmatched_gateway_cases()
    );
}

async fn dialect(backend: Backend, d: Dialect) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let report = run(&config(&f, d)).await;
    assert_passed(&report);
    // The gateway keeps what the seeds promised: the legacy level passes as well, and
    // since the gateway is what the full spec describes, nothing departs from it. (On
    // a gateway of its own: a second run finds the first one's direct chats.)
    let Some(f) = fixture(backend).await else {
        return;
    };
    let mut cfg = config(&f, d);
    cfg.level = Level::Legacy;
    let legacy = run(&cfg).await;
    assert_passed(&legacy);
    assert_eq!(legacy.passed(), report.passed(), "{}", legacy.render());
    assert_eq!(legacy.departed(), 0, "{}", legacy.render());
}

macro_rules! both_backends {
    ($name:ident, $dialect:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                dialect(Backend::Sqlite, $dialect).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                dialect(Backend::Postgres, $dialect).await;
            }
        }
    };
}

both_backends!(method_args, Dialect::MethodArgs);
both_backends!(type_content, Dialect::TypeContent);
both_backends!(action_request, Dialect::ActionRequest);
both_backends!(socketio_rooms, Dialect::SocketioRooms);
both_backends!(socketio_pubsub, Dialect::SocketioPubsub);

/// The binary: same run for method-args through the command line; exit status 0 and
/// the table on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exits_zero_and_prints_the_table() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    let url = f.gw.ws_url("/ws/chat/");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-conformance"));
    cmd.args(["--dialect", "method-args", "--url", &url]);
    for t in &f.tokens {
        cmd.args(["--token", t]);
    }
    let out = cmd.output().await.expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OPERATION") && stdout.contains("send_message"));
    assert!(stdout.contains(" 0 fail"), "{stdout}");
}

/// A wrong token count is a failed setup, not a panic, and the binary says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_fails_without_enough_tokens() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    let url = f.gw.ws_url("/ws/chat/");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-conformance"))
        .args([
            "--dialect",
            "method-args",
            "--url",
            &url,
            "--token",
            &f.tokens[0],
        ])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("needs 3 --token"));
}

/// The runner is only worth something if a disagreement fails it: the same run with
/// a spec that says `Message.is_read` is a string must fail the cases that receive
/// messages, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_disagrees_with_the_server_fails_the_run() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "chat-conformance-specs-{}-{}",
        std::process::id(),
        line!()
    ));
    std::fs::create_dir_all(dir.join("method-args")).expect("temp dir");
    let original = std::fs::read_to_string(
        chat_conformance::default_specs_dir().join("method-args/asyncapi.yaml"),
    )
    .expect("the spec is readable");
    let field = "\n        is_read: { type: boolean }\n";
    assert!(original.contains(field), "the Message schema moved");
    std::fs::write(
        dir.join("method-args/asyncapi.yaml"),
        original.replace(field, "\n        is_read: { type: string }\n"),
    )
    .expect("write the altered spec");
    let mut cfg = config(&f, Dialect::MethodArgs);
    cfg.specs_dir = dir.clone();
    let report = run(&cfg).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", report.render());
    assert!(!report.success());
    let failures = report.failures().join("\n");
    assert!(
        failures.contains("send_message") && failures.contains("is_read"),
        "{failures}"
    );
}

/// A server that answers every frame with garbage is a list of failed cases, not a
/// panic of the runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_server_fails_cases_without_panicking() {
    use futures_util::{SinkExt, StreamExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() {
                        let _ = ws.send("{\"type\": 42, \"data\": [".into()).await;
                        let _ = ws.send("[\"not an event\"]".into()).await;
                    }
                }
            });
        }
    });
    // Unsigned stand-ins: this server checks nothing, the runner only reads user_id.
    let tokens = [
        "eyJ1c2VyX2lkIjoxfQ",
        "eyJ1c2VyX2lkIjoyfQ",
        "eyJ1c2VyX2lkIjozfQ",
    ]
    .iter()
    .map(|claims| format!("eyJhbGciOiJIUzI1NiJ9.{claims}.c2ln"))
    .collect();
    let mut cfg = Config::new(
        Dialect::MethodArgs,
        &format!("ws://{addr}/ws/chat/"),
        tokens,
    );
    cfg.timing.timeout = std::time::Duration::from_millis(500);
    cfg.timing.quiet = std::time::Duration::from_millis(50);
    let report = run(&cfg).await;
    println!("{}", report.render());
    assert!(!report.success());
    assert!(report.failed() > 5, "{}", report.render());
}
