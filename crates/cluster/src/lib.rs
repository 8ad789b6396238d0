//! Several gateway nodes on one PostgreSQL behave as one server.
//!
//! **Invariant: every node delivers every event, its own included, in the order of
//! its outbox shard, exactly once.** Events are appended to the outbox
//! (`chat_store::outbox`), whose shards number their events without gaps; each node
//! keeps one cursor per shard and delivers what lies beyond it, in order. A NOTIFY
//! only wakes the readers (its payload is empty, so its 8000-byte limit never
//! matters); a fallback poll catches a wake-up lost with a dropped LISTEN session,
//! and a reconnected session is followed by a read, so nothing is missed while it
//! was down. A node's own events are delivered from memory ([`Local`]) when they
//! come up in the outbox, not decoded again, and the command that caused one is
//! answered only after that, as on a single node (see `chat_core::cluster`).
//!
//! The tasks of a node:
//! * the **writer** appends events and presence changes in batches (one call, one
//!   transaction per batch) and tells the reader what it wrote;
//! * the **reader** reads beyond its cursors when woken (NOTIFY, its own writer, a
//!   message committed here, the poll) and delivers;
//! * the **listener** holds the LISTEN session and reconnects it with back-off;
//! * the **keeper** heartbeats, sweeps nodes whose heartbeat stopped (their users go
//!   offline, announced by the database in the same transaction) and prunes old
//!   events.
//!
//! **With Redis** (`--broker redis://…`) the outbox stays the source of truth and
//! NOTIFY is off: a node that read its own new events from the outbox publishes
//! them, whole, on a Redis channel, and the other nodes deliver what arrives there
//! when it is next in its shard. An event that arrives after a gap (Redis dropped
//! one, a subscriber reconnected, an event was written by another node's sweep)
//! makes the node read the outbox instead, and the fallback poll reads it anyway;
//! so Redis only makes delivery faster and lighter on PostgreSQL, never lossy.
//!
//! Presence: the database keeps which node has a connection of which user, and the
//! set of users last announced online; a presence event is appended exactly when
//! the cluster-wide state of a user flips, under a per-user lock, so presence events
//! of a user are in the order of the flips. A node reports a user as "changed" and
//! the writer sends the hub's state at the time it writes, so a connect and a
//! disconnect racing each other end in the state the hub really has.

use async_trait::async_trait;
use chat_core::cluster::{Broker, Envelope, Local, Remote, WireOrigin};
use chat_core::{ChatService, MessageId, Origin, RoomId, UserId};
use chat_store::outbox::shard_of;
use chat_store::{Outbox, OutboxEvent};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

/// Timings of a node.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Shown in `chat_nodes` (host and port, say).
    pub name: String,
    pub heartbeat: Duration,
    /// A node whose heartbeat is older than this is taken out of the cluster.
    pub dead_after: Duration,
    /// Read the outbox at least this often, woken or not.
    pub poll: Duration,
    /// Events older than this are pruned.
    pub retention: Duration,
    /// The longest a command waits for its own event to come back before it is
    /// answered anyway (the event is committed and will be delivered).
    pub local_wait: Duration,
    /// `redis://HOST:PORT`: tell the other nodes of new events over Redis pub/sub
    /// instead of NOTIFY (see the module docs).
    pub redis: Option<String>,
}

impl ClusterConfig {
    pub fn named(name: impl Into<String>) -> Self {
        ClusterConfig {
            name: name.into(),
            heartbeat: Duration::from_millis(1500),
            dead_after: Duration::from_secs(6),
            poll: Duration::from_secs(1),
            retention: Duration::from_secs(600),
            local_wait: Duration::from_secs(5),
            redis: None,
        }
    }
}

/// Events read per query.
const READ_BATCH: i64 = 1000;
/// Events written per transaction at most.
const WRITE_BATCH: usize = 512;
/// Events waiting for the writer before publishers wait for room (back-pressure).
const WRITE_QUEUE: usize = 8192;
/// How long joining waits for the broker's first subscription before it reports the
/// node started anyway (not ready).
const BROKER_READY_WAIT: Duration = Duration::from_secs(5);
/// Batches from Redis waiting for the reader; when full, the reader reads the
/// outbox instead.
const PUSHED_QUEUE: usize = 1024;
/// Messages whose event this node already delivered, remembered for a command
/// that asks after its message's event once it was delivered.
const RECENT_MESSAGES: usize = 16_384;

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
    state: Mutex<ReaderState>,
    /// Users announced online by the cluster.
    online: RwLock<HashSet<UserId>>,
    listening: AtomicBool,
    reading: AtomicBool,
    /// With Redis: the client and the channel name.
    redis: Option<(redis::Client, String)>,
    stop: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct Write {
    shard: usize,
    payload: String,
    local: Option<Local>,
    done: oneshot::Sender<()>,
}

/// An event as it travels on Redis: the outbox row, with a new message's row.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    s: usize,
    q: i64,
    p: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<chat_core::Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<i64>,
}

impl Wire {
    fn of(ev: &OutboxEvent) -> Wire {
        Wire {
            s: ev.shard,
            q: ev.seq,
            p: ev.payload.clone(),
            m: ev.message.clone(),
            i: ev.message_id,
        }
    }

    /// `None` for a shard out of range (not written by a node of this version).
    fn into_event(self) -> Option<OutboxEvent> {
        (self.s < chat_store::outbox::SHARDS).then_some(OutboxEvent {
            shard: self.s,
            seq: self.q,
            payload: self.p,
            message: self.m,
            message_id: self.i,
        })
    }
}

/// An event of this node waiting for its turn in the outbox.
struct Pending {
    local: Option<Local>,
    done: Option<oneshot::Sender<()>>,
}

struct ReaderState {
    /// Per shard: the last sequence number the reader has taken up.
    taken: Vec<i64>,
    /// Per shard: the last sequence number delivered.
    delivered: Vec<i64>,
    by_seq: HashMap<(usize, i64), Pending>,
    by_message: HashMap<i64, Pending>,
    /// Recently taken message events: message id → (shard, seq).
    recent: HashMap<i64, (usize, i64)>,
    recent_order: VecDeque<i64>,
    /// Commands waiting for an event the reader has taken up but not yet delivered.
    waiters: Vec<(usize, i64, oneshot::Sender<()>)>,
}

impl ReaderState {
    fn new(cursors: Vec<i64>) -> Self {
        ReaderState {
            taken: cursors.clone(),
            delivered: cursors,
            by_seq: HashMap::new(),
            by_message: HashMap::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            waiters: Vec::new(),
        }
    }

    /// Register `pending` for the event at (shard, seq) unless the reader took it up
    /// already (then only wait for its delivery).
    fn expect(&mut self, shard: usize, seq: i64, pending: Pending) {
        if self.taken[shard] < seq {
            self.by_seq.insert((shard, seq), pending);
        } else {
            self.wait_delivered(shard, seq, pending);
        }
    }

    fn expect_message(&mut self, message: i64, pending: Pending) {
        match self.recent.get(&message).copied() {
            Some((shard, seq)) => self.wait_delivered(shard, seq, pending),
            None => {
                self.by_message.insert(message, pending);
            }
        }
    }

    fn wait_delivered(&mut self, shard: usize, seq: i64, pending: Pending) {
        let Some(done) = pending.done else { return };
        if self.delivered[shard] >= seq {
            let _ = done.send(());
        } else {
            self.waiters.push((shard, seq, done));
        }
    }

    /// The reader takes up an event: what this node kept of it, if anything.
    fn take(&mut self, ev: &OutboxEvent) -> Option<Pending> {
        self.taken[ev.shard] = ev.seq;
        let mut pending = self.by_seq.remove(&(ev.shard, ev.seq));
        if let Some(id) = ev.message_id {
            if let Some(p) = self.by_message.remove(&id) {
                pending = Some(p);
            }
            self.recent.insert(id, (ev.shard, ev.seq));
            self.recent_order.push_back(id);
            if self.recent_order.len() > RECENT_MESSAGES {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
        pending
    }

    fn delivered(&mut self, shard: usize, seq: i64) {
        self.delivered[shard] = seq;
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].0 == shard && self.waiters[i].1 <= seq {
                let (_, _, done) = self.waiters.swap_remove(i);
                let _ = done.send(());
            } else {
                i += 1;
            }
        }
    }
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

fn shard_of_envelope(env: &Envelope) -> usize {
    if let Some(room) = env.room {
        return shard_of(room.0);
    }
    let user = match &env.what {
        Remote::Presence { user, .. }
        | Remote::Attention { user, .. }
        | Remote::Typing { user, .. } => Some(user.id),
        Remote::PresenceOf { user, .. } => Some(*user),
        _ => None,
    };
    user.map_or(0, |u| shard_of(u.0))
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
            state: Mutex::new(ReaderState::new(snapshot.cursors)),
            online: RwLock::new(snapshot.online.into_iter().collect()),
            listening: AtomicBool::new(false),
            reading: AtomicBool::new(true),
            redis,
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
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

    fn encode(env: &Envelope) -> String {
        serde_json::to_string(env).unwrap_or_else(|e| {
            // Only plain data is serialized; a failure is a bug, and an event lost.
            tracing::error!(error = %e, "an event could not be encoded");
            String::from("{\"what\":{\"k\":\"ProfilesChanged\"}}")
        })
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

    // ------------------------------------------------------------------ writer

    async fn writer(self: Arc<Self>, mut queue: mpsc::Receiver<Write>) {
        let mut batch: Vec<Write> = Vec::with_capacity(WRITE_BATCH);
        loop {
            if batch.is_empty() {
                tokio::select! {
                    got = queue.recv_many(&mut batch, WRITE_BATCH) => if got == 0 { return },
                    _ = self.presence_wake.notified() => {}
                    _ = self.stop.cancelled() => return,
                }
            }
            let users: Vec<UserId> = {
                let mut dirty = self
                    .presence_dirty
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                dirty.drain().collect()
            };
            let Some(service) = self.service.upgrade() else {
                return;
            };
            let online: Vec<bool> = users.iter().map(|u| service.hub().is_online(*u)).collect();
            drop(service);
            let shards: Vec<i32> = batch.iter().map(|w| w.shard as i32).collect();
            let payloads: Vec<String> = batch.iter().map(|w| w.payload.clone()).collect();
            let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
            let mut backoff = Duration::from_millis(50);
            let placed = loop {
                match self
                    .outbox
                    .publish(self.node, &shards, &payloads, &ids, &online)
                    .await
                {
                    Ok(placed) => break placed,
                    Err(e) => {
                        tracing::warn!(error = %e, events = batch.len(), "cluster outbox write failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = self.stop.cancelled() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            };
            {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                for (w, seq) in batch.drain(..).zip(placed.seqs) {
                    state.expect(
                        w.shard,
                        seq,
                        Pending {
                            local: w.local,
                            done: Some(w.done),
                        },
                    );
                }
                // The presence events the database appended for this node are its
                // own too: with Redis, it passes them on like the rest.
                for (shard, seq) in placed.flips {
                    state.expect(
                        shard,
                        seq,
                        Pending {
                            local: None,
                            done: None,
                        },
                    );
                }
            }
            self.reader_wake.notify_one();
            // Whatever queued meanwhile, without waiting.
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
        }
    }

    // ------------------------------------------------------------------ reader

    async fn reader(self: Arc<Self>, mut pushed: mpsc::Receiver<Vec<OutboxEvent>>) {
        let mut backoff = Duration::from_millis(50);
        let mut publisher = None;
        loop {
            match self.read_all(&mut publisher).await {
                Ok(()) => {
                    self.reading.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(50);
                    let poll = tokio::time::sleep(self.config.poll);
                    tokio::pin!(poll);
                    // Deliver what Redis brings until something calls for a read.
                    loop {
                        tokio::select! {
                            _ = self.reader_wake.notified() => break,
                            _ = &mut poll => break,
                            batch = pushed.recv() => match batch {
                                Some(batch) => if self.take_pushed(batch).await { break },
                                None => break,
                            },
                            _ = self.stop.cancelled() => return,
                        }
                    }
                }
                Err(e) => {
                    self.reading.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cluster outbox read failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Deliver events pushed over Redis that are next in their shard; true when one
    /// came after a gap, so the outbox must be read.
    async fn take_pushed(&self, batch: Vec<OutboxEvent>) -> bool {
        let mut gap = false;
        for ev in batch {
            let expected = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .delivered[ev.shard]
                + 1;
            if ev.seq < expected {
                continue;
            }
            if ev.seq > expected {
                gap = true;
                continue;
            }
            self.deliver(ev).await;
        }
        gap
    }

    /// Deliver everything beyond the cursors; with Redis, publish this node's own
    /// events there.
    async fn read_all(
        &self,
        publisher: &mut Option<redis::aio::MultiplexedConnection>,
    ) -> Result<(), chat_core::StoreError> {
        loop {
            let cursors = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .delivered
                .clone();
            let events = self.outbox.read(&cursors, READ_BATCH).await?;
            let full = events.len() as i64 >= READ_BATCH;
            let mut own = Vec::new();
            for ev in events {
                if let Some(wire) = self.deliver(ev).await {
                    own.push(wire);
                }
            }
            if !own.is_empty() {
                self.push(publisher, &own).await;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Publish this node's events on Redis. A failure costs the other nodes only
    /// time: they find the events in the outbox at their next read.
    async fn push(&self, publisher: &mut Option<redis::aio::MultiplexedConnection>, own: &[Wire]) {
        let Some((client, channel)) = &self.redis else {
            return;
        };
        if publisher.is_none() {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => *publisher = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect to Redis to publish; the other nodes will read the outbox");
                    return;
                }
            }
        }
        let Some(conn) = publisher.as_mut() else {
            return;
        };
        let body = match serde_json::to_vec(own) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cluster events could not be encoded for Redis");
                return;
            }
        };
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(body)
            .query_async(conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "publishing on Redis failed; the other nodes will read the outbox");
            *publisher = None;
        }
    }

    /// Deliver one event if it is next in its shard. Returns it as published on
    /// Redis when it was this node's own and Redis is the broker.
    async fn deliver(&self, ev: OutboxEvent) -> Option<Wire> {
        let (shard, seq) = (ev.shard, ev.seq);
        let pending = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let expected = state.delivered[shard] + 1;
            if seq < expected {
                // Read twice (a read raced the previous one's delivery): done already.
                return None;
            }
            if seq > expected {
                tracing::error!(
                    shard,
                    missing = seq - expected,
                    "cluster events were pruned before this node read them (it was stalled longer than the retention); they are skipped"
                );
            }
            state.take(&ev)
        };
        let wire = match (&pending, &self.redis) {
            (Some(_), Some(_)) => Some(Wire::of(&ev)),
            _ => None,
        };
        let service = self.service.upgrade()?;
        let done = match pending {
            Some(Pending {
                local: Some(local),
                done,
            }) => {
                service.hub().publish(&local.recipients, local.event);
                done
            }
            other => {
                self.deliver_decoded(&service, ev).await;
                other.and_then(|p| p.done)
            }
        };
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .delivered(shard, seq);
        if let Some(done) = done {
            let _ = done.send(());
        }
        wire
    }

    async fn deliver_decoded(&self, service: &ChatService, ev: OutboxEvent) {
        let envelope: Envelope = match serde_json::from_str(&ev.payload) {
            Ok(env) => env,
            Err(e) => {
                tracing::error!(shard = ev.shard, seq = ev.seq, error = %e, "an undecodable cluster event is skipped");
                return;
            }
        };
        if let Remote::PresenceOf { user, online } = &envelope.what {
            let mut set = self.online.write().unwrap_or_else(|e| e.into_inner());
            if *online {
                set.insert(*user);
            } else {
                set.remove(user);
            }
        }
        if let Err(e) = service.deliver(envelope, ev.message).await {
            tracing::warn!(shard = ev.shard, seq = ev.seq, error = %e, "a cluster event could not be delivered here");
        }
    }

    // ------------------------------------------------------------------ listener

    async fn listener(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.outbox.listen().await {
                Ok(mut session) => {
                    backoff = Duration::from_millis(100);
                    self.listening.store(true, Ordering::Relaxed);
                    // Wake-ups sent while there was no session are lost: read now.
                    self.reader_wake.notify_one();
                    loop {
                        tokio::select! {
                            next = session.next() => match next {
                                Ok(()) => self.reader_wake.notify_one(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "cluster LISTEN session lost; reconnecting");
                                    break;
                                }
                            },
                            _ = self.stop.cancelled() => return,
                        }
                    }
                    self.listening.store(false, Ordering::Relaxed);
                }
                Err(e) => {
                    self.listening.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cannot LISTEN for cluster events; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    // ------------------------------------------------------------------ Redis

    /// Holds the Redis subscription and reconnects it with back-off; what arrives
    /// goes to the reader. A reconnect is followed by a read of the outbox.
    async fn subscriber(self: Arc<Self>, pushed: mpsc::Sender<Vec<OutboxEvent>>) {
        use futures_util::StreamExt;
        let Some((client, channel)) = self.redis.clone() else {
            return;
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let subscribed = async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(ps)
            }
            .await;
            match subscribed {
                Ok(mut ps) => {
                    backoff = Duration::from_millis(100);
                    self.listening.store(true, Ordering::Relaxed);
                    self.reader_wake.notify_one();
                    let mut messages = ps.on_message();
                    loop {
                        tokio::select! {
                            msg = messages.next() => match msg {
                                Some(msg) => match serde_json::from_slice::<Vec<Wire>>(msg.get_payload_bytes()) {
                                    Ok(wires) => {
                                        let count = wires.len();
                                        let batch: Vec<OutboxEvent> = wires.into_iter().filter_map(Wire::into_event).collect();
                                        if batch.len() != count || pushed.try_send(batch).is_err() {
                                            // The reader is behind: it reads the outbox instead.
                                            self.reader_wake.notify_one();
                                        }
                                    }
                                    Err(e) => tracing::warn!(error = %e, "an undecodable message on the cluster's Redis channel"),
                                },
                                None => {
                                    tracing::warn!("the Redis subscription was lost; reconnecting");
                                    break;
                                }
                            },
                            _ = self.stop.cancelled() => return,
                        }
                    }
                    self.listening.store(false, Ordering::Relaxed);
                }
                Err(e) => {
                    self.listening.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cannot subscribe on Redis; retrying (events still arrive by the outbox poll)");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    // ------------------------------------------------------------------ keeper

    async fn keeper(self: Arc<Self>) {
        let mut beat = tokio::time::interval(self.config.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let prune_every = (self.config.retention / 10).max(Duration::from_secs(1));
        let mut last_prune = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = beat.tick() => {}
                _ = self.stop.cancelled() => return,
            }
            match self.outbox.heartbeat(self.node).await {
                Ok(true) => {}
                Ok(false) => self.rejoin().await,
                Err(e) => tracing::warn!(error = %e, "cluster heartbeat failed"),
            }
            match self.outbox.sweep(self.config.dead_after).await {
                Ok(swept) => {
                    for node in swept.into_iter().filter(|n| *n != self.node) {
                        tracing::warn!(
                            node,
                            "a node stopped heartbeating; its users' presence was ended"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cluster sweep failed"),
            }
            if last_prune.elapsed() >= prune_every {
                last_prune = tokio::time::Instant::now();
                match self.outbox.prune(self.config.retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(events = n, "pruned old cluster events"),
                    Err(e) => tracing::warn!(error = %e, "cluster prune failed"),
                }
            }
        }
    }

    /// This node was taken out while alive (it stalled longer than `dead_after`):
    /// come back under the same id and announce its users again.
    async fn rejoin(&self) {
        tracing::warn!(
            node = self.node,
            "this node was taken out of the cluster (a stall longer than the heartbeat timeout); rejoining"
        );
        if let Err(e) = self.outbox.rejoin(self.node, &self.name).await {
            tracing::warn!(error = %e, "could not rejoin the cluster");
            return;
        }
        if let Some(service) = self.service.upgrade() {
            let users = service.hub().online_users();
            self.presence_dirty
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(users);
            self.presence_wake.notify_one();
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
        Self::encode(&Envelope {
            room: Some(room),
            to: None,
            origin: origin.map(WireOrigin::of),
            what: Remote::MessageCreated { message: None },
        })
    }

    async fn message_committed(&self, message: MessageId, local: Local) {
        let (done, answer) = oneshot::channel();
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expect_message(
                message.0,
                Pending {
                    local: Some(local),
                    done: Some(done),
                },
            );
        self.reader_wake.notify_one();
        self.wait(answer).await;
    }

    async fn publish(&self, envelope: Envelope, local: Option<Local>) {
        let shard = shard_of_envelope(&envelope);
        self.enqueue(shard, Self::encode(&envelope), local).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use chat_store::outbox::SHARDS;

    fn ev(shard: usize, seq: i64, message: Option<i64>) -> OutboxEvent {
        OutboxEvent {
            shard,
            seq,
            payload: String::new(),
            message: None,
            message_id: message,
        }
    }

    fn pending() -> (Pending, oneshot::Receiver<()>) {
        let (done, answer) = oneshot::channel();
        (
            Pending {
                local: None,
                done: Some(done),
            },
            answer,
        )
    }

    #[test]
    fn a_command_registered_late_still_waits_for_delivery() {
        let mut st = ReaderState::new(vec![0; SHARDS]);
        // The reader takes event 1 of shard 3 before the writer registers it.
        assert!(st.take(&ev(3, 1, None)).is_none());
        let (p, mut answer) = pending();
        st.expect(3, 1, p);
        assert!(answer.try_recv().is_err(), "taken but not delivered yet");
        st.delivered(3, 1);
        assert!(answer.try_recv().is_ok());
        // Registered before the reader comes: handed over on take.
        let (p, _answer) = pending();
        st.expect(3, 2, p);
        assert!(st.take(&ev(3, 2, None)).is_some());
    }

    #[test]
    fn message_events_are_found_by_message_id_either_way() {
        let mut st = ReaderState::new(vec![0; SHARDS]);
        let (p, _a) = pending();
        st.expect_message(10, p);
        assert!(st.take(&ev(2, 1, Some(10))).is_some());
        assert!(st.take(&ev(2, 2, Some(11))).is_none());
        st.delivered(2, 2);
        let (p, mut answer) = pending();
        st.expect_message(11, p);
        assert!(
            answer.try_recv().is_ok(),
            "delivered before it was asked for"
        );
    }
}
