//! Domain records. These are neither database rows nor wire objects: the store maps its
//! rows into them and every dialect maps them into its own shapes.

use crate::ids::{AttachmentId, MessageId, RoomId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub type Timestamp = DateTime<Utc>;

/// A person who can chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// Unique. From the token's `username` claim, else `user<id>`.
    pub username: String,
    /// An id the user has in an external system (given by a dialect that provisions
    /// users with one, or a non-numeric `user_id` claim).
    pub external_id: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Display name, for a dialect whose legacy system had a single one instead of
    /// first and last names.
    pub display_name: String,
    pub photo: String,
    pub color: String,
    pub role: String,
    pub is_admin: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl User {
    /// A user record with only an id and the default username `user<id>`: for an
    /// author who no longer exists in the store, and for tests.
    pub fn placeholder(id: UserId) -> User {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        User {
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
            created_at: epoch,
            updated_at: epoch,
        }
    }
}

/// Fields to create or refresh a user with. `None` leaves a field as it is (or empty
/// on creation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserProfile {
    /// Explicit id (a legacy backend's primary key). `None`: allocate one.
    pub id: Option<UserId>,
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
}

/// What kind of room, and the key that makes it unique.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomKind {
    /// Exactly two users, unique per pair; `low < high`.
    Direct { low: UserId, high: UserId },
    /// Any set of users.
    Group,
    /// The chat of a project, unique per project id.
    Project { project_id: i64 },
}

impl RoomKind {
    /// The direct kind for two distinct users, in canonical order.
    pub fn direct(a: UserId, b: UserId) -> Option<RoomKind> {
        match a.cmp(&b) {
            std::cmp::Ordering::Less => Some(RoomKind::Direct { low: a, high: b }),
            std::cmp::Ordering::Greater => Some(RoomKind::Direct { low: b, high: a }),
            std::cmp::Ordering::Equal => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            RoomKind::Direct { .. } => "direct",
            RoomKind::Group => "group",
            RoomKind::Project { .. } => "project",
        }
    }
}

/// A room (a chat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    pub title: String,
    pub has_business: bool,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A user's membership of a room, with the read watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub room_id: RoomId,
    pub user_id: UserId,
    /// The last message this member has read, if any.
    pub last_read: Option<MessageId>,
    pub joined_at: Timestamp,
}

/// What a message's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    Text,
    /// The text is the URL of an image.
    Image,
    /// The text is the URL of a file.
    File,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "img",
            MessageKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(MessageKind::Text),
            "img" | "image" => Some(MessageKind::Image),
            "file" => Some(MessageKind::File),
            _ => None,
        }
    }
}

/// A stored message. Deleted messages stay as tombstones (`deleted_at` set, text
/// cleared) so ids and order never change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    pub author_id: UserId,
    pub kind: MessageKind,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    /// Attachments in the order they were sent.
    pub attachments: Vec<Attachment>,
}

impl Message {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// A stored file. Its bytes live in the [`crate::FileStore`] under `blob_key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub blob_key: String,
    pub uploader_id: UserId,
    pub message_id: Option<MessageId>,
    pub created_at: Timestamp,
    /// The secret part of the file's URL (see [`crate::files::new_token`]): whoever
    /// has the URL may download the file, nobody can guess it from the id.
    #[serde(default)]
    pub token: String,
}

/// A room with its members as users and their read watermarks: what every dialect's
/// "chat" object is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    pub room: Room,
    pub members: Vec<User>,
    pub watermarks: Vec<(UserId, Option<MessageId>)>,
}

impl RoomView {
    pub fn id(&self) -> RoomId {
        self.room.id
    }

    pub fn member_ids(&self) -> Vec<UserId> {
        self.members.iter().map(|u| u.id).collect()
    }

    pub fn is_member(&self, user: UserId) -> bool {
        self.members.iter().any(|u| u.id == user)
    }

    pub fn member(&self, user: UserId) -> Option<&User> {
        self.members.iter().find(|u| u.id == user)
    }

    /// In a direct room, the member who is not `me`.
    pub fn peer_of(&self, me: UserId) -> Option<&User> {
        match self.room.kind {
            RoomKind::Direct { .. } => self.members.iter().find(|u| u.id != me),
            _ => None,
        }
    }

    /// A message is read when a member other than its author has read past it.
    pub fn is_read(&self, author: UserId, id: MessageId) -> bool {
        self.watermarks
            .iter()
            .any(|(u, w)| *u != author && w.is_some_and(|w| w >= id))
    }

    pub fn watermark(&self, user: UserId) -> Option<MessageId> {
        self.watermarks
            .iter()
            .find(|(u, _)| *u == user)
            .and_then(|(_, w)| *w)
    }
}

/// A message with what every dialect shows beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub message: Message,
    pub author: User,
    pub is_read: bool,
}

/// A room and its view, shared by all the events about it.
pub type SharedRoom = Arc<RoomView>;
