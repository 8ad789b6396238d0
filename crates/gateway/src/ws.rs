//! The connection loop shared by every plain-WebSocket dialect.
//!
//! One task per connection owns the socket and the session. It waits on four things:
//! a frame from the client, an event from the hub queue, the kill switch (slow
//! consumer) and server shutdown. Writes happen only here, never under a shared lock,
//! and each flush has a deadline so a client that stops reading cannot pin the task.
//! Events that are already queued are rendered together and leave in one flush, so
//! a busy connection costs one system call per batch rather than one per frame.

use bytes::Bytes;
use chat_core::{ConnCtx, Outgoing, Session};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
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
/// write holds up, and the write buffer it grows).
const COALESCE_EVENTS: usize = 64;

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
pub async fn run_connection<S>(
    mut ws: WebSocketStream<S>,
    mut session: Box<dyn Session>,
    mut cx: ConnCtx,
    shutdown: CancellationToken,
    cfg: LoopConfig,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    session.on_open(&mut cx).await;
    let mut open = flush(&mut ws, &mut cx, &cfg).await;
    let mut ping = tokio::time::interval(cfg.ping_interval);
    ping.tick().await;
    let kill = cx.kill.clone();
    while open {
        let next_event = async {
            match cx.subscription.as_mut() {
                Some(sub) => sub.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = kill.killed() => {
                let reason = kill.reason().unwrap_or_else(|| "closed by the server".into());
                let code = if reason.starts_with("server") { 1001 } else { CLOSE_SLOW_CONSUMER };
                let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(code, &reason))).await;
                break;
            }
            _ = shutdown.cancelled() => {
                let _ = tokio::time::timeout(cfg.write_timeout, ws.send(close_message(1001, "server shutting down"))).await;
                break;
            }
            frame = ws.next() => {
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
            Some(event) = next_event => {
                session.on_event(&mut cx, &event).await;
            }
            _ = ping.tick() => {
                if tokio::time::timeout(cfg.write_timeout, ws.send(Message::Ping(Bytes::new()))).await.map_or(true, |r| r.is_err()) {
                    break;
                }
            }
        }
        // Events already waiting go out with what this turn produced, in one write: in
        // a busy room a connection gets many events per wake-up, and a system call per
        // frame was the largest cost of fan-out. Doing it after client frames too keeps
        // a connection that sends a lot (frames win the `biased` select) from starving
        // its own queue into a slow-consumer close.
        for _ in 0..COALESCE_EVENTS {
            let Some(sub) = cx.subscription.as_mut() else {
                break;
            };
            let Ok(event) = sub.rx.try_recv() else { break };
            session.on_event(&mut cx, &event).await;
        }
        open = flush(&mut ws, &mut cx, &cfg).await;
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
