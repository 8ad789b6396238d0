//! Small HTTP helpers shared by the router, the REST API and the file server.

use http::{HeaderMap, Response, StatusCode};

pub use dialect_kit::http::{empty, error, full, json};
pub use dialect_kit::{Body, BoxError};

/// The bearer token of a request, from any carrier the gateway accepts (see
/// [`dialect_kit::token`]).
pub fn find_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    dialect_kit::token::in_upgrade(headers, query)
}

/// A query parameter's value.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn status_of(err: &chat_core::ChatError) -> StatusCode {
    use chat_core::ChatError as E;
    match err {
        E::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        E::Forbidden(_) => StatusCode::FORBIDDEN,
        E::NotFound { .. } => StatusCode::NOT_FOUND,
        E::Invalid { .. } => StatusCode::BAD_REQUEST,
        E::DuplicateRoom { .. } | E::Conflict(_) => StatusCode::CONFLICT,
        E::TooLarge { .. } | E::QuotaExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        E::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        E::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error answer for `err`. Internal failures are logged with a reference the
/// answer gives instead of their detail (which may name hosts, files or SQL).
pub fn chat_error(err: &chat_core::ChatError) -> Response<Body> {
    let (status, code) = (status_of(err), err.code());
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
