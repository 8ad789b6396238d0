//! Retrying with back-off until the node stops.
//!
//! **Invariant: a failing task retries no faster than it backs off, and never past
//! the node's stop.** Each wait doubles the delay up to [`MAX`] and ends early
//! when the node's cancellation token fires, so a database or broker that is
//! down costs a few queries a second, and `leave` never waits for a sleeping
//! retry.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest wait between two attempts.
const MAX: Duration = Duration::from_secs(2);

/// The delay before the next attempt of one task.
pub(crate) struct Backoff {
    first: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration) -> Self {
        Backoff { first, next: first }
    }

    /// After a success: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Wait the current delay and double it; `false` when the node stopped first.
    pub async fn wait(&mut self, stop: &CancellationToken) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.next) => {}
            _ = stop.cancelled() => return false,
        }
        self.next = (self.next * 2).min(MAX);
        true
    }
}
