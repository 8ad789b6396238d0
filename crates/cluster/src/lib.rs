//! Several gateway nodes on one PostgreSQL behave as one server.
//!
//! **Invariant: every node delivers every event, its own included, in the order of
//! its outbox shard, exactly once.** Events are appended to the outbox
//! (`chat_store::outbox`), whose shards number their events without gaps; each node
//! keeps one cursor per shard and delivers what lies beyond it, in order. A NOTIFY
//! only wakes the readers (its payload is empty, so its 8000-byte limit never
//! matters); a fallback poll catches a wake-up lost with a dropped LISTEN session,
//! and a reconnected session is followed by a read, so nothing is missed while it
//! was down. A node's own events are delivered from memory
//! ([`Local`](chat_core::cluster::Local)) when they come up in their shard — at
//! once, unread, when the node knows their place and nothing comes before them —,
//! not decoded again, and the command that caused one is answered only after that, as
//! on a single node (see `chat_core::cluster`).
//!
//! The tasks of a node:
//! * the **writer** appends events and presence changes in batches (one call, one
//!   transaction per batch) and tells the reader what it wrote;
//! * the **reader** reads beyond its cursors when woken (NOTIFY, its own writer, a
//!   message committed here, the poll) and delivers;
//! * the **listener** holds the LISTEN session and reconnects it with back-off;
//! * the **keeper** heartbeats, sweeps nodes whose heartbeat stopped (their users go
//!   offline, announced by the database in the same transaction) and prunes old
//!   events.
//!
//! **With Redis** (`--broker redis://…`) the outbox stays the source of truth and
//! NOTIFY is off: a node that read its own new events from the outbox publishes
//! them, whole, on a Redis channel, and the other nodes deliver what arrives there
//! when it is next in its shard. An event that arrives after a gap (Redis dropped
//! one, a subscriber reconnected, an event was written by another node's sweep)
//! makes the node read the outbox instead, and the fallback poll reads it anyway;
//! so Redis only makes delivery faster and lighter on PostgreSQL, never lossy.
//!
//! Presence: the database keeps which node has a connection of which user, and the
//! set of users last announced online; a presence event is appended exactly when
//! the cluster-wide state of a user flips, under a per-user lock, so presence events
//! of a user are in the order of the flips. A node reports a user as "changed" and
//! the writer sends the hub's state at the time it writes, so a connect and a
//! disconnect racing each other end in the state the hub really has.

mod backoff;
mod config;
pub mod meter;
mod node;
mod state;
mod wire;

pub use config::ClusterConfig;
pub use node::{Cluster, ClusterError};
