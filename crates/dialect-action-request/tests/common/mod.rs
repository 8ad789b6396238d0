//! Socket-free harness: a real `ChatService` over an in-memory `Store`, and sessions
//! driven through `ConnCtx` exactly as the gateway's connection loop drives them.

#![allow(dead_code)]

use async_trait::async_trait;
use chat_core::store::{NewAttachment, NewMessage, NewRoom, StoreResult};
use chat_core::*;
use dialect_action_request::ActionRequest;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    users: BTreeMap<i64, User>,
    rooms: BTreeMap<i64, Room>,
    members: Vec<Member>,
    messages: BTreeMap<i64, Message>,
    attachments: BTreeMap<i64, Attachment>,
    next_user: i64,
    next_room: i64,
    next_message: i64,
}

/// A `Store` in memory: enough of the contract for the service's paths this dialect
/// uses, with the same atomicity (one lock per call).
#[derive(Default)]
pub struct MemStore(Mutex<State>);

impl MemStore {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Every message, tombstones included.
    pub fn all_messages(&self) -> Vec<Message> {
        self.with(|s| s.messages.values().cloned().collect())
    }
}

fn now() -> Timestamp {
    chrono::Utc::now()
}

fn apply(u: &mut User, p: &UserProfile) {
    macro_rules! set {
        ($f:ident) => {
            if let Some(v) = &p.$f {
                u.$f = v.clone();
            }
        };
    }
    set!(username);
    set!(email);
    set!(first_name);
    set!(last_name);
    set!(display_name);
    set!(photo);
    set!(color);
    set!(role);
    if let Some(e) = &p.external_id {
        u.external_id = Some(e.clone());
    }
    if let Some(a) = p.is_admin {
        u.is_admin = a;
    }
    u.updated_at = now();
}

impl State {
    fn new_user(&mut self, p: &UserProfile) -> StoreResult<User> {
        let id = match p.id {
            Some(id) => id.0,
            None => {
                self.next_user = self
                    .next_user
                    .max(self.users.keys().max().copied().unwrap_or(0))
                    + 1;
                self.next_user
            }
        };
        let username = p.username.clone().unwrap_or_else(|| format!("user{id}"));
        if self
            .users
            .values()
            .any(|u| u.username == username && u.id.0 != id)
        {
            return Err(StoreError::Conflict(format!(
                "username {username} is taken"
            )));
        }
        let mut u = User {
            id: UserId(id),
            username,
            external_id: None,
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            display_name: String::new(),
            photo: String::new(),
            color: String::new(),
            role: String::new(),
            is_admin: false,
            created_at: now(),
            updated_at: now(),
        };
        apply(
            &mut u,
            &UserProfile {
                username: None,
                ..p.clone()
            },
        );
        self.users.insert(id, u.clone());
        Ok(u)
    }

    fn is_member(&self, room: RoomId, user: UserId) -> bool {
        self.members
            .iter()
            .any(|m| m.room_id == room && m.user_id == user)
    }
}

#[async_trait]
impl Store for MemStore {
    async fn upsert_user(&self, p: &UserProfile) -> StoreResult<User> {
        self.with(|s| {
            let existing = match (p.id, &p.external_id, &p.username) {
                (Some(id), _, _) => s.users.get(&id.0).map(|u| u.id),
                (None, Some(ext), _) => s
                    .users
                    .values()
                    .find(|u| u.external_id.as_ref() == Some(ext))
                    .map(|u| u.id),
                (None, None, Some(name)) => {
                    s.users.values().find(|u| &u.username == name).map(|u| u.id)
                }
                _ => None,
            };
            match existing {
                Some(id) => {
                    if let Some(name) = &p.username {
                        if s.users.values().any(|u| &u.username == name && u.id != id) {
                            return Err(StoreError::Conflict(format!("username {name} is taken")));
                        }
                    }
                    let u = s.users.get_mut(&id.0).ok_or(StoreError::NotFound("user"))?;
                    apply(u, p);
                    Ok(u.clone())
                }
                None => s.new_user(p),
            }
        })
    }

    async fn create_user(&self, p: &UserProfile) -> StoreResult<User> {
        self.with(|s| {
            if p.id.is_some_and(|id| s.users.contains_key(&id.0)) {
                return Err(StoreError::Conflict("id taken".into()));
            }
            s.new_user(p)
        })
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.with(|s| s.users.get(&id.0).cloned()))
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        Ok(self.with(|s| {
            ids.iter()
                .filter_map(|i| s.users.get(&i.0).cloned())
                .collect()
        }))
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self.with(|s| s.users.values().find(|u| u.username == username).cloned()))
    }

    async fn user_by_external_id(&self, ext: &str) -> StoreResult<Option<User>> {
        Ok(self.with(|s| {
            s.users
                .values()
                .find(|u| u.external_id.as_deref() == Some(ext))
                .cloned()
        }))
    }

    async fn list_users(&self, limit: i64) -> StoreResult<Vec<User>> {
        Ok(self.with(|s| {
            s.users
                .values()
                .take(limit.max(0) as usize)
                .cloned()
                .collect()
        }))
    }

    async fn create_room(&self, r: &NewRoom) -> StoreResult<Room> {
        self.with(|s| {
            if !matches!(r.kind, RoomKind::Group) {
                if let Some(existing) = s.rooms.values().find(|x| x.kind == r.kind) {
                    return Err(StoreError::DuplicateRoom(existing.id));
                }
            }
            let id = match r.id {
                Some(id) => id.0,
                None => {
                    s.next_room = s.next_room.max(s.rooms.keys().max().copied().unwrap_or(0)) + 1;
                    s.next_room
                }
            };
            let room = Room {
                id: RoomId(id),
                kind: r.kind.clone(),
                title: r.title.clone(),
                has_business: r.has_business,
                created_by: r.created_by,
                created_at: now(),
                updated_at: now(),
            };
            s.rooms.insert(id, room.clone());
            for m in &r.members {
                if !s.is_member(room.id, *m) {
                    s.members.push(Member {
                        room_id: room.id,
                        user_id: *m,
                        last_read: None,
                        joined_at: now(),
                    });
                }
            }
            Ok(room)
        })
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        Ok(self.with(|s| s.rooms.get(&id.0).cloned()))
    }

    async fn room_by_kind(&self, kind: &RoomKind) -> StoreResult<Option<Room>> {
        Ok(self.with(|s| s.rooms.values().find(|r| &r.kind == kind).cloned()))
    }

    async fn set_room_title(&self, id: RoomId, title: &str) -> StoreResult<Room> {
        self.with(|s| {
            let r = s.rooms.get_mut(&id.0).ok_or(StoreError::NotFound("room"))?;
            r.title = title.to_string();
            Ok(r.clone())
        })
    }

    async fn rooms_of(&self, user: UserId) -> StoreResult<Vec<Room>> {
        Ok(self.with(|s| {
            s.rooms
                .values()
                .filter(|r| s.is_member(r.id, user))
                .cloned()
                .collect()
        }))
    }

    async fn all_rooms(&self) -> StoreResult<Vec<Room>> {
        Ok(self.with(|s| s.rooms.values().cloned().collect()))
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        Ok(self.with(|s| {
            s.members
                .iter()
                .filter(|m| m.room_id == room)
                .cloned()
                .collect()
        }))
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        Ok(self.with(|s| {
            s.members
                .iter()
                .find(|m| m.room_id == room && m.user_id == user)
                .cloned()
        }))
    }

    async fn add_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        Ok(self.with(|s| {
            let mut added = Vec::new();
            for u in users {
                if !s.is_member(room, *u) {
                    s.members.push(Member {
                        room_id: room,
                        user_id: *u,
                        last_read: None,
                        joined_at: now(),
                    });
                    added.push(*u);
                }
            }
            added
        }))
    }

    async fn remove_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        Ok(self.with(|s| {
            let removed: Vec<UserId> = users
                .iter()
                .copied()
                .filter(|u| s.is_member(room, *u))
                .collect();
            s.members
                .retain(|m| !(m.room_id == room && removed.contains(&m.user_id)));
            removed
        }))
    }

    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        Ok(self.with(|s| {
            let mut out: Vec<UserId> = s
                .members
                .iter()
                .filter(|m| m.user_id != user && s.is_member(m.room_id, user))
                .map(|m| m.user_id)
                .collect();
            out.sort();
            out.dedup();
            out
        }))
    }

    async fn insert_message(&self, m: &NewMessage) -> StoreResult<Message> {
        self.with(|s| {
            s.next_message += 1;
            let msg = Message {
                id: MessageId(s.next_message),
                room_id: m.room_id,
                author_id: m.author_id,
                kind: m.kind,
                text: m.text.clone(),
                reply_to: m.reply_to,
                created_at: now(),
                updated_at: now(),
                edited_at: None,
                deleted_at: None,
                attachments: Vec::new(),
            };
            s.messages.insert(msg.id.0, msg.clone());
            Ok(msg)
        })
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        Ok(self.with(|s| s.messages.get(&id.0).cloned()))
    }

    async fn edit_message(&self, id: MessageId, text: &str) -> StoreResult<Message> {
        self.with(|s| {
            let m = s
                .messages
                .get_mut(&id.0)
                .ok_or(StoreError::NotFound("message"))?;
            m.text = text.to_string();
            m.edited_at = Some(now());
            m.updated_at = now();
            Ok(m.clone())
        })
    }

    async fn delete_messages(
        &self,
        room: RoomId,
        ids: &[MessageId],
    ) -> StoreResult<Vec<MessageId>> {
        Ok(self.with(|s| {
            let mut out = Vec::new();
            for id in ids {
                if let Some(m) = s.messages.get_mut(&id.0) {
                    if m.room_id == room && m.deleted_at.is_none() {
                        m.deleted_at = Some(now());
                        m.text.clear();
                        out.push(*id);
                    }
                }
            }
            out
        }))
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        Ok(self.with(|s| {
            s.messages
                .values()
                .rev()
                .filter(|m| m.room_id == room && before.is_none_or(|b| m.id < b))
                .take(limit.max(0) as usize)
                .cloned()
                .collect()
        }))
    }

    async fn messages_between(
        &self,
        room: RoomId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        Ok(self.with(|s| {
            s.messages
                .values()
                .filter(|m| {
                    m.room_id == room
                        && from.is_none_or(|f| m.created_at >= f)
                        && to.is_none_or(|t| m.created_at <= t)
                })
                .take(limit.max(0) as usize)
                .cloned()
                .collect()
        }))
    }

    async fn last_message(&self, room: RoomId) -> StoreResult<Option<Message>> {
        Ok(self.with(|s| {
            s.messages
                .values()
                .rev()
                .find(|m| m.room_id == room)
                .cloned()
        }))
    }

    async fn advance_read(
        &self,
        room: RoomId,
        user: UserId,
        up_to: MessageId,
    ) -> StoreResult<Option<Option<MessageId>>> {
        self.with(|s| {
            let m = s
                .members
                .iter_mut()
                .find(|m| m.room_id == room && m.user_id == user)
                .ok_or(StoreError::NotFound("member"))?;
            if m.last_read.is_some_and(|w| w >= up_to) {
                return Ok(None);
            }
            let prev = m.last_read;
            m.last_read = Some(up_to);
            Ok(Some(prev))
        })
    }

    async fn messages_read_between(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
        up_to: MessageId,
    ) -> StoreResult<Vec<(MessageId, UserId)>> {
        Ok(self.with(|s| {
            s.messages
                .values()
                .filter(|m| {
                    m.room_id == room
                        && m.author_id != reader
                        && m.deleted_at.is_none()
                        && after.is_none_or(|a| m.id > a)
                        && m.id <= up_to
                })
                .map(|m| (m.id, m.author_id))
                .collect()
        }))
    }

    async fn unread_rooms(&self, _user: UserId) -> StoreResult<i64> {
        Ok(0)
    }

    async fn insert_attachment(&self, a: &NewAttachment) -> StoreResult<Attachment> {
        self.with(|s| {
            let id = s.attachments.len() as i64 + 1;
            let att = Attachment {
                id: AttachmentId(id),
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: a.size,
                blob_key: a.blob_key.clone(),
                uploader_id: a.uploader_id,
                message_id: None,
                created_at: now(),
            };
            s.attachments.insert(id, att.clone());
            Ok(att)
        })
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        Ok(self.with(|s| s.attachments.get(&id.0).cloned()))
    }
}

/// Tokens are not verified in these tests: principals are built from claims.
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
    pub store: Arc<MemStore>,
}

impl Harness {
    pub fn new() -> Harness {
        let store = Arc::new(MemStore::default());
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
        Harness { svc, store }
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
            })
            .await
            .expect("principal")
    }

    /// A group room of `members`.
    pub async fn room(&self, members: &[i64], has_business: bool) -> RoomId {
        self.store
            .create_room(&NewRoom {
                id: None,
                kind: RoomKind::Group,
                title: String::new(),
                has_business,
                created_by: None,
                members: members.iter().copied().map(UserId).collect(),
            })
            .await
            .expect("room")
            .id
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
