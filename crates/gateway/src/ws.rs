//! The connection loop shared by every plain-WebSocket dialect.
//!
//! One task per connection owns the socket and the session. It waits on a frame from
//! the client, an event from the hub queue, the pace timer (see [`run_connection`]),
//! the ping timer, and its kill switch (slow consumer; linked to server shutdown).
//! Writes happen only here, never under a shared lock,
//! and each flush has a deadline so a client that stops reading cannot pin the task.
//! Events that are already queued are rendered together and leave in one flush, so
//! a busy connection costs one system call per batch rather than one per frame.

use bytes::Bytes;
use chat_core::hub::{CloseReason, KillSwitch};
use chat_core::meter::{CloseKind, OpenConnection};
use chat_core::session::PIPELINE_DEPTH;
use chat_core::throttle::{Bucket, Rate};
use chat_core::{ConnCtx, Outgoing, Session};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// Tunables of the loop.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Frames above this many bytes are refused by the dialect (connection stays).
    pub max_frame_bytes: usize,
    /// The same before the socket signs in.
    pub max_unauthenticated_frame_bytes: usize,
    /// A socket that has not signed in by then is closed.
    pub auth_timeout: Duration,
    /// Pings go out this often; a peer silent for two intervals is closed.
    pub ping_interval: Duration,
    /// Frames per second a connection may send; past it, the loop stops reading
    /// the socket until the bucket refills (the client's TCP window fills, so it
    /// is slowed down, not answered with errors — the per-user rate answers those).
    pub conn_rate: Rate,
    pub write_timeout: Duration,
}

/// Bytes a socket may still send before it signs in; unlimited once it has.
///
/// The WebSocket library reads a whole message before handing it over, so a frame
/// limit checked on the message comes after its memory was spent. This budget is
/// applied to the socket's reads themselves: an anonymous socket can never make the
/// server hold more than the budget, whatever the frame sizes it announces.
#[derive(Debug)]
pub struct ReadBudget {
    remaining: std::sync::atomic::AtomicUsize,
    unlimited: std::sync::atomic::AtomicBool,
}

impl ReadBudget {
    pub fn new(bytes: usize) -> Arc<Self> {
        Arc::new(ReadBudget {
            remaining: bytes.into(),
            unlimited: false.into(),
        })
    }

    fn lift(&self) {
        self.unlimited
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn exhausted(&self) -> bool {
        !self.unlimited.load(std::sync::atomic::Ordering::Relaxed)
            && self.remaining.load(std::sync::atomic::Ordering::Relaxed) == 0
    }
}

/// A socket whose reads are bounded by a [`ReadBudget`].
pub struct Budgeted<S> {
    inner: S,
    budget: Arc<ReadBudget>,
}

impl<S> Budgeted<S> {
    pub fn new(inner: S, budget: Arc<ReadBudget>) -> Self {
        Budgeted { inner, budget }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.budget.unlimited.load(Relaxed) {
            return std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let left = self.budget.remaining.load(Relaxed);
        if left == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "too much data before signing in",
            )));
        }
        let mut limited = buf.take(left);
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        // SAFETY: `limited` is the unfilled part of `buf`; the inner reader
        // initialised and filled its first `n` bytes.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        self.budget.remaining.fetch_sub(n, Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Most queued events rendered before one flush (bounds the batch a slow socket
/// write holds up, and the write buffer it grows). With events paced at
/// [`chat_core::hub::EVENT_FLUSH_INTERVAL`] a busy connection has a few dozen waiting per flush.
const COALESCE_EVENTS: usize = 256;

/// Policy violation (RFC 6455): no sign-in in time, too much before signing in, no
/// pongs, and the server's own closes other than shutdown (a slow consumer, an
/// expired token), for which it is the closest standard code. Shutdown is 1001,
/// "going away", which clients answer by reconnecting.
const CLOSE_POLICY: u16 = 1008;

fn close_message(code: u16, reason: &str) -> Message {
    let mut reason = reason.to_string();
    // A close reason must fit in a control frame (123 bytes).
    while reason.len() > 123 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// Drive one connection until it closes.
///
/// Hub events are paced: a connection that flushed less than [`chat_core::hub::EVENT_FLUSH_INTERVAL`]
/// ago leaves further events in its (bounded) hub queue until that much time has
/// passed, then renders and writes all of them at once. In a busy room this turns
/// one `send` per event, and one wake-up and `recv` per event on the client, into one
/// per interval — the system calls, not the rendering, were most of the cost of a
/// delivery. A connection that hears from its room rarely is not delayed at all
/// (its last flush is long past), and answers to the client's own frames are never
/// held back: they go out at once, with whatever events were already rendered.
pub async fn run_connection<S>(
    mut ws: WebSocketStream<S>,
    mut session: Box<dyn Session>,
    mut cx: ConnCtx,
    shutdown: CancellationToken,
    cfg: LoopConfig,
    budget: Arc<ReadBudget>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // One token to wait on for both the kill switch and server shutdown (set before
    // the session can sign in, which hands the switch to the hub).
    cx.kill = Arc::new(KillSwitch::linked_to(&shutdown));
    // Counted open until this task ends, whichever way it ends.
    let mut tally = cx.meter.as_ref().map(|m| m.open_connection());
    let mut batch = Batch::default();
    session.on_open(&mut cx).await;
    let mut open = flush(&mut ws, &mut cx, &cfg, &mut batch).await;
    let mut ping = tokio::time::interval(cfg.ping_interval);
    ping.tick().await;
    // Anything from the peer (a pong included) proves it is there.
    let mut last_heard = Instant::now();
    let mut signed_in = cx.principal.is_some();
    if signed_in {
        budget.lift();
    }
    let auth_deadline = tokio::time::sleep(cfg.auth_timeout);
    let resume_reading = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(auth_deadline, resume_reading);
    let mut bucket = Bucket::full(cfg.conn_rate, std::time::Instant::now());
    // Set while the connection is over its frame rate: its socket is not read.
    let mut paused = false;
    let kill = cx.kill.clone();
    // Created once: a fresh `cancelled()` future per turn would register with (and
    // leave) the token's waiter list every time.
    let killed = kill.killed();
    let pace = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(killed, pace);
    // Armed: rendered events wait for the pace timer rather than leaving now.
    let mut pacing = false;
    let mut pacer = chat_core::session::Pacer::default();
    while open {
        // Commands waiting for their commit: at the limit, the socket waits too.
        let pipelined = cx.in_flight() > 0;
        let admit = cx.in_flight() < PIPELINE_DEPTH;
        let (next_event, replies) = cx.sources(pacing);
        // Whether this turn produced something the client is waiting for.
        let mut urgent = false;
        tokio::select! {
            biased;
            _ = &mut killed => {
                let why = kill.reason().or(shutdown.is_cancelled().then_some(CloseReason::Shutdown));
                let (code, reason) = match why {
                    Some(CloseReason::Shutdown) => (1001, CloseReason::Shutdown.text()),
                    Some(r) => (CLOSE_POLICY, r.text()),
                    None => (CLOSE_POLICY, "closed by the server"),
                };
                closing(&mut tally, why.map_or(CloseKind::Protocol, CloseKind::from));
                let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(code, reason))).await;
                break;
            }
            // The pace timer and queued events come before the socket: polling the
            // socket costs a little even when it has nothing (tungstenite prepares its
            // read buffer), and pacing already keeps events from starving client
            // frames — after an event is rendered the next ones wait for the timer.
            _ = &mut auth_deadline, if !signed_in => {
                closing(&mut tally, CloseKind::AuthTimeout);
                let reason = format!("authentication timeout: no valid token within {} s", cfg.auth_timeout.as_secs());
                let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(CLOSE_POLICY, &reason))).await;
                break;
            }
            _ = &mut pace, if pacing => pacing = false,
            _ = &mut resume_reading, if paused => paused = false,
            Some(event) = next_event => {
                deliver(session.as_mut(), &mut cx, &event, &mut batch).await;
            }
            frames = replies, if pipelined => {
                cx.queue_ready(frames);
                urgent = true;
            }
            frame = ws.next(), if !paused && admit => {
                urgent = true;
                last_heard = Instant::now();
                if !bucket.take(cfg.conn_rate, std::time::Instant::now()) {
                    paused = true;
                    resume_reading.as_mut().reset(last_heard + bucket.wait(cfg.conn_rate));
                }
                let limit = match signed_in {
                    true => cfg.max_frame_bytes,
                    false => cfg.max_unauthenticated_frame_bytes,
                };
                if let (Some(m), Some(Ok(msg @ (Message::Text(_) | Message::Binary(_))))) = (&cx.meter, &frame) {
                    m.read(msg.len());
                }
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if text.len() > limit {
                            session.on_oversize(&mut cx, text.len()).await;
                        } else {
                            session.on_text(&mut cx, text.as_str()).await;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if bytes.len() > limit {
                            session.on_oversize(&mut cx, bytes.len()).await;
                        } else {
                            session.on_binary(&mut cx, &bytes).await;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        tracing::debug!(conn = %cx.conn, error = %e, "websocket read failed");
                        let too_large = budget.exhausted() || matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_));
                        closing(&mut tally, if too_large { CloseKind::TooLarge } else { CloseKind::Client });
                        if budget.exhausted() {
                            let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(CLOSE_POLICY, "too much data before signing in"))).await;
                        } else if let tokio_tungstenite::tungstenite::Error::Capacity(_) = e {
                            let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(1009, "frame too large"))).await;
                        }
                        break;
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > 2 * cfg.ping_interval {
                    tracing::debug!(conn = %cx.conn, "closing a peer silent for two ping intervals");
                    closing(&mut tally, CloseKind::PingTimeout);
                    let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(CLOSE_POLICY, "no answer to pings"))).await;
                    break;
                }
                if tokio::time::timeout(cfg.write_timeout, ws.send(Message::Ping(Bytes::new()))).await.map_or(true, |r| r.is_err()) {
                    break;
                }
            }
        }
        if !signed_in && cx.principal.is_some() {
            signed_in = true;
            budget.lift();
        }
        if pacing && !urgent {
            // Events keep waiting in the hub queue until the pace timer fires.
            continue;
        }
        // Events already waiting go out with what this turn produced, in one write.
        // Doing it after client frames too keeps a connection that sends a lot (frames
        // win the `biased` select) from starving its own queue into a slow-consumer
        // close.
        for _ in 0..COALESCE_EVENTS {
            let Some(sub) = cx.subscription.as_mut() else {
                break;
            };
            let Ok(event) = sub.rx.try_recv() else { break };
            deliver(session.as_mut(), &mut cx, &event, &mut batch).await;
        }
        if !cx.has_outgoing() {
            continue;
        }
        let now = Instant::now();
        if urgent || pacer.due(now) || cx.closing() {
            open = flush(&mut ws, &mut cx, &cfg, &mut batch).await;
            if !open {
                closing(&mut tally, CloseKind::Protocol);
            }
            pacer.pushed(now);
            pacing = false;
        } else {
            pacer.arm(pace.as_mut());
            pacing = true;
        }
    }
    // Commands admitted but not answered still publish what they committed.
    cx.settle().await;
    session.on_close(&mut cx).await;
    cx.sign_out().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

/// Set why the connection is ending, for its close count.
fn closing(tally: &mut Option<OpenConnection>, kind: CloseKind) {
    if let Some(t) = tally {
        t.closing(kind);
    }
}

/// The hub events rendered since the last write, for the delivery counters.
#[derive(Default)]
struct Batch {
    events: u64,
    oldest: Option<std::time::Instant>,
}

/// Hand one hub event to the session; an event it rendered (rather than dropped,
/// as a connection drops the echo of its own command) counts as delivered.
async fn deliver(
    session: &mut dyn Session,
    cx: &mut ConnCtx,
    event: &Arc<chat_core::Published>,
    batch: &mut Batch,
) {
    let before = cx.queued();
    session.on_event(cx, event).await;
    if cx.queued() > before {
        batch.events += 1;
        batch.oldest.get_or_insert(event.published_at());
    }
}

/// A rendering shared by many recipients, as a frame payload that points at the one
/// shared allocation instead of copying it: in a large room the same text goes to
/// every member, and a copy per recipient was the largest memory traffic of fan-out.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

fn shared_text(t: Arc<str>) -> Utf8Bytes {
    // SAFETY: the bytes are those of a `str`, so they are valid UTF-8.
    unsafe { Utf8Bytes::from_bytes_unchecked(Bytes::from_owner(SharedText(t))) }
}

/// Write what the session queued. Returns false when the connection must end.
async fn flush<S>(
    ws: &mut WebSocketStream<S>,
    cx: &mut ConnCtx,
    cfg: &LoopConfig,
    batch: &mut Batch,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let out = cx.take_outgoing();
    if out.is_empty() {
        return true;
    }
    // Counted before the write, so a client never sees a frame that the counters do
    // not show yet (what a write that then fails did not deliver is still counted).
    let batch = std::mem::take(batch);
    if let Some(m) = &cx.meter {
        let (frames, bytes) = Outgoing::tally(&out);
        m.wrote(
            frames,
            bytes,
            batch.events,
            batch.oldest.map(|t| t.elapsed()),
        );
    }
    let mut keep_open = true;
    let write = async {
        for o in out {
            match o {
                Outgoing::Text(t) => ws.feed(Message::text(t)).await?,
                Outgoing::Shared(t) => ws.feed(Message::Text(shared_text(t))).await?,
                Outgoing::Close { code, reason } => {
                    ws.feed(close_message(code, &reason)).await?;
                    keep_open = false;
                    break;
                }
            }
        }
        ws.flush().await
    };
    let written = matches!(
        tokio::time::timeout(cfg.write_timeout, write).await,
        Ok(Ok(()))
    );
    written && keep_open
}
