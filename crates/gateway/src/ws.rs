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
use chat_core::hub::{KillSwitch, EVENT_FLUSH_INTERVAL};
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
    /// Text frames above this many bytes are refused by the dialect (connection stays).
    pub max_frame_bytes: usize,
    pub ping_interval: Duration,
    pub write_timeout: Duration,
}

/// Most queued events rendered before one flush (bounds the batch a slow socket
/// write holds up, and the write buffer it grows). With events paced at
/// [`EVENT_FLUSH_INTERVAL`] a busy connection has a few dozen waiting per flush.
const COALESCE_EVENTS: usize = 256;

/// Application close codes (RFC 6455 4000-4999 are free for applications; 1008 is
/// "policy violation", used for a slow consumer as the closest standard code).
const CLOSE_SLOW_CONSUMER: u16 = 1008;

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
/// Hub events are paced: a connection that flushed less than [`EVENT_FLUSH_INTERVAL`]
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
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // One token to wait on for both the kill switch and server shutdown (set before
    // the session can sign in, which hands the switch to the hub).
    cx.kill = Arc::new(KillSwitch::linked_to(&shutdown));
    session.on_open(&mut cx).await;
    let mut open = flush(&mut ws, &mut cx, &cfg).await;
    let mut ping = tokio::time::interval(cfg.ping_interval);
    ping.tick().await;
    let kill = cx.kill.clone();
    // Created once: a fresh `cancelled()` future per turn would register with (and
    // leave) the token's waiter list every time.
    let killed = kill.killed();
    let pace = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(killed, pace);
    // Armed: rendered events wait for the pace timer rather than leaving now.
    let mut pacing = false;
    let mut next_flush = Instant::now();
    while open {
        let next_event = async {
            match cx.subscription.as_mut() {
                Some(sub) if !pacing => sub.rx.recv().await,
                _ => std::future::pending().await,
            }
        };
        // Whether this turn produced something the client is waiting for.
        let mut urgent = false;
        tokio::select! {
            biased;
            _ = &mut killed => {
                let (code, reason) = match kill.reason() {
                    Some(r) if r.starts_with("server") => (1001, r),
                    Some(r) => (CLOSE_SLOW_CONSUMER, r),
                    None if shutdown.is_cancelled() => (1001, "server shutting down".to_string()),
                    None => (CLOSE_SLOW_CONSUMER, "closed by the server".to_string()),
                };
                let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(code, &reason))).await;
                break;
            }
            // The pace timer and queued events come before the socket: polling the
            // socket costs a little even when it has nothing (tungstenite prepares its
            // read buffer), and pacing already keeps events from starving client
            // frames — after an event is rendered the next ones wait for the timer.
            _ = &mut pace, if pacing => pacing = false,
            Some(event) = next_event => {
                session.on_event(&mut cx, &event).await;
            }
            frame = ws.next() => {
                urgent = true;
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if text.len() > cfg.max_frame_bytes {
                            session.on_oversize(&mut cx, text.len()).await;
                        } else {
                            session.on_text(&mut cx, text.as_str()).await;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if bytes.len() > cfg.max_frame_bytes {
                            session.on_oversize(&mut cx, bytes.len()).await;
                        } else {
                            session.on_binary(&mut cx, &bytes).await;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        tracing::debug!(conn = %cx.conn, error = %e, "websocket read failed");
                        if let tokio_tungstenite::tungstenite::Error::Capacity(_) = e {
                            let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(1009, "frame too large"))).await;
                        }
                        break;
                    }
                }
            }
            _ = ping.tick() => {
                if tokio::time::timeout(cfg.write_timeout, ws.send(Message::Ping(Bytes::new()))).await.map_or(true, |r| r.is_err()) {
                    break;
                }
            }
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
            session.on_event(&mut cx, &event).await;
        }
        if !cx.has_outgoing() {
            continue;
        }
        let now = Instant::now();
        if urgent || now >= next_flush || cx.closing() {
            open = flush(&mut ws, &mut cx, &cfg).await;
            next_flush = now + EVENT_FLUSH_INTERVAL;
            pacing = false;
        } else {
            pace.as_mut().reset(next_flush);
            pacing = true;
        }
    }
    session.on_close(&mut cx).await;
    cx.sign_out().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
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
async fn flush<S>(ws: &mut WebSocketStream<S>, cx: &mut ConnCtx, cfg: &LoopConfig) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let out = cx.take_outgoing();
    if out.is_empty() {
        return true;
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
    match tokio::time::timeout(cfg.write_timeout, write).await {
        Ok(Ok(())) => keep_open,
        _ => false,
    }
}
