//! The timings of a node, and their defaults.
//!
//! **Invariant: every node of a cluster times out the others by the same rule.** A
//! node is taken out when its heartbeat is older than `dead_after`, which the
//! defaults keep at four heartbeats, so one late beat (a pause, a slow query)
//! never costs a live node its users; operators who change one should keep that
//! ratio.

use std::time::Duration;

/// Timings of a node.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Shown in `chat_nodes` (host and port, say).
    pub name: String,
    pub heartbeat: Duration,
    /// A node whose heartbeat is older than this is taken out of the cluster.
    pub dead_after: Duration,
    /// Read the outbox at least this often, woken or not.
    pub poll: Duration,
    /// Events older than this are pruned.
    pub retention: Duration,
    /// The longest a command waits for its own event to come back before it is
    /// answered anyway (the event is committed and will be delivered).
    pub local_wait: Duration,
    /// `redis://HOST:PORT`: tell the other nodes of new events over Redis pub/sub
    /// instead of NOTIFY (see the module docs).
    pub redis: Option<String>,
}

impl ClusterConfig {
    pub fn named(name: impl Into<String>) -> Self {
        ClusterConfig {
            name: name.into(),
            heartbeat: Duration::from_millis(1500),
            dead_after: Duration::from_secs(6),
            poll: Duration::from_secs(1),
            retention: Duration::from_secs(600),
            local_wait: Duration::from_secs(5),
            redis: None,
        }
    }
}
