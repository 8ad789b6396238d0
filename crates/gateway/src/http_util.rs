//! Small HTTP helpers shared by the router, the REST API and the file server.

use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde::Serialize;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type of every route.
pub type Body = BoxBody<Bytes, BoxError>;

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

/// The bearer token of a request, from any carrier the gateway accepts:
/// `Authorization: Bearer X` (or `JWT X`, or a raw `X`), `?token=X` (or
/// `?access_token=X`), and `Sec-WebSocket-Protocol: Bearer, X`.
pub fn find_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let token = match v.split_once(' ') {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt") =>
            {
                rest.trim()
            }
            _ => v,
        };
        if !token.is_empty() {
            return Some(token.to_string());
        }
    }
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if (k == "token" || k == "access_token") && !v.is_empty() {
                return Some(v.into_owned());
            }
        }
    }
    if let Some(v) = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
    {
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        if let Some(pos) = parts.iter().position(|p| p.eq_ignore_ascii_case("bearer")) {
            if let Some(t) = parts.get(pos + 1).filter(|t| !t.is_empty()) {
                return Some(t.to_string());
            }
        }
    }
    None
}

/// A query parameter's value.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn status_of(err: &chat_core::ChatError) -> (StatusCode, &'static str) {
    use chat_core::ChatError as E;
    match err {
        E::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        E::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        E::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
        E::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
        E::DuplicateRoom { .. } | E::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        E::QuotaExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"),
        E::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        E::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
    }
}

/// The error answer for `err`. Internal failures are logged with a reference the
/// answer gives instead of their detail (which may name hosts, files or SQL).
pub fn chat_error(err: &chat_core::ChatError) -> Response<Body> {
    let (status, code) = status_of(err);
    match err {
        chat_core::ChatError::Storage(_) => {
            let reference = incident(err);
            error(
                status,
                code,
                format!("internal error; the server logged it as {reference}"),
            )
        }
        _ => error(status, code, err.to_string()),
    }
}

/// Log an internal failure under a fresh reference, and return the reference (to
/// give the client in its place).
pub fn incident(err: &dyn std::fmt::Display) -> String {
    use rand::RngCore;
    let reference = format!("ref-{:08x}", rand::rng().next_u32());
    tracing::error!(reference = %reference, error = %err, "internal error");
    reference
}
