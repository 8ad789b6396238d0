//! An action-request client (djangochannelsrestframework): `{action, request_id, …}`
//! in, `{errors, data, action, response_status, request_id}` out.
//!
//! The token goes in the handshake (`Authorization: Bearer …`). The client lists its
//! rooms, joins the direct room it shares with the peer (this API cannot create rooms;
//! another dialect or the admin API does), sends one message and prints what arrives
//! in that room until stopped.
//!
//! ```sh
//! CHAT_TOKEN=$ANN CHAT_PEER=2 cargo run -p ws-clients --bin action-request
//! ```
//!
//! Environment: `CHAT_URL` (default `http://127.0.0.1:8080`), `CHAT_TOKEN`,
//! `CHAT_PEER` (the other user's id), `CHAT_TEXT`.

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use ws_clients::{connect, env, next_json, ws_url, Error, Ws};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let token = env("CHAT_TOKEN", None)?;
    let peer: i64 = env("CHAT_PEER", None)?.parse()?;
    let text = env("CHAT_TEXT", Some("hello from action-request"))?;

    // The token goes in the handshake.
    let mut ws = connect(&ws_url("/ws/dcrf/chat/")?, Some(&token)).await?;

    // Every request gets exactly one reply, in order, echoing its request_id.
    let rooms = call(&mut ws, json!({"action": "list", "request_id": 1})).await?;
    let room = rooms["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| {
            let people = r["participants"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            people.len() == 2 && people.iter().any(|u| u["id"] == peer)
        })
        .map(|r| r["pk"].clone())
        .ok_or("no room with the peer yet: start a client of another dialect first")?;
    call(
        &mut ws,
        json!({"action": "join_room", "room_pk": room, "request_id": 2}),
    )
    .await?;
    println!("ready: room {room}");

    let send = json!({"action": "create_message", "msg_text": text, "request_id": 3});
    ws.send(Message::text(send.to_string())).await?;
    loop {
        let v = next_json(&mut ws).await?;
        let d = &v["data"];
        match v["action"].as_str() {
            // Our reply (request_id 3) and everyone else's messages in the joined room
            // (request_id: the sender's, or null when sent through another dialect).
            Some("create_message") => println!(
                "<- create_message #{} from {}: {}",
                d["id"], d["user"]["username"], d["text"]
            ),
            _ => println!("<- {v}"),
        }
    }
}

/// Send a request; its reply, which must be a success.
async fn call(ws: &mut Ws, request: Value) -> Result<Value, Error> {
    ws.send(Message::text(request.to_string())).await?;
    loop {
        let v = next_json(ws).await?;
        if v["request_id"] == request["request_id"] {
            if v["response_status"].as_i64().is_some_and(|s| s >= 400) {
                return Err(format!("refused: {v}").into());
            }
            return Ok(v);
        }
    }
}
