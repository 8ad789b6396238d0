//! Gateway nodes as processes of the real binary, on one PostgreSQL database, for the
//! cluster tests.

#![allow(dead_code)]

use chat_testkit::{http_request, TEST_SECRET};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// One `chat-gateway serve` process.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
    data: PathBuf,
    pub log: PathBuf,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

impl Node {
    /// Start a node on `database_url` (extra flags after `serve`) and wait until it
    /// answers `/healthz`.
    pub async fn spawn(database_url: &str, extra: &[&str]) -> Node {
        Self::spawn_on(database_url, extra, None).await
    }

    /// A node on a given address (a restarted node where its clients reconnect).
    pub async fn spawn_at(database_url: &str, extra: &[&str], addr: SocketAddr) -> Node {
        Self::spawn_on(database_url, extra, Some(addr)).await
    }

    async fn spawn_on(database_url: &str, extra: &[&str], at: Option<SocketAddr>) -> Node {
        let data = std::env::temp_dir().join(format!(
            "chat-node-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&data).expect("node data dir");
        let log = data.join("node.log");
        for _ in 0..5 {
            let addr: SocketAddr = at.unwrap_or_else(|| {
                format!("127.0.0.1:{}", free_port())
                    .parse()
                    .expect("an address")
            });
            let file = std::fs::File::create(&log).expect("node log");
            let child = Command::new(env!("CARGO_BIN_EXE_chat-gateway"))
                .arg("serve")
                .args(["--listen", &addr.to_string()])
                .args(["--database-url", database_url])
                .args(["--jwt-secret", TEST_SECRET])
                // These tests push bursts of hundreds of messages from one user; the
                // rate limits have tests of their own (tests/abuse.rs).
                .args(["--user-rate", "0", "--conn-rate", "0"])
                .arg("--data-dir")
                .arg(&data)
                .args(extra)
                .env("RUST_LOG", "warn,chat_cluster=info")
                .stdout(Stdio::null())
                .stderr(file)
                .kill_on_drop(true)
                .spawn()
                .expect("the gateway binary starts");
            let mut node = Node {
                child,
                addr,
                data: data.clone(),
                log: log.clone(),
            };
            if node.wait_ready(Duration::from_secs(30)).await {
                return node;
            }
            // The port was taken between probing and binding: try another.
            let _ = node.child.start_kill();
            let _ = node.child.wait().await;
        }
        panic!("a node never became ready; its log:\n{}", read(&log));
    }

    async fn wait_ready(&mut self, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(Ok(r)) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::spawn(http_get(format!("http://{}/healthz", self.addr))),
            )
            .await
            {
                if r == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Open connections of `user` on this node (asked with an admin token).
    pub async fn connections_of(&self, admin_token: &str, user: i64) -> usize {
        let r = http_request(
            "GET",
            &self.http_url(&format!("/api/connections?user={user}")),
            &[("authorization".into(), format!("Bearer {admin_token}"))],
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.json()["user"].as_u64().unwrap_or(0) as usize
    }

    /// Wait until `user` has `n` connections here.
    pub async fn wait_connections(&self, admin_token: &str, user: i64, n: usize) {
        for _ in 0..500 {
            if self.connections_of(admin_token, user).await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("user {user} never had {n} connections on {}", self.addr);
    }

    /// `kill -9`: no clean shutdown, no goodbye to the cluster.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the node is running")
    }

    /// Wait for the process to exit by itself; returns its status code.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => panic!(
                "the node did not exit within {limit:?}; its log:\n{}",
                read(&self.log)
            ),
        }
    }

    /// SIGTERM, then wait for the exit; returns its status code.
    pub async fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let pid = self.child.id().expect("the node is running");
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => panic!(
                "the node did not exit within {limit:?} of SIGTERM; its log:\n{}",
                read(&self.log)
            ),
        }
    }

    /// The HTTP status of `GET path` on this node.
    pub async fn status_of(&self, path: &str) -> u16 {
        http_get(self.http_url(path)).await
    }

    pub fn log_text(&self) -> String {
        read(&self.log)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn http_get(url: String) -> u16 {
    http_request("GET", &url, &[], Vec::new()).await.status
}

/// A `redis-server` of the test's own, on a free port, that the test may restart.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    /// `None` (announced) when there is no `redis-server` binary, except under
    /// `CI=true`, where that fails the test.
    pub async fn start() -> Option<RedisServer> {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
        };
        match server.spawn().await {
            Ok(()) => Some(server),
            Err(why) => {
                if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
                    panic!("redis-server unavailable ({why}) and CI=true: this test must not be skipped");
                }
                eprintln!("SKIPPED (redis-server unavailable: {why})");
                None
            }
        }
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("redis-server did not listen on port {}", self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill the server (every subscription drops) and start it again, empty.
    pub async fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.spawn().await.expect("redis-server restarts");
    }
}
