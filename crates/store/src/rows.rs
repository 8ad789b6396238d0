//! Rows as diesel reads and writes them, and their mapping to the domain records.
//!
//! The mapping is fallible on purpose: a row written by an older version, by hand or
//! by another tool may hold a kind or key this version does not understand, and the
//! store must report that as an error rather than panic in the middle of a request.

use crate::error::Fail;
use crate::schema::{attachments, members, messages, rooms, users};
use chat_core::store::NewMessage;
use chat_core::{
    Attachment, AttachmentId, Member, Message, MessageId, MessageKind, Room, RoomId, RoomKind,
    Timestamp, User, UserId,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// Timestamps are stored as microseconds since the Unix epoch (UTC): the one
/// representation that PostgreSQL and SQLite compare, index and round-trip exactly.
pub(crate) fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> Result<Timestamp, Fail> {
    DateTime::<Utc>::from_timestamp_micros(v)
        .ok_or_else(|| Fail::corrupt(format!("timestamp {v} is out of range")))
}

/// The current time at the precision the store keeps, so that what a write returns
/// equals what a later read returns.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// The unique key of a direct room: `"<low>_<high>"` (the legacy direct-room key).
pub(crate) fn direct_key(low: UserId, high: UserId) -> String {
    format!("{}_{}", low.0, high.0)
}

fn parse_direct_key(key: &str) -> Option<(UserId, UserId)> {
    let (low, high) = key.split_once('_')?;
    Some((UserId(low.parse().ok()?), UserId(high.parse().ok()?)))
}

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub id: i64,
    pub username: String,
    pub external_id: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub photo: String,
    pub color: String,
    pub role: String,
    pub is_admin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    pub fn into_user(self) -> Result<User, Fail> {
        Ok(User {
            id: UserId(self.id),
            username: self.username,
            external_id: self.external_id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            display_name: self.display_name,
            photo: self.photo,
            color: self.color,
            role: self.role,
            is_admin: self.is_admin,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow<'a> {
    /// `None`: let the database allocate the id.
    pub id: Option<i64>,
    pub username: &'a str,
    pub external_id: Option<&'a str>,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub display_name: &'a str,
    pub photo: &'a str,
    pub color: &'a str,
    pub role: &'a str,
    pub is_admin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields an upsert may refresh; `None` leaves a column as it is.
#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
pub(crate) struct UserChanges {
    pub username: Option<String>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub photo: Option<String>,
    pub color: Option<String>,
    pub role: Option<String>,
    pub is_admin: Option<bool>,
    pub updated_at: Option<i64>,
}

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = rooms)]
pub(crate) struct RoomRow {
    pub id: i64,
    pub kind: String,
    pub direct_key: Option<String>,
    pub project_id: Option<i64>,
    pub title: String,
    pub has_business: bool,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RoomRow {
    pub fn into_room(self) -> Result<Room, Fail> {
        let kind = match (self.kind.as_str(), &self.direct_key, self.project_id) {
            ("direct", Some(key), _) => {
                let (low, high) = parse_direct_key(key).ok_or_else(|| {
                    Fail::corrupt(format!(
                        "room {} has a malformed direct key {key:?}",
                        self.id
                    ))
                })?;
                RoomKind::Direct { low, high }
            }
            ("group", _, _) => RoomKind::Group,
            ("project", _, Some(project_id)) => RoomKind::Project { project_id },
            (other, _, _) => {
                return Err(Fail::corrupt(format!(
                    "room {} has kind {other:?} without the key that kind needs",
                    self.id
                )))
            }
        };
        Ok(Room {
            id: RoomId(self.id),
            kind,
            title: self.title,
            has_business: self.has_business,
            created_by: self.created_by.map(UserId),
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = rooms)]
pub(crate) struct NewRoomRow<'a> {
    pub id: Option<i64>,
    pub kind: &'a str,
    pub direct_key: Option<String>,
    pub project_id: Option<i64>,
    pub title: &'a str,
    pub has_business: bool,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = members)]
pub(crate) struct MemberRow {
    pub room_id: i64,
    pub user_id: i64,
    pub last_read: Option<i64>,
    pub joined_at: i64,
}

impl MemberRow {
    pub fn into_member(self) -> Result<Member, Fail> {
        Ok(Member {
            room_id: RoomId(self.room_id),
            user_id: UserId(self.user_id),
            last_read: self.last_read.map(MessageId),
            joined_at: from_micros(self.joined_at)?,
        })
    }
}

/// A new membership. The watermark is left out on purpose: it starts empty, and
/// leaving it out keeps multi-row inserts free of per-row defaults, which SQLite's
/// `VALUES` lists cannot express.
#[derive(Insertable)]
#[diesel(table_name = members)]
pub(crate) struct NewMemberRow {
    pub room_id: i64,
    pub user_id: i64,
    pub join_seq: i64,
    pub joined_at: i64,
}

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = messages)]
pub(crate) struct MessageRow {
    pub id: i64,
    pub room_id: i64,
    pub author_id: i64,
    pub kind: String,
    pub text: String,
    pub reply_to: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

impl MessageRow {
    /// The row a new message was inserted as, with the id it was given, when every
    /// column is known without reading it back (group commit).
    pub fn inserted(id: i64, msg: &NewMessage, now: i64) -> Self {
        MessageRow {
            id,
            room_id: msg.room_id.0,
            author_id: msg.author_id.0,
            kind: msg.kind.as_str().to_owned(),
            text: msg.text.clone(),
            reply_to: msg.reply_to.map(|r| r.0),
            created_at: now,
            updated_at: now,
            edited_at: None,
            deleted_at: None,
        }
    }

    /// The message with the attachments given (already in order).
    pub fn into_message(self, attachments: Vec<Attachment>) -> Result<Message, Fail> {
        let kind = MessageKind::parse(&self.kind).ok_or_else(|| {
            Fail::corrupt(format!(
                "message {} has unknown kind {:?}",
                self.id, self.kind
            ))
        })?;
        Ok(Message {
            id: MessageId(self.id),
            room_id: RoomId(self.room_id),
            author_id: UserId(self.author_id),
            kind,
            text: self.text,
            reply_to: self.reply_to.map(MessageId),
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            edited_at: self.edited_at.map(from_micros).transpose()?,
            deleted_at: self.deleted_at.map(from_micros).transpose()?,
            attachments,
        })
    }
}

/// `treat_none_as_default_value = false`: a `None` is bound as NULL (the column's
/// default anyway) instead of written as `DEFAULT` into the SQL. With `DEFAULT` the
/// SQL text depends on the values, so diesel cannot keep the statement prepared and
/// every insert paid a fresh parse and plan (on PostgreSQL an extra round trip).
#[derive(Insertable)]
#[diesel(table_name = messages, treat_none_as_default_value = false)]
pub(crate) struct NewMessageRow<'a> {
    pub room_id: i64,
    pub author_id: i64,
    pub kind: &'a str,
    pub text: &'a str,
    pub reply_to: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<'a> NewMessageRow<'a> {
    /// The row of a new message, created (and last updated) at `now`.
    pub fn of(msg: &'a NewMessage, now: i64) -> Self {
        NewMessageRow {
            room_id: msg.room_id.0,
            author_id: msg.author_id.0,
            kind: msg.kind.as_str(),
            text: &msg.text,
            reply_to: msg.reply_to.map(|m| m.0),
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = attachments)]
pub(crate) struct AttachmentRow {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub blob_key: String,
    pub uploader_id: i64,
    pub message_id: Option<i64>,
    pub created_at: i64,
    pub token: String,
}

impl AttachmentRow {
    pub fn into_attachment(self) -> Result<Attachment, Fail> {
        Ok(Attachment {
            id: AttachmentId(self.id),
            name: self.name,
            content_type: self.content_type,
            size: self.size,
            blob_key: self.blob_key,
            uploader_id: UserId(self.uploader_id),
            message_id: self.message_id.map(MessageId),
            created_at: from_micros(self.created_at)?,
            token: self.token,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = attachments)]
pub(crate) struct NewAttachmentRow<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub blob_key: &'a str,
    pub uploader_id: i64,
    pub created_at: i64,
    pub token: &'a str,
}

/// Attach each message's attachments (rows sorted by message and position) and map
/// the pair to domain messages, keeping the order of `rows`.
pub(crate) fn assemble(
    rows: Vec<MessageRow>,
    attachments: Vec<AttachmentRow>,
) -> Result<Vec<Message>, Fail> {
    let mut by_message: std::collections::HashMap<i64, Vec<Attachment>> =
        std::collections::HashMap::new();
    for a in attachments {
        if let Some(m) = a.message_id {
            by_message.entry(m).or_default().push(a.into_attachment()?);
        }
    }
    rows.into_iter()
        .map(|row| {
            let atts = by_message.remove(&row.id).unwrap_or_default();
            row.into_message(atts)
        })
        .collect()
}
