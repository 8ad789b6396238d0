//! Which database a URL names. The backend is chosen from the URL alone so that an
//! operator switches between the embedded default and a shared PostgreSQL by changing
//! one setting, with no build flags.

use crate::StoreSetupError;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The URL, passed to tokio-postgres unchanged (it understands every libpq-style
    /// parameter we care about, including `options`).
    Postgres(String),
    /// A database file.
    SqliteFile(PathBuf),
    /// A private in-memory database (tests and throw-away runs).
    SqliteMemory,
}

pub(crate) fn parse(url: &str) -> Result<Target, StoreSetupError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(StoreSetupError::BadUrl("the database URL is empty".into()));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    let rest = if let Some(rest) = strip_prefix_ci(url, "sqlite://") {
        rest
    } else if let Some(rest) = strip_prefix_ci(url, "sqlite:") {
        rest
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreSetupError::BadUrl(format!(
            "unsupported database scheme {scheme:?}: use postgres://…, postgresql://…, sqlite://PATH or a file path"
        )));
    } else {
        url
    };
    // sqlx-style options (`?mode=rwc`) mean nothing here: the file is always created.
    let path = rest.split('?').next().unwrap_or_default();
    if path == ":memory:" {
        return Ok(Target::SqliteMemory);
    }
    if path.is_empty() {
        return Err(StoreSetupError::BadUrl(format!(
            "the SQLite URL {url:?} names no file"
        )));
    }
    Ok(Target::SqliteFile(PathBuf::from(path)))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The URL with any password replaced by `***`, for logs.
pub fn describe_url(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return url.to_owned();
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password only fails for URLs that cannot have one, which
                // a URL that already has one is not.
                let _ = parsed.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if pairs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("password"))
            {
                let mut q = parsed.query_pairs_mut();
                q.clear();
                for (k, v) in &pairs {
                    if k.eq_ignore_ascii_case("password") {
                        q.append_pair(k, "***");
                    } else {
                        q.append_pair(k, v);
                    }
                }
            }
            parsed.to_string()
        }
        Err(_) => mask_by_hand(url),
    }
}

/// Masks `user:password@` in a URL the `url` crate refused, so a typo in a URL never
/// puts its password in a log.
fn mask_by_hand(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end],
        &userinfo[..colon],
        &url[scheme_end + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_the_backend() {
        let file = |path: &str| Some(Target::SqliteFile(path.into()));
        let cases = [
            (
                "postgres://u@h/db",
                Some(Target::Postgres("postgres://u@h/db".into())),
            ),
            (
                "postgresql://h/db",
                Some(Target::Postgres("postgresql://h/db".into())),
            ),
            ("sqlite:///var/lib/chat.db", file("/var/lib/chat.db")),
            ("sqlite://data/chat.db?mode=rwc", file("data/chat.db")),
            ("sqlite:chat.db", file("chat.db")),
            ("./chat.db", file("./chat.db")),
            ("sqlite::memory:", Some(Target::SqliteMemory)),
            // refused
            ("mysql://h/db", None),
            ("", None),
            ("sqlite://", None),
        ];
        for (url, want) in cases {
            assert_eq!(parse(url).ok(), want, "{url:?}");
        }
    }

    #[test]
    fn passwords_are_masked() {
        let cases = [
            (
                "postgres://chat:s3cret@db:5432/chat",
                "postgres://chat:***@db:5432/chat",
            ),
            (
                "postgres://chat@db/chat?password=s3cret&sslmode=disable",
                "postgres://chat@db/chat?password=***&sslmode=disable",
            ),
            ("postgres://db/chat", "postgres://db/chat"),
            ("sqlite://chat.db", "sqlite://chat.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(describe_url(url), shown, "{url:?}");
        }
        assert_eq!(
            mask_by_hand("postgres://chat:s3cret@[bad/chat"),
            "postgres://chat:***@[bad/chat"
        );
    }
}
