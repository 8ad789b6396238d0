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
//! rate, create the rooms (admin REST API), join them where the dialect needs it, send
//! for the chosen time, stop sending and wait for what is still in flight, then close.
//! Missing deliveries are what acknowledged messages should have reached and did not.

mod conn;
mod dialect;
mod http;
mod procstat;
mod stats;
mod wire;

use clap::Parser;
use conn::{Phase, Plan, Role, Shared};
use dialect::{Dialect, Target};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// One room, every client a member; `--senders` of them send at `--rate` in total.
    Fanout,
    /// `--pairs` direct rooms of two; both members send, closed loop unless `--rate`.
    Direct,
    /// `--connections` idle clients; the server's memory per connection.
    Idle,
    /// `--connections` clients connect and authenticate at once; time until all usable.
    Storm,
}

#[derive(Parser, Debug)]
#[command(
    name = "chat-bench",
    about = "Load generator for the chat gateway's five WebSocket dialects"
)]
struct Args {
    /// Server base URL (http:// or ws://, host and port). Several, comma-separated
    /// or repeated: the nodes of one cluster; clients are spread over them
    /// round-robin (so the two members of a direct pair are on different nodes), and
    /// rooms are set up through the first.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    url: Vec<String>,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Dialects of the clients, assigned round-robin.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "method-args,type-content,action-request,socketio-rooms"
    )]
    dialects: Vec<Dialect>,
    /// Clients: room size for fanout (default 1000), count for idle (15000) and storm (5000).
    #[arg(long)]
    connections: Option<usize>,
    /// Direct scenario: number of two-member rooms.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Fanout scenario: how many members send.
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages per second over all senders; 0 means closed loop (send, await own ack, repeat).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of sending (fanout, direct) or of holding the connections (idle, storm).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait after sending stops for deliveries still in flight.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// New connections per second; 0 opens them all at once (storm's default).
    #[arg(long)]
    connect_rate: Option<f64>,
    /// Spread client sockets over 127.0.0.1..=127.0.0.N (loopback targets only).
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// HS256 secret to mint simplejwt-shaped access tokens for the benchmark users.
    #[arg(long, env = "CHAT_BENCH_JWT_SECRET")]
    jwt_secret: String,
    /// Admin token for `POST /api/rooms`; minted with the secret when absent.
    #[arg(long)]
    admin_token: Option<String>,
    /// First user id of this run (default: derived from the clock, so runs never collide).
    #[arg(long)]
    user_base: Option<i64>,
    /// The server's pid: report its CPU and resident memory over the run.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Generator worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Extra characters appended to every message text.
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// `Origin` header for the upgrades (action-request servers check it).
    #[arg(long, default_value = "http://localhost")]
    origin: String,
    /// Storm: do not sign every user in once beforehand, so the storm measures
    /// first-sight sign-ups instead of returning users.
    #[arg(long)]
    new_users: bool,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    #[arg(long, default_value = "/ws/chat/")]
    path_method_args: String,
    #[arg(long, default_value = "/ws/chats/")]
    path_type_content: String,
    #[arg(long, default_value = "/ws/dcrf/chat/")]
    path_action_request: String,
    #[arg(long, default_value = "/socket.io/")]
    path_socketio_rooms: String,
    #[arg(long, default_value = "/ws/")]
    path_socketio_pubsub: String,
}

/// Where each dialect is mounted on the target server.
#[derive(Clone, Debug)]
pub struct Paths {
    method_args: String,
    type_content: String,
    action_request: String,
    socketio_rooms: String,
    socketio_pubsub: String,
}

impl Paths {
    pub fn of(&self, d: Dialect) -> &str {
        match d {
            Dialect::MethodArgs => &self.method_args,
            Dialect::TypeContent => &self.type_content,
            Dialect::ActionRequest => &self.action_request,
            Dialect::SocketioRooms => &self.socketio_rooms,
            Dialect::SocketioPubsub => &self.socketio_pubsub,
        }
    }
}

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
    let args = Args::parse();
    let nofile = raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args, nofile)) {
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

/// Progress line and per-second timeline, until `stop` is set.
struct Progress {
    timeline: std::sync::Mutex<Vec<serde_json::Value>>,
    stop: std::sync::atomic::AtomicBool,
    server_rss_max: std::sync::atomic::AtomicU64,
}

async fn run(args: Args, nofile: u64) -> Result<bool, String> {
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
    if args.scenario == Scenario::Fanout && args.dialects.iter().any(|d| !d.sees_groups()) {
        return Err(
            "socketio-pubsub shows only two-member conversations; leave it out of --dialects for fanout"
                .into(),
        );
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
        let dialect = args.dialects[i % args.dialects.len()];
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
        paths: Paths {
            method_args: args.path_method_args.clone(),
            type_content: args.path_type_content.clone(),
            action_request: args.path_action_request.clone(),
            socketio_rooms: args.path_socketio_rooms.clone(),
            socketio_pubsub: args.path_socketio_pubsub.clone(),
        },
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
    let users: Vec<i64> = plans.iter().map(|p| p.user).collect();
    let dialects: Vec<Dialect> = plans.iter().map(|p| p.dialect).collect();
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
    let mut setup_error = None;
    match args.scenario {
        Scenario::Fanout => {
            let body = json!({"kind": "group", "title": "chat-bench fanout", "members": users})
                .to_string();
            match create_room(addr, &host, &admin_token, &body).await {
                Ok(id) => {
                    for t in &shared.targets {
                        let _ = t.set(Target {
                            room_id: id,
                            direct: false,
                            peer: None,
                        });
                    }
                }
                Err(e) => setup_error = Some(e),
            }
        }
        Scenario::Direct => {
            let sem = Arc::new(tokio::sync::Semaphore::new(16));
            let mut jobs = Vec::new();
            for p in 0..args.pairs {
                let (a, b) = (users[2 * p], users[2 * p + 1]);
                let body = json!({"kind": "direct", "members": [a, b]}).to_string();
                let (host, token, sem, sh) = (
                    host.clone(),
                    admin_token.clone(),
                    sem.clone(),
                    shared.clone(),
                );
                jobs.push(tokio::spawn(async move {
                    let _permit = sem.acquire().await;
                    let id = create_room(addr, &host, &token, &body).await?;
                    let _ = sh.targets[2 * p].set(Target {
                        room_id: id,
                        direct: true,
                        peer: Some((b, username(b))),
                    });
                    let _ = sh.targets[2 * p + 1].set(Target {
                        room_id: id,
                        direct: true,
                        peer: Some((a, username(a))),
                    });
                    Ok::<(), String>(())
                }));
            }
            for j in jobs {
                if let Ok(Err(e)) = j.await {
                    setup_error.get_or_insert(e);
                }
            }
        }
        Scenario::Idle | Scenario::Storm => {}
    }
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
    for d in &args.dialects {
        let count = dialects.iter().filter(|x| *x == d).count();
        mix.insert(d.name().to_string(), json!(count));
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
            "samples": samples,
        },
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
    let ok = ready == n
        && setup_error.is_none()
        && missing == 0
        && shared.disconnects.load(Ordering::Relaxed) == 0;
    Ok(ok)
}

async fn create_room(addr: SocketAddr, host: &str, token: &str, body: &str) -> Result<i64, String> {
    let r = http::post_json(addr, host, "/api/rooms", token, body)
        .await
        .map_err(|e| format!("POST /api/rooms: {e}"))?;
    if r.status != 201 && r.status != 200 {
        return Err(format!("POST /api/rooms: {} {}", r.status, r.body));
    }
    let v: serde_json::Value =
        serde_json::from_str(&r.body).map_err(|e| format!("POST /api/rooms: {e}"))?;
    v["id"]
        .as_i64()
        .or_else(|| v["id"].as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("POST /api/rooms: no id in {}", r.body))
}

fn server_report(
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

fn spawn_progress(
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

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn print_table(r: &serde_json::Value) {
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
