//! Wire types of socketio-pubsub, spelled as the protocol spells them (`isOnline`,
//! `unreadChatsCount`, `has_read`: the original mixes cases, and so do we).
//!
//! A "chat" in this protocol is one message between two users; a conversation is the
//! set of chats between them — in the domain, the direct room of the two.

use chat_core::{Attachment, MessageView, RoomView, User};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------- inbound

/// `{user}`: `fetch-conversation-with-user`, `wait-for-user`, `stop-waiting-for-user`.
#[derive(Clone, Debug, Deserialize)]
pub struct WithUser {
    pub user: String,
}

/// `fetch-unread-chats-count`: `user` is optional.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UnreadCount {
    #[serde(default)]
    pub user: Option<String>,
}

/// `read-chat`.
#[derive(Clone, Debug, Deserialize)]
pub struct ReadChat {
    pub id: ChatId,
}

/// A chat id as sent: a number or a string of digits (`ChatIdentifier = string | number`),
/// under the one rule of [`dialect_kit::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatId(pub i64);

dialect_kit::deserialize_id!(ChatId, "a chat id: a number, or a string of digits");

/// `send-message`.
#[derive(Clone, Debug, Deserialize)]
pub struct SendMessage {
    #[serde(default)]
    pub message: String,
    pub user: String,
    #[serde(default)]
    pub media: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------- outbound

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserOut {
    pub username: String,
    #[serde(rename = "isOnline")]
    pub is_online: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct UsersReply {
    pub users: Vec<UserOut>,
}

/// One message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatOut {
    pub id: i64,
    pub sender: String,
    pub recipient: String,
    pub message: String,
    pub has_read: bool,
    /// The URLs of its attachments (`[]` when none).
    pub media: Vec<String>,
    /// Extension: when it was stored (RFC 3339).
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatsReply {
    pub chats: Vec<ChatOut>,
}

/// The answer to `send-message`, and the `chat` push.
#[derive(Clone, Debug, Serialize)]
pub struct ChatReply {
    pub chat: ChatOut,
}

#[derive(Clone, Debug, Serialize)]
pub struct CountReply {
    #[serde(rename = "unreadChatsCount")]
    pub unread_chats_count: i64,
}

/// The `unread-chats-count` push.
#[derive(Clone, Debug, Serialize)]
pub struct CountPush {
    #[serde(rename = "unreadChatsCount")]
    pub unread_chats_count: i64,
    pub user: String,
}

/// The `read-chat` push.
#[derive(Clone, Debug, Serialize)]
pub struct ReadPush {
    pub id: i64,
    pub user: String,
}

/// `user-join`, `user-leave`, `user-online`, `user-offline`.
#[derive(Clone, Debug, Serialize)]
pub struct UserPush {
    pub user: String,
}

/// An empty answer: `{}`.
#[derive(Clone, Debug, Serialize)]
pub struct Empty {}

// ---------------------------------------------------------------------------- bridges

impl UserOut {
    pub fn new(u: &User, online: bool) -> Self {
        UserOut {
            username: u.username.clone(),
            is_online: online,
        }
    }
}

impl ChatOut {
    /// A message of a direct room. `None` for a message of a room of another shape,
    /// which this protocol cannot show.
    pub fn from_view(
        room: &RoomView,
        m: &MessageView,
        file_url: &dyn Fn(&Attachment) -> String,
    ) -> Option<Self> {
        let recipient = room.peer_of(m.message.author_id)?;
        Some(ChatOut {
            id: m.message.id.0,
            sender: m.author.username.clone(),
            recipient: recipient.username.clone(),
            message: m.message.text.clone(),
            has_read: m.is_read,
            media: m.message.attachments.iter().map(file_url).collect(),
            created_at: dialect_kit::time::millis(&m.message.created_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_and_shapes() {
        assert_eq!(
            serde_json::from_value::<ReadChat>(json!({"id": 5}))
                .unwrap()
                .id,
            ChatId(5)
        );
        assert_eq!(
            serde_json::from_value::<ReadChat>(json!({"id": "5"}))
                .unwrap()
                .id,
            ChatId(5)
        );
        assert!(serde_json::from_value::<ReadChat>(json!({"id": "five"})).is_err());
        assert!(serde_json::from_value::<ReadChat>(json!({"id": [5]})).is_err());
        let u = UserOut {
            username: "ann".into(),
            is_online: true,
        };
        assert_eq!(
            serde_json::to_value(u).unwrap(),
            json!({"username": "ann", "isOnline": true})
        );
        let c = CountPush {
            unread_chats_count: 2,
            user: "bob".into(),
        };
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            json!({"unreadChatsCount": 2, "user": "bob"})
        );
        let s: SendMessage =
            serde_json::from_value(json!({"message": "hi", "user": "bob"})).unwrap();
        assert_eq!(s.media, None);
    }
}
