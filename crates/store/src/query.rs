//! How an operation reaches the database: one connection or one write transaction,
//! on a task of its own, with each query written once for both backends.
//!
//! **Invariant: a query is written once and compiled for PostgreSQL and for SQLite.**
//! [`with_conn!`] and [`with_tx!`] take a block that uses a connection `conn` and
//! expand it twice, once where `conn` is an `AsyncPgConnection` and once where it is
//! SQLite's connection; diesel type-checks each expansion against its backend, so a
//! query that one backend cannot run fails to compile rather than at run time.
//! Helpers that such blocks call are trait methods implemented for both connection
//! types by [`on_both_backends!`], or macros expanded in the block ([`row_by_key!`],
//! [`rows_by_ids!`], [`key_exists!`], [`lock_row!`]) for the query chains every
//! table has. Generic functions over diesel connections would
//! need bounds longer than the queries; two hand-kept copies would drift apart.
//!
//! **Each operation runs to completion on its own task** (see the crate docs): the
//! block is moved into a spawned task, so it owns everything it uses, and callers
//! first turn borrowed arguments into owned values.

use crate::error::Fail;
use chat_core::store::StoreResult;
use chat_core::StoreError;
use std::collections::HashSet;

/// Ids per `IN (…)` list: far below SQLite's bound-parameter limit.
pub(crate) const CHUNK: usize = 500;

/// `items` without repeats, first occurrence kept.
pub(crate) fn dedup_keep_order(items: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|i| seen.insert(*i)).collect()
}

/// The outcome of a spawned operation, with a failed task as a backend error.
pub(crate) fn joined<T>(
    joined: Result<Result<T, Fail>, tokio::task::JoinError>,
) -> Result<T, Fail> {
    match joined {
        Ok(out) => out,
        Err(e) => Err(Fail::Store(StoreError::Backend(format!(
            "a store task failed: {e}"
        )))),
    }
}

/// [`joined`], flattened into the domain's error.
pub(crate) fn finish<T>(
    joined_task: Result<Result<T, Fail>, tokio::task::JoinError>,
) -> StoreResult<T> {
    joined(joined_task).map_err(Fail::into_store_error)
}

/// Run `$body` with `$conn` bound to a connection of `$db`'s backend (a
/// `&crate::db::Db`), taken from the `read` or `write` pool (the same pool on
/// PostgreSQL), on a spawned task. A macro because the body must be compiled once
/// per connection type. `$body` evaluates to `Result<_, Fail>`; the macro to a
/// `StoreResult`.
macro_rules! with_conn {
    ($db:expr, $role:ident, |$conn:ident| $body:expr) => {{
        let task = match $db {
            $crate::db::Db::Pg(pool) => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err($crate::error::Fail::pool)?;
                    let $conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
                    let out: Result<_, $crate::error::Fail> = $body;
                    out
                })
            }
            $crate::db::Db::Sqlite(lite) => {
                let pool = lite.$role().clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err($crate::error::Fail::pool)?;
                    let $conn: &mut $crate::db::SqliteConn = &mut pooled;
                    let out: Result<_, $crate::error::Fail> = $body;
                    out
                })
            }
        };
        $crate::query::finish(task.await)
    }};
}
pub(crate) use with_conn;

/// Run `$body` in one write transaction of `$db` (a `&crate::db::Db`), with `$conn`
/// bound to the transaction's connection, on a spawned task. A macro for the same
/// reason as [`with_conn!`]. Evaluates to `Result<_, Fail>`, so that callers can
/// still tell a unique violation from other failures.
macro_rules! with_tx {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let task = match $db {
            $crate::db::Db::Pg(pool) => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err($crate::error::Fail::pool)?;
                    let conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
                    diesel_async::AsyncConnection::transaction(
                        conn,
                        async move |$conn| -> Result<_, $crate::error::Fail> { $body },
                    )
                    .await
                })
            }
            $crate::db::Db::Sqlite(lite) => {
                let pool = lite.write().clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err($crate::error::Fail::pool)?;
                    let conn: &mut $crate::db::SqliteConn = &mut pooled;
                    // IMMEDIATE takes the write lock at BEGIN, where SQLite's busy
                    // timeout applies. A deferred transaction that read first could be
                    // refused outright at its first write if another connection (a
                    // second store on the file, an outside tool) wrote in between.
                    conn.immediate_transaction(
                        async move |$conn| -> Result<_, $crate::error::Fail> { $body },
                    )
                    .await
                })
            }
        };
        $crate::query::joined(task.await)
    }};
}
pub(crate) use with_tx;

/// Implement a crate-private trait of query helpers for both connection types from
/// one body. A macro because each copy must be type-checked against its own backend
/// (see the module docs); inside, `self` is the connection.
macro_rules! on_both_backends {
    (impl $trait:ident { $($item:item)* }) => {
        impl $trait for diesel_async::AsyncPgConnection {
            $($item)*
        }
        impl $trait for $crate::db::SqliteConn {
            $($item)*
        }
    };
}
pub(crate) use on_both_backends;

/// The row of `$table` whose primary key is `$key`, read as `$row` (a `Selectable`
/// row type) over `$conn`: `Ok(None)` when there is none. A macro for the reason of
/// [`with_conn!`]; the calling module has diesel's prelude and `RunQueryDsl` in scope.
macro_rules! row_by_key {
    ($conn:expr, $table:expr, $key:expr, $row:ty) => {
        $table
            .find($key)
            .select(<$row>::as_select())
            .first::<$row>($conn)
            .await
            .optional()
    };
}
pub(crate) use row_by_key;

/// The rows of `$table` whose `$column` is one of `$ids` (`i64`s), read as `$row` (as
/// [`row_by_key!`]) with one `IN (…)` list per [`CHUNK`] ids, in no particular order.
/// Evaluates to `Result<Vec<$row>, Fail>`.
macro_rules! rows_by_ids {
    ($conn:expr, $table:expr, $column:expr, $ids:expr, $row:ty) => {
        async {
            let mut rows: Vec<$row> = Vec::with_capacity($ids.len());
            for chunk in $ids.chunks($crate::query::CHUNK) {
                let mut part = $table
                    .filter($column.eq_any(chunk))
                    .select(<$row>::as_select())
                    .load::<$row>($conn)
                    .await?;
                rows.append(&mut part);
            }
            Ok::<_, $crate::error::Fail>(rows)
        }
        .await
    };
}
pub(crate) use rows_by_ids;

/// Whether `$table` has a row whose primary key is `$key` (its id column read back,
/// over `$conn`), as [`row_by_key!`].
macro_rules! key_exists {
    ($conn:expr, $table:expr, $id:expr, $key:expr) => {
        $table
            .find($key)
            .select($id)
            .first::<i64>($conn)
            .await
            .optional()
            .map(|found| found.is_some())
    };
}
pub(crate) use key_exists;

/// Lock the row `$row` (a `table.find(key)`) until commit by a no-op update of its
/// column `$column` (the one row lock both backends express in the same SQL), over
/// `$conn`; evaluates to `Err(Fail::not_found($what))` when there is no such row.
macro_rules! lock_row {
    ($conn:expr, $row:expr, $column:expr, $what:literal) => {
        match diesel::update($row)
            .set($column.eq($column))
            .execute($conn)
            .await
        {
            Ok(0) => Err($crate::error::Fail::not_found($what)),
            Ok(_) => Ok(()),
            Err(e) => Err($crate::error::Fail::from(e)),
        }
    };
}
pub(crate) use lock_row;
