//! Wire types of the method-args dialect, spelled exactly as the protocol spells them.
//!
//! These are deliberately separate from the domain records in `chat-core`: the wire
//! shapes are a contract with legacy clients (field names, `pk` for a user id, string
//! timestamps, `title: ""`), while the domain is free to evolve. The only place the
//! two meet is the `from_*` bridges at the bottom of this file.
//!
//! Inbound: `{method, access_token?, args?}`. The method and its args are a serde
//! adjacently tagged enum ([`Call`]); [`crate::decode`] feeds it a normalised
//! `{method, args}` object so a missing `args` means "no arguments".
//!
//! Outbound: `{type, data}` ([`Outbound`]), another adjacently tagged enum, so the
//! `type` string and the shape of `data` can never disagree.

use chat_core::{Attachment, MessageView, RoomView, Timestamp, User as CoreUser};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------- inbound

/// An id as a client may send it: a JSON integer, or (leniently, as Django REST
/// framework's primary-key fields accept) a string of decimal digits — the one rule
/// of [`dialect_kit::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WireId(pub i64);

dialect_kit::deserialize_id!(WireId, "an integer id");

/// Arguments of `auth`: nothing but the correlation key.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct AuthArgs {
    #[serde(default)]
    pub event_response_key: Value,
}

/// Arguments of `create_chat`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CreateChatArgs {
    pub users: Vec<WireId>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub event_response_key: Value,
}

/// Arguments of `update_chat`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UpdateChatArgs {
    pub chat: WireId,
    /// `null` (or absent) clears the title.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub event_response_key: Value,
}

/// One inline file of `send_message`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FileArg {
    pub name: String,
    /// Base64, optionally behind a `data:<mime>;base64,` prefix.
    pub data: String,
}

/// Arguments of `send_message`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SendMessageArgs {
    pub chat: WireId,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub files: Option<Vec<FileArg>>,
    #[serde(default)]
    pub event_response_key: Value,
}

/// Arguments of `read_messages`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReadMessagesArgs {
    pub chat: WireId,
    #[serde(default)]
    pub event_response_key: Value,
}

/// Arguments of `add_to_chat` and `remove_from_chat`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct MembersArgs {
    pub users: Vec<WireId>,
    pub chat: WireId,
    #[serde(default)]
    pub event_response_key: Value,
}

/// A method and its arguments: `{"method": "<name>", "args": {...}}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
pub enum Call {
    Auth(AuthArgs),
    CreateChat(CreateChatArgs),
    UpdateChat(UpdateChatArgs),
    SendMessage(SendMessageArgs),
    ReadMessages(ReadMessagesArgs),
    RemoveFromChat(MembersArgs),
    AddToChat(MembersArgs),
}

impl Call {
    /// Every method name, as spelled on the wire.
    pub const METHODS: [&'static str; 7] = [
        "auth",
        "create_chat",
        "update_chat",
        "send_message",
        "read_messages",
        "remove_from_chat",
        "add_to_chat",
    ];

    pub fn method(&self) -> &'static str {
        match self {
            Call::Auth(_) => "auth",
            Call::CreateChat(_) => "create_chat",
            Call::UpdateChat(_) => "update_chat",
            Call::SendMessage(_) => "send_message",
            Call::ReadMessages(_) => "read_messages",
            Call::RemoveFromChat(_) => "remove_from_chat",
            Call::AddToChat(_) => "add_to_chat",
        }
    }

    /// The `event_response_key` the client passed (JSON `null` when none).
    pub fn event_response_key(&self) -> &Value {
        match self {
            Call::Auth(a) => &a.event_response_key,
            Call::CreateChat(a) => &a.event_response_key,
            Call::UpdateChat(a) => &a.event_response_key,
            Call::SendMessage(a) => &a.event_response_key,
            Call::ReadMessages(a) => &a.event_response_key,
            Call::RemoveFromChat(a) | Call::AddToChat(a) => &a.event_response_key,
        }
    }
}

/// The whole inbound envelope, once decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub access_token: Option<String>,
    pub call: Call,
}

// ---------------------------------------------------------------------------- outbound

/// The `type` of an `error` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    SystemError,
    AccessError,
    AuthorizationError,
    FieldError,
    ChatDuplicationError,
}

/// `data` of the `error` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorData {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub detail: String,
    pub event_response_key: Value,
    /// Only for `chat_duplication_error`: the chat that exists already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<i64>,
}

/// The `{id, fields}` entries of `messages_updated`. Only the fields that changed are
/// present.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageUpdate {
    pub id: i64,
    pub fields: UpdatedFields,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdatedFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_read: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_deleted: Option<bool>,
}

/// An outbound event: `{"type": "<name>", "data": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Outbound {
    Error(ErrorData),
    Authenticated {
        event_response_key: Value,
    },
    NewChat {
        chat: Chat,
    },
    NewMessage {
        message: Message,
    },
    MessageCreated {
        message: Message,
        event_response_key: Value,
    },
    MessagesRead {
        chat: i64,
    },
    ChatCreated {
        chat: Chat,
        event_response_key: Value,
    },
    MessagesUpdated {
        updates: Vec<MessageUpdate>,
    },
    UserRemovedSuccessful {
        event_response_key: Value,
        user_ids: Vec<i64>,
        chat: Chat,
    },
    UserRemoved {
        user_ids: Vec<i64>,
        chat: Chat,
    },
    UserAddedSuccessful {
        event_response_key: Value,
        user_ids: Vec<i64>,
        chat: Chat,
    },
    UserAdded {
        user_ids: Vec<i64>,
        chat: Chat,
    },
    ChatUpdated {
        chat: Chat,
    },
    ChatRemoved {
        chat: Chat,
    },
}

/// A fallback frame for the (theoretical) case that serialization fails: every field
/// of [`Outbound`] is a string, number, bool or JSON value, so it cannot in practice.
const SERIALIZE_FAILED: &str = r#"{"type":"error","data":{"type":"system_error","detail":"the server could not encode its answer","event_response_key":null}}"#;

impl Outbound {
    /// The `type` string of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Outbound::Error(_) => "error",
            Outbound::Authenticated { .. } => "authenticated",
            Outbound::NewChat { .. } => "new_chat",
            Outbound::NewMessage { .. } => "new_message",
            Outbound::MessageCreated { .. } => "message_created",
            Outbound::MessagesRead { .. } => "messages_read",
            Outbound::ChatCreated { .. } => "chat_created",
            Outbound::MessagesUpdated { .. } => "messages_updated",
            Outbound::UserRemovedSuccessful { .. } => "user_removed_successful",
            Outbound::UserRemoved { .. } => "user_removed",
            Outbound::UserAddedSuccessful { .. } => "user_added_successful",
            Outbound::UserAdded { .. } => "user_added",
            Outbound::ChatUpdated { .. } => "chat_updated",
            Outbound::ChatRemoved { .. } => "chat_removed",
        }
    }

    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "method-args: could not serialize an event");
            SERIALIZE_FAILED.to_string()
        })
    }
}

// ---------------------------------------------------------------------------- data types

/// `User`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub pk: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// An image URL, or `null` when the user has none (as Django's `ImageField`).
    pub photo: Option<String>,
    pub color: String,
    pub role: String,
}

/// `File`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct File {
    pub id: i64,
    pub name: String,
    /// Absolute URL the bytes are served at.
    pub file: String,
    pub created_at: String,
}

/// `Chat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chat {
    pub id: i64,
    pub users: Vec<User>,
    /// Always a string; `""` for a chat without a title.
    pub title: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `Message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: i64,
    pub chat: i64,
    pub user: User,
    pub attached_files: Vec<File>,
    pub text: String,
    pub created_at: String,
    pub updated_at: String,
    pub is_read: bool,
}

// ---------------------------------------------------------------------------- bridges

/// A timestamp as Django REST framework renders it in UTC: RFC 3339 with microseconds
/// and a `Z` suffix (`2024-06-17T18:00:00.123456Z`). Always six digits, so clients
/// can parse every timestamp with one format.
pub fn time(t: &Timestamp) -> String {
    dialect_kit::time::micros(t)
}

/// The colours handed out to users who have none, picked by id so a user keeps theirs.
const PALETTE: [&str; 8] = [
    "#e57373", "#64b5f6", "#81c784", "#ffb74d", "#ba68c8", "#4db6ac", "#f06292", "#a1887f",
];

/// The role shown for users without one; the legacy backend's default.
pub const DEFAULT_ROLE: &str = "Member";

impl From<&CoreUser> for User {
    fn from(u: &CoreUser) -> Self {
        let color = if u.color.trim().is_empty() {
            PALETTE[u.id.0.rem_euclid(PALETTE.len() as i64) as usize].to_string()
        } else {
            u.color.clone()
        };
        let role = if u.role.trim().is_empty() {
            DEFAULT_ROLE.to_string()
        } else {
            u.role.clone()
        };
        User {
            pk: u.id.0,
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            photo: (!u.photo.trim().is_empty()).then(|| u.photo.clone()),
            color,
            role,
        }
    }
}

impl From<&RoomView> for Chat {
    fn from(r: &RoomView) -> Self {
        Chat {
            id: r.room.id.0,
            users: r.members.iter().map(User::from).collect(),
            title: r.room.title.clone(),
            created_at: time(&r.room.created_at),
            updated_at: time(&r.room.updated_at),
        }
    }
}

impl File {
    /// `url` turns an attachment into its absolute URL (`ChatService::file_url`).
    pub fn from_attachment(a: &Attachment, url: &dyn Fn(&Attachment) -> String) -> Self {
        File {
            id: a.id.0,
            name: a.name.clone(),
            file: url(a),
            created_at: time(&a.created_at),
        }
    }
}

impl Message {
    /// `url` turns an attachment into its absolute URL (`ChatService::file_url`).
    pub fn from_view(m: &MessageView, url: &dyn Fn(&Attachment) -> String) -> Self {
        Message {
            id: m.message.id.0,
            chat: m.message.room_id.0,
            user: User::from(&m.author),
            attached_files: m
                .message
                .attachments
                .iter()
                .map(|a| File::from_attachment(a, url))
                .collect(),
            text: m.message.text.clone(),
            created_at: time(&m.message.created_at),
            updated_at: time(&m.message.updated_at),
            is_read: m.is_read,
        }
    }
}
