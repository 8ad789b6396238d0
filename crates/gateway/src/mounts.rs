//! Which dialect is served at which address and path.
//!
//! Every dialect is on by default at its legacy path on the main listener. An admin
//! can move a dialect to other paths, and give it a listen address of its own so a
//! legacy client keeps its exact URL (method-args and action-request were both
//! `/ws/chat/` in their old deployments). Two mounts on one address and path are a
//! configuration error naming both.

use crate::server::{normalize_path, HttpMount, Route, RouteKind};
use crate::{GatewayConfig, GatewayError};
use chat_core::{ChatService, WsDialect};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a Socket.IO dialect is built with.
#[derive(Clone, Debug)]
pub struct SioParams {
    /// The mount path (socketioxide's request path).
    pub path: String,
    /// Largest payload accepted, in bytes.
    pub max_payload: u64,
    /// socketio-rooms only: serve without tokens (a trusted legacy deployment).
    pub trusted: bool,
    /// Time a client has to send its namespace CONNECT (with its token).
    pub connect_timeout: std::time::Duration,
}

/// How a dialect is served.
#[derive(Clone, Copy)]
pub enum Make {
    /// A plain-WebSocket dialect driven by the gateway's connection loop.
    Ws(fn() -> Arc<dyn WsDialect>),
    /// A dialect that serves HTTP itself under its path (Socket.IO: polling and
    /// WebSocket transports), built once the service exists.
    Http(fn(Arc<ChatService>, SioParams) -> Arc<dyn HttpMount>),
}

/// A dialect the gateway knows.
pub struct DialectInfo {
    pub name: &'static str,
    pub default_paths: &'static [&'static str],
    pub make: Make,
}

/// A route before the service exists: which dialect, at which normalized path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRoute {
    pub dialect: &'static str,
    pub path: String,
}

/// Every dialect, in the order of DESIGN.md.
pub fn registry() -> Vec<DialectInfo> {
    vec![
        DialectInfo {
            name: "method-args",
            default_paths: &["/ws/chat/"],
            make: Make::Ws(|| Arc::new(dialect_method_args::MethodArgs)),
        },
        DialectInfo {
            name: "type-content",
            default_paths: &["/ws/chats/"],
            make: Make::Ws(|| Arc::new(dialect_type_content::TypeContent::new())),
        },
        DialectInfo {
            name: "action-request",
            default_paths: &["/ws/dcrf/chat/"],
            make: Make::Ws(|| Arc::new(dialect_action_request::ActionRequest::user())),
        },
        DialectInfo {
            name: "action-request-admin",
            default_paths: &["/ws/admin-chat/"],
            make: Make::Ws(|| Arc::new(dialect_action_request::ActionRequest::admin())),
        },
        // After the WebSocket dialects: an HTTP mount takes its whole subtree, and the
        // router tries routes in this order, so `/ws/chat/` stays method-args' while
        // everything else under `/ws/` is socketio-pubsub's.
        DialectInfo {
            name: "socketio-rooms",
            default_paths: &["/socket.io/"],
            make: Make::Http(crate::socketio::rooms),
        },
        DialectInfo {
            name: "socketio-pubsub",
            default_paths: &["/ws/"],
            make: Make::Http(crate::socketio::pubsub),
        },
    ]
}

/// The names of every dialect, for `--dialects` help and defaults.
pub fn all_names() -> Vec<&'static str> {
    registry().iter().map(|d| d.name).collect()
}

/// `--mount NAME=PATH[,PATH…][@ADDR]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    pub dialect: String,
    pub paths: Vec<String>,
    pub addr: Option<SocketAddr>,
}

impl std::str::FromStr for MountSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected NAME=PATH[,PATH...][@ADDR]"))?;
        let (paths, addr) = match rest.rsplit_once('@') {
            Some((p, a)) => (
                p,
                Some(
                    a.parse::<SocketAddr>()
                        .map_err(|e| format!("`{s}`: bad address `{a}`: {e}"))?,
                ),
            ),
            None => (rest, None),
        };
        let paths: Vec<String> = paths
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
            return Err(format!("`{s}`: paths must start with `/`"));
        }
        Ok(MountSpec {
            dialect: name.trim().to_string(),
            paths,
            addr,
        })
    }
}

/// Resolve the configuration into routes per listen address (the main address first).
pub fn plan(config: &GatewayConfig) -> Result<Vec<(SocketAddr, Vec<PlannedRoute>)>, GatewayError> {
    let registry = registry();
    for name in config
        .dialects
        .iter()
        .chain(config.mounts.iter().map(|m| &m.dialect))
    {
        if !registry.iter().any(|d| d.name == name) {
            return Err(GatewayError::Config(format!(
                "unknown dialect `{name}`; known: {}",
                all_names().join(", ")
            )));
        }
    }
    for m in &config.mounts {
        if !config.dialects.contains(&m.dialect) {
            return Err(GatewayError::Config(format!(
                "--mount names `{}`, which is not enabled by --dialects",
                m.dialect
            )));
        }
    }
    // (address, path) → (dialect, the flag or default that put it there)
    let mut taken: BTreeMap<(SocketAddr, String), (String, String)> = BTreeMap::new();
    let mut per_addr: Vec<(SocketAddr, Vec<PlannedRoute>)> = vec![(config.listen, Vec::new())];
    for info in registry
        .iter()
        .filter(|d| config.dialects.iter().any(|n| n == d.name))
    {
        let specs: Vec<(SocketAddr, String, String)> = {
            let mine: Vec<&MountSpec> = config
                .mounts
                .iter()
                .filter(|m| m.dialect == info.name)
                .collect();
            if mine.is_empty() {
                info.default_paths
                    .iter()
                    .map(|p| {
                        (
                            config.listen,
                            p.to_string(),
                            format!("default mount of {}", info.name),
                        )
                    })
                    .collect()
            } else {
                mine.iter()
                    .flat_map(|m| {
                        let addr = m.addr.unwrap_or(config.listen);
                        m.paths.iter().map(move |p| {
                            (
                                addr,
                                p.clone(),
                                format!("--mount {}={}@{}", m.dialect, p, addr),
                            )
                        })
                    })
                    .collect()
            }
        };
        for (addr, path, source) in specs {
            let key = (addr, normalize_path(&path));
            if let Some((other, other_source)) = taken.get(&key) {
                return Err(GatewayError::Mount(format!(
                    "mount conflict on {addr}{}: `{}` ({}) and `{}` ({})",
                    key.1, other, other_source, info.name, source
                )));
            }
            taken.insert(key.clone(), (info.name.to_string(), source));
            let route = PlannedRoute {
                dialect: info.name,
                path: key.1.clone(),
            };
            match per_addr.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, routes)) => routes.push(route),
                None => per_addr.push((addr, vec![route])),
            }
        }
    }
    Ok(per_addr)
}

/// Build the planned routes of one listener once the service exists.
pub fn instantiate(
    planned: &[PlannedRoute],
    service: &Arc<ChatService>,
    config: &GatewayConfig,
) -> Vec<Route> {
    let registry = registry();
    planned
        .iter()
        .filter_map(|p| {
            let info = registry.iter().find(|d| d.name == p.dialect)?;
            let kind = match info.make {
                Make::Ws(make) => RouteKind::Ws(make()),
                Make::Http(make) => RouteKind::Http(make(
                    service.clone(),
                    SioParams {
                        path: p.path.clone(),
                        max_payload: config.limits.max_socketio_payload_bytes as u64,
                        connect_timeout: config.limits.auth_timeout,
                        trusted: config.socketio_rooms_trusted,
                    },
                )),
            };
            Some(Route {
                path: p.path.clone(),
                kind,
            })
        })
        .collect()
}
