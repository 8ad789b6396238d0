//! `/metrics`: the counters of [`chat_core::meter`] and the cluster's
//! [`chat_cluster::meter`] in the Prometheus (OpenMetrics) text format.
//!
//! The figures are counted where they happen, in plain atomics; a scrape reads them
//! once and encodes them with `prometheus-client` (a collector built per scrape, so
//! nothing here is global and two gateways in one process — the tests — never share
//! a counter). What is a state rather than a count (queue depths, pools, the
//! broker's connection) is read from its owner at scrape time.

use crate::state::App;
use chat_core::meter::{CloseKind, DialectMeter, HistogramSnapshot, RefuseKind};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The figures of `app` as OpenMetrics text (labelled `node` in a cluster).
pub fn render(app: &Arc<App>) -> String {
    let node = app
        .cluster
        .as_ref()
        .map(|c| (Cow::Borrowed("node"), Cow::Owned(c.node_id().to_string())));
    let mut registry = Registry::with_labels(node.into_iter());
    registry.register_collector(Box::new(Scrape(app.clone())));
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::error!(error = %e, "could not encode the metrics");
    }
    text
}

struct Scrape(Arc<App>);

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrape")
    }
}

type Labels = Vec<(&'static str, String)>;

/// A counter with one series per dialect: name, help, unit, how to read it.
type PerDialect = (
    &'static str,
    &'static str,
    Option<&'static Unit>,
    fn(&DialectMeter) -> u64,
);

fn dialect(name: &str) -> Labels {
    vec![("dialect", name.to_string())]
}

/// One family of counters or gauges: its descriptor, then each labelled sample, made
/// a metric by `make` (`ConstCounter::new`, `ConstGauge::new`).
fn family<V, M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    (name, help, unit): (&str, &str, Option<&Unit>),
    rows: impl IntoIterator<Item = (Labels, V)>,
    make: fn(V) -> M,
) -> fmt::Result {
    let mut rows = rows.into_iter().map(|(l, v)| (l, make(v))).peekable();
    let Some((_, first)) = rows.peek() else {
        return Ok(());
    };
    let mut family = enc.encode_descriptor(name, help, unit, first.metric_type())?;
    for (labels, metric) in rows {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One family of latency histograms (in seconds).
fn histograms(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, HistogramSnapshot)>,
) -> fmt::Result {
    let mut family =
        enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in rows {
        // The encoder writes the last bound, `f64::MAX`, as `+Inf`.
        let buckets: Vec<(f64, u64)> = h
            .buckets
            .iter()
            .map(|(le, n)| (if le.is_finite() { *le } else { f64::MAX }, *n))
            .collect();
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &buckets, None)?;
    }
    Ok(())
}

/// One count per dialect and reason.
fn by_reason<K: Copy>(
    meters: &[Arc<DialectMeter>],
    kinds: &[K],
    label: fn(K) -> &'static str,
    count: fn(&DialectMeter, K) -> u64,
) -> Vec<(Labels, u64)> {
    let mut rows = Vec::new();
    for m in meters {
        for k in kinds {
            let mut l = dialect(m.name);
            l.push(("reason", label(*k).to_string()));
            rows.push((l, count(m, *k)));
        }
    }
    rows
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let app = &self.0;
        let service = &app.service;
        let meters = service.meter().dialects();
        let each = |f: &dyn Fn(&DialectMeter) -> u64| {
            meters
                .iter()
                .map(|m| (dialect(m.name), f(m)))
                .collect::<Vec<_>>()
        };
        family(
            &mut enc,
            ("chat_build_info", "The running build (always 1).", None),
            [(vec![("version", env!("CARGO_PKG_VERSION").to_string())], 1)],
            ConstGauge::new,
        )?;
        family(
            &mut enc,
            (
                "chat_connections_open",
                "Open client connections (WebSocket and Socket.IO sockets).",
                None,
            ),
            meters
                .iter()
                .map(|m| (dialect(m.name), m.open.load(Relaxed))),
            ConstGauge::new,
        )?;
        // The counters with one series per dialect.
        #[rustfmt::skip]
        let per_dialect: [PerDialect; 9] = [
            ("chat_connections_accepted", "Client connections accepted.", None, |m| m.accepted.load(Relaxed)),
            ("chat_frames_in", "Frames (Socket.IO: events) read from clients.", None, |m| m.frames_in.load(Relaxed)),
            ("chat_frames_out", "Frames (Socket.IO: events and acks) written to clients.", None, |m| m.frames_out.load(Relaxed)),
            ("chat_received", "Payload bytes read from clients.", Some(&Unit::Bytes), |m| m.bytes_in.load(Relaxed)),
            ("chat_sent", "Payload bytes written to clients.", Some(&Unit::Bytes), |m| m.bytes_out.load(Relaxed)),
            ("chat_rate_limited_commands", "Commands refused by the per-user rate (--user-rate).", None, |m| m.rate_limited.load(Relaxed)),
            ("chat_messages_committed", "Messages stored, by the dialect they were sent through.", None, |m| m.messages_committed.load(Relaxed)),
            ("chat_events_delivered", "Hub events written to clients (one per recipient connection).", None, |m| m.events_delivered.load(Relaxed)),
            ("chat_slow_consumer_closes", "Connections closed because their outbound queue was full.", None, |m| m.closed_count(CloseKind::SlowConsumer)),
        ];
        for (name, help, unit, count) in per_dialect {
            family(
                &mut enc,
                (name, help, unit),
                each(&count),
                ConstCounter::new,
            )?;
        }
        let refused = by_reason(&meters, &RefuseKind::ALL, RefuseKind::label, |m, k| {
            m.refused_count(k)
        });
        family(
            &mut enc,
            (
                "chat_connections_refused",
                "Handshakes answered with an error, by reason (origin, auth, handshake).",
                None,
            ),
            refused,
            ConstCounter::new,
        )?;
        let closed = by_reason(&meters, &CloseKind::ALL, CloseKind::label, |m, k| {
            m.closed_count(k)
        });
        family(
            &mut enc,
            (
                "chat_connections_closed",
                "Client connections ended, by reason.",
                None,
            ),
            closed,
            ConstCounter::new,
        )?;
        let mut commands = Vec::new();
        for m in &meters {
            for (command, result, n) in m.commands() {
                let mut l = dialect(m.name);
                l.push(("command", command.to_string()));
                l.push(("result", result.to_string()));
                commands.push((l, n));
            }
        }
        family(
            &mut enc,
            (
                "chat_commands",
                "Client commands by the dialect's name for them and result (ok or the error code).",
                None,
            ),
            commands,
            ConstCounter::new,
        )?;
        histograms(
            &mut enc,
            "chat_delivery_latency",
            "From an event's publication on this node to the write that carried it (each event at its batch's oldest age).",
            meters
                .iter()
                .map(|m| (dialect(m.name), m.delivery_latency.snapshot())),
        )?;
        histograms(
            &mut enc,
            "chat_commit_latency",
            "The store's write of one message, from call to commit.",
            [(Labels::new(), service.meter().commit_latency.snapshot())],
        )?;
        let (queued, deepest) = service.hub().queue_depths();
        family(
            &mut enc,
            (
                "chat_outbound_queued_events",
                "Events waiting in connection queues, in all.",
                None,
            ),
            [(Labels::new(), to_i64(queued))],
            ConstGauge::new,
        )?;
        family(&mut enc, ("chat_outbound_queue_deepest", "Events waiting in the deepest connection queue (closed as a slow consumer at --outbound-queue).", None), [(Labels::new(), to_i64(deepest))], ConstGauge::new)?;
        let pools = service.store().pools();
        let mut conns = Vec::new();
        for p in &pools {
            let in_use = p.open.saturating_sub(p.idle);
            conns.push((
                vec![("pool", p.name.to_string()), ("state", "in_use".into())],
                i64::from(in_use),
            ));
            conns.push((
                vec![("pool", p.name.to_string()), ("state", "idle".into())],
                i64::from(p.idle),
            ));
        }
        family(
            &mut enc,
            (
                "chat_db_pool_connections",
                "Database connections by pool and state (in_use, idle).",
                None,
            ),
            conns,
            ConstGauge::new,
        )?;
        family(
            &mut enc,
            (
                "chat_db_pool_waits",
                "Checkouts that waited for a free database connection.",
                None,
            ),
            pools
                .iter()
                .map(|p| (vec![("pool", p.name.to_string())], p.waits)),
            ConstCounter::new,
        )?;
        family(
            &mut enc,
            (
                "chat_db_pool_timeouts",
                "Checkouts that gave up waiting for a database connection.",
                None,
            ),
            pools
                .iter()
                .map(|p| (vec![("pool", p.name.to_string())], p.timeouts)),
            ConstCounter::new,
        )?;
        if let Some(cluster) = &app.cluster {
            let b = cluster.meter();
            family(
                &mut enc,
                (
                    "chat_broker_connected",
                    "1 while the broker subscription is up and the last outbox read succeeded.",
                    None,
                ),
                [(Labels::new(), i64::from(cluster.is_healthy()))],
                ConstGauge::new,
            )?;
            family(
                &mut enc,
                (
                    "chat_broker_errors",
                    "Broker failures this node retried, by operation.",
                    None,
                ),
                chat_cluster::meter::BrokerOp::ALL
                    .iter()
                    .map(|op| (vec![("op", op.label().to_string())], b.errors(*op))),
                ConstCounter::new,
            )?;
            family(
                &mut enc,
                (
                    "chat_broker_events_read",
                    "Cluster events delivered on this node.",
                    None,
                ),
                [(Labels::new(), b.events_read.load(Relaxed))],
                ConstCounter::new,
            )?;
            family(
                &mut enc,
                (
                    "chat_broker_pending_writes",
                    "Events queued for the outbox writer.",
                    None,
                ),
                [(Labels::new(), to_i64(cluster.pending_writes()))],
                ConstGauge::new,
            )?;
            histograms(
                &mut enc,
                "chat_broker_lag",
                "This node's own events, from commit to their delivery back through the broker.",
                [(Labels::new(), b.lag.snapshot())],
            )?;
        }
        Ok(())
    }
}

/// The answer to `GET /metrics`.
pub fn response(app: &Arc<App>) -> http::Response<crate::http_util::Body> {
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(crate::http_util::full(render(app)))
        .unwrap_or_else(|_| http::Response::new(crate::http_util::empty()))
}
