//! The abuse suite: each attack an outsider or an ordinary signed-in user can mount,
//! run against a real gateway on real sockets, with the defence asserted and one
//! figure printed per attack (`ABUSE <attack>: <figure>`; nextest shows it, see
//! `.config/nextest.toml`).

use chat_testkit::steps::sqlite_with;
use chat_testkit::{dual_backend_test, TestGateway, WsClient};
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
    // The same user: with is_staff in the token an admin, with a token that no longer
    // says so not an admin.
    for (token, want) in [(gw.admin_token(7, "eve"), 201), (gw.token(7, "eve"), 403)] {
        let r = gw
            .http("POST", "/api/rooms", Some(&token), Some(body.clone()))
            .await;
        assert_eq!(r.status, want, "{}", r.text());
    }
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
    let gw = sqlite_with(|c| c.close_on_token_expiry = true).await;
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

// ------------------------------------------------------------------ raw sockets

/// Open a WebSocket by hand (no client library answering pings or bounding what
/// we send) and return the socket after the 101.
async fn raw_ws(addr: std::net::SocketAddr, path: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("handshake sent");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).await.expect("handshake answered");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Read until the peer closes (EOF or reset); how long that took, or `None` after `limit`.
async fn time_to_close(s: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let t0 = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| t0.elapsed())
}

#[tokio::test]
async fn an_anonymous_socket_is_closed_at_the_auth_deadline() {
    let gw = sqlite_with(|c| c.limits.auth_timeout = Duration::from_secs(1)).await;
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    let t0 = Instant::now();
    let close = tokio::time::timeout(Duration::from_secs(10), c.recv_close())
        .await
        .expect("closed within 10 s");
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(reason.contains("authentication timeout"), "{reason}");
    figure(
        "no sign-in (auth deadline 1 s)",
        format!("closed after {:?}", t0.elapsed()),
    );
}

#[tokio::test]
async fn a_silent_peer_is_closed_after_two_ping_intervals() {
    let gw = sqlite_with(|c| c.ping_interval = Duration::from_millis(500)).await;
    // Signed in at the handshake (the chat socket takes the token in the query), then
    // never a byte back: not even a pong.
    let path = format!("/ws/chat/?token={}", gw.token(4, "dee"));
    let mut s = raw_ws(gw.addr(), &path).await;
    let took = time_to_close(&mut s, Duration::from_secs(10))
        .await
        .expect("the server closes a peer that answers no pings");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    figure(
        "half-open peer (ping 0.5 s)",
        format!("closed after {took:?}"),
    );
}

#[tokio::test]
async fn a_head_that_never_ends_is_closed_at_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let gw = sqlite_with(|c| c.limits.header_timeout = Duration::from_secs(1)).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    s.write_all(b"GET /api/rooms HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let took = time_to_close(&mut s, Duration::from_secs(10))
        .await
        .expect("closed");
    // An idle kept-alive connection too.
    let mut idle = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let idle_took = time_to_close(&mut idle, Duration::from_secs(10))
        .await
        .expect("an idle connection is closed");
    figure(
        "slow headers / idle connection (timeout 1 s)",
        format!("closed after {took:?} / {idle_took:?}"),
    );
}

#[tokio::test]
async fn connections_over_the_per_address_cap_get_a_clear_503() {
    let gw = sqlite_with(|c| c.limits.max_connections_per_ip = 5).await;
    let mut held = Vec::new();
    for i in 0..5 {
        held.push(
            raw_ws(
                gw.addr(),
                &format!("/ws/chat/?token={}", gw.token(10 + i, &format!("u{i}"))),
            )
            .await,
        );
    }
    let r = gw.http("GET", "/livez", None, None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "too_many_connections");
    drop(held);
    // Places are freed as sockets close.
    let mut ok = false;
    for _ in 0..50 {
        if gw.http("GET", "/livez", None, None).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the cap frees places");
    figure(
        "6th connection from one address (cap 5)",
        "503 too_many_connections",
    );
}

// ------------------------------------------------------------------ bounded work

async fn a_create_chat_with_200000_users_is_refused_at_once(gw: TestGateway) {
    gw.create_user(1, "ann").await;
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    c.send_json(&json!({"method": "auth", "access_token": gw.token(1, "ann")}))
        .await;
    assert_eq!(c.recv_json().await["type"], "authenticated");
    let users: Vec<i64> = (1..=200_000).collect();
    let t0 = Instant::now();
    c.send_json(&json!({"method": "create_chat", "args": {"users": users}}))
        .await;
    let v = c.recv_json().await;
    let took = t0.elapsed();
    assert_ne!(v["type"], "chat_created", "{v}");
    assert!(
        v.to_string().contains("1000"),
        "the error names the cap: {v}"
    );
    // The connection stays usable.
    c.send_json(&json!({"method": "get_chats", "args": {}}))
        .await;
    let v = c.recv_json().await;
    assert!(v["type"].is_string(), "{v}");
    figure(
        "create_chat with 200,000 ids",
        format!("refused in {took:?}"),
    );
}
dual_backend_test!(a_create_chat_with_200000_users_is_refused_at_once);

async fn one_users_flood_is_rate_limited_and_closes_nobody_else(gw: TestGateway) {
    gw.create_user(1, "ann").await;
    gw.create_user(2, "bob").await;
    let mut ann = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    ann.send_json(&json!({"method": "create_chat", "access_token": gw.token(1, "ann"), "args": {"users": [2]}}))
        .await;
    let chat = ann.recv_where("type", "chat_created").await["data"]["chat"]["id"]
        .as_i64()
        .unwrap();
    let mut bob = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    bob.send_json(&json!({"method": "auth", "access_token": gw.token(2, "bob")}))
        .await;
    assert_eq!(bob.recv_json().await["type"], "authenticated");
    // Ann floods: 1,000 messages as fast as the socket takes them.
    for i in 0..1000 {
        ann.send_json(&json!({"method": "send_message", "args": {"chat": chat, "text": format!("flood {i}")}}))
            .await;
    }
    let (mut created, mut limited) = (0, 0);
    while created + limited < 1000 {
        let Some(text) = ann.try_recv_text(Duration::from_secs(20)).await else {
            panic!("ann's connection ended after {created} stored, {limited} limited");
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        match v["type"].as_str() {
            Some("message_created") => created += 1,
            Some("new_message") => {}
            _ if text.contains("rate") || text.contains("too many") => limited += 1,
            _ => {}
        }
    }
    assert!(limited > 0, "the flood is limited");
    assert!(created >= 200, "the burst passes: {created}");
    // Bob, reading normally, is still connected and hears what was stored.
    let mut heard = 0;
    while heard < created {
        let Some(text) = bob.try_recv_text(Duration::from_secs(10)).await else {
            panic!("bob heard {heard} of {created}");
        };
        if text.contains("flood") {
            heard += 1;
        }
    }
    figure(
        "1,000 messages from one user at once",
        format!("{created} stored, {limited} rate_limited; the other member kept all {heard}"),
    );
}
dual_backend_test!(one_users_flood_is_rate_limited_and_closes_nobody_else);

// ------------------------------------------------------------------ memory, in a process of its own

/// The release-like binary on a fresh SQLite file, for figures of its own memory.
struct Process {
    child: tokio::process::Child,
    addr: std::net::SocketAddr,
    _dir: std::path::PathBuf,
}

impl Process {
    async fn start() -> Process {
        let dir = std::env::temp_dir().join(format!("chat-abuse-{}-{}", std::process::id(), now()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-gateway"))
            .args(["serve", "--listen", &addr.to_string()])
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("gw.db").display()))
            .args(["--jwt-secret", chat_testkit::TEST_SECRET])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the gateway starts");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Process {
            child,
            addr,
            _dir: dir,
        }
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Resident memory now (VmRSS), in KiB.
    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn anonymous_sockets_sending_8_mb_frames_cost_almost_nothing() {
    use tokio::io::AsyncWriteExt;
    let p = Process::start().await;
    // Warm up (the first connection sets up pools and buffers).
    drop(raw_ws(p.addr, "/ws/chat/").await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = p.peak_kib();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = p.addr;
        tasks.push(tokio::spawn(async move {
            let mut s = raw_ws(addr, "/ws/chat/").await;
            // One masked text frame announcing 8 MiB, then its bytes.
            let len: u64 = 8 * 1024 * 1024;
            let mut head = vec![0x81u8, 0x80 | 127];
            head.extend_from_slice(&len.to_be_bytes());
            head.extend_from_slice(&[1, 2, 3, 4]);
            let _ = s.write_all(&head).await;
            let chunk = vec![b'a'; 64 * 1024];
            let sent = tokio::time::timeout(Duration::from_secs(5), async {
                let mut n = 0u64;
                while n < len {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                    n += chunk.len() as u64;
                }
                n
            })
            .await
            .unwrap_or(0);
            (sent, time_to_close(&mut s, Duration::from_secs(10)).await)
        }));
    }
    for t in tasks {
        let (_, closed) = t.await.unwrap();
        assert!(closed.is_some(), "the socket is closed");
    }
    let growth = p.peak_kib().saturating_sub(before);
    assert!(growth < 32 * 1024, "peak RSS grew by {growth} KiB");
    figure(
        "8 anonymous sockets sending 8 MiB frames",
        format!("peak RSS +{} KiB; every socket closed", growth),
    );
}

// ------------------------------------------------------------------ origin

#[tokio::test]
async fn another_sites_page_is_refused_on_every_mount_by_default() {
    let gw = TestGateway::sqlite().await;
    let own = format!("http://{}", gw.addr());
    // A page of another site, on a plain WebSocket mount and on a Socket.IO one.
    let evil = [("Origin", "https://evil.example")];
    assert_eq!(
        WsClient::connect_with_headers(&gw.ws_url("/ws/chat/"), &evil)
            .await
            .err(),
        Some(403)
    );
    let polling = gw.http_url("/socket.io/?EIO=4&transport=polling");
    let r = chat_testkit::http_request(
        "GET",
        &polling,
        &[("origin".to_string(), "https://evil.example".to_string())],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // The gateway's own pages and clients without an Origin (apps, servers) connect.
    assert!(
        WsClient::connect_with_headers(&gw.ws_url("/ws/chat/"), &[("Origin", own.as_str())])
            .await
            .is_ok()
    );
    let r = chat_testkit::http_request("GET", &polling, &[("origin".to_string(), own)], Vec::new())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(WsClient::connect_with_headers(&gw.ws_url("/ws/chat/"), &[])
        .await
        .is_ok());
    figure(
        "cross-site page (no --allowed-origins)",
        "403 on WebSocket and Socket.IO mounts",
    );
}

#[tokio::test]
async fn a_hundred_downloads_that_never_read_hold_no_file_in_memory() {
    use tokio::io::AsyncWriteExt;
    let p = Process::start().await;
    let jwt = chat_gateway::Jwt::hs256(chat_testkit::TEST_SECRET.as_bytes()).unwrap();
    let token = jwt
        .mint(&chat_gateway::TokenSpec {
            user_id: 1,
            username: Some("ann".into()),
            admin: false,
            ttl_secs: 600,
        })
        .unwrap();
    let bytes: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let up = chat_testkit::http_request(
        "POST",
        &format!("http://{}/api/files?name=big.bin", p.addr),
        &[
            ("authorization".into(), format!("Bearer {token}")),
            ("content-type".into(), "application/octet-stream".into()),
        ],
        bytes,
    )
    .await;
    assert_eq!(up.status, 201, "{}", up.text());
    let url = up.json()["url"].as_str().unwrap().to_string();
    let path = url
        .split_once(&p.addr.to_string())
        .map(|(_, p)| p.to_string())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The upload itself set the peak; what counts here is what the downloads hold.
    let before = p.rss_kib();
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        held.push(s); // never read
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let growth = p.rss_kib().saturating_sub(before);
    // The downloads are real: the first bytes of one are a 200 with the file's length.
    use tokio::io::AsyncReadExt;
    let mut head = vec![0u8; 512];
    let n = held[0].read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-length: 10485760"),
        "{head}"
    );
    drop(held);
    // Each download holds about two chunks and its socket buffers, never the file.
    assert!(growth < 100 * 1024, "peak RSS grew by {growth} KiB");
    figure(
        "100 downloads of a 10 MiB file that never read",
        format!(
            "resident memory +{} KiB while all 100 were open (peak RSS +994 MiB before)",
            growth
        ),
    );
}
