//! The cluster's outbox on PostgreSQL: the SQL side of `chat-cluster`.
//!
//! **Invariant: a reader that has seen event `n` of a shard has seen every event of
//! that shard below `n`.** Events are rows of `chat_outbox` keyed by (shard, seq);
//! a writer takes the shard's next numbers by updating its row in
//! `chat_outbox_shards`, and that row stays locked until the writer commits (see the
//! migration `2026-12-02-000001_cluster`). So the numbers of a shard commit in order
//! and without gaps (a rolled-back writer rolls its numbers back too), and a node
//! needs one cursor per shard and a query `seq > cursor`, never a scan for late
//! commits. A room always maps to the same shard, so its events keep one order on
//! every node; a message's event is written in the transaction that inserts the
//! message (`put_note`), under its room's lock, so that order is the id order the
//! running unread counts rely on (`chat_core::unread`).
//!
//! The outbox has a pool of its own, apart from the store's: a cluster's reads and
//! heartbeats must not queue behind a saturated request pool, nor take from it.

use crate::db::{side_pool, PgPool};
use crate::error::Fail;
use crate::target::{self, Target};
use crate::StoreSetupError;
use chat_core::{Message, StoreError, UserId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::time::Duration;

pub use crate::note::{shard_of, SHARDS};

/// Connections of the outbox pool: the reader, the writer and a spare for
/// heartbeats and sweeps.
const POOL_SIZE: u32 = 3;

/// One event read from the outbox.
#[derive(Debug)]
pub struct OutboxEvent {
    pub shard: usize,
    pub seq: i64,
    /// What the publishing node wrote (opaque here; `chat-cluster` decodes it).
    pub payload: String,
    /// For a new message's event: the message, as committed.
    pub message: Option<Message>,
    /// For a new message's event whose message could not be read (deleted since by
    /// an operator, say): its id.
    pub message_id: Option<i64>,
}

/// Where a node starts reading, and who is online when it does.
#[derive(Debug)]
pub struct Snapshot {
    /// The last sequence number of each shard.
    pub cursors: Vec<i64>,
    /// Users the cluster has announced as online.
    pub online: Vec<UserId>,
}

/// The cluster tables of one PostgreSQL database.
#[derive(Clone)]
pub struct Outbox {
    pool: PgPool,
    url: String,
    /// The NOTIFY after a commit that appended (see [`crate::note::CommitWake`]).
    wake: crate::note::CommitWake,
}

#[derive(QueryableByName)]
struct Placed {
    #[diesel(sql_type = Integer)]
    shard: i32,
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// Where [`Outbox::publish`] put what it appended.
#[derive(Debug, Default)]
pub struct Published {
    /// The given events' sequence numbers, in order.
    pub seqs: Vec<i64>,
    /// The presence events the call appended: (shard, sequence).
    pub flips: Vec<(usize, i64)>,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct ShardRow {
    #[diesel(sql_type = Integer)]
    shard: i32,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Integer)]
    shard: i32,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    message_id: Option<i64>,
    #[diesel(sql_type = Text)]
    payload: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("cluster outbox: {e}"))
}

fn micros_ago(d: Duration) -> i64 {
    crate::rows::now_micros() - d.as_micros().min(i64::MAX as u128) as i64
}

impl Outbox {
    /// The outbox of the PostgreSQL database at `url`; `None` for SQLite, which is
    /// single-node. The store (`crate::connect`) must have been opened first: it
    /// applies the migrations that create the tables.
    pub async fn open(url: &str) -> Result<Option<Outbox>, StoreSetupError> {
        let Target::Postgres(url) = target::parse(url)? else {
            return Ok(None);
        };
        let pool = side_pool(&url, POOL_SIZE, Duration::from_secs(5), true).await?;
        let wake = crate::note::CommitWake::start(pool.clone());
        Ok(Some(Outbox { pool, url, wake }))
    }

    async fn conn(
        &self,
    ) -> Result<
        bb8::PooledConnection<'_, AsyncDieselConnectionManager<AsyncPgConnection>>,
        StoreError,
    > {
        self.pool.get().await.map_err(db)
    }

    /// Add a node to the cluster; returns its id (never reused). `broker` names how
    /// the node learns of new events (`postgres`, or `redis <host>`); every live
    /// node must name the same, so a node whose broker differs from that of a node
    /// whose heartbeat is younger than `alive_within` is refused.
    pub async fn join(
        &self,
        name: &str,
        broker: &str,
        alive_within: Duration,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        let cutoff = micros_ago(alive_within);
        let broker = broker.to_owned();
        let name = name.to_owned();
        let joined = conn
            .transaction(async |conn| {
                let current = diesel::sql_query(
                    "SELECT value AS name FROM chat_cluster_config WHERE key = 'broker' FOR UPDATE",
                )
                .get_results::<Name>(conn)
                .await?
                .into_iter()
                .next()
                .map(|r: Name| r.name);
                let live = diesel::sql_query(
                    "SELECT count(*) AS n FROM chat_nodes WHERE heartbeat_at >= $1",
                )
                .bind::<BigInt, _>(cutoff)
                .get_result::<Count>(conn)
                .await?
                .n;
                if let Some(current) = current.filter(|c| *c != broker) {
                    if live > 0 {
                        return Ok(Err(current));
                    }
                }
                diesel::sql_query(
                    "INSERT INTO chat_cluster_config (key, value) VALUES ('broker', $1) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind::<Text, _>(&broker)
                .execute(conn)
                .await?;
                let row = diesel::sql_query(
                    "INSERT INTO chat_nodes (name, started_at, heartbeat_at) \
                     VALUES ($1, chat_now_micros(), chat_now_micros()) RETURNING id",
                )
                .bind::<Text, _>(&name)
                .get_result::<Id>(conn)
                .await?;
                Ok::<_, diesel::result::Error>(Ok(row.id))
            })
            .await
            .map_err(db)?;
        joined.map_err(|current| {
            StoreError::Conflict(format!(
                "the live nodes of this cluster use the broker \"{current}\" and this node was started with \"{broker}\": every node of a database must use the same --broker"
            ))
        })
    }

    /// The channel the outbox's wake-ups are sent on (NOTIFY, or the Redis channel
    /// name's suffix): one per database schema, so clusters sharing a server (tests)
    /// do not hear each other.
    pub async fn channel(&self) -> Result<String, StoreError> {
        let mut conn = self.conn().await?;
        Ok(
            diesel::sql_query("SELECT 'chat_outbox_' || current_schema() AS name")
                .get_result::<Name>(&mut conn)
                .await
                .map_err(db)?
                .name,
        )
    }

    /// Record that `node` is alive. `false` when its row is gone: another node found
    /// its heartbeat too old and took it out of the cluster.
    pub async fn heartbeat(&self, node: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(
            "UPDATE chat_nodes SET heartbeat_at = chat_now_micros() WHERE id = $1",
        )
        .bind::<BigInt, _>(node)
        .execute(&mut conn)
        .await
        .map_err(db)?;
        Ok(n == 1)
    }

    /// Put back the row of a node that was taken out while it was still alive (a
    /// stall longer than the heartbeat timeout), under the same id.
    pub async fn rejoin(&self, node: i64, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "INSERT INTO chat_nodes (id, name, started_at, heartbeat_at) \
             VALUES ($1, $2, chat_now_micros(), chat_now_micros()) ON CONFLICT (id) DO NOTHING",
        )
        .bind::<BigInt, _>(node)
        .bind::<Text, _>(name)
        .execute(&mut conn)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The shards' last sequence numbers and the online users, as of one instant.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut conn = self.conn().await?;
        conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db)?;
        let taken = async {
            let shards = diesel::sql_query("SELECT shard, last_seq FROM chat_outbox_shards")
                .load::<ShardRow>(&mut conn)
                .await?;
            let online = diesel::sql_query("SELECT user_id AS id FROM chat_presence_announced")
                .load::<Id>(&mut conn)
                .await?;
            Ok::<_, diesel::result::Error>((shards, online))
        }
        .await;
        let end = conn.batch_execute("COMMIT").await;
        let (shards, online) = taken.map_err(db)?;
        end.map_err(db)?;
        let mut cursors = vec![0; SHARDS];
        for row in shards {
            if let Some(c) = usize::try_from(row.shard)
                .ok()
                .and_then(|s| cursors.get_mut(s))
            {
                *c = row.last_seq;
            }
        }
        Ok(Snapshot {
            cursors,
            online: online.into_iter().map(|r| UserId(r.id)).collect(),
        })
    }

    /// Append events (`shards[i]`, `payloads[i]`) and apply presence changes of
    /// `node` (`users[i]` has a connection on it now: `online[i]`) in one
    /// transaction; a change that flips a user's cluster-wide state appends its
    /// presence event too. Returns the sequence numbers of the given events, and
    /// where the presence events went (shard, sequence).
    pub async fn publish(
        &self,
        node: i64,
        shards: &[i32],
        payloads: &[String],
        users: &[i64],
        online: &[bool],
    ) -> Result<Published, StoreError> {
        let mut conn = self.conn().await?;
        let rows =
            diesel::sql_query("SELECT shard, seq FROM chat_outbox_publish($1, $2, $3, $4, $5)")
                .bind::<BigInt, _>(node)
                .bind::<Array<Integer>, _>(shards)
                .bind::<Array<Text>, _>(payloads)
                .bind::<Array<BigInt>, _>(users)
                .bind::<Array<Bool>, _>(online)
                .load::<Placed>(&mut conn)
                .await
                .map_err(db)?;
        self.wake.poke();
        if rows.len() < shards.len() {
            return Err(db(format!(
                "{} events were given {} sequence numbers",
                shards.len(),
                rows.len()
            )));
        }
        let mut rows = rows.into_iter();
        let seqs = rows.by_ref().take(shards.len()).map(|r| r.seq).collect();
        let flips = rows.map(|r| (r.shard as usize, r.seq)).collect();
        Ok(Published { seqs, flips })
    }

    /// Events after the cursors (one per shard), by shard then sequence, at most
    /// `limit`; new messages come with their committed row, except those the caller
    /// holds already (`holds(shard, seq, message id)`: its own, delivered from
    /// memory), whose rows are not read.
    pub async fn read(
        &self,
        cursors: &[i64],
        limit: i64,
        holds: impl Fn(usize, i64, i64) -> bool,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut conn = self.conn().await?;
        let shards: Vec<i32> = (0..cursors.len() as i32).collect();
        let rows = diesel::sql_query(
            // One index range per shard (LATERAL). As a plain join PostgreSQL
            // chose a merge join that walked the whole outbox for every read: 45 ms
            // at 68,000 events, growing with the retention window.
            "SELECT o.shard, o.seq, o.message_id, o.payload \
               FROM unnest($1::INT[], $2::BIGINT[]) AS c (shard, cur) \
               CROSS JOIN LATERAL ( \
                 SELECT e.shard, e.seq, e.message_id, e.payload FROM chat_outbox e \
                  WHERE e.shard = c.shard AND e.seq > c.cur ORDER BY e.seq LIMIT $3) o \
              ORDER BY o.shard, o.seq LIMIT $3",
        )
        .bind::<Array<Integer>, _>(&shards)
        .bind::<Array<BigInt>, _>(cursors)
        .bind::<BigInt, _>(limit)
        .load::<EventRow>(&mut conn)
        .await
        .map_err(db)?;
        let ids: Vec<i64> = rows
            .iter()
            .filter_map(|r| Some((r.shard.max(0) as usize, r.seq, r.message_id?)))
            .filter(|&(shard, seq, id)| !holds(shard, seq, id))
            .map(|(_, _, id)| id)
            .collect();
        let mut messages: std::collections::HashMap<i64, Message> = if ids.is_empty() {
            Default::default()
        } else {
            crate::store::messages::by_id(&mut conn, &ids)
                .await
                .map_err(Fail::into_store_error)?
                .into_iter()
                .map(|m| (m.id.0, m))
                .collect()
        };
        Ok(rows
            .into_iter()
            .map(|r| OutboxEvent {
                shard: r.shard.max(0) as usize,
                seq: r.seq,
                message: r.message_id.and_then(|id| messages.remove(&id)),
                message_id: r.message_id,
                payload: r.payload,
            })
            .collect())
    }

    /// Take out of the cluster every node whose heartbeat is older than
    /// `dead_after` (their users go offline where that was their last node); one
    /// transaction per node. Returns the ids taken out.
    pub async fn sweep(&self, dead_after: Duration) -> Result<Vec<i64>, StoreError> {
        let mut swept = Vec::new();
        let mut conn = self.conn().await?;
        loop {
            let cutoff = micros_ago(dead_after);
            let taken = conn
                .transaction(async |conn| {
                    let dead = diesel::sql_query(
                        "SELECT id FROM chat_nodes WHERE heartbeat_at < $1 \
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                    )
                    .bind::<BigInt, _>(cutoff)
                    .get_results::<Id>(conn)
                    .await?;
                    let Some(node) = dead.into_iter().next().map(|r: Id| r.id) else {
                        return Ok::<_, diesel::result::Error>(None);
                    };
                    diesel::sql_query("SELECT chat_node_leave($1)")
                        .bind::<BigInt, _>(node)
                        .execute(conn)
                        .await?;
                    Ok(Some(node))
                })
                .await
                .map_err(db)?;
            match taken {
                Some(node) => swept.push(node),
                None => break,
            }
        }
        drop(conn);
        if !swept.is_empty() {
            // Their users' offline events: at once, not behind the coalescing task.
            crate::note::notify(&self.pool, "").await.map_err(db)?;
        }
        Ok(swept)
    }

    /// A clean shutdown: `node`'s users go offline where that was their last node,
    /// and its row goes.
    pub async fn leave(&self, node: i64) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT chat_node_leave($1)")
            .bind::<BigInt, _>(node)
            .execute(&mut conn)
            .await
            .map_err(db)?;
        drop(conn);
        // The process is about to exit: wake the others now, not from a task.
        crate::note::notify(&self.pool, "").await.map_err(db)
    }

    /// Delete events older than `older_than`, a batch at a time (so no long lock or
    /// huge transaction); returns how many went.
    pub async fn prune(&self, older_than: Duration) -> Result<u64, StoreError> {
        const BATCH: i64 = 5_000;
        let mut conn = self.conn().await?;
        let cutoff = micros_ago(older_than);
        let mut total = 0;
        loop {
            let n = diesel::sql_query(
                "WITH old AS (SELECT shard, seq FROM chat_outbox WHERE created_at < $1 LIMIT $2), \
                 gone AS (DELETE FROM chat_outbox o USING old \
                          WHERE o.shard = old.shard AND o.seq = old.seq RETURNING 1) \
                 SELECT count(*) AS n FROM gone",
            )
            .bind::<BigInt, _>(cutoff)
            .bind::<BigInt, _>(BATCH)
            .get_result::<Count>(&mut conn)
            .await
            .map_err(db)?
            .n;
            total += n.max(0) as u64;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    /// A connection that listens for the outbox's wake-ups (its own, outside the
    /// pool: a LISTEN belongs to one session).
    pub async fn listen(&self) -> Result<Listener, StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.url).await.map_err(db)?;
        let channel = diesel::sql_query("SELECT 'chat_outbox_' || current_schema() AS name")
            .get_result::<Name>(&mut conn)
            .await
            .map_err(db)?
            .name;
        conn.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
            .await
            .map_err(db)?;
        Ok(Listener { conn })
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// A LISTEN session on the outbox's channel.
pub struct Listener {
    conn: AsyncPgConnection,
}

impl Listener {
    /// Wait for the next wake-up; returns its payload (the writing node's id, or
    /// empty). An error means the session is gone (the server restarted, the backend
    /// was terminated): listen again, then read, since wake-ups sent meanwhile are
    /// lost.
    pub async fn next(&mut self) -> Result<String, StoreError> {
        use futures_util::StreamExt;
        let mut stream = std::pin::pin!(self.conn.notifications_stream());
        match stream.next().await {
            Some(Ok(n)) => Ok(n.payload),
            Some(Err(e)) => Err(db(e)),
            None => Err(db("the LISTEN connection closed")),
        }
    }

    /// The process id of the session's backend (for `pg_terminate_backend` in tests
    /// of reconnection).
    pub async fn backend_pid(&mut self) -> Result<i32, StoreError> {
        #[derive(QueryableByName)]
        struct Pid {
            #[diesel(sql_type = Integer)]
            pid: i32,
        }
        Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(&mut self.conn)
            .await
            .map_err(db)?
            .pid)
    }
}
