//! The HTTP server: one hyper server per listen address, a router that dispatches by
//! path (WebSocket mounts first, then health, files and the REST API), the WebSocket
//! upgrade, and graceful shutdown.

use crate::http_util::{self, Body};
use crate::state::App;
use crate::ws::{run_connection, Budgeted, LoopConfig, ReadBudget};
use chat_core::meter::RefuseKind;
use chat_core::{ConnCtx, Handshake, WsDialect};
use dialect_kit::http::normalize_path;
use dialect_kit::HttpMount;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// How a mounted dialect is served.
#[derive(Clone)]
pub enum RouteKind {
    /// Exact path; WebSocket upgrade into the gateway's connection loop.
    Ws(Arc<dyn WsDialect>),
    /// The path and everything below it, handed to the dialect.
    Http(Arc<dyn HttpMount>),
}

/// A dialect mounted at a path (normalized: no trailing slash).
#[derive(Clone)]
pub struct Route {
    pub path: String,
    pub kind: RouteKind,
}

impl Route {
    pub fn dialect_name(&self) -> &'static str {
        match &self.kind {
            RouteKind::Ws(d) => d.name(),
            RouteKind::Http(m) => m.name(),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self.kind {
            RouteKind::Ws(_) => self.path == path,
            RouteKind::Http(_) => {
                path == self.path
                    || (path.starts_with(&self.path)
                        && path.as_bytes().get(self.path.len()) == Some(&b'/'))
            }
        }
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.dialect_name(), self.path)
    }
}

/// Clients closed at once while draining, and the pause between batches: a node's
/// clients reconnect elsewhere spread over a moment rather than all in one instant.
const DRAIN_BATCH: usize = 500;
const DRAIN_PAUSE: Duration = Duration::from_millis(50);

/// Serve one listener until `shutdown` is cancelled, then stop accepting, tell every
/// WebSocket to close, and wait (bounded) for connections to drain.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    routes: Arc<Vec<Route>>,
    shutdown: CancellationToken,
) {
    serve(listener, app, Serves::Api(routes), shutdown).await
}

/// Serve `/metrics` (and `/livez`) alone on `listener` (`--metrics-listen`) until
/// `shutdown`, with the main listener's limits: a scraper on a private address, the
/// API not exposed there.
pub async fn run_metrics(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    serve(listener, app, Serves::Metrics, shutdown).await
}

/// What a listener answers.
#[derive(Clone)]
enum Serves {
    /// The API, health, metrics and console, and the mounted dialects.
    Api(Arc<Vec<Route>>),
    /// Only `/metrics` and `/livez`.
    Metrics,
}

async fn serve(listener: TcpListener, app: Arc<App>, serves: Serves, shutdown: CancellationToken) {
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A client gets `header_timeout` to send a request's head, and the same to start
    // the next one on a kept-alive connection (hyper starts the timer when the
    // connection goes idle), so neither a slow head nor an idle socket is held for
    // ever. HTTP/2 connections are pinged and closed when the pings go unanswered.
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(app.limits.header_timeout);
    http.http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(100)
        .keep_alive_interval(Some(app.ping_interval))
        .keep_alive_timeout(Duration::from_secs(20));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and similar: back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let stream = match app.admission.admit(peer.ip()) {
            Ok(permit) => crate::admission::Held::new(stream, permit),
            Err(why) => {
                tracing::debug!(%peer, reason = %why, "connection refused");
                tokio::spawn(crate::admission::refuse(stream, why));
                continue;
            }
        };
        let first_byte = app.limits.header_timeout;
        let app = app.clone();
        let serves = serves.clone();
        let shutdown_c = shutdown.clone();
        let svc = hyper::service::service_fn(move |req| {
            let app = app.clone();
            let serves = serves.clone();
            let shutdown = shutdown_c.clone();
            async move {
                let resp = match serves {
                    Serves::Api(routes) => route(req, app, routes, shutdown, peer).await,
                    Serves::Metrics => metrics_only(&req, &app),
                };
                Ok::<_, Infallible>(resp)
            }
        });
        let watcher = graceful.watcher();
        let http = http.clone();
        tokio::spawn(async move {
            // A connection that never sends a byte is closed like a slow head (hyper
            // starts its header timer at the first byte).
            if !stream.readable_within(first_byte).await {
                tracing::debug!(%peer, "closing a connection that sent nothing");
                return;
            }
            let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    let Serves::Api(routes) = serves else {
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
        return;
    };
    app.service
        .hub()
        .close_all_paced(
            chat_core::hub::CloseReason::Shutdown,
            DRAIN_BATCH,
            DRAIN_PAUSE,
        )
        .await;
    for r in routes.iter() {
        if let RouteKind::Http(m) = &r.kind {
            m.shutdown().await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

/// Wait for the WebSocket tasks of `app` to finish (after shutdown), at most `limit`.
pub async fn drain(app: &App, limit: Duration) {
    app.tracker.close();
    let _ = tokio::time::timeout(limit, app.tracker.wait()).await;
}

async fn route(
    req: Request<Incoming>,
    app: Arc<App>,
    routes: Arc<Vec<Route>>,
    shutdown: CancellationToken,
    peer: SocketAddr,
) -> Response<Body> {
    let path = normalize_path(req.uri().path());
    // An exact WebSocket mount wins over a prefix mount (a prefix `/ws/` contains
    // `/ws/chat/`); among prefix mounts the longest wins.
    let exact = routes
        .iter()
        .find(|r| matches!(r.kind, RouteKind::Ws(_)) && r.matches(&path));
    let prefix = || {
        routes
            .iter()
            .filter(|r| matches!(r.kind, RouteKind::Http(_)) && r.matches(&path))
            .max_by_key(|r| r.path.len())
    };
    if let Some(r) = exact.or_else(prefix) {
        return match &r.kind {
            RouteKind::Ws(d) => upgrade(req, app, d.clone(), shutdown, peer).await,
            RouteKind::Http(m) => {
                let origin = req
                    .headers()
                    .get(header::ORIGIN)
                    .and_then(|v| v.to_str().ok());
                if origin.is_some() && app.trusted.contains(&m.name()) {
                    return refuse(
                        &app,
                        m.name(),
                        RefuseKind::Origin,
                        StatusCode::FORBIDDEN,
                        "refused",
                        format!(
                            "{} runs in trusted mode (no tokens): browsers are refused",
                            m.name()
                        ),
                    );
                }
                if app.origins.refuses_browser(origin) {
                    return refuse(
                        &app,
                        m.name(),
                        RefuseKind::Origin,
                        StatusCode::FORBIDDEN,
                        "refused",
                        "origin not allowed",
                    );
                }
                m.call(req).await
            }
        };
    }
    match path.as_str() {
        "/livez" => live(),
        // Readiness (`/healthz` is its older name).
        "/readyz" | "/healthz" => match app.readiness().await {
            Ok(()) => http_util::json(
                StatusCode::OK,
                &serde_json::json!({"status": "ok", "connections": app.service.hub().connection_count()}),
            ),
            Err(detail) => http_util::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": "unavailable", "detail": detail}),
            ),
        },
        "/metrics" if app.metrics_on_main => crate::metrics::response(&app),
        p if p == "/console" || p.starts_with("/console/") => {
            crate::console::handle(req, &app, p).await
        }
        p if p.starts_with("/files/") => crate::rest::serve_file(req, &app).await,
        p if p == "/api" || p.starts_with("/api/") => crate::rest::handle(req, &app).await,
        _ => http_util::error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    }
}

/// The `--metrics-listen` listener's answer.
fn metrics_only(req: &Request<Incoming>, app: &Arc<App>) -> Response<Body> {
    match normalize_path(req.uri().path()).as_str() {
        "/metrics" => crate::metrics::response(app),
        "/livez" => live(),
        _ => http_util::error(
            StatusCode::NOT_FOUND,
            "not_found",
            "this listener serves /metrics only",
        ),
    }
}

/// Liveness: the process serves HTTP. Never touches the database, so a database
/// outage does not get every node restarted.
fn live() -> Response<Body> {
    http_util::json(StatusCode::OK, &serde_json::json!({"status": "alive"}))
}

/// Refuse a handshake of `dialect` with the error response, counted by reason.
fn refuse(
    app: &App,
    dialect: &'static str,
    why: RefuseKind,
    status: StatusCode,
    code: &str,
    detail: impl Into<String>,
) -> Response<Body> {
    app.service.meter().dialect(dialect).refused(why);
    http_util::error(status, code, detail)
}

fn header_has_token(v: Option<&HeaderValue>, token: &str) -> bool {
    v.and_then(|v| v.to_str().ok())
        .is_some_and(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
}

async fn upgrade(
    mut req: Request<Incoming>,
    app: Arc<App>,
    dialect: Arc<dyn WsDialect>,
    shutdown: CancellationToken,
    peer: SocketAddr,
) -> Response<Body> {
    let headers = req.headers();
    let is_upgrade = header_has_token(headers.get(header::CONNECTION), "upgrade")
        && header_has_token(headers.get(header::UPGRADE), "websocket");
    if !is_upgrade {
        return refuse(
            &app,
            dialect.name(),
            RefuseKind::Handshake,
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            format!(
                "this is the {} WebSocket endpoint; connect with a WebSocket client",
                dialect.name()
            ),
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return refuse(
            &app,
            dialect.name(),
            RefuseKind::Handshake,
            StatusCode::BAD_REQUEST,
            "bad_handshake",
            "Sec-WebSocket-Version must be 13",
        );
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return refuse(
            &app,
            dialect.name(),
            RefuseKind::Handshake,
            StatusCode::BAD_REQUEST,
            "bad_handshake",
            "Sec-WebSocket-Key is missing",
        );
    };

    let query = req.uri().query().map(str::to_owned);
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if app.origins.refuses_browser(origin.as_deref()) {
        tracing::debug!(%peer, dialect = dialect.name(), "upgrade refused: origin not allowed");
        return refuse(
            &app,
            dialect.name(),
            RefuseKind::Origin,
            StatusCode::FORBIDDEN,
            "refused",
            "origin not allowed",
        );
    }
    let mut hs = Handshake {
        path: req.uri().path().to_string(),
        query: query.clone(),
        headers: headers.clone(),
        principal: None,
        token_error: None,
        origin_allowed: app.origins.allows(origin.as_deref()),
        origin_present: origin.is_some(),
    };
    if let Some(token) = http_util::find_token(headers, query.as_deref()) {
        match app.service.authenticate(&token).await {
            Ok(p) => hs.principal = Some(p),
            Err(chat_core::ChatError::Unauthenticated(e)) => hs.token_error = Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "authentication failed at the handshake");
                return http_util::chat_error(&e);
            }
        }
    }
    let session = match dialect.accept(&hs) {
        Ok(s) => s,
        Err(refusal) => {
            tracing::debug!(%peer, dialect = dialect.name(), reason = %refusal.reason, "upgrade refused");
            let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
            return refuse(
                &app,
                dialect.name(),
                RefuseKind::Auth,
                status,
                "refused",
                refusal.reason,
            );
        }
    };
    let offered: Vec<String> = hs
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .collect();
    let offered_refs: Vec<&str> = offered.iter().map(String::as_str).collect();
    let subprotocol = dialect.subprotocol(&offered_refs);

    let on_upgrade = hyper::upgrade::on(&mut req);
    let limits = &app.limits;
    let max_frame_bytes = match dialect.carries_files() {
        true => limits.max_upload_frame_bytes,
        false => limits.max_frame_bytes,
    };
    let cfg = LoopConfig {
        max_frame_bytes,
        max_unauthenticated_frame_bytes: limits.max_unauthenticated_frame_bytes,
        auth_timeout: limits.auth_timeout,
        ping_interval: app.ping_interval,
        conn_rate: limits.conn_rate,
        write_timeout: Duration::from_secs(10),
    };
    // Before signing in a socket may send four unauthenticated frames' worth.
    let budget = ReadBudget::new(limits.max_unauthenticated_frame_bytes.saturating_mul(4));
    // Frames between the configured limit and this hard cap get the dialect's own
    // "too large" error and the connection stays; above it the socket is closed (1009).
    let hard_cap = max_frame_bytes
        .saturating_mul(2)
        .max(max_frame_bytes + 64 * 1024);
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap))
        // tungstenite allocates (and zero-fills) the whole read buffer per connection
        // up front and keeps it for the connection's life, idle or not, so it is the
        // largest fixed cost of an idle socket. Client frames here are small commands
        // (a token plus a few fields, well under 2 KiB), so 2 KiB reads them in one
        // system call; a larger frame (an upload) still arrives whole, in 2 KiB reads.
        .read_buffer_size(2 * 1024)
        // Frames queue up to this much before a write; the connection loop flushes
        // after each batch of events, so this turns a batch into one system call
        // instead of one per frame, without holding anything back.
        .write_buffer_size(16 * 1024);
    let service = app.service.clone();
    let meter = service.meter().dialect(dialect.name());
    app.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    Budgeted::new(TokioIo::new(upgraded), budget.clone()),
                    Role::Server,
                    Some(ws_config),
                )
                .await;
                let mut cx = ConnCtx::new(service);
                cx.meter = Some(meter);
                run_connection(ws, session, cx, shutdown, cfg, budget).await;
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });

    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    if let Some(p) = subprotocol {
        resp = resp.header(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    resp.body(http_util::empty())
        .unwrap_or_else(|_| Response::new(http_util::empty()))
}
