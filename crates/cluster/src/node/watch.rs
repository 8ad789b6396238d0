//! What wakes the reader from outside: the LISTEN session, or the Redis
//! subscription.
//!
//! **Invariant: after any gap in the session, the reader reads the outbox.** Each
//! (re)connected session wakes the reader at once, because wake-ups sent while
//! there was none are lost; the session is held with back-off while it fails, and
//! `listening` tells readiness whether it is up.

use super::Cluster;
use crate::backoff::Backoff;
use crate::meter::BrokerOp;
use crate::wire::Wire;
use chat_store::OutboxEvent;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

impl Cluster {
    /// A session is up: ready again, and read what was sent while there was none.
    fn session_up(&self, backoff: &mut Backoff) {
        backoff.reset();
        self.listening.store(true, Ordering::Relaxed);
        self.outside.store(true, Ordering::Release);
        self.reader_wake.notify_one();
    }

    /// The session is down or could not be had: not ready, and wait before the next
    /// try; `false` when the node stopped meanwhile.
    async fn session_down(&self, backoff: &mut Backoff) -> bool {
        self.listening.store(false, Ordering::Relaxed);
        backoff.wait(&self.stop).await
    }

    /// Holds the LISTEN session and reconnects it with back-off; each notification
    /// wakes the reader.
    pub(super) async fn listener(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_millis(100));
        let own = self.node.to_string();
        loop {
            match self.outbox.listen().await {
                Ok(mut session) => {
                    self.session_up(&mut backoff);
                    loop {
                        tokio::select! {
                            next = session.next() => match next {
                                // This node's own message commits: it knows of them
                                // already (see `chat_store::note::CommitWake`).
                                Ok(from) if from == own => {}
                                Ok(_) => {
                                    self.outside.store(true, Ordering::Release);
                                    self.reader_wake.notify_one();
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "cluster LISTEN session lost; reconnecting");
                                    self.meter.error(BrokerOp::Subscribe);
                                    break;
                                }
                            },
                            _ = self.stop.cancelled() => return,
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for cluster events; retrying");
                    self.meter.error(BrokerOp::Subscribe);
                }
            }
            if !self.session_down(&mut backoff).await {
                return;
            }
        }
    }

    /// Holds the Redis subscription and reconnects it with back-off; what arrives
    /// goes to the reader. A reconnect is followed by a read of the outbox.
    pub(super) async fn subscriber(self: Arc<Self>, pushed: mpsc::Sender<Vec<OutboxEvent>>) {
        use futures_util::StreamExt;
        let Some((client, channel)) = self.redis.clone() else {
            return;
        };
        let mut backoff = Backoff::new(Duration::from_millis(100));
        loop {
            let subscribed = async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(ps)
            }
            .await;
            match subscribed {
                Ok(mut ps) => {
                    self.session_up(&mut backoff);
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
                                    self.meter.error(BrokerOp::Subscribe);
                                    break;
                                }
                            },
                            _ = self.stop.cancelled() => return,
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe on Redis; retrying (events still arrive by the outbox poll)");
                    self.meter.error(BrokerOp::Subscribe);
                }
            }
            if !self.session_down(&mut backoff).await {
                return;
            }
        }
    }
}
