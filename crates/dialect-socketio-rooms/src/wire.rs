//! Wire types of socketio-rooms, spelled as the protocol spells them.
//!
//! Ids are strings holding the decimal form of the domain's 64-bit ids (`"12"`);
//! clients may send numbers too. Times are RFC 3339 strings. These types are kept
//! apart from the domain records: the bridges at the bottom are the only place the
//! two meet.

use chat_core::{Attachment, MessageKind, MessageView, RoomView, User, UserId};
use dialect_kit::time;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------- inbound

/// An id as sent: `"12"` or `12` (the one rule of [`dialect_kit::id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireId(pub i64);

dialect_kit::deserialize_id!(WireId, "an id: a string of decimal digits such as \"12\"");

/// `{id}`: how a body names a user or a chat.
#[derive(Clone, Debug, Deserialize)]
pub struct Ref {
    pub id: WireId,
}

/// `create-user`.
#[derive(Clone, Debug, Deserialize)]
pub struct CreateUser {
    pub user: NewUser,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NewUser {
    #[serde(default)]
    pub external_id: Option<ExternalId>,
    #[serde(default)]
    pub id: Option<WireId>,
    pub name: String,
    pub photo: String,
}

/// An external id: any string (a number is taken as its decimal text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalId(pub String);

impl<'de> Deserialize<'de> for ExternalId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(ExternalId(s)),
            serde_json::Value::Number(n) => Ok(ExternalId(n.to_string())),
            other => Err(de::Error::custom(format!(
                "external_id must be a string, not {}",
                dialect_kit::json::kind(&other)
            ))),
        }
    }
}

/// `create-chat`.
#[derive(Clone, Debug, Deserialize)]
pub struct CreateChat {
    pub chat: NewChat,
    pub users: Vec<WireId>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NewChat {
    #[serde(default)]
    pub name: Option<String>,
}

/// `list-chats`.
#[derive(Clone, Debug, Deserialize)]
pub struct ListChats {
    pub user: Ref,
}

/// `list-messages`.
#[derive(Clone, Debug, Deserialize)]
pub struct ListMessages {
    #[serde(default)]
    pub query: Option<Window>,
    pub chat: Ref,
}

/// The time window of `list-messages`; either end may be left out.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Window {
    #[serde(default)]
    pub from: Option<serde_json::Value>,
    #[serde(default)]
    pub to: Option<serde_json::Value>,
}

/// `new-message`.
#[derive(Clone, Debug, Deserialize)]
pub struct NewMessage {
    pub chat: Ref,
    pub user: Ref,
    pub message: MessageBody,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MessageBody {
    pub value: String,
    #[serde(rename = "type", default = "text")]
    pub kind: String,
}

fn text() -> String {
    "text".to_string()
}

// ---------------------------------------------------------------------------- outbound

/// A user as `create-user` answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserOut {
    pub external_id: Option<String>,
    pub id: String,
    /// Extension: the display name the user was created with.
    pub name: String,
    /// Extension: the photo the user was created with.
    pub photo: String,
    pub created_at: String,
    pub modified_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct UserReply {
    pub user: UserOut,
}

/// A chat.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatOut {
    pub id: String,
    pub name: String,
    pub users: Vec<String>,
    pub created_at: String,
    pub modified_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatReply {
    pub chat: ChatOut,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatsReply {
    pub chats: Vec<ChatOut>,
}

/// A message: the `new-message` answer and push, and an item of `list-messages`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageOut {
    pub id: String,
    /// Extension: the chat the message is in (the original told it by the room).
    pub chat_id: String,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub user_id: String,
    pub created_at: String,
    pub modified_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct MessagesReply {
    pub messages: Vec<MessageOut>,
}

// ---------------------------------------------------------------------------- bridges

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            external_id: u.external_id.clone(),
            id: u.id.to_string(),
            name: u.display_name.clone(),
            photo: u.photo.clone(),
            created_at: time::millis(&u.created_at),
            modified_at: time::millis(&u.updated_at),
        }
    }
}

impl From<&RoomView> for ChatOut {
    fn from(r: &RoomView) -> Self {
        ChatOut {
            id: r.room.id.to_string(),
            name: r.room.title.clone(),
            users: r.members.iter().map(|u| u.id.to_string()).collect(),
            created_at: time::millis(&r.room.created_at),
            modified_at: time::millis(&r.room.updated_at),
        }
    }
}

impl MessageOut {
    /// A domain message as this protocol shows it. A message of another dialect that
    /// carries attachments shows their URLs: alone it is an `img` or `file` message
    /// whose `msg` is the URL (as this protocol sends files); with text, the URLs
    /// follow the text, one per line.
    pub fn from_view(m: &MessageView, file_url: &dyn Fn(&Attachment) -> String) -> Self {
        let msg = &m.message;
        let urls: Vec<String> = msg
            .attachments
            .iter()
            .map(file_url)
            .filter(|u| !msg.text.contains(u.as_str()))
            .collect();
        let (kind, text) = match (msg.kind, msg.text.trim().is_empty(), urls.as_slice()) {
            (MessageKind::Text, true, [url]) => {
                let image = msg
                    .attachments
                    .first()
                    .is_some_and(|a| a.content_type.starts_with("image/"));
                (if image { "img" } else { "file" }, url.clone())
            }
            (kind, _, []) => (kind.as_str(), msg.text.clone()),
            (kind, _, urls) => {
                let mut lines: Vec<&str> = Vec::with_capacity(urls.len() + 1);
                if !msg.text.trim().is_empty() {
                    lines.push(&msg.text);
                }
                lines.extend(urls.iter().map(String::as_str));
                (kind.as_str(), lines.join("\n"))
            }
        };
        MessageOut {
            id: msg.id.to_string(),
            chat_id: msg.room_id.to_string(),
            msg: text,
            kind,
            user_id: msg.author_id.to_string(),
            created_at: time::millis(&msg.created_at),
            modified_at: time::millis(&msg.updated_at),
        }
    }
}

/// A body's id as a user id.
pub fn user_id(r: &Ref) -> UserId {
    UserId(r.id.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::{AttachmentId, Message, MessageId, RoomId};
    use serde_json::json;

    fn user(id: i64) -> User {
        let t = chrono::DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .to_utc();
        User {
            id: UserId(id),
            username: format!("user{id}"),
            external_id: None,
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            display_name: "Ann".into(),
            photo: "p.png".into(),
            color: String::new(),
            role: String::new(),
            is_admin: false,
            created_at: t,
            updated_at: t,
        }
    }

    fn view(text: &str, files: &[(&str, &str)]) -> MessageView {
        let u = user(7);
        MessageView {
            message: Message {
                id: MessageId(3),
                room_id: RoomId(2),
                author_id: u.id,
                kind: MessageKind::Text,
                text: text.into(),
                reply_to: None,
                created_at: u.created_at,
                updated_at: u.created_at,
                edited_at: None,
                deleted_at: None,
                attachments: files
                    .iter()
                    .enumerate()
                    .map(|(i, (name, ct))| Attachment {
                        id: AttachmentId(i as i64 + 1),
                        name: name.to_string(),
                        content_type: ct.to_string(),
                        size: 1,
                        blob_key: String::new(),
                        uploader_id: u.id,
                        message_id: Some(MessageId(3)),
                        created_at: u.created_at,
                        token: "tok".into(),
                    })
                    .collect(),
            },
            author: u,
            is_read: false,
        }
    }

    fn url(a: &Attachment) -> String {
        format!("http://h/files/{}/{}/{}", a.id, a.token, a.name)
    }

    #[test]
    fn ids_are_decimal_strings_or_numbers() {
        let r: Ref = serde_json::from_value(json!({"id": "12"})).unwrap();
        assert_eq!(r.id, WireId(12));
        let r: Ref = serde_json::from_value(json!({"id": 12})).unwrap();
        assert_eq!(r.id, WireId(12));
        for bad in [
            json!({"id": "abc"}),
            json!({"id": ""}),
            json!({"id": "1.5"}),
            json!({"id": true}),
        ] {
            assert!(serde_json::from_value::<Ref>(bad).is_err());
        }
    }

    #[test]
    fn messages_render_with_attachments_as_urls() {
        let m = MessageOut::from_view(&view("hi", &[]), &url);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"id": "3", "chat_id": "2", "msg": "hi", "type": "text", "user_id": "7",
                   "created_at": "2024-05-01T12:00:00.000Z", "modified_at": "2024-05-01T12:00:00.000Z"})
        );
        let m = MessageOut::from_view(&view("", &[("a.png", "image/png")]), &url);
        assert_eq!(
            (m.kind, m.msg.as_str()),
            ("img", "http://h/files/1/tok/a.png")
        );
        let m = MessageOut::from_view(&view("", &[("a.txt", "text/plain")]), &url);
        assert_eq!(m.kind, "file");
        let m = MessageOut::from_view(
            &view("see", &[("a.txt", "text/plain"), ("b.txt", "text/plain")]),
            &url,
        );
        assert_eq!(
            (m.kind, m.msg.as_str()),
            (
                "text",
                "see\nhttp://h/files/1/tok/a.txt\nhttp://h/files/2/tok/b.txt"
            )
        );
    }

    #[test]
    fn user_and_chat_shapes() {
        let u = UserOut::from(&user(7));
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"external_id": null, "id": "7", "name": "Ann", "photo": "p.png",
                   "created_at": "2024-05-01T12:00:00.000Z", "modified_at": "2024-05-01T12:00:00.000Z"})
        );
    }
}
