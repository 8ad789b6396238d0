//! chat-bench: a load generator for servers that speak the chat gateway's dialects.
//!
//! It behaves like many real clients of the legacy APIs — the same URLs, the same
//! authentication, the same frames (Engine.IO v4 / Socket.IO v5 over WebSocket for the
//! two Socket.IO dialects) — so it measures the gateway and a legacy server alike.
//! Every message it sends carries a marker with the sender, a sequence number and the
//! send time; receivers find it in the raw frame, which keeps the generator's cost per
//! delivery to a substring search, two integer parses and one histogram record.
//!
//! A run goes through phases (see [`conn::Phase`]): connect every client at the chosen
//! rate, set the rooms up (in the protocol where the dialects can, see [`setup`]), join
//! them where the dialect needs it, send for the chosen time, stop sending and wait for
//! what is still in flight, then close. Missing deliveries are what acknowledged
//! messages should have reached and did not. A run that sent nothing, had nothing
//! acknowledged, or lost anything exits 1 and says why.

mod cli;
mod conn;
mod http;
mod procstat;
mod report;
mod setup;
mod stats;
mod wire;

use chat_client::Dialect;
use cli::{Args, Scenario};
use conn::{Phase, Plan, Role, Shared};
use report::{median, print_table, round1, round3, server_report, spawn_progress, Progress};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn username(user: i64) -> String {
    format!("b{user}")
}

fn mint(secret: &str, user: i64, admin: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let claims = json!({
        "token_type": "access",
        "exp": now + 6 * 3600,
        "iat": now,
        "jti": format!("{:016x}{:08x}", now, user),
        "user_id": user,
        "username": username(user),
        "is_staff": admin,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing does not fail")
}

/// Lift the soft open-files limit to the hard one: every client is a socket.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            return r.rlim_cur;
        }
    }
    0
}

fn main() {
    let (args, paths) = cli::parse();
    let nofile = raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args, paths, nofile)) {
        Ok(ok) => std::process::exit(if ok { 0 } else { 1 }),
        Err(e) => {
            eprintln!("chat-bench: {e}");
            std::process::exit(2);
        }
    }
}

async fn resolve(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or(rest).to_string();
    let addr = tokio::net::lookup_host(&host)
        .await
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    Ok((addr, host))
}

async fn run(args: Args, paths: cli::Paths, nofile: u64) -> Result<bool, String> {
    let mut nodes = Vec::with_capacity(args.url.len());
    for url in &args.url {
        nodes.push(resolve(url).await?);
    }
    let Some((addr, host)) = nodes.first().cloned() else {
        return Err("no --url".into());
    };
    let n = match args.scenario {
        Scenario::Fanout => args.connections.unwrap_or(1000),
        Scenario::Direct => args.pairs * 2,
        Scenario::Idle => args.connections.unwrap_or(15_000),
        Scenario::Storm => args.connections.unwrap_or(5_000),
    };
    if args.dialects.is_empty() {
        return Err("no dialects".into());
    }
    let chosen: Vec<Dialect> = args.dialects.iter().map(|d| d.0).collect();
    if args.scenario == Scenario::Fanout {
        if let Some(d) = chosen.iter().find(|d| !d.sees_groups()) {
            return Err(format!(
                "{d} shows only two-member conversations; leave it out of --dialects for fanout"
            ));
        }
    }
    let base = args.user_base.unwrap_or_else(|| {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // A fresh block of 100,000 ids per second of wall time.
        (s - 1_700_000_000).max(1) * 100_000
    });
    let admin_token = args
        .admin_token
        .clone()
        .unwrap_or_else(|| mint(&args.jwt_secret, base - 1, true));
    let connect_rate = args.connect_rate.unwrap_or(match args.scenario {
        Scenario::Storm => 0.0,
        _ => 2000.0,
    });

    let sender_every = (n / args.senders.max(1)).max(1);
    let mut plans = Vec::with_capacity(n);
    for i in 0..n {
        let dialect = chosen[i % chosen.len()];
        let user = base + i as i64;
        let role = match args.scenario {
            Scenario::Fanout if i % sender_every == 0 && i / sender_every < args.senders => {
                if args.rate > 0.0 {
                    Role::Rate(Duration::from_secs_f64(args.senders as f64 / args.rate))
                } else {
                    Role::ClosedLoop
                }
            }
            Scenario::Direct => {
                if args.rate > 0.0 {
                    Role::Rate(Duration::from_secs_f64(n as f64 / args.rate))
                } else {
                    Role::ClosedLoop
                }
            }
            _ => Role::Listen,
        };
        let source =
            match (addr.ip(), args.source_ips) {
                (IpAddr::V4(ip), k) if ip.is_loopback() && k > 1 => Some(IpAddr::V4(
                    Ipv4Addr::new(127, 0, 0, 1 + (i % k as usize) as u8),
                )),
                _ => None,
            };
        plans.push(Plan {
            idx: i,
            user,
            dialect,
            token: mint(&args.jwt_secret, user, false),
            source,
            role,
            node: i % nodes.len(),
        });
    }

    let shared = Arc::new(Shared {
        nodes: nodes.clone(),
        paths,
        origin: Some(args.origin.clone()).filter(|o| !o.is_empty()),
        epoch: Instant::now(),
        targets: (0..n).map(|_| OnceLock::new()).collect(),
        ready: Default::default(),
        failed: Default::default(),
        joined: Default::default(),
        join_failed: Default::default(),
        disconnects: Default::default(),
        error_frames: Default::default(),
        samples: Default::default(),
        pad: "x".repeat(args.pad),
    });

    let load_start = procstat::loadavg();
    let server_idle = args.server_pid.and_then(|p| procstat::sample(Some(p)));
    let progress = Arc::new(Progress {
        timeline: Default::default(),
        stop: Default::default(),
        server_rss_max: Default::default(),
    });
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Connect);
    let phase_tx = Arc::new(phase_tx);
    spawn_progress(
        shared.clone(),
        progress.clone(),
        phase_tx.clone(),
        n,
        args.server_pid,
        args.quiet,
    );

    // Storm: the users connect once first, so the storm is the reconnect of known users.
    if args.scenario == Scenario::Storm && !args.new_users {
        let sem = Arc::new(tokio::sync::Semaphore::new(256));
        let mut visits = Vec::with_capacity(n);
        for plan in &plans {
            let (sh, plan, sem) = (shared.clone(), plan.clone(), sem.clone());
            visits.push(tokio::spawn(async move {
                let _permit = sem.acquire().await;
                conn::visit(&sh, &plan).await
            }));
        }
        let mut failed = 0;
        for v in visits {
            if !matches!(v.await, Ok(Ok(()))) {
                failed += 1;
            }
        }
        if failed > 0 {
            eprintln!("chat-bench: {failed} users could not sign in before the storm");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Connect.
    let connect_start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    let dialects: Vec<Dialect> = plans.iter().map(|p| p.dialect).collect();
    let setup_plans = plans.clone();
    for (i, plan) in plans.into_iter().enumerate() {
        if connect_rate > 0.0 {
            let due = connect_start + Duration::from_secs_f64(i as f64 / connect_rate);
            tokio::time::sleep_until(due.into()).await;
        }
        tasks.push(tokio::spawn(conn::run(
            shared.clone(),
            plan,
            phase_rx.clone(),
        )));
    }
    let connect_deadline = Instant::now() + Duration::from_secs(60);
    while shared.ready.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < n
        && Instant::now() < connect_deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let connect_s = connect_start.elapsed().as_secs_f64();
    let ready = shared.ready.load(Ordering::Relaxed);
    let connect_hist = stats::merged(stats::Kind::Connect);

    // Rooms and joins.
    let mut receivers_per_message = 0u64;
    let rest = Arc::new(setup::Rest {
        addr,
        host: host.clone(),
        token: admin_token.clone(),
    });
    let setup = setup::rooms(&args, &shared, &setup_plans, rest).await;
    let setup_error = setup.error.clone();
    if let Some(e) = &setup_error {
        eprintln!("chat-bench: room set-up failed: {e}");
    }
    let is_messaging = matches!(args.scenario, Scenario::Fanout | Scenario::Direct);
    if is_messaging {
        let _ = phase_tx.send(Phase::Join);
        let deadline = Instant::now() + Duration::from_secs(30);
        while shared.joined.load(Ordering::Relaxed) + shared.join_failed.load(Ordering::Relaxed)
            < ready
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let joined = shared.joined.load(Ordering::Relaxed) as u64;
        receivers_per_message = match args.scenario {
            Scenario::Fanout => joined.saturating_sub(1),
            _ => 1,
        };
    }

    // Run (or hold).
    let server_before = args.server_pid.and_then(|p| procstat::sample(Some(p)));
    let self_before = procstat::sample(None);
    let before = stats::totals();
    let run_start = Instant::now();
    let _ = phase_tx.send(Phase::Run);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let _ = phase_tx.send(Phase::Stop);
    let run_s = run_start.elapsed().as_secs_f64();
    let at_stop = stats::totals();
    let server_at_stop = args.server_pid.and_then(|p| procstat::sample(Some(p)));
    let self_at_stop = procstat::sample(None);

    // Drain: every sent message acknowledged, every acknowledged one delivered.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain);
    if is_messaging {
        loop {
            let t = stats::totals();
            let expected = (t.acks - before.acks) * receivers_per_message;
            let done = t.acks >= t.sent && t.deliveries - before.deliveries >= expected;
            if done || Instant::now() >= drain_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let end = stats::totals();
    let server_end = args.server_pid.and_then(|p| procstat::sample(Some(p)));
    let self_end = procstat::sample(None);
    let load_end = procstat::loadavg();
    progress.stop.store(true, Ordering::Relaxed);
    let _ = phase_tx.send(Phase::Close);
    let close_deadline = Instant::now() + Duration::from_secs(10);
    for t in tasks {
        let left = close_deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, t).await;
    }

    // Report.
    let delivered = end.deliveries - before.deliveries;
    let acks = end.acks - before.acks;
    let sent = end.sent - before.sent;
    let expected = acks * receivers_per_message;
    let missing = expected.saturating_sub(delivered);
    let timeline = progress
        .timeline
        .lock()
        .map(|t| t.clone())
        .unwrap_or_default();
    let per_second: Vec<f64> = timeline
        .iter()
        .filter(|s| s["phase"] == "run")
        .filter_map(|s| s["deliveries_per_s"].as_f64())
        .collect();
    let mut server = server_report(
        args.server_pid,
        &server_idle,
        &server_before,
        &server_at_stop,
        &server_end,
        progress.server_rss_max.load(Ordering::Relaxed),
        ready,
    );
    // CPU per delivery over the run and the drain (every delivery counted happened in
    // that span): the figure to compare changes by, since wall-clock rates depend on
    // whatever else the machine is doing.
    let per_delivery = |a: &Option<procstat::Sample>, b: &Option<procstat::Sample>| match (a, b) {
        (Some(a), Some(b)) => json!({
            "cpu_s": round3(b.cpu_s - a.cpu_s),
            "cpu_us_per_delivery": (delivered > 0)
                .then(|| round3(1e6 * (b.cpu_s - a.cpu_s) / delivered as f64)),
        }),
        _ => serde_json::Value::Null,
    };
    if let Some(m) = server.as_object_mut() {
        m.insert(
            "run_and_drain".into(),
            per_delivery(&server_before, &server_end),
        );
    }
    let generator = match (&self_before, &self_at_stop) {
        (Some(a), Some(b)) => json!({
            "cpu_percent": round1(procstat::cpu_percent(a, b)),
            "rss_kib": b.rss_kib,
            "threads": args.threads,
            "run_and_drain": per_delivery(&self_before, &self_end),
        }),
        _ => serde_json::Value::Null,
    };
    let mut mix = serde_json::Map::new();
    for d in &chosen {
        let count = dialects.iter().filter(|x| *x == d).count();
        mix.insert(d.name().to_string(), json!(count));
    }
    // What makes the run fail (exit 1): a run that measured nothing must not pass.
    let mut problems: Vec<String> = Vec::new();
    if ready < n {
        problems.push(format!("{} of {n} clients never became usable", n - ready));
    }
    if let Some(e) = &setup_error {
        problems.push(format!("room set-up failed: {e}"));
    }
    let join_failed = shared.join_failed.load(Ordering::Relaxed);
    if join_failed > 0 {
        problems.push(format!("{join_failed} clients could not join their room"));
    }
    if is_messaging && sent == 0 {
        problems.push("no message was sent".into());
    } else if is_messaging && acks == 0 {
        problems.push(format!(
            "none of the {sent} messages sent was acknowledged (the server answered none, or not in a frame carrying the message)"
        ));
    }
    if missing > 0 {
        problems.push(format!("{missing} of {expected} deliveries missing"));
    }
    let disconnects = shared.disconnects.load(Ordering::Relaxed);
    if disconnects > 0 {
        problems.push(format!("{disconnects} clients were disconnected"));
    }
    let samples = shared.samples.lock().map(|s| s.clone()).unwrap_or_default();
    let report = json!({
        "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "url": args.url,
        "dialects": mix,
        "connections": n,
        "user_base": base,
        "machine": {
            "cpus": std::thread::available_parallelism().map(|c| c.get()).unwrap_or(0),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "nofile_limit": nofile,
        },
        "connect": {
            "ready": ready,
            "failed": shared.failed.load(Ordering::Relaxed),
            "seconds_until_all_ready": round3(connect_s),
            "connects_per_s": round1(ready as f64 / connect_s.max(1e-9)),
            "requested_rate": connect_rate,
            "latency": stats::summary(&connect_hist),
        },
        "run": {
            "seconds": round3(run_s),
            "rate": args.rate,
            "sent": sent,
            "acks": acks,
            "unacked": sent.saturating_sub(acks),
            "deliveries": delivered,
            "expected_deliveries": expected,
            "missing": missing,
            "receivers_per_message": receivers_per_message,
            "acks_per_s": round1((at_stop.acks - before.acks) as f64 / run_s.max(1e-9)),
            "deliveries_per_s": round1((at_stop.deliveries - before.deliveries) as f64 / run_s.max(1e-9)),
            "deliveries_per_s_median": round1(median(per_second)),
        },
        "delivery_latency": stats::summary(&stats::merged(stats::Kind::Delivery)),
        "ack_latency": stats::summary(&stats::merged(stats::Kind::Ack)),
        "errors": {
            "connect_failed": shared.failed.load(Ordering::Relaxed),
            "join_failed": shared.join_failed.load(Ordering::Relaxed),
            "error_frames": shared.error_frames.load(Ordering::Relaxed),
            "disconnects": shared.disconnects.load(Ordering::Relaxed),
            "room_setup": setup_error,
            "problems": problems,
            "samples": samples,
        },
        "setup": setup.to_json(args.setup),
        "verdict": {"ok": problems.is_empty(), "problems": problems},
        "server": server,
        "generator": generator,
        "timeline": timeline,
    });
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&report).expect("JSON report"),
        )
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    for p in &problems {
        eprintln!("chat-bench: run failed: {p}");
    }
    Ok(problems.is_empty())
}
