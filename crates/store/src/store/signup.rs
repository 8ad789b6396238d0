//! Batched user writes: first sign-ins.
//!
//! A connect storm of new users is a storm of tiny transactions, each a user row
//! and a commit, whose cost is almost all the commit (as with messages, see
//! `group.rs`). So user writes that get past the read-only check (the user is new,
//! or their token says something new) queue to a few writer tasks, and each writer
//! runs whatever has queued since its last commit in **one** transaction, each
//! profile through the same upsert a lone write runs ([`UserConn::upsert_row`]).
//! Every caller is answered once the transaction holding its write has committed.
//!
//! Writes of one user go to one writer (chosen by the key that designates the user),
//! so two first sign-ins of one person are ordered: the second finds the first's row
//! in the same or a later transaction and creates nothing. If a batch fails as a
//! whole (a username another user has, a unique index met), each of its writes is
//! retried on its own ([`users::upsert_alone`]), which gives the precise error and
//! lets the others through.

use super::ids::{reserve_id, IdTable};
use super::users::{self, designated, user_written, Lookup, UserConn};
use crate::db::Db;
use crate::query::with_tx;
use chat_core::store::{StoreResult, UserWrite};
use chat_core::{StoreError, User, UserProfile};
use std::hash::{Hash, Hasher};
use tokio::sync::{mpsc, oneshot};

/// Most user writes in one transaction.
const MAX_BATCH: usize = 128;
/// Queued writes before callers wait for room in the queue (back-pressure).
const QUEUE: usize = 4096;
/// Batches committing at once on PostgreSQL (SQLite has one writer connection).
const PG_WRITERS: usize = 4;

type Written = StoreResult<(User, UserWrite)>;

struct Pending {
    profile: UserProfile,
    reply: oneshot::Sender<Written>,
}

/// The sending side of the writers' queues, held by the store.
pub(crate) struct SignupWriter {
    queues: Vec<mpsc::Sender<Pending>>,
}

impl SignupWriter {
    /// Start the writer tasks (needs a Tokio runtime).
    pub fn start(db: &Db) -> SignupWriter {
        let writers = match db {
            Db::Pg(_) => PG_WRITERS,
            Db::Sqlite(_) => 1,
        };
        let queues = (0..writers)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(writer(db.clone(), rx));
                tx
            })
            .collect();
        SignupWriter { queues }
    }

    /// Create or refresh the user `profile` designates; returns once committed.
    pub async fn write(&self, profile: UserProfile) -> Written {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Backend("the user writer has stopped".into());
        let owner = writer_of(&profile, self.queues.len());
        self.queues[owner]
            .send(Pending { profile, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// The writer of every write designating the same user.
fn writer_of(profile: &UserProfile, writers: usize) -> usize {
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    match designated(profile) {
        Some(Lookup::Id(id)) => id.hash(&mut hash),
        Some(Lookup::Username(v)) | Some(Lookup::ExternalId(v)) => v.hash(&mut hash),
        None => {}
    }
    (hash.finish() % writers as u64) as usize
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Whatever queued while the previous batch was committing.
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let pending = std::mem::take(&mut batch);
        let profiles: Vec<UserProfile> = pending.iter().map(|p| p.profile.clone()).collect();
        match commit(&db, profiles).await {
            Ok(written) if written.len() == pending.len() => {
                for (p, w) in pending.into_iter().zip(written) {
                    let _ = p.reply.send(Ok(w));
                }
            }
            outcome => {
                if let Err(e) = &outcome {
                    tracing::debug!(error = %e, size = pending.len(), "user batch failed; writing one by one");
                }
                for p in pending {
                    let one = users::upsert_alone(&db, &p.profile).await;
                    let _ = p.reply.send(one);
                }
            }
        }
    }
}

/// One transaction upserting every profile, in order.
async fn commit(db: &Db, profiles: Vec<UserProfile>) -> StoreResult<Vec<(User, UserWrite)>> {
    // Explicit ids first move the id sequence past them: the highest does for all.
    if let Some(top) = profiles.iter().filter_map(|p| p.id).map(|id| id.0).max() {
        reserve_id(db, IdTable::Users, top).await?;
    }
    let rows = with_tx!(db, |conn| {
        let mut rows = Vec::with_capacity(profiles.len());
        for p in &profiles {
            rows.push(conn.upsert_row(p).await?);
        }
        Ok(rows)
    });
    match rows {
        Ok(rows) => rows.into_iter().map(|row| user_written(Ok(row))).collect(),
        Err(fail) => Err(fail.into_store_error()),
    }
}
