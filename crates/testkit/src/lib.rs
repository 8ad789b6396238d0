//! Test kit: a real gateway on 127.0.0.1:0 with a throw-away database (a fresh SQLite
//! file, or a fresh PostgreSQL schema), tokens, and real WebSocket and HTTP clients.
//!
//! Tests that need PostgreSQL get `None` from [`TestGateway::postgres`] when it is
//! unreachable — with a loud line on stderr — except under `CI=true`, where that
//! panics: CI must never skip them silently.

mod client;
mod http;
pub mod steps;

pub use client::WsClient;
pub use http::{http_request, HttpResponse};

use chat_core::{ChatService, RoomId, RoomKind, User, UserId, UserProfile};
use chat_gateway::Limits;
use chat_gateway::{GatewayConfig, Jwt, RunningGateway, TokenSpec};
use chat_store::testing::TestDb;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The secret every test gateway signs tokens with.
pub const TEST_SECRET: &str = "chat-gateway-test-secret-of-32-bytes-or-more";

/// Which database a test gateway runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Options for a test gateway.
#[derive(Clone, Debug)]
pub struct Options {
    pub backend: Backend,
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    /// `None`: every dialect.
    pub dialects: Option<Vec<String>>,
    pub mounts: Vec<chat_gateway::mounts::MountSpec>,
    /// Serve every dialect that has a trusted mode in it (no tokens).
    pub trusted: bool,
    /// `--broker` (PostgreSQL only).
    pub broker: Option<String>,
    /// Any other setting, applied last (e.g. `|c| c.close_on_token_expiry = true`).
    pub tweak: fn(&mut GatewayConfig),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Sqlite,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            dialects: None,
            mounts: Vec::new(),
            trusted: false,
            broker: None,
            tweak: |_| {},
        }
    }
}

/// A running gateway for one test.
pub struct TestGateway {
    gw: Option<RunningGateway>,
    config: GatewayConfig,
    jwt: Jwt,
    pub backend: Backend,
    _db: TestDb,
    data_dir: PathBuf,
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

impl TestGateway {
    /// A gateway on a fresh SQLite file.
    pub async fn sqlite() -> TestGateway {
        Self::start(Options::default())
            .await
            .expect("SQLite is always available")
    }

    /// A gateway on a fresh PostgreSQL schema; `None` (announced on stderr) when
    /// PostgreSQL is unreachable outside CI.
    pub async fn postgres() -> Option<TestGateway> {
        Self::start(Options {
            backend: Backend::Postgres,
            ..Options::default()
        })
        .await
    }

    /// A gateway on `backend`.
    pub async fn on(backend: Backend) -> Option<TestGateway> {
        Self::start(Options {
            backend,
            ..Options::default()
        })
        .await
    }

    /// A gateway with options; `None` only when PostgreSQL was asked for and skipped.
    pub async fn start(opts: Options) -> Option<TestGateway> {
        init_tracing();
        let db = match opts.backend {
            Backend::Sqlite => chat_store::testing::sqlite_temp().await,
            Backend::Postgres => chat_store::testing::postgres_schema().await?,
        };
        let data_dir = std::env::temp_dir().join(format!(
            "chat-gw-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let jwt = Jwt::hs256(TEST_SECRET.as_bytes()).expect("non-empty secret");
        let config = GatewayConfig {
            allowed_origins: opts.allowed_origins,
            dialects: opts.dialects.unwrap_or_else(|| {
                chat_gateway::mounts::names(&chat_dialects::all())
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            }),
            mounts: opts.mounts,
            limits: opts.limits,
            pool_size: 8,
            trusted: if opts.trusted {
                chat_dialects::all()
                    .iter()
                    .filter(|d| d.trusted_mode.is_some())
                    .map(|d| d.name.to_string())
                    .collect()
            } else {
                Vec::new()
            },
            broker: opts.broker,
            ..GatewayConfig::new(
                "127.0.0.1:0".parse().expect("valid address"),
                db.url.clone(),
                jwt.clone(),
                data_dir.clone(),
            )
        };
        let mut config = config;
        (opts.tweak)(&mut config);
        let gw = chat_gateway::start(config.clone(), CancellationToken::new())
            .await
            .expect("the test gateway starts");
        // Restarts reuse the same port, so URLs held by a test stay valid.
        config.listen = gw.addr();
        Some(TestGateway {
            gw: Some(gw),
            config,
            jwt,
            backend: opts.backend,
            _db: db,
            data_dir,
        })
    }

    fn running(&self) -> &RunningGateway {
        self.gw.as_ref().expect("the gateway is running")
    }

    pub fn addr(&self) -> SocketAddr {
        self.running().addr()
    }

    /// All bound addresses (main first).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.running().addrs.clone()
    }

    /// The database URL the gateway runs on (for other nodes of its cluster).
    /// The `--metrics-listen` listener's address, when the test configured one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.running().metrics_addr
    }

    pub fn database_url(&self) -> &str {
        &self.config.database_url
    }

    pub fn service(&self) -> Arc<ChatService> {
        self.running().service.clone()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr(), path)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// An access token for `user`, valid for an hour.
    pub fn token(&self, user: i64, username: &str) -> String {
        self.mint(user, Some(username), false, 3600)
    }

    /// An admin (`is_staff`) access token.
    pub fn admin_token(&self, user: i64, username: &str) -> String {
        self.mint(user, Some(username), true, 3600)
    }

    /// A token with these claims, signed with the test secret.
    pub fn signed(&self, claims: serde_json::Value) -> String {
        sign_hs256(&claims, TEST_SECRET.as_bytes())
    }

    /// A token that expired an hour ago.
    pub fn expired_token(&self, user: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.signed(serde_json::json!({"token_type": "access", "exp": now - 3600, "iat": now - 7200, "user_id": user}))
    }

    /// A well-formed token signed with the wrong secret.
    pub fn forged_token(&self, user: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims =
            serde_json::json!({"token_type": "access", "exp": now + 3600, "user_id": user});
        sign_hs256(&claims, b"not-the-secret")
    }

    /// An unsigned `alg: none` token.
    pub fn alg_none_token(&self, user: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let enc = |s: &str| {
            use base64_engine::Engine;
            base64_engine::URL_SAFE_NO_PAD.encode(s)
        };
        format!(
            "{}.{}.",
            enc(r#"{"alg":"none","typ":"JWT"}"#),
            enc(&format!(
                r#"{{"token_type":"access","exp":{},"user_id":{user}}}"#,
                now + 3600
            ))
        )
    }

    fn mint(&self, user: i64, username: Option<&str>, admin: bool, ttl: i64) -> String {
        self.jwt
            .mint(&TokenSpec {
                user_id: user,
                username: username.map(str::to_string),
                admin,
                ttl_secs: ttl,
            })
            .expect("HS256 can mint")
    }

    /// Create (or refresh) a user with this id and username.
    pub async fn create_user(&self, id: i64, username: &str) -> User {
        self.service()
            .upsert_user(&UserProfile {
                id: Some(UserId(id)),
                username: Some(username.to_string()),
                ..Default::default()
            })
            .await
            .expect("user created")
    }

    /// Create (or refresh) a user and return an access token for them.
    pub async fn user_token(&self, id: i64, username: &str) -> String {
        self.create_user(id, username).await;
        self.token(id, username)
    }

    /// Create a room directly in the store (as an admin import would).
    pub async fn create_room(&self, kind: RoomKind, members: &[i64], has_business: bool) -> RoomId {
        crate::steps::store_room(&**self.service().store(), kind, members, has_business).await
    }

    /// Wait until `user` has at least `n` signed-in connections (a WebSocket upgrade
    /// returns before the dialect's session has signed in).
    pub async fn wait_connections(&self, user: i64, n: usize) {
        for _ in 0..500 {
            if self.service().hub().connections_of(UserId(user)) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("user {user} never had {n} signed-in connections");
    }

    /// Stop the gateway and start it again on the same database, data and port.
    pub async fn restart(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.stop().await;
        }
        let mut last_err = None;
        for _ in 0..50 {
            match chat_gateway::start(self.config.clone(), CancellationToken::new()).await {
                Ok(gw) => {
                    self.gw = Some(gw);
                    return;
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("the gateway did not restart: {last_err:?}");
    }

    /// Stop the gateway (graceful shutdown).
    pub async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.stop().await;
        }
    }

    /// A scrape of `/metrics`, each sample as `name{labels}` → value, with the labels
    /// sorted by name and the `node` label (a cluster's, on PostgreSQL) left out. Checks
    /// that the answer is an OpenMetrics exposition.
    pub async fn scrape_metrics(&self) -> std::collections::HashMap<String, f64> {
        let r = self.http("GET", "/metrics", None, None).await;
        assert_eq!(r.status, 200, "GET /metrics");
        let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(ct, Some(chat_gateway::metrics::CONTENT_TYPE));
        let text = r.text();
        assert!(
            text.ends_with("# EOF\n"),
            "an OpenMetrics exposition ends with # EOF"
        );
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                let (name, labels) = key.split_once('{')?;
                let mut labels: Vec<&str> = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty() && !l.starts_with("node="))
                    .collect();
                labels.sort_unstable();
                Some((
                    format!("{name}{{{}}}", labels.join(",")),
                    value.parse().ok()?,
                ))
            })
            .collect()
    }

    /// An HTTP request to the gateway; `token` is sent as a bearer token.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> HttpResponse {
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("authorization".to_string(), format!("Bearer {t}")));
        }
        let bytes = body.map(|b| {
            headers.push(("content-type".to_string(), "application/json".to_string()));
            b.to_string().into_bytes()
        });
        http_request(
            method,
            &self.http_url(path),
            &headers,
            bytes.unwrap_or_default(),
        )
        .await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown_token().cancel();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// `claims` as an HS256 token signed with `secret`.
fn sign_hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("signing works")
}

mod base64_engine {
    pub use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    pub use base64::Engine;
}

/// Run a test body `async fn(TestGateway)` on SQLite and on PostgreSQL: generates a
/// module with two tests, `sqlite` and `postgres`.
#[macro_export]
macro_rules! dual_backend_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let gw = $crate::TestGateway::sqlite().await;
                super::$name(gw).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(gw) = $crate::TestGateway::postgres().await {
                    super::$name(gw).await;
                }
            }
        }
    };
}
