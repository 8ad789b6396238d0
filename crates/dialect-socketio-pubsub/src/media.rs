//! `media` ids are URLs. The ones this gateway hands out (`POST /api/files` answers
//! `{url}`, built by `ChatService::file_url` as `<public base>/files/<id>/<token>/<name>`)
//! are mapped back to their attachment ids (and URL tokens, which the session checks
//! against the stored one) so a message carries the stored file, and every dialect
//! sees it as an attachment. A URL of any other server is refused with a clear
//! error: the gateway cannot vouch for it, and the protocol has no other way to
//! attach a file.

use chat_core::AttachmentId;

/// The attachment id and URL token of `url` if it is a file URL under `base` (no
/// trailing slash).
pub fn attachment_ref(base: &str, url: &str) -> Result<(AttachmentId, String), String> {
    let url = url.trim();
    let prefix = format!("{}/files/", base.trim_end_matches('/'));
    let rest = url.strip_prefix(&prefix).ok_or_else(|| {
        format!(
            "`{url}` is not a file of this server: upload the file with POST /api/files and send the `url` it answers (it starts with {prefix})"
        )
    })?;
    let shape = || format!("`{url}` is not a file URL ({prefix}<id>/<token>/<name>)");
    let mut parts = rest.split('/');
    let (Some(id), Some(token), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(shape());
    };
    if name.is_empty() || token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(shape());
    }
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .map(AttachmentId)
        .ok_or_else(shape)?;
    Ok((id, token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_own_urls_and_refuses_others() {
        let b = "http://127.0.0.1:8080";
        let t = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            attachment_ref(b, &format!("http://127.0.0.1:8080/files/12/{t}/a%20b.png")),
            Ok((AttachmentId(12), t.to_string()))
        );
        assert!(attachment_ref(b, &format!("https://cdn.example.com/files/12/{t}/a.png")).is_err());
        assert!(attachment_ref(b, &format!("http://127.0.0.1:8080/files/x/{t}/a.png")).is_err());
        assert!(attachment_ref(b, "http://127.0.0.1:8080/files/12/a.png").is_err());
        assert!(attachment_ref(b, &format!("http://127.0.0.1:8080/files/12/{t}")).is_err());
        assert!(attachment_ref(b, &format!("http://127.0.0.1:8080/files/12/{t}/a/b")).is_err());
        assert!(attachment_ref(b, "http://127.0.0.1:8080/files/12/not-hex/a").is_err());
        assert!(attachment_ref(b, &format!("http://127.0.0.1:80800/files/12/{t}/a")).is_err());
    }
}
