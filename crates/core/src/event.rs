//! Events: what happened, after it was committed. The hub hands one shared
//! [`Published`] to every recipient connection; each dialect renders it for its own
//! client, and may cache a rendering that does not depend on the recipient so it is
//! serialized once per dialect rather than once per connection. The cache is opaque:
//! a dialect claims a [`RenderSlot`] of its own once, and core knows no dialect.

use crate::ids::{ConnId, MessageId, UserId};
use crate::model::{MessageView, SharedRoom, Timestamp, User};
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Something that happened in the domain.
#[derive(Clone, Debug)]
pub enum Event {
    /// A room was created; `room.members` are its first members.
    RoomCreated { room: SharedRoom, by: UserId },
    /// A room's title or flags changed.
    RoomUpdated { room: SharedRoom, by: UserId },
    /// Users joined a room. `room` is the room after the change.
    MembersAdded {
        room: SharedRoom,
        users: Vec<UserId>,
        by: UserId,
    },
    /// Users left or were removed. `room` is the room after the change.
    MembersRemoved {
        room: SharedRoom,
        users: Vec<UserId>,
        by: UserId,
    },
    /// A room was deleted with its messages; `room` is the room as it was just
    /// before (its members are the recipients).
    RoomDeleted { room: SharedRoom, by: UserId },
    MessageCreated {
        room: SharedRoom,
        message: Arc<MessageView>,
    },
    MessageEdited {
        room: SharedRoom,
        message: Arc<MessageView>,
    },
    /// Messages became tombstones.
    MessagesDeleted {
        room: SharedRoom,
        ids: Vec<MessageId>,
        by: UserId,
    },
    /// `reader` has read the room up to `up_to`; `newly_read` are the messages of other
    /// authors that this moved past (now "read").
    MessagesRead {
        room: SharedRoom,
        reader: UserId,
        up_to: MessageId,
        newly_read: Vec<MessageId>,
    },
    /// `user` is typing in `room` until `until`.
    Typing {
        room: SharedRoom,
        user: User,
        until: Timestamp,
    },
    /// `user` came online (first connection) or went offline (last one closed), or
    /// asked to be shown so (a dialect's explicit online/offline request).
    Presence { user: User, online: bool },
    /// `user` opened (`waiting: true`) or closed their conversation with the recipient
    /// (a dialect that shows who is looking at a direct conversation).
    Attention { user: User, waiting: bool },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::RoomCreated { .. } => "room_created",
            Event::RoomUpdated { .. } => "room_updated",
            Event::MembersAdded { .. } => "members_added",
            Event::MembersRemoved { .. } => "members_removed",
            Event::RoomDeleted { .. } => "room_deleted",
            Event::MessageCreated { .. } => "message_created",
            Event::MessageEdited { .. } => "message_edited",
            Event::MessagesDeleted { .. } => "messages_deleted",
            Event::MessagesRead { .. } => "messages_read",
            Event::Typing { .. } => "typing",
            Event::Presence { .. } => "presence",
            Event::Attention { .. } => "attention",
        }
    }

    /// The room the event is about, if any.
    pub fn room(&self) -> Option<&SharedRoom> {
        match self {
            Event::RoomCreated { room, .. }
            | Event::RoomUpdated { room, .. }
            | Event::MembersAdded { room, .. }
            | Event::MembersRemoved { room, .. }
            | Event::RoomDeleted { room, .. }
            | Event::MessageCreated { room, .. }
            | Event::MessageEdited { room, .. }
            | Event::MessagesDeleted { room, .. }
            | Event::MessagesRead { room, .. }
            | Event::Typing { room, .. } => Some(room),
            Event::Presence { .. } | Event::Attention { .. } => None,
        }
    }
}

/// Where a command came from: the connection, its dialect, and an opaque correlation
/// tag of that dialect (a request id or response key the client chose),
/// so the originating dialect can echo it in the pushes it renders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub conn: ConnId,
    pub dialect: &'static str,
    pub tag: Option<Arc<str>>,
}

/// Number of cached renderings per event. A dialect claimed beyond this still renders
/// correctly, once per recipient instead of once per event.
pub const RENDER_SLOTS: usize = 8;

/// A dialect's place in every event's render cache (see [`Published::rendered`]).
///
/// Claimed once per dialect at first use and kept in a static; two dialects never
/// share a slot, so a slot holds one dialect's rendering of one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderSlot(usize);

impl RenderSlot {
    /// A slot no other caller has; call it once per dialect
    /// (`static SLOT: LazyLock<RenderSlot> = LazyLock::new(RenderSlot::claim)`).
    pub fn claim() -> RenderSlot {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        RenderSlot(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An event as published: shared by all recipients.
#[derive(Debug)]
pub struct Published {
    pub event: Event,
    pub origin: Option<Origin>,
    cache: [OnceLock<Arc<str>>; RENDER_SLOTS],
    /// Renderings of other types (see [`Published::shared`]), one slot per dialect.
    shared: [OnceLock<Arc<dyn Any + Send + Sync>>; RENDER_SLOTS],
    /// When it was published on this node (delivery latency is measured from here).
    at: std::time::Instant,
}

impl Published {
    pub fn new(event: Event, origin: Option<Origin>) -> Self {
        Published {
            event,
            origin,
            cache: Default::default(),
            shared: Default::default(),
            at: std::time::Instant::now(),
        }
    }

    /// When the event was published on this node.
    pub fn published_at(&self) -> std::time::Instant {
        self.at
    }

    /// True when this connection sent the command that caused the event.
    pub fn is_from(&self, conn: ConnId) -> bool {
        self.origin.as_ref().is_some_and(|o| o.conn == conn)
    }

    /// The origin's correlation tag, if the command came through `dialect`.
    pub fn tag_for(&self, dialect: &str) -> Option<&str> {
        self.origin
            .as_ref()
            .filter(|o| o.dialect == dialect)
            .and_then(|o| o.tag.as_deref())
    }

    /// A rendering shared by every recipient that asks with the same `slot`: computed
    /// by the first, reused by the rest. Use it only for renderings that do not depend
    /// on the recipient.
    pub fn rendered(&self, slot: RenderSlot, render: impl FnOnce() -> String) -> Arc<str> {
        match self.cache.get(slot.0) {
            Some(cell) => cell.get_or_init(|| Arc::from(render())).clone(),
            None => Arc::from(render()),
        }
    }

    /// Like [`Self::rendered`] for a rendering of any type: for a dialect whose
    /// library takes something other than text (an already-serialized JSON value, so
    /// it is not parsed again per recipient). `None` only if another type was stored
    /// under `slot` (slots are per dialect, so that is a bug, not input).
    pub fn shared<T: Any + Send + Sync>(
        &self,
        slot: RenderSlot,
        render: impl FnOnce() -> T,
    ) -> Option<Arc<T>> {
        let Some(cell) = self.shared.get(slot.0) else {
            return Some(Arc::new(render()));
        };
        let value = match cell.get() {
            Some(v) => v.clone(),
            None => {
                // Two recipients rendering at once: the first stored wins, the other's
                // copy is dropped.
                let fresh: Arc<dyn Any + Send + Sync> = Arc::new(render());
                cell.get_or_init(|| fresh).clone()
            }
        };
        value.downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published() -> Published {
        Published::new(
            Event::Presence {
                user: User::placeholder(UserId(2)),
                online: true,
            },
            None,
        )
    }

    #[test]
    fn shared_renders_once_per_slot_and_refuses_another_type() {
        let ev = published();
        let (mine, other) = (RenderSlot::claim(), RenderSlot::claim());
        assert_ne!(mine, other, "every claim is a slot of its own");
        let mut calls = 0;
        let first = ev.shared(mine, || {
            calls += 1;
            String::from("{\"a\":1}")
        });
        let second = ev.shared(mine, || {
            calls += 1;
            String::from("other")
        });
        assert_eq!(calls, 1, "the second recipient reuses the first rendering");
        let (first, second) = (first.expect("stored"), second.expect("stored"));
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(ev.shared(mine, || 5_u32), None, "a slot keeps one type");
        assert_eq!(*ev.shared(other, || 5_u32).expect("own slot"), 5);
        let beyond = RenderSlot(RENDER_SLOTS);
        assert_eq!(*ev.shared(beyond, || 6_u32).expect("no slot"), 6);
        assert_eq!(
            &*ev.rendered(beyond, || "a".into()),
            "a",
            "beyond the cache: rendered anyway"
        );
    }
}
