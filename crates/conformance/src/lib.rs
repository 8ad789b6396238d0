//! chat-conformance: checks a live server against chat-gateway's AsyncAPI specs.
//!
//! The runner plays legacy clients of one dialect. For every operation of that
//! dialect's `protocol-specs/<dialect>/asyncapi.yaml` it sends what an old client
//! would send — the happy path, each documented error, and the actions whose pushes
//! other members must see — and validates every frame the server sends against the
//! schema of the spec message it is (see [`peer`]). It prints a pass/fail table per
//! case ([`report`]).
//!
//! Why it speaks only the wire: it must be just as usable against one of the old
//! backends as against the gateway, to show that the specs describe the old systems
//! (or to find where they do not). So everything it needs beyond the protocol comes
//! from the command line: tokens for two or three users (their ids are read from the
//! tokens' `user_id` claims unless given), rooms that only an administrator can make
//! (`--room`, `--project`, for the dialects that cannot create them), an admin token
//! for the one dialect with an admin endpoint. Whatever a dialect can create itself
//! (chats, direct chats) it creates. Which dialects there are, and which scenario
//! runs for each, is [`dialects`]' business: this file names none.
//!
//! A misbehaving server is a failed case, never a panic: network input is only ever
//! looked at through `Value` accessors and `Result`s.

pub mod dialects;
pub mod peer;
pub mod report;
pub mod spec;

use chat_client::jwt::{jwt_claims, jwt_user_id};
pub use chat_client::Dialect;
use peer::Timing;
pub use report::{CaseError, CaseResult, Outcome, Report};
pub use spec::Level;
use spec::Spec;
use std::path::PathBuf;
use std::time::Duration;

/// The repository's `protocol-specs/` directory (the default for `--specs`).
pub fn default_specs_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../protocol-specs"))
}

/// What one run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub dialect: Dialect,
    /// The dialect's endpoint, e.g. `ws://127.0.0.1:8080/ws/chat/`.
    pub url: String,
    /// Access tokens of distinct users, in order: A, B, C.
    pub tokens: Vec<String>,
    /// Their user ids, when the tokens do not carry `user_id` claims (same order).
    pub user_ids: Vec<i64>,
    /// Their usernames (a dialect that addresses users by username needs them), when
    /// the tokens carry no `username` claim.
    pub usernames: Vec<String>,
    /// An admin (`is_staff`) token for the admin endpoint (the dialect that has one).
    pub admin_token: Option<String>,
    /// The admin endpoint; default: `url` with the dialect's admin path.
    pub admin_url: Option<String>,
    /// A room whose members are A and B but not C (for a dialect that cannot make one).
    pub room: Option<i64>,
    /// A project id whose chat has A and B as members but not C (for the dialect with
    /// project chats).
    pub project: Option<i64>,
    /// Sent as `Origin` (a dialect may check it against an allow-list).
    pub origin: Option<String>,
    /// Directory holding `<dialect>/asyncapi.yaml`.
    pub specs_dir: PathBuf,
    /// Which promise to check: the seed's (`legacy`) or the gateway's full spec.
    pub level: Level,
    pub timing: Timing,
}

impl Config {
    pub fn new(dialect: Dialect, url: &str, tokens: Vec<String>) -> Config {
        Config {
            dialect,
            url: url.to_string(),
            tokens,
            user_ids: Vec::new(),
            usernames: Vec::new(),
            admin_token: None,
            admin_url: None,
            room: None,
            project: None,
            origin: None,
            specs_dir: default_specs_dir(),
            level: Level::Gateway,
            timing: Timing {
                timeout: Duration::from_secs(5),
                quiet: Duration::from_millis(200),
            },
        }
    }

    /// The first `n` users, with ids and usernames resolved.
    pub fn users(&self, n: usize) -> Result<Vec<User>, String> {
        if self.tokens.len() < n {
            return Err(format!(
                "{} needs {n} --token (distinct users), got {}",
                self.dialect.name(),
                self.tokens.len()
            ));
        }
        let mut out = Vec::new();
        for (i, token) in self.tokens.iter().take(n).enumerate() {
            let claims = jwt_claims(token);
            let id = self
                .user_ids
                .get(i)
                .copied()
                .or_else(|| jwt_user_id(token))
                .ok_or_else(|| {
                    format!(
                        "token {} has no user_id claim; pass --user-id for it",
                        i + 1
                    )
                })?;
            let username = self.usernames.get(i).cloned().or_else(|| {
                claims
                    .as_ref()
                    .and_then(|c| c.get("username"))
                    .and_then(|u| u.as_str())
                    .map(str::to_string)
            });
            out.push(User {
                label: ["A", "B", "C", "D"]
                    .get(i)
                    .copied()
                    .unwrap_or("X")
                    .to_string(),
                token: token.clone(),
                id,
                username,
            });
        }
        let mut ids: Vec<i64> = out.iter().map(|u| u.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != out.len() {
            return Err("the tokens must belong to distinct users".into());
        }
        Ok(out)
    }

    /// Headers for a connection carrying `token` as a bearer token (plus `Origin`).
    pub fn headers(&self, token: Option<&str>) -> Vec<(String, String)> {
        let mut h = Vec::new();
        if let Some(t) = token {
            h.push(("Authorization".to_string(), format!("Bearer {t}")));
        }
        if let Some(o) = &self.origin {
            h.push(("Origin".to_string(), o.clone()));
        }
        h
    }
}

/// Borrow a header list for `WsConn::connect`.
pub fn header_refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// One user the runner acts as.
#[derive(Clone, Debug)]
pub struct User {
    /// `A`, `B`, `C`: how the table names them.
    pub label: String,
    pub token: String,
    pub id: i64,
    pub username: Option<String>,
}

/// Load the dialect's spec and run its scenario.
pub async fn run(cfg: &Config) -> Report {
    let mut report = Report::new(cfg.dialect.name(), &cfg.url);
    report.level = cfg.level;
    let path = cfg.specs_dir.join(cfg.dialect.name()).join("asyncapi.yaml");
    let spec = match Spec::load_at(&path, cfg.level) {
        Ok(s) => s,
        Err(e) => {
            report.record("(spec)", "load the AsyncAPI document", Err(e.into()));
            return report;
        }
    };
    report.at_level(
        cfg.level,
        spec.gateway_cases.clone(),
        spec.departures.clone(),
    );
    report.record(
        "(spec)",
        "load the AsyncAPI document and compile every schema",
        if spec.problems.is_empty() {
            Ok(())
        } else {
            Err(spec.problems.join("; ").into())
        },
    );
    dialects::run(cfg, &spec, &mut report).await;
    let unseen = spec.unseen_server_messages();
    if !unseen.is_empty() {
        report.notes.push(format!(
            "server messages of the spec never received in this run: {}",
            unseen.join(", ")
        ));
    }
    let unmatched = report.unmatched_gateway_cases();
    if !unmatched.is_empty() {
        report.notes.push(format!(
            "x-conformance.gateway-cases that name no case of this run: {}",
            unmatched.join("; ")
        ));
    }
    report
}
