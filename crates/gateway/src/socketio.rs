//! Socket.IO dialects behind the gateway's router.
//!
//! socketioxide is a hyper service that answers Engine.IO requests (polling, and the
//! upgrade to WebSocket) under its request path. The gateway's router hands it every
//! request at or below the dialect's mount path ([`HttpMount`]); this module adapts
//! the service's response body to the gateway's and closes every socket on shutdown,
//! which clients see as a lost transport and answer by reconnecting.
//!
//! Engine.IO requests only ever go to the mount path itself (`/ws/?EIO=4&…`). The
//! router hands a mount its whole subtree, but a path below it (`/ws/anything`) is no
//! Socket.IO request, so it gets the gateway's usual 404 instead of an Engine.IO
//! error: with socketio-pubsub at `/ws/`, a moved method-args endpoint's old path
//! `/ws/chat/` still answers 404.

use crate::http_util::{self, Body};
use crate::mounts::SioParams;
use crate::server::{normalize_path, BoxFuture, HttpMount};
use chat_core::ChatService;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use socketio_common::{Params, SioService};
use socketioxide::SocketIo;
use std::sync::Arc;

/// A mounted Socket.IO dialect.
pub struct SocketIoMount {
    name: &'static str,
    /// Normalized mount path.
    path: String,
    svc: SioService,
    io: SocketIo,
}

impl SocketIoMount {
    pub fn new(name: &'static str, path: &str, (svc, io): (SioService, SocketIo)) -> Self {
        SocketIoMount {
            name,
            path: normalize_path(path),
            svc,
            io,
        }
    }
}

impl HttpMount for SocketIoMount {
    fn name(&self) -> &'static str {
        self.name
    }

    fn call(&self, req: Request<Incoming>) -> BoxFuture<Response<Body>> {
        if normalize_path(req.uri().path()) != self.path {
            return Box::pin(async {
                http_util::error(http::StatusCode::NOT_FOUND, "not_found", "no such endpoint")
            });
        }
        let fut = self.svc.call(detach_head(req));
        Box::pin(async move {
            match fut.await {
                Ok(resp) => resp.map(|b| b.map_err(|never| match never {}).boxed()),
                Err(never) => match never {},
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<()> {
        let io = self.io.clone();
        Box::pin(async move { io.close().await })
    }
}

/// The request with its head copied out of hyper's connection read buffer.
///
/// hyper parses a request head in place: the URI and every header value are slices of
/// the connection's read buffer (8–16 KiB). socketioxide keeps the parts of the
/// request that opened a socket for the socket's whole life (`req_parts`), and with
/// them that entire buffer: 16 KiB of every idle Socket.IO connection, the largest
/// item of its memory. Copying the few hundred bytes of the head lets the buffer go
/// once the connection has become a WebSocket.
fn detach_head<B>(req: Request<B>) -> Request<B> {
    let (mut parts, body) = req.into_parts();
    for value in parts.headers.values_mut() {
        if let Ok(mut copy) = http::HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
    }
    if let Ok(uri) = http::Uri::from_maybe_shared(bytes::Bytes::from(parts.uri.to_string())) {
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

fn params(p: SioParams) -> Params {
    Params {
        path: p.path,
        max_payload: p.max_payload,
        trusted: p.trusted,
        connect_timeout: p.connect_timeout,
    }
}

/// socketio-rooms at `params.path`, namespace `/`.
pub fn rooms(service: Arc<ChatService>, p: SioParams) -> Arc<dyn HttpMount> {
    if p.trusted {
        tracing::warn!(
            path = %p.path,
            "socketio-rooms runs in TRUSTED mode (--socketio-rooms-trusted): no token is required \
             and any client can act as any user named in a request body; use it only behind a \
             trusted network"
        );
    }
    let path = p.path.clone();
    let built = dialect_socketio_rooms::mount(service, params(p));
    Arc::new(SocketIoMount::new(
        dialect_socketio_rooms::NAME,
        &path,
        built,
    ))
}

/// socketio-pubsub at `params.path`, namespace `/chat`.
pub fn pubsub(service: Arc<ChatService>, p: SioParams) -> Arc<dyn HttpMount> {
    let path = p.path.clone();
    let built = dialect_socketio_pubsub::mount(
        service,
        params(SioParams {
            trusted: false,
            ..p
        }),
    );
    Arc::new(SocketIoMount::new(
        dialect_socketio_pubsub::NAME,
        &path,
        built,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_head_keeps_uri_headers_and_sensitivity() {
        let mut req = Request::builder()
            .uri("/ws/?EIO=4&transport=websocket&token=a%20b")
            .header("x-custom", "v1")
            .header(http::header::AUTHORIZATION, "Bearer t")
            .body(())
            .unwrap();
        if let Some(v) = req.headers_mut().get_mut(http::header::AUTHORIZATION) {
            v.set_sensitive(true);
        }
        let before = req.headers().clone();
        let out = detach_head(req);
        assert_eq!(out.uri(), "/ws/?EIO=4&transport=websocket&token=a%20b");
        assert_eq!(out.headers(), &before);
        assert!(out.headers()[http::header::AUTHORIZATION].is_sensitive());
    }
}
