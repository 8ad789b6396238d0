//! Attachments: uploads under a quota, lookups, and the removal of unused ones.
//!
//! **Invariant: an uploader's stored bytes never exceed their quota.** The quota
//! check locks the uploader's row until commit before it sums their attachments,
//! so a user's concurrent uploads are checked one at a time and cannot each see
//! room for themselves. An attachment is bound to at most one message (see
//! `append.rs`); only unbound ones are ever deleted here, each delete checking
//! `message_id IS NULL` again in its own statement.

use crate::db::Db;
use crate::error::Fail;
use crate::query::{row_by_key, with_conn, with_tx};
use crate::rows::{now_micros, to_micros, AttachmentRow, NewAttachmentRow};
use crate::schema::{attachments, users};
use chat_core::store::{NewAttachment, StoreResult};
use chat_core::{Attachment, AttachmentId, StoreError, Timestamp};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

pub(super) async fn insert(
    db: &Db,
    a: &NewAttachment,
    quota: Option<i64>,
) -> StoreResult<Attachment> {
    let a = a.clone();
    with_tx!(db, |conn| {
        if let Some(limit) = quota {
            // Hold the uploader's row to commit (a no-op update, as a room lock),
            // so the user's concurrent uploads check the quota one at a time.
            let locked = diesel::update(users::table.find(a.uploader_id.0))
                .set(users::id.eq(users::id))
                .execute(conn)
                .await?;
            if locked == 0 {
                return Err(Fail::not_found("user"));
            }
            // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back.
            let used: i64 = attachments::table
                .filter(attachments::uploader_id.eq(a.uploader_id.0))
                .select(diesel::dsl::sql::<BigInt>(
                    "CAST(COALESCE(SUM(attachments.size), 0) AS BIGINT)",
                ))
                .first::<i64>(conn)
                .await?;
            if used.saturating_add(a.size) > limit {
                return Err(Fail::Store(StoreError::QuotaExceeded {
                    used,
                    size: a.size,
                    limit,
                }));
            }
        }
        let row = diesel::insert_into(attachments::table)
            .values(NewAttachmentRow {
                name: &a.name,
                content_type: &a.content_type,
                size: a.size,
                blob_key: &a.blob_key,
                uploader_id: a.uploader_id.0,
                created_at: now_micros(),
                token: &a.token,
            })
            .returning(AttachmentRow::as_returning())
            .get_result::<AttachmentRow>(conn)
            .await
            .map_err(|e| match Fail::from(e) {
                f if f.is_foreign_key_violation() => Fail::not_found("user"),
                f => f,
            })?;
        row.into_attachment()
    })
    .map_err(Fail::into_store_error)
}

pub(super) async fn one(db: &Db, id: AttachmentId) -> StoreResult<Option<Attachment>> {
    with_conn!(db, read, |conn| {
        let row = row_by_key!(conn, attachments::table, id.0, AttachmentRow)?;
        row.map(AttachmentRow::into_attachment).transpose()
    })
}

/// Delete an attachment no message holds; false when there is none such.
pub(super) async fn delete_unattached(db: &Db, id: AttachmentId) -> StoreResult<bool> {
    with_conn!(db, write, |conn| {
        let n = diesel::delete(
            attachments::table
                .find(id.0)
                .filter(attachments::message_id.is_null()),
        )
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
}

/// Delete at most `limit` attachments no message holds, uploaded before `before`,
/// oldest first; returns them (their blobs are the caller's to remove).
pub(super) async fn delete_unattached_before(
    db: &Db,
    before: Timestamp,
    limit: i64,
) -> StoreResult<Vec<Attachment>> {
    let before = to_micros(before);
    with_tx!(db, |conn| {
        let ids: Vec<i64> = attachments::table
            .filter(attachments::message_id.is_null())
            .filter(attachments::created_at.lt(before))
            .order(attachments::created_at)
            .select(attachments::id)
            .limit(limit)
            .load::<i64>(conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // A message may have taken one since: `message_id IS NULL` again.
        let rows = diesel::delete(
            attachments::table
                .filter(attachments::id.eq_any(&ids))
                .filter(attachments::message_id.is_null()),
        )
        .returning(AttachmentRow::as_returning())
        .get_results::<AttachmentRow>(conn)
        .await?;
        rows.into_iter()
            .map(AttachmentRow::into_attachment)
            .collect::<Result<Vec<_>, Fail>>()
    })
    .map_err(Fail::into_store_error)
}

/// Whether any attachment still refers to the blob `key`.
pub(super) async fn blob_in_use(db: &Db, key: &str) -> StoreResult<bool> {
    let key = key.to_owned();
    with_conn!(db, read, |conn| {
        let found = attachments::table
            .filter(attachments::blob_key.eq(&key))
            .select(attachments::id)
            .first::<i64>(conn)
            .await
            .optional()?;
        Ok(found.is_some())
    })
}
