//! Throw-away databases for tests (this crate's and the testkit's).
//!
//! Each test gets a database of its own, a fresh SQLite file or a fresh PostgreSQL
//! schema, so tests run in parallel without seeing each other's rows, and nothing
//! has to be reset between them. Both are removed when the [`TestDb`] is dropped.
//!
//! PostgreSQL tests need a server. Where there is none, a developer's run prints a
//! loud `SKIPPED` line per test and goes on; under `CI=true` a missing server fails
//! the test instead, because a CI run that silently skipped half its suite would
//! look green while proving nothing.

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The server used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test schemas are named `chat_test_<unix seconds>_<pid>_<n>`; the time lets a later
/// run remove what a killed run left behind.
const SCHEMA_PREFIX: &str = "chat_test_";
/// Leftover schemas older than this are dropped when a new one is created.
const STALE_AFTER_SECS: u64 = 3600;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    /// Pass this to [`crate::connect`].
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(PathBuf),
    Schema { server_url: String, schema: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { server_url, schema } => {
                drop_schema_blocking(server_url.clone(), schema.clone());
            }
        }
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{secs}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh SQLite database file in a new temporary directory.
pub async fn sqlite_temp() -> TestDb {
    let dir = std::env::temp_dir().join(format!("chat-store-test-{}", unique_suffix()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create the test directory {}: {e}", dir.display());
    }
    TestDb {
        url: format!("sqlite://{}", dir.join("chat.db").display()),
        cleanup: Cleanup::Dir(dir),
    }
}

/// A store open on a fresh SQLite file (see [`sqlite_temp`]); the file goes with the
/// [`TestDb`].
pub async fn sqlite_store() -> (TestDb, std::sync::Arc<dyn chat_core::Store>) {
    let db = sqlite_temp().await;
    let store = crate::connect(&db.url, crate::StoreOptions::default())
        .await
        .expect("the SQLite test store opens");
    (db, store)
}

/// A fresh schema on the PostgreSQL server at `TEST_DATABASE_URL` (default
/// [`DEFAULT_TEST_DATABASE_URL`]), and a URL whose connections use it.
///
/// `None` when the server cannot be reached (after printing a `SKIPPED` line), unless
/// `CI=true`, where that panics.
pub async fn postgres_schema() -> Option<TestDb> {
    let server_url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned());
    let mut conn = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        AsyncPgConnection::establish(&server_url),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return unreachable_server(&server_url, &e.to_string()),
        Err(_) => return unreachable_server(&server_url, "connection timed out"),
    };
    drop_stale_schemas(&mut conn).await;
    let schema = format!("{SCHEMA_PREFIX}{}", unique_suffix());
    if let Err(e) = conn.batch_execute(&format!("CREATE SCHEMA {schema}")).await {
        panic!("cannot create the test schema {schema}: {e}");
    }
    let separator = if server_url.contains('?') { '&' } else { '?' };
    Some(TestDb {
        // tokio-postgres passes `options` to the server as startup options, so every
        // connection of the store's pool starts with this schema first on its path.
        url: format!("{server_url}{separator}options=-csearch_path%3D{schema}"),
        cleanup: Cleanup::Schema { server_url, schema },
    })
}

fn unreachable_server(url: &str, why: &str) -> Option<TestDb> {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let url = crate::describe_url(url);
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        panic!("PostgreSQL unreachable at {url} ({why}) and CI=true: {test} must not be skipped");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of
    // passing tests, and a skip must be seen.
    let line = format!("SKIPPED (PostgreSQL unreachable at {url}: {why}): {test}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

#[derive(QueryableByName)]
struct SchemaName {
    #[diesel(sql_type = Text)]
    nspname: String,
}

/// Drop test schemas left behind by runs that were killed before cleaning up.
async fn drop_stale_schemas(conn: &mut AsyncPgConnection) {
    let Ok(names) =
        diesel::sql_query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'chat\\_test\\_%'")
            .load::<SchemaName>(conn)
            .await
    else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for SchemaName { nspname } in names {
        let created = nspname
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        let is_plain = nspname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if is_plain && created.is_some_and(|t| t + STALE_AFTER_SECS < now) {
            let _ = conn
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {nspname} CASCADE"))
                .await;
        }
    }
}

/// Drop a schema from a `Drop` impl, which may run inside or outside a tokio runtime:
/// a thread with its own runtime works in both, and is joined so the schema is gone
/// before the test process can exit.
fn drop_schema_blocking(server_url: String, schema: String) {
    let worker = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(Ok(mut conn)) =
                tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(&server_url))
                    .await
            else {
                return;
            };
            let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
            if let Err(e) = conn.batch_execute(&sql).await {
                eprintln!("warning: could not drop test schema {schema}: {e}");
            }
        });
    });
    let _ = worker.join();
}

#[derive(QueryableByName)]
struct Terminated {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Terminate the cluster's LISTEN sessions on the database at `url` (a test schema's
/// URL): what a PostgreSQL restart or a network cut does to them. Returns how many.
pub async fn terminate_cluster_listeners(url: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", crate::describe_url(url)));
    diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() \
           AND query = 'LISTEN \"chat_outbox_' || current_schema() || '\"'",
    )
    .get_result::<Terminated>(&mut conn)
    .await
    .expect("pg_terminate_backend")
    .n
}
