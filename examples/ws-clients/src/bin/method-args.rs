//! A method-args client: `{method, access_token, args}` in, `{type, data}` out.
//!
//! It authorizes the socket with its first message, which also creates the direct chat
//! with the peer (or, if the two already have one, learns its id from the
//! `chat_duplication_error`), sends one message and prints what arrives until stopped.
//!
//! ```sh
//! CHAT_TOKEN=$ANN CHAT_PEER=2 cargo run -p ws-clients --bin method-args
//! ```
//!
//! Environment: `CHAT_URL` (default `http://127.0.0.1:8080`), `CHAT_TOKEN`,
//! `CHAT_PEER` (the other user's id), `CHAT_TEXT` (what to send).

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use ws_clients::{connect, env, next_json, ws_url, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let token = env("CHAT_TOKEN", None)?;
    let peer: i64 = env("CHAT_PEER", None)?.parse()?;
    let text = env("CHAT_TEXT", Some("hello from method-args"))?;

    // No token in the handshake: this dialect takes it in the first message.
    let mut ws = connect(&ws_url("/ws/chat/")?, None).await?;

    // The first message that carries a token authorizes the socket; this one also
    // creates the direct chat with the peer.
    let create = json!({"method": "create_chat", "access_token": token, "args": {"users": [peer]}});
    ws.send(Message::text(create.to_string())).await?;
    let chat = loop {
        let v = next_json(&mut ws).await?;
        match (v["type"].as_str(), v["data"]["type"].as_str()) {
            (Some("chat_created"), _) => break v["data"]["chat"]["id"].clone(),
            // The two already have a direct chat: this is its id.
            (Some("error"), Some("chat_duplication_error")) => break v["data"]["chat_id"].clone(),
            (Some("error"), _) => return Err(format!("refused: {}", v["data"]).into()),
            _ => println!("<- {v}"),
        }
    };
    println!("ready: chat {chat}");

    let send = json!({"method": "send_message", "args": {"chat": chat, "text": text}});
    ws.send(Message::text(send.to_string())).await?;
    loop {
        let v = next_json(&mut ws).await?;
        match v["type"].as_str() {
            // `message_created` is the author's own (on every connection of theirs),
            // `new_message` everyone else's; both carry the same Message.
            Some(t @ ("new_message" | "message_created")) => {
                let m = &v["data"]["message"];
                let files: Vec<&str> = m["attached_files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["file"].as_str())
                    .collect();
                println!(
                    "<- {t} #{} from {}: {} files {files:?}",
                    m["id"], m["user"]["pk"], m["text"]
                );
            }
            _ => println!("<- {v}"),
        }
    }
}
