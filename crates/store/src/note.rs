//! The outbox's write side: the note a writer appends in its own transaction.
//!
//! Invariant: a message's cluster note is written in the transaction that inserts the
//! message, under its room's lock, into the room's shard. Mechanism: the message writers
//! (`store::append`) call [`put_note`]; the reader side (`outbox`) only reads what was
//! committed. Consequence: neither imports the other, and a note exists exactly when its
//! message does.

use crate::db::SqliteConn;
use crate::error::Fail;
use chat_core::StoreError;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Shards of the outbox. The migration creates this many rows in
/// `chat_outbox_shards` and maps rooms and users with `% 16`; the two must agree.
pub const SHARDS: usize = 16;

/// The shard of a room's events, or of the events about a user alone.
pub fn shard_of(id: i64) -> usize {
    id.rem_euclid(SHARDS as i64) as usize
}

/// Where a new message's cluster note can be appended, inside the transaction that
/// inserts the message.
pub(crate) trait NoteSink {
    async fn put_note(&mut self, room: i64, message: i64, note: &str) -> Result<(), Fail>;
}

impl NoteSink for AsyncPgConnection {
    async fn put_note(&mut self, room: i64, message: i64, note: &str) -> Result<(), Fail> {
        diesel::sql_query(
            "SELECT chat_outbox_put(ARRAY[$1]::INT[], ARRAY[$2]::TEXT[], ARRAY[$3]::BIGINT[])",
        )
        .bind::<Integer, _>(shard_of(room) as i32)
        .bind::<Text, _>(note)
        .bind::<BigInt, _>(message)
        .execute(self)
        .await?;
        Ok(())
    }
}

impl NoteSink for SqliteConn {
    async fn put_note(&mut self, _room: i64, _message: i64, _note: &str) -> Result<(), Fail> {
        Err(Fail::Store(StoreError::Backend(
            "a cluster note on SQLite, which is single-node".into(),
        )))
    }
}

pub(crate) async fn put_note<C: NoteSink>(
    conn: &mut C,
    room: i64,
    message: i64,
    note: &str,
) -> Result<(), Fail> {
    conn.put_note(room, message, note).await
}

/// Wakes the other nodes after outbox rows commit.
///
/// Invariant: every commit that appends to the outbox is followed by a `NOTIFY` on
/// the outbox channel that starts after it (when the cluster's broker is
/// `postgres`). Mechanism: the writer pokes [`CommitWake::poke`] once its commit
/// returned; one task per pool sends the `NOTIFY` in a transaction of its own, and a
/// poke that comes while one is being sent queues exactly one more. Consequence:
/// `NOTIFY` is out of the writers' transactions. Inside them it serialised every
/// commit of the database behind one lock (PostgreSQL takes a database-wide lock at
/// the commit of a transaction that notified, and holds it through the WAL flush), so
/// the four message writers committed one at a time; now they overlap, and a burst
/// of commits costs one wake-up. A process that dies between a commit and its
/// `NOTIFY` leaves the other nodes to find the rows at their next poll (every second).
///
/// The `NOTIFY` names the node the writes are for once it is known
/// ([`CommitWake::name`]); a node ignores wake-ups that name itself, because it
/// learns of its own commits directly and delivers their events from memory.
#[derive(Clone)]
pub(crate) struct CommitWake {
    poke: tokio::sync::mpsc::Sender<()>,
    from: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl CommitWake {
    /// Start the waking task on `pool` (needs a Tokio runtime); it ends when the
    /// last `CommitWake` is dropped.
    pub fn start(pool: crate::db::PgPool) -> CommitWake {
        let (poke, mut poked) = tokio::sync::mpsc::channel(1);
        let from = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
        let named = from.clone();
        tokio::spawn(async move {
            while poked.recv().await.is_some() {
                let payload = named.get().map_or("", String::as_str);
                if let Err(e) = notify(&pool, payload).await {
                    tracing::warn!(error = %e, "cluster wake-up NOTIFY failed; other nodes find the events at their next poll");
                }
            }
        });
        CommitWake { poke, from }
    }

    /// From now on the wake-ups name cluster node `node` (the first name given stays).
    pub fn name(&self, node: i64) {
        let _ = self.from.set(node.to_string());
    }

    /// Outbox rows committed: wake the other nodes (soon, coalesced).
    pub fn poke(&self) {
        // Full: a NOTIFY is queued that starts after this commit already.
        let _ = self.poke.try_send(());
    }
}

pub(crate) async fn notify(pool: &crate::db::PgPool, payload: &str) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    // The channel is per schema (several gateways' tests share one database), and
    // only the `postgres` broker listens.
    diesel::sql_query(
        "SELECT pg_notify('chat_outbox_' || current_schema(), $1) FROM chat_cluster_config \
         WHERE key = 'broker' AND value = 'postgres'",
    )
    .bind::<Text, _>(payload)
    .execute(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}
