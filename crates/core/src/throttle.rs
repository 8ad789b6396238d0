//! Rate limits: token buckets, per user in the service and per connection in the
//! connection loops.
//!
//! A user's commands draw from one bucket whatever the connection or dialect they
//! come through, so opening more sockets buys no more rate; past it a command is
//! refused with [`crate::ChatError::RateLimited`], which each dialect answers in its
//! own error shape (and the connection stays open). The bucket refills continuously
//! at `per_sec` and holds at most `burst`, so a client that sends in short bursts
//! (a reconnect that re-reads its rooms) is not refused while a steady flood is.
//!
//! The per-user cap is also what keeps one user's flood from getting other users
//! closed as slow consumers: members of a room receive at most the sender's rate.

use crate::UserId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A sustained rate and a burst; `per_sec == 0` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Rate {
    pub const UNLIMITED: Rate = Rate {
        per_sec: 0.0,
        burst: 0.0,
    };

    pub fn is_unlimited(&self) -> bool {
        self.per_sec <= 0.0
    }
}

/// One token bucket.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(rate: Rate, now: Instant) -> Self {
        Bucket {
            tokens: rate.burst.max(1.0),
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate.per_sec).min(rate.burst.max(1.0));
        self.at = now;
    }

    /// Take one token if there is one.
    pub fn take(&mut self, rate: Rate, now: Instant) -> bool {
        if rate.is_unlimited() {
            return true;
        }
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is there (zero when one is).
    pub fn wait(&self, rate: Rate) -> std::time::Duration {
        if rate.is_unlimited() || self.tokens >= 1.0 {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec)
    }
}

/// Buckets by user.
#[derive(Debug)]
pub struct Throttle {
    rate: Rate,
    buckets: Mutex<HashMap<UserId, Bucket>>,
}

/// Users tracked before full (idle) buckets are forgotten.
const PRUNE_AT: usize = 50_000;

impl Throttle {
    pub fn new(rate: Rate) -> Self {
        Throttle {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `user` may run one more command now (and count it).
    pub fn allow(&self, user: UserId) -> bool {
        if self.rate.is_unlimited() {
            return true;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT {
            let rate = self.rate;
            buckets.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
        }
        buckets
            .entry(user)
            .or_insert_with(|| Bucket::full(self.rate, now))
            .take(self.rate, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refuses_then_refills() {
        let rate = Rate {
            per_sec: 10.0,
            burst: 5.0,
        };
        let t0 = Instant::now();
        let mut b = Bucket::full(rate, t0);
        assert!((0..5).all(|_| b.take(rate, t0)));
        assert!(!b.take(rate, t0));
        assert!(b.wait(rate) > Duration::ZERO);
        assert!(b.take(rate, t0 + Duration::from_millis(100)));
        assert!(!b.take(rate, t0 + Duration::from_millis(100)));
        // Refill stops at the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..5).all(|_| b.take(rate, later)));
        assert!(!b.take(rate, later));
    }

    #[test]
    fn per_user_and_unlimited() {
        let t = Throttle::new(Rate {
            per_sec: 1.0,
            burst: 2.0,
        });
        assert!(t.allow(UserId(1)) && t.allow(UserId(1)));
        assert!(!t.allow(UserId(1)));
        assert!(t.allow(UserId(2)), "another user has a bucket of their own");
        let free = Throttle::new(Rate::UNLIMITED);
        assert!((0..10_000).all(|_| free.allow(UserId(1))));
    }
}
