//! Read state: each member's watermark, and what lies above it.
//!
//! **Invariant: a watermark only moves forward, and each advance learns its true
//! predecessor.** An advance locks the membership row before it reads the old mark,
//! so concurrent advances of one watermark run in turn. Because a room's messages
//! commit in id order (see the crate docs), "above the mark" is exactly what the
//! member has not been shown as read, and counts built on it stay correct.

use crate::db::Db;
use crate::error::Fail;
use crate::query::{lock_row, with_conn, with_tx};
use crate::schema::{members, messages};
use chat_core::store::{StoreResult, Unread};
use chat_core::{MessageId, RoomId, UserId};
use diesel::dsl::{count_star, max};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

/// The live messages of `room` by others than `reader` with ids above `after`:
/// what `reader` has not read there.
#[diesel::dsl::auto_type(no_type_alias)]
fn unread_by(room: i64, reader: i64, after: i64) -> _ {
    messages::table
        .filter(messages::room_id.eq(room))
        .filter(messages::author_id.ne(reader))
        .filter(messages::deleted_at.is_null())
        .filter(messages::id.gt(after))
}

/// A watermark as [`unread_by`] compares it.
fn mark(after: Option<MessageId>) -> i64 {
    after.map_or(i64::MIN, |m| m.0)
}

/// Move `user`'s watermark in `room` up to `up_to`: `None` when it was there
/// already, else the previous mark.
pub(super) async fn advance(
    db: &Db,
    room: RoomId,
    user: UserId,
    up_to: MessageId,
) -> StoreResult<Option<Option<MessageId>>> {
    with_tx!(db, |conn| {
        let key = (room.0, user.0);
        // Lock the membership first so that concurrent advances of the same
        // watermark see each other and each reports its true predecessor.
        lock_row!(conn, members::table.find(key), members::last_read, "member")?;
        let previous = members::table
            .find(key)
            .select(members::last_read)
            .first::<Option<i64>>(conn)
            .await?;
        if previous.is_some_and(|p| p >= up_to.0) {
            return Ok(None);
        }
        diesel::update(members::table.find(key))
            .set(members::last_read.eq(Some(up_to.0)))
            .execute(conn)
            .await?;
        Ok(Some(previous.map(MessageId)))
    })
    .map_err(Fail::into_store_error)
}

/// The messages (and their authors) a move of `reader`'s mark from `after` to
/// `up_to` marks as read, by id.
pub(super) async fn read_between(
    db: &Db,
    room: RoomId,
    reader: UserId,
    after: Option<MessageId>,
    up_to: MessageId,
) -> StoreResult<Vec<(MessageId, UserId)>> {
    with_conn!(db, read, |conn| {
        let rows = unread_by(room.0, reader.0, mark(after))
            .filter(messages::id.le(up_to.0))
            .order(messages::id)
            .select((messages::id, messages::author_id))
            .load::<(i64, i64)>(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(m, a)| (MessageId(m), UserId(a)))
            .collect())
    })
}

pub(super) async fn unread_count(
    db: &Db,
    room: RoomId,
    reader: UserId,
    after: Option<MessageId>,
) -> StoreResult<Unread> {
    with_conn!(db, read, |conn| {
        let (count, newest) = unread_by(room.0, reader.0, mark(after))
            .select((count_star(), max(messages::id)))
            .first::<(i64, Option<i64>)>(conn)
            .await?;
        Ok(Unread {
            count,
            newest: newest.map(MessageId),
        })
    })
}

/// How many of `user`'s rooms hold a message they have not read.
pub(super) async fn unread_rooms(db: &Db, user: UserId) -> StoreResult<i64> {
    // A correlated EXISTS stops at the first unread message of each room; diesel's
    // DSL cannot correlate a subquery with the outer table, so this one condition
    // is portable SQL (still written once for both backends).
    let unread = diesel::dsl::sql::<diesel::sql_types::Bool>(
        "EXISTS (SELECT 1 FROM messages \
         WHERE messages.room_id = members.room_id AND messages.author_id <> ",
    )
    .bind::<BigInt, _>(user.0)
    .sql(
        " AND messages.deleted_at IS NULL \
         AND (members.last_read IS NULL OR messages.id > members.last_read))",
    );
    with_conn!(db, read, |conn| {
        let n = members::table
            .filter(members::user_id.eq(user.0))
            .filter(unread)
            .select(count_star())
            .first::<i64>(conn)
            .await?;
        Ok(n)
    })
}
