//! A real socket.io-client (Node) for integration tests, driven over a pipe.
//!
//! `tests/node/driver.mjs` runs the npm package `socket.io-client` (pinned by
//! `tests/node/package-lock.json`, installed with `npm ci`) and relays every socket
//! event to stdout as a JSON line; this type sends it commands and waits for lines.
//! Testing with the client the legacy front-ends use catches what a hand-written
//! Engine.IO client would not (the polling handshake, the upgrade, reconnection).
//!
//! When Node or the package is missing, [`NodeSio::start`] returns `None` after
//! printing a loud SKIPPED line, except under `CI=true`, where it panics.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// socket.io-client options for a test connection: the mount `path`, the token in
/// the handshake `auth` (if any), the transports (default: polling, then upgrade) and
/// quick reconnection.
pub fn client_options(path: &str, token: Option<&str>, transports: Option<&[&str]>) -> Value {
    let mut o = json!({"path": path, "reconnectionDelay": 100, "reconnectionDelayMax": 300});
    if let Some(t) = token {
        o["auth"] = json!({ "token": t });
    }
    if let Some(t) = transports {
        o["transports"] = json!(t);
    }
    o
}

/// Assert that `v` is the Socket.IO dialects' error shape for `event` with `code`.
pub fn assert_wire_error(v: &Value, code: &str, event: &str) {
    assert_eq!(v["error"], code, "{v}");
    assert_eq!(v["event"], event, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

/// How long to wait for a line before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct NodeSio {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Lines read but not matched yet, oldest first.
    backlog: Vec<Value>,
    seq: u64,
}

/// The folder with `driver.mjs` and `package.json`.
pub fn driver_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node")
}

/// Whether `<tool> --version` runs and succeeds: is the tool installed?
pub async fn tool_runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

fn skip(why: &str) -> Option<NodeSio> {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("socket.io-client tests cannot run under CI: {why}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED (socket.io-client test): {why}. Run `bash scripts/test.sh`, or `npm ci` in tests/node, with Node 18+ installed. !!!!!!!!\n"
    );
    None
}

impl NodeSio {
    /// Start the driver; `None` (announced) when Node or socket.io-client is missing.
    pub async fn start() -> Option<NodeSio> {
        let dir = driver_dir();
        if !tool_runs("node").await {
            return skip("`node` is not installed");
        }
        if !dir
            .join("node_modules/socket.io-client/package.json")
            .exists()
        {
            return skip("tests/node/node_modules has no socket.io-client");
        }
        let mut child = Command::new("node")
            .arg(dir.join("driver.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        Some(NodeSio {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            backlog: Vec::new(),
            seq: 0,
        })
    }

    async fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("the driver reads commands");
        self.stdin.flush().await.expect("the driver reads commands");
    }

    /// Open socket `id` to `url` (`http://host:port/<namespace>`) with client options
    /// (`path`, `auth`, `transports`, …).
    pub async fn connect(&mut self, id: &str, url: &str, opts: Value) {
        self.send(json!({"cmd": "connect", "id": id, "url": url, "opts": opts}))
            .await;
    }

    /// Connect and wait for `connect`; returns the transport it connected with.
    pub async fn connect_ok(&mut self, id: &str, url: &str, opts: Value) -> String {
        self.connect(id, url, opts).await;
        let m = self
            .expect(id, |m| {
                matches!(m["type"].as_str(), Some("connect" | "connect_error"))
            })
            .await;
        assert_eq!(m["type"], "connect", "socket {id} did not connect: {m}");
        m["transport"].as_str().unwrap_or_default().to_string()
    }

    /// Emit without an ack.
    pub async fn emit(&mut self, id: &str, event: &str, args: Value) {
        self.send(json!({"cmd": "emit", "id": id, "event": event, "args": args, "ack": false}))
            .await;
    }

    /// Emit with an ack callback; the ack's arguments (panics on a timeout).
    pub async fn call_args(&mut self, id: &str, event: &str, args: Value) -> Vec<Value> {
        self.seq += 1;
        let seq = self.seq;
        self.send(
            json!({"cmd": "emit", "id": id, "event": event, "args": args, "ack": true, "seq": seq}),
        )
        .await;
        let m = self
            .expect(id, |m| m["type"] == "ack" && m["seq"] == seq)
            .await;
        assert!(
            m["error"].is_null(),
            "no ack for `{event}` on {id}: {}",
            m["error"]
        );
        m["args"].as_array().cloned().unwrap_or_default()
    }

    /// Emit one payload with an ack; the ack's first argument.
    pub async fn call(&mut self, id: &str, event: &str, payload: Value) -> Value {
        self.call_args(id, event, json!([payload]))
            .await
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    /// Send a raw Engine.IO message packet (its data is a Socket.IO packet).
    pub async fn raw(&mut self, id: &str, data: &str) {
        self.send(json!({"cmd": "raw", "id": id, "data": data}))
            .await;
    }

    /// The socket's current transport (`polling` or `websocket`).
    pub async fn transport(&mut self, id: &str) -> String {
        self.seq += 1;
        let seq = self.seq;
        self.send(json!({"cmd": "transport", "id": id, "seq": seq}))
            .await;
        let m = self
            .expect(id, |m| m["type"] == "transport" && m["seq"] == seq)
            .await;
        m["name"].as_str().unwrap_or_default().to_string()
    }

    pub async fn close(&mut self, id: &str) {
        self.send(json!({"cmd": "close", "id": id})).await;
    }

    /// The first argument of the next `event` emitted to socket `id`.
    pub async fn event(&mut self, id: &str, event: &str) -> Value {
        let m = self
            .expect(id, |m| m["type"] == "event" && m["event"] == event)
            .await;
        m["args"][0].clone()
    }

    /// The next line of socket `id` matching `pred`; earlier non-matching lines stay
    /// for later calls. Panics after [`WAIT`].
    pub async fn expect(&mut self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        match self.try_expect(id, WAIT, &pred).await {
            Some(v) => v,
            None => panic!(
                "socket {id}: no matching message within {WAIT:?}; unmatched so far: {:?}",
                self.backlog
            ),
        }
    }

    /// Like [`Self::expect`], `None` after `wait`.
    pub async fn try_expect(
        &mut self,
        id: &str,
        wait: Duration,
        pred: &impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(pos) = self.backlog.iter().position(|m| m["id"] == id && pred(m)) {
            return Some(self.backlog.remove(pos));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .ok()?
                .expect("the driver's stdout is readable")
                .unwrap_or_else(|| panic!("the driver exited"));
            let Ok(m) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if m["type"] == "driver_error" {
                panic!("driver error: {m}");
            }
            if m["id"] == id && pred(&m) {
                return Some(m);
            }
            self.backlog.push(m);
        }
    }

    /// After the server went away (a restart): socket `id` loses its transport —
    /// "transport close" or "transport error", depending on what the shutdown caught
    /// the client doing, but never a namespace disconnect, which socket.io-client
    /// would not retry — and connects again by itself.
    pub async fn expect_reconnect(&mut self, id: &str) {
        let d = self.expect(id, |m| m["type"] == "disconnect").await;
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("transport"), "socket {id}: {d}");
        self.expect(id, |m| m["type"] == "connect").await;
    }

    /// Assert that socket `id` gets no `event` within `ms`.
    pub async fn assert_no_event(&mut self, id: &str, event: &str, ms: u64) {
        let pred = |m: &Value| m["type"] == "event" && m["event"] == event;
        if let Some(m) = self.try_expect(id, Duration::from_millis(ms), &pred).await {
            panic!("socket {id} got an unexpected `{event}`: {m}");
        }
    }

    /// Stop the driver and its sockets.
    pub async fn exit(mut self) {
        self.send(json!({"cmd": "exit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
