//! The commands a client can give, in domain terms. Every dialect's request is
//! expressed as one of these before it reaches the service.

use crate::ids::{AttachmentId, MessageId, RoomId, UserId};
use crate::model::MessageKind;

/// How a command names a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomRef {
    /// By id.
    Id(RoomId),
    /// The direct room of two users (type-content `"<low>_<high>"`); the caller must
    /// be one of them. Created on first use.
    DirectPair(UserId, UserId),
    /// The caller's direct room with this user. Created on first use.
    DirectWith(UserId),
    /// The project room of this project id.
    Project(i64),
}

/// What kind of room to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomShape {
    /// Direct when there is exactly one other user, else a group.
    Auto,
    /// A direct room of exactly the two given members (admin import).
    Direct,
    Group,
    Project(i64),
}

#[derive(Clone, Debug)]
pub struct CreateRoom {
    /// Explicit id (admin import only).
    pub id: Option<RoomId>,
    pub shape: RoomShape,
    pub title: String,
    /// The other members; the creator is added unless `include_creator` is false.
    pub members: Vec<UserId>,
    pub include_creator: bool,
    pub has_business: bool,
}

/// A file sent inline with a message (method-args base64 `files`).
#[derive(Clone, Debug)]
pub struct Upload {
    pub name: String,
    /// `None`: guessed from the name.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct SendMessage {
    pub room: RoomRef,
    pub text: String,
    pub kind: MessageKind,
    pub reply_to: Option<MessageId>,
    /// Files to store and attach.
    pub uploads: Vec<Upload>,
    /// Files uploaded before (`POST /api/files`) to attach.
    pub attachments: Vec<AttachmentId>,
}

impl SendMessage {
    pub fn text(room: RoomRef, text: impl Into<String>) -> Self {
        SendMessage {
            room,
            text: text.into(),
            kind: MessageKind::Text,
            reply_to: None,
            uploads: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// Every command of the domain, for logging and for callers that queue commands.
#[derive(Clone, Debug)]
pub enum Command {
    CreateRoom(CreateRoom),
    RenameRoom {
        room: RoomId,
        title: String,
    },
    AddMembers {
        room: RoomId,
        users: Vec<UserId>,
    },
    RemoveMembers {
        room: RoomId,
        users: Vec<UserId>,
    },
    Send(SendMessage),
    Edit {
        room: Option<RoomId>,
        message: MessageId,
        text: String,
    },
    Delete {
        room: Option<RoomId>,
        messages: Vec<MessageId>,
    },
    /// Read up to a message, or the whole room when `up_to` is `None`.
    Read {
        room: RoomRef,
        up_to: Option<MessageId>,
    },
    Typing {
        room: RoomRef,
    },
    SetPresence {
        online: bool,
    },
    Attention {
        peer: UserId,
        waiting: bool,
    },
}
