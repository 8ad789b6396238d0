//! A Socket.IO session driven without a socket, over a real chat service.
//!
//! Invariant: a test sees exactly what the worker would write to the socket. Mechanism:
//! the session runs on a [`SioCtx`] without a socket, so its outbox is never flushed;
//! [`SioConn`] feeds it client events and hub events the way the worker does (one at a
//! time, a handshake's principal signed in first) and reads the outbox after each
//! step, in order, as [`Said`] values. Consequence: a dialect's replies, acks, pushes
//! and error shapes are tested with plain assertions, against a real [`ChatService`]
//! on a throw-away SQLite file, with no Node and no port.

use crate::outbox::Sent;
use crate::{Handshake, Opening, Request, SioCtx, SioDialect, SioSession};
use chat_core::{
    ChatService, Claims, FileStore, Principal, Published, ServiceConfig, Subject, TokenError,
    TokenVerifier,
};
use serde_json::Value;
use std::sync::Arc;

/// Test tokens: `"<id>:<username>"` names a user, `"expired"` is an expired token, and
/// anything else is invalid.
pub struct TestTokens;

impl TokenVerifier for TestTokens {
    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token == "expired" {
            return Err(TokenError::Expired);
        }
        let (id, name) = token
            .split_once(':')
            .ok_or_else(|| TokenError::Invalid("not a test token".into()))?;
        let id = id
            .parse()
            .map_err(|_| TokenError::Invalid("not a test token".into()))?;
        Ok(Claims {
            subject: Some(Subject::Id(id)),
            username: Some(name.to_string()),
            ..Claims::default()
        })
    }
}

/// The token of user `id` called `name` (see [`TestTokens`]).
pub fn token(id: i64, name: &str) -> String {
    format!("{id}:{name}")
}

/// A handshake that carries `token` in its `auth` payload (or no token).
pub fn handshake(token: Option<&str>) -> Handshake {
    Handshake {
        auth: Some(match token {
            Some(t) => serde_json::json!({ "token": t }),
            None => serde_json::json!({}),
        }),
        ..Handshake::default()
    }
}

/// A chat service on a fresh SQLite file, removed when this is dropped.
pub struct World {
    pub svc: Arc<ChatService>,
    _db: chat_store::testing::TestDb,
}

impl World {
    pub async fn new() -> World {
        let (db, store) = chat_store::testing::sqlite_store().await;
        let files = std::env::temp_dir().join(format!("sio-files-{}", std::process::id()));
        let config = ServiceConfig {
            public_base_url: "http://chat.test".into(),
            ..ServiceConfig::default()
        };
        let svc = ChatService::new(store, Arc::new(TestTokens), FileStore::new(files), config);
        World { svc, _db: db }
    }

    /// User `id` called `name`, provisioned as a token would.
    pub async fn user(&self, id: i64, name: &str) -> Principal {
        self.svc
            .authenticate(&token(id, name))
            .await
            .expect("a test token is accepted")
    }

    /// Open a socket of `dialect` with `hs`.
    pub async fn open<D: SioDialect>(&self, dialect: &D, hs: &Handshake) -> Opened<D::Session> {
        match dialect.open(&self.svc, hs).await {
            Opening::Refuse(message) => Opened::Refused(message),
            Opening::Reject { events } => Opened::Rejected(events),
            Opening::Accept { session, principal } => {
                let mut cx = SioCtx::new(self.svc.clone(), None, dialect.name());
                if let Some(p) = principal {
                    cx.sign_in(*p).await;
                }
                Opened::Conn(Box::new(SioConn { session, cx }))
            }
        }
    }

    /// Open a socket of `dialect` with the token of user `id` called `name`; it must
    /// be accepted and say nothing yet.
    pub async fn connect<D: SioDialect>(
        &self,
        dialect: &D,
        id: i64,
        name: &str,
    ) -> SioConn<D::Session> {
        let mut conn = self
            .open(dialect, &handshake(Some(&token(id, name))))
            .await
            .conn();
        assert_eq!(conn.said(), [], "nothing is said on connect");
        conn
    }
}

/// A dialect's answer to a connecting test socket.
pub enum Opened<S> {
    Conn(Box<SioConn<S>>),
    /// `connect_error` with this message.
    Refused(String),
    /// Accepted only to emit these events and disconnect.
    Rejected(Vec<(String, Value)>),
}

impl<S> Opened<S> {
    /// The connection; panics when the socket was refused or rejected.
    pub fn conn(self) -> SioConn<S> {
        match self {
            Opened::Conn(c) => *c,
            Opened::Refused(m) => panic!("refused: {m}"),
            Opened::Rejected(events) => panic!("rejected with {events:?}"),
        }
    }
}

/// One thing a session said, as JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Said {
    Emit(String, Value),
    Ack(Value),
    Disconnect,
}

impl From<Sent> for Said {
    fn from(s: Sent) -> Said {
        match s {
            Sent::Emit { event, data } => Said::Emit(event, data.value()),
            Sent::Ack { data, .. } => Said::Ack(data.value()),
            Sent::Disconnect => Said::Disconnect,
        }
    }
}

/// The argument of the one `error` event said (a failure the client asked no ack
/// for); panics when anything else was said.
pub fn error_event(said: &[Said]) -> &Value {
    match said {
        [Said::Emit(name, e)] if name == "error" => e,
        other => panic!("expected one `error` event, got {other:?}"),
    }
}

/// An open test socket: its session and its context.
pub struct SioConn<S> {
    pub session: S,
    pub cx: SioCtx,
}

impl<S: SioSession> SioConn<S> {
    /// What was said since the last look, oldest first.
    pub fn said(&mut self) -> Vec<Said> {
        self.cx.take_outbox().into_iter().map(Said::from).collect()
    }

    /// A client event with an ack callback; what the session said in answer.
    pub async fn call(&mut self, event: &str, payload: Value) -> Vec<Said> {
        self.request(Request::new(event, payload).with_ack()).await
    }

    /// A client event without an ack callback; what the session said in answer.
    pub async fn emit(&mut self, event: &str, payload: Value) -> Vec<Said> {
        self.request(Request::new(event, payload)).await
    }

    pub async fn request(&mut self, req: Request) -> Vec<Said> {
        self.session.on_request(&mut self.cx, req).await;
        self.said()
    }

    /// Hand the session every hub event queued for it; what it said.
    pub async fn pump(&mut self) -> Vec<Said> {
        while let Some(event) = self.cx.next_queued() {
            self.session.on_push(&mut self.cx, &event).await;
        }
        self.said()
    }

    /// Hand the session one hub event; what it said.
    pub async fn push(&mut self, event: &Arc<Published>) -> Vec<Said> {
        self.session.on_push(&mut self.cx, event).await;
        self.said()
    }

    /// Close as the worker does: the session's goodbye, then the hub's.
    pub async fn close(mut self) {
        self.session.on_close(&mut self.cx).await;
        self.cx.conn.sign_out().await;
    }
}
