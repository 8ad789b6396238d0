//! Steps that many suites take the same way: provisioning users and rooms, reading
//! history and uploading files over HTTP, and running one test body on both backends
//! with a tweaked configuration.
//!
//! Invariant: each step does exactly what the suites used to spell out inline (same
//! requests, same headers, same store calls), so a suite that switches to a step keeps
//! asserting what it asserted. Mechanism: thin async functions over [`TestGateway`],
//! [`http_request`] and the [`Store`] trait, panicking with a message on any failure of
//! the set-up itself. Consequence: a failing step points at the set-up, not at the
//! behaviour under test, and the suites stay one line per step.

use crate::{http_request, HttpResponse, TestGateway};
use chat_core::store::{NewRoom, Store};
use chat_core::{RoomId, RoomKind, UserId};

/// Create (or refresh) each `(id, username)` user.
pub async fn create_users(gw: &TestGateway, users: &[(i64, &str)]) {
    for (id, username) in users {
        gw.create_user(*id, username).await;
    }
}

/// The direct room of users `a` and `b`, created in the store (as an admin import would).
pub async fn direct_room(gw: &TestGateway, a: i64, b: i64, has_business: bool) -> RoomId {
    let kind = RoomKind::direct(UserId(a), UserId(b)).expect("two distinct users");
    gw.create_room(kind, &[a, b], has_business).await
}

/// A room created straight in `store`, with no event published (for harnesses that
/// drive sessions without a gateway).
pub async fn store_room(
    store: &dyn Store,
    kind: RoomKind,
    members: &[i64],
    has_business: bool,
) -> RoomId {
    let room = NewRoom {
        id: None,
        kind,
        title: String::new(),
        has_business,
        created_by: None,
        members: members.iter().copied().map(UserId).collect(),
    };
    store.create_room(&room).await.expect("room created").id
}

/// `GET path` on the gateway with `token` as the bearer token.
pub async fn get_as(gw: &TestGateway, path: &str, token: &str) -> HttpResponse {
    gw.http("GET", path, Some(token), None).await
}

/// `POST` the raw `bytes` of a file to `url` (an `/api/files?name=…` address of any
/// node), as `content_type`, with `token` as the bearer token.
pub async fn upload_raw(url: &str, token: &str, content_type: &str, bytes: &[u8]) -> HttpResponse {
    let headers = [
        ("authorization".to_string(), format!("Bearer {token}")),
        ("content-type".to_string(), content_type.to_string()),
    ];
    http_request("POST", url, &headers, bytes.to_vec()).await
}

/// Run a test body `async fn(TestGateway)` on SQLite and on PostgreSQL, each gateway
/// configured by `$tweak: fn(&mut GatewayConfig)`: generates a module with two tests,
/// `sqlite` and `postgres` (the latter skipped, loudly, when PostgreSQL is unreachable
/// outside CI).
#[macro_export]
macro_rules! dual_backend_test_with {
    ($name:ident, $tweak:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(gw) =
                    $crate::steps::start_tweaked($crate::Backend::Sqlite, $tweak).await
                {
                    super::$name(gw).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(gw) =
                    $crate::steps::start_tweaked($crate::Backend::Postgres, $tweak).await
                {
                    super::$name(gw).await;
                }
            }
        }
    };
}

/// A gateway on `backend` with `tweak` applied to its configuration; `None` only when
/// PostgreSQL was asked for and skipped.
pub async fn start_tweaked(
    backend: crate::Backend,
    tweak: fn(&mut chat_gateway::GatewayConfig),
) -> Option<TestGateway> {
    TestGateway::start(crate::Options {
        backend,
        tweak,
        ..crate::Options::default()
    })
    .await
}

/// A gateway on a fresh SQLite file with `tweak` applied to its configuration.
pub async fn sqlite_with(tweak: fn(&mut chat_gateway::GatewayConfig)) -> TestGateway {
    start_tweaked(crate::Backend::Sqlite, tweak)
        .await
        .expect("SQLite is always available")
}
