//! The chat store: one implementation of [`chat_core::Store`] on diesel-async that
//! runs on PostgreSQL or SQLite, chosen at run time by the URL's scheme.
//!
//! * `postgres://…` / `postgresql://…`: a shared server, for production and for
//!   several gateway nodes.
//! * `sqlite://PATH`, `sqlite:PATH` or a plain path: the embedded default. SQLite is
//!   compiled in, so a fresh machine needs no system library. `sqlite::memory:` gives
//!   a private in-memory database that lives as long as the store.
//!
//! # Why the store is shaped this way
//!
//! **One query, two backends.** Every query is written once in diesel's DSL and a
//! macro expands it for the PostgreSQL and the SQLite connection type (see
//! `query.rs`). Two hand-kept copies of each query would drift apart; generic
//! functions over diesel connection types need bounds longer than the queries.
//!
//! **Timestamps are `BIGINT` microseconds since the Unix epoch, UTC.** It is the only
//! representation both backends store, compare and index exactly: SQLite has no
//! timestamp type (diesel would store text whose ordering depends on formatting), and
//! PostgreSQL keeps microseconds, so finer clocks would not round-trip. Every time the
//! store writes is taken at that precision, so what a write returns equals what a
//! later read returns.
//!
//! **SQLite writes are funnelled through one connection** (see `db.rs`), so they
//! queue instead of failing with "database is locked", while reads stay concurrent.
//!
//! **Each operation runs to completion on its own task.** Store calls are spawned, so a
//! caller that gives up (a closed socket, a timeout) cannot abandon a transaction
//! half-way or hand a connection back to the pool mid-query; a command that was
//! committed stays committed whether or not its caller is still waiting.
//!
//! **Messages of one room are committed in id order.** Inserting a message first
//! locks its room's row, on PostgreSQL until commit. So ids of a room are committed
//! in increasing order, and a reader that has seen message `n` has seen every
//! earlier message of the room; read watermarks depend on that. Rooms do not wait
//! for each other. (On SQLite the single writer gives this anyway.)
//!
//! **Plain messages are group-committed** (`store/group.rs`): concurrent sends share one
//! transaction, one lock round and one fsync, and each caller is answered only after
//! the commit that holds its message. This is what lets a busy server acknowledge
//! thousands of durable messages a second instead of a few hundred.

pub mod blobs;
mod bulk;
mod db;
mod error;
mod note;
pub mod outbox;
mod query;
mod rows;
mod schema;
mod store;
mod target;
pub mod testing;

pub use outbox::{Outbox, OutboxEvent, Published, Snapshot};
/// `chat-gateway import` and `export`: see `store/import.rs`.
pub mod import {
    pub use crate::store::import::{
        open_exporter, open_importer, BlobRef, Exporter, Importer, KeyKind, MemberRecord,
        MessageRecord, Outcome, ReadRecord, RoomRecord, RoomShape, UserRecord,
    };
}
pub use target::describe_url;

use chat_core::Store;
use std::sync::Arc;

/// Tuning of the connection pools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Connections of the PostgreSQL pool, or SQLite reader connections (SQLite always
    /// has exactly one writer).
    pub pool_size: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { pool_size: 16 }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreSetupError {
    #[error("bad database URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("{0}")]
    InUse(String),
}

/// While held, no other gateway serves the same SQLite file (the lock is released
/// when this is dropped or the process dies).
#[derive(Debug)]
pub struct SingleNodeLock {
    _file: std::fs::File,
}

/// SQLite is single-node: a gateway that serves a SQLite file holds an exclusive
/// advisory lock on `<file>.lock` beside it for as long as it runs, so a second
/// `serve` on the same file is refused at start instead of running beside the first
/// without seeing its clients. Returns `None` for PostgreSQL (a cluster) and for an
/// in-memory database. Admin commands (`users`, `token`, `migrate`) take no lock.
pub fn lock_single_node(url: &str) -> Result<Option<SingleNodeLock>, StoreSetupError> {
    let target::Target::SqliteFile(path) = target::parse(url)? else {
        return Ok(None);
    };
    let mut name = path.clone().into_os_string();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreSetupError::Connect(format!("{}: {e}", dir.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreSetupError::Connect(format!("{}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(SingleNodeLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreSetupError::InUse(format!(
            "another gateway is already serving the SQLite database {} (it holds {}); \
             SQLite is single-node: stop that one, or use PostgreSQL to run several nodes",
            path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreSetupError::Connect(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

/// Open the database named by `url`, apply pending migrations, and return the store.
pub async fn connect(url: &str, opts: StoreOptions) -> Result<Arc<dyn Store>, StoreSetupError> {
    let target = target::parse(url)?;
    let db = db::open(&target, &opts).await?;
    tracing::info!(url = %describe_url(url), "database ready");
    Ok(Arc::new(store::DieselStore::new(db)))
}

/// Apply pending migrations to the database named by `url` and return.
pub async fn migrate(url: &str) -> Result<(), StoreSetupError> {
    let target = target::parse(url)?;
    db::migrate(&target).await
}
