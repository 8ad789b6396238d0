//! A plain WebSocket connection carrying JSON text frames.
//!
//! Control frames are handled by tungstenite: pings are answered while reading, so a
//! caller that keeps reading keeps the connection alive. Reads always take a timeout,
//! because the caller (a conformance check, a load generator) must be able to tell
//! "the server said nothing" from "the server is slow" without hanging.

use crate::Error;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What one read produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    /// The server closed (code and reason when it sent a close frame).
    Closed(Option<(u16, String)>),
}

/// The upgrade behind [`WsConn::connect`]: the stream and the subprotocol the server
/// selected, if any. A refused upgrade is [`Error::Refused`] with the HTTP status and
/// body.
pub async fn open(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(WebSocketStream<MaybeTlsStream<TcpStream>>, Option<String>), Error> {
    let mut req = url
        .into_client_request()
        .map_err(|e| Error::BadRequest(format!("{url}: {e}")))?;
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| Error::BadRequest(format!("header {k}: {e}")))?;
        let value =
            HeaderValue::from_str(v).map_err(|e| Error::BadRequest(format!("header {k}: {e}")))?;
        req.headers_mut().insert(name, value);
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            let subprotocol = resp
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok((ws, subprotocol))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(Error::Refused {
            status: resp.status().as_u16(),
            body: resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        }),
        Err(e) => Err(Error::Transport(format!("{url}: {e}"))),
    }
}

/// One open WebSocket.
pub struct WsConn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server selected, if any.
    pub subprotocol: Option<String>,
    closed: Option<Option<(u16, String)>>,
}

impl WsConn {
    /// Open a WebSocket to `url` with extra request headers (`Authorization`,
    /// `Origin`, `Sec-WebSocket-Protocol`, ...). A refused upgrade is
    /// [`Error::Refused`] with the HTTP status and body.
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<WsConn, Error> {
        let (ws, subprotocol) = open(url, headers).await?;
        Ok(WsConn {
            ws,
            subprotocol,
            closed: None,
        })
    }

    /// Send one text frame.
    pub async fn send_text(&mut self, text: String) -> Result<(), Error> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    }

    /// Send a JSON value as one text frame.
    pub async fn send_json(&mut self, v: &Value) -> Result<(), Error> {
        self.send_text(v.to_string()).await
    }

    /// Send one binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        self.ws
            .send(Message::binary(bytes))
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    }

    /// The next data frame or the close, waiting at most `timeout`
    /// ([`Error::Timeout`] then). After the close every call returns the same
    /// [`Incoming::Closed`].
    pub async fn recv(&mut self, timeout: Duration) -> Result<Incoming, Error> {
        if let Some(c) = &self.closed {
            return Ok(Incoming::Closed(c.clone()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| Error::Timeout)?;
            match next {
                Some(Ok(Message::Text(t))) => return Ok(Incoming::Text(t.as_str().to_owned())),
                Some(Ok(Message::Binary(b))) => return Ok(Incoming::Binary(b.to_vec())),
                Some(Ok(Message::Close(frame))) => {
                    let c = frame.map(|CloseFrame { code, reason }| {
                        (u16::from(code), reason.as_str().to_owned())
                    });
                    self.closed = Some(c.clone());
                    return Ok(Incoming::Closed(c));
                }
                // Pings are answered by tungstenite; pongs and raw frames mean nothing here.
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    self.closed = Some(None);
                    return Err(Error::Transport(e.to_string()));
                }
                None => {
                    self.closed = Some(None);
                    return Ok(Incoming::Closed(None));
                }
            }
        }
    }

    /// The next text frame parsed as JSON. A binary frame, a close or text that is not
    /// JSON is an error.
    pub async fn recv_json(&mut self, timeout: Duration) -> Result<Value, Error> {
        match self.recv(timeout).await? {
            Incoming::Text(t) => serde_json::from_str(&t)
                .map_err(|e| Error::Protocol(format!("text frame is not JSON ({e}): {t:.200}"))),
            Incoming::Binary(b) => Err(Error::Protocol(format!(
                "unexpected binary frame of {} bytes",
                b.len()
            ))),
            Incoming::Closed(c) => Err(Error::Closed(c)),
        }
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Close politely (1000) and wait briefly for the server's answer.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}
