//! A node: joining, leaving, and the [`Broker`] its service publishes through.
//!
//! **Invariant: a command is answered after its own event came back through the
//! outbox, or after `local_wait`.** [`Broker::publish`] queues the event to the
//! writer ([`Write`]) and waits for its delivery on this node; a new message's
//! event is written in the inserting transaction and waited for by its place in
//! the shard when the store reported it, else by id
//! ([`Broker::message_committed`]). So a client that sees its answer has also seen
//! the event on its own connection, as on a single node, and a stalled outbox
//! delays answers by at most `local_wait`.
//!
//! The node's tasks live in the child modules: `writer`, `reader`, `watch` (the
//! LISTEN session or the Redis subscription) and `keeper`.

mod keeper;
mod reader;
mod watch;
mod writer;

use crate::config::ClusterConfig;
use crate::meter::BrokerMeter;
use crate::state::{Pending, ReaderState};
use crate::wire::{encode, shard_of_envelope};
use async_trait::async_trait;
use chat_core::cluster::{Broker, Envelope, Local, Remote, WireOrigin};
use chat_core::{ChatService, MessageId, Origin, RoomId, UserId};
use chat_store::Outbox;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

/// Events waiting for the writer before publishers wait for room (back-pressure).
const WRITE_QUEUE: usize = 8192;
/// How long joining waits for the broker's first subscription before it reports the
/// node started anyway (not ready).
const BROKER_READY_WAIT: Duration = Duration::from_secs(5);
/// Batches from Redis waiting for the reader; when full, the reader reads the
/// outbox instead.
const PUSHED_QUEUE: usize = 1024;

/// A node of the cluster: the [`Broker`] of its service.
pub struct Cluster {
    node: i64,
    name: String,
    outbox: Outbox,
    config: ClusterConfig,
    service: Weak<ChatService>,
    writes: mpsc::Sender<Write>,
    /// Users whose presence on this node changed since the writer last looked.
    presence_dirty: Mutex<HashSet<UserId>>,
    presence_wake: Notify,
    reader_wake: Notify,
    /// Set with a wake-up that may be about events of other nodes (a NOTIFY, a new
    /// LISTEN session): the reader must read the outbox, not only hand over its own.
    outside: AtomicBool,
    state: Mutex<ReaderState>,
    /// Users announced online by the cluster.
    online: RwLock<HashSet<UserId>>,
    listening: AtomicBool,
    reading: AtomicBool,
    /// With Redis: the client and the channel name.
    redis: Option<(redis::Client, String)>,
    stop: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    meter: BrokerMeter,
}

pub(crate) struct Write {
    shard: usize,
    payload: String,
    local: Option<Local>,
    done: oneshot::Sender<()>,
}

/// Why a node could not join.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot join the cluster: {0}")]
    Store(chat_core::StoreError),
    #[error("cannot join the cluster: {0}")]
    Service(chat_core::ChatError),
    #[error("bad Redis URL {0}")]
    Redis(String),
}

impl Cluster {
    /// Join the cluster of the database behind `outbox` and make `service` one of
    /// its nodes: from now on its events go through the outbox.
    pub async fn join(
        outbox: Outbox,
        service: &Arc<ChatService>,
        config: ClusterConfig,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let (label, redis) = match &config.redis {
            Some(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| ClusterError::Redis(format!("{url}: {e}")))?;
                let channel = outbox.channel().await.map_err(ClusterError::Store)?;
                let host = url.rsplit('@').next().unwrap_or(url);
                (
                    format!("redis {}", host.trim_start_matches("redis://")),
                    Some((client, format!("chat-gateway:{channel}"))),
                )
            }
            None => ("postgres".to_string(), None),
        };
        let node = outbox
            .join(&config.name, &label, config.dead_after)
            .await
            .map_err(ClusterError::Store)?;
        let snapshot = outbox.snapshot().await.map_err(ClusterError::Store)?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let (pushed_tx, pushed) = mpsc::channel(PUSHED_QUEUE);
        let cluster = Arc::new(Cluster {
            node,
            name: config.name.clone(),
            outbox,
            config,
            service: Arc::downgrade(service),
            writes,
            presence_dirty: Mutex::new(HashSet::new()),
            presence_wake: Notify::new(),
            reader_wake: Notify::new(),
            outside: AtomicBool::new(true),
            state: Mutex::new(ReaderState::new(snapshot.cursors)),
            online: RwLock::new(snapshot.online.into_iter().collect()),
            listening: AtomicBool::new(false),
            reading: AtomicBool::new(true),
            redis,
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            meter: BrokerMeter::default(),
        });
        service
            .join_cluster(cluster.clone(), node)
            .map_err(ClusterError::Service)?;
        let tasks = vec![
            tokio::spawn(cluster.clone().writer(queue)),
            tokio::spawn(cluster.clone().reader(pushed)),
            match cluster.redis.is_some() {
                true => tokio::spawn(cluster.clone().subscriber(pushed_tx)),
                false => tokio::spawn(cluster.clone().listener()),
            },
            tokio::spawn(cluster.clone().keeper()),
        ];
        *cluster.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        // A node is ready when it starts: wait (bounded) for the broker's first
        // subscription, so `/readyz` does not fail in the moment after start. A
        // broker that does not answer in time is no error: readiness fails and the
        // listener keeps retrying.
        let deadline = tokio::time::Instant::now() + BROKER_READY_WAIT;
        while !cluster.is_healthy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !cluster.is_healthy() {
            tracing::warn!(broker = %label, "the broker is not connected yet: /readyz fails until it is");
        }
        tracing::info!(node, name = %cluster.name, broker = %label, "joined the cluster");
        Ok(cluster)
    }

    pub fn node_id(&self) -> i64 {
        self.node
    }

    /// The broker's counters (see [`crate::meter`]).
    pub fn meter(&self) -> &BrokerMeter {
        &self.meter
    }

    /// Events this node queued for the outbox writer and not yet written.
    pub fn pending_writes(&self) -> usize {
        self.writes.max_capacity() - self.writes.capacity()
    }

    /// Ready to serve: the LISTEN session is up and the last read succeeded.
    pub fn is_healthy(&self) -> bool {
        self.listening.load(Ordering::Relaxed) && self.reading.load(Ordering::Relaxed)
    }

    /// Leave the cluster cleanly (after this node's connections closed): its users
    /// go offline at once where this was their last node.
    pub async fn leave(&self) {
        // Presence changes still queued are moot: the node's presence goes whole.
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        match self.outbox.leave(self.node).await {
            Ok(()) => tracing::info!(node = self.node, "left the cluster"),
            Err(e) => {
                tracing::warn!(node = self.node, error = %e, "could not leave the cluster; other nodes will sweep this one")
            }
        }
    }

    async fn wait(&self, done: oneshot::Receiver<()>) {
        if tokio::time::timeout(self.config.local_wait, done)
            .await
            .is_err()
        {
            tracing::warn!(
                "an event did not come back through the outbox within {:?}; answering anyway",
                self.config.local_wait
            );
        }
    }

    async fn enqueue(&self, shard: usize, payload: String, local: Option<Local>) {
        let (done, answer) = oneshot::channel();
        let write = Write {
            shard,
            payload,
            local,
            done,
        };
        if self.writes.send(write).await.is_err() {
            tracing::warn!("the cluster writer has stopped; an event was not published");
            return;
        }
        self.wait(answer).await;
    }
}

#[async_trait]
impl Broker for Cluster {
    fn message_note(&self, room: RoomId, origin: Option<&Origin>) -> String {
        encode(&Envelope {
            room: Some(room),
            to: None,
            origin: origin.map(WireOrigin::of),
            what: Remote::MessageCreated { message: None },
        })
    }

    async fn message_committed(
        &self,
        message: MessageId,
        note_at: Option<(usize, i64)>,
        local: Local,
    ) {
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            local: Some(local),
            done: Some(done),
        };
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match note_at {
                // Known place: handed over when next in its shard, perhaps unread.
                Some((shard, seq)) if shard < state.taken.len() => {
                    state.expect(shard, seq, pending)
                }
                // Found by its id when the reader reads it.
                _ => state.expect_message(message.0, pending),
            }
        }
        self.reader_wake.notify_one();
        self.wait(answer).await;
    }

    async fn publish(&self, envelope: Envelope, local: Option<Local>) {
        let shard = shard_of_envelope(&envelope);
        self.enqueue(shard, encode(&envelope), local).await;
    }

    fn presence_changed(&self, user: UserId) {
        self.presence_dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user);
        self.presence_wake.notify_one();
    }

    fn is_online(&self, user: UserId) -> bool {
        self.online
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&user)
    }
}
