//! A Socket.IO v5 client over Engine.IO v4, websocket transport only.
//!
//! Why not long-polling: every Socket.IO server that accepts the polling transport
//! also accepts `transport=websocket` directly (that is what socket.io-client does
//! with `transports: ["websocket"]`), and one plain WebSocket is all a test or a load
//! generator needs. The Engine.IO layer is then tiny: the server opens with `0{json}`
//! (sid, ping interval), sends `2` (ping) to which we answer `3` (pong), and wraps
//! every Socket.IO packet in a `4` (message). A Socket.IO packet is a type digit, the
//! namespace followed by `,` unless it is `/`, an optional ack id, and JSON:
//!
//! ```text
//! 40/chat,{"token":"…"}          connect to /chat with an auth payload
//! 40/chat,{"sid":"…"}            … accepted               44/chat,{"message":"…"}  refused
//! 42/chat,["send-message",{…}]   an event                 42/chat,7["e",{…}]     … asking for ack 7
//! 43/chat,7[{…}]                 the ack 7 with its arguments
//! 41/chat,                       namespace disconnect
//! ```
//!
//! Binary attachments (`45`/`46`) are not supported: none of the chat dialects uses
//! them, so receiving one is reported as a protocol error.
//!
//! A client talks to one namespace. Packets for other namespaces are ignored. Packets
//! that arrive while [`SioClient::call`] waits for its ack are kept, in order, and
//! returned by the following [`SioClient::recv`] calls, so nothing is lost.

use crate::ws::{Incoming, WsConn};
use crate::Error;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// A Socket.IO packet of our namespace, as the caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum SioPacket {
    /// An event: its name, its arguments, and the ack id when the server asked for
    /// an acknowledgement.
    Event {
        name: String,
        args: Vec<Value>,
        ack: Option<u64>,
    },
    /// The acknowledgement of one of our emits.
    Ack { id: u64, args: Vec<Value> },
    /// The server disconnected us from the namespace (`41`).
    Disconnect,
}

/// One Socket.IO connection to one namespace.
pub struct SioClient {
    ws: WsConn,
    /// The namespace prefix written before a packet's id and data: `""` for `/`,
    /// `"/chat,"` otherwise.
    prefix: String,
    namespace: String,
    /// The Engine.IO session id from the open packet.
    pub engine_sid: String,
    /// The Socket.IO session id from the namespace connect answer.
    pub sid: Option<String>,
    /// The server's ping interval and timeout (from the open packet), in ms.
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    next_ack: u64,
    pending: VecDeque<SioPacket>,
}

/// One decoded Socket.IO packet (any namespace).
struct RawPacket {
    kind: u8,
    namespace: String,
    id: Option<u64>,
    data: Option<Value>,
}

/// The websocket-transport URL of a Socket.IO endpoint such as
/// `ws://host:port/socket.io/`.
pub fn engine_url(base: &str) -> String {
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q)),
        None => (base.to_string(), None),
    };
    let path = if path.ends_with('/') {
        path
    } else {
        format!("{path}/")
    };
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}&EIO=4&transport=websocket"),
        _ => format!("{path}?EIO=4&transport=websocket"),
    }
}

impl SioClient {
    /// Open the Engine.IO session at `base_url` (e.g. `ws://host:port/ws/`) and
    /// connect to `namespace` (`/` or `/chat`) with an optional auth payload
    /// (`{"token": "…"}`). A refused namespace connection is
    /// [`Error::ConnectError`] with the server's payload.
    pub async fn connect(
        base_url: &str,
        namespace: &str,
        auth: Option<&Value>,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<SioClient, Error> {
        let mut ws = WsConn::connect(&engine_url(base_url), headers).await?;
        let open = match ws.recv(timeout).await? {
            Incoming::Text(t) => t,
            Incoming::Binary(_) => {
                return Err(Error::Protocol(
                    "expected the Engine.IO open packet, got a binary frame".into(),
                ))
            }
            Incoming::Closed(c) => return Err(Error::Closed(c)),
        };
        let body = open.strip_prefix('0').ok_or_else(|| {
            Error::Protocol(format!(
                "expected the Engine.IO open packet `0{{…}}`, got {open:.200}"
            ))
        })?;
        let info: Value = serde_json::from_str(body)
            .map_err(|e| Error::Protocol(format!("open packet is not JSON ({e}): {body:.200}")))?;
        let engine_sid = info
            .get("sid")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Protocol(format!("open packet without sid: {body:.200}")))?
            .to_string();
        let ms = |k: &str| info.get(k).and_then(Value::as_u64).unwrap_or(0);
        let namespace = if namespace.is_empty() { "/" } else { namespace }.to_string();
        let prefix = if namespace == "/" {
            String::new()
        } else {
            format!("{namespace},")
        };
        let mut client = SioClient {
            ws,
            prefix,
            namespace,
            engine_sid,
            sid: None,
            ping_interval_ms: ms("pingInterval"),
            ping_timeout_ms: ms("pingTimeout"),
            next_ack: 0,
            pending: VecDeque::new(),
        };
        let mut frame = format!("40{}", client.prefix);
        if let Some(a) = auth {
            frame.push_str(&a.to_string());
        }
        client.ws.send_text(frame).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let p = client.next_raw(deadline).await?;
            match p.kind {
                0 => {
                    client.sid = p
                        .data
                        .as_ref()
                        .and_then(|d| d.get("sid"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    return Ok(client);
                }
                4 => return Err(Error::ConnectError(p.data.unwrap_or(Value::Null))),
                1 => return Err(Error::Closed(None)),
                _ => {
                    // An event before the connect answer: keep it for `recv`.
                    if let Some(pkt) = to_packet(p)? {
                        client.pending.push_back(pkt);
                    }
                }
            }
        }
    }

    /// The namespace this client is connected to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Emit `event` with one argument (or none), without asking for an ack.
    pub async fn emit(&mut self, event: &str, arg: Option<&Value>) -> Result<(), Error> {
        let frame = self.event_frame(event, arg, None);
        self.ws.send_text(frame).await
    }

    /// Emit `event` asking for an ack; returns the ack id to wait for.
    pub async fn emit_with_ack(&mut self, event: &str, arg: Option<&Value>) -> Result<u64, Error> {
        let id = self.next_ack;
        self.next_ack += 1;
        let frame = self.event_frame(event, arg, Some(id));
        self.ws.send_text(frame).await?;
        Ok(id)
    }

    /// Emit with an ack and wait for it; returns the ack's arguments. Packets that
    /// arrive meanwhile are kept for [`SioClient::recv`].
    pub async fn call(
        &mut self,
        event: &str,
        arg: Option<&Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, Error> {
        let id = self.emit_with_ack(event, arg).await?;
        self.wait_ack(id, timeout).await
    }

    /// Wait for the ack with this id, keeping other packets for `recv`.
    pub async fn wait_ack(&mut self, id: u64, timeout: Duration) -> Result<Vec<Value>, Error> {
        if let Some(pos) = self
            .pending
            .iter()
            .position(|p| matches!(p, SioPacket::Ack { id: i, .. } if *i == id))
        {
            if let Some(SioPacket::Ack { args, .. }) = self.pending.remove(pos) {
                return Ok(args);
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let p = self.next_raw(deadline).await?;
            match to_packet(p)? {
                Some(SioPacket::Ack { id: got, args }) if got == id => return Ok(args),
                Some(other) => self.pending.push_back(other),
                None => {}
            }
        }
    }

    /// Send the ack `id` that the server asked for, with these arguments.
    pub async fn ack(&mut self, id: u64, args: &[Value]) -> Result<(), Error> {
        let frame = format!("43{}{}{}", self.prefix, id, Value::from(args.to_vec()));
        self.ws.send_text(frame).await
    }

    /// The next packet of our namespace (kept ones first), waiting at most `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Result<SioPacket, Error> {
        if let Some(p) = self.pending.pop_front() {
            return Ok(p);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let p = self.next_raw(deadline).await?;
            if let Some(pkt) = to_packet(p)? {
                return Ok(pkt);
            }
        }
    }

    /// Leave the namespace (`41`) and close the socket.
    pub async fn disconnect(mut self) {
        let frame = format!("41{}", self.prefix);
        let _ = self.ws.send_text(frame).await;
        self.ws.close().await;
    }

    /// The raw WebSocket, for tests that need to send malformed frames.
    pub fn raw(&mut self) -> &mut WsConn {
        &mut self.ws
    }

    fn event_frame(&self, event: &str, arg: Option<&Value>, ack: Option<u64>) -> String {
        let name = Value::from(event);
        let mut s = String::with_capacity(64);
        s.push_str("42");
        s.push_str(&self.prefix);
        if let Some(id) = ack {
            s.push_str(&id.to_string());
        }
        s.push('[');
        s.push_str(&name.to_string());
        if let Some(a) = arg {
            s.push(',');
            s.push_str(&a.to_string());
        }
        s.push(']');
        s
    }

    /// The next Socket.IO packet of our namespace, answering pings on the way.
    async fn next_raw(&mut self, deadline: tokio::time::Instant) -> Result<RawPacket, Error> {
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            let text = match self.ws.recv(left).await? {
                Incoming::Text(t) => t,
                Incoming::Binary(b) => {
                    return Err(Error::Protocol(format!(
                        "binary Engine.IO frame of {} bytes (binary attachments are not supported)",
                        b.len()
                    )))
                }
                Incoming::Closed(c) => return Err(Error::Closed(c)),
            };
            match text.as_bytes().first() {
                Some(b'2') => {
                    // Engine.IO ping: answer with the same payload (normally none).
                    let pong = format!("3{}", &text[1..]);
                    self.ws.send_text(pong).await?;
                }
                Some(b'3') | Some(b'6') => {}
                Some(b'1') => return Err(Error::Closed(None)),
                Some(b'4') => {
                    let p = decode_socket_packet(&text[1..])?;
                    if p.namespace == self.namespace {
                        return Ok(p);
                    }
                }
                _ => {
                    return Err(Error::Protocol(format!(
                        "unknown Engine.IO packet {text:.200}"
                    )))
                }
            }
        }
    }
}

/// Decode the Socket.IO packet inside an Engine.IO message.
fn decode_socket_packet(s: &str) -> Result<RawPacket, Error> {
    let bad = |why: &str| Error::Protocol(format!("bad Socket.IO packet ({why}): {s:.200}"));
    let mut rest = s;
    let kind = match rest.as_bytes().first() {
        Some(c @ b'0'..=b'6') => c - b'0',
        _ => return Err(bad("no packet type")),
    };
    rest = &rest[1..];
    if kind == 5 || kind == 6 {
        return Err(bad("binary attachments are not supported"));
    }
    let namespace = if rest.starts_with('/') {
        match rest.find(',') {
            Some(i) => {
                let ns = rest[..i].to_string();
                rest = &rest[i + 1..];
                ns
            }
            None => {
                let ns = rest.to_string();
                rest = "";
                ns
            }
        }
    } else {
        "/".to_string()
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        Some(rest[..digits].parse::<u64>().map_err(|_| bad("ack id"))?)
    } else {
        None
    };
    rest = &rest[digits..];
    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str(rest).map_err(|e| bad(&format!("data is not JSON: {e}")))?)
    };
    Ok(RawPacket {
        kind,
        namespace,
        id,
        data,
    })
}

/// A raw packet as the caller sees it; `None` for packets that mean nothing after
/// the connection (a repeated connect answer).
fn to_packet(p: RawPacket) -> Result<Option<SioPacket>, Error> {
    match p.kind {
        2 => {
            let mut items = match p.data {
                Some(Value::Array(a)) if !a.is_empty() => a,
                other => {
                    return Err(Error::Protocol(format!(
                        "event packet without [name, ...]: {other:?}"
                    )))
                }
            };
            let name = match items.remove(0) {
                Value::String(n) => n,
                other => {
                    return Err(Error::Protocol(format!(
                        "event name is not a string: {other}"
                    )))
                }
            };
            Ok(Some(SioPacket::Event {
                name,
                args: items,
                ack: p.id,
            }))
        }
        3 => {
            let id =
                p.id.ok_or_else(|| Error::Protocol("ack packet without an id".into()))?;
            let args = match p.data {
                Some(Value::Array(a)) => a,
                None => Vec::new(),
                Some(other) => {
                    return Err(Error::Protocol(format!(
                        "ack data is not an array: {other}"
                    )))
                }
            };
            Ok(Some(SioPacket::Ack { id, args }))
        }
        1 => Ok(Some(SioPacket::Disconnect)),
        4 => Err(Error::ConnectError(p.data.unwrap_or(Value::Null))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_namespaced_event_with_ack_id() {
        let p = decode_socket_packet(r#"2/chat,12["chat",{"a":1}]"#).unwrap();
        assert_eq!((p.kind, p.namespace.as_str(), p.id), (2, "/chat", Some(12)));
        assert_eq!(p.data, Some(json!(["chat", {"a": 1}])));
    }

    #[test]
    fn decodes_root_ack_and_bare_connect() {
        let p = decode_socket_packet(r#"37[{"ok":true}]"#).unwrap();
        assert_eq!((p.kind, p.namespace.as_str(), p.id), (3, "/", Some(7)));
        let p = decode_socket_packet("0/chat,").unwrap();
        assert_eq!((p.kind, p.namespace.as_str(), p.data), (0, "/chat", None));
        let p = decode_socket_packet("1/chat").unwrap();
        assert_eq!((p.kind, p.namespace.as_str()), (1, "/chat"));
    }

    #[test]
    fn refuses_binary_and_garbage() {
        assert!(decode_socket_packet(r#"51-["x",{"_placeholder":true,"num":0}]"#).is_err());
        assert!(decode_socket_packet("x").is_err());
        assert!(decode_socket_packet("2[not json").is_err());
    }

    #[test]
    fn engine_url_adds_the_transport() {
        assert_eq!(
            engine_url("ws://h:1/ws"),
            "ws://h:1/ws/?EIO=4&transport=websocket"
        );
        assert_eq!(
            engine_url("ws://h:1/socket.io/?token=x"),
            "ws://h:1/socket.io/?token=x&EIO=4&transport=websocket"
        );
    }
}
