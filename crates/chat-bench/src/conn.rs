//! One simulated client: connect, authenticate, join, then send and receive until told
//! to stop.
//!
//! Each client is one task that owns its WebSocket; it follows the run's phases from a
//! `watch` channel, so the orchestrator can set rooms up after every client is usable
//! and start everybody's sending at the same moment.
//!
//! The receive path is the generator's hot path (a million frames a second in the
//! fan-out scenario), so it does not parse JSON: it looks for the `bench:` marker in
//! the raw frame, reads the sender, sequence number and send time that follow it, and
//! records the latency in this worker thread's histogram. Whether a frame is our own
//! acknowledgement or a delivery follows from the sender named in the marker.

use crate::dialect::{Dialect, Ready, Target};
use crate::stats;
use futures_util::{SinkExt, StreamExt};
use memchr::memmem;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const MARKER: &[u8] = b"bench:";

/// Where the run is. Clients move forward only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Connect,
    Join,
    Run,
    Stop,
    Close,
}

/// What a client does once the run starts.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    Listen,
    /// Send one message every period, whatever happens to the previous ones.
    Rate(Duration),
    /// Send, wait for the own acknowledgement, send again.
    ClosedLoop,
}

/// One client's identity.
#[derive(Clone, Debug)]
pub struct Plan {
    pub idx: usize,
    pub user: i64,
    pub dialect: Dialect,
    pub token: String,
    pub source: Option<IpAddr>,
    pub role: Role,
}

/// State shared by every client of a run.
pub struct Shared {
    pub addr: SocketAddr,
    pub host: String,
    pub paths: crate::Paths,
    pub origin: Option<String>,
    pub epoch: Instant,
    /// Each client's room, filled in by the orchestrator before `Phase::Join`.
    pub targets: Vec<OnceLock<Target>>,
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    pub joined: AtomicUsize,
    pub join_failed: AtomicUsize,
    pub disconnects: AtomicU64,
    pub error_frames: AtomicU64,
    /// A few examples of what went wrong, for the report.
    pub samples: std::sync::Mutex<Vec<String>>,
    pub pad: String,
}

impl Shared {
    fn note(&self, what: String) {
        if let Ok(mut s) = self.samples.lock() {
            if s.len() < 8 {
                s.push(what);
            }
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Small buffers: 15,000 idle clients must not cost the generator gigabytes.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

async fn open(sh: &Shared, plan: &Plan) -> Result<Ws, String> {
    let sock = match sh.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = plan.source {
        sock.bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = sock
        .connect(sh.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let path = sh.paths.of(plan.dialect);
    let url = if plan.dialect.is_socketio() {
        format!("ws://{}{}?EIO=4&transport=websocket", sh.host, path)
    } else {
        format!("ws://{}{}", sh.host, path)
    };
    let mut req = url
        .into_client_request()
        .map_err(|e| format!("request: {e}"))?;
    if matches!(plan.dialect, Dialect::TypeContent | Dialect::ActionRequest) {
        let v = format!("Bearer {}", plan.token)
            .parse()
            .map_err(|_| "token is not a header value".to_string())?;
        req.headers_mut().insert("authorization", v);
    }
    if let Some(o) = &sh.origin {
        if let Ok(v) = o.parse() {
            req.headers_mut().insert("origin", v);
        }
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(ws_config()))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    Ok(ws)
}

/// Upgrade and authenticate; Ok when the dialect says the session is usable.
async fn handshake(sh: &Shared, plan: &Plan) -> Result<Ws, String> {
    let mut ws = open(sh, plan).await?;
    let d = plan.dialect;
    if d.is_socketio() {
        // Engine.IO's open packet comes first.
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
            other => return Err(format!("no Engine.IO open packet: {other:?}")),
        }
    }
    if let Some(hello) = d.hello(&plan.token) {
        ws.send(Message::text(hello))
            .await
            .map_err(|e| format!("send hello: {e}"))?;
    } else {
        return Ok(ws);
    }
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match d.is_ready(t.as_str()) {
                Ready::Yes => return Ok(ws),
                Ready::Refused => return Err(format!("refused: {}", clip(t.as_str()))),
                Ready::NotYet => {}
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("during auth: {e}")),
            None => return Err("closed during auth".into()),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Reads `digits` from the start of `b`; returns the number and the rest after one
/// separator byte.
fn number(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.wrapping_mul(10).wrapping_add((b[i] - b'0') as u64);
        i += 1;
    }
    if i == 0 {
        return None;
    }
    Some((n, b.get(i + 1..).unwrap_or(&[])))
}

/// The marker's sender, sequence number and send time, if the frame carries one.
pub fn find_marker(finder: &memmem::Finder<'_>, frame: &[u8]) -> Option<(u64, u64, u64)> {
    let at = finder.find(frame)?;
    let rest = &frame[at + MARKER.len()..];
    let (sender, rest) = number(rest)?;
    let (seq, rest) = number(rest)?;
    let (t, _) = number(rest)?;
    Some((sender, seq, t))
}

fn looks_like_error(frame: &str) -> bool {
    frame.contains(r#""type":"error""#)
        || frame.contains(r#""errors":["#) && !frame.contains(r#""errors":[]"#)
        || frame.contains(r#""error":"#)
}

/// Connect, authenticate and leave: makes the server know the user, so a later run
/// measures returning users (the reconnect after a deploy) rather than sign-ups.
pub async fn visit(sh: &Shared, plan: &Plan) -> Result<(), String> {
    let mut ws = handshake(sh, plan).await?;
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(())
}

/// Run one client to the end of the run.
pub async fn run(sh: Arc<Shared>, plan: Plan, mut phase: watch::Receiver<Phase>) {
    let t0 = Instant::now();
    let mut ws = match handshake(&sh, &plan).await {
        Ok(ws) => ws,
        Err(e) => {
            sh.failed.fetch_add(1, Ordering::Relaxed);
            sh.note(format!("client {} ({}): {e}", plan.idx, plan.dialect));
            return;
        }
    };
    stats::connected(t0.elapsed().as_micros() as u64);
    sh.ready.fetch_add(1, Ordering::Relaxed);

    let finder = memmem::Finder::new(MARKER);
    let me = plan.idx as u64;
    let d = plan.dialect;
    let mut seq: u64 = 0;
    let mut last_acked: u64 = 0;
    let mut joined = false;
    let mut awaiting_join = false;
    let mut sending = false;
    let mut tick: Option<tokio::time::Interval> = None;
    let mut current = Phase::Connect;

    loop {
        let mut send_now = false;
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => {
                        if current < Phase::Close {
                            sh.disconnects.fetch_add(1, Ordering::Relaxed);
                            sh.note(format!("client {} ({d}) closed by server: {c:?}", plan.idx));
                        }
                        return;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        if current < Phase::Close {
                            sh.disconnects.fetch_add(1, Ordering::Relaxed);
                            sh.note(format!("client {} ({d}) read error: {e}", plan.idx));
                        }
                        return;
                    }
                    None => {
                        if current < Phase::Close {
                            sh.disconnects.fetch_add(1, Ordering::Relaxed);
                            sh.note(format!("client {} ({d}) connection ended", plan.idx));
                        }
                        return;
                    }
                };
                let bytes = text.as_bytes();
                if let Some((sender, s, t)) = find_marker(&finder, bytes) {
                    let lat_us = sh.now_ns().saturating_sub(t) / 1000;
                    if sender == me {
                        if s > last_acked {
                            last_acked = s;
                            stats::acked(lat_us);
                            if matches!(plan.role, Role::ClosedLoop) && sending {
                                send_now = true;
                            }
                        }
                    } else {
                        stats::delivered(lat_us);
                    }
                } else if d.is_socketio() && bytes == b"2" {
                    // Engine.IO heartbeat: answer the ping.
                    if ws.send(Message::text("3")).await.is_err() {
                        return;
                    }
                } else if awaiting_join {
                    match d.is_joined(text.as_str()) {
                        Ready::Yes => {
                            awaiting_join = false;
                            joined = true;
                            sh.joined.fetch_add(1, Ordering::Relaxed);
                        }
                        Ready::Refused => {
                            awaiting_join = false;
                            sh.join_failed.fetch_add(1, Ordering::Relaxed);
                            sh.note(format!("client {} ({d}) join refused: {}", plan.idx, clip(text.as_str())));
                        }
                        Ready::NotYet => {}
                    }
                } else if looks_like_error(text.as_str()) {
                    sh.error_frames.fetch_add(1, Ordering::Relaxed);
                    sh.note(format!("client {} ({d}) error: {}", plan.idx, clip(text.as_str())));
                }
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
                let p = *phase.borrow_and_update();
                current = p;
                match p {
                    Phase::Connect => {}
                    Phase::Join => {
                        if !joined && !awaiting_join {
                            let join = sh.targets[plan.idx].get().and_then(|t| d.join(t));
                            match join {
                                Some(frame) => {
                                    awaiting_join = true;
                                    if ws.send(Message::text(frame)).await.is_err() {
                                        return;
                                    }
                                }
                                None => {
                                    joined = true;
                                    sh.joined.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    Phase::Run => {
                        match plan.role {
                            Role::Listen => {}
                            Role::Rate(period) => {
                                // Spread the senders over one period so they do not all
                                // fire in the same millisecond.
                                let offset = period.mul_f64((plan.idx % 97) as f64 / 97.0);
                                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                                tick = Some(t);
                                sending = true;
                            }
                            Role::ClosedLoop => {
                                sending = true;
                                send_now = true;
                            }
                        }
                    }
                    Phase::Stop => sending = false,
                    Phase::Close => {
                        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                        return;
                    }
                }
            }
            _ = async {
                match tick.as_mut() {
                    Some(t) if sending => {
                        t.tick().await;
                    }
                    _ => std::future::pending::<()>().await,
                }
            } => send_now = true,
        }
        if send_now && sending {
            let Some(target) = sh.targets[plan.idx].get() else {
                continue;
            };
            seq += 1;
            let text = format!("bench:{me}:{seq}:{}{}", sh.now_ns(), sh.pad);
            let frame = d.send(plan.user, target, &text, seq);
            stats::sent();
            if let Err(e) = ws.send(Message::text(frame)).await {
                sh.disconnects.fetch_add(1, Ordering::Relaxed);
                sh.note(format!("client {} ({d}) send failed: {e}", plan.idx));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_marker_inside_any_frame() {
        let f = memmem::Finder::new(MARKER);
        let frame = br#"42["new-message",{"msg":"bench:12:7:123456789 xx","user_id":"3"}]"#;
        assert_eq!(find_marker(&f, frame), Some((12, 7, 123456789)));
        assert_eq!(find_marker(&f, br#"{"type":"new_chat"}"#), None);
        assert_eq!(find_marker(&f, b"bench:x"), None);
    }
}
