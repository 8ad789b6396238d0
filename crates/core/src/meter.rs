//! What the service and the connection loops count, for the operator's `/metrics`.
//!
//! Invariant: every counter is exact — it rises by one for each thing it counts, never
//! sampled, never estimated — and counting never takes a lock on the delivery path.
//! Mechanism: each dialect has one [`DialectMeter`] of plain atomics, claimed once per
//! connection ([`Meter::dialect`]) and then written through the connection's own
//! `Arc`; a connection adds what it wrote in one batch with one `fetch_add` per
//! counter ([`DialectMeter::wrote`]), not one per frame. Only the per-command counts
//! go through a small map (commands are thousands a second, deliveries a million).
//! Consequence: exposing the figures is a read of atomics at scrape time (the
//! gateway renders them as Prometheus text), and a scrape never slows a delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Why a connection ended, as counted by `chat_connections_closed_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// The client closed it, or its socket went away.
    Client,
    /// The server is shutting down (1001).
    Shutdown,
    /// Its outbound queue was full.
    SlowConsumer,
    /// The token it signed in with expired (`--close-on-token-expiry`).
    TokenExpired,
    /// It did not sign in within `--auth-timeout-secs`.
    AuthTimeout,
    /// It did not answer pings.
    PingTimeout,
    /// It sent more than a frame or pre-sign-in budget allows.
    TooLarge,
    /// The dialect closed it (a protocol error), or a write failed.
    Protocol,
}

impl CloseKind {
    pub const ALL: [CloseKind; 8] = [
        CloseKind::Client,
        CloseKind::Shutdown,
        CloseKind::SlowConsumer,
        CloseKind::TokenExpired,
        CloseKind::AuthTimeout,
        CloseKind::PingTimeout,
        CloseKind::TooLarge,
        CloseKind::Protocol,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            CloseKind::Client => "client",
            CloseKind::Shutdown => "shutdown",
            CloseKind::SlowConsumer => "slow_consumer",
            CloseKind::TokenExpired => "token_expired",
            CloseKind::AuthTimeout => "auth_timeout",
            CloseKind::PingTimeout => "ping_timeout",
            CloseKind::TooLarge => "too_large",
            CloseKind::Protocol => "protocol",
        }
    }
}

impl From<crate::hub::CloseReason> for CloseKind {
    /// The count of a close the server chose (its kill switch's reason).
    fn from(r: crate::hub::CloseReason) -> Self {
        match r {
            crate::hub::CloseReason::Shutdown => CloseKind::Shutdown,
            crate::hub::CloseReason::SlowConsumer => CloseKind::SlowConsumer,
            crate::hub::CloseReason::TokenExpired => CloseKind::TokenExpired,
        }
    }
}

/// Why an upgrade (or a Socket.IO handshake) was answered with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseKind {
    /// The `Origin` is not allowed, or a trusted-mode dialect was asked by a browser.
    Origin,
    /// The dialect refused the handshake (no or bad token where one is needed).
    Auth,
    /// Not a valid WebSocket or Engine.IO handshake.
    Handshake,
}

impl RefuseKind {
    pub const ALL: [RefuseKind; 3] = [RefuseKind::Origin, RefuseKind::Auth, RefuseKind::Handshake];

    pub fn label(self) -> &'static str {
        match self {
            RefuseKind::Origin => "origin",
            RefuseKind::Auth => "auth",
            RefuseKind::Handshake => "handshake",
        }
    }
}

/// The command name under which frames that do not decode to a command are counted.
pub const UNDECODABLE: &str = "undecodable";

/// The meter of what comes through the HTTP API rather than a dialect.
pub const HTTP: &str = "http";

/// Upper bounds of the latency histograms, in seconds (the `le` labels).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram of durations over [`LATENCY_BUCKETS`], lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram's figures at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, count)` per bucket (not cumulative), `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// Record `n` observations of `d` at once (a batch of events of one age).
    pub fn observe_n(&self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(n, Relaxed);
        self.count.fetch_add(n, Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos.saturating_mul(n), Relaxed);
    }

    pub fn observe(&self, d: Duration) {
        self.observe_n(d, 1);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let le = LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((le, b.load(Relaxed)));
        }
        HistogramSnapshot {
            buckets,
            count: self.count.load(Relaxed),
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// The counters of one dialect (or `http` for the REST API).
#[derive(Debug)]
pub struct DialectMeter {
    pub name: &'static str,
    /// Open connections: raised when one is accepted, lowered when it ends (see
    /// [`OpenConnection`]).
    pub open: AtomicI64,
    pub accepted: AtomicU64,
    closed: [AtomicU64; CloseKind::ALL.len()],
    refused: [AtomicU64; RefuseKind::ALL.len()],
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Hub events written to this dialect's clients.
    pub events_delivered: AtomicU64,
    /// Messages committed from this dialect's clients.
    pub messages_committed: AtomicU64,
    /// Commands refused by the per-user rate.
    pub rate_limited: AtomicU64,
    /// From an event's publication to the write of the batch that carried it.
    pub delivery_latency: Histogram,
    /// Commands by `(name, result)`; `result` is `ok` or a [`crate::ChatError::code`].
    commands: Mutex<HashMap<(&'static str, &'static str), u64>>,
}

impl DialectMeter {
    fn new(name: &'static str) -> Self {
        DialectMeter {
            name,
            open: AtomicI64::new(0),
            accepted: AtomicU64::new(0),
            closed: Default::default(),
            refused: Default::default(),
            frames_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            events_delivered: AtomicU64::new(0),
            messages_committed: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            delivery_latency: Histogram::default(),
            commands: Mutex::new(HashMap::new()),
        }
    }

    /// A connection was accepted: counted, and open until the guard drops.
    pub fn open_connection(self: &Arc<Self>) -> OpenConnection {
        self.accepted.fetch_add(1, Relaxed);
        self.open.fetch_add(1, Relaxed);
        OpenConnection {
            meter: self.clone(),
            close: CloseKind::Client,
        }
    }

    pub fn refused(&self, why: RefuseKind) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    pub fn refused_count(&self, why: RefuseKind) -> u64 {
        self.refused[why as usize].load(Relaxed)
    }

    pub fn closed_count(&self, why: CloseKind) -> u64 {
        self.closed[why as usize].load(Relaxed)
    }

    /// One frame of `bytes` read from a client.
    pub fn read(&self, bytes: usize) {
        self.frames_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    /// One batch written to a client: `frames` frames of `bytes` in all, of which
    /// `events` were hub events, the oldest published `oldest_event` ago.
    pub fn wrote(&self, frames: u64, bytes: u64, events: u64, oldest_event: Option<Duration>) {
        if frames > 0 {
            self.frames_out.fetch_add(frames, Relaxed);
            self.bytes_out.fetch_add(bytes, Relaxed);
        }
        if events > 0 {
            self.events_delivered.fetch_add(events, Relaxed);
            // Each event of the batch is counted at the batch's oldest age: an upper
            // bound per event, one histogram write per batch.
            if let Some(age) = oldest_event {
                self.delivery_latency.observe_n(age, events);
            }
        }
    }

    /// [`DialectMeter::command`] with the outcome of `result`: `ok` or its error's
    /// [`crate::ChatError::code`].
    pub fn command_result<T>(&self, name: &'static str, result: &crate::Result<T>) {
        self.command(name, result.as_ref().map_or_else(|e| e.code(), |_| "ok"));
    }

    /// One command of the dialect and its outcome: `ok` or the
    /// [`crate::ChatError::code`] it failed with.
    pub fn command(&self, name: &'static str, code: &'static str) {
        if code == "rate_limited" {
            self.rate_limited.fetch_add(1, Relaxed);
        }
        let mut map = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((name, code)).or_default() += 1;
    }

    /// `(command, result, count)`, sorted.
    pub fn commands(&self) -> Vec<(&'static str, &'static str, u64)> {
        let map = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map.iter().map(|((c, r), n)| (*c, *r, *n)).collect();
        v.sort_unstable();
        v
    }
}

/// An open connection of a dialect: dropping it lowers the open gauge and counts the
/// close under the reason last set (a client close unless told otherwise), so the
/// gauge stays exact on every path out of a connection task, a panic included.
#[derive(Debug)]
pub struct OpenConnection {
    meter: Arc<DialectMeter>,
    close: CloseKind,
}

impl OpenConnection {
    /// Why the connection is ending (the last call wins).
    pub fn closing(&mut self, why: CloseKind) {
        self.close = why;
    }

    pub fn meter(&self) -> &Arc<DialectMeter> {
        &self.meter
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.meter.open.fetch_sub(1, Relaxed);
        self.meter.closed[self.close as usize].fetch_add(1, Relaxed);
    }
}

/// Every dialect's meter and the service-wide figures.
#[derive(Debug, Default)]
pub struct Meter {
    dialects: RwLock<Vec<Arc<DialectMeter>>>,
    /// From the store call that writes a message to its return.
    pub commit_latency: Histogram,
}

impl Meter {
    /// The meter of `dialect`, created at first use.
    pub fn dialect(&self, dialect: &'static str) -> Arc<DialectMeter> {
        if let Some(m) = self.find(dialect) {
            return m;
        }
        let mut all = self.dialects.write().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = all.iter().find(|m| m.name == dialect) {
            return m.clone();
        }
        let m = Arc::new(DialectMeter::new(dialect));
        all.push(m.clone());
        m
    }

    fn find(&self, dialect: &str) -> Option<Arc<DialectMeter>> {
        let all = self.dialects.read().unwrap_or_else(|e| e.into_inner());
        all.iter().find(|m| m.name == dialect).cloned()
    }

    /// Every dialect's meter, by name.
    pub fn dialects(&self) -> Vec<Arc<DialectMeter>> {
        let mut v = self
            .dialects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|m| m.name);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_gauge_and_close_reasons_are_exact() {
        let meter = Meter::default();
        let d = meter.dialect("x");
        let a = d.open_connection();
        let mut b = d.open_connection();
        assert_eq!(d.open.load(Relaxed), 2);
        b.closing(CloseKind::SlowConsumer);
        drop(b);
        drop(a);
        assert_eq!(d.open.load(Relaxed), 0);
        assert_eq!(d.accepted.load(Relaxed), 2);
        assert_eq!(d.closed_count(CloseKind::SlowConsumer), 1);
        assert_eq!(d.closed_count(CloseKind::Client), 1);
        assert!(Arc::ptr_eq(&d, &meter.dialect("x")));
    }

    #[test]
    fn histogram_batches_count_every_event() {
        let h = Histogram::default();
        h.observe_n(Duration::from_millis(3), 10);
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 11);
        // 3 ms falls in the 5 ms bucket, a minute past the last bound.
        let at = |le: f64| s.buckets.iter().find(|(b, _)| *b == le).map(|(_, n)| *n);
        assert_eq!(at(0.0025), Some(0));
        assert_eq!(at(0.005), Some(10));
        assert_eq!(at(10.0), Some(0));
        assert_eq!(at(f64::INFINITY), Some(1));
        assert!((s.sum_seconds - 60.03).abs() < 1e-9);
    }

    #[test]
    fn commands_by_result_and_rate_limits() {
        let d = Meter::default().dialect("x");
        d.command("send", "ok");
        d.command("send", "ok");
        let limited = crate::ChatError::RateLimited { what: "command" };
        d.command("send", limited.code());
        assert_eq!(
            d.commands(),
            vec![("send", "ok", 2), ("send", "rate_limited", 1)]
        );
        assert_eq!(d.rate_limited.load(Relaxed), 1);
    }
}
