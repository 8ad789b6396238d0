//! Attachment bytes on disk, content-addressed: the same bytes are stored once, under
//! the SHA-256 of their content, whatever the name they were uploaded with.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Option<PathBuf> {
        if key.len() < 3 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.root.join(&key[..2]).join(key))
    }

    /// Store bytes; returns their key. Written to a temporary file then renamed, so a
    /// crash never leaves a half-written blob under a valid key.
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let key = hex(&Sha256::digest(bytes));
        let path = self.path_of(&key).expect("sha256 hex is a valid key");
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(key);
        }
        let dir = path.parent().expect("blob path has a parent");
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!("{key}.{}.tmp", std::process::id()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(key)
    }

    /// Read a blob's bytes; `None` when the key is unknown or malformed.
    pub async fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(path) = self.path_of(key) else {
            return Ok(None);
        };
        match tokio::fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_bytes_stored_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("chat-files-{}", std::process::id()));
        let fs = FileStore::new(&dir);
        let a = fs.put(b"hello").await.unwrap();
        let b = fs.put(b"hello").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(fs.get(&a).await.unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(fs.get("../etc/passwd").await.unwrap(), None);
        assert_eq!(fs.get("abcdef").await.unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
