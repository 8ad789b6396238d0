//! The reader: events beyond the cursors, delivered in shard order.
//!
//! **Invariant: within a shard, the reader delivers each event once and in order.**
//! An event is delivered only when its sequence number is the next after the
//! shard's last delivered one ([`Cluster::deliver`]); one read twice is skipped,
//! and one pushed over Redis after a gap sends the reader to the outbox instead.
//! A node's own events are handed over from memory, others are decoded.
//!
//! Without Redis, a wake-up from this node alone (its writer, a message committed
//! here) first hands over the node's own events that are next in their shards,
//! and reads the outbox only if something it waits for is still missing; a node
//! alone in its cluster so answers a command without reading back what it just
//! wrote. A wake-up that may concern other nodes (their NOTIFY, a new LISTEN
//! session) and the poll always read. (With Redis the node reads its own events
//! back, because it publishes them from the rows.)

use super::Cluster;
use crate::backoff::Backoff;
use crate::meter::BrokerOp;
use crate::state::Pending;
use crate::wire::Wire;
use chat_core::cluster::{Envelope, Remote};
use chat_core::ChatService;
use chat_store::OutboxEvent;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events read per query.
const READ_BATCH: i64 = 1000;

impl Cluster {
    pub(super) async fn reader(self: Arc<Self>, mut pushed: mpsc::Receiver<Vec<OutboxEvent>>) {
        let mut backoff = Backoff::new(Duration::from_millis(50));
        let mut publisher = None;
        loop {
            match self.read_all(&mut publisher).await {
                Ok(()) => {
                    self.reading.store(true, Ordering::Relaxed);
                    backoff.reset();
                    let poll = tokio::time::sleep(self.config.poll);
                    tokio::pin!(poll);
                    // Deliver what Redis brings until something calls for a read.
                    loop {
                        tokio::select! {
                            _ = self.reader_wake.notified() => {
                                let own_only = self.redis.is_none()
                                    && !self.outside.swap(false, Ordering::AcqRel);
                                if own_only && !self.deliver_known().await {
                                    continue;
                                }
                                break;
                            }
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
                    self.meter.error(BrokerOp::Read);
                    if !backoff.wait(&self.stop).await {
                        return;
                    }
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
            // This node's messages waiting for their turn are delivered from memory:
            // their rows need not be read back. (Only the reader takes entries out
            // of `by_seq` and `by_message`, so each is still there when its event
            // comes up.) With Redis the rows are read anyway: they travel to the
            // other nodes.
            let (cursors, known_at, known_ids) = {
                let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let (at, ids): (HashSet<(usize, i64)>, HashSet<i64>) = match self.redis {
                    Some(_) => Default::default(),
                    None => (
                        state
                            .by_seq
                            .iter()
                            .filter(|(_, p)| p.local.is_some())
                            .map(|(k, _)| *k)
                            .collect(),
                        state.by_message.keys().copied().collect(),
                    ),
                };
                (state.delivered.clone(), at, ids)
            };
            let holds =
                |shard, seq, id| known_at.contains(&(shard, seq)) || known_ids.contains(&id);
            let events = self.outbox.read(&cursors, READ_BATCH, holds).await?;
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
                    self.meter.error(BrokerOp::Publish);
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
            self.meter.error(BrokerOp::Publish);
            *publisher = None;
        }
    }

    /// Hand over this node's own events that are next in their shards, from memory
    /// and without a read; true when an event it waits for still has to be read
    /// (another node's event comes first in its shard, or one was registered by
    /// message id only).
    async fn deliver_known(&self) -> bool {
        loop {
            let next = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take_next_known();
            let Some((shard, seq, local, done)) = next else {
                break;
            };
            let Some(service) = self.service.upgrade() else {
                return false;
            };
            self.meter.lag.observe(local.event.published_at().elapsed());
            service.hub().publish(&local.recipients, local.event);
            self.meter.events_read.fetch_add(1, Ordering::Relaxed);
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .delivered(shard, seq);
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .awaits_read()
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
                self.meter.lag.observe(local.event.published_at().elapsed());
                service.hub().publish(&local.recipients, local.event);
                done
            }
            other => {
                self.deliver_decoded(&service, ev).await;
                other.and_then(|p| p.done)
            }
        };
        self.meter.events_read.fetch_add(1, Ordering::Relaxed);
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
}
