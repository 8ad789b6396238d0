//! Connection pools and migrations.
//!
//! PostgreSQL gets one ordinary pool: it has row-level locking and many concurrent
//! writers are its normal state.
//!
//! SQLite allows one writer at a time per file. Letting several pooled connections
//! race for that lock is what produces "database is locked" under load: a deferred
//! transaction that has to upgrade to a writer can fail without waiting for the busy
//! timeout. So every write goes through a pool of exactly one connection, whose
//! checkout queue is the write queue, while reads use their own pool of connections
//! opened `query_only` and run concurrently thanks to WAL. Write transactions begin
//! `IMMEDIATE`, taking the file's write lock up front where the busy timeout applies,
//! so even a second store on the same file (another process, an admin tool) makes
//! writers wait for each other instead of failing.
//!
//! Migrations are embedded so that a single binary can create or upgrade its schema
//! at start-up on a fresh machine. Diesel's migration harness is synchronous, so it
//! runs on a blocking thread: through `AsyncConnectionWrapper` on PostgreSQL (which
//! keeps libpq out of the build) and on a plain `SqliteConnection` for SQLite.

use crate::target::Target;
use crate::{StoreOptions, StoreSetupError};
use chat_core::store::PoolState;
use diesel::connection::SimpleConnection;
use diesel::{ConnectionError, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Namespace of this crate's PostgreSQL advisory locks (the two-key form, so they
/// cannot collide with single-key locks other software may take).
pub(crate) const PG_LOCK_NAMESPACE: i32 = 0x6368_6174; // "chat"
/// Held while migrating, so that several nodes starting at once migrate one by one.
const PG_LOCK_MIGRATIONS: i32 = 0;

/// How long a write may wait for the SQLite writer before the request fails.
const SQLITE_WRITE_WAIT: Duration = Duration::from_secs(30);
/// How long SQLite itself retries a locked database (outside tools, checkpoints).
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// How much of the file each connection reads through a memory map rather than
/// `pread` into its private page cache. Every commit makes each other connection drop
/// that private cache at its next read, so under load readers re-read the same
/// pages all the time; mapped pages are shared with the kernel's page cache and cost
/// no copy. Address space only: resident memory is the kernel's cache, once.
const SQLITE_MMAP_BYTES: u64 = 256 << 20;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub(crate) type PgPool = Pool<AsyncPgConnection>;
pub(crate) type SqlitePool = Pool<SqliteConn>;

/// The open database.
#[derive(Clone)]
pub(crate) enum Db {
    Pg(PgPool),
    Sqlite(SqliteDb),
}

#[derive(Clone)]
pub(crate) struct SqliteDb {
    writer: SqlitePool,
    /// `None` for an in-memory database, which exists only inside its one
    /// connection; reads then share the writer.
    readers: Option<SqlitePool>,
}

/// A pool's figures for the operator's metrics.
fn pool_state<M: bb8::ManageConnection>(name: &'static str, pool: &bb8::Pool<M>) -> PoolState {
    let s = pool.state();
    PoolState {
        name,
        open: s.connections,
        idle: s.idle_connections,
        waits: s.statistics.get_waited,
        timeouts: s.statistics.get_timed_out,
    }
}

impl Db {
    /// Every pool's state: PostgreSQL's one pool, SQLite's writer and readers.
    pub fn pools(&self) -> Vec<PoolState> {
        match self {
            Db::Pg(pool) => vec![pool_state("main", pool)],
            Db::Sqlite(db) => {
                let mut v = vec![pool_state("write", &db.writer)];
                if let Some(r) = &db.readers {
                    v.push(pool_state("read", r));
                }
                v
            }
        }
    }
}

impl SqliteDb {
    pub fn write(&self) -> &SqlitePool {
        &self.writer
    }

    pub fn read(&self) -> &SqlitePool {
        self.readers.as_ref().unwrap_or(&self.writer)
    }
}

/// Logs pool connection failures, which bb8 otherwise swallows (a timed-out checkout
/// would then be the only symptom).
#[derive(Debug, Clone, Copy)]
struct LogSink;

impl bb8::ErrorSink<PoolError> for LogSink {
    fn sink(&self, error: PoolError) {
        tracing::warn!(%error, "database connection failed");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(*self)
    }
}

/// Apply migrations, then open the pools.
pub(crate) async fn open(target: &Target, opts: &StoreOptions) -> Result<Db, StoreSetupError> {
    let pool_size = opts.pool_size.max(1);
    match target {
        Target::Postgres(url) => {
            migrate_postgres(url.clone()).await?;
            let mut config = ManagerConfig::<AsyncPgConnection>::default();
            // The default checks every checkout with a `SELECT 1` round trip: two
            // extra round trips per message sent, the largest share of statements
            // under load. A connection the server dropped is still noticed: its
            // first query fails, diesel-async marks it broken and bb8 discards it.
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
                url.clone(),
                config,
            );
            let builder = Pool::builder()
                .max_size(pool_size)
                .error_sink(Box::new(LogSink));
            Ok(Db::Pg(build_pool(builder, manager, true).await?))
        }
        Target::SqliteFile(path) => {
            let path = path
                .to_str()
                .ok_or_else(|| {
                    StoreSetupError::BadUrl(format!(
                        "the SQLite path {} is not valid UTF-8",
                        path.display()
                    ))
                })?
                .to_owned();
            migrate_sqlite_file(path.clone()).await?;
            let writer = sqlite_pool(&path, Role::Writer, 1).await?;
            let readers = sqlite_pool(&path, Role::Reader, pool_size).await?;
            Ok(Db::Sqlite(SqliteDb {
                writer,
                readers: Some(readers),
            }))
        }
        Target::SqliteMemory => {
            let writer = sqlite_pool(":memory:", Role::Memory, 1).await?;
            {
                let mut conn = writer
                    .get()
                    .await
                    .map_err(|e| StoreSetupError::Connect(e.to_string()))?;
                let outcome = conn
                    .spawn_blocking(|c| Ok(apply_sqlite_migrations(c)))
                    .await
                    .map_err(|e| StoreSetupError::Migration(e.to_string()))?;
                outcome?;
            }
            Ok(Db::Sqlite(SqliteDb {
                writer,
                readers: None,
            }))
        }
    }
}

/// Apply pending migrations and return.
pub(crate) async fn migrate(target: &Target) -> Result<(), StoreSetupError> {
    match target {
        Target::Postgres(url) => migrate_postgres(url.clone()).await,
        Target::SqliteFile(path) => {
            let path = path.to_str().ok_or_else(|| {
                StoreSetupError::BadUrl(format!(
                    "the SQLite path {} is not valid UTF-8",
                    path.display()
                ))
            })?;
            migrate_sqlite_file(path.to_owned()).await
        }
        // Nothing outlives the call, so there is nothing to migrate.
        Target::SqliteMemory => Ok(()),
    }
}

async fn migrate_postgres(url: String) -> Result<(), StoreSetupError> {
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
            .map_err(|e| StoreSetupError::Connect(e.to_string()))?;
        let lock = format!("SELECT pg_advisory_lock({PG_LOCK_NAMESPACE}, {PG_LOCK_MIGRATIONS})");
        diesel::sql_query(lock)
            .execute(&mut conn)
            .map_err(|e| StoreSetupError::Migration(format!("taking the migration lock: {e}")))?;
        let outcome = conn
            .run_pending_migrations(PG_MIGRATIONS)
            .map(|applied| log_applied(applied.len()))
            .map_err(|e| StoreSetupError::Migration(e.to_string()));
        // The lock also ends with the session, which ends right after this.
        let unlock =
            format!("SELECT pg_advisory_unlock({PG_LOCK_NAMESPACE}, {PG_LOCK_MIGRATIONS})");
        let _ = diesel::sql_query(unlock).execute(&mut conn);
        outcome
    })
    .await
    .map_err(|e| StoreSetupError::Migration(format!("the migration task failed: {e}")))?
}

async fn migrate_sqlite_file(path: String) -> Result<(), StoreSetupError> {
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        if let Some(dir) = std::path::Path::new(&path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreSetupError::Connect(format!("creating {}: {e}", dir.display()))
                })?;
            }
        }
        let mut conn = SqliteConnection::establish(&path)
            .map_err(|e| StoreSetupError::Connect(e.to_string()))?;
        conn.batch_execute(&Role::Writer.pragmas())
            .map_err(|e| StoreSetupError::Connect(format!("configuring SQLite: {e}")))?;
        apply_sqlite_migrations(&mut conn)
    })
    .await
    .map_err(|e| StoreSetupError::Migration(format!("the migration task failed: {e}")))?
}

fn apply_sqlite_migrations(conn: &mut SqliteConnection) -> Result<(), StoreSetupError> {
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .map(|applied| log_applied(applied.len()))
        .map_err(|e| StoreSetupError::Migration(e.to_string()))
}

fn log_applied(n: usize) {
    if n > 0 {
        tracing::info!(applied = n, "database migrations applied");
    }
}

#[derive(Clone, Copy, Debug)]
enum Role {
    Writer,
    Reader,
    Memory,
}

impl Role {
    fn pragmas(self) -> String {
        let common = format!(
            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
             PRAGMA foreign_keys = ON; \
             PRAGMA synchronous = NORMAL; \
             PRAGMA mmap_size = {SQLITE_MMAP_BYTES};"
        );
        match self {
            // WAL is a property of the file; setting it once from the writer is enough,
            // and readers must not try (it needs a write lock). It comes after the busy
            // timeout: while another connection to the file closes (its last close
            // checkpoints the WAL under an exclusive lock) it must wait, not fail with
            // "database is locked" (seen when a store was reopened on the same file).
            Role::Writer => format!("{common} PRAGMA journal_mode = WAL;"),
            // A reader that tried to write would bypass the write queue.
            Role::Reader => format!("{common} PRAGMA query_only = ON;"),
            Role::Memory => common,
        }
    }
}

async fn sqlite_pool(path: &str, role: Role, size: u32) -> Result<SqlitePool, StoreSetupError> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    // A local file does not drop connections; checking each checkout would cost a
    // blocking round trip for nothing.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = SqliteConn::establish(&url).await?;
            conn.batch_execute(&role.pragmas())
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path, config);
    let mut builder = Pool::builder().max_size(size).error_sink(Box::new(LogSink));
    builder = match role {
        // The writer (and an in-memory database, which lives in it) is opened at
        // once and kept for good: recycling it would gain nothing, and for memory
        // would lose the data.
        Role::Writer | Role::Memory => builder
            .min_idle(Some(1))
            .max_lifetime(None)
            .idle_timeout(None)
            .connection_timeout(SQLITE_WRITE_WAIT),
        Role::Reader => builder,
    };
    build_pool(builder, manager, true).await
}

/// Build a pool; with `check`, take one connection at once, so that a database that
/// is gone fails start-up rather than the first request.
async fn build_pool<M>(
    builder: bb8::Builder<M>,
    manager: M,
    check: bool,
) -> Result<bb8::Pool<M>, StoreSetupError>
where
    M: bb8::ManageConnection,
    M::Error: std::error::Error,
{
    let connect = |e: &dyn std::fmt::Display| StoreSetupError::Connect(e.to_string());
    let pool = builder.build(manager).await.map_err(|e| connect(&e))?;
    if check {
        drop(pool.get().await.map_err(|e| connect(&e))?);
    }
    Ok(pool)
}

/// A PostgreSQL pool of `size` connections beside the store's own (the cluster
/// outbox, blobs), waiting at most `wait` for a connection; `check` as in
/// [`build_pool`].
pub(crate) async fn side_pool(
    url: &str,
    size: u32,
    wait: Duration,
    check: bool,
) -> Result<PgPool, StoreSetupError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        url,
        ManagerConfig::default(),
    );
    let builder = Pool::builder().max_size(size).connection_timeout(wait);
    build_pool(builder, manager, check).await
}
