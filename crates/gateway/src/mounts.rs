//! Which dialect is served at which address and path.
//!
//! Every dialect is on by default at its legacy path on the main listener. An admin
//! can move a dialect to other paths, and give it a listen address of its own so a
//! legacy client keeps its exact URL (method-args and action-request were both
//! `/ws/chat/` in their old deployments). Two mounts on one address and path are a
//! configuration error naming both.

use crate::server::{normalize_path, Route};
use crate::{GatewayConfig, GatewayError};
use chat_core::WsDialect;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A dialect the gateway knows.
pub struct DialectInfo {
    pub name: &'static str,
    pub default_paths: &'static [&'static str],
    pub make: fn() -> Arc<dyn WsDialect>,
}

/// Every dialect, in the order of DESIGN.md.
pub fn registry() -> Vec<DialectInfo> {
    vec![
        DialectInfo {
            name: "method-args",
            default_paths: &["/ws/chat/"],
            make: || Arc::new(dialect_method_args::MethodArgs),
        },
        DialectInfo {
            name: "type-content",
            default_paths: &["/ws/chats/"],
            make: || Arc::new(dialect_type_content::TypeContent::new()),
        },
        DialectInfo {
            name: "action-request",
            default_paths: &["/ws/dcrf/chat/"],
            make: || Arc::new(dialect_action_request::ActionRequest::user()),
        },
        DialectInfo {
            name: "action-request-admin",
            default_paths: &["/ws/admin-chat/"],
            make: || Arc::new(dialect_action_request::ActionRequest::admin()),
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
pub fn plan(config: &GatewayConfig) -> Result<Vec<(SocketAddr, Vec<Route>)>, GatewayError> {
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
    let mut per_addr: Vec<(SocketAddr, Vec<Route>)> = vec![(config.listen, Vec::new())];
    for info in registry
        .iter()
        .filter(|d| config.dialects.iter().any(|n| n == d.name))
    {
        let dialect = (info.make)();
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
            let route = Route {
                path: key.1.clone(),
                dialect: dialect.clone(),
            };
            match per_addr.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, routes)) => routes.push(route),
                None => per_addr.push((addr, vec![route])),
            }
        }
    }
    Ok(per_addr)
}
