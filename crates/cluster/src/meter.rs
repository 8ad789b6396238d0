//! What a node counts of its broker, for the operator's `/metrics`.
//!
//! Every failure the node retries is counted by where it happened, so an alert can
//! fire on a rising count while the node keeps retrying (and `/readyz` tells whether
//! it is still connected). Lag is measured on this node's own events: from the
//! moment the event was committed to the moment it came back through the broker and
//! was delivered here — the delay every command of this node waits for.

use chat_core::meter::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Where a broker failure happened (the `op` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerOp {
    /// Writing events to the outbox.
    Write,
    /// Reading the outbox.
    Read,
    /// The LISTEN session or the Redis subscription.
    Subscribe,
    /// Publishing on Redis.
    Publish,
}

impl BrokerOp {
    pub const ALL: [BrokerOp; 4] = [
        BrokerOp::Write,
        BrokerOp::Read,
        BrokerOp::Subscribe,
        BrokerOp::Publish,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BrokerOp::Write => "write",
            BrokerOp::Read => "read",
            BrokerOp::Subscribe => "subscribe",
            BrokerOp::Publish => "publish",
        }
    }
}

/// The broker's counters of one node.
#[derive(Debug, Default)]
pub struct BrokerMeter {
    errors: [AtomicU64; BrokerOp::ALL.len()],
    /// Events delivered on this node from the outbox (or Redis), its own included.
    pub events_read: AtomicU64,
    /// This node's own events, from commit to their delivery here.
    pub lag: Histogram,
}

impl BrokerMeter {
    pub fn error(&self, op: BrokerOp) {
        self.errors[op as usize].fetch_add(1, Relaxed);
    }

    pub fn errors(&self, op: BrokerOp) -> u64 {
        self.errors[op as usize].load(Relaxed)
    }
}
