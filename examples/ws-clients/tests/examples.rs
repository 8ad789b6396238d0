//! The examples are documentation; this runs them against a real gateway (testkit, on
//! SQLite) so they cannot rot: the three Rust clients of this crate, the two Node
//! clients in `examples/node`, and `examples/five-dialects.sh` with all five at once.
//! Each is started as its README section says, with the gateway's URL and tokens in
//! its environment, and the test reads what it prints.
//!
//! The test lives in this crate so that cargo builds the example binaries for it
//! (`CARGO_BIN_EXE_*`) instead of the test calling cargo. The Node examples need Node
//! and `npm ci` in `examples/node` (`scripts/test.sh` runs it); without them those tests
//! print SKIPPED loudly, and under `CI=true` they fail instead.

use chat_core::{RoomKind, UserId};
use chat_testkit::TestGateway;
use socketio_common::node::tool_runs;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long to wait for a line.
const WAIT: Duration = Duration::from_secs(20);

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running example: its stdout, line by line.
struct Running {
    name: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Running {
    fn start(name: &str, mut cmd: Command, gw: &TestGateway, env: &[(&str, String)]) -> Running {
        cmd.env("CHAT_URL", gw.http_url(""))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Running {
            name: name.to_string(),
            child,
            lines: BufReader::new(stdout).lines(),
            seen: Vec::new(),
        }
    }

    /// The next `<- {frame} #…` line of a message `from` someone with the text
    /// `hello from <sender>` (what every example sends).
    async fn hears(&mut self, frame: &str, from: &str, sender: &str) -> String {
        let head = format!("<- {frame} #");
        let tail = format!("from {from}: \"hello from {sender}\"");
        self.expect(&[&head, &tail]).await
    }

    /// The next line containing every one of `needles` (earlier lines are kept in `seen`).
    async fn expect(&mut self, needles: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: no line with {needles:?} within {WAIT:?}; it printed:\n{}",
                        self.name,
                        self.seen.join("\n")
                    )
                })
                .expect("stdout is readable")
                .unwrap_or_else(|| {
                    panic!(
                        "{} exited without printing {needles:?}; it printed:\n{}",
                        self.name,
                        self.seen.join("\n")
                    )
                });
            self.seen.push(line.clone());
            if needles.iter().all(|n| line.contains(n)) {
                return line;
            }
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The settings every client reads: `CHAT_TOKEN`, `CHAT_USER_ID` where the dialect
/// needs the caller's own id, and `CHAT_PEER`.
fn client_env(token: String, me: Option<i64>, peer: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![("CHAT_TOKEN", token), ("CHAT_PEER", peer.to_string())];
    env.extend(me.map(|id| ("CHAT_USER_ID", id.to_string())));
    env
}

/// One of this crate's binaries.
fn start_rust(bin: &str, gw: &TestGateway, env: &[(&str, String)]) -> Running {
    let path = match bin {
        "method-args" => env!("CARGO_BIN_EXE_method-args"),
        "type-content" => env!("CARGO_BIN_EXE_type-content"),
        "action-request" => env!("CARGO_BIN_EXE_action-request"),
        _ => unreachable!("no example {bin}"),
    };
    Running::start(bin, Command::new(path), gw, env)
}

/// Skip (loudly) when a tool the Node examples need is missing, except under CI.
async fn node_ready(also: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    for tool in ["node"].iter().chain(also) {
        if !tool_runs(tool).await {
            missing.push(format!("`{tool}` is not installed"));
        }
    }
    if !examples_dir()
        .join("node/node_modules/socket.io-client/package.json")
        .exists()
    {
        missing.push("examples/node has no node_modules (run `npm ci` there)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("the Node examples cannot run under CI: {why}");
    }
    eprintln!("\n!!!!!!!! SKIPPED (Node examples): {why}. Run `bash scripts/test.sh` with Node 18+ installed. !!!!!!!!\n");
    false
}

/// One of the Node examples, `examples/node/<name>.mjs`.
fn start_node(name: &str, gw: &TestGateway, env: &[(&str, String)]) -> Running {
    let mut cmd = Command::new("node");
    cmd.arg(examples_dir().join("node").join(format!("{name}.mjs")));
    Running::start(name, cmd, gw, env)
}

/// The three Rust clients in one chat: each prints its own message and the later ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_examples_talk_to_each_other() {
    let gw = TestGateway::sqlite().await;
    gw.create_user(1, "ann").await;
    gw.create_user(2, "bob").await;
    let ann = gw.token(1, "ann");
    let bob = gw.token(2, "bob");

    // method-args creates the direct chat of ann and bob.
    let mut ma = start_rust("method-args", &gw, &client_env(ann.clone(), None, "2"));
    let ready = ma.expect(&["ready: chat "]).await;
    let chat = ready.trim_start_matches("ready: chat ").to_string();
    ma.hears("message_created", "1", "method-args").await;

    // type-content names it "1_2"; bob's message reaches method-args as new_message.
    let mut tc = start_rust("type-content", &gw, &client_env(bob, Some(2), "1"));
    tc.hears("new_message", "2", "type-content").await;
    tc.expect(&["ready: chat 1_2"]).await;
    ma.hears("new_message", "2", "type-content").await;

    // action-request finds the same room and joins it.
    let mut ar = start_rust("action-request", &gw, &client_env(ann, None, "2"));
    ar.expect(&[&format!("ready: room {chat}")]).await;
    ar.hears("create_message", "\"ann\"", "action-request")
        .await;
    // Ann's other connection (method-args) sees her message as her own.
    ma.hears("message_created", "1", "action-request").await;
    tc.hears("new_message", "1", "action-request").await;

    for r in [ma, tc, ar] {
        r.stop().await;
    }
}

/// The two Node clients in the direct chat of ann and bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_examples_talk_to_each_other() {
    if !node_ready(&[]).await {
        return;
    }
    let gw = TestGateway::sqlite().await;
    gw.create_user(1, "ann").await;
    gw.create_user(2, "bob").await;
    let room = gw
        .create_room(
            RoomKind::direct(UserId(1), UserId(2)).expect("two users"),
            &[1, 2],
            false,
        )
        .await
        .0;

    let ann = gw.token(1, "ann");
    let mut sp = start_node("socketio-pubsub", &gw, &client_env(ann, None, "bob"));
    sp.expect(&["ready: conversation with bob (0 earlier chats)"])
        .await;
    sp.expect(&["sent #", "from ann: \"hello from socketio-pubsub\""])
        .await;

    let bob = gw.token(2, "bob");
    let mut sr = start_node("socketio-rooms", &gw, &client_env(bob, Some(2), "1"));
    sr.expect(&[&format!("ready: chat {room}")]).await;
    sr.expect(&[
        "<- new-message #",
        "from 2: \"hello from socketio-rooms\" (text)",
    ])
    .await;
    sp.hears("chat", "bob", "socketio-rooms").await;

    for r in [sp, sr] {
        r.stop().await;
    }
}

/// `five-dialects.sh`: each client prints its own message and every later client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_dialects_script_shows_every_message_everywhere() {
    if !node_ready(&["bash", "curl"]).await {
        return;
    }
    let gw = TestGateway::sqlite().await;
    let bins = PathBuf::from(env!("CARGO_BIN_EXE_method-args"))
        .parent()
        .expect("a folder")
        .to_path_buf();
    let mut cmd = Command::new("bash");
    cmd.arg(examples_dir().join("five-dialects.sh"));
    let mut script = Running::start(
        "five-dialects.sh",
        cmd,
        &gw,
        &[
            ("GATEWAY", gw.http_url("")),
            ("ANN_TOKEN", gw.token(1, "ann")),
            ("BOB_TOKEN", gw.token(2, "bob")),
            ("WS_CLIENTS", bins.display().to_string()),
            ("LINGER", "1".into()),
        ],
    );
    let order = [
        "method-args",
        "type-content",
        "action-request",
        "socketio-rooms",
        "socketio-pubsub",
    ];
    // Read everything the script prints until it exits.
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(WAIT * 3, script.lines.next_line()).await {
            Ok(Ok(Some(line))) => out.push(line),
            Ok(_) => break,
            Err(_) => panic!(
                "five-dialects.sh did not finish; it printed:\n{}",
                out.join("\n")
            ),
        }
    }
    let status = script.child.wait().await.expect("the script ran");
    let out = out.join("\n");
    assert!(status.success(), "five-dialects.sh failed:\n{out}");
    for (i, client) in order.iter().enumerate() {
        assert!(
            out.contains(&format!("[{client}] ready")),
            "{client} is not ready:\n{out}"
        );
        for sender in &order[i..] {
            let heard = out.lines().any(|l| {
                l.starts_with(&format!("[{client}] "))
                    && l.contains(&format!("\"hello from {sender}\""))
            });
            assert!(heard, "{client} did not show {sender}'s message:\n{out}");
        }
    }
}
