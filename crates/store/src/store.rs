//! [`Store`] on diesel-async, with each query written once.
//!
//! [`with_conn!`] takes a block that uses a connection `conn` and expands it twice,
//! once where `conn` is an `AsyncPgConnection` and once where it is SQLite's
//! connection; diesel type-checks each expansion against its backend, so a query that
//! one backend cannot run fails to compile rather than at run time. The block runs on
//! a spawned task (see the crate docs), so it owns everything it uses: each method
//! first turns its borrowed arguments into owned values.
//!
//! The few pieces reused by several methods (the attachments of a batch of messages,
//! the user lookup of an upsert, …) are macros for the same reason: they must expand
//! inside each backend's arm.

use crate::db::{Db, SqliteConn, PG_LOCK_NAMESPACE};
use crate::error::Fail;
use crate::group::GroupWriter;
use crate::rows::*;
use crate::schema::{attachments, members, messages, rooms, users};
use async_trait::async_trait;
use chat_core::store::{NewAttachment, NewMessage, NewRoom, StoreResult, Unread};
use chat_core::{
    Attachment, AttachmentId, Member, Message, MessageId, Room, RoomId, RoomKind, Store,
    StoreError, Timestamp, User, UserId, UserProfile,
};
use diesel::dsl::{count_star, max};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ids per `IN (…)` list: far below SQLite's bound-parameter limit.
const CHUNK: usize = 500;

/// Tables whose ids may be given explicitly (legacy primary keys).
#[derive(Clone, Copy)]
enum IdTable {
    Users,
    Rooms,
}

/// Advisory lock keys (in [`PG_LOCK_NAMESPACE`]) serialising sequence bumps.
const PG_LOCK_USERS_SEQ: i32 = 1;
const PG_LOCK_ROOMS_SEQ: i32 = 2;

pub(crate) struct DieselStore {
    db: Db,
    /// Group commit of plain messages (see `group.rs`); `None` in the store the
    /// writers themselves use to retry a failed group one message at a time.
    group: Option<GroupWriter>,
}

impl DieselStore {
    /// The store, with its group-commit writers started (needs a Tokio runtime).
    pub fn new(db: Db) -> Self {
        let single = DieselStore {
            db: db.clone(),
            group: None,
        };
        let group = Some(GroupWriter::start(&db, single));
        DieselStore { db, group }
    }
}

fn joined<T>(joined: Result<Result<T, Fail>, tokio::task::JoinError>) -> Result<T, Fail> {
    match joined {
        Ok(out) => out,
        Err(e) => Err(Fail::Store(StoreError::Backend(format!(
            "a store task failed: {e}"
        )))),
    }
}

fn finish<T>(joined_task: Result<Result<T, Fail>, tokio::task::JoinError>) -> StoreResult<T> {
    joined(joined_task).map_err(Fail::into_store_error)
}

/// Run `$body` with `$conn` bound to a connection of the store's backend, taken from
/// the `read` or `write` pool (the same pool on PostgreSQL), on a spawned task.
/// `$body` evaluates to `Result<_, Fail>`; the macro to a `StoreResult`.
macro_rules! with_conn {
    ($store:expr, $role:ident, |$conn:ident| $body:expr) => {{
        let task = match &$store.db {
            Db::Pg(pool) => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err(Fail::pool)?;
                    let $conn: &mut AsyncPgConnection = &mut pooled;
                    let out: Result<_, Fail> = $body;
                    out
                })
            }
            Db::Sqlite(lite) => {
                let pool = lite.$role().clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err(Fail::pool)?;
                    let $conn: &mut SqliteConn = &mut pooled;
                    let out: Result<_, Fail> = $body;
                    out
                })
            }
        };
        finish(task.await)
    }};
}

/// Run `$body` in one write transaction, with `$conn` bound to the transaction's
/// connection, on a spawned task. Values the body uses are moved into it. Evaluates
/// to `Result<_, Fail>`, so that callers can still tell a unique violation from other
/// failures.
macro_rules! with_tx {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let task = match &$store.db {
            Db::Pg(pool) => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err(Fail::pool)?;
                    let conn: &mut AsyncPgConnection = &mut pooled;
                    conn.transaction(async move |$conn| -> Result<_, Fail> { $body })
                        .await
                })
            }
            Db::Sqlite(lite) => {
                let pool = lite.write().clone();
                tokio::spawn(async move {
                    let mut pooled = pool.get().await.map_err(Fail::pool)?;
                    let conn: &mut SqliteConn = &mut pooled;
                    // IMMEDIATE takes the write lock at BEGIN, where SQLite's busy
                    // timeout applies. A deferred transaction that read first could be
                    // refused outright at its first write if another connection (a
                    // second store on the file, an outside tool) wrote in between.
                    conn.immediate_transaction(async move |$conn| -> Result<_, Fail> { $body })
                        .await
                })
            }
        };
        joined(task.await)
    }};
}

/// Attachment rows of the given message ids, by message then position.
macro_rules! attachments_of {
    ($conn:ident, $ids:expr) => {{
        let ids: &[i64] = $ids;
        let mut found: Vec<AttachmentRow> = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let mut part = attachments::table
                .filter(attachments::message_id.eq_any(chunk))
                .order((
                    attachments::message_id,
                    attachments::position,
                    attachments::id,
                ))
                .select(AttachmentRow::as_select())
                .load::<AttachmentRow>($conn)
                .await?;
            found.append(&mut part);
        }
        found
    }};
}

/// Message rows with their attachments, as domain messages, in the rows' order: one
/// query for the attachments of the whole batch.
macro_rules! with_attachments {
    ($conn:ident, $rows:expr) => {{
        let rows: Vec<MessageRow> = $rows;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let atts = attachments_of!($conn, &ids);
        assemble(rows, atts)?
    }};
}

/// Messages by id with their attachments, in no particular order (PostgreSQL; the
/// cluster outbox reads the messages its events name).
pub(crate) async fn messages_by_id(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> Result<Vec<Message>, Fail> {
    let mut rows: Vec<MessageRow> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut part = messages::table
            .filter(messages::id.eq_any(chunk))
            .select(MessageRow::as_select())
            .load::<MessageRow>(conn)
            .await?;
        rows.append(&mut part);
    }
    Ok(with_attachments!(conn, rows))
}

/// The user an upsert profile designates: by id when given, else by external id, else
/// by username.
macro_rules! find_user {
    ($conn:ident, $profile:expr) => {{
        let p: &UserProfile = $profile;
        if let Some(id) = p.id {
            users::table
                .find(id.0)
                .select(UserRow::as_select())
                .first::<UserRow>($conn)
                .await
                .optional()?
        } else if let Some(ext) = clean(&p.external_id) {
            users::table
                .filter(users::external_id.eq(ext))
                .select(UserRow::as_select())
                .first::<UserRow>($conn)
                .await
                .optional()?
        } else if let Some(name) = clean(&p.username) {
            users::table
                .filter(users::username.eq(name))
                .select(UserRow::as_select())
                .first::<UserRow>($conn)
                .await
                .optional()?
        } else {
            None
        }
    }};
}

/// Fail with a conflict when `$column = $value` belongs to a user other than `$me`.
macro_rules! ensure_free {
    ($conn:ident, $column:expr, $value:expr, $me:expr, $what:literal) => {{
        let value: &str = $value;
        let me: Option<i64> = $me;
        let holder = users::table
            .filter($column.eq(value))
            .select(users::id)
            .first::<i64>($conn)
            .await
            .optional()?;
        if let Some(holder) = holder {
            if Some(holder) != me {
                return Err(Fail::conflict(format!(
                    concat!($what, " {:?} is taken by another user"),
                    value
                )));
            }
        }
    }};
}

/// Lock a room's row until commit (a no-op update: the one row lock both backends
/// express in the same SQL). Fails with "room not found" when it does not exist.
macro_rules! lock_room {
    ($conn:ident, $room:expr) => {{
        let touched = diesel::update(rooms::table.find($room))
            .set(rooms::kind.eq(rooms::kind))
            .execute($conn)
            .await?;
        if touched == 0 {
            return Err(Fail::not_found("room"));
        }
    }};
}

/// Append a new message's cluster note to the outbox, in the inserting transaction
/// (PostgreSQL only: SQLite is single-node and never has a note; see
/// `crate::outbox`).
macro_rules! outbox_note {
    ($conn:ident, $room:expr, $message:expr, $note:expr) => {{
        crate::outbox::put_note($conn, $room, $message, $note).await?;
    }};
}

/// Create a user from a profile inside a transaction, after the caller's checks.
macro_rules! insert_user {
    ($conn:ident, $profile:expr) => {{
        let p: &UserProfile = $profile;
        let now = now_micros();
        let wanted = clean(&p.username).map(str::to_owned);
        let external = clean(&p.external_id);
        if let Some(name) = &wanted {
            ensure_free!($conn, users::username, name, None, "username");
        }
        if let Some(ext) = external {
            ensure_free!($conn, users::external_id, ext, None, "external id");
        }
        let placeholder;
        let username = match &wanted {
            Some(name) => name.as_str(),
            None => {
                placeholder = placeholder_username();
                placeholder.as_str()
            }
        };
        let row = diesel::insert_into(users::table)
            .values(NewUserRow {
                id: p.id.map(|id| id.0),
                username,
                external_id: external,
                email: p.email.as_deref().unwrap_or_default(),
                first_name: p.first_name.as_deref().unwrap_or_default(),
                last_name: p.last_name.as_deref().unwrap_or_default(),
                display_name: p.display_name.as_deref().unwrap_or_default(),
                photo: p.photo.as_deref().unwrap_or_default(),
                color: p.color.as_deref().unwrap_or_default(),
                role: p.role.as_deref().unwrap_or_default(),
                is_admin: p.is_admin.unwrap_or(false),
                created_at: now,
                updated_at: now,
            })
            .returning(UserRow::as_returning())
            .get_result::<UserRow>($conn)
            .await?;
        if wanted.is_some() {
            row
        } else {
            // Only now is the id known. Should someone have chosen `user<id>` as their
            // own name, fall back to a suffix rather than refuse the new user.
            let mut candidate = format!("user{}", row.id);
            let mut n = 1;
            loop {
                let taken = users::table
                    .filter(users::username.eq(&candidate))
                    .select(users::id)
                    .first::<i64>($conn)
                    .await
                    .optional()?;
                if taken.is_none() {
                    break;
                }
                n += 1;
                candidate = format!("user{}_{}", row.id, n);
            }
            diesel::update(users::table.find(row.id))
                .set(users::username.eq(&candidate))
                .returning(UserRow::as_returning())
                .get_result::<UserRow>($conn)
                .await?
        }
    }};
}

/// A name no real user has, held by a new user only until its id is known.
fn placeholder_username() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "\u{1}pending-{}-{}-{}",
        std::process::id(),
        now_micros(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A profile string that says something: `None` for absent or blank.
fn clean(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// The changes `p` makes to `row`, or `None` when it changes nothing (the common case
/// of a returning user, which then costs no write at all).
fn changes_for(row: &UserRow, p: &UserProfile) -> Option<UserChanges> {
    fn differs(new: Option<&str>, old: &str) -> Option<String> {
        new.filter(|n| *n != old).map(str::to_owned)
    }
    let changes = UserChanges {
        username: differs(clean(&p.username), &row.username),
        external_id: clean(&p.external_id)
            .filter(|e| row.external_id.as_deref() != Some(*e))
            .map(str::to_owned),
        email: differs(p.email.as_deref(), &row.email),
        first_name: differs(p.first_name.as_deref(), &row.first_name),
        last_name: differs(p.last_name.as_deref(), &row.last_name),
        display_name: differs(p.display_name.as_deref(), &row.display_name),
        photo: differs(p.photo.as_deref(), &row.photo),
        color: differs(p.color.as_deref(), &row.color),
        role: differs(p.role.as_deref(), &row.role),
        is_admin: p.is_admin.filter(|a| *a != row.is_admin),
        updated_at: None,
    };
    let any = changes.username.is_some()
        || changes.external_id.is_some()
        || changes.email.is_some()
        || changes.first_name.is_some()
        || changes.last_name.is_some()
        || changes.display_name.is_some()
        || changes.photo.is_some()
        || changes.color.is_some()
        || changes.role.is_some()
        || changes.is_admin.is_some();
    any.then(|| UserChanges {
        updated_at: Some(now_micros()),
        ..changes
    })
}

/// The unique key of a direct or project room.
#[derive(Clone, Debug)]
enum RoomKey {
    Direct(String),
    Project(i64),
}

fn room_key(kind: &RoomKind) -> Option<RoomKey> {
    match kind {
        RoomKind::Direct { low, high } => Some(RoomKey::Direct(direct_key(*low, *high))),
        RoomKind::Project { project_id } => Some(RoomKey::Project(*project_id)),
        RoomKind::Group => None,
    }
}

macro_rules! room_by_key {
    ($conn:ident, $key:expr) => {{
        match $key {
            RoomKey::Direct(k) => rooms::table
                .filter(rooms::direct_key.eq(k))
                .select(RoomRow::as_select())
                .first::<RoomRow>($conn)
                .await
                .optional()?,
            RoomKey::Project(p) => rooms::table
                .filter(rooms::project_id.eq(*p))
                .select(RoomRow::as_select())
                .first::<RoomRow>($conn)
                .await
                .optional()?,
        }
    }};
}

/// `items` without repeats, first occurrence kept.
/// The live messages of `$room` by others than `$reader` above the mark `$after`
/// (`Option<MessageId>`): what `$reader` has not read there.
macro_rules! unread_by {
    ($room:expr, $reader:expr, $after:expr) => {
        messages::table
            .filter(messages::room_id.eq($room.0))
            .filter(messages::author_id.ne($reader.0))
            .filter(messages::deleted_at.is_null())
            .filter(messages::id.gt($after.map_or(i64::MIN, |m: MessageId| m.0)))
    };
}

fn dedup_keep_order(items: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|i| seen.insert(*i)).collect()
}

fn to_micros_opt(t: Option<Timestamp>) -> Option<i64> {
    t.map(to_micros)
}

#[async_trait]
impl Store for DieselStore {
    // ------------------------------------------------------------------ users

    async fn upsert_user(&self, profile: &UserProfile) -> StoreResult<User> {
        let p = profile.clone();
        // Most upserts are a known user signing in again with the same claims:
        // answer those from a reader, without queueing for the writer.
        let lookup = p.clone();
        let unchanged = with_conn!(self, read, |conn| {
            match find_user!(conn, &lookup) {
                Some(row) if changes_for(&row, &lookup).is_none() => Ok(Some(row.into_user()?)),
                _ => Ok(None),
            }
        })?;
        if let Some(user) = unchanged {
            return Ok(user);
        }
        if let Some(id) = p.id {
            self.reserve_id(IdTable::Users, id.0).await?;
        }
        // Two first sign-ins of the same new user can both find nothing and both
        // try to insert; the loser then meets the winner's row, as a unique violation
        // or through the explicit checks (a `Conflict`). Trying again finds the row and
        // takes the update path. A genuine conflict with another user stays one after
        // the retries, which only cost a little in that rare case.
        let mut retries = 2;
        loop {
            let p = p.clone();
            let row = with_tx!(self, |conn| {
                Ok(match find_user!(conn, &p) {
                    Some(row) => match changes_for(&row, &p) {
                        None => row,
                        Some(changes) => {
                            if let Some(name) = &changes.username {
                                ensure_free!(conn, users::username, name, Some(row.id), "username");
                            }
                            if let Some(ext) = &changes.external_id {
                                ensure_free!(
                                    conn,
                                    users::external_id,
                                    ext,
                                    Some(row.id),
                                    "external id"
                                );
                            }
                            diesel::update(users::table.find(row.id))
                                .set(&changes)
                                .returning(UserRow::as_returning())
                                .get_result::<UserRow>(conn)
                                .await?
                        }
                    },
                    None => insert_user!(conn, &p),
                })
            });
            match row {
                Err(fail) if (fail.is_unique_violation() || fail.is_conflict()) && retries > 0 => {
                    retries -= 1
                }
                row => {
                    return row
                        .map_err(user_conflict)
                        .and_then(UserRow::into_user)
                        .map_err(Fail::into_store_error)
                }
            }
        }
    }

    async fn create_user(&self, profile: &UserProfile) -> StoreResult<User> {
        let p = profile.clone();
        if let Some(id) = p.id {
            self.reserve_id(IdTable::Users, id.0).await?;
        }
        let row = with_tx!(self, |conn| {
            if let Some(id) = p.id {
                let exists = users::table
                    .find(id.0)
                    .select(users::id)
                    .first::<i64>(conn)
                    .await
                    .optional()?;
                if exists.is_some() {
                    return Err(Fail::conflict(format!("user {id} exists already")));
                }
            }
            Ok(insert_user!(conn, &p))
        });
        row.map_err(user_conflict)
            .and_then(UserRow::into_user)
            .map_err(Fail::into_store_error)
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        with_conn!(self, read, |conn| {
            let row = users::table
                .find(id.0)
                .select(UserRow::as_select())
                .first::<UserRow>(conn)
                .await
                .optional()?;
            row.map(UserRow::into_user).transpose()
        })
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let ids = dedup_keep_order(ids.iter().map(|i| i.0));
        with_conn!(self, read, |conn| {
            let mut rows: Vec<UserRow> = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(CHUNK) {
                let mut part = users::table
                    .filter(users::id.eq_any(chunk))
                    .select(UserRow::as_select())
                    .load::<UserRow>(conn)
                    .await?;
                rows.append(&mut part);
            }
            rows.sort_by_key(|r| r.id);
            rows.into_iter().map(UserRow::into_user).collect()
        })
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        with_conn!(self, read, |conn| {
            let row = users::table
                .filter(users::username.eq(&username))
                .select(UserRow::as_select())
                .first::<UserRow>(conn)
                .await
                .optional()?;
            row.map(UserRow::into_user).transpose()
        })
    }

    async fn user_by_external_id(&self, external_id: &str) -> StoreResult<Option<User>> {
        let external_id = external_id.to_owned();
        with_conn!(self, read, |conn| {
            let row = users::table
                .filter(users::external_id.eq(&external_id))
                .select(UserRow::as_select())
                .first::<UserRow>(conn)
                .await
                .optional()?;
            row.map(UserRow::into_user).transpose()
        })
    }

    async fn list_users(&self, limit: i64) -> StoreResult<Vec<User>> {
        let limit = limit.max(0);
        with_conn!(self, read, |conn| {
            users::table
                .order(users::id)
                .limit(limit)
                .select(UserRow::as_select())
                .load::<UserRow>(conn)
                .await?
                .into_iter()
                .map(UserRow::into_user)
                .collect()
        })
    }

    // ------------------------------------------------------------------ rooms

    async fn create_room(&self, room: &NewRoom) -> StoreResult<Room> {
        let new = room.clone();
        let key = room_key(&new.kind);
        let key_in_tx = key.clone();
        if let Some(id) = new.id {
            self.reserve_id(IdTable::Rooms, id.0).await?;
        }
        let created = with_tx!(self, |conn| {
            if let Some(key) = &key_in_tx {
                if let Some(existing) = room_by_key!(conn, key) {
                    return Err(StoreError::DuplicateRoom(RoomId(existing.id)).into());
                }
            }
            if let Some(id) = new.id {
                let taken = rooms::table
                    .find(id.0)
                    .select(rooms::id)
                    .first::<i64>(conn)
                    .await
                    .optional()?;
                if taken.is_some() {
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
            let members: Vec<NewMemberRow> = dedup_keep_order(new.members.iter().map(|u| u.0))
                .into_iter()
                .zip(1..)
                .map(|(user_id, join_seq)| NewMemberRow {
                    room_id: row.id,
                    user_id,
                    join_seq,
                    joined_at: now,
                })
                .collect();
            // One statement per member: diesel-async cannot send a multi-row
            // insert to SQLite, and rooms are created with few members.
            for member in &members {
                diesel::insert_into(members::table)
                    .values(member)
                    .execute(conn)
                    .await?;
            }
            row.into_room()
        });
        match created {
            Ok(room) => Ok(room),
            // Lost a race with a concurrent creation of the same key: report theirs,
            // which is committed by the time the violation is reported.
            Err(fail) if fail.is_unique_violation() => {
                let existing = match key {
                    Some(key) => with_conn!(self, read, |conn| Ok(room_by_key!(conn, &key)))?,
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

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        with_conn!(self, read, |conn| {
            let row = rooms::table
                .find(id.0)
                .select(RoomRow::as_select())
                .first::<RoomRow>(conn)
                .await
                .optional()?;
            row.map(RoomRow::into_room).transpose()
        })
    }

    async fn room_by_kind(&self, kind: &RoomKind) -> StoreResult<Option<Room>> {
        // A group has no key: there is no "the" group room to find.
        let Some(key) = room_key(kind) else {
            return Ok(None);
        };
        with_conn!(self, read, |conn| {
            let row = room_by_key!(conn, &key);
            row.map(RoomRow::into_room).transpose()
        })
    }

    async fn set_room_title(&self, id: RoomId, title: &str) -> StoreResult<Room> {
        let title = title.to_owned();
        with_conn!(self, write, |conn| {
            let row = diesel::update(rooms::table.find(id.0))
                .set((rooms::title.eq(&title), rooms::updated_at.eq(now_micros())))
                .returning(RoomRow::as_returning())
                .get_result::<RoomRow>(conn)
                .await
                .optional()?;
            row.ok_or(Fail::not_found("room"))?.into_room()
        })
    }

    async fn rooms_of(&self, user: UserId) -> StoreResult<Vec<Room>> {
        with_conn!(self, read, |conn| {
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
                .into_iter()
                .map(RoomRow::into_room)
                .collect()
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        with_conn!(self, read, |conn| {
            diesel::sql_query("SELECT 1").execute(conn).await?;
            Ok(())
        })
    }

    async fn all_rooms(&self) -> StoreResult<Vec<Room>> {
        with_conn!(self, read, |conn| {
            rooms::table
                .order(rooms::id)
                .select(RoomRow::as_select())
                .load::<RoomRow>(conn)
                .await?
                .into_iter()
                .map(RoomRow::into_room)
                .collect()
        })
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        with_conn!(self, read, |conn| {
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

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        with_conn!(self, read, |conn| {
            let row = members::table
                .find((room.0, user.0))
                .select(MemberRow::as_select())
                .first::<MemberRow>(conn)
                .await
                .optional()?;
            row.map(MemberRow::into_member).transpose()
        })
    }

    async fn add_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let wanted = dedup_keep_order(users.iter().map(|u| u.0));
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let added = with_tx!(self, |conn| {
            lock_room!(conn, room.0);
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
            let now = now_micros();
            let rows: Vec<NewMemberRow> = fresh
                .iter()
                .zip(last_seq + 1..)
                .map(|(user_id, join_seq)| NewMemberRow {
                    room_id: room.0,
                    user_id: *user_id,
                    join_seq,
                    joined_at: now,
                })
                .collect();
            // One statement per member (see `create_room`).
            for member in &rows {
                diesel::insert_into(members::table)
                    .values(member)
                    .execute(conn)
                    .await?;
            }
            Ok(fresh.into_iter().map(UserId).collect())
        });
        match added {
            Err(fail) if fail.is_foreign_key_violation() => Err(StoreError::NotFound("user")),
            other => other.map_err(Fail::into_store_error),
        }
    }

    async fn remove_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let wanted = dedup_keep_order(users.iter().map(|u| u.0));
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        with_tx!(self, |conn| {
            lock_room!(conn, room.0);
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

    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        with_conn!(self, read, |conn| {
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

    // ------------------------------------------------------------------ messages

    async fn insert_message(&self, msg: &NewMessage) -> StoreResult<Message> {
        match &self.group {
            Some(group) if msg.attachments.is_empty() => group.insert(msg.clone()).await,
            _ => self.insert_single(msg).await,
        }
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        with_conn!(self, read, |conn| {
            let row = messages::table
                .find(id.0)
                .select(MessageRow::as_select())
                .first::<MessageRow>(conn)
                .await
                .optional()?;
            Ok(with_attachments!(conn, row.into_iter().collect()).pop())
        })
    }

    async fn edit_message(&self, id: MessageId, text: &str) -> StoreResult<Message> {
        let text = text.to_owned();
        with_tx!(self, |conn| {
            let now = now_micros();
            let row = diesel::update(
                messages::table
                    .find(id.0)
                    .filter(messages::deleted_at.is_null()),
            )
            .set((
                messages::text.eq(&text),
                messages::edited_at.eq(Some(now)),
                messages::updated_at.eq(now),
            ))
            .returning(MessageRow::as_returning())
            .get_result::<MessageRow>(conn)
            .await
            .optional()?;
            let Some(row) = row else {
                let exists = messages::table
                    .find(id.0)
                    .select(messages::id)
                    .first::<i64>(conn)
                    .await
                    .optional()?;
                return Err(match exists {
                    Some(_) => Fail::conflict(format!("message {id} has been deleted")),
                    None => Fail::not_found("message"),
                });
            };
            let mut built = with_attachments!(conn, vec![row]);
            built
                .pop()
                .ok_or_else(|| Fail::corrupt("the edited message vanished"))
        })
        .map_err(Fail::into_store_error)
    }

    async fn delete_messages(
        &self,
        room: RoomId,
        ids: &[MessageId],
    ) -> StoreResult<Vec<MessageId>> {
        let ids = dedup_keep_order(ids.iter().map(|m| m.0));
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        with_tx!(self, |conn| {
            let now = now_micros();
            let mut deleted: Vec<i64> = Vec::new();
            for chunk in ids.chunks(CHUNK) {
                let mut part = diesel::update(
                    messages::table
                        .filter(messages::room_id.eq(room.0))
                        .filter(messages::id.eq_any(chunk))
                        .filter(messages::deleted_at.is_null()),
                )
                .set((
                    messages::deleted_at.eq(Some(now)),
                    messages::text.eq(""),
                    messages::updated_at.eq(now),
                ))
                .returning(messages::id)
                .get_results::<i64>(conn)
                .await?;
                deleted.append(&mut part);
            }
            deleted.sort_unstable();
            Ok(deleted.into_iter().map(MessageId).collect())
        })
        .map_err(Fail::into_store_error)
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let before = before.map_or(i64::MAX, |m| m.0);
        let limit = limit.max(0);
        with_conn!(self, read, |conn| {
            let rows = messages::table
                .filter(messages::room_id.eq(room.0))
                .filter(messages::id.lt(before))
                .order(messages::id.desc())
                .limit(limit)
                .select(MessageRow::as_select())
                .load::<MessageRow>(conn)
                .await?;
            Ok(with_attachments!(conn, rows))
        })
    }

    async fn messages_between(
        &self,
        room: RoomId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let from = to_micros_opt(from).unwrap_or(i64::MIN);
        let to = to_micros_opt(to).unwrap_or(i64::MAX);
        let limit = limit.max(0);
        with_conn!(self, read, |conn| {
            let rows = messages::table
                .filter(messages::room_id.eq(room.0))
                .filter(messages::created_at.ge(from))
                .filter(messages::created_at.le(to))
                .order(messages::id)
                .limit(limit)
                .select(MessageRow::as_select())
                .load::<MessageRow>(conn)
                .await?;
            Ok(with_attachments!(conn, rows))
        })
    }

    async fn last_message(&self, room: RoomId) -> StoreResult<Option<Message>> {
        with_conn!(self, read, |conn| {
            let row = messages::table
                .filter(messages::room_id.eq(room.0))
                .order(messages::id.desc())
                .select(MessageRow::as_select())
                .first::<MessageRow>(conn)
                .await
                .optional()?;
            Ok(with_attachments!(conn, row.into_iter().collect()).pop())
        })
    }

    // ------------------------------------------------------------------ read state

    async fn advance_read(
        &self,
        room: RoomId,
        user: UserId,
        up_to: MessageId,
    ) -> StoreResult<Option<Option<MessageId>>> {
        with_tx!(self, |conn| {
            let key = (room.0, user.0);
            // Lock the membership first so that concurrent advances of the same
            // watermark see each other and each reports its true predecessor.
            let touched = diesel::update(members::table.find(key))
                .set(members::last_read.eq(members::last_read))
                .execute(conn)
                .await?;
            if touched == 0 {
                return Err(Fail::not_found("member"));
            }
            let previous = members::table
                .find(key)
                .select(members::last_read)
                .first::<Option<i64>>(conn)
                .await?;
            if previous.is_some_and(|p| p >= up_to.0) {
                return Ok(None);
            }
            diesel::update(members::table.find(key))
                .set(members::last_read.eq(Some(up_to.0)))
                .execute(conn)
                .await?;
            Ok(Some(previous.map(MessageId)))
        })
        .map_err(Fail::into_store_error)
    }

    async fn messages_read_between(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
        up_to: MessageId,
    ) -> StoreResult<Vec<(MessageId, UserId)>> {
        with_conn!(self, read, |conn| {
            let rows = unread_by!(room, reader, after)
                .filter(messages::id.le(up_to.0))
                .order(messages::id)
                .select((messages::id, messages::author_id))
                .load::<(i64, i64)>(conn)
                .await?;
            Ok(rows
                .into_iter()
                .map(|(m, a)| (MessageId(m), UserId(a)))
                .collect())
        })
    }

    async fn unread_count(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
    ) -> StoreResult<Unread> {
        with_conn!(self, read, |conn| {
            let (count, newest) = unread_by!(room, reader, after)
                .select((count_star(), max(messages::id)))
                .first::<(i64, Option<i64>)>(conn)
                .await?;
            Ok(Unread {
                count,
                newest: newest.map(MessageId),
            })
        })
    }

    async fn unread_rooms(&self, user: UserId) -> StoreResult<i64> {
        // A correlated EXISTS stops at the first unread message of each room; diesel's
        // DSL cannot correlate a subquery with the outer table, so this one condition
        // is portable SQL (still written once for both backends).
        let unread = diesel::dsl::sql::<diesel::sql_types::Bool>(
            "EXISTS (SELECT 1 FROM messages \
             WHERE messages.room_id = members.room_id AND messages.author_id <> ",
        )
        .bind::<BigInt, _>(user.0)
        .sql(
            " AND messages.deleted_at IS NULL \
             AND (members.last_read IS NULL OR messages.id > members.last_read))",
        );
        with_conn!(self, read, |conn| {
            let n = members::table
                .filter(members::user_id.eq(user.0))
                .filter(unread)
                .select(count_star())
                .first::<i64>(conn)
                .await?;
            Ok(n)
        })
    }

    // ------------------------------------------------------------------ attachments

    async fn insert_attachment(
        &self,
        a: &NewAttachment,
        quota: Option<i64>,
    ) -> StoreResult<Attachment> {
        let a = a.clone();
        with_tx!(self, |conn| {
            if let Some(limit) = quota {
                // Hold the uploader's row to commit (a no-op update, as `lock_room!`),
                // so the user's concurrent uploads check the quota one at a time.
                let locked = diesel::update(users::table.find(a.uploader_id.0))
                    .set(users::id.eq(users::id))
                    .execute(conn)
                    .await?;
                if locked == 0 {
                    return Err(Fail::not_found("user"));
                }
                // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back.
                let used: i64 = attachments::table
                    .filter(attachments::uploader_id.eq(a.uploader_id.0))
                    .select(diesel::dsl::sql::<BigInt>(
                        "CAST(COALESCE(SUM(attachments.size), 0) AS BIGINT)",
                    ))
                    .first::<i64>(conn)
                    .await?;
                if used.saturating_add(a.size) > limit {
                    return Err(Fail::Store(StoreError::QuotaExceeded {
                        used,
                        size: a.size,
                        limit,
                    }));
                }
            }
            let row = diesel::insert_into(attachments::table)
                .values(NewAttachmentRow {
                    name: &a.name,
                    content_type: &a.content_type,
                    size: a.size,
                    blob_key: &a.blob_key,
                    uploader_id: a.uploader_id.0,
                    created_at: now_micros(),
                    token: &a.token,
                })
                .returning(AttachmentRow::as_returning())
                .get_result::<AttachmentRow>(conn)
                .await
                .map_err(|e| match Fail::from(e) {
                    f if f.is_foreign_key_violation() => Fail::not_found("user"),
                    f => f,
                })?;
            row.into_attachment()
        })
        .map_err(Fail::into_store_error)
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        with_conn!(self, read, |conn| {
            let row = attachments::table
                .find(id.0)
                .select(AttachmentRow::as_select())
                .first::<AttachmentRow>(conn)
                .await
                .optional()?;
            row.map(AttachmentRow::into_attachment).transpose()
        })
    }

    async fn delete_unattached(&self, id: AttachmentId) -> StoreResult<bool> {
        with_conn!(self, write, |conn| {
            let n = diesel::delete(
                attachments::table
                    .find(id.0)
                    .filter(attachments::message_id.is_null()),
            )
            .execute(conn)
            .await?;
            Ok(n > 0)
        })
    }

    async fn delete_unattached_before(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Attachment>> {
        let before = to_micros(before);
        with_tx!(self, |conn| {
            let ids: Vec<i64> = attachments::table
                .filter(attachments::message_id.is_null())
                .filter(attachments::created_at.lt(before))
                .order(attachments::created_at)
                .select(attachments::id)
                .limit(limit)
                .load::<i64>(conn)
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // A message may have taken one since: `message_id IS NULL` again.
            let rows = diesel::delete(
                attachments::table
                    .filter(attachments::id.eq_any(&ids))
                    .filter(attachments::message_id.is_null()),
            )
            .returning(AttachmentRow::as_returning())
            .get_results::<AttachmentRow>(conn)
            .await?;
            rows.into_iter()
                .map(AttachmentRow::into_attachment)
                .collect::<Result<Vec<_>, Fail>>()
        })
        .map_err(Fail::into_store_error)
    }

    async fn blob_in_use(&self, blob_key: &str) -> StoreResult<bool> {
        let key = blob_key.to_string();
        with_conn!(self, read, |conn| {
            let found = attachments::table
                .filter(attachments::blob_key.eq(&key))
                .select(attachments::id)
                .first::<i64>(conn)
                .await
                .optional()?;
            Ok(found.is_some())
        })
    }
}

/// A unique violation while creating or renaming a user (a concurrent request took
/// the name first) is the same conflict the explicit checks report.
fn user_conflict(fail: Fail) -> Fail {
    if fail.is_unique_violation() {
        Fail::conflict(fail.into_store_error().to_string().replace(
            "a record with the same key exists",
            "the user conflicts with another",
        ))
    } else {
        fail
    }
}

impl DieselStore {
    /// On PostgreSQL, move `table`'s identity sequence past an id about to be inserted
    /// explicitly, so ids allocated later never collide with it (SQLite's
    /// AUTOINCREMENT does this by itself). The advisory lock makes concurrent bumps
    /// apply in turn, so the sequence only ever moves forward; the materialized CTE
    /// takes it before the check and the `setval` run.
    ///
    /// It runs as a statement of its own *before* the transaction that inserts the
    /// row: `setval` is not transactional, so the lock has nothing to protect after
    /// it, and held to the inserting transaction's commit it serialised every first
    /// sign-up behind the previous one's round trips and WAL flush (twelve sign-ups
    /// waiting on it at any moment of a connect storm). Bumping first leaves at worst
    /// an unused gap if the insert then fails.
    async fn reserve_id(&self, table: IdTable, id: i64) -> StoreResult<()> {
        if !matches!(self.db, Db::Pg(_)) {
            return Ok(());
        }
        let (name, lock) = match table {
            IdTable::Users => ("users", PG_LOCK_USERS_SEQ),
            IdTable::Rooms => ("rooms", PG_LOCK_ROOMS_SEQ),
        };
        let sql = format!(
            "WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock({PG_LOCK_NAMESPACE}, {lock})) \
             SELECT CASE WHEN $1 > COALESCE(pg_sequence_last_value(\
             pg_get_serial_sequence('{name}', 'id')::regclass), 0) \
             THEN setval(pg_get_serial_sequence('{name}', 'id'), $1) END FROM locked"
        );
        with_conn!(self, write, |conn| {
            diesel::sql_query(sql)
                .bind::<BigInt, _>(id)
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Insert one message in its own transaction: messages with attachments, and the
    /// one-by-one retry of a failed group (`group.rs`).
    pub(crate) async fn insert_single(&self, msg: &NewMessage) -> StoreResult<Message> {
        let msg = msg.clone();
        with_tx!(self, |conn| {
            // Serialises the room's inserts: ids commit in order (see crate docs).
            lock_room!(conn, msg.room_id.0);
            let now = now_micros();
            let row = diesel::insert_into(messages::table)
                .values(NewMessageRow::of(&msg, now))
                .returning(MessageRow::as_returning())
                .get_result::<MessageRow>(conn)
                .await?;
            for (position, attachment) in (0_i64..).zip(&msg.attachments) {
                let bound = diesel::update(
                    attachments::table
                        .find(attachment.0)
                        .filter(attachments::message_id.is_null()),
                )
                .set((
                    attachments::message_id.eq(row.id),
                    attachments::position.eq(position),
                ))
                .execute(conn)
                .await?;
                if bound == 0 {
                    return Err(Fail::conflict(format!(
                        "attachment {attachment} does not exist or belongs to another message"
                    )));
                }
            }
            if let Some(note) = &msg.note {
                outbox_note!(conn, msg.room_id.0, row.id, note);
            }
            let mut built = with_attachments!(conn, vec![row]);
            built
                .pop()
                .ok_or_else(|| Fail::corrupt("the inserted message vanished"))
        })
        .map_err(Fail::into_store_error)
    }
}
