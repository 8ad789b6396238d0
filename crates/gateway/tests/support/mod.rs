//! Steps the gateway's HTTP-side suites share on the chat socket at `/ws/chat/` (the
//! legacy direct-room dialect, the one whose frames carry an `access_token`).
//!
//! Invariant: a step returns only once the server has answered it, so the state it
//! reports (a chat id) is committed. Mechanism: each step waits for the answer frame
//! it expects, skipping anything else. Consequence: suites can go straight to REST or
//! file assertions about that chat without racing the socket.

use chat_testkit::{TestGateway, WsClient};
use serde_json::json;

/// Sign in as `user` (`name`) on the chat socket and create the direct chat with
/// `peer`; the socket and the chat id.
pub async fn open_chat(gw: &TestGateway, user: i64, name: &str, peer: i64) -> (WsClient, i64) {
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    let token = gw.token(user, name);
    c.send_json(
        &json!({"method": "create_chat", "access_token": token, "args": {"users": [peer]}}),
    )
    .await;
    let chat = c.recv_where("type", "chat_created").await["data"]["chat"]["id"]
        .as_i64()
        .expect("a chat id");
    (c, chat)
}
