//! Where a Socket.IO client's token travels.
//!
//! socket.io-client sends the `auth` object of its options in the namespace CONNECT
//! packet, so `auth.token` works on every transport, including browsers that cannot
//! set headers. The query string (`?token=`, set with the client's `query` option) and
//! an `Authorization` header (Node clients' `extraHeaders`) are accepted too, like on
//! the gateway's other endpoints.

use http::{header, HeaderMap};
use serde_json::Value;

/// The first token found: `auth.token` (or `auth.access_token`), `?token=` (or
/// `?access_token=`), then `Authorization: Bearer X` / `JWT X` / `X`.
pub fn find(auth: Option<&Value>, query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = auth {
        for key in ["token", "access_token"] {
            if let Some(t) = auth.get(key).and_then(Value::as_str) {
                let t = strip_scheme(t);
                if !t.is_empty() {
                    return Some(t.to_string());
                }
            }
        }
    }
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if (k == "token" || k == "access_token") && !v.trim().is_empty() {
                return Some(v.trim().to_string());
            }
        }
    }
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = strip_scheme(v);
    (!t.is_empty()).then(|| t.to_string())
}

fn strip_scheme(v: &str) -> &str {
    let v = v.trim();
    match v.split_once(' ') {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt") =>
        {
            rest.trim()
        }
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_first_then_query_then_header() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer hdr".parse().unwrap());
        assert_eq!(
            find(Some(&json!({"token": "a"})), Some("token=q"), &h).as_deref(),
            Some("a")
        );
        assert_eq!(
            find(Some(&json!({})), Some("x=1&token=q"), &h).as_deref(),
            Some("q")
        );
        assert_eq!(find(None, None, &h).as_deref(), Some("hdr"));
        assert_eq!(
            find(Some(&json!({"token": 5})), None, &HeaderMap::new()),
            None
        );
        assert_eq!(
            find(
                Some(&json!({"token": "Bearer  t "})),
                None,
                &HeaderMap::new()
            )
            .as_deref(),
            Some("t")
        );
    }
}
