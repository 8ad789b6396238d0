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
        }
    }
}

/// Events read per query.
const READ_BATCH: i64 = 1000;
/// Events written per transaction at most.
const WRITE_BATCH: usize = 512;
/// Events waiting for the writer before publishers wait for room (back-pressure).
const WRITE_QUEUE: usize = 8192;
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
    stop: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct Write {
    shard: usize,
    payload: String,
    local: Option<Local>,
    done: oneshot::Sender<()>,
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
        let node = outbox
            .join(&config.name)
            .await
            .map_err(ClusterError::Store)?;
        let snapshot = outbox.snapshot().await.map_err(ClusterError::Store)?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
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
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        service
            .join_cluster(cluster.clone(), node)
            .map_err(ClusterError::Service)?;
        let tasks = vec![
            tokio::spawn(cluster.clone().writer(queue)),
            tokio::spawn(cluster.clone().reader()),
            tokio::spawn(cluster.clone().listener()),
            tokio::spawn(cluster.clone().keeper()),
        ];
        *cluster.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        tracing::info!(node, name = %cluster.name, "joined the cluster");
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
            let seqs = loop {
                match self
                    .outbox
                    .publish(self.node, &shards, &payloads, &ids, &online)
                    .await
                {
                    Ok(seqs) => break seqs,
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
                for (w, seq) in batch.drain(..).zip(seqs) {
                    state.expect(
                        w.shard,
                        seq,
                        Pending {
                            local: w.local,
                            done: Some(w.done),
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

    async fn reader(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.read_all().await {
                Ok(()) => {
                    self.reading.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(50);
                    tokio::select! {
                        _ = self.reader_wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll) => {}
                        _ = self.stop.cancelled() => return,
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

    /// Deliver everything beyond the cursors.
    async fn read_all(&self) -> Result<(), chat_core::StoreError> {
        loop {
            let cursors = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .delivered
                .clone();
            let events = self.outbox.read(&cursors, READ_BATCH).await?;
            let full = events.len() as i64 >= READ_BATCH;
            for ev in events {
                self.deliver(ev).await;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn deliver(&self, ev: OutboxEvent) {
        let (shard, seq) = (ev.shard, ev.seq);
        let pending = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let expected = state.delivered[shard] + 1;
            if seq < expected {
                // Read twice (a read raced the previous one's delivery): done already.
                return;
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
        let Some(service) = self.service.upgrade() else {
            return;
        };
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
