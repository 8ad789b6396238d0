//! chat-gateway: one server, legacy chat WebSocket dialects, one chat domain.
//!
//! This crate is the process around the domain: configuration, the HTTP listener(s),
//! the WebSocket upgrade and connection loop, the REST API, token verification, and
//! graceful shutdown. It mounts the dialects of its registry (the roster in
//! `chat-dialects`) at paths and names none of them; it holds no chat policy.

pub mod admission;
pub mod cli;
pub mod console;
pub mod http_util;
pub mod jwt;
pub mod metrics;
pub mod mounts;
pub mod multipart;
pub mod origin;
pub mod rest;
pub mod server;
pub mod state;
pub mod transfer;
pub mod ws;

use chat_core::{ChatService, FileStore, ServiceConfig};
use mounts::MountSpec;
use state::App;
pub use state::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use jwt::{Jwt, TokenSpec};

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub jwt: Jwt,
    /// Base of the absolute URLs of attachments; default `http://<listen address>`.
    pub public_base_url: Option<String>,
    pub data_dir: PathBuf,
    pub allowed_origins: Vec<String>,
    /// The dialects the gateway knows (default: the roster, `chat_dialects::all()`).
    pub registry: Vec<dialect_kit::Descriptor>,
    /// Enabled dialects (names in `registry`).
    pub dialects: Vec<String>,
    /// Mounts that replace a dialect's default path(s).
    pub mounts: Vec<MountSpec>,
    pub limits: Limits,
    pub pool_size: u32,
    pub ping_interval: Duration,
    /// Dialects to serve in their trusted mode, without tokens (a trusted legacy
    /// deployment; only dialects whose descriptor has a `TrustedMode`).
    pub trusted: Vec<String>,
    /// How the nodes of a cluster tell each other of events: `None` or `postgres`
    /// (NOTIFY, the default on PostgreSQL), or `redis://HOST:PORT`. Refused on
    /// SQLite, which is single-node.
    pub broker: Option<String>,
    /// Close sockets when their token expires.
    pub close_on_token_expiry: bool,
    /// Total bytes of one user's uploads; 0: no limit.
    pub max_upload_bytes_per_user: u64,
    /// Uploads no message took are deleted this long after upload; zero: never.
    pub unattached_upload_ttl: Duration,
    /// Serve `/metrics` here alone rather than on the main listener.
    pub metrics_listen: Option<SocketAddr>,
}

impl GatewayConfig {
    /// A configuration with every other setting at its CLI default.
    pub fn new(
        listen: SocketAddr,
        database_url: impl Into<String>,
        jwt: Jwt,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        GatewayConfig {
            listen,
            database_url: database_url.into(),
            jwt,
            public_base_url: None,
            data_dir: data_dir.into(),
            allowed_origins: Vec::new(),
            registry: chat_dialects::all(),
            dialects: mounts::names(&chat_dialects::all())
                .into_iter()
                .map(str::to_string)
                .collect(),
            mounts: Vec::new(),
            limits: Limits::default(),
            pool_size: 16,
            ping_interval: Duration::from_secs(30),
            trusted: Vec::new(),
            broker: None,
            close_on_token_expiry: false,
            max_upload_bytes_per_user: chat_core::service::DEFAULT_MAX_UPLOAD_BYTES_PER_USER,
            unattached_upload_ttl: chat_core::service::DEFAULT_UNATTACHED_UPLOAD_TTL,
            metrics_listen: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("database: {0}")]
    Store(#[from] chat_store::StoreSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Mount(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running gateway: its bound addresses and the service behind them.
pub struct RunningGateway {
    /// The main listener's address first, then dialects' own addresses.
    pub addrs: Vec<SocketAddr>,
    pub service: Arc<ChatService>,
    pub app: Arc<App>,
    /// This node's place in the cluster, when the database is PostgreSQL.
    pub cluster: Option<Arc<chat_cluster::Cluster>>,
    /// The `--metrics-listen` listener's address, when there is one.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningGateway {
    /// The main listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Resolves when the gateway was told to stop.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Fail `/readyz` from now on while everything else keeps serving (the first
    /// step of a drain: a load balancer stops sending clients here).
    pub fn begin_drain(&self) {
        self.app
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Fail readiness, stop accepting, close every client (WebSockets with a close
    /// frame, Socket.IO by closing its transport, both in batches), wait for them,
    /// leave the cluster, return.
    pub async fn stop(self) {
        self.begin_drain();
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Wait until the gateway stops (after its shutdown token is cancelled).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        server::drain(&self.app, Duration::from_secs(10)).await;
        if let Some(cluster) = self.cluster {
            // After the connections closed: their users go offline everywhere now.
            cluster.leave().await;
        }
    }
}

/// Connections the kernel holds completed for us before we accept them. After a
/// deploy every client reconnects at once; tokio's default (1024) overflowed under
/// 5,000 simultaneous connects, and each dropped handshake costs its client a 1 s SYN
/// retransmission. The kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 8192;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted gateway can take its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The Redis URL when `--broker` names Redis; an error for a broker that is not
/// one, or any broker on SQLite.
fn broker_choice(config: &GatewayConfig) -> Result<Option<String>, GatewayError> {
    let Some(broker) = config.broker.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let url = config.database_url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(GatewayError::Config(format!(
            "--broker {broker} needs a PostgreSQL database: SQLite is single-node (one gateway process per database file); run a cluster on PostgreSQL"
        )));
    }
    match broker {
        "" | "postgres" | "postgresql" => Ok(None),
        b if b.starts_with("redis://") => Ok(Some(b.to_string())),
        b => Err(GatewayError::Config(format!(
            "--broker {b}: expected `postgres` or `redis://HOST:PORT`"
        ))),
    }
}

/// Where attachment bytes live for the database at `database_url`: a cluster's
/// nodes share no disk, so on PostgreSQL they live in it; on SQLite in
/// `<data_dir>/files`. The store must have been opened (migrated) first.
pub async fn file_store(
    database_url: &str,
    data_dir: &std::path::Path,
) -> Result<FileStore, GatewayError> {
    Ok(match chat_store::blobs::open(database_url).await? {
        Some(shared) => FileStore::shared(shared),
        None => {
            tokio::fs::create_dir_all(data_dir.join("files")).await?;
            FileStore::new(data_dir.join("files"))
        }
    })
}

/// Bind every listener, open the database (applying migrations), and start serving.
pub async fn start(
    config: GatewayConfig,
    shutdown: CancellationToken,
) -> Result<RunningGateway, GatewayError> {
    let plan = mounts::plan(&config)?;
    let console_dialects = console::dialects(&config.registry, &plan);
    let mounted: Vec<&'static str> = plan
        .iter()
        .flat_map(|(_, routes)| routes.iter().map(|r| r.dialect))
        .collect();
    let redis = broker_choice(&config)?;
    let mut bound = Vec::new();
    for (addr, routes) in plan {
        let listener = listen(addr).map_err(|source| GatewayError::Bind { addr, source })?;
        let local = listener.local_addr()?;
        bound.push((local, listener, routes));
    }
    let main_addr = bound[0].0;
    let base = config
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{main_addr}"));
    let store = chat_store::connect(
        &config.database_url,
        chat_store::StoreOptions {
            pool_size: config.pool_size,
        },
    )
    .await?;
    let files = file_store(&config.database_url, &config.data_dir).await?;
    let service = ChatService::new(
        store,
        Arc::new(config.jwt.clone()),
        files,
        ServiceConfig {
            public_base_url: base.trim_end_matches('/').to_string(),
            max_attachment_bytes: config.limits.max_attachment_bytes,
            outbound_queue: config.limits.outbound_queue,
            close_on_token_expiry: config.close_on_token_expiry,
            caps: config.limits.caps.clone(),
            user_rate: config.limits.user_rate,
            max_upload_bytes_per_user: config.max_upload_bytes_per_user,
            unattached_upload_ttl: config.unattached_upload_ttl,
            ..ServiceConfig::default()
        },
    );
    // On PostgreSQL every node is a node of the cluster of that database, one alone
    // included: its events go through the outbox (see chat-cluster).
    // Every mounted dialect is in the metrics from the start, at zero.
    for name in mounted {
        service.meter().dialect(name);
    }
    let cluster = match chat_store::Outbox::open(&config.database_url).await? {
        Some(outbox) => {
            let mut cluster_config = chat_cluster::ClusterConfig::named(format!(
                "{main_addr} pid {}",
                std::process::id()
            ));
            cluster_config.redis = redis;
            Some(
                chat_cluster::Cluster::join(outbox, &service, cluster_config)
                    .await
                    .map_err(|e| GatewayError::Config(e.to_string()))?,
            )
        }
        None => None,
    };
    let app = Arc::new(App {
        service: service.clone(),
        origins: origin::OriginPolicy::with_default(&config.allowed_origins, &base),
        trusted: config
            .registry
            .iter()
            .filter(|d| d.trusted_mode.is_some() && config.trusted.iter().any(|t| t == d.name))
            .map(|d| d.name)
            .collect(),
        limits: config.limits.clone(),
        ping_interval: config.ping_interval,
        tracker: TaskTracker::new(),
        draining: std::sync::atomic::AtomicBool::new(false),
        cluster: cluster.clone(),
        admission: admission::Admission::new(
            config.limits.max_connections,
            config.limits.max_connections_per_ip,
        ),
        metrics_on_main: config.metrics_listen.is_none(),
        console_dialects,
    });
    let mut tasks = Vec::new();
    let mut metrics_addr = None;
    if let Some(addr) = config.metrics_listen {
        let listener = listen(addr).map_err(|source| GatewayError::Bind { addr, source })?;
        let local = listener.local_addr()?;
        tracing::info!("metrics on http://{local}/metrics");
        metrics_addr = Some(local);
        tasks.push(tokio::spawn(server::run_metrics(
            listener,
            app.clone(),
            shutdown.clone(),
        )));
    }
    let mut addrs = Vec::new();
    for (addr, listener, planned) in bound {
        let routes = mounts::instantiate(&planned, &service, &config);
        for r in &routes {
            tracing::info!(
                dialect = r.dialect_name(),
                "listening on ws://{addr}{}",
                r.path
            );
        }
        addrs.push(addr);
        tasks.push(tokio::spawn(server::run(
            listener,
            app.clone(),
            Arc::new(routes),
            shutdown.clone(),
        )));
    }
    // Every node sweeps; the deletes are idempotent, and a blob goes only when no
    // row of any node names it.
    tasks.push(service.spawn_upload_sweeper(shutdown.clone()));
    tracing::info!("HTTP API on http://{main_addr}/api, health on http://{main_addr}/healthz");
    Ok(RunningGateway {
        addrs,
        service,
        app,
        cluster,
        metrics_addr,
        shutdown,
        tasks,
    })
}
