//! Building a dialect's socketioxide service: configuration, the connect decision,
//! and the hand-over of each accepted socket to its worker.

use crate::http::SocketIoMount;
use crate::inbox::{Enqueued, Inbox, Request};
use crate::worker::{self, SioCtx, SioSession};
use crate::{SioService, WireError};
use async_trait::async_trait;
use bytes::Bytes;
use chat_core::{ChatService, Principal};
use dialect_kit::{HttpMount, MountParams};
use http::{HeaderMap, StatusCode};
use http_body_util::Full;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a dialect is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// The HTTP path (socketioxide's `req_path`), e.g. `/ws`; matched as a prefix.
    pub path: String,
    /// The Socket.IO namespace, e.g. `/chat`.
    pub namespace: &'static str,
    /// Largest Engine.IO payload (a polling body or a WebSocket message), in bytes.
    pub max_payload: u64,
    /// Packets socketioxide may buffer per socket before the socket counts as a slow
    /// consumer; the gateway uses its hub queue length.
    pub outbound_buffer: usize,
    /// Client events waiting for the socket's worker before new ones are refused.
    pub inbox: usize,
    /// Time from the Engine.IO handshake to the namespace CONNECT (which carries
    /// the token) before the connection is closed.
    pub connect_timeout: std::time::Duration,
}

/// What a connecting client presented.
#[derive(Clone, Debug, Default)]
pub struct Handshake {
    /// The `auth` payload of the namespace CONNECT packet (`{}` when none was sent).
    pub auth: Option<serde_json::Value>,
    pub query: Option<String>,
    pub headers: HeaderMap,
}

impl Handshake {
    /// The client's token, from `auth.token`, `?token=` or `Authorization`.
    pub fn token(&self) -> Option<String> {
        dialect_kit::token::in_socketio(self.auth.as_ref(), self.query.as_deref(), &self.headers)
    }
}

/// A dialect's answer to a connecting client.
pub enum Opening<S> {
    /// Refuse the namespace: the client gets `connect_error` with this message and is
    /// not connected.
    Refuse(String),
    /// Accept; sign in as the principal (when there is one) and run the session.
    Accept {
        session: S,
        principal: Option<Box<Principal>>,
    },
    /// Accept only to emit these events, then disconnect (a dialect whose legacy server
    /// told a bad token this way, with an event and then a disconnect).
    Reject {
        events: Vec<(String, serde_json::Value)>,
    },
}

/// A Socket.IO dialect: decides at connect time, then runs a session per socket.
#[async_trait]
pub trait SioDialect: Send + Sync + 'static {
    type Session: SioSession;
    /// The CLI name, used in logs and event origins.
    fn name(&self) -> &'static str;
    async fn open(&self, service: &Arc<ChatService>, hs: &Handshake) -> Opening<Self::Session>;
}

/// The answer to a request under the mount path that is not Engine.IO.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotSocketIo;

impl<B> hyper::service::Service<http::Request<B>> for NotSocketIo {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn call(&self, _req: http::Request<B>) -> Self::Future {
        let body = br#"{"error":"not_found","detail":"this path serves Socket.IO only; connect with a socket.io client"}"#;
        let mut resp = http::Response::new(Full::new(Bytes::from_static(body)));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        std::future::ready(Ok(resp))
    }
}

/// What the connect middleware leaves for the connect handler.
struct Pending<S> {
    opening: Opening<S>,
    inbox: mpsc::Receiver<Box<Request>>,
    closed: CancellationToken,
}

/// The pending state, in the socket's extensions (which want `Clone` values).
struct Slot<S>(Arc<Mutex<Option<Pending<S>>>>);

impl<S> Clone for Slot<S> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

/// `dialect` at `params.path` in `namespace`, ready for the gateway's router: the
/// payload limit and connect timeout from the gateway, an outbound buffer as deep as
/// the hub's queue, the shared inbox depth.
pub fn serve<D: SioDialect>(
    service: Arc<ChatService>,
    dialect: D,
    namespace: &'static str,
    params: MountParams,
) -> Arc<dyn HttpMount> {
    let name = dialect.name();
    let opts = MountOptions {
        path: params.path.clone(),
        namespace,
        max_payload: params.max_payload,
        outbound_buffer: service.config().outbound_queue,
        inbox: crate::INBOX,
        connect_timeout: params.connect_timeout,
    };
    let built = mount(service, Arc::new(dialect), opts);
    Arc::new(SocketIoMount::new(name, &params.path, built))
}

/// Build the socketioxide service of `dialect`.
///
/// The decision to accept is made in a connect middleware, before socketioxide sends
/// the CONNECT packet, and the socket's event handler and inbox are installed there
/// too: so no event can arrive before there is somewhere to put it.
pub fn mount<D: SioDialect>(
    service: Arc<ChatService>,
    dialect: Arc<D>,
    opts: MountOptions,
) -> (SioService, SocketIo) {
    let max_payload = usize::try_from(opts.max_payload).unwrap_or(usize::MAX);
    let (svc, io) = SocketIo::builder()
        .req_path(opts.path.clone())
        .max_payload(opts.max_payload)
        .ws_max_message_size(max_payload)
        .ws_max_frame_size(max_payload)
        .max_buffer_size(opts.outbound_buffer.max(16))
        .connect_timeout(opts.connect_timeout)
        .build_with_inner_svc(NotSocketIo);

    let inbox_len = opts.inbox.max(1);
    let middleware = {
        let service = service.clone();
        let dialect = dialect.clone();
        move |s: SocketRef, TryData(auth): TryData<serde_json::Value>| {
            let service = service.clone();
            let dialect = dialect.clone();
            async move {
                let parts = s.req_parts();
                let hs = Handshake {
                    auth: auth.ok(),
                    query: parts.uri.query().map(str::to_owned),
                    headers: parts.headers.clone(),
                };
                match dialect.open(&service, &hs).await {
                    Opening::Refuse(message) => {
                        let meter = service.meter().dialect(dialect.name());
                        meter.refused(chat_core::meter::RefuseKind::Auth);
                        Err(message)
                    }
                    opening => {
                        install::<D::Session>(&s, opening, inbox_len);
                        Ok(())
                    }
                }
            }
        }
    };
    let handler = {
        let name = dialect.name();
        move |s: SocketRef| {
            let service = service.clone();
            async move {
                let Some(Slot(slot)) = s.extensions.remove::<Slot<D::Session>>() else {
                    return;
                };
                let pending = slot.lock().ok().and_then(|mut p| p.take());
                let Some(pending) = pending else { return };
                match pending.opening {
                    Opening::Refuse(_) => {}
                    Opening::Reject { events } => {
                        let meter = service.meter().dialect(name);
                        meter.refused(chat_core::meter::RefuseKind::Auth);
                        let cx = SioCtx::new(service, Some(s.clone()), name);
                        for (event, payload) in events {
                            cx.emit(&event, &payload);
                        }
                        cx.disconnect();
                        cx.flush();
                    }
                    Opening::Accept { session, principal } => {
                        let cx = SioCtx::new(service, Some(s.clone()), name);
                        worker::run(session, cx, pending.inbox, pending.closed, principal).await;
                    }
                }
            }
        }
    };
    io.ns(opts.namespace, handler.with(middleware));
    (svc, io)
}

fn install<S: SioSession>(s: &SocketRef, opening: Opening<S>, inbox_len: usize) {
    let (tx, rx) = mpsc::channel(inbox_len);
    let closed = CancellationToken::new();
    s.extensions.insert(Inbox(tx));
    s.extensions.insert(Slot(Arc::new(Mutex::new(Some(Pending {
        opening,
        inbox: rx,
        closed: closed.clone(),
    })))));
    s.on_fallback(|s: SocketRef, Enqueued(refused): Enqueued| async move {
        if let Some(mut req) = refused {
            let err = WireError::new(
                "rate_limited",
                &req.event,
                "too many requests waiting for an answer on this connection; wait for the answers before sending more",
            );
            match req.take_ack() {
                Some(ack) if req.wants_ack => {
                    let _ = ack.send(&err);
                }
                _ => {
                    let _ = s.emit("error", &err);
                }
            }
        }
    });
    s.on_disconnect(move |_s: SocketRef| {
        let closed = closed.clone();
        async move { closed.cancel() }
    });
}
