//! Group commit of new messages.
//!
//! A message insert on its own is a short transaction whose cost is almost all
//! fixed: on PostgreSQL a round trip per statement and a WAL flush (fsync) at commit,
//! on SQLite a blocking-thread hand-off per statement and the write lock. Under load
//! many senders wait for those fixed costs one after the other. So concurrent
//! inserts of plain messages (no attachments: by far the most common kind) are
//! queued to a few writer tasks, and each writer commits whatever has queued up
//! since its last commit in **one** transaction: one fsync and one lock round for
//! the whole group. Every caller still gets its reply only after the transaction
//! holding its message has committed, so "acknowledged" keeps meaning "durable".
//!
//! When nothing else is waiting a group is a single message, so a quiet server pays
//! no extra latency; under load groups grow by themselves, because messages queue
//! while the previous commit is in flight.
//!
//! Ordering is unchanged. A group first locks its rooms (in ascending id order, so
//! it cannot deadlock with another writer), as a single insert does, and allocates
//! its ids under those locks: ids of a room still commit in increasing order (see
//! the crate docs).
//!
//! If a group fails as a whole (a room or author that does not exist, a
//! serialisation failure), each of its messages is retried on its own through the
//! ordinary single insert (`append.rs`), so one bad message gets its own precise error and
//! does not take the others down with it.
//!
//! On PostgreSQL [`PG_WRITERS`] writers commit at once, each owning the rooms whose
//! id falls to it (id modulo the number of writers). Writers that shared rooms would
//! queue behind each other's room locks (a first version did: most of each commit
//! was spent waiting for the previous one); with rooms split between them their
//! commits overlap, and PostgreSQL flushes the WAL of concurrent commits together.
//! A group is a single call of a SQL function that locks, takes ids and inserts
//! (see `bulk.rs`): one round trip and one statement whatever the group's size.
//! SQLite has one writer connection, so it has one writer task, which runs a whole
//! group inside a single blocking call.

use super::append::insert_single;
use crate::db::{Db, PgPool, SqlitePool};
use crate::error::Fail;
use crate::note::{shard_of, CommitWake};
use crate::rows::{assemble, now_micros, MessageRow, NewMessageRow};
use crate::schema::{messages, rooms};
use chat_core::store::{Committed, Committing, NewMessage, StoreResult};
use chat_core::StoreError;
use diesel::{OptionalExtension, QueryDsl, SelectableHelper, SqliteConnection};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most messages committed in one transaction.
const MAX_GROUP: usize = 256;
/// Queued inserts before callers wait for room in the queue (back-pressure).
const QUEUE: usize = 4096;
/// Groups committing at once on PostgreSQL. More than one lets a group's round trips
/// overlap the previous group's fsync; more than a few only adds contention.
const PG_WRITERS: usize = 4;

struct Pending {
    msg: NewMessage,
    reply: oneshot::Sender<StoreResult<Committed>>,
}

/// The sending side of the group-commit queues (one per writer), held by the store.
/// Dropping it ends the writer tasks once they have committed what is queued.
pub(crate) struct GroupWriter {
    queues: Vec<mpsc::Sender<Pending>>,
}

impl GroupWriter {
    /// Start the writer tasks (needs a Tokio runtime).
    pub fn start(db: &Db, wake: Option<Arc<CommitWake>>) -> GroupWriter {
        let writers = match db {
            Db::Pg(_) => PG_WRITERS,
            Db::Sqlite(_) => 1,
        };
        let queues = (0..writers)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(writer(db.clone(), rx, wake.clone()));
                tx
            })
            .collect();
        GroupWriter { queues }
    }

    /// Queue a message without attachments behind those of its room queued before
    /// it; the future resolves once it is committed.
    pub async fn queue(&self, msg: NewMessage) -> StoreResult<Committing> {
        debug_assert!(msg.attachments.is_empty());
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Backend("the message writer has stopped".into());
        // The writer that owns the room (see the module docs): one queue per room, so
        // the order of queueing is the order of ids.
        let owner = msg.room_id.0.rem_euclid(self.queues.len() as i64) as usize;
        self.queues[owner]
            .send(Pending { msg, reply })
            .await
            .map_err(|_| closed())?;
        Ok(Box::pin(async move { answer.await.map_err(|_| closed())? }))
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Pending>, wake: Option<Arc<CommitWake>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        // Whatever queued while the previous group was committing.
        let got = rx.recv_many(&mut group, MAX_GROUP).await;
        if got == 0 {
            return;
        }
        let pending = std::mem::take(&mut group);
        let noted = pending.iter().any(|p| p.msg.note.is_some());
        let new: Vec<&NewMessage> = pending.iter().map(|p| &p.msg).collect();
        let committed = match &db {
            Db::Pg(pool) => commit_pg(pool, &new).await,
            Db::Sqlite(lite) => commit_sqlite(lite.write(), &new).await,
        };
        match committed {
            Ok(messages) if messages.len() == pending.len() => {
                if let Some(wake) = wake.as_ref().filter(|_| noted) {
                    wake.poke();
                }
                for (p, m) in pending.into_iter().zip(messages) {
                    let _ = p.reply.send(Ok(m));
                }
            }
            outcome => {
                if let Err(e) = &outcome {
                    tracing::debug!(error = ?e, size = pending.len(), "group commit failed; inserting one by one");
                }
                for p in pending {
                    let one = insert_single(&db, &p.msg, wake.as_deref()).await;
                    let _ = p.reply.send(one.map(Committed::unplaced));
                }
            }
        }
    }
}

/// The rooms of a group, ascending and once each: the order every group locks them in.
fn rooms_of(group: &[&NewMessage]) -> Vec<i64> {
    let mut ids: Vec<i64> = group.iter().map(|m| m.room_id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn room_missing() -> Fail {
    Fail::not_found("room")
}

async fn commit_pg(pool: &PgPool, group: &[&NewMessage]) -> Result<Vec<Committed>, Fail> {
    use crate::bulk::InsertMessages;
    use diesel_async::RunQueryDsl;

    let size = group.len();
    let mut conn = pool.get().await.map_err(Fail::pool)?;
    let now = now_micros();
    // One statement, so its own transaction: see `bulk.rs` and the migration. It
    // returns the ids, then each note's sequence number (0: no note).
    let placed = InsertMessages {
        rooms: group.iter().map(|m| m.room_id.0).collect(),
        authors: group.iter().map(|m| m.author_id.0).collect(),
        kinds: group.iter().map(|m| m.kind.as_str()).collect(),
        texts: group.iter().map(|m| m.text.as_str()).collect(),
        replies: group.iter().map(|m| m.reply_to.map(|r| r.0)).collect(),
        now,
        notes: group.iter().map(|m| m.note.as_deref()).collect(),
    }
    .get_result::<Option<Vec<i64>>>(&mut conn)
    .await?
    .unwrap_or_default();
    if placed.len() != 2 * size {
        return Err(Fail::corrupt(format!(
            "a group of {size} messages was given {} ids and sequence numbers",
            placed.len()
        )));
    }
    let (ids, seqs) = placed.split_at(size);
    // Every column is known: the rows need not be read back.
    let rows = ids
        .iter()
        .zip(group)
        .map(|(&id, m)| MessageRow::inserted(id, m, now))
        .collect();
    Ok(assemble(rows, Vec::new())?
        .into_iter()
        .zip(group.iter().zip(seqs))
        .map(|(message, (m, &seq))| Committed {
            note_at: (m.note.is_some() && seq > 0).then(|| (shard_of(m.room_id.0), seq)),
            message,
        })
        .collect())
}

async fn commit_sqlite(pool: &SqlitePool, group: &[&NewMessage]) -> Result<Vec<Committed>, Fail> {
    use diesel::RunQueryDsl;

    let rooms = rooms_of(group);
    let owned: Vec<NewMessage> = group.iter().map(|m| (*m).clone()).collect();
    let mut pooled = pool.get().await.map_err(Fail::pool)?;
    // The whole group in one blocking call: one thread hand-off, not one per statement.
    let rows = pooled
        .spawn_blocking(move |conn: &mut SqliteConnection| {
            Ok(
                // IMMEDIATE holds the database's write lock: the rooms need no lock of
                // their own, only to exist.
                conn.immediate_transaction(|conn| -> Result<Vec<MessageRow>, Fail> {
                    for &room in &rooms {
                        let found = rooms::table
                            .find(room)
                            .select(rooms::id)
                            .first::<i64>(conn)
                            .optional()?;
                        if found.is_none() {
                            return Err(room_missing());
                        }
                    }
                    let now = now_micros();
                    let mut rows = Vec::with_capacity(owned.len());
                    for msg in &owned {
                        rows.push(
                            diesel::insert_into(messages::table)
                                .values(NewMessageRow::of(msg, now))
                                .returning(MessageRow::as_returning())
                                .get_result::<MessageRow>(conn)?,
                        );
                    }
                    Ok(rows)
                }),
            )
        })
        .await??;
    Ok(assemble(rows, Vec::new())?
        .into_iter()
        .map(Committed::unplaced)
        .collect())
}
