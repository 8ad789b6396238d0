//! The keeper: heartbeats, sweeps of dead nodes, pruning of old events.
//!
//! **Invariant: a node that was taken out while alive comes back under its own id
//! with its users announced again.** A heartbeat that finds the node's row gone
//! (another node swept it during a stall) puts the row back and marks every user
//! connected here as changed, so the writer re-announces them and the cluster's
//! presence matches this node's connections again.

use super::Cluster;
use std::sync::Arc;
use std::time::Duration;

impl Cluster {
    pub(super) async fn keeper(self: Arc<Self>) {
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
}
