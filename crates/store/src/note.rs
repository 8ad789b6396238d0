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
