//! `media` ids are URLs. The ones this gateway hands out (`POST /api/files` answers
//! `{url}`, built by `ChatService::file_url` as `<public base>/files/<id>/<name>`)
//! are mapped back to their attachment ids so a message carries the stored file,
//! and every dialect sees it as an attachment. A URL of any other server is refused
//! with a clear error: the gateway cannot vouch for it, and the protocol has no other
//! way to attach a file.

use chat_core::AttachmentId;

/// The attachment id of `url` if it is a file URL under `base` (no trailing slash).
pub fn attachment_id(base: &str, url: &str) -> Result<AttachmentId, String> {
    let url = url.trim();
    let prefix = format!("{}/files/", base.trim_end_matches('/'));
    let rest = url.strip_prefix(&prefix).ok_or_else(|| {
        format!(
            "`{url}` is not a file of this server: upload the file with POST /api/files and send the `url` it answers (it starts with {prefix})"
        )
    })?;
    let (id, name) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() || name.contains('/') {
        return Err(format!("`{url}` is not a file URL ({prefix}<id>/<name>)"));
    }
    id.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .map(AttachmentId)
        .ok_or_else(|| format!("`{url}` is not a file URL ({prefix}<id>/<name>)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_own_urls_and_refuses_others() {
        let b = "http://127.0.0.1:8080";
        assert_eq!(
            attachment_id(b, "http://127.0.0.1:8080/files/12/a%20b.png"),
            Ok(AttachmentId(12))
        );
        assert!(attachment_id(b, "https://cdn.example.com/files/12/a.png").is_err());
        assert!(attachment_id(b, "http://127.0.0.1:8080/files/x/a.png").is_err());
        assert!(attachment_id(b, "http://127.0.0.1:8080/files/12").is_err());
        assert!(attachment_id(b, "http://127.0.0.1:8080/files/12/a/b").is_err());
        assert!(attachment_id(b, "http://127.0.0.1:80800/files/12/a").is_err());
    }
}
