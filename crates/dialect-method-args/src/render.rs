//! Domain → wire: `ChatError`s become `error` events, domain `Event`s become the
//! frames one recipient connection should see.
//!
//! The pushes are decided per recipient *role*, never by policy: for an event about
//! a room, a recipient is the initiator (`by`), a target (added, removed, reader) or
//! one of the other members, and each role has its own event in the spec. A user can
//! hold two roles at once (someone who removes themselves is both initiator and
//! removed user); they then get the event of each role, initiator's first.
//!
//! The "other members" rendering of an event is the same for every such recipient, so
//! it is serialized once per event and shared through the event's render cache
//! ([`Published::rendered`] with our slot). Role-specific renderings (initiator,
//! target) are not cached: the slot holds one string per event, and it must only ever
//! hold a rendering that is identical for everyone who reads it.

use crate::wire::{Chat, ErrorData, ErrorType, Message, MessageUpdate, Outbound, UpdatedFields};
use chat_core::{Attachment, ChatError, Event, Outgoing, Published, RoomView, UserId};
use serde_json::Value;

/// Turns an attachment into its absolute URL (`ChatService::file_url` in production).
pub type FileUrl<'a> = &'a dyn Fn(&Attachment) -> String;

/// An `error` event.
pub fn error(kind: ErrorType, detail: impl Into<String>, key: Value) -> Outbound {
    Outbound::Error(ErrorData {
        kind,
        detail: detail.into(),
        event_response_key: key,
        chat_id: None,
    })
}

/// A domain error as the `error` event of this dialect.
pub fn chat_error(e: &ChatError, key: Value) -> Outbound {
    let (kind, detail, chat_id) = match e {
        ChatError::Unauthenticated(t) => (
            ErrorType::AuthorizationError,
            format!("the access token was refused: {t}"),
            None,
        ),
        ChatError::Forbidden(reason) => (ErrorType::AccessError, reason.clone(), None),
        ChatError::NotFound { what: "chat" } => (
            ErrorType::AccessError,
            "chat not found, or you are not one of its members".to_string(),
            None,
        ),
        ChatError::NotFound { what } => (ErrorType::AccessError, format!("{what} not found"), None),
        ChatError::Invalid { field, reason } => (ErrorType::FieldError, format!("{field}: {reason}"), None),
        ChatError::TooLarge { .. }
        | ChatError::QuotaExceeded { .. }
        | ChatError::RateLimited { .. }
        | ChatError::Conflict(_) => {
            (ErrorType::FieldError, e.to_string(), None)
        }
        ChatError::DuplicateRoom { existing } => (
            ErrorType::ChatDuplicationError,
            format!("you already have a direct chat with this user (chat {existing}); open that one instead"),
            Some(existing.0),
        ),
        ChatError::Storage(_) => (
            ErrorType::SystemError,
            "the server could not store the change, so nothing was changed; try again later".to_string(),
            None,
        ),
    };
    Outbound::Error(ErrorData {
        kind,
        detail,
        event_response_key: key,
        chat_id,
    })
}

/// The frames one connection of user `me` should get for a hub event.
///
/// The caller has already dropped events caused by this very connection (it answered
/// those from the command's result); everything here is for the user's *other*
/// connections or for other users, so no `event_response_key` is ever echoed.
pub fn push(ev: &Published, me: UserId, url: FileUrl<'_>) -> Vec<Outgoing> {
    let own = |o: Outbound| vec![Outgoing::Text(o.to_json())];
    let shared = |render: &dyn Fn() -> Outbound| {
        vec![Outgoing::Shared(
            ev.rendered(*crate::SLOT, || render().to_json()),
        )]
    };
    // Initiator first, then an added or removed user; the others share one frame.
    let members_changed = |change: MemberChange, room: &RoomView, users: &[UserId], by| {
        let mut out = Vec::new();
        if by == me {
            out.extend(own(change.successful(Value::Null, users, Chat::from(room))));
        }
        if users.contains(&me) {
            out.extend(own(change.target(Chat::from(room))));
        }
        if out.is_empty() {
            out = shared(&|| change.others(users, Chat::from(room)));
        }
        out
    };
    match &ev.event {
        Event::RoomCreated { room, by } => {
            if *by == me {
                own(Outbound::ChatCreated {
                    chat: Chat::from(&**room),
                    event_response_key: Value::Null,
                })
            } else {
                shared(&|| Outbound::NewChat {
                    chat: Chat::from(&**room),
                })
            }
        }
        Event::RoomUpdated { room, .. } => shared(&|| Outbound::ChatUpdated {
            chat: Chat::from(&**room),
        }),
        Event::MembersAdded { room, users, by } => {
            members_changed(MemberChange::Added, room, users, *by)
        }
        Event::MembersRemoved { room, users, by } => {
            members_changed(MemberChange::Removed, room, users, *by)
        }
        // "Fires when the user's been removed from given chat (or chat's been
        // removed itself)": every member of a deleted chat.
        Event::RoomDeleted { room, .. } => shared(&|| Outbound::ChatRemoved {
            chat: Chat::from(&**room),
        }),
        Event::MessageCreated { message, .. } => {
            if message.author.id == me {
                own(Outbound::MessageCreated {
                    message: Message::from_view(message, url),
                    event_response_key: Value::Null,
                })
            } else {
                shared(&|| Outbound::NewMessage {
                    message: Message::from_view(message, url),
                })
            }
        }
        Event::MessageEdited { message, .. } => shared(&|| Outbound::MessagesUpdated {
            updates: vec![MessageUpdate {
                id: message.message.id.0,
                fields: UpdatedFields {
                    text: Some(message.message.text.clone()),
                    updated_at: Some(crate::wire::time(&message.message.updated_at)),
                    ..Default::default()
                },
            }],
        }),
        Event::MessagesDeleted { ids: deleted, .. } => shared(&|| Outbound::MessagesUpdated {
            updates: deleted
                .iter()
                .map(|id| MessageUpdate {
                    id: id.0,
                    fields: UpdatedFields {
                        is_deleted: Some(true),
                        text: Some(String::new()),
                        ..Default::default()
                    },
                })
                .collect(),
        }),
        Event::MessagesRead {
            room,
            reader,
            newly_read,
            ..
        } => {
            if *reader == me {
                own(Outbound::MessagesRead { chat: room.id().0 })
            } else if newly_read.is_empty() {
                Vec::new()
            } else {
                shared(&|| read_updates(newly_read))
            }
        }
        // The spec has no words for these; see "Differences from the original backend".
        Event::Typing { .. } | Event::Presence { .. } | Event::Attention { .. } => Vec::new(),
    }
}

/// `messages_updated` telling that these messages are now read.
pub fn read_updates(newly_read: &[chat_core::MessageId]) -> Outbound {
    Outbound::MessagesUpdated {
        updates: newly_read
            .iter()
            .map(|id| MessageUpdate {
                id: id.0,
                fields: UpdatedFields {
                    is_read: Some(true),
                    ..Default::default()
                },
            })
            .collect(),
    }
}

/// A change of a room's members, with the frame each role gets for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    Added,
    Removed,
}

impl MemberChange {
    /// The initiator's acknowledgement: `user_added_successful`, `user_removed_successful`.
    pub fn successful(self, event_response_key: Value, users: &[UserId], chat: Chat) -> Outbound {
        let user_ids = ids(users);
        match self {
            MemberChange::Added => Outbound::UserAddedSuccessful {
                event_response_key,
                user_ids,
                chat,
            },
            MemberChange::Removed => Outbound::UserRemovedSuccessful {
                event_response_key,
                user_ids,
                chat,
            },
        }
    }

    /// What an added or removed user gets: `new_chat`, `chat_removed`.
    pub fn target(self, chat: Chat) -> Outbound {
        match self {
            MemberChange::Added => Outbound::NewChat { chat },
            MemberChange::Removed => Outbound::ChatRemoved { chat },
        }
    }

    /// What the other members get: `user_added`, `user_removed`.
    pub fn others(self, users: &[UserId], chat: Chat) -> Outbound {
        let user_ids = ids(users);
        match self {
            MemberChange::Added => Outbound::UserAdded { user_ids, chat },
            MemberChange::Removed => Outbound::UserRemoved { user_ids, chat },
        }
    }
}

/// User ids as the wire spells them.
pub fn ids(users: &[UserId]) -> Vec<i64> {
    users.iter().map(|u| u.0).collect()
}

#[cfg(test)]
mod tests;
