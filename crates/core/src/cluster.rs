//! Several nodes, one server: what the service hands to a [`Broker`], and how an
//! event from another node becomes an [`Event`] again.
//!
//! **Invariant: in a cluster every event reaches every connection through the
//! broker, the node that caused it included.** A node never delivers its own events
//! straight to its hub, because then its clients would see its events in commit
//! order and another node's events in the order the broker brought them, and two
//! clients of one room on two nodes could see different orders. The broker gives
//! each room one order for all nodes; the service waits until its own event has come
//! back through it (from memory, [`Local`], not re-read) before it answers the
//! command, so the sender still sees the event before the acknowledgement, as on a
//! single node.
//!
//! An [`Envelope`] carries ids and the data no other node can read back cheaply
//! (a message's new text, a typing user's profile), never a room: the receiving node
//! takes the room from its own cache, which it first forgets when the event changed
//! the room, so every node's cache follows every node's writes.

use crate::event::{Event, Origin, Published};
use crate::ids::{ConnId, MessageId, RoomId, UserId};
use crate::model::{MessageView, Timestamp, User};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// An event for the whole cluster, as written to the broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    /// The recipients; `None`: the room's members when the event is delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<UserId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<WireOrigin>,
    pub what: Remote,
}

/// [`Origin`] as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOrigin {
    pub conn: ConnId,
    pub dialect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What happened, without the room (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum Remote {
    RoomCreated {
        by: UserId,
    },
    RoomUpdated {
        by: UserId,
    },
    MembersAdded {
        users: Vec<UserId>,
        by: UserId,
    },
    MembersRemoved {
        users: Vec<UserId>,
        by: UserId,
    },
    /// A room was deleted: the room as it was comes along, since no node can read
    /// it back any more.
    RoomDeleted {
        room: Box<crate::model::RoomView>,
        by: UserId,
    },
    /// A new message; `None` when the message itself comes with the event, read from
    /// the database (the note written with the message, see
    /// [`crate::store::NewMessage::note`]).
    MessageCreated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Box<MessageView>>,
    },
    MessageEdited {
        message: Box<MessageView>,
    },
    MessagesDeleted {
        ids: Vec<MessageId>,
        by: UserId,
    },
    MessagesRead {
        reader: UserId,
        up_to: MessageId,
        newly_read: Vec<MessageId>,
    },
    Typing {
        user: Box<User>,
        until: Timestamp,
    },
    /// Presence a client announced itself (a dialect with explicit online and
    /// offline requests), not a change of connections.
    Presence {
        user: Box<User>,
        online: bool,
    },
    /// The cluster-wide connection state of `user` flipped (written by the broker's
    /// database, which alone knows every node's connections); the recipients are the
    /// user's contacts.
    PresenceOf {
        user: UserId,
        online: bool,
    },
    Attention {
        user: Box<User>,
        waiting: bool,
    },
    /// A user was created or changed: cached users and room views are stale.
    ProfilesChanged,
}

impl Remote {
    /// Whether the event changes its room's view (members, title, read marks), so a
    /// node forgets its cached view before delivering it.
    pub fn changes_room(&self) -> bool {
        matches!(
            self,
            Remote::RoomUpdated { .. }
                | Remote::MembersAdded { .. }
                | Remote::MembersRemoved { .. }
                | Remote::MessagesRead { .. }
        )
    }
}

impl Envelope {
    /// The envelope of `event` for `recipients`. The recipients are left out when
    /// they are the room's members, which every node knows.
    pub fn of(event: &Event, recipients: &[UserId], origin: Option<&Origin>) -> Envelope {
        // A deleted room cannot be looked up by the receiving nodes: it travels
        // whole, with its recipients, and the envelope names no room.
        let room = event
            .room()
            .filter(|_| !matches!(event, Event::RoomDeleted { .. }));
        let to = match room {
            Some(r) if r.member_ids() == recipients => None,
            _ => Some(recipients.to_vec()),
        };
        let what = match event {
            Event::RoomCreated { by, .. } => Remote::RoomCreated { by: *by },
            Event::RoomUpdated { by, .. } => Remote::RoomUpdated { by: *by },
            Event::MembersAdded { users, by, .. } => Remote::MembersAdded {
                users: users.clone(),
                by: *by,
            },
            Event::MembersRemoved { users, by, .. } => Remote::MembersRemoved {
                users: users.clone(),
                by: *by,
            },
            Event::RoomDeleted { room, by } => Remote::RoomDeleted {
                room: Box::new(room.as_ref().clone()),
                by: *by,
            },
            Event::MessageCreated { message, .. } => Remote::MessageCreated {
                message: Some(Box::new(message.as_ref().clone())),
            },
            Event::MessageEdited { message, .. } => Remote::MessageEdited {
                message: Box::new(message.as_ref().clone()),
            },
            Event::MessagesDeleted { ids, by, .. } => Remote::MessagesDeleted {
                ids: ids.clone(),
                by: *by,
            },
            Event::MessagesRead {
                reader,
                up_to,
                newly_read,
                ..
            } => Remote::MessagesRead {
                reader: *reader,
                up_to: *up_to,
                newly_read: newly_read.clone(),
            },
            Event::Typing { user, until, .. } => Remote::Typing {
                user: Box::new(user.clone()),
                until: *until,
            },
            Event::Presence { user, online } => Remote::Presence {
                user: Box::new(user.clone()),
                online: *online,
            },
            Event::Attention { user, waiting } => Remote::Attention {
                user: Box::new(user.clone()),
                waiting: *waiting,
            },
        };
        Envelope {
            room: room.map(|r| r.id()),
            to,
            origin: origin.map(WireOrigin::of),
            what,
        }
    }

    /// An envelope of an event about no room, for `to`.
    pub fn about_users(what: Remote, to: Vec<UserId>) -> Envelope {
        Envelope {
            room: None,
            to: Some(to),
            origin: None,
            what,
        }
    }
}

impl WireOrigin {
    pub fn of(o: &Origin) -> WireOrigin {
        WireOrigin {
            conn: o.conn,
            dialect: o.dialect.to_owned(),
            tag: o.tag.as_deref().map(str::to_owned),
        }
    }

    pub fn into_origin(self) -> Origin {
        Origin {
            conn: self.conn,
            dialect: intern(&self.dialect),
            tag: self.tag.map(Arc::from),
        }
    }
}

/// Dialect names as `&'static str`, as [`Origin`] holds them. Only the names of the
/// dialects a cluster runs ever arrive, so the list stays a handful long; a name
/// longer than any dialect's is cut rather than kept.
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let name = match name.char_indices().nth(64) {
        Some((cut, _)) => &name[..cut],
        None => name,
    };
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.iter().find(|n| **n == name) {
        return known;
    }
    if names.len() >= 64 {
        return "unknown";
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    leaked
}

/// An event as this node published it, kept in memory until it comes back from the
/// broker and is delivered from here, not rebuilt.
#[derive(Clone, Debug)]
pub struct Local {
    pub recipients: Vec<UserId>,
    pub event: Arc<Published>,
}

/// The way a clustered service publishes. Implemented by `chat-cluster`.
#[async_trait::async_trait]
pub trait Broker: Send + Sync + 'static {
    /// The note that a new message of `room` is stored with
    /// ([`crate::store::NewMessage::note`]): its event, for every node.
    fn message_note(&self, room: RoomId, origin: Option<&Origin>) -> String;

    /// A message stored with its note was committed: wait until its event has been
    /// delivered on this node (from `local`), or a few seconds at most. `note_at` is
    /// the note's (shard, sequence number) when the store reported it.
    async fn message_committed(
        &self,
        message: MessageId,
        note_at: Option<(usize, i64)>,
        local: Local,
    );

    /// Publish to every node; returns once the event has been delivered on this node
    /// (from `local`, when given), or after a few seconds at most.
    async fn publish(&self, envelope: Envelope, local: Option<Local>);

    /// The user's first connection on this node opened or their last one closed.
    fn presence_changed(&self, user: UserId);

    /// Whether the user has a connection on any node, as last announced.
    fn is_online(&self, user: UserId) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Room, RoomKind, RoomView};

    fn room(members: &[i64]) -> Arc<RoomView> {
        let now = chrono::Utc::now();
        Arc::new(RoomView {
            room: Room {
                id: RoomId(7),
                kind: RoomKind::Group,
                title: "t".into(),
                has_business: false,
                created_by: None,
                created_at: now,
                updated_at: now,
            },
            members: members
                .iter()
                .map(|id| User::placeholder(UserId(*id)))
                .collect(),
            watermarks: vec![],
        })
    }

    #[test]
    fn members_are_left_out_and_the_rest_round_trips() {
        let r = room(&[1, 2, 3]);
        let origin = Origin {
            conn: ConnId(5 << 32 | 9),
            dialect: "test-dialect",
            tag: Some(Arc::from("k1")),
        };
        let removed = Event::MembersRemoved {
            room: r.clone(),
            users: vec![UserId(4)],
            by: UserId(1),
        };
        let env = Envelope::of(&removed, &[UserId(1), UserId(2), UserId(3)], Some(&origin));
        assert_eq!(env.to, None, "the room's members are implied");
        assert_eq!(env.room, Some(RoomId(7)));
        assert!(env.what.changes_room());
        let env = Envelope::of(&removed, &[UserId(1), UserId(4)], None);
        assert_eq!(env.to, Some(vec![UserId(1), UserId(4)]));
        let back = env.origin.clone().map(WireOrigin::into_origin);
        assert_eq!(back, None);
        let wire = WireOrigin::of(&origin).into_origin();
        assert_eq!(wire, origin);
        assert!(std::ptr::eq(
            wire.dialect,
            WireOrigin::of(&origin).into_origin().dialect
        ));
    }

    #[test]
    fn a_deleted_room_travels_whole_with_its_recipients() {
        let r = room(&[1, 2]);
        let deleted = Event::RoomDeleted {
            room: r.clone(),
            by: UserId(9),
        };
        let env = Envelope::of(&deleted, &r.member_ids(), None);
        assert_eq!(env.room, None, "no node can look the room up any more");
        assert_eq!(env.to, Some(vec![UserId(1), UserId(2)]));
        match env.what {
            Remote::RoomDeleted { room, by } => {
                assert_eq!(*room, *r);
                assert_eq!(by, UserId(9));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn interning_is_bounded() {
        for i in 0..200 {
            let _ = intern(&format!("d{i}"));
        }
        assert!(intern("x".repeat(500).as_str()).len() <= 64);
    }
}
