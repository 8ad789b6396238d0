//! Messages as stored: reading them with their attachments, editing, deleting.
//! (New messages are written by `append.rs` and `group.rs`.)
//!
//! **Invariant: a message is never returned without its attachments.** Every read
//! goes through [`MessageConn::with_attachments`], which loads the attachments of
//! a whole batch in one query (chunked) and fits them to their messages in
//! position order. So no caller can forget them, and a page of history costs two
//! queries whatever its length.

use crate::db::Db;
use crate::error::Fail;
use crate::query::{
    dedup_keep_order, key_exists, on_both_backends, rows_by_ids, with_conn, with_tx, CHUNK,
};
use crate::rows::{assemble, now_micros, to_micros, AttachmentRow, MessageRow};
use crate::schema::{attachments, messages};
use chat_core::store::StoreResult;
use chat_core::{Message, MessageId, RoomId, Timestamp};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Message queries run inside an operation's connection or transaction.
pub(crate) trait MessageConn {
    /// Message rows with their attachments, as domain messages, in the rows' order.
    async fn with_attachments(&mut self, rows: Vec<MessageRow>) -> Result<Vec<Message>, Fail>;

    /// [`MessageConn::with_attachments`] of one row that must come back.
    async fn with_attachments_one(
        &mut self,
        row: MessageRow,
        gone: &'static str,
    ) -> Result<Message, Fail>;
}

on_both_backends! {
    impl MessageConn {
        async fn with_attachments(&mut self, rows: Vec<MessageRow>) -> Result<Vec<Message>, Fail> {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let mut found: Vec<AttachmentRow> = Vec::new();
            for chunk in ids.chunks(CHUNK) {
                let mut part = attachments::table
                    .filter(attachments::message_id.eq_any(chunk))
                    .order((
                        attachments::message_id,
                        attachments::position,
                        attachments::id,
                    ))
                    .select(AttachmentRow::as_select())
                    .load::<AttachmentRow>(&mut *self)
                    .await?;
                found.append(&mut part);
            }
            assemble(rows, found)
        }

        async fn with_attachments_one(
            &mut self,
            row: MessageRow,
            gone: &'static str,
        ) -> Result<Message, Fail> {
            self.with_attachments(vec![row])
                .await?
                .pop()
                .ok_or_else(|| Fail::corrupt(gone))
        }
    }
}

/// Messages by id with their attachments, in no particular order (PostgreSQL; the
/// cluster outbox reads the messages its events name).
pub(crate) async fn by_id(conn: &mut AsyncPgConnection, ids: &[i64]) -> Result<Vec<Message>, Fail> {
    let rows = rows_by_ids!(conn, messages::table, messages::id, ids, MessageRow)?;
    conn.with_attachments(rows).await
}

/// Which single message to read.
pub(super) enum Pick {
    Id(MessageId),
    /// The newest message of a room.
    LastOf(RoomId),
}

pub(super) async fn one(db: &Db, pick: Pick) -> StoreResult<Option<Message>> {
    with_conn!(db, read, |conn| {
        let query = messages::table.select(MessageRow::as_select());
        let row = match pick {
            Pick::Id(id) => query.find(id.0).first::<MessageRow>(conn).await,
            Pick::LastOf(room) => {
                query
                    .filter(messages::room_id.eq(room.0))
                    .order(messages::id.desc())
                    .first::<MessageRow>(conn)
                    .await
            }
        }
        .optional()?;
        Ok(conn
            .with_attachments(row.into_iter().collect())
            .await?
            .pop())
    })
}

/// Replace a live message's text; a deleted one is a conflict.
pub(super) async fn edit(db: &Db, id: MessageId, text: &str) -> StoreResult<Message> {
    let text = text.to_owned();
    with_tx!(db, |conn| {
        let now = now_micros();
        let row = diesel::update(
            messages::table
                .find(id.0)
                .filter(messages::deleted_at.is_null()),
        )
        .set((
            messages::text.eq(&text),
            messages::edited_at.eq(Some(now)),
            messages::updated_at.eq(now),
        ))
        .returning(MessageRow::as_returning())
        .get_result::<MessageRow>(conn)
        .await
        .optional()?;
        let Some(row) = row else {
            return Err(
                match key_exists!(conn, messages::table, messages::id, id.0)? {
                    true => Fail::conflict(format!("message {id} has been deleted")),
                    false => Fail::not_found("message"),
                },
            );
        };
        conn.with_attachments_one(row, "the edited message vanished")
            .await
    })
    .map_err(Fail::into_store_error)
}

/// Soft-delete the live messages of `room` among `ids`; returns those deleted, by id.
pub(super) async fn delete(
    db: &Db,
    room: RoomId,
    ids: &[MessageId],
) -> StoreResult<Vec<MessageId>> {
    let ids = dedup_keep_order(ids.iter().map(|m| m.0));
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    with_tx!(db, |conn| {
        let now = now_micros();
        let mut deleted: Vec<i64> = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let mut part = diesel::update(
                messages::table
                    .filter(messages::room_id.eq(room.0))
                    .filter(messages::id.eq_any(chunk))
                    .filter(messages::deleted_at.is_null()),
            )
            .set((
                messages::deleted_at.eq(Some(now)),
                messages::text.eq(""),
                messages::updated_at.eq(now),
            ))
            .returning(messages::id)
            .get_results::<i64>(conn)
            .await?;
            deleted.append(&mut part);
        }
        deleted.sort_unstable();
        Ok(deleted.into_iter().map(MessageId).collect())
    })
    .map_err(Fail::into_store_error)
}

/// At most `limit` messages of `room` below `before`, newest first.
pub(super) async fn history(
    db: &Db,
    room: RoomId,
    before: Option<MessageId>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let before = before.map_or(i64::MAX, |m| m.0);
    let limit = limit.max(0);
    with_conn!(db, read, |conn| {
        let rows = messages::table
            .filter(messages::room_id.eq(room.0))
            .filter(messages::id.lt(before))
            .order(messages::id.desc())
            .limit(limit)
            .select(MessageRow::as_select())
            .load::<MessageRow>(conn)
            .await?;
        conn.with_attachments(rows).await
    })
}

/// At most `limit` messages of `room` created in `from..=to`, oldest first.
pub(super) async fn between(
    db: &Db,
    room: RoomId,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let from = from.map_or(i64::MIN, to_micros);
    let to = to.map_or(i64::MAX, to_micros);
    let limit = limit.max(0);
    with_conn!(db, read, |conn| {
        let rows = messages::table
            .filter(messages::room_id.eq(room.0))
            .filter(messages::created_at.ge(from))
            .filter(messages::created_at.le(to))
            .order(messages::id)
            .limit(limit)
            .select(MessageRow::as_select())
            .load::<MessageRow>(conn)
            .await?;
        conn.with_attachments(rows).await
    })
}

/// At most `limit` messages of `room` above `after`, oldest first (catching up).
pub(super) async fn after(
    db: &Db,
    room: RoomId,
    after: MessageId,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let limit = limit.max(0);
    with_conn!(db, read, |conn| {
        let rows = messages::table
            .filter(messages::room_id.eq(room.0))
            .filter(messages::id.gt(after.0))
            .order(messages::id)
            .limit(limit)
            .select(MessageRow::as_select())
            .load::<MessageRow>(conn)
            .await?;
        conn.with_attachments(rows).await
    })
}

/// At most `limit` messages of `room` with ids up to `up_to` that were edited or
/// deleted at or after `since`, in the order they changed (then by id).
pub(super) async fn changed_since(
    db: &Db,
    room: RoomId,
    up_to: MessageId,
    since: Timestamp,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let since = to_micros(since);
    let limit = limit.max(0);
    with_conn!(db, read, |conn| {
        let rows = messages::table
            .filter(messages::room_id.eq(room.0))
            .filter(messages::updated_at.ge(since))
            .filter(messages::id.le(up_to.0))
            .filter(
                messages::edited_at
                    .is_not_null()
                    .or(messages::deleted_at.is_not_null()),
            )
            .order((messages::updated_at, messages::id))
            .limit(limit)
            .select(MessageRow::as_select())
            .load::<MessageRow>(conn)
            .await?;
        conn.with_attachments(rows).await
    })
}

/// When the newest message with an id up to `id` was created (of any room).
pub(super) async fn created_at_or_before(db: &Db, id: MessageId) -> StoreResult<Option<Timestamp>> {
    with_conn!(db, read, |conn| {
        let micros = messages::table
            .filter(messages::id.le(id.0))
            .order(messages::id.desc())
            .select(messages::created_at)
            .first::<i64>(conn)
            .await
            .optional()?;
        micros.map(crate::rows::from_micros).transpose()
    })
}
