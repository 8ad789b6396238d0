//! Inline base64 files of `send_message` → domain [`Upload`]s.
//!
//! Clients in the wild send base64 in several flavours: plain, wrapped at 76 columns,
//! without padding, URL-safe, or as a browser `data:` URL straight from
//! `FileReader.readAsDataURL`. All of them are accepted; the MIME type of a data URL
//! becomes the file's content type. The size is checked against the service's limit
//! *before* decoding, so an oversize file is refused without allocating its bytes
//! (the service checks again after decoding, exactly).

use crate::wire::FileArg;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use chat_core::{ChatError, Upload};

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decode the `index`-th file of a message; `limit` is the largest file in bytes.
pub fn decode_file(index: usize, file: &FileArg, limit: usize) -> Result<Upload, ChatError> {
    let field = format!("files[{index}].data");
    let (content_type, payload) =
        split_data_url(&file.data).map_err(|reason| ChatError::invalid(&field, reason))?;
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    // Every 4 base64 characters carry 3 bytes; padding can only lower that.
    let estimate = compact.len() / 4 * 3 + (compact.len() % 4).saturating_sub(1);
    if estimate > limit.saturating_add(2) {
        return Err(ChatError::TooLarge {
            what: "file",
            size: estimate,
            limit,
        });
    }
    let bytes = STANDARD
        .decode(&compact)
        .or_else(|e| {
            if compact.contains(['-', '_']) {
                URL_SAFE.decode(&compact)
            } else {
                Err(e)
            }
        })
        .map_err(|e| ChatError::invalid(&field, format!("not valid base64 ({e})")))?;
    if bytes.len() > limit {
        return Err(ChatError::TooLarge {
            what: "file",
            size: bytes.len(),
            limit,
        });
    }
    Ok(Upload {
        name: file.name.clone(),
        content_type,
        bytes,
    })
}

/// Split `data:<mime>[;param…];base64,<payload>` into the MIME type and the payload;
/// anything not starting with `data:` is all payload.
fn split_data_url(data: &str) -> Result<(Option<String>, &str), String> {
    let trimmed = data.trim_start();
    let is_data_url = trimmed
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("data:"));
    if !is_data_url {
        return Ok((None, data));
    }
    let Some((header, payload)) = trimmed[5..].split_once(',') else {
        return Err("a data URL needs a comma before its content".to_string());
    };
    let mut parts = header.split(';');
    let mime = parts.next().unwrap_or("").trim();
    if !parts.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err("only base64 data URLs (`data:<type>;base64,…`) are accepted".to_string());
    }
    let mime = (!mime.is_empty()).then(|| mime.to_string());
    Ok((mime, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str) -> FileArg {
        FileArg {
            name: "a.bin".into(),
            data: data.into(),
        }
    }

    #[test]
    fn plain_padded_unpadded_wrapped_and_url_safe() {
        for data in ["aGVsbG8=", "aGVsbG8", "aGVs\nbG8=", " aGVsbG8= "] {
            let u = decode_file(0, &file(data), 100).unwrap();
            assert_eq!(u.bytes, b"hello", "{data:?}");
            assert_eq!(u.content_type, None);
            assert_eq!(u.name, "a.bin");
        }
        assert_eq!(
            decode_file(0, &file("-_8="), 100).unwrap().bytes,
            vec![0xfb, 0xff]
        );
        assert_eq!(
            decode_file(0, &file("+/8="), 100).unwrap().bytes,
            vec![0xfb, 0xff]
        );
        assert_eq!(
            decode_file(0, &file(""), 100).unwrap().bytes,
            Vec::<u8>::new()
        );
    }

    #[test]
    fn data_urls_give_the_content_type() {
        let u = decode_file(0, &file("data:text/plain;base64,aGVsbG8="), 100).unwrap();
        assert_eq!(u.bytes, b"hello");
        assert_eq!(u.content_type.as_deref(), Some("text/plain"));
        let u = decode_file(0, &file("DATA:image/png;name=x.png;base64,aGk="), 100).unwrap();
        assert_eq!(u.content_type.as_deref(), Some("image/png"));
        let u = decode_file(0, &file("data:;base64,aGk="), 100).unwrap();
        assert_eq!(u.content_type, None);
    }

    #[test]
    fn bad_base64_is_invalid_and_names_the_file() {
        for data in [
            "not base64!",
            "aGVsbG8=x",
            "data:text/plain,hello",
            "data:text/plain;base64",
        ] {
            match decode_file(2, &file(data), 100) {
                Err(ChatError::Invalid { field, .. }) => {
                    assert_eq!(field, "files[2].data", "{data}")
                }
                other => panic!("{data}: {other:?}"),
            }
        }
    }

    #[test]
    fn oversize_is_refused_before_and_after_decoding() {
        assert_eq!(
            decode_file(0, &file("aGVsbG8="), 5).unwrap().bytes,
            b"hello"
        );
        assert!(matches!(
            decode_file(0, &file("aGVsbG8="), 4),
            Err(ChatError::TooLarge {
                what: "file",
                limit: 4,
                ..
            })
        ));
        let big = "A".repeat(4000);
        assert!(matches!(
            decode_file(0, &file(&big), 100),
            Err(ChatError::TooLarge { what: "file", .. })
        ));
    }
}
