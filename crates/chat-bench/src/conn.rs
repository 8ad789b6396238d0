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

use crate::stats;
use crate::wire::{Frame, RawWs};
use chat_client::dialects::looks_like_error;
use chat_client::{Dialect, Ready, Target, TokenCarrier};
use memchr::memmem;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::sync::watch;

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
    /// Which of the server's nodes it connects to.
    pub node: usize,
}

/// State shared by every client of a run.
pub struct Shared {
    /// The server's nodes (address, `Host` header); a client connects to
    /// `nodes[plan.node]`.
    pub nodes: Vec<(SocketAddr, String)>,
    pub paths: crate::cli::Paths,
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

type Ws = RawWs;

async fn open(sh: &Shared, plan: &Plan) -> Result<Ws, String> {
    let (addr, host) = &sh.nodes[plan.node % sh.nodes.len()];
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = plan.source {
        sock.bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = sock
        .connect(*addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let path = sh.paths.of(plan.dialect);
    let target = if plan.dialect.is_socketio() {
        format!("{path}?EIO=4&transport=websocket")
    } else {
        path.to_string()
    };
    let (auth_name, auth_value) = chat_client::jwt::bearer(&plan.token);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if plan.dialect.token_carrier() == TokenCarrier::BearerHeader {
        headers.push((auth_name, &auth_value));
    }
    if let Some(o) = &sh.origin {
        headers.push(("Origin", o));
    }
    RawWs::upgrade(stream, host, &target, &headers)
        .await
        .map_err(|e| format!("upgrade: {e}"))
}

fn text_of(f: &Frame<'_>) -> String {
    match f {
        Frame::Text(t) => String::from_utf8_lossy(t).into_owned(),
        other => format!("{other:?}"),
    }
}

/// Upgrade and authenticate; Ok when the dialect says the session is usable.
async fn handshake(sh: &Shared, plan: &Plan) -> Result<Ws, String> {
    let mut ws = open(sh, plan).await?;
    let d = plan.dialect;
    if d.is_socketio() {
        // Engine.IO's open packet comes first.
        match ws.next().await {
            Ok(Frame::Text(t)) if t.starts_with(b"0") => {}
            Ok(other) => return Err(format!("no Engine.IO open packet: {}", text_of(&other))),
            Err(e) => return Err(format!("no Engine.IO open packet: {e}")),
        }
    }
    if let Some(hello) = d.hello(&plan.token) {
        ws.send_text(&hello)
            .await
            .map_err(|e| format!("send hello: {e}"))?;
    } else {
        return Ok(ws);
    }
    loop {
        match ws.next().await {
            Ok(Frame::Text(t)) => {
                let t = String::from_utf8_lossy(t);
                match d.is_ready(&t) {
                    Ready::Yes => return Ok(ws),
                    Ready::Refused => return Err(format!("refused: {}", clip(&t))),
                    Ready::NotYet => {}
                }
            }
            Ok(Frame::Binary) => {}
            Ok(Frame::Close(c)) => return Err(format!("closed during auth: {c:?}")),
            Err(e) => return Err(format!("during auth: {e}")),
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

/// What one frame means to a client, owned so the socket is free to use again.
enum Seen {
    /// A message marker: sender, sequence number, send time.
    Marker(u64, u64, u64),
    /// Engine.IO ping (`2`).
    Heartbeat,
    /// Any other text frame.
    Text(String),
    /// Binary frames: nothing the scenarios look at.
    Other,
    /// The connection is over (closed by the server, read error, EOF): why.
    Ended(String),
}

fn classify(finder: &memmem::Finder<'_>, d: Dialect, frame: std::io::Result<Frame<'_>>) -> Seen {
    match frame {
        Ok(Frame::Text(b)) => {
            if let Some((sender, s, t)) = find_marker(finder, b) {
                Seen::Marker(sender, s, t)
            } else if d.is_socketio() && b == b"2" {
                Seen::Heartbeat
            } else {
                Seen::Text(String::from_utf8_lossy(b).into_owned())
            }
        }
        Ok(Frame::Binary) => Seen::Other,
        Ok(Frame::Close(c)) => Seen::Ended(format!("closed by server: {c:?}")),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Seen::Ended("connection ended".into())
        }
        Err(e) => Seen::Ended(format!("read error: {e}")),
    }
}

/// Connect, authenticate and leave: makes the server know the user, so a later run
/// measures returning users (the reconnect after a deploy) rather than sign-ups.
pub async fn visit(sh: &Shared, plan: &Plan) -> Result<(), String> {
    let mut ws = handshake(sh, plan).await?;
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close()).await;
    Ok(())
}

/// Set a room up in the protocol: a connection of its own as `plan`'s user (a second
/// one next to the client's), the dialect's create frame for the caller and `others`,
/// and the room id from its answer. Set-up is not measured.
pub async fn create_room(
    sh: &Shared,
    plan: &Plan,
    others: &[i64],
    title: Option<&str>,
) -> Result<i64, String> {
    let d = plan.dialect;
    let frame = d
        .create_room(others, title)
        .ok_or_else(|| format!("{d} cannot create a room in the protocol"))?;
    let mut ws = handshake(sh, plan).await?;
    ws.send_text(&frame)
        .await
        .map_err(|e| format!("send {d} create: {e}"))?;
    let answer = async {
        loop {
            match ws.next().await {
                Ok(Frame::Text(t)) => {
                    if d.is_socketio() && t == b"2" {
                        ws.send_text("3").await.map_err(|e| e.to_string())?;
                        continue;
                    }
                    if let Some(r) = d.room_created(&String::from_utf8_lossy(t)) {
                        return r.map_err(|e| format!("{d} refused the room: {e}"));
                    }
                }
                Ok(Frame::Binary) => {}
                Ok(Frame::Close(c)) => return Err(format!("closed before the room: {c:?}")),
                Err(e) => return Err(format!("before the room: {e}")),
            }
        }
    };
    let r = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .unwrap_or_else(|_| Err(format!("{d}: no answer to the room's creation in 30 s")));
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close()).await;
    r
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
    // Latencies of one burst, recorded together.
    let mut delivered: Vec<u64> = Vec::with_capacity(64);

    loop {
        let mut send_now = false;
        tokio::select! {
            frame = ws.next() => {
                // Every frame already buffered is handled here, without going back
                // to the `select!` (which would set up its other futures again per
                // frame); one clock reading serves the whole burst.
                let now = sh.now_ns();
                let mut seen = classify(&finder, d, frame);
                loop {
                    match seen {
                        Seen::Marker(sender, s, t) => {
                            let lat_us = now.saturating_sub(t) / 1000;
                            if sender == me {
                                if s > last_acked {
                                    last_acked = s;
                                    stats::acked(lat_us);
                                    if matches!(plan.role, Role::ClosedLoop) && sending {
                                        send_now = true;
                                    }
                                }
                            } else {
                                delivered.push(lat_us);
                            }
                        }
                        Seen::Heartbeat => {
                            // Engine.IO heartbeat: answer the ping.
                            if ws.send_text("3").await.is_err() {
                                return;
                            }
                        }
                        Seen::Other => {}
                        Seen::Text(text) => {
                            if awaiting_join {
                                match d.is_joined(&text) {
                                    Ready::Yes => {
                                        awaiting_join = false;
                                        joined = true;
                                        sh.joined.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Ready::Refused => {
                                        awaiting_join = false;
                                        sh.join_failed.fetch_add(1, Ordering::Relaxed);
                                        sh.note(format!("client {} ({d}) join refused: {}", plan.idx, clip(&text)));
                                    }
                                    Ready::NotYet => {}
                                }
                            } else if looks_like_error(&text) {
                                sh.error_frames.fetch_add(1, Ordering::Relaxed);
                                sh.note(format!("client {} ({d}) error: {}", plan.idx, clip(&text)));
                            }
                        }
                        Seen::Ended(why) => {
                            stats::delivered_many(&delivered);
                            if current < Phase::Close {
                                sh.disconnects.fetch_add(1, Ordering::Relaxed);
                                sh.note(format!("client {} ({d}) {why}", plan.idx));
                            }
                            return;
                        }
                    }
                    seen = match ws.try_next() {
                        Ok(Some(f)) => classify(&finder, d, Ok(f)),
                        Ok(None) => break,
                        Err(e) => classify(&finder, d, Err(e)),
                    };
                }
                stats::delivered_many(&delivered);
                delivered.clear();
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
                                    if ws.send_text(&frame).await.is_err() {
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
                        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close()).await;
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
            let frame = d.send_frame(plan.user, target, &text, seq);
            stats::sent();
            if let Err(e) = ws.send_text(&frame).await {
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
