//! Changes of rooms: creation, renaming, adding and removing members.
//!
//! Invariant: the view a change returns and publishes is the room as committed.
//! Mechanism: after its store call, a change forgets the cached view (also when the
//! call failed, which may still have committed) and reads the room back before it
//! publishes. Consequence: the acknowledgement and every member's event agree, and
//! a removed user is told with the others. Every list a request names is capped and
//! deduplicated before any work is done on it ([`super::Caps`]).

use super::{check_limit, dedup_keep_order, named_ids, ChatService};
use crate::auth::Principal;
use crate::error::ChatError;
use crate::event::{Event, Origin};
use crate::ids::{RoomId, UserId};
use crate::model::*;
use crate::policy;
use crate::store::{NewRoom, StoreResult};
use crate::Result;

/// What kind of room to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomShape {
    /// Direct when there is exactly one other user, else a group.
    Auto,
    /// A direct room of exactly the two given members (admin import).
    Direct,
    Group,
    Project(i64),
}

/// A room to create ([`ChatService::create_room`]).
#[derive(Clone, Debug)]
pub struct CreateRoom {
    /// Explicit id (admin import only).
    pub id: Option<RoomId>,
    pub shape: RoomShape,
    pub title: String,
    /// The other members; the creator is added unless `include_creator` is false.
    pub members: Vec<UserId>,
    pub include_creator: bool,
    pub has_business: bool,
}

impl ChatService {
    async fn check_users_exist(&self, field: &str, ids: &[UserId]) -> Result<()> {
        let found: std::collections::HashSet<UserId> =
            self.store.users(ids).await?.iter().map(|u| u.id).collect();
        for id in ids {
            if !found.contains(id) {
                return Err(ChatError::invalid(
                    field,
                    format!("user {id} does not exist"),
                ));
            }
        }
        Ok(())
    }

    /// Create a room with the actor (unless told otherwise) and `members`.
    pub async fn create_room(
        &self,
        actor: &Principal,
        cmd: CreateRoom,
        origin: Option<Origin>,
    ) -> Result<SharedRoom> {
        self.throttle(actor)?;
        check_title(&cmd.title)?;
        check_limit(
            "users",
            cmd.members.len(),
            self.config.caps.users_per_request,
        )?;
        let mut members: Vec<UserId> = Vec::with_capacity(cmd.members.len() + 1);
        if cmd.include_creator {
            members.push(actor.id());
        }
        members.extend_from_slice(&cmd.members);
        let members = dedup_keep_order(&members);
        check_limit("room", members.len(), self.config.caps.room_members)?;
        self.check_users_exist("users", &members).await?;
        let others: Vec<UserId> = members
            .iter()
            .copied()
            .filter(|m| *m != actor.id())
            .collect();
        let kind = match cmd.shape {
            RoomShape::Auto if cmd.include_creator && others.len() == 1 => {
                RoomKind::direct(actor.id(), others[0]).expect("distinct users")
            }
            RoomShape::Auto | RoomShape::Group => {
                if members.is_empty() || (cmd.include_creator && others.is_empty()) {
                    return Err(ChatError::invalid(
                        "users",
                        "a chat needs at least one other user",
                    ));
                }
                RoomKind::Group
            }
            RoomShape::Direct => match members.as_slice() {
                [a, b] => RoomKind::direct(*a, *b).expect("deduplicated members are distinct"),
                _ => {
                    return Err(ChatError::invalid(
                        "members",
                        "a direct chat has exactly two users",
                    ))
                }
            },
            RoomShape::Project(project_id) => RoomKind::Project { project_id },
        };
        if matches!(kind, RoomKind::Project { .. })
            || cmd.has_business
            || cmd.id.is_some()
            || !cmd.include_creator
        {
            policy::require_admin(actor)?;
        }
        let new = NewRoom {
            id: cmd.id,
            kind,
            title: cmd.title,
            has_business: cmd.has_business,
            created_by: Some(actor.id()),
            members,
        };
        let room = self.store.create_room(&new).await?;
        self.room_created(actor, room, origin).await
    }

    /// Load a room `actor` just created and tell its members.
    pub(super) async fn room_created(
        &self,
        actor: &Principal,
        room: Room,
        origin: Option<Origin>,
    ) -> Result<SharedRoom> {
        let view = self.room_view(room).await?;
        self.publish_to_members(
            Event::RoomCreated {
                room: view.clone(),
                by: actor.id(),
            },
            origin,
        )
        .await;
        Ok(view)
    }

    pub async fn rename_room(
        &self,
        actor: &Principal,
        room: RoomId,
        title: &str,
        origin: Option<Origin>,
    ) -> Result<SharedRoom> {
        self.throttle(actor)?;
        check_title(title)?;
        let view = self.room_by_id(room).await?;
        policy::can_update_room(actor, &view)?;
        let renamed = self.store.set_room_title(room, title).await;
        self.rooms.views.forget(&room);
        let view = self.room_view(renamed?).await?;
        self.publish_to_members(
            Event::RoomUpdated {
                room: view.clone(),
                by: actor.id(),
            },
            origin,
        )
        .await;
        Ok(view)
    }

    /// The start of a membership change: counted against the actor's rate, the users
    /// it names checked (at least one, within [`super::Caps::users_per_request`], each
    /// once), the room loaded.
    async fn start_member_change(
        &self,
        actor: &Principal,
        room: RoomId,
        users: &[UserId],
    ) -> Result<(Vec<UserId>, SharedRoom)> {
        self.throttle(actor)?;
        let users = named_ids("users", "user", users, self.config.caps.users_per_request)?;
        Ok((users, self.room_by_id(room).await?))
    }

    /// After a store call that changed (or may have changed, even when it failed)
    /// the members of `room`: forget the cached view, then the call's result and the
    /// room as it is now.
    async fn reload_after<T>(
        &self,
        room: RoomId,
        changed: StoreResult<T>,
    ) -> Result<(T, SharedRoom)> {
        self.rooms.views.forget(&room);
        let changed = changed?;
        Ok((changed, self.room_by_id(room).await?))
    }

    /// Add users; returns the room after the change and who was actually added.
    pub async fn add_members(
        &self,
        actor: &Principal,
        room: RoomId,
        users: &[UserId],
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Vec<UserId>)> {
        let (users, view) = self.start_member_change(actor, room, users).await?;
        let users = &users[..];
        policy::can_add_members(actor, &view)?;
        let joining = users.iter().filter(|u| !view.is_member(**u)).count();
        check_limit(
            "room",
            view.member_ids().len() + joining,
            self.config.caps.room_members,
        )?;
        self.check_users_exist("users", users).await?;
        let changed = self.store.add_members(room, users).await;
        let (added, after) = self.reload_after(room, changed).await?;
        // An admin who is not a member is told too (its other connections), as when
        // removing.
        let mut recipients = after.member_ids();
        if !after.is_member(actor.id()) {
            recipients.push(actor.id());
        }
        let by = actor.id();
        let event = |room, users| Event::MembersAdded { room, users, by };
        Ok(self
            .publish_changed(after, added, Some(&recipients), event, origin)
            .await)
    }

    /// Remove users; returns the room after the change and who was actually removed.
    /// The removed users are told too.
    pub async fn remove_members(
        &self,
        actor: &Principal,
        room: RoomId,
        users: &[UserId],
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Vec<UserId>)> {
        let (users, view) = self.start_member_change(actor, room, users).await?;
        let users = &users[..];
        policy::can_remove_members(actor, &view, users)?;
        let changed = self.store.remove_members(room, users).await;
        let (removed, after) = self.reload_after(room, changed).await?;
        // The removed users are no longer members of `after`: told with the others.
        let mut recipients = view.member_ids();
        recipients.push(actor.id());
        let by = actor.id();
        let event = |room, users| Event::MembersRemoved { room, users, by };
        Ok(self
            .publish_changed(after, removed, Some(&recipients), event, origin)
            .await)
    }
}

impl ChatService {
    /// Delete a room with its messages (admins); its members are told. Returns the
    /// room as it was.
    pub async fn delete_room(
        &self,
        actor: &Principal,
        room: RoomId,
        origin: Option<Origin>,
    ) -> Result<SharedRoom> {
        self.throttle(actor)?;
        policy::can_delete_room(actor)?;
        // The members as committed, not as cached: they are the recipients.
        self.rooms.views.forget(&room);
        let view = self.room_by_id(room).await?;
        let deleted = self.store.delete_room(room).await;
        self.forget_room(&view);
        if !deleted? {
            return Err(ChatError::not_found("chat"));
        }
        let recipients = view.member_ids();
        self.publish(
            &recipients,
            Event::RoomDeleted {
                room: view.clone(),
                by: actor.id(),
            },
            origin,
        )
        .await;
        Ok(view)
    }

    /// Forget everything cached of a deleted room.
    pub(super) fn forget_room(&self, view: &RoomView) {
        self.rooms.forget_room(&view.room);
    }
}

/// A room title within 255 characters.
fn check_title(title: &str) -> Result<()> {
    if title.chars().count() > 255 {
        return Err(ChatError::invalid("title", "at most 255 characters"));
    }
    Ok(())
}
