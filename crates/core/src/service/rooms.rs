//! Rooms as the service hands them out: lookup by id, project or direct pair (a
//! direct room is created on first use), the rooms of a user, watching a room.
//!
//! Invariant: a room view handed out reflects every change this service committed to
//! the room, and a lookup for an actor returns only a room the actor may view.
//! Mechanism: views come from the room cache ([`crate::cache`]), which every command
//! that changes a room empties of that room first (see `room_changes`), and every
//! lookup for an actor ends in [`crate::policy::can_view`]. Consequence: a stale or
//! foreign room is never served. A direct room is unique per pair: two connections
//! creating the same pair at once end in the one room the store kept.

use super::ChatService;
use crate::auth::Principal;
use crate::error::ChatError;
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

    /// The direct or project room with this key, if there is one (its id from the
    /// room cache once seen: a room's key never changes).
    async fn room_by_kind(&self, kind: &RoomKind) -> Result<Option<SharedRoom>> {
        if let Some(id) = self.rooms.id_of(kind) {
            return self.room_by_id(id).await.map(Some);
        }
        match self.store.room_by_kind(kind).await? {
            Some(room) => self.room_view(room).await.map(Some),
            None => Ok(None),
        }
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
            RoomRef::Project(pid) => self
                .room_by_kind(&RoomKind::Project { project_id: *pid })
                .await?
                .ok_or(ChatError::not_found("project chat"))?,
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
        if let Some(view) = self.room_by_kind(&kind).await? {
            return Ok(view);
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
            Ok(room) => self.room_created(actor, room, None).await,
            // Lost a race with another connection creating the same pair: use theirs.
            Err(crate::StoreError::DuplicateRoom(id)) => self.room_by_id(id).await,
            Err(e) => Err(e.into()),
        }
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
