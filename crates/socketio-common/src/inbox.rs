//! A socket's inbox: client events in arrival order, waiting for the socket's worker.
//!
//! socketioxide spawns a task per incoming event, so two events of one socket may be
//! handled in either order. Its argument extractors, though, run synchronously in the
//! receive path, in arrival order. [`Enqueued`] is an extractor that moves the event
//! (name, first argument, ack) into the socket's bounded inbox right there; the
//! handler that gets it only answers when the inbox was full.

use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One client event.
pub struct Request {
    /// The event name as sent.
    pub event: String,
    /// The first argument; `Null` when there was none (or it was binary).
    pub payload: serde_json::Value,
    /// Whether the client passed an ack callback.
    pub wants_ack: bool,
    ack: Option<AckSender>,
    /// The ack was answered (a request has one answer at most).
    answered: bool,
}

impl Request {
    /// The ack to answer with, once; `None` when the client did not ask for one or it
    /// was used already.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }

    /// Claim the one answer to the ack: true the first time, when the client asked
    /// for an ack; false otherwise.
    pub(crate) fn answer(&mut self) -> bool {
        let first = self.wants_ack && !self.answered;
        self.answered = true;
        first
    }

    /// A request built by hand (tests), without an ack callback.
    pub fn new(event: &str, payload: serde_json::Value) -> Self {
        Request {
            event: event.to_string(),
            payload,
            wants_ack: false,
            ack: None,
            answered: false,
        }
    }

    /// The same request with an ack callback (its answer is filed in the outbox).
    pub fn with_ack(mut self) -> Self {
        self.wants_ack = true;
        self
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("event", &self.event)
            .field("wants_ack", &self.wants_ack)
            .finish()
    }
}

/// The sending side of a socket's inbox, kept in the socket's extensions.
///
/// Requests travel boxed: tokio's bounded channel allocates its first block of 32
/// slots when it is created, and with the request inline (about 90 bytes) that was
/// 2.8 KiB per socket, idle or not; boxed it is 256 bytes, and a request costs one
/// small allocation only when there is one.
#[derive(Clone)]
pub struct Inbox(pub mpsc::Sender<Box<Request>>);

/// The extractor that files the event into the inbox. Holds the request back when
/// it could not be filed (inbox full: the client sends faster than it is answered).
pub struct Enqueued(pub Option<Request>);

impl FromMessageParts<LocalAdapter> for Enqueued {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<LocalAdapter>>,
        v: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let event = Event::from_message_parts(s, v, ack_id)
            .map(|Event(e)| e)
            .unwrap_or_default();
        let payload = match TryData::<serde_json::Value>::from_message_parts(s, v, ack_id) {
            Ok(TryData(Ok(value))) => value,
            _ => serde_json::Value::Null,
        };
        let ack = match AckSender::from_message_parts(s, v, ack_id) {
            Ok(a) => Some(a),
            Err(never) => match never {},
        };
        let req = Request {
            event,
            payload,
            wants_ack: ack_id.is_some(),
            ack,
            answered: false,
        };
        let Some(Inbox(tx)) = s.extensions.get::<Inbox>() else {
            return Ok(Enqueued(Some(req)));
        };
        match tx.try_send(Box::new(req)) {
            Ok(()) => Ok(Enqueued(None)),
            Err(mpsc::error::TrySendError::Full(req)) => Ok(Enqueued(Some(*req))),
            // The worker is gone: the socket is closing; nothing to answer.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(Enqueued(None)),
        }
    }
}
