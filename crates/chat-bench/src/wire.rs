//! A minimal WebSocket client for the generator's hot path.
//!
//! The fan-out scenario has the generator read a million frames a second on two cores
//! shared with the server, so the client side must cost far less per frame than the
//! server. A general WebSocket library allocates every message, validates its UTF-8
//! and reads through a small buffer; none of that is needed to find a marker in a
//! frame. This client:
//!
//! - reads whatever the socket holds into one reusable buffer (grown while reads keep
//!   filling it, up to [`MAX_BUF`]), so a burst of frames costs one `recv`;
//! - hands out each complete frame as a slice of that buffer: no allocation and no
//!   copy per frame (only a fragmented message is assembled, in a second buffer);
//! - answers pings itself; masks what it sends, as a client must (RFC 6455 §5.3).
//!
//! The upgrade is a plain HTTP/1.1 request; bytes that arrive with the `101` answer
//! are kept as the start of the frame stream. Only the generator uses this: the
//! server under test is free to frame however RFC 6455 allows.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Initial read buffer: small, so 15,000 idle clients stay cheap.
const MIN_BUF: usize = 4096;
/// Read buffer a busy client may grow to.
const MAX_BUF: usize = 256 * 1024;
/// Largest message accepted (one dialect pushes whole rooms).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// One message from the server.
#[derive(Debug)]
pub enum Frame<'a> {
    Text(&'a [u8]),
    Binary,
    /// The server closed: code and reason, if it gave them.
    Close(Option<(u16, String)>),
}

pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being assembled, with its opcode.
    frag: Vec<u8>,
    frag_op: Option<u8>,
    /// A pong owed to the server that the socket could not take at once.
    pending: Vec<u8>,
    mask_seed: u32,
}

/// A frame header parsed from the buffer: opcode, fin, payload range.
struct Header {
    fin: bool,
    op: u8,
    payload: std::ops::Range<usize>,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Parse the frame at the start of `b`, if it is complete. `Ok(None)`: need more bytes.
fn parse(b: &[u8]) -> io::Result<Option<(Header, usize)>> {
    if b.len() < 2 {
        return Ok(None);
    }
    let fin = b[0] & 0x80 != 0;
    let op = b[0] & 0x0F;
    let masked = b[1] & 0x80 != 0;
    let (len, mut at) = match b[1] & 0x7F {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([b[2], b[3]]) as u64, 4)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        n => (n as u64, 2),
    };
    if masked {
        return Err(bad("the server masked a frame"));
    }
    if len > MAX_MESSAGE as u64 {
        return Err(bad("frame too large"));
    }
    let len = len as usize;
    if b.len() < at + len {
        return Ok(None);
    }
    let payload = at..at + len;
    at += len;
    Ok(Some((Header { fin, op, payload }, at)))
}

impl RawWs {
    /// Upgrade `stream` with a GET of `path_and_query` on `host`, with `headers`
    /// (name, value) added. Fails unless the server answers `101`.
    pub async fn upgrade(
        mut stream: TcpStream,
        host: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<RawWs> {
        let mut req = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        );
        for (k, v) in headers {
            req.push_str(k);
            req.push_str(": ");
            req.push_str(v);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut buf = vec![0u8; MIN_BUF];
        let mut end = 0;
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf[..end], b"\r\n\r\n") {
                break i + 4;
            }
            if end == buf.len() {
                if buf.len() >= 64 * 1024 {
                    return Err(bad("upgrade answer too long"));
                }
                buf.resize(buf.len() * 2, 0);
            }
            let n = stream.read(&mut buf[end..]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the upgrade",
                ));
            }
            end += n;
        };
        let status_line = buf[..head_end]
            .split(|&c| c == b'\r')
            .next()
            .unwrap_or_default();
        let status = String::from_utf8_lossy(status_line).to_string();
        if status.split_whitespace().nth(1) != Some("101") {
            return Err(io::Error::other(format!("upgrade refused: {status}")));
        }
        Ok(RawWs {
            stream,
            buf,
            start: head_end,
            end,
            frag: Vec::new(),
            frag_op: None,
            pending: Vec::new(),
            mask_seed: 0x9E37_79B9 ^ (end as u32).wrapping_mul(2654435761),
        })
    }

    /// The next message. Cancel-safe: a read that is cancelled loses nothing.
    pub async fn next(&mut self) -> io::Result<Frame<'_>> {
        loop {
            if let Some((op, range)) = self.next_buffered()? {
                return Ok(self.frame(op, range));
            }
            self.fill().await?;
        }
    }

    /// The next message if a whole one is already buffered (no waiting).
    pub fn try_next(&mut self) -> io::Result<Option<Frame<'_>>> {
        Ok(self
            .next_buffered()?
            .map(|(op, range)| self.frame(op, range)))
    }

    fn frame(&self, op: u8, range: Range) -> Frame<'_> {
        let data = match range {
            Range::Buf(r) => &self.buf[r],
            Range::Frag => &self.frag[..],
        };
        match op {
            OP_TEXT => Frame::Text(data),
            OP_CLOSE => Frame::Close((data.len() >= 2).then(|| {
                (
                    u16::from_be_bytes([data[0], data[1]]),
                    String::from_utf8_lossy(&data[2..]).to_string(),
                )
            })),
            _ => Frame::Binary,
        }
    }

    /// Consume buffered frames until a whole message is found; answers pings.
    fn next_buffered(&mut self) -> io::Result<Option<(u8, Range)>> {
        loop {
            let Some((h, used)) = parse(&self.buf[self.start..self.end])? else {
                return Ok(None);
            };
            let base = self.start;
            self.start += used;
            let payload = base + h.payload.start..base + h.payload.end;
            match h.op {
                OP_PING => {
                    let body = self.buf[payload].to_vec();
                    self.pong(&body)?;
                }
                OP_PONG => {}
                OP_CLOSE => return Ok(Some((OP_CLOSE, Range::Buf(payload)))),
                OP_TEXT | OP_BINARY if h.fin => {
                    if self.frag_op.is_some() {
                        return Err(bad("a new message inside a fragmented one"));
                    }
                    return Ok(Some((h.op, Range::Buf(payload))));
                }
                OP_TEXT | OP_BINARY => {
                    if self.frag_op.is_some() {
                        return Err(bad("a new message inside a fragmented one"));
                    }
                    self.frag_op = Some(h.op);
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[payload]);
                }
                OP_CONT => {
                    let Some(op) = self.frag_op else {
                        return Err(bad("a continuation without a message"));
                    };
                    if self.frag.len() + payload.len() > MAX_MESSAGE {
                        return Err(bad("message too large"));
                    }
                    self.frag.extend_from_slice(&self.buf[payload]);
                    if h.fin {
                        self.frag_op = None;
                        return Ok(Some((op, Range::Frag)));
                    }
                }
                _ => return Err(bad("unknown opcode")),
            }
        }
    }

    /// Read more bytes: compacts the buffer, grows it when a frame does not fit or
    /// the last read filled it, then reads whatever the socket holds.
    async fn fill(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let p = std::mem::take(&mut self.pending);
            self.stream.write_all(&p).await?;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let need = match parse(&self.buf[self.start..self.end]) {
            // A header is readable: room for the whole frame.
            Ok(None) => frame_len_hint(&self.buf[self.start..self.end]),
            _ => 0,
        };
        if self.start > 0 && (self.buf.len() - self.end < MIN_BUF || need > 0) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if need > self.buf.len() {
            self.buf.resize(need.next_power_of_two(), 0);
        } else if self.end == self.buf.len() {
            self.buf
                .resize((self.buf.len() * 2).min(MAX_BUF.max(need)), 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.end += n;
        if self.end == self.buf.len() && self.buf.len() < MAX_BUF {
            // The socket had more than we could take: a bigger buffer next time.
            let len = (self.buf.len() * 2).min(MAX_BUF);
            self.buf.resize(len, 0);
        }
        Ok(())
    }

    fn pong(&mut self, body: &[u8]) -> io::Result<()> {
        let frame = self.masked(OP_PONG, body);
        self.pending.extend_from_slice(&frame);
        let p = std::mem::take(&mut self.pending);
        match self.stream.try_write(&p) {
            Ok(n) if n == p.len() => Ok(()),
            Ok(n) => {
                self.pending = p[n..].to_vec();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.pending = p;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn masked(&mut self, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(payload.len() + 14);
        f.push(0x80 | op);
        let len = payload.len();
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        // xorshift: masks need not be secret here, only present.
        let mut x = self.mask_seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_seed = x;
        let key = x.to_be_bytes();
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        f
    }

    /// Send one text message.
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        let mut frame = std::mem::take(&mut self.pending);
        frame.extend_from_slice(&self.masked(OP_TEXT, text.as_bytes()));
        self.stream.write_all(&frame).await
    }

    /// Send a close frame (normal closure) and wait for the server's close or EOF.
    pub async fn close(&mut self) -> io::Result<()> {
        let frame = self.masked(OP_CLOSE, &1000u16.to_be_bytes());
        self.stream.write_all(&frame).await?;
        loop {
            match self.next().await {
                Ok(Frame::Close(_)) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where a message's bytes are.
enum Range {
    Buf(std::ops::Range<usize>),
    Frag,
}

/// Total length of the frame whose header starts `b`, if the header is complete.
fn frame_len_hint(b: &[u8]) -> usize {
    if b.len() < 2 {
        return 0;
    }
    let (len, at) = match b[1] & 0x7F {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(n).min(MAX_MESSAGE as u64) as usize, 10)
        }
        126 | 127 => return 0,
        n => (n as usize, 2),
    };
    at + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_of_every_length_form() {
        let mut b = vec![0x81, 3, b'a', b'b', b'c'];
        let (h, used) = parse(&b).unwrap().unwrap();
        assert!(h.fin);
        assert_eq!((h.op, h.payload, used), (OP_TEXT, 2..5, 5));
        b = vec![0x81, 126, 0, 200];
        b.extend(std::iter::repeat_n(b'x', 199));
        assert!(parse(&b).unwrap().is_none(), "one byte short");
        b.push(b'x');
        let (h, used) = parse(&b).unwrap().unwrap();
        assert_eq!((h.payload, used), (4..204, 204));
        assert_eq!(frame_len_hint(&b[..4]), 204);
        assert!(parse(&[0x81, 0x81, 0, 0, 0, 0, 0]).is_err(), "masked");
    }
}
