//! The command line. Every flag of `serve` can also be set through an environment
//! variable (`CHAT_GATEWAY_<FLAG>`), which is how containers are usually configured.

use crate::mounts::MountSpec;
use crate::state::Limits;
use crate::{GatewayConfig, Jwt};
use chat_core::service::Caps;
use chat_core::throttle::Rate;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "chat-gateway",
    version,
    about = "One server for five legacy chat WebSocket APIs over one chat domain"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Print a signed access token (development and testing).
    Token(TokenArgs),
    /// Create users ahead of time.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Create rooms ahead of time.
    #[command(subcommand)]
    Rooms(RoomsCommand),
    /// Import users, rooms, memberships, messages and read marks from a JSON-lines
    /// file (README, "Import and export"). Exit code 3 when any line was refused.
    Import(ImportArgs),
    /// Write the whole database in the format `import` reads.
    Export(ExportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The JSON-lines file, or `-` for standard input.
    pub file: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// Where attachment bytes are kept on SQLite (`<data-dir>/files`); on PostgreSQL
    /// they go into the database.
    #[arg(long, env = "CHAT_GATEWAY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The legacy system the file comes from: keys are recognised per source, so two
    /// systems whose ids overlap can be imported side by side.
    #[arg(long, default_value = "legacy")]
    pub source: String,
    /// Write every key of the source with the id it has here to this file (JSON
    /// lines `{"type","key","id"}`).
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// No progress bar (it is shown only when stderr is a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    /// Records of one type per transaction.
    #[arg(long, default_value_t = crate::transfer::DEFAULT_BATCH)]
    pub batch: usize,
    /// Largest attachment read or fetched, in bytes.
    #[arg(long, env = "CHAT_GATEWAY_MAX_ATTACHMENT_BYTES", default_value_t = Limits::default().max_attachment_bytes)]
    pub max_attachment_bytes: usize,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Where attachment bytes are kept on SQLite, as for `serve`.
    #[arg(long, env = "CHAT_GATEWAY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Write attachment bytes into this folder (one file per blob, named by its
    /// SHA-256) and name them by `path`; without it attachments are left out.
    #[arg(long)]
    pub files_dir: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// `sqlite://FILE` (default, embedded) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "CHAT_GATEWAY_DATABASE_URL",
        default_value = "sqlite://chat-gateway.db"
    )]
    pub database_url: String,
}

#[derive(Args, Debug, Clone)]
pub struct KeyArgs {
    /// HS256 shared secret (the legacy Django SECRET_KEY / SIMPLE_JWT signing key).
    /// Default: a secret generated once and kept in `<data-dir>/jwt-secret`.
    #[arg(
        long,
        env = "CHAT_GATEWAY_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_public_key"
    )]
    pub jwt_secret: Option<String>,
    /// PEM file with an RS256 or ES256 public key to verify tokens with instead.
    #[arg(long, env = "CHAT_GATEWAY_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// Where attachments (and the generated JWT secret) are kept.
    #[arg(long, env = "CHAT_GATEWAY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Accept only tokens whose `iss` is this (and put it in minted tokens).
    #[arg(long, env = "CHAT_GATEWAY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Accept only tokens whose `aud` includes this (and put it in minted tokens).
    #[arg(long, env = "CHAT_GATEWAY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Refuse tokens without `token_type: "access"` (simplejwt always sends it).
    #[arg(long, env = "CHAT_GATEWAY_JWT_REQUIRE_TOKEN_TYPE")]
    pub jwt_require_token_type: bool,
}

impl KeyArgs {
    fn rules(&self) -> crate::jwt::JwtRules {
        crate::jwt::JwtRules {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            require_token_type: self.jwt_require_token_type,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address of the main listener (HTTP API and every dialect without its own address).
    #[arg(long, env = "CHAT_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Absolute base URL clients reach the gateway at (file URLs are built on it).
    /// Default: http://<listen>.
    #[arg(long, env = "CHAT_GATEWAY_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Origins allowed to open sockets from a browser (Django Channels rules: `host`,
    /// `.domain` for subdomains, `https://host:port`, `*`). Comma-separated; the
    /// gateway's own origin and loopback are always allowed.
    #[arg(long, env = "CHAT_GATEWAY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Dialects to serve, comma-separated. Default: all.
    #[arg(long, env = "CHAT_GATEWAY_DIALECTS", value_delimiter = ',')]
    pub dialects: Vec<String>,
    /// Move a dialect: `NAME=PATH[,PATH...][@ADDR]`, e.g.
    /// `NAME=/ws/chat/@0.0.0.0:9001`. Repeatable; replaces the default path.
    #[arg(long = "mount", env = "CHAT_GATEWAY_MOUNTS", value_delimiter = ';')]
    pub mounts: Vec<MountSpec>,
    /// Largest WebSocket frame of a signed-in client of a dialect whose frames carry
    /// no files, in bytes (bigger ones get the dialect's error).
    #[arg(long, env = "CHAT_GATEWAY_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// Largest frame of a dialect whose frames carry files (base64), in bytes.
    #[arg(long, env = "CHAT_GATEWAY_MAX_UPLOAD_FRAME_BYTES", default_value_t = Limits::default().max_upload_frame_bytes)]
    pub max_upload_frame_bytes: usize,
    /// Largest Engine.IO payload of the Socket.IO dialects, in bytes.
    #[arg(long, env = "CHAT_GATEWAY_MAX_SOCKETIO_PAYLOAD_BYTES", default_value_t = Limits::default().max_socketio_payload_bytes)]
    pub max_socketio_payload_bytes: usize,
    /// Largest frame before a socket signs in, in bytes (four of them in all).
    #[arg(long, env = "CHAT_GATEWAY_MAX_UNAUTHENTICATED_FRAME_BYTES", default_value_t = Limits::default().max_unauthenticated_frame_bytes)]
    pub max_unauthenticated_frame_bytes: usize,
    /// Seconds a socket has to sign in before it is closed.
    #[arg(long, env = "CHAT_GATEWAY_AUTH_TIMEOUT_SECS", default_value_t = Limits::default().auth_timeout.as_secs())]
    pub auth_timeout_secs: u64,
    /// Largest attachment, in bytes.
    #[arg(long, env = "CHAT_GATEWAY_MAX_ATTACHMENT_BYTES", default_value_t = Limits::default().max_attachment_bytes)]
    pub max_attachment_bytes: usize,
    /// Open connections per listener (more are answered 503 and closed).
    #[arg(long, env = "CHAT_GATEWAY_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Open connections per source address per listener.
    #[arg(long, env = "CHAT_GATEWAY_MAX_CONNECTIONS_PER_IP", default_value_t = Limits::default().max_connections_per_ip)]
    pub max_connections_per_ip: usize,
    /// Seconds to send a request's headers (and the longest idle keep-alive).
    #[arg(long, env = "CHAT_GATEWAY_HEADER_TIMEOUT_SECS", default_value_t = Limits::default().header_timeout.as_secs())]
    pub header_timeout_secs: u64,
    /// Seconds to send a request's body.
    #[arg(long, env = "CHAT_GATEWAY_BODY_TIMEOUT_SECS", default_value_t = Limits::default().body_timeout.as_secs())]
    pub body_timeout_secs: u64,
    /// Users named in one create or add-members request.
    #[arg(long, env = "CHAT_GATEWAY_MAX_USERS_PER_REQUEST", default_value_t = Caps::default().users_per_request)]
    pub max_users_per_request: usize,
    /// Members of one room.
    #[arg(long, env = "CHAT_GATEWAY_MAX_ROOM_MEMBERS", default_value_t = Caps::default().room_members)]
    pub max_room_members: usize,
    /// Message ids in one delete request.
    #[arg(long, env = "CHAT_GATEWAY_MAX_IDS_PER_REQUEST", default_value_t = Caps::default().ids_per_request)]
    pub max_ids_per_request: usize,
    /// A message's text, in bytes (it is also capped at 16,384 characters).
    #[arg(long, env = "CHAT_GATEWAY_MAX_MESSAGE_BYTES", default_value_t = Caps::default().text_bytes)]
    pub max_message_bytes: usize,
    /// Text bytes of one history page (a page ends before it would cross this).
    #[arg(long, env = "CHAT_GATEWAY_MAX_PAGE_BYTES", default_value_t = Caps::default().page_bytes)]
    pub max_page_bytes: usize,
    /// Commands per second per user, over all their connections; past it a
    /// command gets the dialect's `rate_limited` error. 0: no limit.
    #[arg(long, env = "CHAT_GATEWAY_USER_RATE", default_value_t = Limits::default().user_rate.per_sec)]
    pub user_rate: f64,
    /// Commands a user may send at once above the rate.
    #[arg(long, env = "CHAT_GATEWAY_USER_BURST", default_value_t = Limits::default().user_rate.burst)]
    pub user_burst: f64,
    /// Frames per second per WebSocket connection; past it the gateway stops
    /// reading the socket until the rate allows (the client is slowed). 0: no limit.
    #[arg(long, env = "CHAT_GATEWAY_CONN_RATE", default_value_t = Limits::default().conn_rate.per_sec)]
    pub conn_rate: f64,
    /// Frames a connection may send at once above the rate.
    #[arg(long, env = "CHAT_GATEWAY_CONN_BURST", default_value_t = Limits::default().conn_rate.burst)]
    pub conn_burst: f64,
    /// Total bytes of one user's uploads (kept until the upload expires or for good
    /// once a message holds it); 0: no limit.
    #[arg(
        long,
        env = "CHAT_GATEWAY_MAX_UPLOAD_BYTES_PER_USER",
        default_value_t = chat_core::service::DEFAULT_MAX_UPLOAD_BYTES_PER_USER
    )]
    pub max_upload_bytes_per_user: u64,
    /// Seconds after which an upload that no message took is deleted; 0: never.
    #[arg(
        long,
        env = "CHAT_GATEWAY_UNATTACHED_UPLOAD_TTL_SECS",
        default_value_t = chat_core::service::DEFAULT_UNATTACHED_UPLOAD_TTL.as_secs()
    )]
    pub unattached_upload_ttl_secs: u64,
    /// Events buffered per connection; a client that falls this far behind is closed.
    #[arg(long, env = "CHAT_GATEWAY_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    /// Database connections in the pool.
    #[arg(long, env = "CHAT_GATEWAY_POOL_SIZE", default_value_t = 16)]
    pub pool_size: u32,
    /// `--<dialect>-trusted` for each dialect with a trusted mode (from the registry).
    #[command(flatten)]
    pub trusted: TrustedArgs,
    /// Seconds between WebSocket pings.
    #[arg(long, env = "CHAT_GATEWAY_PING_SECS", default_value_t = 30)]
    pub ping_secs: u64,
    /// How the nodes of a cluster on one PostgreSQL tell each other of events:
    /// `postgres` (LISTEN/NOTIFY, the default) or `redis://HOST:PORT` (Redis pub/sub;
    /// PostgreSQL stays the source of truth). Every node of a database must use the
    /// same. Refused with SQLite, which is single-node.
    #[arg(long, env = "CHAT_GATEWAY_BROKER")]
    pub broker: Option<String>,
    /// Close a socket when the token it signed in with expires (the legacy backends
    /// kept signed-in sockets open; simplejwt access tokens live minutes).
    #[arg(long, env = "CHAT_GATEWAY_CLOSE_ON_TOKEN_EXPIRY")]
    pub close_on_token_expiry: bool,
    /// How log lines are written (to stderr): `text` (colours only when stderr is a
    /// terminal) or `json` (one object per line: timestamp, level, target, fields).
    #[arg(long, env = "CHAT_GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// On SIGTERM or Ctrl-C: the most seconds to drain (close clients, finish
    /// commands, leave the cluster) before the process exits anyway.
    #[arg(long, env = "CHAT_GATEWAY_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// On SIGTERM: seconds to keep serving with `/readyz` failing before clients are
    /// closed, so a load balancer stops sending new ones here first.
    #[arg(long, env = "CHAT_GATEWAY_DRAIN_GRACE", default_value_t = 0)]
    pub drain_grace: u64,
    /// Serve `/metrics` on this address alone (e.g. a private interface for the
    /// scraper) instead of on the main listener.
    #[arg(long, env = "CHAT_GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Libraries whose debug and trace events carry what must never be logged: the
/// Socket.IO handshake's `auth` (a token), Engine.IO and WebSocket payloads (message
/// bodies). They are held at `info` whatever `RUST_LOG` asks.
const CAPPED_AT_INFO: [&str; 4] = [
    "socketioxide",
    "engineioxide",
    "tungstenite",
    "tokio_tungstenite",
];

/// The log filter: `RUST_LOG` when set and valid (else `default_level`), with the
/// libraries of [`CAPPED_AT_INFO`] capped at `info`.
pub fn log_filter(rust_log: Option<String>, default_level: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = rust_log
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_level));
    for target in CAPPED_AT_INFO {
        if let Ok(d) = format!("{target}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// The user id (`user_id` claim).
    #[arg(long)]
    pub user: i64,
    #[arg(long)]
    pub username: Option<String>,
    /// Add the admin claim (`is_staff: true`).
    #[arg(long)]
    pub admin: bool,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create one user.
    Add(UserAddArgs),
    /// Create or update users from a JSON file: an array of objects, or one object per
    /// line, with fields id, username, external_id, email, first_name, last_name,
    /// display_name, photo, color, role, is_admin.
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct UserAddArgs {
    #[arg(long)]
    pub id: Option<i64>,
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long)]
    pub external_id: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Subcommand, Debug)]
pub enum RoomsCommand {
    /// Create one room.
    Add(RoomAddArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RoomAddArgs {
    /// direct, group or project.
    #[arg(long, default_value = "group")]
    pub kind: String,
    /// Member user ids, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub members: Vec<i64>,
    #[arg(long, default_value = "")]
    pub title: String,
    /// The project id of a project room.
    #[arg(long)]
    pub project_id: Option<i64>,
    #[arg(long)]
    pub has_business: bool,
    /// An explicit room id (the legacy backend's primary key).
    #[arg(long)]
    pub id: Option<i64>,
    #[command(flatten)]
    pub db: DbArgs,
}

/// Resolve how tokens are verified: a given secret, a public key, or the secret kept
/// in the data directory (generated on first use).
/// A given secret must be strong enough ([`crate::jwt::check_secret_strength`]).
pub fn load_jwt(keys: &KeyArgs, create: bool) -> Result<Jwt, String> {
    let jwt = if let Some(secret) = &keys.jwt_secret {
        crate::jwt::check_secret_strength(secret).map_err(|e| e.to_string())?;
        Jwt::hs256(secret.as_bytes())
    } else if let Some(path) = &keys.jwt_public_key {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Jwt::public_key(&pem)
    } else {
        let secret = data_dir_secret(&keys.data_dir, create)?;
        Jwt::hs256(secret.as_bytes())
    };
    Ok(jwt.map_err(|e| e.to_string())?.with_rules(keys.rules()))
}

fn data_dir_secret(dir: &Path, create: bool) -> Result<String, String> {
    let path = dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    if !create {
        return Err(format!(
            "no --jwt-secret given and {} does not exist",
            path.display()
        ));
    }
    use rand::RngCore;
    let mut buf = [0u8; 32];
    rand::rng().fill_bytes(&mut buf);
    let secret: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Written to a private temporary file (0600 from its creation, never readable by
    // others for an instant), then linked into place: two first starts at once end
    // with one secret, the first one linked, which both then read.
    let tmp = dir.join(format!(".jwt-secret.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(secret.as_bytes())?;
        f.sync_all()
    };
    let _ = std::fs::remove_file(&tmp);
    let written = write().and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return data_dir_secret(dir, false);
        }
        Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
    }
    tracing::warn!(
        "no --jwt-secret given: generated one in {} (set --jwt-secret to your legacy backend's signing key to accept its tokens)",
        path.display()
    );
    Ok(secret)
}

impl ServeArgs {
    pub fn into_config(self) -> Result<GatewayConfig, String> {
        let jwt = load_jwt(&self.keys, true)?;
        let dialects = if self.dialects.is_empty() {
            crate::mounts::names(&chat_dialects::all())
                .into_iter()
                .map(str::to_string)
                .collect()
        } else {
            self.dialects
                .iter()
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect()
        };
        Ok(GatewayConfig {
            listen: self.listen,
            database_url: self.db.database_url,
            jwt,
            public_base_url: self.public_base_url,
            data_dir: self.keys.data_dir,
            allowed_origins: self.allowed_origins,
            registry: chat_dialects::all(),
            dialects,
            mounts: self.mounts,
            limits: Limits {
                max_frame_bytes: self.max_frame_bytes,
                max_upload_frame_bytes: self.max_upload_frame_bytes,
                max_socketio_payload_bytes: self.max_socketio_payload_bytes,
                max_unauthenticated_frame_bytes: self.max_unauthenticated_frame_bytes,
                auth_timeout: Duration::from_secs(self.auth_timeout_secs.max(1)),
                max_attachment_bytes: self.max_attachment_bytes,
                outbound_queue: self.outbound_queue,
                max_connections: self.max_connections,
                max_connections_per_ip: self.max_connections_per_ip,
                header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
                body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
                user_rate: Rate {
                    per_sec: self.user_rate,
                    burst: self.user_burst,
                },
                conn_rate: Rate {
                    per_sec: self.conn_rate,
                    burst: self.conn_burst,
                },
                caps: Caps {
                    users_per_request: self.max_users_per_request,
                    room_members: self.max_room_members,
                    ids_per_request: self.max_ids_per_request,
                    text_bytes: self.max_message_bytes,
                    page_bytes: self.max_page_bytes,
                },
            },
            pool_size: self.pool_size,
            ping_interval: Duration::from_secs(self.ping_secs.max(1)),
            trusted: self.trusted.0,
            broker: self.broker,
            close_on_token_expiry: self.close_on_token_expiry,
            max_upload_bytes_per_user: self.max_upload_bytes_per_user,
            unattached_upload_ttl: Duration::from_secs(self.unattached_upload_ttl_secs),
            metrics_listen: self.metrics_listen,
        })
    }
}

/// The trusted-mode flags of the registry's dialects: for each dialect whose descriptor
/// has a [`dialect_kit::TrustedMode`], a `--FLAG` switch (and `CHAT_GATEWAY_FLAG` in the
/// environment, upper-cased, `-` as `_`). Holds the names of the dialects switched on.
#[derive(Clone, Debug, Default)]
pub struct TrustedArgs(pub Vec<String>);

fn trusted_modes() -> Vec<(&'static str, dialect_kit::TrustedMode)> {
    chat_dialects::all()
        .into_iter()
        .filter_map(|d| Some((d.name, d.trusted_mode?)))
        .collect()
}

impl clap::FromArgMatches for TrustedArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let on = trusted_modes()
            .into_iter()
            .filter(|(_, mode)| m.get_flag(mode.flag))
            .map(|(name, _)| name.to_string())
            .collect();
        Ok(TrustedArgs(on))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for TrustedArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for (_, mode) in trusted_modes() {
            // clap keeps `&'static str`s; the names are built once per process.
            let env: &'static str = Box::leak(
                format!(
                    "CHAT_GATEWAY_{}",
                    mode.flag.to_ascii_uppercase().replace('-', "_")
                )
                .into_boxed_str(),
            );
            cmd = cmd.arg(
                clap::Arg::new(mode.flag)
                    .long(mode.flag)
                    .env(env)
                    .action(clap::ArgAction::SetTrue)
                    .help(mode.help),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn token_carrying_libraries_stay_at_info_whatever_rust_log_says() {
        for asked in [
            "debug",
            "trace",
            "socketioxide=trace,engineioxide=debug",
            "not a filter [",
        ] {
            let shown = log_filter(Some(asked.to_string()), "info").to_string();
            for target in super::CAPPED_AT_INFO {
                assert!(
                    shown.contains(&format!("{target}=info")),
                    "{asked}: {shown}"
                );
                assert!(
                    !shown.contains(&format!("{target}=debug")),
                    "{asked}: {shown}"
                );
                assert!(
                    !shown.contains(&format!("{target}=trace")),
                    "{asked}: {shown}"
                );
            }
        }
        assert!(log_filter(Some("debug".into()), "info")
            .to_string()
            .contains("debug"));
    }
}
