//! Admission of TCP connections: a cap on open connections in total and per source
//! address, so one host (or a crowd) cannot take every descriptor and every byte of
//! memory of the server.
//!
//! A connection is counted from `accept` until its socket is dropped, whatever it
//! became: a plain HTTP connection, a WebSocket of the gateway's own loop or one
//! upgraded inside socketioxide. The permit travels inside the socket ([`Held`]), so
//! an upgrade that takes the socket takes the permit with it and no path can forget
//! to release it. A refused connection gets one `503` answer and is closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total(usize),
    PerAddress(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total(n) => write!(f, "the server has its maximum of {n} connections open"),
            Refused::PerAddress(n) => {
                write!(f, "your address has its maximum of {n} connections open")
            }
        }
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            open: Mutex::new(Counts::default()),
        })
    }

    /// Count a new connection from `ip`, or say why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max_total {
            return Err(Refused::Total(self.max_total));
        }
        let mine = open.per_ip.entry(ip).or_insert(0);
        if *mine >= self.max_per_ip {
            return Err(Refused::PerAddress(self.max_per_ip));
        }
        *mine += 1;
        open.total += 1;
        Ok(Permit {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A socket that holds its connection's [`Permit`].
pub struct Held<S> {
    inner: S,
    _permit: Permit,
}

impl<S> Held<S> {
    pub fn new(inner: S, permit: Permit) -> Self {
        Held {
            inner,
            _permit: permit,
        }
    }
}

impl Held<tokio::net::TcpStream> {
    /// Whether the peer sends something (or closes) within `limit`.
    pub async fn readable_within(&self, limit: Duration) -> bool {
        let mut one = [0u8; 1];
        tokio::time::timeout(limit, self.inner.peek(&mut one))
            .await
            .is_ok_and(|r| r.is_ok_and(|n| n > 0))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Answer a refused connection with a `503` and close it. Bounded in time: the
/// client's request is drained for at most a second (closing with unread bytes
/// would reset the connection before the client reads the answer).
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, why: Refused) {
    let body =
        serde_json::json!({"error": "too_many_connections", "detail": why.to_string()}).to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let work = async {
        let mut buf = [0u8; 4096];
        // The request head first (one read suffices for a handshake), then answer.
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await?;
        while stream.read(&mut buf).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), work).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address_and_frees_on_drop() {
        let a = Admission::new(3, 2);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = a.admit(one).unwrap();
        let _p2 = a.admit(one).unwrap();
        assert_eq!(a.admit(one).unwrap_err(), Refused::PerAddress(2));
        let _p3 = a.admit(two).unwrap();
        assert_eq!(a.admit(two).unwrap_err(), Refused::Total(3));
        drop(p1);
        assert_eq!(a.open(), 2);
        assert!(a.admit(one).is_ok());
    }
}
