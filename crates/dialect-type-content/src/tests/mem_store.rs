//! A minimal in-memory [`Store`] so the session can be tested against the real
//! [`chat_core::ChatService`] without a database or a socket.

use async_trait::async_trait;
use chat_core::model::*;
use chat_core::store::{NewAttachment, NewMessage, NewRoom, Store, StoreError, StoreResult};
use chat_core::{AttachmentId, MessageId, RoomId, UserId};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    users: Vec<User>,
    rooms: Vec<Room>,
    members: Vec<Member>,
    messages: Vec<Message>,
    attachments: Vec<Attachment>,
    next_id: i64,
}

impl State {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

#[derive(Default)]
pub struct MemStore {
    s: Mutex<State>,
}

fn now() -> Timestamp {
    chrono::Utc::now()
}

fn apply(u: &mut User, p: &UserProfile) {
    macro_rules! set {
        ($($f:ident),*) => {$(if let Some(v) = &p.$f { u.$f = v.clone(); })*};
    }
    set!(
        username,
        email,
        first_name,
        last_name,
        display_name,
        photo,
        color,
        role
    );
    if let Some(e) = &p.external_id {
        u.external_id = Some(e.clone());
    }
    if let Some(a) = p.is_admin {
        u.is_admin = a;
    }
    u.updated_at = now();
}

impl MemStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.s.lock().unwrap()
    }
}

#[async_trait]
impl Store for MemStore {
    async fn upsert_user(&self, p: &UserProfile) -> StoreResult<User> {
        {
            let mut s = self.lock();
            let pos = s.users.iter().position(|u| {
                if let Some(id) = p.id {
                    u.id == id
                } else if let Some(e) = &p.external_id {
                    u.external_id.as_ref() == Some(e)
                } else {
                    p.username.as_ref() == Some(&u.username)
                }
            });
            if let Some(i) = pos {
                apply(&mut s.users[i], p);
                return Ok(s.users[i].clone());
            }
        }
        self.create_user(p).await
    }

    async fn create_user(&self, p: &UserProfile) -> StoreResult<User> {
        let mut s = self.lock();
        let id = match p.id {
            Some(id) => id,
            None => UserId(s.next() + 1000),
        };
        if s.users.iter().any(|u| u.id == id) {
            return Err(StoreError::Conflict("user exists".into()));
        }
        let mut u = User {
            id,
            username: format!("user{id}"),
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
        apply(&mut u, p);
        s.users.push(u.clone());
        Ok(u)
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.lock().users.iter().find(|u| u.id == id).cloned())
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        Ok(self
            .lock()
            .users
            .iter()
            .filter(|u| ids.contains(&u.id))
            .cloned()
            .collect())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self
            .lock()
            .users
            .iter()
            .find(|u| u.username == username)
            .cloned())
    }

    async fn user_by_external_id(&self, e: &str) -> StoreResult<Option<User>> {
        Ok(self
            .lock()
            .users
            .iter()
            .find(|u| u.external_id.as_deref() == Some(e))
            .cloned())
    }

    async fn list_users(&self, limit: i64) -> StoreResult<Vec<User>> {
        Ok(self
            .lock()
            .users
            .iter()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn create_room(&self, r: &NewRoom) -> StoreResult<Room> {
        let mut s = self.lock();
        if !matches!(r.kind, RoomKind::Group) {
            if let Some(existing) = s.rooms.iter().find(|x| x.kind == r.kind) {
                return Err(StoreError::DuplicateRoom(existing.id));
            }
        }
        let id = r.id.unwrap_or_else(|| RoomId(s.next()));
        let room = Room {
            id,
            kind: r.kind.clone(),
            title: r.title.clone(),
            has_business: r.has_business,
            created_by: r.created_by,
            created_at: now(),
            updated_at: now(),
        };
        s.rooms.push(room.clone());
        for m in &r.members {
            s.members.push(Member {
                room_id: id,
                user_id: *m,
                last_read: None,
                joined_at: now(),
            });
        }
        Ok(room)
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        Ok(self.lock().rooms.iter().find(|r| r.id == id).cloned())
    }

    async fn room_by_kind(&self, kind: &RoomKind) -> StoreResult<Option<Room>> {
        Ok(self.lock().rooms.iter().find(|r| &r.kind == kind).cloned())
    }

    async fn set_room_title(&self, id: RoomId, title: &str) -> StoreResult<Room> {
        let mut s = self.lock();
        let r = s
            .rooms
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or(StoreError::NotFound("chat"))?;
        r.title = title.into();
        Ok(r.clone())
    }

    async fn rooms_of(&self, user: UserId) -> StoreResult<Vec<Room>> {
        let s = self.lock();
        Ok(s.rooms
            .iter()
            .filter(|r| {
                s.members
                    .iter()
                    .any(|m| m.room_id == r.id && m.user_id == user)
            })
            .cloned()
            .collect())
    }

    async fn all_rooms(&self) -> StoreResult<Vec<Room>> {
        Ok(self.lock().rooms.clone())
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        Ok(self
            .lock()
            .members
            .iter()
            .filter(|m| m.room_id == room)
            .cloned()
            .collect())
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        Ok(self
            .lock()
            .members
            .iter()
            .find(|m| m.room_id == room && m.user_id == user)
            .cloned())
    }

    async fn add_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let mut s = self.lock();
        let mut added = Vec::new();
        for u in users {
            if !s
                .members
                .iter()
                .any(|m| m.room_id == room && m.user_id == *u)
            {
                s.members.push(Member {
                    room_id: room,
                    user_id: *u,
                    last_read: None,
                    joined_at: now(),
                });
                added.push(*u);
            }
        }
        Ok(added)
    }

    async fn remove_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let mut s = self.lock();
        let removed: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|u| {
                s.members
                    .iter()
                    .any(|m| m.room_id == room && m.user_id == *u)
            })
            .collect();
        s.members
            .retain(|m| !(m.room_id == room && removed.contains(&m.user_id)));
        Ok(removed)
    }

    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let s = self.lock();
        let rooms: Vec<RoomId> = s
            .members
            .iter()
            .filter(|m| m.user_id == user)
            .map(|m| m.room_id)
            .collect();
        let mut out: Vec<UserId> = s
            .members
            .iter()
            .filter(|m| rooms.contains(&m.room_id) && m.user_id != user)
            .map(|m| m.user_id)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn insert_message(&self, n: &NewMessage) -> StoreResult<Message> {
        let mut s = self.lock();
        let id = MessageId(s.next());
        let mut attachments = Vec::new();
        for a in s.attachments.iter_mut() {
            if n.attachments.contains(&a.id) {
                a.message_id = Some(id);
                attachments.push(a.clone());
            }
        }
        let m = Message {
            id,
            room_id: n.room_id,
            author_id: n.author_id,
            kind: n.kind,
            text: n.text.clone(),
            reply_to: n.reply_to,
            created_at: now(),
            updated_at: now(),
            edited_at: None,
            deleted_at: None,
            attachments,
        };
        s.messages.push(m.clone());
        Ok(m)
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        Ok(self.lock().messages.iter().find(|m| m.id == id).cloned())
    }

    async fn edit_message(&self, id: MessageId, text: &str) -> StoreResult<Message> {
        let mut s = self.lock();
        let m = s
            .messages
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or(StoreError::NotFound("message"))?;
        m.text = text.into();
        m.edited_at = Some(now());
        Ok(m.clone())
    }

    async fn delete_messages(
        &self,
        room: RoomId,
        ids: &[MessageId],
    ) -> StoreResult<Vec<MessageId>> {
        let mut s = self.lock();
        let mut out = Vec::new();
        for m in s.messages.iter_mut() {
            if m.room_id == room && ids.contains(&m.id) && m.deleted_at.is_none() {
                m.deleted_at = Some(now());
                m.text.clear();
                out.push(m.id);
            }
        }
        Ok(out)
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let s = self.lock();
        Ok(s.messages
            .iter()
            .rev()
            .filter(|m| m.room_id == room && before.is_none_or(|b| m.id < b))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn messages_between(
        &self,
        room: RoomId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let s = self.lock();
        Ok(s.messages
            .iter()
            .filter(|m| {
                m.room_id == room
                    && from.is_none_or(|f| m.created_at >= f)
                    && to.is_none_or(|t| m.created_at <= t)
            })
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn last_message(&self, room: RoomId) -> StoreResult<Option<Message>> {
        Ok(self
            .lock()
            .messages
            .iter()
            .rev()
            .find(|m| m.room_id == room)
            .cloned())
    }

    async fn advance_read(
        &self,
        room: RoomId,
        user: UserId,
        up_to: MessageId,
    ) -> StoreResult<Option<Option<MessageId>>> {
        let mut s = self.lock();
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
    }

    async fn messages_read_between(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
        up_to: MessageId,
    ) -> StoreResult<Vec<(MessageId, UserId)>> {
        let s = self.lock();
        Ok(s.messages
            .iter()
            .filter(|m| {
                m.room_id == room
                    && m.author_id != reader
                    && m.deleted_at.is_none()
                    && after.is_none_or(|a| m.id > a)
                    && m.id <= up_to
            })
            .map(|m| (m.id, m.author_id))
            .collect())
    }

    async fn unread_rooms(&self, _user: UserId) -> StoreResult<i64> {
        Ok(0)
    }

    async fn insert_attachment(&self, a: &NewAttachment) -> StoreResult<Attachment> {
        let mut s = self.lock();
        let att = Attachment {
            id: AttachmentId(s.next()),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            blob_key: a.blob_key.clone(),
            uploader_id: a.uploader_id,
            message_id: None,
            created_at: now(),
        };
        s.attachments.push(att.clone());
        Ok(att)
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        Ok(self.lock().attachments.iter().find(|a| a.id == id).cloned())
    }
}
