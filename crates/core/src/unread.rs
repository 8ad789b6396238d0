//! Running unread counts, for a connection that reports one after every message.
//!
//! A dialect may tell a reader how many messages of a conversation are unread each
//! time a new one arrives. Counting them in the database every time scans every
//! unread message of the room, so the cost of a message grew with the reader's
//! backlog; under load those counts were most of PostgreSQL's work. Instead a
//! connection keeps the count it fetched last and adds the messages the hub brings.
//!
//! That stays exact because the ids of a room commit in increasing order (see the
//! store's docs): a count taken from the database covers every unread message up to
//! the newest one it counted, so a message with a higher id is one it has not seen,
//! and one with a lower id (or at or below the read mark the count used) is already
//! counted or already read. Whatever else changes a room's count — the reader reading,
//! a message deleted — makes the connection forget that room, and its next count comes
//! from the database again.

use crate::error::ChatError;
use crate::{ChatService, MessageId, Principal, RoomId, RoomView, UserId};
use std::collections::HashMap;

/// Rooms whose count a connection remembers at most; it starts over when full.
const MAX_ROOMS: usize = 256;

#[derive(Clone, Copy, Debug)]
struct Known {
    count: i64,
    /// The newest message id the count accounts for (counted, or read).
    through: Option<MessageId>,
}

/// One connection's running unread counts, by room.
#[derive(Debug, Default)]
pub struct UnreadTracker {
    rooms: HashMap<RoomId, Known>,
}

impl UnreadTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The hub brought `message` by `author` in `room`: count it for `reader` if the
    /// room's count is known and does not include it yet.
    pub fn message_created(
        &mut self,
        room: RoomId,
        message: MessageId,
        author: UserId,
        reader: UserId,
    ) {
        if author == reader {
            return;
        }
        if let Some(known) = self.rooms.get_mut(&room) {
            if known.through.is_none_or(|t| message > t) {
                known.count += 1;
                known.through = Some(message);
            }
        }
    }

    /// The room's count changed in a way the tracker cannot follow (a read, a
    /// deletion): take it from the database next time.
    pub fn forget(&mut self, room: RoomId) {
        self.rooms.remove(&room);
    }

    /// The actor's unread messages in `room`: the running count, or the database's.
    pub async fn count(
        &mut self,
        service: &ChatService,
        actor: &Principal,
        room: &RoomView,
    ) -> Result<i64, ChatError> {
        if let Some(known) = self.rooms.get(&room.id()) {
            return Ok(known.count);
        }
        let (count, through) = service.unread_through(actor, room).await?;
        if self.rooms.len() >= MAX_ROOMS {
            self.rooms.clear();
        }
        self.rooms.insert(room.id(), Known { count, through });
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(count: i64, through: Option<i64>) -> UnreadTracker {
        let mut t = UnreadTracker::new();
        t.rooms.insert(
            RoomId(1),
            Known {
                count,
                through: through.map(MessageId),
            },
        );
        t
    }

    fn count(t: &UnreadTracker) -> Option<i64> {
        t.rooms.get(&RoomId(1)).map(|k| k.count)
    }

    #[test]
    fn counts_only_messages_newer_than_what_was_counted() {
        let (me, peer) = (UserId(1), UserId(2));
        let mut t = known(2, Some(10));
        t.message_created(RoomId(1), MessageId(9), peer, me);
        t.message_created(RoomId(1), MessageId(10), peer, me);
        assert_eq!(count(&t), Some(2), "already in the database's count");
        t.message_created(RoomId(1), MessageId(11), peer, me);
        assert_eq!(count(&t), Some(3));
        t.message_created(RoomId(1), MessageId(11), peer, me);
        assert_eq!(count(&t), Some(3), "the same message twice counts once");
        t.message_created(RoomId(1), MessageId(12), me, me);
        assert_eq!(count(&t), Some(3), "own messages are never unread");
        t.message_created(RoomId(2), MessageId(13), peer, me);
        assert_eq!(
            t.rooms.get(&RoomId(2)).map(|k| k.count),
            None,
            "unknown rooms wait for the database"
        );
    }

    #[test]
    fn a_count_of_nothing_counts_everything_new_and_forgetting_starts_over() {
        let (me, peer) = (UserId(1), UserId(2));
        let mut t = known(0, None);
        t.message_created(RoomId(1), MessageId(1), peer, me);
        assert_eq!(count(&t), Some(1));
        t.forget(RoomId(1));
        assert_eq!(count(&t), None);
        t.message_created(RoomId(1), MessageId(2), peer, me);
        assert_eq!(count(&t), None, "forgotten rooms are not counted blindly");
    }
}
