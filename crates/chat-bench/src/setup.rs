//! Setting a run's rooms up once every client is usable, so that any server of the
//! dialects can be measured, not only the gateway.
//!
//! Invariant: every client whose dialect names rooms by id gets a [`Target`] before
//! `Phase::Join`, or the run reports why not. Mechanism: `--setup auto` asks the
//! catalogue first — a room whose members' dialects need no id (dialects that address
//! a direct chat by the other user) needs nothing; a room one of the run's dialects
//! can create in the protocol (`Dialect::create_room` in the catalogue) is created on
//! a set-up connection of a member; only the rest goes through the admin REST API
//! (`POST /api/rooms`, the gateway's body and token first, then the DCRF peer's body).
//! `--setup protocol` never uses REST, `--setup rest` always does. Consequence: a
//! legacy server with no admin API is driven with what its own clients would send.
//!
//! A run that mixes dialects runs against one server that speaks all of them, so a
//! room may be created in a dialect other than its members' own.

use crate::cli::{Args, Scenario, Setup};
use crate::conn::{self, Plan, Shared};
use crate::http;
use chat_client::{Dialect, Target};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// How the rooms of a run were set up.
#[derive(Default, Debug)]
pub struct Outcome {
    /// Rooms created in the protocol.
    pub protocol: usize,
    /// Rooms created through the admin REST API.
    pub rest: usize,
    /// Rooms that needed nothing (addressed by their members).
    pub none: usize,
    /// The first failure, if any room could not be set up.
    pub error: Option<String>,
}

impl Outcome {
    pub fn to_json(&self, mode: Setup) -> serde_json::Value {
        json!({
            "mode": format!("{mode:?}").to_lowercase(),
            "protocol": self.protocol,
            "rest": self.rest,
            "none": self.none,
        })
    }
}

/// Where the admin REST API is and the token it takes.
pub struct Rest {
    pub addr: SocketAddr,
    pub host: String,
    pub token: String,
}

/// How one room gets made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    Nothing,
    /// A set-up connection in this dialect.
    Protocol(Dialect),
    Rest,
}

/// Decide for a room whose members speak `members`; `creator` is the run's dialect
/// that creates rooms in the protocol, if it has one.
fn how(
    mode: Setup,
    members: &[Dialect],
    direct: bool,
    creator: Option<Dialect>,
) -> Result<How, String> {
    let needs_id = members.iter().any(|d| d.needs_room_id(direct));
    match (mode, needs_id, creator) {
        (Setup::Rest, _, _) => Ok(How::Rest),
        (_, false, _) => Ok(How::Nothing),
        (_, true, Some(d)) => Ok(How::Protocol(d)),
        (Setup::Auto, true, None) => Ok(How::Rest),
        (Setup::Protocol, true, None) => {
            let names: Vec<&str> = members.iter().map(|d| d.name()).collect();
            Err(format!(
                "a {} room of {} needs an id and none of the run's dialects creates rooms in the protocol ({} can); use --setup auto or rest",
                if direct { "direct" } else { "group" },
                names.join(" and "),
                creators().join(", ")
            ))
        }
    }
}

/// Set the rooms of the run up and fill in every client's target.
pub async fn rooms(args: &Args, sh: &Arc<Shared>, plans: &[Plan], rest: Arc<Rest>) -> Outcome {
    let mut out = Outcome::default();
    let mut chosen: Vec<Dialect> = args.dialects.iter().map(|d| d.0).collect();
    chosen.dedup();
    let creator = chosen
        .iter()
        .copied()
        .find(|d| d.create_room(&[], None).is_some());
    match args.scenario {
        Scenario::Fanout => {
            let Some(first) = plans.first() else {
                return out;
            };
            let made = match how(args.setup, &chosen, false, creator) {
                Err(e) => Err(e),
                Ok(How::Nothing) => Ok(0),
                Ok(How::Protocol(d)) => {
                    let others: Vec<i64> = plans[1..].iter().map(|p| p.user).collect();
                    let as_creator = Plan {
                        dialect: d,
                        ..first.clone()
                    };
                    out.protocol += 1;
                    conn::create_room(sh, &as_creator, &others, Some("chat-bench fanout")).await
                }
                Ok(How::Rest) => {
                    out.rest += 1;
                    let users: Vec<i64> = plans.iter().map(|p| p.user).collect();
                    rest_room(&rest, &users, false).await
                }
            };
            match made {
                Ok(id) => {
                    for t in &sh.targets {
                        let _ = t.set(Target {
                            room_id: id,
                            direct: false,
                            peer: None,
                        });
                    }
                }
                Err(e) => out.error = Some(e),
            }
        }
        Scenario::Direct => {
            let sem = Arc::new(tokio::sync::Semaphore::new(16));
            let mut jobs = Vec::new();
            for (p, pair) in plans.chunks_exact(2).enumerate() {
                let (a, b) = (pair[0].clone(), pair[1].clone());
                let how = match how(args.setup, &[a.dialect, b.dialect], true, creator) {
                    Ok(h) => h,
                    Err(e) => {
                        out.error.get_or_insert(e);
                        continue;
                    }
                };
                match how {
                    How::Nothing => out.none += 1,
                    How::Protocol(_) => out.protocol += 1,
                    How::Rest => out.rest += 1,
                }
                let (sem, sh, rest) = (sem.clone(), sh.clone(), rest.clone());
                jobs.push(tokio::spawn(async move {
                    let _permit = sem.acquire().await;
                    let id = match how {
                        How::Nothing => 0,
                        How::Protocol(d) => {
                            let as_creator = Plan {
                                dialect: d,
                                ..a.clone()
                            };
                            conn::create_room(&sh, &as_creator, &[b.user], None).await?
                        }
                        How::Rest => rest_room(&rest, &[a.user, b.user], true).await?,
                    };
                    let _ = sh.targets[2 * p].set(Target {
                        room_id: id,
                        direct: true,
                        peer: Some((b.user, crate::username(b.user))),
                    });
                    let _ = sh.targets[2 * p + 1].set(Target {
                        room_id: id,
                        direct: true,
                        peer: Some((a.user, crate::username(a.user))),
                    });
                    Ok::<(), String>(())
                }));
            }
            for j in jobs {
                match j.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        out.error.get_or_insert(e);
                    }
                    Err(e) => {
                        out.error.get_or_insert(format!("set-up task: {e}"));
                    }
                }
            }
        }
        Scenario::Idle | Scenario::Storm => {}
    }
    out
}

/// One room through the admin REST API. The gateway's body (`kind`, `members`, with
/// the admin token) first; a server that refuses it gets the DCRF peer's body
/// (`participants`, `has_business`). The id is the answer's `id` or `pk`.
async fn rest_room(rest: &Rest, members: &[i64], direct: bool) -> Result<i64, String> {
    let gateway = if direct {
        json!({"kind": "direct", "members": members})
    } else {
        json!({"kind": "group", "title": "chat-bench fanout", "members": members})
    };
    let dcrf = json!({"participants": members, "has_business": false});
    let first = post_room(rest, &gateway.to_string()).await;
    match first {
        Ok(id) => Ok(id),
        Err(e1) => post_room(rest, &dcrf.to_string())
            .await
            .map_err(|e2| format!("{e1}; with the DCRF body: {e2}")),
    }
}

async fn post_room(rest: &Rest, body: &str) -> Result<i64, String> {
    let r = http::post_json(rest.addr, &rest.host, "/api/rooms", &rest.token, body)
        .await
        .map_err(|e| format!("POST /api/rooms: {e}"))?;
    if r.status != 201 && r.status != 200 {
        return Err(format!("POST /api/rooms: {} {}", r.status, r.body.trim()));
    }
    let v: serde_json::Value =
        serde_json::from_str(&r.body).map_err(|e| format!("POST /api/rooms: {e}"))?;
    let id = |x: &serde_json::Value| {
        x.as_i64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
    };
    id(&v["id"])
        .or_else(|| id(&v["pk"]))
        .ok_or_else(|| format!("POST /api/rooms: no id or pk in {}", r.body))
}

/// The dialects of the catalogue that create rooms in their protocol, by name.
fn creators() -> Vec<&'static str> {
    Dialect::ALL
        .into_iter()
        .filter(|d| d.create_room(&[1], Some("t")).is_some())
        .map(|d| d.name())
        .collect()
}

#[cfg(test)]
mod tests;
