//! Smoke runs of every chat-bench scenario against a test gateway, on SQLite and on
//! PostgreSQL: a handful of clients for a second or two, so the tool cannot rot. They
//! check that the run completes and that its report is whole (every client connected,
//! messages delivered, none missing) — never how fast: figures belong in BENCHMARKS.md,
//! not in tests.

use chat_testkit::{Backend, TestGateway, TEST_SECRET};
use serde_json::Value;

const ALL: &str = "method-args,type-content,action-request,socketio-rooms,socketio-pubsub";
const GROUP_CAPABLE: &str = "method-args,type-content,action-request,socketio-rooms";

/// Run chat-bench with `command_line` (its flags, split at white space) against a
/// fresh test gateway; the JSON report, checked for completeness.
async fn bench(backend: Backend, command_line: &str) -> Option<Value> {
    bench_with(backend, command_line, &[]).await
}

/// [`bench`] with flags that hold white space (`extra`, as separate arguments).
async fn bench_with(backend: Backend, command_line: &str, extra: &[&str]) -> Option<Value> {
    let mut args: Vec<&str> = command_line.split_whitespace().collect();
    args.extend_from_slice(extra);
    // A benchmark drives far more per user than a person would: the rate limits are
    // lifted, as crates/chat-bench/run.sh does.
    let mut opts = chat_testkit::Options {
        backend,
        ..Default::default()
    };
    opts.limits.user_rate = chat_core::throttle::Rate::UNLIMITED;
    opts.limits.conn_rate = chat_core::throttle::Rate::UNLIMITED;
    let gw = TestGateway::start(opts).await?;
    let json = std::env::temp_dir().join(format!(
        "chat-bench-smoke-{}-{}.json",
        std::process::id(),
        args.join("_").replace(['/', ','], "-")
    ));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chat-bench"));
    cmd.arg("--url")
        .arg(gw.http_url(""))
        .arg("--jwt-secret")
        .arg(TEST_SECRET)
        .arg("--server-pid")
        .arg(std::process::id().to_string())
        .arg("--json")
        .arg(&json)
        .arg("--quiet")
        .args(&args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("chat-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chat-bench {args:?} failed ({:?})\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("deliveries"), "a human table: {stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report written"))
            .expect("the report is JSON");
    let _ = std::fs::remove_file(&json);
    assert_eq!(
        report["connect"]["ready"], report["connections"],
        "{report}"
    );
    assert_eq!(report["errors"]["disconnects"], 0, "{report}");
    assert_eq!(report["errors"]["error_frames"], 0, "{report}");
    assert!(
        report["server"]["rss_kib_end"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    Some(report)
}

fn assert_delivered(report: &Value) {
    let run = &report["run"];
    assert!(run["acks"].as_u64().unwrap_or(0) > 0, "{report}");
    assert!(run["deliveries"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(run["missing"], 0, "{report}");
    assert_eq!(run["unacked"], 0, "{report}");
    assert!(report["delivery_latency"]["count"].as_u64().unwrap_or(0) > 0);
}

async fn fanout(backend: Backend) {
    let args = format!("--scenario fanout --dialects {GROUP_CAPABLE} --connections 16 --senders 4 --rate 40 --duration 1.5 --drain 10");
    if let Some(r) = bench(backend, &args).await {
        assert_delivered(&r);
        assert_eq!(r["run"]["receivers_per_message"], 15);
    }
}

async fn direct(backend: Backend) {
    let args =
        format!("--scenario direct --dialects {ALL} --pairs 5 --rate 0 --duration 1.5 --drain 10");
    if let Some(r) = bench(backend, &args).await {
        assert_delivered(&r);
        assert_eq!(r["connections"], 10);
    }
}

async fn idle(backend: Backend) {
    let args = format!("--scenario idle --dialects {ALL} --connections 25 --duration 1");
    if let Some(r) = bench(backend, &args).await {
        assert_eq!(r["connections"], 25);
    }
}

async fn storm(backend: Backend) {
    let args =
        format!("--scenario storm --dialects {ALL} --connections 40 --duration 0.5 --source-ips 2");
    if let Some(r) = bench(backend, &args).await {
        assert_eq!(r["connect"]["latency"]["count"], 40);
    }
}

/// Set-up in the protocol, and no admin REST use at all: the admin token is garbage,
/// so a single `POST /api/rooms` would fail the run. The group room is made with
/// method-args `create_chat` (type-content members send into it by its id); the direct
/// chats of type-content and socketio-pubsub need nothing.
async fn protocol_setup(backend: Backend) {
    let no_rest = ["--setup", "protocol", "--admin-token", "not-an-admin-token"];
    let args = "--scenario fanout --dialects method-args,type-content --connections 8 --senders 2 --rate 20 --duration 1 --drain 10";
    let Some(r) = bench_with(backend, args, &no_rest).await else {
        return;
    };
    assert_delivered(&r);
    assert_eq!(r["setup"]["protocol"], 1, "{}", r["setup"]);
    assert_eq!(r["setup"]["rest"], 0, "{}", r["setup"]);
    let args = "--scenario direct --dialects type-content,socketio-pubsub --pairs 3 --rate 0 --duration 1 --drain 10";
    let Some(r) = bench_with(backend, args, &no_rest).await else {
        return;
    };
    assert_delivered(&r);
    assert_eq!(r["setup"]["none"], 3, "{}", r["setup"]);
    assert_eq!(
        (&r["setup"]["protocol"], &r["setup"]["rest"]),
        (&0.into(), &0.into())
    );
    // Pairs whose rooms need an id: method-args creates the direct chat of each pair,
    // and action-request members join it.
    let args = "--scenario direct --dialects method-args,action-request --pairs 3 --rate 0 --duration 1 --drain 10";
    let Some(r) = bench_with(backend, args, &no_rest).await else {
        return;
    };
    assert_delivered(&r);
    assert_eq!(r["setup"]["protocol"], 3, "{}", r["setup"]);
}

/// Each scenario on SQLite and on PostgreSQL: tests `<scenario>::sqlite` and
/// `<scenario>::postgres`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use chat_testkit::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(Backend::Postgres).await;
                }
            }
        )*
    };
}

on_both_backends!(fanout, direct, idle, storm, protocol_setup);

/// A WebSocket server on 127.0.0.1:0 that accepts every upgrade and answers nothing.
async fn silent_server() -> std::net::SocketAddr {
    use futures_util::StreamExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    addr
}

/// A server that takes every message and acknowledges none: the run sent, so it must
/// not pass for a measurement — exit 1, and the reason on stderr and in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_acknowledges_nothing_fails_the_run() {
    let addr = silent_server().await;
    let json = std::env::temp_dir().join(format!("chat-bench-silent-{}.json", std::process::id()));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chat-bench"));
    cmd.arg("--url")
        .arg(format!("http://{addr}"))
        .arg("--jwt-secret")
        .arg(TEST_SECRET)
        .arg("--json")
        .arg(&json)
        .arg("--quiet")
        .args("--scenario direct --dialects type-content --pairs 2 --rate 20 --duration 0.5 --drain 0.5".split_whitespace());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("chat-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was acknowledged"), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report written"))
            .expect("the report is JSON");
    let _ = std::fs::remove_file(&json);
    assert!(report["run"]["sent"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(report["run"]["acks"], 0, "{report}");
    assert_eq!(report["verdict"]["ok"], false, "{report}");
}

/// A run where nobody sends (no room could be set up: `--setup protocol` with a
/// dialect that cannot create one) fails with the reason, not with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_set_up_in_the_protocol_fails() {
    let addr = silent_server().await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chat-bench"));
    cmd.arg("--url")
        .arg(format!("http://{addr}"))
        .arg("--jwt-secret")
        .arg(TEST_SECRET)
        .arg("--quiet")
        .args("--scenario direct --dialects action-request --setup protocol --pairs 1 --duration 0.3 --drain 0.3".split_whitespace());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("chat-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("creates rooms in the protocol"), "{stderr}");
    assert!(stderr.contains("no message was sent"), "{stderr}");
}
