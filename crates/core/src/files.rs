//! Attachment bytes, content-addressed: the same bytes are stored once, under the
//! SHA-256 of their content, whatever the name they were uploaded with.
//!
//! On a single node they live on disk under the data directory. The nodes of a
//! cluster share no disk, so there they live in the database ([`BlobStore`]), where
//! every node finds what any node stored.

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// Blobs kept somewhere other than the local disk (the cluster's database).
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Store `bytes` under `key` (their SHA-256); storing a key twice is a no-op.
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> std::io::Result<()>;
    async fn get_blob(&self, key: &str) -> std::io::Result<Option<Vec<u8>>>;
}

#[derive(Clone)]
pub struct FileStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Disk(PathBuf),
    Shared(Arc<dyn BlobStore>),
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Disk(root) => write!(f, "FileStore(disk {})", root.display()),
            Backend::Shared(_) => write!(f, "FileStore(database)"),
        }
    }
}

/// A key is lowercase hex, as [`FileStore::put`] makes them.
fn valid_key(key: &str) -> bool {
    key.len() >= 3 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

impl FileStore {
    /// Blobs in files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore {
            backend: Backend::Disk(root.into()),
        }
    }

    /// Blobs in `shared` (the database of a cluster).
    pub fn shared(shared: Arc<dyn BlobStore>) -> Self {
        FileStore {
            backend: Backend::Shared(shared),
        }
    }

    fn path_of(root: &std::path::Path, key: &str) -> Option<PathBuf> {
        if !valid_key(key) {
            return None;
        }
        Some(root.join(&key[..2]).join(key))
    }

    /// Store bytes; returns their key. On disk they are written to a temporary file
    /// then renamed, so a crash never leaves a half-written blob under a valid key.
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let key = hex(&Sha256::digest(bytes));
        let root = match &self.backend {
            Backend::Disk(root) => root,
            Backend::Shared(shared) => {
                shared.put_blob(&key, bytes).await?;
                return Ok(key);
            }
        };
        let path = Self::path_of(root, &key).expect("sha256 hex is a valid key");
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
        let root = match &self.backend {
            Backend::Disk(root) => root,
            Backend::Shared(_) if !valid_key(key) => return Ok(None),
            Backend::Shared(shared) => return shared.get_blob(key).await,
        };
        let Some(path) = Self::path_of(root, key) else {
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
