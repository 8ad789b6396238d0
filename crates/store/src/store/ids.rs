//! Explicit ids for legacy primary keys.
//!
//! **Invariant: an id given explicitly never collides with one the database
//! allocates later.** On PostgreSQL the table's identity sequence is moved past the
//! given id before the row is inserted ([`reserve_id`]); SQLite's AUTOINCREMENT does
//! this by itself. So imported users and rooms keep their ids and new ones go above.

use crate::db::{Db, PG_LOCK_NAMESPACE};
use crate::query::with_conn;
use chat_core::store::StoreResult;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

/// Tables whose ids may be given explicitly (legacy primary keys).
#[derive(Clone, Copy)]
pub(super) enum IdTable {
    Users,
    Rooms,
    /// Messages of an import that keep their legacy ids (`import.rs`).
    Messages,
}

/// Advisory lock keys (in [`PG_LOCK_NAMESPACE`]) serialising sequence bumps.
const PG_LOCK_USERS_SEQ: i32 = 1;
const PG_LOCK_ROOMS_SEQ: i32 = 2;
const PG_LOCK_MESSAGES_SEQ: i32 = 3;

/// On PostgreSQL, move `table`'s identity sequence past an id about to be inserted
/// explicitly. The advisory lock makes concurrent bumps apply in turn, so the
/// sequence only ever moves forward; the materialized CTE takes it before the check
/// and the `setval` run.
///
/// It runs as a statement of its own *before* the transaction that inserts the
/// row: `setval` is not transactional, so the lock has nothing to protect after
/// it, and held to the inserting transaction's commit it serialised every first
/// sign-up behind the previous one's round trips and WAL flush (twelve sign-ups
/// waiting on it at any moment of a connect storm). Bumping first leaves at worst
/// an unused gap if the insert then fails.
pub(super) async fn reserve_id(db: &Db, table: IdTable, id: i64) -> StoreResult<()> {
    if !matches!(db, Db::Pg(_)) {
        return Ok(());
    }
    let (name, lock) = match table {
        IdTable::Users => ("users", PG_LOCK_USERS_SEQ),
        IdTable::Rooms => ("rooms", PG_LOCK_ROOMS_SEQ),
        IdTable::Messages => ("messages", PG_LOCK_MESSAGES_SEQ),
    };
    let sql = format!(
        "WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock({PG_LOCK_NAMESPACE}, {lock})) \
         SELECT CASE WHEN $1 > COALESCE(pg_sequence_last_value(\
         pg_get_serial_sequence('{name}', 'id')::regclass), 0) \
         THEN setval(pg_get_serial_sequence('{name}', 'id'), $1) END FROM locked"
    );
    with_conn!(db, write, |conn| {
        diesel::sql_query(sql)
            .bind::<BigInt, _>(id)
            .execute(conn)
            .await?;
        Ok(())
    })
}
