//! One task per socket: the session, the client's events in order, the hub's events.
//!
//! This is the Socket.IO twin of the gateway's WebSocket connection loop. The task
//! waits on four things — the kill switch (slow consumer, shutdown), the socket
//! closing, the next client event from the inbox, the next hub event for the user
//! (paced: see `run`) — and handles one at a time, so a session never needs a lock
//! and events of one socket never overtake each other.
//!
//! Emitting never waits: socketioxide's per-socket buffer is bounded, and a socket
//! whose buffer is full is treated like a full hub queue — the client is told
//! `slow_consumer` if there is room, the socket is disconnected, and it is
//! unregistered from the hub so nothing more piles up for it.

use crate::error::WireError;
use crate::inbox::Request;
use async_trait::async_trait;
use chat_core::hub::{EVENT_FLUSH_INTERVAL, SLOW_CONSUMER};
use chat_core::{ChatService, ConnCtx, Origin, Principal, Published};
use serde::Serialize;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The per-socket state machine of a dialect.
#[async_trait]
pub trait SioSession: Send + 'static {
    /// A client event (any name; unknown ones are the session's to refuse).
    async fn on_request(&mut self, cx: &mut SioCtx, req: Request);
    /// An event the hub queued for this socket's user.
    async fn on_push(&mut self, cx: &mut SioCtx, event: &Arc<Published>);
    /// The socket is closing; called once, before the hub registration is dropped.
    async fn on_close(&mut self, _cx: &mut SioCtx) {}
}

/// What a session works with: the connection's domain context ([`ConnCtx`]: the
/// service, the caller once known, the hub subscription, the kill switch) and the
/// socket to emit on.
pub struct SioCtx {
    pub conn: ConnCtx,
    socket: Option<SocketRef>,
    dialect: &'static str,
}

impl SioCtx {
    pub fn new(
        service: Arc<ChatService>,
        socket: Option<SocketRef>,
        dialect: &'static str,
    ) -> Self {
        SioCtx {
            conn: ConnCtx::new(service),
            socket,
            dialect,
        }
    }

    pub fn service(&self) -> Arc<ChatService> {
        self.conn.service.clone()
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.conn.principal.as_ref()
    }

    /// Register with the hub as `principal` (presence, pushes). Signing in again as
    /// the same user changes nothing.
    pub async fn sign_in(&mut self, principal: Principal) {
        self.conn.sign_in(principal).await;
    }

    /// The origin of this socket's commands, so its own hub echo can be recognized.
    pub fn origin(&self) -> Option<Origin> {
        Some(self.conn.origin(self.dialect, None))
    }

    /// Emit an event with one argument. False when it could not be queued.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> bool {
        let Some(socket) = &self.socket else {
            return false;
        };
        self.check(event, socket.emit(event, data))
    }

    /// Emit an event whose argument is already-serialized JSON (a rendering shared by
    /// every recipient, see `Published::shared`): written as is, not parsed again.
    pub fn emit_raw(&self, event: &str, json: &serde_json::value::RawValue) -> bool {
        self.emit(event, json)
    }

    /// Answer the request's ack, if the client asked for one. False when there was
    /// no ack to answer or it could not be queued.
    pub fn ack<T: Serialize + ?Sized>(&self, req: &mut Request, data: &T) -> bool {
        match req.take_ack() {
            Some(ack) if req.wants_ack => self.check(&req.event, ack.send(data)),
            _ => false,
        }
    }

    /// Disconnect the socket from its namespace (the client does not reconnect).
    pub fn disconnect(&self) {
        if let Some(socket) = &self.socket {
            if let Err(e) = socket.clone().disconnect() {
                // The buffer is full: the engine's next heartbeat cannot be queued
                // either, and closes the connection then.
                tracing::debug!(dialect = self.dialect, error = ?e, "disconnect not queued");
            }
        }
    }

    fn check(&self, event: &str, r: Result<(), SendError>) -> bool {
        match r {
            Ok(()) => true,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                tracing::info!(dialect = self.dialect, conn = %self.conn.conn, event, "socket buffer full; closing as a slow consumer");
                self.conn.kill.kill(SLOW_CONSUMER);
                false
            }
            Err(SendError::Socket(_)) => false,
            Err(SendError::Serialize(e)) => {
                tracing::error!(dialect = self.dialect, event, error = %e, "could not encode an event");
                false
            }
        }
    }
}

/// Most queued hub events pushed in one go (the rest follow on the next turn).
const COALESCE_EVENTS: usize = 256;

/// Drive one socket until it closes or is killed.
///
/// Hub events are paced as in the gateway's WebSocket loop (see
/// [`EVENT_FLUSH_INTERVAL`]): a socket that pushed less than that long ago leaves newer
/// events in its bounded hub queue until the interval is over, then emits all of them
/// in one go, so socketioxide's writer task wakes once and writes them with one flush
/// instead of one wake-up and one `send` per event. Client requests are answered at
/// once.
pub(crate) async fn run<S: SioSession>(
    mut session: S,
    mut cx: SioCtx,
    mut inbox: mpsc::Receiver<Box<Request>>,
    closed: CancellationToken,
    principal: Option<Box<Principal>>,
) {
    if let Some(p) = principal {
        cx.sign_in(*p).await;
    }
    let kill = cx.conn.kill.clone();
    // Created once rather than per turn (each `cancelled()` future registers with the
    // token's waiter list when polled).
    let killed = kill.killed();
    let gone = closed.cancelled();
    let pace = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(killed, gone, pace);
    let mut pacing = false;
    let mut next_flush = Instant::now();
    // An event taken from the queue while pacing, pushed when the timer fires.
    let mut held: Option<Arc<Published>> = None;
    loop {
        let next_event = async {
            match cx.conn.subscription.as_mut() {
                Some(sub) if !pacing => sub.rx.recv().await,
                _ => std::future::pending().await,
            }
        };
        let mut push_now = false;
        tokio::select! {
            biased;
            _ = &mut killed => {
                let reason = kill.reason().unwrap_or_else(|| "closed by the server".into());
                // On shutdown socketioxide closes the transport itself, which a client
                // takes as a reason to reconnect; a namespace disconnect would not be.
                if !reason.starts_with("server") {
                    cx.emit("error", &WireError::new("slow_consumer", "", reason));
                    cx.disconnect();
                }
                break;
            }
            _ = &mut gone => break,
            req = inbox.recv() => match req {
                Some(req) => session.on_request(&mut cx, *req).await,
                None => break,
            },
            _ = &mut pace, if pacing => {
                pacing = false;
                push_now = true;
            }
            Some(event) = next_event => {
                held = Some(event);
                if Instant::now() >= next_flush {
                    push_now = true;
                } else {
                    pacing = true;
                    pace.as_mut().reset(next_flush);
                }
            }
        }
        if push_now {
            if let Some(event) = held.take() {
                session.on_push(&mut cx, &event).await;
            }
            for _ in 0..COALESCE_EVENTS {
                let Some(sub) = cx.conn.subscription.as_mut() else {
                    break;
                };
                let Ok(event) = sub.rx.try_recv() else { break };
                session.on_push(&mut cx, &event).await;
            }
            next_flush = Instant::now() + EVENT_FLUSH_INTERVAL;
        }
    }
    session.on_close(&mut cx).await;
    cx.conn.sign_out().await;
}
