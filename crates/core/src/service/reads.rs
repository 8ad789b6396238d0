//! Read marks and unread counts.
//!
//! Invariant: a reader's mark only moves forward, and a read event is published
//! exactly when it moved. Mechanism: the store advances the mark atomically and
//! returns the previous one; only then are the messages between the two marks that
//! no other member had read counted as newly read. Consequence: repeating a read
//! costs nothing and tells nobody, and "read" ticks appear once per message.

use super::rooms::RoomRef;
use super::ChatService;
use crate::auth::Principal;
use crate::error::ChatError;
use crate::event::{Event, Origin};
use crate::ids::MessageId;
use crate::model::*;
use crate::policy;
use crate::Result;

/// The result of a read command.
#[derive(Clone, Debug)]
pub struct ReadOutcome {
    pub room: SharedRoom,
    pub up_to: Option<MessageId>,
    /// Whether the reader's watermark moved (and an event was published).
    pub moved: bool,
    /// Messages of other authors that became read by this command.
    pub newly_read: Vec<MessageId>,
}

impl ReadOutcome {
    /// A read that left the watermark where it was (and published nothing).
    fn unmoved(room: SharedRoom, up_to: Option<MessageId>) -> Self {
        ReadOutcome {
            room,
            up_to,
            moved: false,
            newly_read: Vec::new(),
        }
    }
}

impl ChatService {
    /// Mark a room read up to a message (or to its newest message).
    pub async fn mark_read(
        &self,
        actor: &Principal,
        room: &RoomRef,
        up_to: Option<MessageId>,
        origin: Option<Origin>,
    ) -> Result<ReadOutcome> {
        self.throttle(actor)?;
        let view = self.find_room(actor, room).await?;
        if !view.is_member(actor.id()) {
            return Err(ChatError::forbidden("only members have a read state"));
        }
        let up_to = match up_to {
            Some(id) => {
                let m = self.message_in(id, Some(view.id())).await?;
                Some(m.id)
            }
            None => self.store.last_message(view.id()).await?.map(|m| m.id),
        };
        let Some(up_to) = up_to else {
            return Ok(ReadOutcome::unmoved(view, None));
        };
        let advanced = self.store.advance_read(view.id(), actor.id(), up_to).await;
        self.rooms.views.forget(&view.id());
        let Some(previous) = advanced? else {
            return Ok(ReadOutcome::unmoved(view, Some(up_to)));
        };
        // Messages that were unread by everyone but their author and now are read.
        let candidates = self
            .store
            .messages_read_between(view.id(), actor.id(), previous, up_to)
            .await?;
        let newly_read: Vec<MessageId> = candidates
            .into_iter()
            .filter(|(id, author)| {
                // Already read when a member other than the reader and the author had
                // read past it before.
                !view
                    .watermarks
                    .iter()
                    .any(|(u, w)| *u != actor.id() && *u != *author && w.is_some_and(|w| w >= *id))
            })
            .map(|(id, _)| id)
            .collect();
        let after = self.room_by_id(view.id()).await?;
        self.publish_to_members(
            Event::MessagesRead {
                room: after.clone(),
                reader: actor.id(),
                up_to,
                newly_read: newly_read.clone(),
            },
            origin,
        )
        .await;
        Ok(ReadOutcome {
            room: after,
            up_to: Some(up_to),
            moved: true,
            newly_read,
        })
    }

    /// Mark read up to a message, wherever it is (for a dialect whose read request
    /// names only the message).
    pub async fn mark_read_message(
        &self,
        actor: &Principal,
        id: MessageId,
        origin: Option<Origin>,
    ) -> Result<ReadOutcome> {
        // Counted once, by `mark_read`.
        let msg = self
            .store
            .message(id)
            .await?
            .ok_or(ChatError::not_found("message"))?;
        self.mark_read(actor, &RoomRef::Id(msg.room_id), Some(id), origin)
            .await
    }

    /// Number of live messages by others after the actor's read mark in `room`.
    pub async fn unread_in(&self, actor: &Principal, room: &RoomView) -> Result<i64> {
        Ok(self.unread_through(actor, room).await?.0)
    }

    /// [`Self::unread_in`], and the newest message id the count accounts for: the
    /// newest unread message or the read mark, whichever is later (see
    /// [`crate::unread::UnreadTracker`]).
    pub async fn unread_through(
        &self,
        actor: &Principal,
        room: &RoomView,
    ) -> Result<(i64, Option<MessageId>)> {
        policy::can_view(actor, room)?;
        let mark = room.watermark(actor.id());
        let unread = self.store.unread_count(room.id(), actor.id(), mark).await?;
        Ok((unread.count, unread.newest.max(mark)))
    }
}
