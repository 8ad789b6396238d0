//! The insert of one message in its own transaction: messages with attachments, and
//! the one-by-one retry of a failed group (`group.rs`).
//!
//! **Invariant: ids of a room commit in increasing order.** The insert first locks
//! its room's row ([`RoomConn::lock_room`]) and holds it to commit, so a reader that
//! has seen message `n` of a room has seen every earlier one (see the crate docs).
//! Attachments are bound in the same transaction, each only if no message holds it
//! yet, and a cluster note joins the outbox there too: the message, its attachments
//! and its event commit together or not at all.

use super::messages::MessageConn;
use super::rooms::RoomConn;
use crate::db::Db;
use crate::error::Fail;
use crate::note::{put_note, CommitWake};
use crate::query::with_tx;
use crate::rows::{now_micros, MessageRow, NewMessageRow};
use crate::schema::{attachments, messages};
use chat_core::store::{NewMessage, StoreResult};
use chat_core::Message;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// Insert `msg` in a transaction of its own; returns it as committed. When it has a
/// cluster note, `wake` is poked after the commit.
pub(crate) async fn insert_single(
    db: &Db,
    msg: &NewMessage,
    wake: Option<&CommitWake>,
) -> StoreResult<Message> {
    let noted = msg.note.is_some();
    let inserted = insert_alone(db, msg).await;
    if let Some(wake) = wake.filter(|_| noted && inserted.is_ok()) {
        wake.poke();
    }
    inserted
}

async fn insert_alone(db: &Db, msg: &NewMessage) -> StoreResult<Message> {
    let msg = msg.clone();
    with_tx!(db, |conn| {
        conn.lock_room(msg.room_id.0).await?;
        let now = now_micros();
        let row = diesel::insert_into(messages::table)
            .values(NewMessageRow::of(&msg, now))
            .returning(MessageRow::as_returning())
            .get_result::<MessageRow>(conn)
            .await?;
        for (position, attachment) in (0_i64..).zip(&msg.attachments) {
            let bound = diesel::update(
                attachments::table
                    .find(attachment.0)
                    .filter(attachments::message_id.is_null()),
            )
            .set((
                attachments::message_id.eq(row.id),
                attachments::position.eq(position),
            ))
            .execute(conn)
            .await?;
            if bound == 0 {
                return Err(Fail::conflict(format!(
                    "attachment {attachment} does not exist or belongs to another message"
                )));
            }
        }
        if let Some(note) = &msg.note {
            put_note(conn, msg.room_id.0, row.id, note).await?;
        }
        conn.with_attachments_one(row, "the inserted message vanished")
            .await
    })
    .map_err(Fail::into_store_error)
}
