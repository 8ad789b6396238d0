//! Just enough `multipart/form-data` to take one uploaded file out of a browser form or
//! `curl -F file=@x.png`: the first part that has a `filename`, with its content type.
//! The whole body is already in memory (size-limited by the caller), so parsing is a
//! search for boundaries, not a streaming state machine.

/// One file part.
#[derive(Debug, PartialEq, Eq)]
pub struct FilePart {
    pub name: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let mime = parts.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn header_param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The first file part of a multipart body. `Err` explains what is malformed.
pub fn first_file(body: &[u8], boundary: &str) -> Result<FilePart, String> {
    let delim = format!("--{boundary}").into_bytes();
    let mut pos = find(body, &delim, 0).ok_or("the body has no multipart boundary")?;
    loop {
        let after = pos + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            return Err("the form has no file part".into());
        }
        let headers_start = find(body, b"\r\n", after).ok_or("truncated part")? + 2;
        let headers_end =
            find(body, b"\r\n\r\n", headers_start).ok_or("a part has no header end")?;
        let headers = std::str::from_utf8(&body[headers_start..headers_end])
            .map_err(|_| "part headers are not UTF-8")?;
        let content_start = headers_end + 4;
        let mut next_delim = b"\r\n".to_vec();
        next_delim.extend_from_slice(&delim);
        let content_end =
            find(body, &next_delim, content_start).ok_or("a part is not terminated")?;
        let mut filename = None;
        let mut content_type = None;
        for line in headers.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                filename = header_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        if let Some(name) = filename {
            return Ok(FilePart {
                name,
                content_type,
                bytes: body[content_start..content_end].to_vec(),
            });
        }
        pos = content_end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_part() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x00\x01\r\n--XyZ--\r\n";
        let b = boundary("multipart/form-data; boundary=XyZ").unwrap();
        let f = first_file(body, &b).unwrap();
        assert_eq!(f.name, "a b.png");
        assert_eq!(f.content_type.as_deref(), Some("image/png"));
        assert_eq!(f.bytes, b"\x89PNG\r\n\x00\x01");
    }

    #[test]
    fn refuses_malformed_bodies() {
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert!(first_file(b"nothing here", "b").is_err());
        assert!(first_file(
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b--\r\n",
            "b"
        )
        .is_err());
        assert!(first_file(
            b"--b\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\nno end",
            "b"
        )
        .is_err());
    }
}
