//! A WebSocket client for tests: JSON in and out, with timeouts so a missing frame
//! fails the test instead of hanging it.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long `recv_*` waits before failing.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server answered with, if any.
    pub subprotocol: Option<String>,
    /// The close frame received, if the server closed.
    pub close: Option<(u16, String)>,
}

impl WsClient {
    /// Connect; panics when the upgrade is refused.
    pub async fn connect(url: &str) -> WsClient {
        match Self::connect_with_headers(url, &[]).await {
            Ok(c) => c,
            Err(status) => panic!("upgrade to {url} refused with HTTP {status}"),
        }
    }

    /// Connect with extra request headers; `Err(status)` when the server refuses the
    /// upgrade with an HTTP status.
    pub async fn connect_with_headers(
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, u16> {
        match chat_client::ws::open(url, headers).await {
            Ok((ws, subprotocol)) => Ok(WsClient {
                ws,
                subprotocol,
                close: None,
            }),
            Err(chat_client::Error::Refused { status, .. }) => Err(status),
            Err(e) => panic!("cannot connect to {url}: {e}"),
        }
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws
            .send(Message::text(s.to_string()))
            .await
            .expect("send works");
    }

    pub async fn send_binary(&mut self, b: &[u8]) {
        self.ws
            .send(Message::binary(b.to_vec()))
            .await
            .expect("send works");
    }

    /// The next text frame, or `None` when the connection closed or nothing came in
    /// `wait`.
    pub async fn try_recv_text(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match next {
                Ok(Message::Text(t)) => return Some(t.to_string()),
                Ok(Message::Close(frame)) => {
                    self.close = Some(
                        frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new())),
                    );
                    return None;
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The next JSON frame; panics on timeout, close or non-JSON.
    pub async fn recv_json(&mut self) -> Value {
        let text = self.try_recv_text(RECV_TIMEOUT).await.unwrap_or_else(|| {
            panic!("no frame within {RECV_TIMEOUT:?} (close: {:?})", self.close)
        });
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("server sent non-JSON {text:?}: {e}"))
    }

    /// Frames until one matches `pred` (others are skipped); panics on timeout.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(text) = self.try_recv_text(left).await else {
                panic!(
                    "no matching frame within {RECV_TIMEOUT:?} (close: {:?})",
                    self.close
                );
            };
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if pred(&v) {
                    return v;
                }
            }
        }
    }

    /// The next frame whose `field` equals `value` (e.g. `("type", "new_message")`).
    pub async fn recv_where(&mut self, field: &str, value: &str) -> Value {
        self.recv_until(|v| v.get(field).and_then(Value::as_str) == Some(value))
            .await
    }

    /// Assert that no text frame arrives within `ms` milliseconds.
    pub async fn assert_silent(&mut self, ms: u64) {
        if let Some(t) = self.try_recv_text(Duration::from_millis(ms)).await {
            panic!("expected silence, got {t}");
        }
    }

    /// Wait for the server to close; returns the close code and reason.
    pub async fn recv_close(&mut self) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.close = Some(
                        frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new())),
                    );
                    return self.close.clone();
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return self.close.clone(),
                Err(_) => break,
            }
        }
        None
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Close as a browser does: send the close frame, then read (and drop) whatever
    /// the server still sends until its own close frame or the end of the stream.
    ///
    /// [`WsClient::close`] drops the socket at once; if answers are still arriving,
    /// the kernel resets the connection instead of ending it, and a reset throws away
    /// what the server had received but not yet read. A test about what a closing
    /// client's last commands become needs this one.
    pub async fn close_handshake(mut self) {
        let _ = self.ws.send(Message::Close(None)).await;
        let _ = self.recv_close().await;
    }
}
