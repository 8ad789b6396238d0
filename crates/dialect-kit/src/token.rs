//! Where a client's token travels, written once for every dialect.
//!
//! Carriers: `Authorization: Bearer X` (or `JWT X`, or a bare `X`), the query string
//! (`?token=X` or `?access_token=X`), `Sec-WebSocket-Protocol: Bearer, X` (browsers
//! cannot set headers on a WebSocket), and for Socket.IO the `auth` object of the
//! namespace CONNECT (`auth.token` or `auth.access_token`). Surrounding whitespace and
//! the scheme word are dropped; an empty token counts as none.

use http::{header, HeaderMap};
use serde_json::Value;

/// The token of a WebSocket upgrade: `Authorization`, then the query, then the
/// subprotocol offer.
pub fn in_upgrade(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    from_authorization(headers)
        .or_else(|| from_query(query))
        .or_else(|| from_subprotocol(headers))
}

/// The token of a Socket.IO connect: the `auth` payload, then the query, then
/// `Authorization`.
pub fn in_socketio(
    auth: Option<&Value>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<String> {
    auth.and_then(from_auth)
        .or_else(|| from_query(query))
        .or_else(|| from_authorization(headers))
}

fn from_auth(auth: &Value) -> Option<String> {
    ["token", "access_token"].iter().find_map(|key| {
        let t = strip_scheme(auth.get(key)?.as_str()?);
        (!t.is_empty()).then(|| t.to_string())
    })
}

fn from_query(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find_map(|(k, v)| {
        let v = v.trim();
        ((k == "token" || k == "access_token") && !v.is_empty()).then(|| v.to_string())
    })
}

fn from_authorization(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = strip_scheme(v);
    (!t.is_empty()).then(|| t.to_string())
}

fn from_subprotocol(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let pos = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("bearer"))?;
    parts
        .get(pos + 1)
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string())
}

/// `Bearer X` / `JWT X` → `X`; anything else is the token itself.
pub fn strip_scheme(v: &str) -> &str {
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

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn socketio_takes_auth_then_query_then_header() {
        let h = headers(&[(header::AUTHORIZATION, "Bearer hdr")]);
        type Case<'a> = (
            Option<Value>,
            Option<&'a str>,
            &'a HeaderMap,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (Some(json!({"token": "a"})), Some("token=q"), &h, Some("a")),
            (Some(json!({})), Some("x=1&token=q"), &h, Some("q")),
            (None, None, &h, Some("hdr")),
            (Some(json!({"token": 5})), None, &HeaderMap::new(), None),
            (
                Some(json!({"token": "Bearer  t "})),
                None,
                &HeaderMap::new(),
                Some("t"),
            ),
            (
                Some(json!({"access_token": "JWT u"})),
                None,
                &HeaderMap::new(),
                Some("u"),
            ),
        ];
        for (auth, query, h, want) in cases {
            assert_eq!(
                in_socketio(auth.as_ref(), *query, h).as_deref(),
                *want,
                "{auth:?} {query:?}"
            );
        }
    }

    #[test]
    fn upgrade_takes_header_then_query_then_subprotocol() {
        let both = headers(&[
            (header::AUTHORIZATION, "JWT hdr"),
            (header::SEC_WEBSOCKET_PROTOCOL, "Bearer, sub"),
        ]);
        let sub = headers(&[(header::SEC_WEBSOCKET_PROTOCOL, "Bearer, sub")]);
        let bare = headers(&[(header::AUTHORIZATION, "raw")]);
        assert_eq!(in_upgrade(&both, Some("token=q")).as_deref(), Some("hdr"));
        assert_eq!(
            in_upgrade(&sub, Some("access_token=q")).as_deref(),
            Some("q")
        );
        assert_eq!(in_upgrade(&sub, Some("token=")).as_deref(), Some("sub"));
        assert_eq!(in_upgrade(&bare, None).as_deref(), Some("raw"));
        assert_eq!(in_upgrade(&HeaderMap::new(), None), None);
        let empty_offer = headers(&[(header::SEC_WEBSOCKET_PROTOCOL, "Bearer")]);
        assert_eq!(in_upgrade(&empty_offer, None), None);
    }
}
