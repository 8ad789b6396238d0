//! `/console`: a page for the operator, served from assets embedded in the binary.
//!
//! The page itself holds no secret and no data: it asks for an admin token, then
//! polls `/console/api/stats` (admin only) for this node's figures and rooms, and
//! reads `/console/api/dialects` for what is mounted and how a browser reaches it
//! (from each descriptor's [`dialect_kit::TryIt`]), so the "try it" pane knows no
//! dialect by name. Socket.IO dialects are tried through the npm `socket.io-client`
//! bundle, embedded at build time (see `build.rs`); nothing is fetched from a CDN.

use crate::http_util::{self, Body};
use crate::mounts::PlannedRoute;
use crate::state::App;
use chat_core::meter::CloseKind;
use dialect_kit::{Descriptor, Transport};
use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");
const SOCKET_IO: &str = include_str!(concat!(env!("OUT_DIR"), "/socket.io.min.js"));

/// Rooms listed at most (the console is a look at a node, not a room browser).
const MAX_ROOMS: usize = 200;

/// A mounted dialect as the console's "try it" pane needs it.
#[derive(Clone, Debug, Serialize)]
pub struct ConsoleDialect {
    pub name: &'static str,
    pub path: String,
    /// The listener's address when it is not the main one (the page then connects
    /// there rather than to its own host).
    pub addr: Option<SocketAddr>,
    pub transport: &'static str,
    pub namespace: Option<&'static str>,
    pub samples: Vec<ConsoleSample>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConsoleSample {
    pub label: &'static str,
    pub frame: &'static str,
}

/// The console's list of dialects, from the planned mounts: one entry per dialect
/// offered in the pane, at its first path.
pub fn dialects(
    registry: &[Descriptor],
    plan: &[(SocketAddr, Vec<PlannedRoute>)],
) -> Vec<ConsoleDialect> {
    let mut out: Vec<ConsoleDialect> = Vec::new();
    for (i, (addr, routes)) in plan.iter().enumerate() {
        for r in routes {
            if out.iter().any(|d| d.name == r.dialect) {
                continue;
            }
            let Some(try_it) = registry
                .iter()
                .find(|d| d.name == r.dialect)
                .and_then(|d| d.try_it)
            else {
                continue;
            };
            let namespace = match try_it.transport {
                Transport::SocketIo { namespace } => Some(namespace),
                Transport::WebSocket => None,
            };
            out.push(ConsoleDialect {
                name: r.dialect,
                path: r.path.clone(),
                addr: (i > 0).then_some(*addr),
                transport: try_it.transport.name(),
                namespace,
                samples: try_it
                    .samples
                    .iter()
                    .map(|s| ConsoleSample {
                        label: s.label,
                        frame: s.frame,
                    })
                    .collect(),
            });
        }
    }
    out
}

fn asset(content_type: &str, text: &'static str) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        // The page runs only its own scripts; it connects to this gateway alone.
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:",
        )
        .body(http_util::full(text))
        .unwrap_or_else(|_| Response::new(http_util::empty()))
}

/// Answer a request under `/console`.
pub async fn handle(req: Request<Incoming>, app: &App, path: &str) -> Response<Body> {
    match path {
        "/console" => asset("text/html; charset=utf-8", INDEX),
        "/console/console.js" => asset("text/javascript; charset=utf-8", SCRIPT),
        "/console/console.css" => asset("text/css; charset=utf-8", STYLE),
        "/console/socket.io.min.js" => asset("text/javascript; charset=utf-8", SOCKET_IO),
        "/console/api/dialects" => http_util::json(
            StatusCode::OK,
            &serde_json::json!({ "dialects": app.console_dialects }),
        ),
        "/console/api/stats" => match stats(&req, app).await {
            Ok(v) => http_util::json(StatusCode::OK, &v),
            Err(e) => http_util::chat_error(&e),
        },
        _ => http_util::error(StatusCode::NOT_FOUND, "not_found", "no such console page"),
    }
}

#[derive(Serialize)]
struct DialectStats {
    name: &'static str,
    open: i64,
    accepted: u64,
    closed: u64,
    slow_consumer_closes: u64,
    messages_committed: u64,
    events_delivered: u64,
    frames_in: u64,
    frames_out: u64,
}

/// This node's figures and rooms, for an admin.
async fn stats(
    req: &Request<Incoming>,
    app: &App,
) -> Result<serde_json::Value, chat_core::ChatError> {
    let token = http_util::find_token(req.headers(), None).ok_or(
        chat_core::ChatError::Unauthenticated(chat_core::TokenError::Missing),
    )?;
    let principal = app.service.authenticate(&token).await?;
    chat_core::policy::require_admin(&principal)?;
    let dialects: Vec<DialectStats> = app
        .service
        .meter()
        .dialects()
        .iter()
        .map(|m| DialectStats {
            name: m.name,
            open: m.open.load(Relaxed),
            accepted: m.accepted.load(Relaxed),
            closed: CloseKind::ALL.iter().map(|k| m.closed_count(*k)).sum(),
            slow_consumer_closes: m.closed_count(CloseKind::SlowConsumer),
            messages_committed: m.messages_committed.load(Relaxed),
            events_delivered: m.events_delivered.load(Relaxed),
            frames_in: m.frames_in.load(Relaxed),
            frames_out: m.frames_out.load(Relaxed),
        })
        .collect();
    // The console is an admin endpoint: its admin views every room, as a moderator.
    let mut moderator = principal.clone();
    moderator.moderator = true;
    let rooms = app.service.rooms(&moderator).await?;
    let total_rooms = rooms.len();
    let rooms: Vec<_> = rooms
        .iter()
        .take(MAX_ROOMS)
        .map(|r| crate::rest::api_room(app, r))
        .collect();
    let hub = app.service.hub();
    Ok(serde_json::json!({
        "node": app.cluster.as_ref().map(|c| c.node_id()),
        "version": env!("CARGO_PKG_VERSION"),
        "connections": hub.connection_count(),
        "online_users": hub.online_users().len(),
        "messages_committed": dialects.iter().map(|d| d.messages_committed).sum::<u64>(),
        "slow_consumer_closes": dialects.iter().map(|d| d.slow_consumer_closes).sum::<u64>(),
        "dialects": dialects,
        "rooms": rooms,
        "total_rooms": total_rooms,
    }))
}
