//! The writer: this node's events and presence changes into the outbox.
//!
//! **Invariant: an event is registered with the reader before the reader is woken
//! for it.** The writer appends a batch in one transaction, then records each
//! event's (shard, sequence) in the reader's state, then wakes the reader; a failed
//! write is retried with back-off, never dropped. Presence is sent as the hub's
//! state at the time of writing, so racing connects and disconnects end in the
//! state the hub really has.

use super::{Cluster, Write};
use crate::backoff::Backoff;
use crate::state::Pending;
use chat_core::UserId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events written per transaction at most.
const WRITE_BATCH: usize = 512;

impl Cluster {
    pub(super) async fn writer(self: Arc<Self>, mut queue: mpsc::Receiver<Write>) {
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
            let mut backoff = Backoff::new(Duration::from_millis(50));
            let placed = loop {
                match self
                    .outbox
                    .publish(self.node, &shards, &payloads, &ids, &online)
                    .await
                {
                    Ok(placed) => break placed,
                    Err(e) => {
                        tracing::warn!(error = %e, events = batch.len(), "cluster outbox write failed; retrying");
                        self.meter.error(crate::meter::BrokerOp::Write);
                        if !backoff.wait(&self.stop).await {
                            return;
                        }
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
}
