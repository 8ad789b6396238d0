//! The HTTP side of a dialect that serves requests itself, and the small response
//! helpers such a dialect and the gateway share.

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type of every route.
pub type Body = BoxBody<Bytes, BoxError>;
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// A dialect mounted as an HTTP service under a path prefix.
pub trait HttpMount: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn call(&self, req: Request<Incoming>) -> BoxFuture<Response<Body>>;
    /// Close every connection (server shutdown); clients see a lost transport.
    fn shutdown(&self) -> BoxFuture<()>;
}

/// A path without its trailing slash (`/` stays `/`), the form routes are compared in.
pub fn normalize_path(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(empty()))
}

/// A JSON error: `{"error": code, "detail": message}`.
pub fn error(status: StatusCode, code: &str, detail: impl Into<String>) -> Response<Body> {
    json(
        status,
        &serde_json::json!({ "error": code, "detail": detail.into() }),
    )
}
