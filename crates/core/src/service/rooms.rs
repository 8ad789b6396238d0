//! Rooms: lookup, direct rooms on first use, creation, renaming and membership.
//!
//! Invariant: a room view handed out reflects every change this service committed to
//! the room. Mechanism: a command that changes a room's title or members forgets the
//! cached view after its store call (also when the call failed, which may still have
//! committed) and reads the view back before publishing it. Consequence: members see
//! the room as committed, and the acknowledgement and the event agree. A direct room
//! is unique per pair: two connections creating the same pair at once end in the one
//! room the store kept.

use super::{cap_list, dedup_keep_order, ChatService};
use crate::auth::Principal;
use crate::error::ChatError;
use crate::event::{Event, Origin};
use crate::hub::Subscription;
use crate::ids::{RoomId, UserId};
use crate::model::*;
use crate::policy;
use crate::store::NewRoom;
use crate::Result;
use std::collections::HashMap;
use std::sync::Arc;

/// How a request names a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomRef {
    /// By id.
    Id(RoomId),
    /// The direct room of two users (the legacy `"<low>_<high>"` direct key); the
    /// caller must be one of them. Created on first use.
    DirectPair(UserId, UserId),
    /// The caller's direct room with this user. Created on first use.
    DirectWith(UserId),
    /// The project room of this project id.
    Project(i64),
}

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
    /// Load a room with its members (from the room cache when the room row is the
    /// one cached, see [`crate::cache`]).
    pub async fn room_view(&self, room: Room) -> Result<SharedRoom> {
        if let Some(view) = self.rooms.get(&room) {
            return Ok(view);
        }
        self.rooms.remember_key(&room);
        let generation = self.rooms.views.generation();
        let members = self.store.members(room.id).await?;
        let ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
        let order: HashMap<UserId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut users = self.store.users(&ids).await?;
        users.sort_by_key(|u| order.get(&u.id).copied());
        let view = Arc::new(RoomView {
            room,
            members: users,
            watermarks: members.iter().map(|m| (m.user_id, m.last_read)).collect(),
        });
        self.rooms.views.put(generation, view.id(), view.clone());
        Ok(view)
    }

    pub(super) async fn room_by_id(&self, id: RoomId) -> Result<SharedRoom> {
        if let Some(view) = self.rooms.get_by_id(id) {
            return Ok(view);
        }
        let room = self
            .store
            .room(id)
            .await?
            .ok_or(ChatError::not_found("chat"))?;
        self.room_view(room).await
    }

    /// Resolve a room reference for `actor`; direct rooms are created on first use.
    /// Checks that the actor may view it.
    pub async fn resolve_room(&self, actor: &Principal, r: &RoomRef) -> Result<SharedRoom> {
        self.lookup_room(actor, r, true).await
    }

    /// Like [`Self::resolve_room`], but a direct room that does not exist yet is "not
    /// found" instead of created: for commands about messages that cannot exist there.
    pub async fn find_room(&self, actor: &Principal, r: &RoomRef) -> Result<SharedRoom> {
        self.lookup_room(actor, r, false).await
    }

    async fn lookup_room(
        &self,
        actor: &Principal,
        r: &RoomRef,
        create: bool,
    ) -> Result<SharedRoom> {
        let view = match r {
            RoomRef::Id(id) => self.room_by_id(*id).await?,
            RoomRef::Project(pid) => {
                let kind = RoomKind::Project { project_id: *pid };
                match self.rooms.id_of(&kind) {
                    Some(id) => self.room_by_id(id).await?,
                    None => {
                        let room = self
                            .store
                            .room_by_kind(&kind)
                            .await?
                            .ok_or(ChatError::not_found("project chat"))?;
                        self.room_view(room).await?
                    }
                }
            }
            RoomRef::DirectPair(a, b) => {
                if *a >= *b {
                    return Err(ChatError::invalid(
                        "chat_id",
                        "a direct chat id is \"<low>_<high>\" with the smaller user id first",
                    ));
                }
                if actor.id() != *a && actor.id() != *b {
                    return Err(ChatError::forbidden(
                        "you are not one of the two users of this direct chat",
                    ));
                }
                let peer = if actor.id() == *a { *b } else { *a };
                self.direct_room_of(actor, peer, create).await?
            }
            RoomRef::DirectWith(peer) => self.direct_room_of(actor, *peer, create).await?,
        };
        policy::can_view(actor, &view)?;
        Ok(view)
    }

    /// The direct room of `actor` and `peer`, created when missing.
    pub async fn direct_room(&self, actor: &Principal, peer: UserId) -> Result<SharedRoom> {
        self.throttle(actor)?;
        self.direct_room_of(actor, peer, true).await
    }

    async fn direct_room_of(
        &self,
        actor: &Principal,
        peer: UserId,
        create: bool,
    ) -> Result<SharedRoom> {
        let kind = RoomKind::direct(actor.id(), peer)
            .ok_or_else(|| ChatError::invalid("user", "a direct chat needs another user"))?;
        if let Some(id) = self.rooms.id_of(&kind) {
            return self.room_by_id(id).await;
        }
        if let Some(room) = self.store.room_by_kind(&kind).await? {
            return self.room_view(room).await;
        }
        if !create {
            return Err(ChatError::not_found("chat"));
        }
        if self.store.user(peer).await?.is_none() {
            return Err(ChatError::not_found("user"));
        }
        let new = NewRoom {
            id: None,
            kind: kind.clone(),
            title: String::new(),
            has_business: false,
            created_by: Some(actor.id()),
            members: vec![actor.id(), peer],
        };
        match self.store.create_room(&new).await {
            Ok(room) => {
                let view = self.room_view(room).await?;
                self.publish(
                    &view.member_ids(),
                    Event::RoomCreated {
                        room: view.clone(),
                        by: actor.id(),
                    },
                    None,
                )
                .await;
                Ok(view)
            }
            // Lost a race with another connection creating the same pair: use theirs.
            Err(crate::StoreError::DuplicateRoom(id)) => self.room_by_id(id).await,
            Err(e) => Err(e.into()),
        }
    }

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
        if cmd.title.chars().count() > 255 {
            return Err(ChatError::invalid("title", "at most 255 characters"));
        }
        cap_list(
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
        cap_list("room", members.len(), self.config.caps.room_members)?;
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
        let view = self.room_view(room).await?;
        self.publish(
            &view.member_ids(),
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
        if title.chars().count() > 255 {
            return Err(ChatError::invalid("title", "at most 255 characters"));
        }
        let view = self.room_by_id(room).await?;
        policy::can_update_room(actor, &view)?;
        let renamed = self.store.set_room_title(room, title).await;
        self.rooms.views.forget(&room);
        let view = self.room_view(renamed?).await?;
        self.publish(
            &view.member_ids(),
            Event::RoomUpdated {
                room: view.clone(),
                by: actor.id(),
            },
            origin,
        )
        .await;
        Ok(view)
    }

    /// Add users; returns the room after the change and who was actually added.
    pub async fn add_members(
        &self,
        actor: &Principal,
        room: RoomId,
        users: &[UserId],
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Vec<UserId>)> {
        self.throttle(actor)?;
        if users.is_empty() {
            return Err(ChatError::invalid("users", "give at least one user"));
        }
        cap_list("users", users.len(), self.config.caps.users_per_request)?;
        let users = &dedup_keep_order(users)[..];
        let view = self.room_by_id(room).await?;
        policy::can_add_members(actor, &view)?;
        let joining = users.iter().filter(|u| !view.is_member(**u)).count();
        cap_list(
            "room",
            view.member_ids().len() + joining,
            self.config.caps.room_members,
        )?;
        self.check_users_exist("users", users).await?;
        let added = self.store.add_members(room, users).await;
        self.rooms.views.forget(&room);
        let added = added?;
        let after = self.room_by_id(room).await?;
        if !added.is_empty() {
            self.publish(
                &after.member_ids(),
                Event::MembersAdded {
                    room: after.clone(),
                    users: added.clone(),
                    by: actor.id(),
                },
                origin,
            )
            .await;
        }
        Ok((after, added))
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
        self.throttle(actor)?;
        if users.is_empty() {
            return Err(ChatError::invalid("users", "give at least one user"));
        }
        cap_list("users", users.len(), self.config.caps.users_per_request)?;
        let users = &dedup_keep_order(users)[..];
        let view = self.room_by_id(room).await?;
        policy::can_remove_members(actor, &view, users)?;
        let removed = self.store.remove_members(room, users).await;
        self.rooms.views.forget(&room);
        let removed = removed?;
        let after = self.room_by_id(room).await?;
        if !removed.is_empty() {
            let mut recipients = view.member_ids();
            recipients.push(actor.id());
            self.publish(
                &recipients,
                Event::MembersRemoved {
                    room: after.clone(),
                    users: removed.clone(),
                    by: actor.id(),
                },
                origin,
            )
            .await;
        }
        Ok((after, removed))
    }

    /// Rooms the actor belongs to; moderators see every room.
    pub async fn rooms(&self, actor: &Principal) -> Result<Vec<SharedRoom>> {
        self.throttle(actor)?;
        let rooms = if actor.moderator {
            self.store.all_rooms().await?
        } else {
            self.store.rooms_of(actor.id()).await?
        };
        let mut out = Vec::with_capacity(rooms.len());
        for r in rooms {
            out.push(self.room_view(r).await?);
        }
        Ok(out)
    }

    /// Let the actor's connection receive the events of a room it may view but is not a
    /// member of (a moderator), or stop with `None`.
    pub async fn watch_room(
        &self,
        actor: &Principal,
        sub: &Subscription,
        room: Option<RoomId>,
    ) -> Result<()> {
        self.throttle(actor)?;
        if let Some(id) = room {
            let view = self.resolve_room(actor, &RoomRef::Id(id)).await?;
            if view.is_member(actor.id()) {
                self.hub.watch(sub, None);
                return Ok(());
            }
        }
        self.hub.watch(sub, room);
        Ok(())
    }

    /// One room, if the actor may view it.
    pub async fn room(&self, actor: &Principal, room: RoomId) -> Result<SharedRoom> {
        self.throttle(actor)?;
        self.resolve_room(actor, &RoomRef::Id(room)).await
    }
}
