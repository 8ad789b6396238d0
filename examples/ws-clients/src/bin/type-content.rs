//! A type-content client: `{type, content}` both ways.
//!
//! The token goes in the handshake (`Authorization: Bearer …`); without a valid one
//! the gateway answers HTTP 403. A direct chat needs no creating: it is named
//! `"<low>_<high>"` after its two users and comes to exist with its first message.
//! The client sends one message and prints what arrives until stopped (its own
//! message included: every member gets it, the sender too).
//!
//! ```sh
//! CHAT_TOKEN=$ANN CHAT_USER_ID=1 CHAT_PEER=2 cargo run -p ws-clients --bin type-content
//! ```
//!
//! Environment: `CHAT_URL` (default `http://127.0.0.1:8080`), `CHAT_TOKEN`,
//! `CHAT_USER_ID` (the token's user), `CHAT_PEER` (the other user's id), `CHAT_TEXT`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use ws_clients::{connect, env, ws_url, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let token = env("CHAT_TOKEN", None)?;
    let me: i64 = env("CHAT_USER_ID", None)?.parse()?;
    let peer: i64 = env("CHAT_PEER", None)?.parse()?;
    let text = env("CHAT_TEXT", Some("hello from type-content"))?;

    // The token goes in the handshake; without a valid one the gateway answers 403.
    let mut ws = connect(&ws_url("/ws/chats/")?, Some(&token)).await?;

    let chat_id = format!("{}_{}", me.min(peer), me.max(peer));
    let send = json!({"type": "new_message", "content": {
        "chat_type": "direct", "chat_id": chat_id, "message": text, "reply_to": null}});
    ws.send(Message::text(send.to_string())).await?;

    let mut ready = false;
    while let Some(frame) = ws.next().await {
        let Message::Text(frame) = frame? else {
            continue;
        };
        let v: Value = serde_json::from_str(&frame)?;
        let c = &v["content"];
        match v["type"].as_str() {
            // Every member gets it, the sender too: that is the acknowledgement. Files
            // sent through other dialects are URL lines in `text` and listed in `files`.
            Some("new_message") => {
                println!(
                    "<- new_message #{} from {}: {}",
                    c["message_id"], c["author_id"], c["text"]
                );
                // Our own message came back: the chat exists and we are in it.
                if !ready && c["author_id"] == me {
                    ready = true;
                    println!("ready: chat {chat_id}");
                }
            }
            _ => println!("<- {frame}"),
        }
    }
    Ok(())
}
