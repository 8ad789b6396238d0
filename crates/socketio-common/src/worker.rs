//! One task per socket: the session, the client's events in order, the hub's events.
//!
//! This is the Socket.IO twin of the gateway's WebSocket connection loop. The task
//! waits on four things — the kill switch (slow consumer, shutdown), the socket
//! closing, the next client event from the inbox, the next hub event for the user
//! (paced: see `run`) — and handles one at a time, so a session never needs a lock
//! and events of one socket never overtake each other.
//!
//! A session does not write to the socket: what it says goes to its context's
//! [`Outbox`], and the task flushes the outbox after each step, in order. Flushing
//! never waits: socketioxide's per-socket buffer is bounded, and a socket whose buffer
//! is full is treated like a full hub queue — the kill switch fires, the next turn
//! tells the client `slow_consumer` if there is room and disconnects it, and it is
//! unregistered from the hub so nothing more piles up for it.

use crate::error::WireError;
use crate::inbox::Request;
use crate::outbox::{Item, Json, Outbox, Sent};
use async_trait::async_trait;
use chat_core::hub::CloseReason;
use chat_core::meter::CloseKind;
use chat_core::{ChatService, ConnCtx, Origin, Principal, Published};
use serde::Serialize;
use serde_json::value::RawValue;
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
/// service, the caller once known, the hub subscription, the kill switch), the outbox
/// of what it said, and the socket the outbox is flushed to (none in tests).
///
/// Whatever is still in the outbox when the context is dropped is flushed then, so a
/// context used only to say something before disconnecting needs no explicit flush.
pub struct SioCtx {
    pub conn: ConnCtx,
    socket: Option<SocketRef>,
    dialect: &'static str,
    outbox: Outbox,
}

impl SioCtx {
    pub fn new(
        service: Arc<ChatService>,
        socket: Option<SocketRef>,
        dialect: &'static str,
    ) -> Self {
        let mut conn = ConnCtx::new(service);
        // Real sockets are counted; a context driven without one (tests) is not.
        if socket.is_some() {
            conn.meter = Some(conn.service.meter().dialect(dialect));
        }
        SioCtx {
            conn,
            socket,
            dialect,
            outbox: Outbox::default(),
        }
    }

    pub fn service(&self) -> Arc<ChatService> {
        self.conn.service.clone()
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.conn.principal.as_ref()
    }

    /// The caller, for a request that needs one; `unauthenticated` for `event` when
    /// the socket is not signed in.
    pub fn caller(&self, event: &str) -> Result<Principal, WireError> {
        self.principal()
            .cloned()
            .ok_or_else(|| WireError::new("unauthenticated", event, "not signed in"))
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

    /// Queue an event with one argument. False when the argument has no JSON form.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> bool {
        match self.encode(event, data) {
            Some(data) => {
                let event = event.to_string();
                self.outbox.push(Sent::Emit { event, data }, None);
                true
            }
            None => false,
        }
    }

    /// Queue `name` with the rendering of a hub event that every recipient on this
    /// dialect shares (see `Published::shared`; `slot` is the dialect's): the first
    /// recipient renders and encodes it, the others reuse that text. Nothing is
    /// queued when `render` has nothing for this event. False when nothing was queued.
    pub fn emit_shared<T: Serialize>(
        &self,
        name: &str,
        event: &Published,
        slot: chat_core::RenderSlot,
        render: impl FnOnce() -> Option<T>,
    ) -> bool {
        let shared = event.shared(slot, || {
            render()
                .and_then(|v| serde_json::value::to_raw_value(&v).ok())
                .map(Arc::<RawValue>::from)
        });
        let Some(raw) = shared.and_then(|s| (*s).clone()) else {
            return false;
        };
        self.outbox.push(
            Sent::Emit {
                event: name.to_string(),
                data: Json::Shared(raw),
            },
            None,
        );
        true
    }

    /// Queue the answer to the request's ack, if the client asked for one. False when
    /// there was no ack to answer (none asked, or answered already) or the answer has
    /// no JSON form.
    pub fn ack<T: Serialize + ?Sized>(&self, req: &mut Request, data: &T) -> bool {
        if !req.answer() {
            return false;
        }
        let Some(data) = self.encode(&req.event, data) else {
            return false;
        };
        let event = req.event.clone();
        self.outbox.push(Sent::Ack { event, data }, req.take_ack());
        true
    }

    /// Count the request `event` (one of the dialect's `known` events, else counted
    /// as `unknown`) with its outcome, for the operator's command counters.
    pub fn count(&self, event: &str, known: &[&'static str], reply: &crate::error::Reply) {
        let name = known
            .iter()
            .find(|k| **k == event)
            .copied()
            .unwrap_or("unknown");
        let code = match reply {
            Ok(_) => "ok",
            Err(e) => e.error,
        };
        self.conn.count_outcome(name, code);
    }

    /// Queue a disconnect from the namespace (the client does not reconnect).
    pub fn disconnect(&self) {
        self.outbox.push(Sent::Disconnect, None);
    }

    /// The next hub event already queued for this socket's user, without waiting.
    pub fn next_queued(&mut self) -> Option<Arc<Published>> {
        self.conn.subscription.as_mut()?.rx.try_recv().ok()
    }

    /// What was said since the last call, oldest first; for a context without a
    /// socket (tests), where nothing is flushed.
    pub fn take_outbox(&self) -> Vec<Sent> {
        self.outbox.take()
    }

    /// Hand what was said to the socket, oldest first, without waiting. Without a
    /// socket the outbox keeps it (see [`SioCtx::take_outbox`]).
    pub fn flush(&self) {
        self.flush_batch(0, None);
    }

    /// [`SioCtx::flush`], counting `events` hub events (the oldest published at
    /// `oldest`) as delivered with what it writes.
    fn flush_batch(&self, events: u64, oldest: Option<std::time::Instant>) {
        let Some(socket) = &self.socket else {
            return;
        };
        let items = self.outbox.drain();
        // Counted before the items are handed over, so a client never sees an event
        // the counters do not show yet.
        if let Some(m) = &self.conn.meter {
            let (mut frames, mut bytes) = (0u64, 0u64);
            for item in &items {
                let data = match &item.sent {
                    Sent::Emit { data, .. } => data,
                    Sent::Ack { data, .. } if item.ack.is_some() => data,
                    _ => continue,
                };
                frames += 1;
                bytes += data.raw().get().len() as u64;
            }
            m.wrote(frames, bytes, events, oldest.map(|t| t.elapsed()));
        }
        for Item { sent, ack } in items {
            match sent {
                Sent::Emit { event, data } => {
                    self.check(&event, socket.emit(&event, data.raw()));
                }
                Sent::Ack { event, data } => {
                    if let Some(ack) = ack {
                        self.check(&event, ack.send(data.raw()));
                    }
                }
                Sent::Disconnect => {
                    if let Err(e) = socket.clone().disconnect() {
                        // The buffer is full: the engine's next heartbeat cannot be
                        // queued either, and closes the connection then.
                        tracing::debug!(dialect = self.dialect, error = ?e, "disconnect not queued");
                    }
                }
            }
        }
    }

    /// Push one hub event through the session and flush what it said; an event the
    /// session rendered (rather than dropped) counts as delivered.
    async fn push<S: SioSession>(&mut self, session: &mut S, event: &Arc<Published>) {
        session.on_push(self, event).await;
        let rendered = !self.outbox.is_empty();
        self.flush_batch(u64::from(rendered), Some(event.published_at()));
    }

    fn encode<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Option<Json> {
        match Json::encode(data) {
            Ok(json) => Some(json),
            Err(e) => {
                tracing::error!(dialect = self.dialect, event, error = %e, "could not encode an event");
                None
            }
        }
    }

    fn check(&self, event: &str, r: Result<(), SendError>) {
        match r {
            Ok(()) => {}
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                tracing::info!(dialect = self.dialect, conn = %self.conn.conn, event, "socket buffer full; closing as a slow consumer");
                self.conn.kill.kill(CloseReason::SlowConsumer);
            }
            Err(SendError::Socket(_)) => {}
            Err(SendError::Serialize(e)) => {
                tracing::error!(dialect = self.dialect, event, error = %e, "could not encode an event");
            }
        }
    }
}

impl Drop for SioCtx {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Most queued hub events pushed in one go (the rest follow on the next turn).
const COALESCE_EVENTS: usize = 256;

/// Drive one socket until it closes or is killed.
///
/// Hub events are paced as in the gateway's WebSocket loop (see
/// [`chat_core::hub::EVENT_FLUSH_INTERVAL`]): a socket that pushed less than that long ago leaves newer
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
    // Counted open until this task ends, whichever way it ends.
    let mut tally = cx.conn.meter.as_ref().map(|m| m.open_connection());
    let kill = cx.conn.kill.clone();
    // Created once rather than per turn (each `cancelled()` future registers with the
    // token's waiter list when polled).
    let killed = kill.killed();
    let gone = closed.cancelled();
    let pace = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(killed, gone, pace);
    let mut pacing = false;
    let mut pacer = chat_core::session::Pacer::default();
    // An event taken from the queue while pacing, pushed when the timer fires.
    let mut held: Option<Arc<Published>> = None;
    loop {
        let next_event = chat_core::session::next_event(cx.conn.subscription.as_mut(), pacing);
        let mut push_now = false;
        tokio::select! {
            biased;
            _ = &mut killed => {
                // On shutdown socketioxide closes the transport itself, which a client
                // takes as a reason to reconnect; a namespace disconnect would not be.
                let reason = kill.reason();
                if let Some(t) = &mut tally {
                    t.closing(reason.map_or(CloseKind::Protocol, CloseKind::from));
                }
                if reason != Some(CloseReason::Shutdown) {
                    let text = reason.map_or("closed by the server", CloseReason::text);
                    cx.emit("error", &WireError::new("slow_consumer", "", text));
                    cx.disconnect();
                    cx.flush();
                }
                break;
            }
            _ = &mut gone => break,
            req = inbox.recv() => match req {
                Some(req) => {
                    if let Some(m) = &cx.conn.meter {
                        m.read(serde_json::to_vec(&req.payload).map_or(0, |v| v.len()) + req.event.len());
                    }
                    session.on_request(&mut cx, *req).await;
                    cx.flush();
                }
                None => break,
            },
            _ = &mut pace, if pacing => {
                pacing = false;
                push_now = true;
            }
            Some(event) = next_event => {
                held = Some(event);
                if pacer.due(Instant::now()) {
                    push_now = true;
                } else {
                    pacing = true;
                    pacer.arm(pace.as_mut());
                }
            }
        }
        if push_now {
            if let Some(event) = held.take() {
                cx.push(&mut session, &event).await;
            }
            for _ in 0..COALESCE_EVENTS {
                let Some(event) = cx.next_queued() else { break };
                cx.push(&mut session, &event).await;
            }
            pacer.pushed(Instant::now());
        }
    }
    session.on_close(&mut cx).await;
    cx.conn.sign_out().await;
}
