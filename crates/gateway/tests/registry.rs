//! A dialect is mounted through the registry alone: the tiny `shout` dialect below
//! exists only in this test, is added to the gateway's registry as one descriptor, and
//! its clients then talk with the clients of a built-in dialect in one room. This is
//! the "adding a dialect" walk-through of the README, executed.
//!
//! `shout` speaks JSON over a plain WebSocket at `/shout/`, signed in by a handshake
//! token: `{"room": ID, "text": "…"}` sends a message (answered `{"sent": MESSAGE_ID}`);
//! every message of the caller's rooms arrives as `{"room": ID, "from": USER, "text": …}`.

use async_trait::async_trait;
use chat_core::{
    ConnCtx, Event, Handshake, Published, Refusal, RenderSlot, RoomId, RoomKind, RoomRef,
    SendMessage, Session, WsDialect,
};
use chat_gateway::GatewayConfig;
use chat_testkit::{Options, TestGateway, WsClient};
use dialect_kit::{Descriptor, Serve};
use serde_json::{json, Value};
use std::sync::{Arc, LazyLock};

// ------------------------------------------------------------------ the dialect crate

const NAME: &str = "shout";

/// Everything the gateway needs to know of the dialect.
const SHOUT: Descriptor = Descriptor {
    name: NAME,
    default_paths: &["/shout/"],
    serve: Serve::Ws(|| Arc::new(Shout)),
    trusted_mode: None,
    fuzz: &[],
    try_it: None,
};

/// Its place in every event's render cache.
static SLOT: LazyLock<RenderSlot> = LazyLock::new(RenderSlot::claim);

struct Shout;

impl WsDialect for Shout {
    fn name(&self) -> &'static str {
        NAME
    }

    fn accept(&self, hs: &Handshake) -> Result<Box<dyn Session>, Refusal> {
        match &hs.principal {
            Some(p) => Ok(Box::new(ShoutSession {
                principal: Some(p.clone()),
            })),
            None => Err(Refusal::forbidden("a token is required")),
        }
    }
}

struct ShoutSession {
    principal: Option<chat_core::Principal>,
}

#[async_trait]
impl Session for ShoutSession {
    async fn on_open(&mut self, cx: &mut ConnCtx) {
        if let Some(p) = self.principal.take() {
            cx.sign_in(p).await;
        }
    }

    async fn on_text(&mut self, cx: &mut ConnCtx, text: &str) {
        let Some(actor) = cx.principal.clone() else {
            return cx.send(json!({"error": "not signed in"}).to_string());
        };
        let req: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let (Some(room), Some(text)) = (req["room"].as_i64(), req["text"].as_str()) else {
            return cx.send(json!({"error": "send {\"room\": ID, \"text\": \"…\"}"}).to_string());
        };
        let cmd = SendMessage::text(RoomRef::Id(RoomId(room)), text);
        let origin = Some(cx.origin(NAME, None));
        let answer = match cx.service.send_message(&actor, cmd, origin).await {
            Ok((_, m)) => json!({"sent": m.message.id.0}),
            Err(e) => json!({"error": e.code(), "detail": e.public_message()}),
        };
        cx.send(answer.to_string());
    }

    async fn on_oversize(&mut self, cx: &mut ConnCtx, _size: usize) {
        cx.send(json!({"error": "too_large"}).to_string());
    }

    async fn on_binary(&mut self, cx: &mut ConnCtx, _bytes: &[u8]) {
        cx.send(json!({"error": "text frames only"}).to_string());
    }

    async fn on_event(&mut self, cx: &mut ConnCtx, event: &Arc<Published>) {
        if event.is_from(cx.conn) {
            return; // answered by `sent`
        }
        if let Event::MessageCreated { room, message } = &event.event {
            let frame = event.rendered(*SLOT, || {
                json!({"room": room.room.id.0, "from": message.author.id.0, "text": message.message.text})
                    .to_string()
            });
            cx.send_shared(frame);
        }
    }
}

// ------------------------------------------------------------------ the tests

fn with_shout(c: &mut GatewayConfig) {
    c.registry.push(SHOUT);
    c.dialects.push(NAME.to_string());
}

async fn gateway(tweak: fn(&mut GatewayConfig)) -> TestGateway {
    TestGateway::start(Options {
        tweak,
        ..Options::default()
    })
    .await
    .expect("a SQLite gateway always starts")
}

#[tokio::test]
async fn a_dialect_added_to_the_registry_talks_with_a_built_in_one() {
    let gw = gateway(with_shout).await;
    gw.create_user(1, "ann").await;
    gw.create_user(2, "bob").await;
    let room = gw.create_room(RoomKind::Group, &[1, 2], false).await.0;

    let bearer = |t: String| format!("Bearer {t}");
    let mut shout = WsClient::connect_with_headers(
        &gw.ws_url("/shout/"),
        &[("authorization", &bearer(gw.token(1, "ann")))],
    )
    .await
    .expect("the shout upgrade is accepted at its default path");
    gw.wait_connections(1, 1).await;
    // A built-in dialect's client in the same room (method-args, at its default path).
    let mut ma = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    ma.send_json(&json!({"method": "auth", "access_token": gw.token(2, "bob")}))
        .await;
    assert_eq!(ma.recv_json().await["type"], "authenticated");

    shout
        .send_json(&json!({"room": room, "text": "hello from shout"}))
        .await;
    let sent = shout.recv_until(|v| v.get("sent").is_some()).await;
    assert!(sent["sent"].as_i64().is_some_and(|id| id > 0), "{sent}");
    let got = ma.recv_where("type", "new_message").await;
    assert_eq!(got["data"]["message"]["text"], "hello from shout", "{got}");

    ma.send_json(&json!({"method": "send_message", "args": {"chat": room, "text": "hi back"}}))
        .await;
    let heard = shout.recv_until(|v| v.get("text").is_some()).await;
    assert_eq!(heard, json!({"room": room, "from": 2, "text": "hi back"}));

    // Errors go through the domain's codes.
    shout
        .send_json(&json!({"room": 999_999, "text": "nowhere"}))
        .await;
    let err = shout.recv_until(|v| v.get("error").is_some()).await;
    assert_eq!(err["error"], "not_found", "{err}");
}

#[tokio::test]
async fn a_registered_dialect_is_moved_and_refused_like_the_built_in_ones() {
    fn moved(c: &mut GatewayConfig) {
        with_shout(c);
        c.mounts = vec!["shout=/loud/".parse().expect("a mount spec")];
    }
    let gw = gateway(moved).await;
    gw.create_user(1, "ann").await;
    let token = format!("Bearer {}", gw.token(1, "ann"));
    let auth = [("authorization", token.as_str())];
    assert!(WsClient::connect_with_headers(&gw.ws_url("/loud/"), &auth)
        .await
        .is_ok());
    assert_eq!(
        WsClient::connect_with_headers(&gw.ws_url("/shout/"), &auth)
            .await
            .err(),
        Some(404),
        "the default path is replaced by --mount"
    );
    assert_eq!(
        WsClient::connect_with_headers(&gw.ws_url("/loud/"), &[])
            .await
            .err(),
        Some(403),
        "the dialect's own refusal"
    );
}

#[test]
fn a_dialect_outside_the_registry_is_an_unknown_name() {
    let mut config = GatewayConfig::new(
        "127.0.0.1:0".parse().expect("an address"),
        "sqlite::memory:",
        chat_gateway::Jwt::hs256(b"chat-gateway-test-secret-of-32-bytes-or-more").expect("a key"),
        std::env::temp_dir(),
    );
    config.dialects.push(NAME.to_string());
    let err = chat_gateway::mounts::plan(&config).expect_err("not in the registry");
    assert!(err.to_string().contains("unknown dialect `shout`"), "{err}");
    config.registry.push(SHOUT);
    let plan = chat_gateway::mounts::plan(&config).expect("registered");
    assert!(plan[0]
        .1
        .iter()
        .any(|r| r.dialect == NAME && r.path == "/shout"));
}
