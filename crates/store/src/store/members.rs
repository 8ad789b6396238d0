//! Memberships: who is in a room, joining and leaving, contacts.
//!
//! **Invariant: members of a room keep the order they joined in.** Each membership
//! takes the room's next join sequence number while the room's row is locked
//! ([`RoomConn::lock_room`]), so concurrent joins of one room number themselves in
//! turn and listings (`ORDER BY join_seq`) are stable across calls and nodes.

use super::rooms::{new_members, RoomConn};
use crate::db::Db;
use crate::error::Fail;
use crate::query::{dedup_keep_order, row_by_key, with_conn, with_tx, CHUNK};
use crate::rows::{now_micros, MemberRow};
use crate::schema::members;
use chat_core::store::StoreResult;
use chat_core::{Member, RoomId, StoreError, UserId};
use diesel::dsl::max;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::HashSet;

pub(super) async fn of_room(db: &Db, room: RoomId) -> StoreResult<Vec<Member>> {
    with_conn!(db, read, |conn| {
        members::table
            .filter(members::room_id.eq(room.0))
            .order((members::join_seq, members::user_id))
            .select(MemberRow::as_select())
            .load::<MemberRow>(conn)
            .await?
            .into_iter()
            .map(MemberRow::into_member)
            .collect()
    })
}

pub(super) async fn one(db: &Db, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
    with_conn!(db, read, |conn| {
        let row = row_by_key!(conn, members::table, (room.0, user.0), MemberRow)?;
        row.map(MemberRow::into_member).transpose()
    })
}

/// Add the users who are not members yet; returns them, in the order given.
pub(super) async fn add(db: &Db, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
    let wanted = dedup_keep_order(users.iter().map(|u| u.0));
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let added = with_tx!(db, |conn| {
        conn.lock_room(room.0).await?;
        let mut present: HashSet<i64> = HashSet::new();
        for chunk in wanted.chunks(CHUNK) {
            let part = members::table
                .filter(members::room_id.eq(room.0))
                .filter(members::user_id.eq_any(chunk))
                .select(members::user_id)
                .load::<i64>(conn)
                .await?;
            present.extend(part);
        }
        let fresh: Vec<i64> = wanted
            .into_iter()
            .filter(|u| !present.contains(u))
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let last_seq = members::table
            .filter(members::room_id.eq(room.0))
            .select(max(members::join_seq))
            .first::<Option<i64>>(conn)
            .await?
            .unwrap_or(0);
        let rows = new_members(room.0, fresh.iter().copied(), last_seq + 1, now_micros());
        conn.insert_members(&rows).await?;
        Ok(fresh.into_iter().map(UserId).collect())
    });
    match added {
        Err(fail) if fail.is_foreign_key_violation() => Err(StoreError::NotFound("user")),
        other => other.map_err(Fail::into_store_error),
    }
}

/// Remove the users who are members; returns them, in the order given.
pub(super) async fn remove(db: &Db, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
    let wanted = dedup_keep_order(users.iter().map(|u| u.0));
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    with_tx!(db, |conn| {
        conn.lock_room(room.0).await?;
        let mut gone: HashSet<i64> = HashSet::new();
        for chunk in wanted.chunks(CHUNK) {
            let part = diesel::delete(
                members::table
                    .filter(members::room_id.eq(room.0))
                    .filter(members::user_id.eq_any(chunk)),
            )
            .returning(members::user_id)
            .get_results::<i64>(conn)
            .await?;
            gone.extend(part);
        }
        Ok(wanted
            .into_iter()
            .filter(|u| gone.contains(u))
            .map(UserId)
            .collect())
    })
    .map_err(Fail::into_store_error)
}

/// Everyone who shares a room with `user`, by id.
pub(super) async fn contacts(db: &Db, user: UserId) -> StoreResult<Vec<UserId>> {
    with_conn!(db, read, |conn| {
        // The user's own memberships, under another name so the subquery and the
        // outer query can both read `members`.
        let mine = diesel::alias!(members as mine);
        let ids = members::table
            .filter(
                members::room_id.eq_any(
                    mine.filter(mine.field(members::user_id).eq(user.0))
                        .select(mine.field(members::room_id)),
                ),
            )
            .filter(members::user_id.ne(user.0))
            .select(members::user_id)
            .distinct()
            .order(members::user_id)
            .load::<i64>(conn)
            .await?;
        Ok(ids.into_iter().map(UserId).collect())
    })
}
