//! Socket-free harness: a real `ChatService` over a real SQLite store in a throw-away
//! file, and sessions driven through `ConnCtx` exactly as the gateway's connection loop
//! drives them.

#![allow(dead_code)]

use chat_core::*;
use dialect_action_request::ActionRequest;
use serde_json::Value;
use std::sync::Arc;

struct NoTokens;

impl TokenVerifier for NoTokens {
    fn verify(&self, _token: &str) -> Result<Claims, TokenError> {
        Err(TokenError::Invalid(
            "tests build principals directly".into(),
        ))
    }
}

pub struct Harness {
    pub svc: Arc<ChatService>,
    pub store: Arc<dyn Store>,
    _db: chat_store::testing::TestDb,
}

impl Harness {
    pub async fn new() -> Harness {
        let (db, store) = chat_store::testing::sqlite_store().await;
        let dir = std::env::temp_dir().join(format!("ar-files-{}", std::process::id()));
        let svc = ChatService::new(
            store.clone(),
            Arc::new(NoTokens),
            FileStore::new(dir),
            ServiceConfig {
                max_text_chars: 100,
                ..ServiceConfig::default()
            },
        );
        Harness {
            svc,
            store,
            _db: db,
        }
    }

    /// Every message of every room, tombstones included.
    pub async fn all_messages(&self) -> Vec<Message> {
        let mut out = Vec::new();
        for r in self.store.all_rooms().await.expect("rooms") {
            out.extend(
                self.store
                    .history(r.id, None, 10_000)
                    .await
                    .expect("history"),
            );
        }
        out.sort_by_key(|m| m.id);
        out
    }

    /// A user, provisioned as the gateway would from token claims.
    pub async fn principal(&self, id: i64, name: &str, admin: bool) -> Principal {
        self.svc
            .principal_for(&Claims {
                subject: Some(Subject::Id(id)),
                username: Some(name.to_string()),
                email: Some(format!("{name}@example.com")),
                first_name: Some(name.to_uppercase()),
                last_name: Some("Test".into()),
                is_admin: admin,
                expires_at: None,
            })
            .await
            .expect("principal")
    }

    /// A group room of `members`.
    pub async fn room(&self, members: &[i64], has_business: bool) -> RoomId {
        chat_testkit::steps::store_room(&*self.store, RoomKind::Group, members, has_business).await
    }

    pub fn handshake(principal: Option<Principal>) -> Handshake {
        Handshake {
            path: "/ws/dcrf/chat/".into(),
            principal,
            origin_allowed: true,
            origin_present: true,
            ..Handshake::default()
        }
    }

    /// Accept and open a connection of `principal` on `dialect`.
    pub async fn connect(&self, dialect: &ActionRequest, principal: &Principal) -> Conn {
        let mut session = match dialect.accept(&Self::handshake(Some(principal.clone()))) {
            Ok(s) => s,
            Err(r) => panic!("refused: {r:?}"),
        };
        let mut cx = ConnCtx::new(self.svc.clone());
        session.on_open(&mut cx).await;
        assert!(cx.take_outgoing().is_empty(), "nothing is sent on open");
        Conn { session, cx }
    }
}

pub struct Conn {
    pub session: Box<dyn Session>,
    pub cx: ConnCtx,
}

pub fn frames(out: Vec<Outgoing>) -> Vec<Value> {
    out.into_iter()
        .map(|o| match o {
            Outgoing::Text(t) => serde_json::from_str(&t).expect("JSON"),
            Outgoing::Shared(t) => serde_json::from_str(&t).expect("JSON"),
            Outgoing::Close { code, reason } => panic!("unexpected close {code} {reason}"),
        })
        .collect()
}

impl Conn {
    /// Send a text frame; the frames answered.
    pub async fn text(&mut self, text: &str) -> Vec<Value> {
        self.session.on_text(&mut self.cx, text).await;
        // Pipelined answers too, as the connection loop writes them.
        self.cx.settle().await;
        frames(self.cx.take_outgoing())
    }

    /// Send a request; its one reply.
    pub async fn req(&mut self, v: Value) -> Value {
        let mut out = self.text(&v.to_string()).await;
        assert_eq!(out.len(), 1, "one reply to {v}: {out:?}");
        out.remove(0)
    }

    /// Deliver the hub events queued for this connection; the frames rendered.
    pub async fn pump_raw(&mut self) -> Vec<Outgoing> {
        loop {
            let next = match self.cx.subscription.as_mut() {
                Some(sub) => sub.rx.try_recv().ok(),
                None => None,
            };
            let Some(ev) = next else { break };
            self.session.on_event(&mut self.cx, &ev).await;
        }
        self.cx.take_outgoing()
    }

    pub async fn pump(&mut self) -> Vec<Value> {
        let raw = self.pump_raw().await;
        frames(raw)
    }

    pub async fn close(mut self) {
        self.session.on_close(&mut self.cx).await;
        self.cx.sign_out().await;
    }
}
