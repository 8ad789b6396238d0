//! What a session said during one step, in the order it said it.
//!
//! Invariant: a session never writes to its socket. Each emit, ack answer and
//! disconnect is filed in its context's [`Outbox`] first, and only the socket's worker
//! hands the items to socketioxide, oldest first, when the step (one client event, one
//! hub event) is over.
//!
//! Mechanism: an argument is encoded to JSON when it is filed, so a value that cannot
//! be encoded is refused at the call that made it and the item is plain text from then
//! on; an ack answer keeps the socketioxide sender it answers; a rendering shared by
//! every recipient of a hub event is filed by reference, not copied.
//!
//! Consequence: writing to the socket is one loop in the worker, and a session can be
//! driven without any socket at all — a test reads what it filed with
//! [`Outbox::take`] and sees exactly what the worker would have written, in order.

use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::extract::AckSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// An event argument, already JSON.
#[derive(Clone, Debug)]
pub enum Json {
    /// Encoded for this socket.
    Own(Box<RawValue>),
    /// One rendering shared by every recipient of a hub event.
    Shared(Arc<RawValue>),
}

impl Json {
    /// Encode `data`; `Err` when it has no JSON form (a map with non-string keys…).
    pub fn encode<T: Serialize + ?Sized>(data: &T) -> serde_json::Result<Json> {
        serde_json::value::to_raw_value(data).map(Json::Own)
    }

    /// The JSON text.
    pub fn raw(&self) -> &RawValue {
        match self {
            Json::Own(raw) => raw,
            Json::Shared(raw) => raw,
        }
    }

    /// The JSON as a value (for tests and logs; the worker writes [`Json::raw`]).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.raw().get()).unwrap_or(serde_json::Value::Null)
    }
}

/// One thing for the socket, as a session said it.
#[derive(Clone, Debug)]
pub enum Sent {
    /// An event with one argument.
    Emit { event: String, data: Json },
    /// The answer to the ack of the client event `event`.
    Ack { event: String, data: Json },
    /// Leave the namespace; the client does not reconnect.
    Disconnect,
}

/// An item and, for an ack answer on a real socket, the sender it answers.
pub(crate) struct Item {
    pub(crate) sent: Sent,
    pub(crate) ack: Option<AckSender>,
}

/// The queue itself. Behind a lock only because contexts are shared by reference
/// across `.await`s (which wants `Sync`); one task uses it, so the lock is never
/// contended.
#[derive(Default)]
pub struct Outbox {
    items: Mutex<Vec<Item>>,
}

impl Outbox {
    fn items(&self) -> MutexGuard<'_, Vec<Item>> {
        // A panic while pushing leaves a whole Vec: the queue is still usable.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, sent: Sent, ack: Option<AckSender>) {
        self.items().push(Item { sent, ack });
    }

    /// Everything filed so far, oldest first, with the ack senders.
    pub(crate) fn drain(&self) -> Vec<Item> {
        std::mem::take(&mut *self.items())
    }

    /// Everything filed so far, oldest first (a session driven without a socket).
    pub fn take(&self) -> Vec<Sent> {
        self.drain().into_iter().map(|i| i.sent).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }
}
