//! What a run reports: the per-second progress line and timeline, the server's
//! figures, and the closing table.
//!
//! Invariant: the table and the JSON report show the same numbers. Mechanism: the
//! run builds one JSON value and [`print_table`] only reads it. Consequence: a figure
//! quoted from the table can always be found in the `--json` file.

use crate::conn::{Phase, Shared};
use crate::{procstat, stats};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Progress line and per-second timeline, until `stop` is set.
pub struct Progress {
    pub timeline: std::sync::Mutex<Vec<serde_json::Value>>,
    pub stop: std::sync::atomic::AtomicBool,
    pub server_rss_max: std::sync::atomic::AtomicU64,
}

pub fn server_report(
    pid: Option<u32>,
    idle: &Option<procstat::Sample>,
    before: &Option<procstat::Sample>,
    at_stop: &Option<procstat::Sample>,
    end: &Option<procstat::Sample>,
    rss_max: u64,
    ready: usize,
) -> serde_json::Value {
    let (Some(idle), Some(before), Some(at_stop), Some(end)) = (idle, before, at_stop, end) else {
        return json!({"pid": pid});
    };
    // Right after the last connect (the allocator still holds what the connect burst
    // freed), and after the run or hold, when it has returned it: the idle cost.
    let per_conn = |sample: &procstat::Sample| {
        if ready > 0 {
            (sample.rss_kib as f64 - idle.rss_kib as f64) / ready as f64
        } else {
            0.0
        }
    };
    json!({
        "pid": pid,
        "cpu_percent_run": round1(procstat::cpu_percent(before, at_stop)),
        "cpu_percent_connect": round1(procstat::cpu_percent(idle, before)),
        "rss_kib_before_connect": idle.rss_kib,
        "rss_kib_connected": before.rss_kib,
        "rss_kib_end": end.rss_kib,
        "rss_kib_max": rss_max.max(end.rss_kib),
        "rss_kib_at_stop": at_stop.rss_kib,
        "rss_kib_per_connection": round3(per_conn(before)),
        "rss_kib_per_connection_at_stop": round3(per_conn(at_stop)),
    })
}

pub fn spawn_progress(
    sh: Arc<Shared>,
    p: Arc<Progress>,
    phase: Arc<tokio::sync::watch::Sender<Phase>>,
    n: usize,
    pid: Option<u32>,
    quiet: bool,
) {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = stats::totals();
        let mut last_server = pid.and_then(|p| procstat::sample(Some(p)));
        let mut last_self = procstat::sample(None);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while !p.stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let now = stats::totals();
            let server = pid.and_then(|p| procstat::sample(Some(p)));
            let me = procstat::sample(None);
            let cpu = |a: &Option<procstat::Sample>, b: &Option<procstat::Sample>| match (a, b) {
                (Some(a), Some(b)) => procstat::cpu_percent(a, b),
                _ => f64::NAN,
            };
            let server_cpu = cpu(&last_server, &server);
            let self_cpu = cpu(&last_self, &me);
            let rss = server.map(|s| s.rss_kib).unwrap_or(0);
            p.server_rss_max.fetch_max(rss, Ordering::Relaxed);
            let ph = *phase.borrow();
            let phase_name = match ph {
                Phase::Connect => "connect",
                Phase::Join => "join",
                Phase::Run => "run",
                Phase::Stop => "drain",
                Phase::Close => "close",
            };
            let dps = (now.deliveries - last.deliveries) as f64;
            let aps = (now.acks - last.acks) as f64;
            if let Ok(mut t) = p.timeline.lock() {
                t.push(json!({
                    "t": round3(start.elapsed().as_secs_f64()),
                    "phase": phase_name,
                    "ready": sh.ready.load(Ordering::Relaxed),
                    "deliveries_per_s": dps,
                    "acks_per_s": aps,
                    "server_cpu_percent": round1(server_cpu),
                    "server_rss_kib": rss,
                    "generator_cpu_percent": round1(self_cpu),
                }));
            }
            if !quiet {
                eprintln!(
                    "[{:>5.1}s] {phase_name:<7} ready {}/{n} failed {} | deliveries/s {dps:>9.0} acks/s {aps:>7.0} | server cpu {server_cpu:>5.1}% rss {} MiB | bench cpu {self_cpu:>5.1}% | disconnects {} errors {}",
                    start.elapsed().as_secs_f64(),
                    sh.ready.load(Ordering::Relaxed),
                    sh.failed.load(Ordering::Relaxed),
                    rss / 1024,
                    sh.disconnects.load(Ordering::Relaxed),
                    sh.error_frames.load(Ordering::Relaxed),
                );
            }
            last = now;
            last_server = server;
            last_self = me;
        }
    });
}

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn print_table(r: &serde_json::Value) {
    let lat = |v: &serde_json::Value| {
        format!(
            "p50 {} p90 {} p99 {} p99.9 {} max {} ms (n={})",
            v["p50_ms"], v["p90_ms"], v["p99_ms"], v["p999_ms"], v["max_ms"], v["count"]
        )
    };
    println!("== chat-bench {} against {}", r["scenario"], r["url"]);
    println!("dialects            {}", r["dialects"]);
    println!(
        "connections         {} ready, {} failed, all ready after {} s ({} connects/s)",
        r["connect"]["ready"],
        r["connect"]["failed"],
        r["connect"]["seconds_until_all_ready"],
        r["connect"]["connects_per_s"]
    );
    println!("connect latency     {}", lat(&r["connect"]["latency"]));
    let run = &r["run"];
    println!(
        "messages            sent {} acked {} unacked {} over {} s",
        run["sent"], run["acks"], run["unacked"], run["seconds"]
    );
    println!(
        "deliveries          {} of {} expected, missing {}",
        run["deliveries"], run["expected_deliveries"], run["missing"]
    );
    println!(
        "throughput          {} deliveries/s (median second {}), {} acks/s",
        run["deliveries_per_s"], run["deliveries_per_s_median"], run["acks_per_s"]
    );
    println!("delivery latency    {}", lat(&r["delivery_latency"]));
    println!("ack latency         {}", lat(&r["ack_latency"]));
    let e = &r["errors"];
    println!(
        "errors              connect {} join {} error frames {} disconnects {}",
        e["connect_failed"], e["join_failed"], e["error_frames"], e["disconnects"]
    );
    if let Some(s) = e["samples"].as_array() {
        for x in s.iter().take(4) {
            println!("  e.g. {}", x.as_str().unwrap_or_default());
        }
    }
    let s = &r["server"];
    println!(
        "server              cpu {}% (run), {}% (connect); rss {} KiB before, {} connected, {} at stop, max {}; {} KiB per connection connected, {} at stop",
        s["cpu_percent_run"],
        s["cpu_percent_connect"],
        s["rss_kib_before_connect"],
        s["rss_kib_connected"],
        s["rss_kib_at_stop"],
        s["rss_kib_max"],
        s["rss_kib_per_connection"],
        s["rss_kib_per_connection_at_stop"]
    );
    println!(
        "generator           cpu {}% ({} threads), rss {} KiB",
        r["generator"]["cpu_percent"], r["generator"]["threads"], r["generator"]["rss_kib"]
    );
    println!(
        "cpu per delivery    server {} us ({} s), generator {} us ({} s), run and drain",
        s["run_and_drain"]["cpu_us_per_delivery"],
        s["run_and_drain"]["cpu_s"],
        r["generator"]["run_and_drain"]["cpu_us_per_delivery"],
        r["generator"]["run_and_drain"]["cpu_s"]
    );
    println!(
        "machine             {} cpus, load {} -> {}",
        r["machine"]["cpus"], r["machine"]["loadavg_start"], r["machine"]["loadavg_end"]
    );
}
