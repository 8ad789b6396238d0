//! The Origin check of Django Channels' `AllowedHostsOriginValidator`, which one of
//! the legacy backends ran behind: an upgrade is allowed when its `Origin` matches
//! an entry of the allow-list. Entries are `*` (anything), a host (`example.com`), a
//! leading-dot pattern (`.example.com`: the domain and every subdomain), optionally
//! with a scheme (`https://example.com`) and/or port (`example.com:8443`), which then
//! must match too. Matching is case-insensitive. An absent or unparsable Origin is
//! refused whenever a list is configured, as Channels does.
//!
//! The gateway applies the list to every browser-reachable mount: a request whose
//! Origin header does not match is refused, whatever the dialect. With no list
//! configured the default is the gateway's own public origin (so a page the gateway
//! serves may connect, and another site's page may not). A request with no Origin
//! comes from no browser (mobile apps, servers); see [`OriginPolicy::allows`].

/// A parsed allow-list.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    entries: Vec<Pattern>,
    /// Whether the list was configured (`--allowed-origins`) rather than defaulted.
    explicit: bool,
}

#[derive(Clone, Debug)]
struct Pattern {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

struct Parsed {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

fn parse(s: &str) -> Option<Parsed> {
    let s = s.trim().to_ascii_lowercase();
    let (scheme, rest) = match s.split_once("://") {
        Some((sc, rest)) => (Some(sc.to_string()), rest.to_string()),
        None => (None, s),
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_string();
    let authority = authority.rsplit('@').next()?.to_string();
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        let (h, after) = stripped.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() => (h.to_string(), Some(p.parse().ok()?)),
            _ => (authority.clone(), None),
        }
    };
    if host.is_empty() && !authority.starts_with('*') {
        return None;
    }
    Some(Parsed { scheme, host, port })
}

fn default_port(scheme: Option<&str>) -> Option<u16> {
    match scheme {
        Some("http") | Some("ws") => Some(80),
        Some("https") | Some("wss") => Some(443),
        _ => None,
    }
}

impl OriginPolicy {
    /// The configured entries, or, when there are none, `own` (the gateway's public
    /// base URL) and the loopback hosts (pages on the operator's own machine, as
    /// Django allows `localhost`, `127.0.0.1` and `[::1]` when `ALLOWED_HOSTS` is
    /// empty).
    pub fn with_default<S: AsRef<str>>(entries: &[S], own: &str) -> Self {
        let configured = Self::new(entries);
        if configured.is_configured() {
            return configured;
        }
        OriginPolicy {
            explicit: false,
            ..Self::new(&[own, "localhost", "127.0.0.1", "[::1]"])
        }
    }

    /// Parse allow-list entries; an empty list allows everything.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Self {
        let mut policy = OriginPolicy {
            explicit: false,
            entries: entries
                .iter()
                .filter_map(|e| {
                    let e = e.as_ref().trim();
                    if e.is_empty() {
                        return None;
                    }
                    if e == "*" {
                        return Some(Pattern {
                            scheme: None,
                            host: "*".into(),
                            port: None,
                        });
                    }
                    parse(e).map(|p| Pattern {
                        scheme: p.scheme,
                        host: p.host,
                        port: p.port,
                    })
                })
                .collect(),
        };
        policy.explicit = !policy.entries.is_empty();
        policy
    }

    pub fn is_configured(&self) -> bool {
        self.explicit
    }

    /// Whether a browser request with this Origin header is refused: it has one and
    /// it matches no entry.
    pub fn refuses_browser(&self, origin: Option<&str>) -> bool {
        origin.is_some() && !self.allows(origin)
    }

    /// Whether `origin` (the header value, if any) is allowed. No Origin at all is
    /// allowed unless a list was configured (Channels' rule, which the dialect of that
    /// backend keeps; the other dialects accept clients without one, see the README).
    pub fn allows(&self, origin: Option<&str>) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let Some(origin) = origin else {
            return !self.explicit;
        };
        let Some(origin) = parse(origin) else {
            return false;
        };
        self.entries.iter().any(|p| {
            if p.host == "*" {
                return true;
            }
            if let Some(s) = &p.scheme {
                if origin.scheme.as_deref() != Some(s.as_str()) {
                    return false;
                }
            }
            if let Some(port) = p.port {
                let got = origin
                    .port
                    .or_else(|| default_port(origin.scheme.as_deref()));
                if got != Some(port) {
                    return false;
                }
            }
            match p.host.strip_prefix('.') {
                Some(domain) => origin.host == domain || origin.host.ends_with(&p.host),
                None => origin.host == p.host,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_rules() {
        let p = OriginPolicy::new(&[
            "example.com",
            ".corp.net",
            "https://secure.io",
            "localhost:80",
        ]);
        assert!(p.allows(Some("http://example.com")));
        assert!(p.allows(Some("https://EXAMPLE.com:8443")));
        assert!(!p.allows(Some("http://sub.example.com")));
        assert!(p.allows(Some("http://corp.net")));
        assert!(p.allows(Some("http://a.b.corp.net")));
        assert!(!p.allows(Some("http://evilcorp.net")));
        assert!(p.allows(Some("https://secure.io")));
        assert!(!p.allows(Some("http://secure.io")));
        assert!(p.allows(Some("http://localhost:80")));
        assert!(p.allows(Some("http://localhost")));
        assert!(!p.allows(Some("http://localhost:3000")));
        assert!(!p.allows(None));
        assert!(!p.allows(Some("null")));
        assert!(OriginPolicy::new::<&str>(&[]).allows(None));
        assert!(OriginPolicy::new(&["*"]).allows(Some("http://anything")));
    }

    #[test]
    fn the_default_is_the_own_origin_and_loopback() {
        let p = OriginPolicy::with_default::<&str>(&[], "https://chat.example.com");
        assert!(!p.is_configured());
        assert!(p.allows(Some("https://chat.example.com")));
        assert!(p.allows(Some("http://localhost:3000")));
        assert!(p.allows(Some("http://127.0.0.1:8080")));
        assert!(!p.allows(Some("https://evil.example")));
        assert!(
            !p.allows(Some("http://chat.example.com")),
            "the scheme counts"
        );
        assert!(p.allows(None), "no Origin: not a browser");
        assert!(p.refuses_browser(Some("https://evil.example")));
        let explicit = OriginPolicy::with_default(&["app.example.com"], "https://chat.example.com");
        assert!(!explicit.allows(None), "with a list, as Channels");
        assert!(!explicit.allows(Some("http://localhost")));
    }
}
