//! Which dialect is served at which address and path.
//!
//! The dialects are those of the configuration's registry (by default the roster,
//! `chat_dialects::all()`). Every dialect is on by default at its legacy path on the
//! main listener. An admin can move a dialect to other paths, and give it a listen
//! address of its own so a legacy client keeps its exact URL (two legacy backends both
//! served `/ws/chat/`). Two mounts on one address and path are a configuration error
//! naming both.

use crate::server::{Route, RouteKind};
use crate::{GatewayConfig, GatewayError};
use chat_core::ChatService;
use dialect_kit::http::normalize_path;
use dialect_kit::{Descriptor, MountParams, Serve};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A route before the service exists: which dialect, at which normalized path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRoute {
    pub dialect: &'static str,
    pub path: String,
}

/// The names of every dialect of `registry`, for `--dialects` help and defaults.
pub fn names(registry: &[Descriptor]) -> Vec<&'static str> {
    registry.iter().map(|d| d.name).collect()
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
    let registry = &config.registry;
    for name in config
        .dialects
        .iter()
        .chain(config.mounts.iter().map(|m| &m.dialect))
    {
        if !registry.iter().any(|d| d.name == name) {
            return Err(GatewayError::Config(format!(
                "unknown dialect `{name}`; known: {}",
                names(registry).join(", ")
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
    planned
        .iter()
        .filter_map(|p| {
            let info = config.registry.iter().find(|d| d.name == p.dialect)?;
            let kind = match info.serve {
                Serve::Ws(make) => RouteKind::Ws(make()),
                Serve::Http(make) => RouteKind::Http(make(
                    service.clone(),
                    MountParams {
                        path: p.path.clone(),
                        max_payload: config.limits.max_socketio_payload_bytes as u64,
                        connect_timeout: config.limits.auth_timeout,
                        trusted: config.trusted.iter().any(|t| t == info.name),
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
