//! Events that come through the cluster broker, turned back into this node's events.
//!
//! Invariant: an event delivered here carries the room as this node sees it after
//! the change the event reports. Mechanism: an envelope names its room by id only;
//! when its kind changes the room ([`Remote::changes_room`]) the cached view is
//! forgotten first, then the room is loaded through the cache. Consequence: every
//! node's room cache follows every node's writes, and no event shows a member list or
//! read mark from before the change it announces (see [`crate::cluster`]).

use super::ChatService;
use crate::cluster::{Envelope, Remote};
use crate::error::ChatError;
use crate::event::{Event, Published};
use crate::model::*;
use crate::Result;
use std::sync::Arc;

impl ChatService {
    /// Deliver an event that came through the cluster broker (from another node, or
    /// from this one when it was not kept in memory) to this node's connections.
    /// `message`: the committed row of a new message's event.
    pub async fn deliver(&self, envelope: Envelope, message: Option<Message>) -> Result<()> {
        let Envelope {
            room,
            to,
            origin,
            what,
        } = envelope;
        let origin = origin.map(crate::cluster::WireOrigin::into_origin);
        let view = match room {
            Some(id) => {
                if what.changes_room() {
                    self.rooms.views.forget(&id);
                }
                Some(self.room_by_id(id).await?)
            }
            None => None,
        };
        let needs_room = || ChatError::Storage("a room event without its room".into());
        let event = match what {
            Remote::ProfilesChanged => {
                self.forget_profiles();
                return Ok(());
            }
            Remote::PresenceOf { user, online } => {
                if !online {
                    self.lock_waiting().retain(|(who, _)| *who != user);
                }
                if self.hub.connection_count() == 0 {
                    return Ok(());
                }
                let Some(user) = self.store.user(user).await? else {
                    return Ok(());
                };
                let contacts = self.store.contacts(user.id).await?;
                self.presence_to_hub(&contacts, user, online);
                return Ok(());
            }
            Remote::RoomDeleted { room, by } => {
                self.forget_room(&room);
                Event::RoomDeleted {
                    room: Arc::new(*room),
                    by,
                }
            }
            Remote::Presence { user, online } => Event::Presence {
                user: *user,
                online,
            },
            Remote::Attention { user, waiting } => {
                for peer in to.iter().flatten() {
                    self.note_waiting(user.id, *peer, waiting);
                }
                Event::Attention {
                    user: *user,
                    waiting,
                }
            }
            what => {
                let room = view.clone().ok_or_else(needs_room)?;
                match what {
                    Remote::RoomCreated { by } => Event::RoomCreated { room, by },
                    Remote::RoomUpdated { by } => Event::RoomUpdated { room, by },
                    Remote::MembersAdded { users, by } => Event::MembersAdded { room, users, by },
                    Remote::MembersRemoved { users, by } => {
                        Event::MembersRemoved { room, users, by }
                    }
                    Remote::MessageCreated { message: sent } => {
                        let message = match (sent, message) {
                            (Some(view), _) => Arc::new(*view),
                            (None, Some(row)) => Arc::new(self.one_message_view(&room, row).await?),
                            (None, None) => return Ok(()),
                        };
                        Event::MessageCreated { room, message }
                    }
                    Remote::MessageEdited { message } => Event::MessageEdited {
                        room,
                        message: Arc::new(*message),
                    },
                    Remote::MessagesDeleted { ids, by } => Event::MessagesDeleted { room, ids, by },
                    Remote::MessagesRead {
                        reader,
                        up_to,
                        newly_read,
                    } => Event::MessagesRead {
                        room,
                        reader,
                        up_to,
                        newly_read,
                    },
                    Remote::Typing { user, until } => Event::Typing {
                        room,
                        user: *user,
                        until,
                    },
                    Remote::ProfilesChanged
                    | Remote::PresenceOf { .. }
                    | Remote::Presence { .. }
                    | Remote::RoomDeleted { .. }
                    | Remote::Attention { .. } => unreachable!("handled above"),
                }
            }
        };
        let recipients = match (to, &view) {
            (Some(to), _) => to,
            (None, Some(view)) => view.member_ids(),
            (None, None) => Vec::new(),
        };
        self.hub
            .publish(&recipients, Arc::new(Published::new(event, origin)));
        Ok(())
    }
}
