//! What every listener of the gateway shares: the service, the edge limits, the
//! origin policy, the connection tracker and admission, and readiness.

use crate::origin::OriginPolicy;
use chat_core::ChatService;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// Limits applied at the edge (each has a `serve` flag; the README lists them).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest frame of a signed-in client of a WebSocket dialect whose frames
    /// carry no file bytes.
    pub max_frame_bytes: usize,
    /// Largest frame of a dialect whose frames carry files (base64; see
    /// `WsDialect::carries_files`).
    pub max_upload_frame_bytes: usize,
    /// Largest Engine.IO payload of the Socket.IO dialects.
    pub max_socketio_payload_bytes: usize,
    /// Largest frame a socket may send before it signs in; it may send at most
    /// four such frames' worth of bytes in all before signing in.
    pub max_unauthenticated_frame_bytes: usize,
    /// Time a socket has to sign in before it is closed.
    pub auth_timeout: Duration,
    pub max_attachment_bytes: usize,
    pub outbound_queue: usize,
    /// Open TCP connections (HTTP and WebSocket) per listener, in total and per
    /// source address; more are answered 503 and closed.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Time to send a request's headers, and the longest idle keep-alive wait.
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Bounds on the work of one request (lists, rooms, texts, pages).
    pub caps: chat_core::service::Caps,
    /// Commands per user, over all their connections (refused past it).
    pub user_rate: chat_core::throttle::Rate,
    /// Frames per WebSocket connection (reading pauses past it).
    pub conn_rate: chat_core::throttle::Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1024 * 1024,
            max_upload_frame_bytes: 16 * 1024 * 1024,
            max_socketio_payload_bytes: 256 * 1024,
            max_unauthenticated_frame_bytes: 8 * 1024,
            auth_timeout: Duration::from_secs(10),
            max_attachment_bytes: 10 * 1024 * 1024,
            outbound_queue: 1024,
            max_connections: 100_000,
            max_connections_per_ip: 1000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            caps: chat_core::service::Caps::default(),
            user_rate: chat_core::service::DEFAULT_USER_RATE,
            conn_rate: chat_core::throttle::Rate {
                per_sec: 100.0,
                burst: 200.0,
            },
        }
    }
}

/// What every listener shares.
pub struct App {
    pub service: Arc<ChatService>,
    pub origins: OriginPolicy,
    /// Dialects served in their trusted mode (no tokens): any request of theirs
    /// that carries an `Origin` header, i.e. any browser, is refused.
    pub trusted: Vec<&'static str>,
    pub limits: Limits,
    pub ping_interval: Duration,
    /// WebSocket connection tasks, awaited on shutdown.
    pub tracker: TaskTracker,
    /// Set when the node starts shutting down: `/readyz` fails from then on, so a
    /// load balancer stops sending clients here.
    pub draining: std::sync::atomic::AtomicBool,
    /// The node's cluster, whose broker `/readyz` also checks.
    pub cluster: Option<Arc<chat_cluster::Cluster>>,
    /// Open connections, capped in total and per source address (all listeners).
    pub admission: Arc<crate::admission::Admission>,
    /// `/metrics` is served on the main listener (not when `--metrics-listen`
    /// gives it a listener of its own).
    pub metrics_on_main: bool,
    /// What the console's "try it" pane may open.
    pub console_dialects: Vec<crate::console::ConsoleDialect>,
}

impl App {
    /// Ready for clients: not draining, the database answers, the cluster broker
    /// (if any) is connected. The reason when not.
    pub async fn readiness(&self) -> Result<(), String> {
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("draining: the node is shutting down".into());
        }
        self.service.store().ping().await.map_err(|e| {
            // The detail (hosts, paths) is for the log, not for whoever asks.
            tracing::warn!(error = %e, "readiness: the database does not answer");
            "database: not answering".to_string()
        })?;
        if let Some(cluster) = &self.cluster {
            if !cluster.is_healthy() {
                return Err("cluster broker: not connected (reconnecting)".into());
            }
        }
        Ok(())
    }
}
