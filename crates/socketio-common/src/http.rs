//! A Socket.IO dialect behind the gateway's router.
//!
//! socketioxide is a hyper service that answers Engine.IO requests (polling, and the
//! upgrade to WebSocket) under its request path. The router hands a mount every
//! request at or below its path ([`HttpMount`]); this adapts the service's response
//! body to the router's and closes every socket on shutdown, which clients see as a
//! lost transport and answer by reconnecting.
//!
//! Engine.IO requests only ever go to the mount path itself (`/ws/?EIO=4&…`). A path
//! below it (`/ws/anything`) is no Socket.IO request, so it gets the router's usual
//! 404 instead of an Engine.IO error: with a Socket.IO dialect at `/ws/`, a WebSocket
//! dialect's old path below it that was moved elsewhere still answers 404.

use crate::SioService;
use dialect_kit::http::{error, normalize_path};
use dialect_kit::{Body, BoxFuture, HttpMount};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use socketioxide::SocketIo;

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
                error(http::StatusCode::NOT_FOUND, "not_found", "no such endpoint")
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
