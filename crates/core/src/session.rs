//! The contract between the gateway's connection loop and a plain-WebSocket dialect.
//!
//! A dialect is a translator, not a server: the gateway owns the socket, the outbound
//! queue, heartbeats and shutdown, written once for every dialect. It hands the dialect
//! each text frame and each event through a [`ConnCtx`], and the dialect answers by
//! pushing frames into the context. That keeps dialects testable without sockets.

use crate::auth::{Principal, TokenError};
use crate::event::{Origin, Published};
use crate::hub::{KillSwitch, Subscription};
use crate::ids::ConnId;
use crate::service::ChatService;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// What the gateway learned from the HTTP upgrade request.
#[derive(Clone, Debug, Default)]
pub struct Handshake {
    pub path: String,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    /// The principal of a token found in a handshake carrier (`Authorization`,
    /// `?token=`, `Sec-WebSocket-Protocol`), when one was given and valid.
    pub principal: Option<Principal>,
    /// Why a handshake token was refused, when one was given.
    pub token_error: Option<TokenError>,
    /// Whether the `Origin` header passed the configured allow-list (true when the
    /// header is absent and no list is configured).
    pub origin_allowed: bool,
    /// Whether the `Origin` header was present.
    pub origin_present: bool,
}

/// An HTTP refusal of the upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Refusal {
            status: 403,
            reason: reason.into(),
        }
    }
}

/// A frame the connection loop should write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    /// A rendering shared with other recipients.
    Shared(Arc<str>),
    Close {
        code: u16,
        reason: String,
    },
}

impl Outgoing {
    /// The data frames of `out` and their bytes, for the counters (a close frame is
    /// not counted).
    pub fn tally(out: &[Outgoing]) -> (u64, u64) {
        out.iter().fold((0, 0), |(n, b), o| match o {
            Outgoing::Text(t) => (n + 1, b + t.len() as u64),
            Outgoing::Shared(t) => (n + 1, b + t.len() as u64),
            Outgoing::Close { .. } => (n, b),
        })
    }
}

/// A plain-WebSocket dialect mounted on one or more paths.
pub trait WsDialect: Send + Sync + 'static {
    /// The CLI name (the name of its descriptor).
    fn name(&self) -> &'static str;
    /// Accept or refuse an upgrade; on accept, the per-connection session.
    fn accept(&self, hs: &Handshake) -> Result<Box<dyn Session>, Refusal>;
    /// Whether the dialect's frames carry file bytes (inline uploads), so a
    /// signed-in client may send frames up to the upload limit rather than the
    /// ordinary frame limit.
    fn carries_files(&self) -> bool {
        false
    }
    /// The subprotocol to answer with, given the client's offer.
    fn subprotocol(&self, offered: &[&str]) -> Option<&'static str> {
        offered
            .iter()
            .any(|p| p.eq_ignore_ascii_case("bearer"))
            .then_some("Bearer")
    }
}

/// The state machine of one connection of a dialect.
#[async_trait]
pub trait Session: Send {
    /// The upgrade completed; called once before any frame. A dialect whose handshake
    /// carried a valid token signs the connection in here.
    async fn on_open(&mut self, cx: &mut ConnCtx);
    /// A text frame arrived.
    async fn on_text(&mut self, cx: &mut ConnCtx, text: &str);
    /// A frame larger than the configured limit arrived (its content is dropped).
    async fn on_oversize(&mut self, cx: &mut ConnCtx, size: usize);
    /// A binary frame arrived.
    async fn on_binary(&mut self, cx: &mut ConnCtx, bytes: &[u8]);
    /// An event for this connection's user arrived from the hub.
    async fn on_event(&mut self, cx: &mut ConnCtx, event: &Arc<Published>);
    /// The connection is closing (client left, server shutdown, slow consumer).
    async fn on_close(&mut self, _cx: &mut ConnCtx) {}
}

/// The next hub event of a connection's subscription, for a connection loop's
/// `select!`: pending for ever while `hold` is set (events wait in the bounded queue
/// for the pace timer) or before the connection signed in.
pub async fn next_event(sub: Option<&mut Subscription>, hold: bool) -> Option<Arc<Published>> {
    match sub {
        Some(sub) if !hold => sub.rx.recv().await,
        _ => std::future::pending().await,
    }
}

/// Most commands of one connection admitted while earlier ones are still committing
/// (see [`ConnCtx::defer`]); a connection with this many in flight is not read until
/// the oldest is answered.
pub const PIPELINE_DEPTH: usize = 64;

/// The reply of a pipelined command: its frames, once its command completed.
pub type Reply = Pin<Box<dyn Future<Output = Vec<Outgoing>> + Send>>;

/// The answers of one connection that must wait for a pipelined command, in the order
/// the commands arrived.
///
/// Invariant: frames leave a connection in the order of the commands and events that
/// produced them, even while commands commit concurrently. Mechanism: a command that
/// may be pipelined is admitted (placed in its room's commit order, which the store
/// keeps) and its completion queued here as a [`Reply`]; a frame produced while a
/// reply is queued (an event, the answer to a later command) is queued behind it.
/// Only the oldest reply is polled: the commits themselves run on the store's writers,
/// so the replies behind it are usually complete by the time they reach the front, and
/// what a reply does after its commit (publishing the event) happens in command order
/// too. Consequence: pipelining changes when a client hears, never what or in which
/// order.
#[derive(Default)]
struct Pipeline {
    slots: VecDeque<Slot>,
    replies: usize,
    /// Frames in `Frames` slots.
    frames: usize,
}

enum Slot {
    Reply(Exclusive<Reply>),
    Frames(Vec<Outgoing>),
}

/// A value reachable only through `&mut`, so that sharing `&Exclusive` between
/// threads shares nothing: [`ConnCtx`] is held by reference across awaits, so it must
/// be `Sync`, and a future need not be (as `std::sync::Exclusive`, not yet stable).
struct Exclusive<T>(T);

// SAFETY: `Exclusive` has no method taking `&self` and its field is private, so a
// shared reference gives no access to the value; moving it needs `T: Send`.
unsafe impl<T: Send> Sync for Exclusive<T> {}

impl Pipeline {
    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Queue `frame` behind the replies waiting.
    fn push(&mut self, frame: Outgoing) {
        self.frames += 1;
        match self.slots.back_mut() {
            Some(Slot::Frames(frames)) => frames.push(frame),
            _ => self.slots.push_back(Slot::Frames(vec![frame])),
        }
    }

    /// The frames that may leave now: those of the oldest replies that completed and
    /// of everything queued behind them up to the first reply still pending.
    fn poll_frames(&mut self, task: &mut Context<'_>) -> Poll<Vec<Outgoing>> {
        let mut out = Vec::new();
        while let Some(front) = self.slots.front_mut() {
            match front {
                Slot::Frames(frames) => {
                    self.frames -= frames.len();
                    out.append(frames)
                }
                Slot::Reply(Exclusive(reply)) => match reply.as_mut().poll(task) {
                    Poll::Ready(frames) => {
                        out.extend(frames);
                        self.replies -= 1;
                    }
                    Poll::Pending => break,
                },
            }
            self.slots.pop_front();
        }
        if out.is_empty() {
            // Either a reply is pending (its waker is registered) or nothing is
            // queued, when callers do not wait (see `ConnCtx::in_flight`).
            Poll::Pending
        } else {
            Poll::Ready(out)
        }
    }
}

/// Per-connection context: the service, the caller once known, and the frames to send.
pub struct ConnCtx {
    pub service: Arc<ChatService>,
    pub conn: ConnId,
    pub principal: Option<Principal>,
    pub subscription: Option<Subscription>,
    pub kill: Arc<KillSwitch>,
    /// The dialect's counters, when the connection is metered (the gateway's are).
    pub meter: Option<Arc<crate::meter::DialectMeter>>,
    out: Vec<Outgoing>,
    pipeline: Pipeline,
}

impl ConnCtx {
    pub fn new(service: Arc<ChatService>) -> Self {
        ConnCtx {
            conn: service.new_conn_id(),
            service,
            principal: None,
            subscription: None,
            kill: Arc::new(KillSwitch::default()),
            meter: None,
            out: Vec::new(),
            pipeline: Pipeline::default(),
        }
    }

    /// Count one command of this connection under `name` (the dialect's own name for
    /// it) with its outcome; a no-op when the connection is not metered.
    pub fn count_command<T>(&self, name: &'static str, result: &crate::Result<T>) {
        if let Some(m) = &self.meter {
            m.command_result(name, result);
        }
    }

    /// [`ConnCtx::count_command`] with the outcome already a code: `ok` or a
    /// [`crate::ChatError::code`].
    pub fn count_outcome(&self, name: &'static str, code: &'static str) {
        if let Some(m) = &self.meter {
            m.command(name, code);
        }
    }

    /// Frames queued and not yet taken (behind pipelined replies included).
    pub fn queued(&self) -> usize {
        self.out.len() + self.pipeline.frames
    }

    /// Queue a frame: to be written next, or behind the pipelined replies waiting.
    fn push(&mut self, frame: Outgoing) {
        if self.pipeline.is_empty() {
            self.out.push(frame);
        } else {
            self.pipeline.push(frame);
        }
    }

    /// Queue a text frame.
    pub fn send(&mut self, text: String) {
        self.push(Outgoing::Text(text));
    }

    /// Queue a shared text frame.
    pub fn send_shared(&mut self, text: Arc<str>) {
        self.push(Outgoing::Shared(text));
    }

    /// Queue a close frame; the loop closes after writing what is queued before it.
    pub fn close(&mut self, code: u16, reason: impl Into<String>) {
        self.push(Outgoing::Close {
            code,
            reason: reason.into(),
        });
    }

    /// Answer a command later, without holding up the commands behind it: `reply`
    /// completes the command (one already admitted in its commit order, e.g. by
    /// [`ChatService::queue_message`]) and yields its frames, which leave after every
    /// frame queued before this call and before every frame queued after it. The
    /// connection loop stops reading the client while [`PIPELINE_DEPTH`] replies wait.
    /// A command that must see the effects of earlier ones calls [`ConnCtx::settle`]
    /// first.
    pub fn defer(&mut self, reply: impl Future<Output = Vec<Outgoing>> + Send + 'static) {
        self.pipeline
            .slots
            .push_back(Slot::Reply(Exclusive(Box::pin(reply))));
        self.pipeline.replies += 1;
    }

    /// Replies deferred and not yet complete.
    pub fn in_flight(&self) -> usize {
        self.pipeline.replies
    }

    /// Wait until every deferred reply completed, its frames queued in order.
    pub async fn settle(&mut self) {
        while !self.pipeline.is_empty() {
            let frames = std::future::poll_fn(|task| self.pipeline.poll_frames(task)).await;
            self.out.extend(frames);
        }
    }

    /// What a connection loop waits on besides its socket: the next hub event (as
    /// [`next_event`]) and the frames of deferred replies as they complete (to hand to
    /// [`ConnCtx::queue_ready`]; pending for ever when nothing is deferred).
    pub fn sources(
        &mut self,
        hold: bool,
    ) -> (
        impl Future<Output = Option<Arc<Published>>> + '_,
        impl Future<Output = Vec<Outgoing>> + '_,
    ) {
        let pipeline = &mut self.pipeline;
        (
            next_event(self.subscription.as_mut(), hold),
            std::future::poll_fn(move |task| pipeline.poll_frames(task)),
        )
    }

    /// Queue frames that [`ConnCtx::sources`] released, to be written next.
    pub fn queue_ready(&mut self, frames: Vec<Outgoing>) {
        self.out.extend(frames);
    }

    /// Whether frames are waiting to be written.
    pub fn has_outgoing(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether a close frame is waiting (so what is queued must go out now).
    pub fn closing(&self) -> bool {
        self.out.iter().any(|o| matches!(o, Outgoing::Close { .. }))
    }

    /// Frames queued since the last call.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.out)
    }

    /// Authenticate the connection as `principal` and subscribe it to the user's
    /// events. A second sign-in as another user is refused by the caller's dialect;
    /// signing in again as the same user keeps the subscription.
    pub async fn sign_in(&mut self, principal: Principal) {
        if self
            .subscription
            .as_ref()
            .is_some_and(|s| s.user == principal.id())
        {
            self.principal = Some(principal);
            return;
        }
        if let Some(mut old) = self.subscription.take() {
            self.service.disconnect(&mut old).await;
        }
        let sub = self
            .service
            .connect(&principal, self.conn, self.kill.clone())
            .await;
        self.subscription = Some(sub);
        self.principal = Some(principal);
    }

    /// Unsubscribe (connection closing).
    pub async fn sign_out(&mut self) {
        if let Some(mut sub) = self.subscription.take() {
            self.service.disconnect(&mut sub).await;
        }
    }

    /// Also receive the events of `room`, which the caller may view without being a
    /// member (moderators); `None` stops. Does nothing before sign-in.
    pub async fn watch_room(&mut self, room: Option<crate::RoomId>) -> crate::Result<()> {
        match (&self.principal, &self.subscription) {
            (Some(p), Some(sub)) => self.service.watch_room(p, sub, room).await,
            _ => Ok(()),
        }
    }

    /// An origin for commands from this connection.
    pub fn origin(&self, dialect: &'static str, tag: Option<Arc<str>>) -> Origin {
        Origin {
            conn: self.conn,
            dialect,
            tag,
        }
    }
}

/// When a connection may next push hub events: the pacing both connection loops (the
/// gateway's WebSocket loop and the Socket.IO worker) share.
///
/// A connection that pushed less than [`crate::hub::EVENT_FLUSH_INTERVAL`] ago leaves
/// newer events in its bounded hub queue until the interval is over, then sends all of
/// them in one write, so a busy room costs one wake-up and one flush per interval
/// rather than one per event. Frames a client is waiting for (answers) are not paced.
#[derive(Debug)]
pub struct Pacer {
    next: tokio::time::Instant,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            next: tokio::time::Instant::now(),
        }
    }
}

impl Pacer {
    /// Whether events may leave at `now`.
    pub fn due(&self, now: tokio::time::Instant) -> bool {
        now >= self.next
    }

    /// Events left at `now`: the next may leave one interval later.
    pub fn pushed(&mut self, now: tokio::time::Instant) {
        self.next = now + crate::hub::EVENT_FLUSH_INTERVAL;
    }

    /// Set `timer` to fire when events may leave.
    pub fn arm(&self, timer: std::pin::Pin<&mut tokio::time::Sleep>) {
        timer.reset(self.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::EVENT_FLUSH_INTERVAL;

    #[tokio::test(start_paused = true)]
    async fn events_leave_once_per_interval() {
        let mut pacer = Pacer::default();
        let t0 = tokio::time::Instant::now();
        assert!(pacer.due(t0), "a fresh connection pushes at once");
        pacer.pushed(t0);
        assert!(!pacer.due(t0 + EVENT_FLUSH_INTERVAL / 2));
        let timer = tokio::time::sleep(std::time::Duration::ZERO);
        tokio::pin!(timer);
        pacer.arm(timer.as_mut());
        timer.as_mut().await;
        assert!(pacer.due(tokio::time::Instant::now()));
        assert_eq!(tokio::time::Instant::now() - t0, EVENT_FLUSH_INTERVAL);
    }
}
