//! Counters and latency histograms, one set per worker thread.
//!
//! At a million deliveries a second a shared atomic or a shared histogram would turn
//! the generator's own cache-line traffic into the thing being measured. So every
//! runtime worker thread records into its own [`WorkerStats`] (found through a
//! thread-local), and only the progress printer and the final report walk the list of
//! all of them. The histogram mutexes are therefore uncontended in the hot path: the
//! owning thread is the only writer, and readers come by once a second at most.

use hdrhistogram::Histogram;
use std::cell::OnceCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Latencies are recorded in microseconds, up to a minute.
const MAX_MICROS: u64 = 60_000_000;

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// What one worker thread has seen.
pub struct WorkerStats {
    pub delivery: Mutex<Histogram<u64>>,
    pub ack: Mutex<Histogram<u64>>,
    pub connect: Mutex<Histogram<u64>>,
    pub deliveries: AtomicU64,
    pub acks: AtomicU64,
    pub sent: AtomicU64,
}

impl WorkerStats {
    fn new() -> Self {
        WorkerStats {
            delivery: Mutex::new(new_hist()),
            ack: Mutex::new(new_hist()),
            connect: Mutex::new(new_hist()),
            deliveries: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }
}

static ALL: Mutex<Vec<Arc<WorkerStats>>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL: OnceCell<Arc<WorkerStats>> = const { OnceCell::new() };
}

/// Run `f` on this thread's stats (registering them on first use).
pub fn with<R>(f: impl FnOnce(&WorkerStats) -> R) -> R {
    LOCAL.with(|cell| {
        let stats = cell.get_or_init(|| {
            let s = Arc::new(WorkerStats::new());
            ALL.lock().expect("stats registry").push(s.clone());
            s
        });
        f(stats)
    })
}

fn record(h: &Mutex<Histogram<u64>>, micros: u64) {
    if let Ok(mut h) = h.lock() {
        h.saturating_record(micros.clamp(1, MAX_MICROS));
    }
}

/// Several deliveries at once (one burst of frames): one lock for all of them.
pub fn delivered_many(latencies_us: &[u64]) {
    if latencies_us.is_empty() {
        return;
    }
    with(|s| {
        s.deliveries
            .fetch_add(latencies_us.len() as u64, Ordering::Relaxed);
        if let Ok(mut h) = s.delivery.lock() {
            for &l in latencies_us {
                h.saturating_record(l.clamp(1, MAX_MICROS));
            }
        }
    })
}

pub fn acked(latency_us: u64) {
    with(|s| {
        s.acks.fetch_add(1, Ordering::Relaxed);
        record(&s.ack, latency_us);
    })
}

pub fn sent() {
    with(|s| s.sent.fetch_add(1, Ordering::Relaxed));
}

pub fn connected(latency_us: u64) {
    with(|s| record(&s.connect, latency_us));
}

/// Sums of the counters over every worker.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub deliveries: u64,
    pub acks: u64,
    pub sent: u64,
}

pub fn totals() -> Totals {
    let all = ALL.lock().expect("stats registry");
    let mut t = Totals::default();
    for s in all.iter() {
        t.deliveries += s.deliveries.load(Ordering::Relaxed);
        t.acks += s.acks.load(Ordering::Relaxed);
        t.sent += s.sent.load(Ordering::Relaxed);
    }
    t
}

/// Which histogram to merge.
#[derive(Clone, Copy)]
pub enum Kind {
    Delivery,
    Ack,
    Connect,
}

/// All workers' histograms of one kind merged.
pub fn merged(kind: Kind) -> Histogram<u64> {
    let all = ALL.lock().expect("stats registry");
    let mut out = new_hist();
    for s in all.iter() {
        let h = match kind {
            Kind::Delivery => &s.delivery,
            Kind::Ack => &s.ack,
            Kind::Connect => &s.connect,
        };
        if let Ok(h) = h.lock() {
            let _ = out.add(&*h);
        }
    }
    out
}

/// A histogram summarised in milliseconds.
pub fn summary(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |v: u64| (v as f64) / 1000.0;
    serde_json::json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}
