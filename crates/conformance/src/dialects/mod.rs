//! One scenario per dialect. Each is a legacy client's walk through its spec:
//! connect the users, then run cases in an order where later cases build on what
//! earlier ones created (a chat, a message id). A case that cannot run because an
//! earlier one failed is skipped, not failed, so one bug shows up once.

pub mod action_request;
pub mod method_args;
pub mod socketio_pubsub;
pub mod socketio_rooms;
pub mod type_content;

use crate::case;
use crate::peer::{SioPeer, WsPeer};
use crate::report::{CaseError, CaseResult};
use crate::spec::Spec;
use crate::{header_refs, Config, Dialect, Report, User};
use serde_json::{json, Value};

/// Run `cfg.dialect`'s scenario.
pub async fn run(cfg: &Config, spec: &Spec, report: &mut Report) {
    match cfg.dialect {
        Dialect::MethodArgs => method_args::run(cfg, spec, report).await,
        Dialect::TypeContent => type_content::run(cfg, spec, report).await,
        Dialect::ActionRequest => action_request::run(cfg, spec, report).await,
        Dialect::SocketioRooms => socketio_rooms::run(cfg, spec, report).await,
        Dialect::SocketioPubsub => socketio_pubsub::run(cfg, spec, report).await,
    }
}

/// The command line's help texts that name a dialect.
pub mod help {
    pub const DIALECT: &str =
        "method-args, type-content, action-request, socketio-rooms or socketio-pubsub";
    pub const ADMIN_TOKEN: &str =
        "action-request: an admin (is_staff) token, for the admin endpoint's cases";
    pub const ADMIN_URL: &str =
        "action-request: the admin endpoint (default: the --url host with /ws/admin-chat/)";
    pub const ROOM: &str = "action-request: a room whose members include A and B but not C";
    pub const PROJECT: &str =
        "type-content: a project id whose chat has A and B as members but not C";
    pub const ORIGIN: &str =
        "Origin header to send (action-request checks it against an allow-list)";
    pub const EXAMPLE: &str = "Example: chat-conformance --dialect method-args --url ws://127.0.0.1:8080/ws/chat/ --token $A --token $B --token $C";
}

/// `v[key]` as an integer (pointer syntax: `/data/chat/id`).
pub(crate) fn int(v: &Value, pointer: &str) -> Result<i64, String> {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("no integer at {pointer} in {}", crate::peer::show(v)))
}

/// Fail with `why` unless `ok`.
pub(crate) fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

/// A fresh text that no earlier run used, so a case finds its own message even on a
/// server with history.
pub(crate) fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("conformance {what} {nanos:x}")
}

/// The first `N` users of the configuration, or `None` after recording why not.
pub(crate) fn users_or_record<const N: usize>(
    cfg: &Config,
    report: &mut Report,
) -> Option<[User; N]> {
    match cfg.users(N) {
        Ok(u) => u.try_into().ok(),
        Err(e) => {
            let what = match N {
                2 => "two users".to_string(),
                3 => "three users".to_string(),
                n => format!("{n} users"),
            };
            report.record("(setup)", &what, Err(CaseError::Fail(e)));
            None
        }
    }
}

/// Whether `v[array]` is an array with an item whose `field` is `want`.
pub(crate) fn lists(v: &Value, array: &str, field: &str, want: &Value) -> bool {
    v[array]
        .as_array()
        .is_some_and(|xs| xs.iter().any(|x| x.get(field) == Some(want)))
}

/// Whether `v` has each `(pointer, value)` of `want`.
pub(crate) fn has_all(v: &Value, want: &[(&str, Value)]) -> bool {
    want.iter()
        .all(|(pointer, w)| v.pointer(pointer) == Some(w))
}

/// A Socket.IO dialect's `{error}` answer: fail unless `v` is one with `code`.
pub(crate) fn error_is(v: &Value, code: &str) -> CaseResult {
    let got = v.get("error").and_then(Value::as_str);
    ensure(got == Some(code), || {
        format!("expected error `{code}`, got {v}")
    })?;
    Ok(())
}

/// The case "this upgrade is refused with HTTP 403": open `url` with `token` as a
/// bearer token (none: no `Authorization`), and fail unless the server says 403.
pub(crate) async fn refused_with_403(cfg: &Config, url: &str, token: Option<&str>) -> CaseResult {
    let h = cfg.headers(token);
    match chat_client::WsConn::connect(url, &header_refs(&h)).await {
        Err(chat_client::Error::Refused { status: 403, .. }) => Ok(()),
        Err(e) => Err(format!("expected HTTP 403, got {e}").into()),
        Ok(c) => {
            c.close().await;
            Err("the upgrade was accepted".into())
        }
    }
}

/// Run and record that case as `(handshake)` `case_name`, on the dialect's endpoint.
pub(crate) async fn handshake_refused(
    cfg: &Config,
    report: &mut Report,
    token: Option<&str>,
    case_name: &str,
) {
    case!(report, [], "(handshake)", case_name, {
        refused_with_403(cfg, &cfg.url, token).await
    });
}

/// Open one peer per item with `open`; `None` after recording the first failure (as
/// the case `(connect)`, `what`, naming the item by `label`).
pub(crate) async fn connect_all<T, P, const N: usize>(
    items: [T; N],
    label: impl Fn(&T) -> &str,
    what: &str,
    report: &mut Report,
    mut open: impl AsyncFnMut(&T) -> Result<P, chat_client::Error>,
) -> Option<[P; N]> {
    let mut peers = Vec::with_capacity(N);
    for item in &items {
        match open(item).await {
            Ok(p) => peers.push(p),
            Err(e) => {
                let why = format!("{}: {e}", label(item));
                report.record("(connect)", what, Err(CaseError::Fail(why)));
                return None;
            }
        }
    }
    peers.try_into().ok()
}

/// One plain WebSocket peer per user, each with its token as a bearer header and
/// `ignore` as its ignorable pushes (see [`connect_all`]).
pub(crate) async fn bearer_peers<'s, const N: usize>(
    cfg: &Config,
    spec: &'s Spec,
    users: [&User; N],
    ignore: &[&str],
    what: &str,
    report: &mut Report,
) -> Option<[WsPeer<'s>; N]> {
    let open = async |u: &&User| {
        let h = cfg.headers(Some(&u.token));
        let mut p = WsPeer::connect(&u.label, &cfg.url, &header_refs(&h), spec, cfg.timing).await?;
        p.ignore(ignore);
        Ok(p)
    };
    connect_all(users, |u| &u.label, what, report, open).await
}

/// One Socket.IO peer per user on `namespace`, each with `{token}` as the handshake's
/// `auth` and `ignore` as its ignorable pushes (see [`connect_all`]).
pub(crate) async fn token_peers<'s, const N: usize>(
    cfg: &Config,
    spec: &'s Spec,
    namespace: &str,
    users: [&User; N],
    ignore: &[&str],
    what: &str,
    report: &mut Report,
) -> Option<[SioPeer<'s>; N]> {
    let h = cfg.headers(None);
    let hr = header_refs(&h);
    let open = async |u: &&User| {
        let auth = json!({"token": u.token});
        let (url, t) = (&cfg.url, cfg.timing);
        let mut p = SioPeer::connect(&u.label, url, namespace, Some(&auth), &hr, spec, t).await?;
        p.ignore(ignore);
        Ok(p)
    };
    connect_all(users, |u| &u.label, what, report, open).await
}
