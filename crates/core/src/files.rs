//! Attachment bytes, content-addressed: the same bytes are stored once, under the
//! SHA-256 of their content, whatever the name they were uploaded with.
//!
//! On a single node they live on disk under the data directory. The nodes of a
//! cluster share no disk, so there they live in the database ([`BlobStore`]), where
//! every node finds what any node stored.
//!
//! Downloads read a blob in chunks ([`BlobReader`]), so serving a file holds one
//! chunk in memory, not the file.
//!
//! A file's URL carries a random token ([`new_token`], stored with the attachment
//! row): the id and name alone do not open it.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Bytes of a chunk read from disk.
pub const DISK_CHUNK: usize = 64 * 1024;
/// Bytes of a chunk read from the database (one query each).
pub const SHARED_CHUNK: usize = 256 * 1024;

/// Random bytes of a file URL's token.
pub const TOKEN_BYTES: usize = 16;

/// A fresh URL token: [`TOKEN_BYTES`] random bytes (128 bits) as lowercase hex.
pub fn new_token() -> String {
    hex(&rand::random::<[u8; TOKEN_BYTES]>())
}

/// Whether `given` is the stored token `stored`, compared in constant time (the
/// time does not depend on where the two differ). A stored token shorter than a
/// fresh one (the empty default of a row that never got one) matches nothing.
pub fn token_matches(stored: &str, given: &str) -> bool {
    let (a, b) = (stored.as_bytes(), given.as_bytes());
    if a.len() < 2 * TOKEN_BYTES || a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Blobs kept somewhere other than the local disk (the cluster's database).
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Store `bytes` under `key` (their SHA-256); storing a key twice is a no-op.
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> std::io::Result<()>;
    async fn get_blob(&self, key: &str) -> std::io::Result<Option<Vec<u8>>>;
    /// The size of the blob in bytes; `None` when there is none under `key`.
    async fn blob_size(&self, key: &str) -> std::io::Result<Option<u64>>;
    /// At most `len` bytes of the blob, from byte `offset` (fewer at its end).
    async fn read_blob(&self, key: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>>;
    /// Delete the blob unless an attachment row still names it, in one statement
    /// (so an upload that recorded its row first keeps its bytes); whether it went.
    async fn delete_unused_blob(&self, key: &str) -> std::io::Result<bool>;
}

/// A blob being read in chunks, for a download.
pub struct BlobReader {
    size: u64,
    read: u64,
    source: Source,
}

enum Source {
    Disk(tokio::fs::File),
    Shared {
        shared: Arc<dyn BlobStore>,
        key: String,
    },
}

impl BlobReader {
    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next chunk (at most [`DISK_CHUNK`] or [`SHARED_CHUNK`] bytes); `None`
    /// once [`Self::size`] bytes were read. A blob shorter than its size is an error.
    pub async fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        let left = self.size.saturating_sub(self.read);
        if left == 0 {
            return Ok(None);
        }
        let chunk = match &mut self.source {
            Source::Disk(file) => {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(DISK_CHUNK);
                let mut buf = vec![0u8; want];
                let n = file.read(&mut buf).await?;
                buf.truncate(n);
                buf
            }
            Source::Shared { shared, key } => {
                let want = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(SHARED_CHUNK);
                shared.read_blob(key, self.read, want).await?
            }
        };
        if chunk.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("blob ended after {} of {} bytes", self.read, self.size),
            ));
        }
        self.read += chunk.len() as u64;
        Ok(Some(Bytes::from(chunk)))
    }
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

/// The key bytes are stored under: their SHA-256, as lowercase hex.
pub fn key_of(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
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
        let key = key_of(bytes);
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
        // Unique per write: two uploads of the same bytes at once must not write
        // (and truncate) one temporary file together.
        let tmp = dir.join(format!(
            "{key}.{}.{:016x}.tmp",
            std::process::id(),
            rand::random::<u64>()
        ));
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

    /// Open a blob to read it in chunks; `None` when the key is unknown or malformed.
    pub async fn open(&self, key: &str) -> std::io::Result<Option<BlobReader>> {
        let root = match &self.backend {
            Backend::Disk(root) => root,
            Backend::Shared(_) if !valid_key(key) => return Ok(None),
            Backend::Shared(shared) => {
                return Ok(shared.blob_size(key).await?.map(|size| BlobReader {
                    size,
                    read: 0,
                    source: Source::Shared {
                        shared: shared.clone(),
                        key: key.to_string(),
                    },
                }))
            }
        };
        let Some(path) = Self::path_of(root, key) else {
            return Ok(None);
        };
        let file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.metadata().await?.len();
        Ok(Some(BlobReader {
            size,
            read: 0,
            source: Source::Disk(file),
        }))
    }

    /// Delete a blob no attachment row names any more (the caller checked; in the
    /// database the delete checks again itself). Deleting a missing blob is no error.
    pub async fn delete(&self, key: &str) -> std::io::Result<()> {
        let root = match &self.backend {
            Backend::Disk(root) => root,
            Backend::Shared(_) if !valid_key(key) => return Ok(()),
            Backend::Shared(shared) => return shared.delete_unused_blob(key).await.map(|_| ()),
        };
        let Some(path) = Self::path_of(root, key) else {
            return Ok(());
        };
        match tokio::fs::remove_file(path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
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

    #[tokio::test]
    async fn blobs_read_back_in_chunks_and_delete() {
        let dir = std::env::temp_dir().join(format!("chat-files-chunks-{}", std::process::id()));
        let fs = FileStore::new(&dir);
        let bytes: Vec<u8> = (0..=255u8).cycle().take(DISK_CHUNK * 2 + 17).collect();
        let key = fs.put(&bytes).await.unwrap();
        let mut r = fs.open(&key).await.unwrap().unwrap();
        assert_eq!(r.size(), bytes.len() as u64);
        let mut got = Vec::new();
        while let Some(chunk) = r.next_chunk().await.unwrap() {
            assert!(chunk.len() <= DISK_CHUNK);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, bytes);
        assert!(fs.open("../etc/passwd").await.unwrap().is_none());
        fs.delete(&key).await.unwrap();
        assert!(fs.open(&key).await.unwrap().is_none());
        fs.delete(&key).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn tokens_are_128_bits_and_compare_exactly() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_token());
        assert!(token_matches(&a, &a.clone()));
        let mut other = a.clone().into_bytes();
        other[31] = if other[31] == b'0' { b'1' } else { b'0' };
        assert!(!token_matches(&a, std::str::from_utf8(&other).unwrap()));
        assert!(!token_matches(&a, &a[..31]));
        assert!(!token_matches("", ""));
    }
}
