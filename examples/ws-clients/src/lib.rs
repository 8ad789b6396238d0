//! What the three clients in `src/bin/` share: their settings from the environment,
//! opening the WebSocket (with the token in the handshake where the dialect wants it)
//! and reading JSON frames. Each binary is one dialect's conversation; this is the
//! plumbing around it.

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub type Error = Box<dyn std::error::Error>;

/// An open WebSocket to the gateway.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The environment variable `name`, or `default`; an error when neither is there.
pub fn env(name: &str, default: Option<&str>) -> Result<String, Error> {
    match (std::env::var(name), default) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(d)) => Ok(d.to_string()),
        (Err(_), None) => Err(format!("set {name}").into()),
    }
}

/// The gateway's WebSocket URL for `path`: `CHAT_URL` (default
/// `http://127.0.0.1:8080`) with `http` turned into `ws`.
pub fn ws_url(path: &str) -> Result<String, Error> {
    let base = env("CHAT_URL", Some("http://127.0.0.1:8080"))?;
    Ok(format!("{}{path}", base.replacen("http", "ws", 1)))
}

/// Open a WebSocket to `url`, with `Authorization: Bearer <token>` in the handshake
/// when a token is given.
pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Ws, Error> {
    let mut request = url.into_client_request()?;
    if let Some(token) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

/// The next text frame as JSON; an error when the socket closes.
pub async fn next_json(ws: &mut Ws) -> Result<Value, Error> {
    while let Some(frame) = ws.next().await {
        if let Message::Text(text) = frame? {
            return Ok(serde_json::from_str(&text)?);
        }
    }
    Err("the server closed the connection".into())
}
