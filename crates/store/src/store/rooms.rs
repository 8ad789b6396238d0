//! Rooms: creation, lookup by id or by unique key, titles.
//!
//! **Invariant: at most one direct room per pair of users and one room per project.**
//! The unique key (`direct_key` or `project_id`) is checked inside the creating
//! transaction and enforced by a unique index; a creation that loses a race with
//! another one of the same key meets the index, and the store then reports the
//! winner's room as [`StoreError::DuplicateRoom`], committed by then. So callers
//! never see two rooms for one key, and "create or find" needs no lock of its own.

use super::ids::{reserve_id, IdTable};
use crate::db::Db;
use crate::error::Fail;
use crate::query::{
    dedup_keep_order, key_exists, lock_row, on_both_backends, row_by_key, with_conn, with_tx,
};
use crate::rows::{direct_key, now_micros, NewMemberRow, NewRoomRow, RoomRow};
use crate::schema::{members, rooms};
use chat_core::store::{NewRoom, StoreResult};
use chat_core::{Room, RoomId, RoomKind, StoreError, UserId};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// The unique key of a direct or project room.
#[derive(Clone, Debug)]
pub(super) enum RoomKey {
    Direct(String),
    Project(i64),
}

pub(super) fn room_key(kind: &RoomKind) -> Option<RoomKey> {
    match kind {
        RoomKind::Direct { low, high } => Some(RoomKey::Direct(direct_key(*low, *high))),
        RoomKind::Project { project_id } => Some(RoomKey::Project(*project_id)),
        RoomKind::Group => None,
    }
}

/// Room queries other operations run inside their own connection or transaction.
pub(super) trait RoomConn {
    /// The room holding a unique key.
    async fn room_by_key(&mut self, key: &RoomKey) -> Result<Option<RoomRow>, Fail>;

    /// Lock a room's row until commit (a no-op update: the one row lock both
    /// backends express in the same SQL). Fails with "room not found" when it does
    /// not exist.
    async fn lock_room(&mut self, room: i64) -> Result<(), Fail>;

    /// Insert memberships, one statement each: diesel-async cannot send a multi-row
    /// insert to SQLite, and rooms gain few members at a time.
    async fn insert_members(&mut self, rows: &[NewMemberRow]) -> Result<(), Fail>;
}

on_both_backends! {
    impl RoomConn {
        async fn room_by_key(&mut self, key: &RoomKey) -> Result<Option<RoomRow>, Fail> {
            let query = rooms::table.select(RoomRow::as_select());
            let row = match key {
                RoomKey::Direct(k) => {
                    query
                        .filter(rooms::direct_key.eq(k))
                        .first::<RoomRow>(self)
                        .await
                }
                RoomKey::Project(p) => {
                    query
                        .filter(rooms::project_id.eq(*p))
                        .first::<RoomRow>(self)
                        .await
                }
            };
            Ok(row.optional()?)
        }

        async fn lock_room(&mut self, room: i64) -> Result<(), Fail> {
            lock_row!(self, rooms::table.find(room), rooms::kind, "room")
        }

        async fn insert_members(&mut self, rows: &[NewMemberRow]) -> Result<(), Fail> {
            for member in rows {
                diesel::insert_into(members::table)
                    .values(member)
                    .execute(&mut *self)
                    .await?;
            }
            Ok(())
        }
    }
}

/// Memberships of `users` (deduplicated, in order) joining `room` at `now`, with
/// join sequence numbers from `first_seq` on.
pub(super) fn new_members(
    room: i64,
    users: impl IntoIterator<Item = i64>,
    first_seq: i64,
    now: i64,
) -> Vec<NewMemberRow> {
    users
        .into_iter()
        .zip(first_seq..)
        .map(|(user_id, join_seq)| NewMemberRow {
            room_id: room,
            user_id,
            join_seq,
            joined_at: now,
        })
        .collect()
}

pub(super) async fn create(db: &Db, room: &NewRoom) -> StoreResult<Room> {
    let new = room.clone();
    let key = room_key(&new.kind);
    let key_in_tx = key.clone();
    if let Some(id) = new.id {
        reserve_id(db, IdTable::Rooms, id.0).await?;
    }
    let created = with_tx!(db, |conn| {
        if let Some(key) = &key_in_tx {
            if let Some(existing) = conn.room_by_key(key).await? {
                return Err(StoreError::DuplicateRoom(RoomId(existing.id)).into());
            }
        }
        if let Some(id) = new.id {
            if key_exists!(conn, rooms::table, rooms::id, id.0)? {
                return Err(Fail::conflict(format!("room {id} exists already")));
            }
        }
        let now = now_micros();
        let (direct, project) = match &key_in_tx {
            Some(RoomKey::Direct(k)) => (Some(k.clone()), None),
            Some(RoomKey::Project(p)) => (None, Some(*p)),
            None => (None, None),
        };
        let row = diesel::insert_into(rooms::table)
            .values(NewRoomRow {
                id: new.id.map(|i| i.0),
                kind: new.kind.name(),
                direct_key: direct,
                project_id: project,
                title: &new.title,
                has_business: new.has_business,
                created_by: new.created_by.map(|u| u.0),
                created_at: now,
                updated_at: now,
            })
            .returning(RoomRow::as_returning())
            .get_result::<RoomRow>(conn)
            .await?;
        let members = new_members(
            row.id,
            dedup_keep_order(new.members.iter().map(|u| u.0)),
            1,
            now,
        );
        conn.insert_members(&members).await?;
        row.into_room()
    });
    match created {
        Ok(room) => Ok(room),
        // Lost a race with a concurrent creation of the same key: report theirs,
        // which is committed by the time the violation is reported.
        Err(fail) if fail.is_unique_violation() => {
            let existing = match key {
                Some(key) => with_conn!(db, read, |conn| conn.room_by_key(&key).await)?,
                None => None,
            };
            match existing {
                Some(existing) => Err(StoreError::DuplicateRoom(RoomId(existing.id))),
                None => Err(fail.into_store_error()),
            }
        }
        Err(fail) if fail.is_foreign_key_violation() => Err(StoreError::NotFound("user")),
        Err(fail) => Err(fail.into_store_error()),
    }
}

pub(super) async fn by_id(db: &Db, id: RoomId) -> StoreResult<Option<Room>> {
    with_conn!(db, read, |conn| {
        let row = row_by_key!(conn, rooms::table, id.0, RoomRow)?;
        row.map(RoomRow::into_room).transpose()
    })
}

pub(super) async fn by_kind(db: &Db, kind: &RoomKind) -> StoreResult<Option<Room>> {
    // A group has no key: there is no "the" group room to find.
    let Some(key) = room_key(kind) else {
        return Ok(None);
    };
    with_conn!(db, read, |conn| {
        let row = conn.room_by_key(&key).await?;
        row.map(RoomRow::into_room).transpose()
    })
}

pub(super) async fn set_title(db: &Db, id: RoomId, title: &str) -> StoreResult<Room> {
    let title = title.to_owned();
    with_conn!(db, write, |conn| {
        let row = diesel::update(rooms::table.find(id.0))
            .set((rooms::title.eq(&title), rooms::updated_at.eq(now_micros())))
            .returning(RoomRow::as_returning())
            .get_result::<RoomRow>(conn)
            .await
            .optional()?;
        row.ok_or(Fail::not_found("room"))?.into_room()
    })
}

/// The rooms `user` is a member of, or every room, by id.
pub(super) async fn list(db: &Db, of: Option<UserId>) -> StoreResult<Vec<Room>> {
    with_conn!(db, read, |conn| {
        let rows = match of {
            Some(user) => {
                rooms::table
                    .filter(
                        rooms::id.eq_any(
                            members::table
                                .filter(members::user_id.eq(user.0))
                                .select(members::room_id),
                        ),
                    )
                    .order(rooms::id)
                    .select(RoomRow::as_select())
                    .load::<RoomRow>(conn)
                    .await?
            }
            None => {
                rooms::table
                    .order(rooms::id)
                    .select(RoomRow::as_select())
                    .load::<RoomRow>(conn)
                    .await?
            }
        };
        rows.into_iter().map(RoomRow::into_room).collect()
    })
}

/// Delete a room; its memberships and messages go with it (the schema's cascades),
/// and its messages' attachments become unattached uploads, which the upload sweep
/// deletes. Whether the room existed.
pub(super) async fn delete(db: &Db, id: RoomId) -> StoreResult<bool> {
    with_tx!(db, |conn| {
        let gone = diesel::delete(rooms::table.find(id.0))
            .execute(conn)
            .await?;
        Ok(gone > 0)
    })
    .map_err(Fail::into_store_error)
}
