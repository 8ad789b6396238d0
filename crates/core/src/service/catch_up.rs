//! Reading what a client missed: a room's messages after an id, and everything of
//! the caller's rooms that changed after an id (for a client of any dialect that
//! reconnects), plus the caller's room list with unread counts and last messages.
//!
//! Invariant: "after an id" means after the moment that message was created.
//! Mechanism: new messages are those with a higher id (ids of a room commit in
//! increasing order); edits and deletions are the messages at or below the id whose
//! `updated_at` (set by each edit and deletion) is at or after the creation time of
//! that message (or of the newest message below it, if it is gone), so a client that
//! saw message N has seen every change made before N was created. Read marks are
//! reported as every member's current watermark, which is the whole read state.
//! Consequence: one call per reconnect fills the gap; a change may be reported that
//! the client saw already (applying it again changes nothing), none is missed.

use super::messages::cut_page;
use super::ChatService;
use crate::auth::Principal;
use crate::ids::{MessageId, RoomId};
use crate::model::*;
use crate::policy;
use crate::Result;

/// Largest page of [`ChatService::messages_after`] and of one room's new messages in
/// [`ChatService::sync`]; the default is [`DEFAULT_CATCH_UP_LIMIT`].
pub const MAX_CATCH_UP_LIMIT: i64 = 500;
/// The default page size of the catch-up reads.
pub const DEFAULT_CATCH_UP_LIMIT: i64 = 50;
/// Edited or deleted messages reported for one room by [`ChatService::sync`] at
/// most; beyond that the room says `changed_has_more` and the client reloads it.
pub const MAX_CHANGED_PER_ROOM: i64 = 500;

/// A page of messages, oldest first, and whether more follow it.
#[derive(Clone, Debug)]
pub struct Page {
    pub room: SharedRoom,
    pub messages: Vec<MessageView>,
    pub has_more: bool,
}

/// A room of the caller's room list.
#[derive(Clone, Debug)]
pub struct RoomSummary {
    pub room: SharedRoom,
    /// Live messages of others after the caller's read mark.
    pub unread: i64,
    pub last_message: Option<MessageView>,
}

/// What changed in one room after the sync's id.
#[derive(Clone, Debug)]
pub struct RoomSync {
    pub summary: RoomSummary,
    /// New messages, oldest first, at most the sync's limit.
    pub messages: Vec<MessageView>,
    /// More new messages follow `messages` (read them with `messages_after`).
    pub has_more: bool,
    /// Older messages edited or deleted since, in the order they changed.
    pub changed: Vec<MessageView>,
    /// More than [`MAX_CHANGED_PER_ROOM`] older messages changed.
    pub changed_has_more: bool,
}

/// Everything of the caller's rooms that changed after an id.
#[derive(Clone, Debug)]
pub struct Sync {
    pub rooms: Vec<RoomSync>,
    /// The id to sync from next time: the newest message id of the caller's rooms
    /// (at least the id synced from).
    pub next_since: MessageId,
}

/// `limit` within 1..=[`MAX_CATCH_UP_LIMIT`].
pub fn check_catch_up_limit(limit: i64) -> Result<i64> {
    if (1..=MAX_CATCH_UP_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(crate::ChatError::invalid(
            "limit",
            format!("between 1 and {MAX_CATCH_UP_LIMIT}"),
        ))
    }
}

impl ChatService {
    /// Messages of a room the actor may view with ids above `after`, oldest first, at
    /// most `limit` (and within the page's byte cap), and whether more follow.
    pub async fn messages_after(
        &self,
        actor: &Principal,
        room: RoomId,
        after: MessageId,
        limit: i64,
    ) -> Result<Page> {
        self.throttle(actor)?;
        let limit = check_catch_up_limit(limit)?;
        let view = self.resolve_room(actor, &super::RoomRef::Id(room)).await?;
        let (messages, has_more) = self.page_after(&view, after, limit).await?;
        Ok(Page {
            room: view,
            messages,
            has_more,
        })
    }

    async fn page_after(
        &self,
        view: &SharedRoom,
        after: MessageId,
        limit: i64,
    ) -> Result<(Vec<MessageView>, bool)> {
        let mut rows = self
            .store
            .messages_after(view.id(), after, limit + 1)
            .await?;
        let fetched = rows.len();
        rows.truncate(limit as usize);
        let rows = cut_page(rows, self.config.caps.page_bytes);
        let has_more = rows.len() < fetched;
        Ok((self.message_views(view, rows).await?, has_more))
    }

    /// The actor's rooms, each with its unread count and last message.
    pub async fn room_summaries(&self, actor: &Principal) -> Result<Vec<RoomSummary>> {
        let rooms = self.rooms(actor).await?;
        let mut out = Vec::with_capacity(rooms.len());
        for room in rooms {
            out.push(self.summary(actor, room).await?);
        }
        Ok(out)
    }

    async fn summary(&self, actor: &Principal, room: SharedRoom) -> Result<RoomSummary> {
        policy::can_view(actor, &room)?;
        let unread = self.unread_in(actor, &room).await?;
        let last_message = match self.store.last_message(room.id()).await? {
            Some(m) => Some(self.one_message_view(&room, m).await?),
            None => None,
        };
        Ok(RoomSummary {
            room,
            unread,
            last_message,
        })
    }

    /// Every room of the actor with what changed after message `since`: new
    /// messages (at most `limit` per room), older messages edited or deleted, the
    /// read marks, the unread count and the last message (see the module docs).
    pub async fn sync(&self, actor: &Principal, since: MessageId, limit: i64) -> Result<Sync> {
        let limit = check_catch_up_limit(limit)?;
        let anchor = self.store.created_at_or_before(since).await?;
        let rooms = self.room_summaries(actor).await?;
        let mut next_since = since;
        let mut out = Vec::with_capacity(rooms.len());
        for summary in rooms {
            let room = summary.room.clone();
            if let Some(last) = &summary.last_message {
                next_since = next_since.max(last.message.id);
            }
            let (messages, has_more) = self.page_after(&room, since, limit).await?;
            let (changed, changed_has_more) = match anchor {
                Some(at) => {
                    let mut rows = self
                        .store
                        .changed_since(room.id(), since, at, MAX_CHANGED_PER_ROOM + 1)
                        .await?;
                    let more = rows.len() > MAX_CHANGED_PER_ROOM as usize;
                    rows.truncate(MAX_CHANGED_PER_ROOM as usize);
                    (self.message_views(&room, rows).await?, more)
                }
                None => (Vec::new(), false),
            };
            out.push(RoomSync {
                summary,
                messages,
                has_more,
                changed,
                changed_has_more,
            });
        }
        Ok(Sync {
            rooms: out,
            next_since,
        })
    }
}
