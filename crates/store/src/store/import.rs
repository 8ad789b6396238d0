//! Bulk import of a legacy backend's history, and the reads of an export
//! (`chat-gateway import` / `export`; the file format lives in the gateway).
//!
//! **Invariant: a record of a source is imported at most once.** Every user, room and
//! message imported is listed in `chat_import_keys` under (source, kind, its key in
//! the legacy system) with the id it got here, in the transaction that inserts it.
//! A record whose key is listed is recognised and skipped, so importing a file twice,
//! or again after the first run was killed, adds nothing twice: a batch either
//! committed with its keys or not at all. Memberships and read marks need no key:
//! they are recognised by their room and user, and a read mark only moves forward.
//!
//! **Ids are kept where free.** A record whose key is a positive integer keeps it as
//! its id when no row of the table has that id; otherwise (or for a text key) it gets
//! a new id, and references to it (a message's room, a reply) follow the mapping in
//! `chat_import_keys`. A user whose username or external id is already here (signed
//! in before the import, say) is that user; a direct room of the same pair or a
//! project room of the same project is that room.
//!
//! **Imported messages are history, not news.** They are written straight to the
//! tables, with no cluster note and no event, so no live client is told of them as
//! new messages; history, unread counts and read marks read them like any other.
//!
//! Messages go in batches, one transaction each, by the fastest statement each
//! backend has: on PostgreSQL one `INSERT … SELECT FROM unnest(…)` per table with
//! every id chosen beforehand, on SQLite prepared single-row inserts inside one
//! blocking call (diesel-async sends SQLite one statement per hand-off to its
//! thread, which would cost more than the insert). That is two copies of a write,
//! as in `group.rs`, because the two bulk paths have nothing in common. Users, rooms,
//! memberships and read marks are few and go through the ordinary queries, written
//! once for both backends.

use super::ids::{reserve_id, IdTable};
use super::messages::MessageConn;
use super::rooms::{new_members, room_key, RoomConn, RoomKey};
use super::users::{Lookup, UserConn};
use crate::db::{Db, PgPool, SqlitePool};
use crate::error::Fail;
use crate::query::{
    dedup_keep_order, key_exists, on_both_backends, row_by_key, with_conn, with_tx, CHUNK,
};
use crate::rows::{
    now_micros, to_micros, MemberRow, MessageRow, NewMemberRow, NewRoomRow, RoomRow, UserRow,
};
use crate::schema::{chat_import_keys, members, messages, rooms, users};
use crate::{StoreOptions, StoreSetupError};
use chat_core::store::StoreResult;
use chat_core::{
    Member, Message, MessageKind, Room, RoomKind, Timestamp, User, UserId, UserProfile,
};
use diesel::dsl::max;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::{HashMap, HashSet};

/// What a key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    User,
    Room,
    Message,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::User => "user",
            KeyKind::Room => "room",
            KeyKind::Message => "message",
        }
    }
}

/// A user to import. `profile.id` is ignored: the id wanted is `wanted_id`.
#[derive(Clone, Debug, Default)]
pub struct UserRecord {
    /// The user's key in the legacy system.
    pub key: String,
    /// The legacy id, kept when free.
    pub wanted_id: Option<i64>,
    pub profile: UserProfile,
    pub created_at: Option<Timestamp>,
}

/// The kind of a room to import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomShape {
    /// Exactly two members, unique per pair.
    Direct,
    Group,
    Project {
        project_id: i64,
    },
}

#[derive(Clone, Debug)]
pub struct RoomRecord {
    pub key: String,
    pub wanted_id: Option<i64>,
    pub shape: RoomShape,
    pub title: String,
    pub has_business: bool,
    /// A user key.
    pub created_by: Option<String>,
    pub created_at: Option<Timestamp>,
    /// User keys, in the order they joined.
    pub members: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct MemberRecord {
    pub room: String,
    pub user: String,
    pub joined_at: Option<Timestamp>,
}

/// Bytes already in the gateway's blob storage, to attach to an imported message.
#[derive(Clone, Debug)]
pub struct BlobRef {
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub blob_key: String,
}

#[derive(Clone, Debug)]
pub struct MessageRecord {
    pub key: String,
    pub wanted_id: Option<i64>,
    pub room: String,
    pub author: String,
    pub kind: MessageKind,
    pub text: String,
    /// The key of an earlier message.
    pub reply_to: Option<String>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    pub attachments: Vec<BlobRef>,
}

/// A read mark: `user` has read `room` up to the message `message` (a key).
#[derive(Clone, Debug)]
pub struct ReadRecord {
    pub room: String,
    pub user: String,
    pub message: String,
}

/// What became of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written now; the id it has here (for memberships and read marks, the room's).
    Imported(i64),
    /// Already here (imported before, or the same user or room); its id.
    Existing(i64),
    /// Not imported, and why.
    Refused(String),
}

/// An import into one database, of one source's records.
pub struct Importer {
    db: Db,
    source: String,
    /// Keys of users and rooms already resolved (they never change once written).
    known: HashMap<(KeyKind, String), i64>,
    /// Messages this run wrote, and how many there were at the last `ANALYZE`.
    written: u64,
    analyzed: u64,
}

/// Open the database at `url` (applying migrations) to import records of `source`.
pub async fn open_importer(url: &str, source: &str) -> Result<Importer, StoreSetupError> {
    let target = crate::target::parse(url)?;
    let db = crate::db::open(&target, &StoreOptions { pool_size: 4 }).await?;
    Ok(Importer {
        db,
        source: source.to_owned(),
        known: HashMap::new(),
        written: 0,
        analyzed: 0,
    })
}

/// Open the database at `url` to export it.
pub async fn open_exporter(url: &str) -> Result<Exporter, StoreSetupError> {
    let target = crate::target::parse(url)?;
    let db = crate::db::open(&target, &StoreOptions { pool_size: 4 }).await?;
    Ok(Exporter { db })
}

fn refused(what: impl Into<String>) -> Outcome {
    Outcome::Refused(what.into())
}

fn unknown(kind: KeyKind, key: &str) -> Outcome {
    refused(format!(
        "{} {key:?} was not imported (its record must come earlier, or was refused)",
        kind.as_str()
    ))
}

/// Queries of the import, for both backends.
trait ImportConn {
    async fn put_key(
        &mut self,
        source: &str,
        kind: KeyKind,
        key: &str,
        id: i64,
    ) -> Result<(), Fail>;
    async fn import_user(&mut self, source: &str, r: &UserRecord) -> Result<Outcome, Fail>;
    async fn import_room(&mut self, source: &str, r: &ResolvedRoom) -> Result<Outcome, Fail>;
    async fn join(&mut self, room: i64, users: &[i64], at: i64) -> Result<usize, Fail>;
    async fn mark_read(&mut self, room: i64, user: i64, message: i64) -> Result<Outcome, Fail>;
}

/// A room record with its user keys resolved to ids.
#[derive(Clone, Debug)]
struct ResolvedRoom {
    key: String,
    wanted_id: Option<i64>,
    kind: RoomKind,
    title: String,
    has_business: bool,
    created_by: Option<i64>,
    created_at: Option<i64>,
    members: Vec<i64>,
}

on_both_backends! {
    impl ImportConn {
        async fn put_key(&mut self, source: &str, kind: KeyKind, key: &str, id: i64) -> Result<(), Fail> {
            diesel::insert_into(chat_import_keys::table)
                .values((
                    chat_import_keys::source.eq(source),
                    chat_import_keys::kind.eq(kind.as_str()),
                    chat_import_keys::key.eq(key),
                    chat_import_keys::id.eq(id),
                ))
                .execute(self)
                .await?;
            Ok(())
        }

        async fn import_user(&mut self, source: &str, r: &UserRecord) -> Result<Outcome, Fail> {
            let clean = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
            let mut same = None;
            if let Some(ext) = clean(&r.profile.external_id) {
                same = self.user_row(&Lookup::ExternalId(ext)).await?;
            }
            if same.is_none() {
                if let Some(name) = clean(&r.profile.username) {
                    same = self.user_row(&Lookup::Username(name)).await?;
                }
            }
            if let Some(row) = same {
                self.put_key(source, KeyKind::User, &r.key, row.id).await?;
                return Ok(Outcome::Existing(row.id));
            }
            let mut profile = r.profile.clone();
            profile.id = None;
            if let Some(id) = r.wanted_id.filter(|id| *id > 0) {
                if self.user_row(&Lookup::Id(id)).await?.is_none() {
                    profile.id = Some(UserId(id));
                }
            }
            let row = match self.insert_user(&profile).await {
                Ok(row) => row,
                // An explicit check refused it (no statement failed): the
                // transaction goes on with the next record.
                Err(Fail::Store(e)) => return Ok(Outcome::Refused(e.to_string())),
                Err(e) => return Err(e),
            };
            if let Some(at) = r.created_at {
                let at = to_micros(at);
                diesel::update(users::table.find(row.id))
                    .set((users::created_at.eq(at), users::updated_at.eq(at)))
                    .execute(&mut *self)
                    .await?;
            }
            self.put_key(source, KeyKind::User, &r.key, row.id).await?;
            Ok(Outcome::Imported(row.id))
        }

        async fn import_room(&mut self, source: &str, r: &ResolvedRoom) -> Result<Outcome, Fail> {
            let at = r.created_at.unwrap_or_else(now_micros);
            let key = room_key(&r.kind);
            if let Some(key) = &key {
                if let Some(row) = self.room_by_key(key).await? {
                    self.join(row.id, &r.members, at).await?;
                    self.put_key(source, KeyKind::Room, &r.key, row.id).await?;
                    return Ok(Outcome::Existing(row.id));
                }
            }
            let mut id = None;
            if let Some(wanted) = r.wanted_id.filter(|id| *id > 0) {
                if !key_exists!(&mut *self, rooms::table, rooms::id, wanted)? {
                    id = Some(wanted);
                }
            }
            let (direct, project) = match key {
                Some(RoomKey::Direct(k)) => (Some(k), None),
                Some(RoomKey::Project(p)) => (None, Some(p)),
                None => (None, None),
            };
            let row = diesel::insert_into(rooms::table)
                .values(NewRoomRow {
                    id,
                    kind: r.kind.name(),
                    direct_key: direct,
                    project_id: project,
                    title: &r.title,
                    has_business: r.has_business,
                    created_by: r.created_by,
                    created_at: at,
                    updated_at: at,
                })
                .returning(RoomRow::as_returning())
                .get_result::<RoomRow>(&mut *self)
                .await?;
            let joined = new_members(row.id, dedup_keep_order(r.members.iter().copied()), 1, at);
            self.insert_members(&joined).await?;
            self.put_key(source, KeyKind::Room, &r.key, row.id).await?;
            Ok(Outcome::Imported(row.id))
        }

        async fn join(&mut self, room: i64, users: &[i64], at: i64) -> Result<usize, Fail> {
            let mut present: HashSet<i64> = HashSet::new();
            for chunk in users.chunks(CHUNK) {
                let part = members::table
                    .filter(members::room_id.eq(room))
                    .filter(members::user_id.eq_any(chunk))
                    .select(members::user_id)
                    .load::<i64>(&mut *self)
                    .await?;
                present.extend(part);
            }
            let fresh: Vec<i64> = dedup_keep_order(users.iter().copied())
                .into_iter()
                .filter(|u| !present.contains(u))
                .collect();
            if fresh.is_empty() {
                return Ok(0);
            }
            let last = members::table
                .filter(members::room_id.eq(room))
                .select(max(members::join_seq))
                .first::<Option<i64>>(&mut *self)
                .await?
                .unwrap_or(0);
            let rows: Vec<NewMemberRow> = new_members(room, fresh, last + 1, at);
            self.insert_members(&rows).await?;
            Ok(rows.len())
        }

        async fn mark_read(&mut self, room: i64, user: i64, message: i64) -> Result<Outcome, Fail> {
            let Some(member) = row_by_key!(&mut *self, members::table, (room, user), MemberRow)? else {
                return Ok(refused("the user is not a member of the room"));
            };
            let in_room = messages::table
                .find(message)
                .select(messages::room_id)
                .first::<i64>(&mut *self)
                .await
                .optional()?;
            if in_room != Some(room) {
                return Ok(refused("the message is not in that room"));
            }
            if member.last_read.is_some_and(|m| m >= message) {
                return Ok(Outcome::Existing(room));
            }
            diesel::update(members::table.find((room, user)))
                .set(members::last_read.eq(Some(message)))
                .execute(&mut *self)
                .await?;
            Ok(Outcome::Imported(room))
        }
    }
}

/// A message ready to be planned: its references resolved.
struct Pending {
    idx: usize,
    key: String,
    wanted: Option<i64>,
    room: i64,
    author: i64,
    kind: MessageKind,
    text: String,
    reply: Reply,
    created_at: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
    attachments: Vec<BlobRef>,
}

enum Reply {
    None,
    Id(i64),
    /// An earlier message of the same batch, by key.
    InBatch(String),
}

/// A message with its id chosen: a row to insert.
struct Planned {
    id: i64,
    key: String,
    room: i64,
    author: i64,
    kind: &'static str,
    text: String,
    reply_to: Option<i64>,
    created_at: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
    attachments: Vec<BlobRef>,
}

impl Planned {
    fn updated_at(&self) -> i64 {
        self.deleted_at
            .or(self.edited_at)
            .unwrap_or(self.created_at)
    }
}

/// Choose each message's id: the one it wants when free (not `taken`, not used by an
/// earlier message of the batch), else the next of `fresh`, whose ids are all above
/// every wanted id of the batch. Replies within the batch point to their target's id.
fn plan(
    todo: Vec<Pending>,
    taken: &HashSet<i64>,
    mut fresh: impl FnMut() -> i64,
) -> (Vec<Planned>, Vec<(usize, Outcome)>) {
    let mut ids: HashMap<String, i64> = HashMap::new();
    let mut used: HashSet<i64> = HashSet::new();
    let mut rows = Vec::with_capacity(todo.len());
    let mut outcomes = Vec::with_capacity(todo.len());
    for p in todo {
        let reply_to = match p.reply {
            Reply::None => None,
            Reply::Id(id) => Some(id),
            Reply::InBatch(k) => match ids.get(&k) {
                Some(id) => Some(*id),
                None => {
                    outcomes.push((p.idx, unknown(KeyKind::Message, &k)));
                    continue;
                }
            },
        };
        let id = match p.wanted {
            Some(w) if w > 0 && !taken.contains(&w) && used.insert(w) => w,
            _ => fresh(),
        };
        ids.insert(p.key.clone(), id);
        outcomes.push((p.idx, Outcome::Imported(id)));
        let deleted = p.deleted_at.is_some();
        rows.push(Planned {
            id,
            key: p.key,
            room: p.room,
            author: p.author,
            kind: p.kind.as_str(),
            // A deleted message is a tombstone: its text is gone.
            text: if deleted { String::new() } else { p.text },
            reply_to,
            created_at: p.created_at,
            edited_at: p.edited_at,
            deleted_at: p.deleted_at,
            attachments: p.attachments,
        });
    }
    (rows, outcomes)
}

impl Importer {
    /// The ids of `keys` of `kind` imported before, by key (unknown keys left out).
    pub async fn lookup(
        &self,
        kind: KeyKind,
        keys: Vec<String>,
    ) -> StoreResult<HashMap<String, i64>> {
        let keys = {
            let mut seen = HashSet::new();
            keys.into_iter()
                .filter(|k| seen.insert(k.clone()))
                .collect::<Vec<_>>()
        };
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let source = self.source.clone();
        with_conn!(&self.db, read, |conn| {
            let mut found = HashMap::new();
            for chunk in keys.chunks(CHUNK) {
                let rows = chat_import_keys::table
                    .filter(chat_import_keys::source.eq(&source))
                    .filter(chat_import_keys::kind.eq(kind.as_str()))
                    .filter(chat_import_keys::key.eq_any(chunk))
                    .select((chat_import_keys::key, chat_import_keys::id))
                    .load::<(String, i64)>(conn)
                    .await?;
                found.extend(rows);
            }
            Ok(found)
        })
    }

    /// [`Self::lookup`] of user or room keys, remembered.
    async fn resolve(
        &mut self,
        kind: KeyKind,
        keys: impl IntoIterator<Item = String>,
    ) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        for k in keys {
            match self.known.get(&(kind, k.clone())) {
                Some(id) => {
                    out.insert(k, *id);
                }
                None => missing.push(k),
            }
        }
        for (k, id) in self.lookup(kind, missing).await? {
            self.known.insert((kind, k.clone()), id);
            out.insert(k, id);
        }
        Ok(out)
    }

    fn remember(&mut self, kind: KeyKind, key: &str, outcome: &Outcome) {
        if let Outcome::Imported(id) | Outcome::Existing(id) = outcome {
            self.known.insert((kind, key.to_owned()), *id);
        }
    }

    pub async fn users(&mut self, recs: Vec<UserRecord>) -> StoreResult<Vec<Outcome>> {
        let known = self
            .resolve(KeyKind::User, recs.iter().map(|r| r.key.clone()))
            .await?;
        let mut out: Vec<Option<Outcome>> = vec![None; recs.len()];
        let mut todo = Vec::new();
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut dups = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            if let Some(id) = known.get(&r.key) {
                out[i] = Some(Outcome::Existing(*id));
            } else if let Some(&f) = first.get(&r.key) {
                dups.push((i, f));
            } else {
                first.insert(r.key.clone(), i);
                todo.push((i, r.clone()));
            }
        }
        if let Some(top) = todo.iter().filter_map(|(_, r)| r.wanted_id).max() {
            reserve_id(&self.db, IdTable::Users, top).await?;
        }
        let source = self.source.clone();
        let results = self
            .each(todo, &source, |db, source, r: UserRecord| {
                Box::pin(async move { with_tx!(&db, |conn| conn.import_user(&source, &r).await) })
            })
            .await?;
        for (i, o) in results {
            self.remember(KeyKind::User, &recs[i].key, &o);
            out[i] = Some(o);
        }
        finish_dups(&mut out, dups);
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| refused("not processed")))
            .collect())
    }

    /// Run `one` for each record, all in one transaction when that works, else
    /// each in its own (so one failing statement refuses its record, not the batch).
    async fn each<R: Clone + Send + 'static>(
        &self,
        todo: Vec<(usize, R)>,
        source: &str,
        one: impl Fn(
            Db,
            String,
            R,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Outcome, Fail>> + Send>,
        >,
    ) -> StoreResult<Vec<(usize, Outcome)>>
    where
        Vec<R>: BatchTx,
    {
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        let idx: Vec<usize> = todo.iter().map(|(i, _)| *i).collect();
        let recs: Vec<R> = todo.iter().map(|(_, r)| r.clone()).collect();
        match recs.run_batch(&self.db, source).await {
            Ok(outcomes) => Ok(idx.into_iter().zip(outcomes).collect()),
            Err(fail) => {
                tracing::debug!(error = ?fail, "an import batch failed; one record at a time");
                let mut outs = Vec::with_capacity(todo.len());
                for (i, r) in todo {
                    let o = match one(self.db.clone(), source.to_owned(), r).await {
                        Ok(o) => o,
                        Err(f) => refused(f.into_store_error().to_string()),
                    };
                    outs.push((i, o));
                }
                Ok(outs)
            }
        }
    }

    pub async fn rooms(&mut self, recs: Vec<RoomRecord>) -> StoreResult<Vec<Outcome>> {
        let known = self
            .resolve(KeyKind::Room, recs.iter().map(|r| r.key.clone()))
            .await?;
        let user_keys: Vec<String> = recs
            .iter()
            .flat_map(|r| r.members.iter().cloned().chain(r.created_by.clone()))
            .collect();
        let people = self.resolve(KeyKind::User, user_keys).await?;
        let mut out: Vec<Option<Outcome>> = vec![None; recs.len()];
        let mut todo = Vec::new();
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut dups = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            if let Some(id) = known.get(&r.key) {
                out[i] = Some(Outcome::Existing(*id));
                continue;
            }
            if let Some(&f) = first.get(&r.key) {
                dups.push((i, f));
                continue;
            }
            match resolve_room(r, &people) {
                Ok(room) => {
                    first.insert(r.key.clone(), i);
                    todo.push((i, room));
                }
                Err(o) => out[i] = Some(o),
            }
        }
        if let Some(top) = todo.iter().filter_map(|(_, r)| r.wanted_id).max() {
            reserve_id(&self.db, IdTable::Rooms, top).await?;
        }
        let source = self.source.clone();
        let results = self
            .each(todo, &source, |db, source, r: ResolvedRoom| {
                Box::pin(async move { with_tx!(&db, |conn| conn.import_room(&source, &r).await) })
            })
            .await?;
        for (i, o) in results {
            self.remember(KeyKind::Room, &recs[i].key, &o);
            out[i] = Some(o);
        }
        finish_dups(&mut out, dups);
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| refused("not processed")))
            .collect())
    }

    pub async fn members(&mut self, recs: Vec<MemberRecord>) -> StoreResult<Vec<Outcome>> {
        let rooms = self
            .resolve(KeyKind::Room, recs.iter().map(|r| r.room.clone()))
            .await?;
        let people = self
            .resolve(KeyKind::User, recs.iter().map(|r| r.user.clone()))
            .await?;
        let mut out: Vec<Option<Outcome>> = vec![None; recs.len()];
        let mut todo = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            match (rooms.get(&r.room), people.get(&r.user)) {
                (None, _) => out[i] = Some(unknown(KeyKind::Room, &r.room)),
                (_, None) => out[i] = Some(unknown(KeyKind::User, &r.user)),
                (Some(&room), Some(&user)) => todo.push((
                    i,
                    Join {
                        room,
                        user,
                        at: r.joined_at.map_or_else(now_micros, to_micros),
                    },
                )),
            }
        }
        let source = self.source.clone();
        let results = self
            .each(todo, &source, |db, _source, j: Join| {
                Box::pin(async move {
                    with_tx!(&db, |conn| {
                        let added = conn.join(j.room, &[j.user], j.at).await?;
                        Ok(j.outcome(added))
                    })
                })
            })
            .await?;
        for (i, o) in results {
            out[i] = Some(o);
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| refused("not processed")))
            .collect())
    }

    pub async fn reads(&mut self, recs: Vec<ReadRecord>) -> StoreResult<Vec<Outcome>> {
        let rooms = self
            .resolve(KeyKind::Room, recs.iter().map(|r| r.room.clone()))
            .await?;
        let people = self
            .resolve(KeyKind::User, recs.iter().map(|r| r.user.clone()))
            .await?;
        let msgs = self
            .lookup(
                KeyKind::Message,
                recs.iter().map(|r| r.message.clone()).collect(),
            )
            .await?;
        let mut out: Vec<Option<Outcome>> = vec![None; recs.len()];
        let mut todo = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            match (
                rooms.get(&r.room),
                people.get(&r.user),
                msgs.get(&r.message),
            ) {
                (None, _, _) => out[i] = Some(unknown(KeyKind::Room, &r.room)),
                (_, None, _) => out[i] = Some(unknown(KeyKind::User, &r.user)),
                (_, _, None) => out[i] = Some(unknown(KeyKind::Message, &r.message)),
                (Some(&room), Some(&user), Some(&message)) => todo.push((
                    i,
                    Mark {
                        room,
                        user,
                        message,
                    },
                )),
            }
        }
        let source = self.source.clone();
        let results = self
            .each(todo, &source, |db, _source, m: Mark| {
                Box::pin(async move {
                    with_tx!(&db, |conn| conn.mark_read(m.room, m.user, m.message).await)
                })
            })
            .await?;
        for (i, o) in results {
            out[i] = Some(o);
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| refused("not processed")))
            .collect())
    }

    /// Import a batch of messages in one transaction (see the module docs).
    pub async fn messages(&mut self, recs: Vec<MessageRecord>) -> StoreResult<Vec<Outcome>> {
        let done = self
            .lookup(
                KeyKind::Message,
                recs.iter().map(|r| r.key.clone()).collect(),
            )
            .await?;
        let rooms = self
            .resolve(KeyKind::Room, recs.iter().map(|r| r.room.clone()))
            .await?;
        let people = self
            .resolve(KeyKind::User, recs.iter().map(|r| r.author.clone()))
            .await?;
        let batch_keys: HashSet<&str> = recs.iter().map(|r| r.key.as_str()).collect();
        let outside: Vec<String> = recs
            .iter()
            .filter_map(|r| r.reply_to.clone())
            .filter(|k| !batch_keys.contains(k.as_str()) && !done.contains_key(k))
            .collect();
        let earlier = self.lookup(KeyKind::Message, outside).await?;
        let mut out: Vec<Option<Outcome>> = vec![None; recs.len()];
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut dups = Vec::new();
        let mut todo = Vec::new();
        for (i, r) in recs.into_iter().enumerate() {
            if let Some(id) = done.get(&r.key) {
                out[i] = Some(Outcome::Existing(*id));
                continue;
            }
            if let Some(&f) = first.get(&r.key) {
                dups.push((i, f));
                continue;
            }
            let Some(&room) = rooms.get(&r.room) else {
                out[i] = Some(unknown(KeyKind::Room, &r.room));
                continue;
            };
            let Some(&author) = people.get(&r.author) else {
                out[i] = Some(unknown(KeyKind::User, &r.author));
                continue;
            };
            let reply = match &r.reply_to {
                None => Reply::None,
                Some(k) => match done.get(k).or_else(|| earlier.get(k)) {
                    Some(id) => Reply::Id(*id),
                    None if first.contains_key(k) => Reply::InBatch(k.clone()),
                    None => {
                        out[i] = Some(unknown(KeyKind::Message, k));
                        continue;
                    }
                },
            };
            first.insert(r.key.clone(), i);
            todo.push(Pending {
                idx: i,
                key: r.key,
                wanted: r.wanted_id,
                room,
                author,
                kind: r.kind,
                text: r.text,
                reply,
                created_at: to_micros(r.created_at),
                edited_at: r.edited_at.map(to_micros),
                deleted_at: r.deleted_at.map(to_micros),
                attachments: r.attachments,
            });
        }
        if !todo.is_empty() {
            let wanted: Vec<i64> = todo
                .iter()
                .filter_map(|p| p.wanted)
                .filter(|w| *w > 0)
                .collect();
            let outcomes = match &self.db {
                Db::Pg(pool) => {
                    if let Some(top) = wanted.iter().max() {
                        reserve_id(&self.db, IdTable::Messages, *top).await?;
                    }
                    let pool = pool.clone();
                    let source = self.source.clone();
                    let task =
                        tokio::spawn(
                            async move { pg_messages(&pool, &source, wanted, todo).await },
                        );
                    crate::query::finish(task.await)?
                }
                Db::Sqlite(lite) => {
                    let pool = lite.write().clone();
                    let source = self.source.clone();
                    let task =
                        tokio::spawn(
                            async move { sqlite_messages(&pool, source, wanted, todo).await },
                        );
                    crate::query::finish(task.await)?
                }
            };
            self.written += outcomes.len() as u64;
            for (i, o) in outcomes {
                out[i] = Some(o);
            }
            self.refresh_statistics().await?;
        }
        finish_dups(&mut out, dups);
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| refused("not processed")))
            .collect())
    }

    /// On PostgreSQL, `ANALYZE` the tables a bulk import grows each time this run
    /// has doubled what it wrote (from 10,000 messages on). A fresh database's
    /// statistics say the tables are empty, so the prepared lookups of keys and ids
    /// get a generic plan that scans them: each batch then read the whole table and
    /// the import slowed down quadratically. New statistics replan them (with the
    /// index), at a logarithmic number of `ANALYZE`s.
    async fn refresh_statistics(&mut self) -> StoreResult<()> {
        if !matches!(self.db, Db::Pg(_)) || self.written < (2 * self.analyzed).max(10_000) {
            return Ok(());
        }
        self.analyzed = self.written;
        with_conn!(&self.db, write, |conn| {
            diesel::sql_query("ANALYZE chat_import_keys, messages")
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// The keys of `kind` imported from this source with their ids, in key order,
    /// after `after`, at most `limit`.
    pub async fn mapping(
        &self,
        kind: KeyKind,
        after: Option<String>,
        limit: i64,
    ) -> StoreResult<Vec<(String, i64)>> {
        let source = self.source.clone();
        with_conn!(&self.db, read, |conn| {
            let mut q = chat_import_keys::table
                .filter(chat_import_keys::source.eq(&source))
                .filter(chat_import_keys::kind.eq(kind.as_str()))
                .into_boxed();
            if let Some(after) = &after {
                q = q.filter(chat_import_keys::key.gt(after.clone()));
            }
            Ok(q.order(chat_import_keys::key)
                .limit(limit)
                .select((chat_import_keys::key, chat_import_keys::id))
                .load::<(String, i64)>(conn)
                .await?)
        })
    }
}

/// A second record with the key of an earlier one of its batch is that record.
fn finish_dups(out: &mut [Option<Outcome>], dups: Vec<(usize, usize)>) {
    for (i, f) in dups {
        out[i] = Some(match &out[f] {
            Some(Outcome::Imported(id)) | Some(Outcome::Existing(id)) => Outcome::Existing(*id),
            Some(Outcome::Refused(why)) => Outcome::Refused(why.clone()),
            None => refused("not processed"),
        });
    }
}

fn resolve_room(r: &RoomRecord, people: &HashMap<String, i64>) -> Result<ResolvedRoom, Outcome> {
    let mut members = Vec::with_capacity(r.members.len());
    for k in &r.members {
        members.push(*people.get(k).ok_or_else(|| unknown(KeyKind::User, k))?);
    }
    let members = dedup_keep_order(members);
    let created_by = match &r.created_by {
        Some(k) => Some(*people.get(k).ok_or_else(|| unknown(KeyKind::User, k))?),
        None => None,
    };
    let kind = match &r.shape {
        RoomShape::Group => RoomKind::Group,
        RoomShape::Project { project_id } => RoomKind::Project {
            project_id: *project_id,
        },
        RoomShape::Direct => match members.as_slice() {
            [a, b] => RoomKind::direct(UserId(*a), UserId(*b))
                .ok_or_else(|| refused("a direct room needs two different members"))?,
            _ => return Err(refused("a direct room has exactly two members")),
        },
    };
    Ok(ResolvedRoom {
        key: r.key.clone(),
        wanted_id: r.wanted_id,
        kind,
        title: r.title.clone(),
        has_business: r.has_business,
        created_by,
        created_at: r.created_at.map(to_micros),
        members,
    })
}

#[derive(Clone, Debug)]
struct Join {
    room: i64,
    user: i64,
    at: i64,
}

impl Join {
    fn outcome(&self, added: usize) -> Outcome {
        if added > 0 {
            Outcome::Imported(self.room)
        } else {
            Outcome::Existing(self.room)
        }
    }
}

#[derive(Clone, Debug)]
struct Mark {
    room: i64,
    user: i64,
    message: i64,
}

/// A batch of records of one kind, run in one transaction.
trait BatchTx {
    async fn run_batch(&self, db: &Db, source: &str) -> Result<Vec<Outcome>, Fail>;
}

impl BatchTx for Vec<UserRecord> {
    async fn run_batch(&self, db: &Db, source: &str) -> Result<Vec<Outcome>, Fail> {
        let (recs, source) = (self.clone(), source.to_owned());
        with_tx!(db, |conn| {
            let mut outs = Vec::with_capacity(recs.len());
            for r in &recs {
                outs.push(conn.import_user(&source, r).await?);
            }
            Ok(outs)
        })
    }
}

impl BatchTx for Vec<ResolvedRoom> {
    async fn run_batch(&self, db: &Db, source: &str) -> Result<Vec<Outcome>, Fail> {
        let (recs, source) = (self.clone(), source.to_owned());
        with_tx!(db, |conn| {
            let mut outs = Vec::with_capacity(recs.len());
            for r in &recs {
                outs.push(conn.import_room(&source, r).await?);
            }
            Ok(outs)
        })
    }
}

impl BatchTx for Vec<Join> {
    async fn run_batch(&self, db: &Db, _source: &str) -> Result<Vec<Outcome>, Fail> {
        let recs = self.clone();
        with_tx!(db, |conn| {
            let mut outs = Vec::with_capacity(recs.len());
            for j in &recs {
                let added = conn.join(j.room, &[j.user], j.at).await?;
                outs.push(j.outcome(added));
            }
            Ok(outs)
        })
    }
}

impl BatchTx for Vec<Mark> {
    async fn run_batch(&self, db: &Db, _source: &str) -> Result<Vec<Outcome>, Fail> {
        let recs = self.clone();
        with_tx!(db, |conn| {
            let mut outs = Vec::with_capacity(recs.len());
            for m in &recs {
                outs.push(conn.mark_read(m.room, m.user, m.message).await?);
            }
            Ok(outs)
        })
    }
}

/// The ids among `wanted` that a message has already.
fn taken_sql(wanted: &[i64]) -> Vec<Vec<i64>> {
    wanted.chunks(CHUNK).map(<[i64]>::to_vec).collect()
}

async fn pg_messages(
    pool: &PgPool,
    source: &str,
    wanted: Vec<i64>,
    todo: Vec<Pending>,
) -> Result<Vec<(usize, Outcome)>, Fail> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text};
    use diesel_async::AsyncConnection;

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }

    let mut conn = pool.get().await.map_err(Fail::pool)?;
    let mut taken = HashSet::new();
    for chunk in taken_sql(&wanted) {
        let part = messages::table
            .filter(messages::id.eq_any(chunk))
            .select(messages::id)
            .load::<i64>(&mut conn)
            .await?;
        taken.extend(part);
    }
    // The sequence is past every wanted id (reserved by the caller), so these are
    // above them all.
    let fresh: Vec<i64> = diesel::sql_query(
        "SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id FROM generate_series(1, $1)",
    )
    .bind::<BigInt, _>(todo.len() as i64)
    .load::<Id>(&mut conn)
    .await?
    .into_iter()
    .map(|r| r.id)
    .collect();
    let mut next = fresh.into_iter();
    let mut spare = 0_i64;
    let (rows, outcomes) = plan(todo, &taken, || {
        next.next().unwrap_or_else(|| {
            spare -= 1;
            spare
        })
    });
    if rows.iter().any(|r| r.id <= 0) {
        return Err(Fail::corrupt("the message sequence gave too few ids"));
    }
    let source = source.to_owned();
    conn.transaction(async move |conn| -> Result<(), Fail> {
        diesel::sql_query(
            "INSERT INTO messages (id, room_id, author_id, kind, text, reply_to, created_at, updated_at, edited_at, deleted_at) \
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], \
                                  $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[])",
        )
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.room).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.author).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.reply_to).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(Planned::updated_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.edited_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.deleted_at).collect::<Vec<_>>())
        .execute(conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO chat_import_keys (source, kind, key, id) \
             SELECT $1, 'message', k, i FROM unnest($2::TEXT[], $3::BIGINT[]) AS t (k, i)",
        )
        .bind::<Text, _>(&source)
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .execute(conn)
        .await?;
        let atts: Vec<(&Planned, i64, &BlobRef)> = rows
            .iter()
            .flat_map(|r| (0_i64..).zip(&r.attachments).map(move |(pos, a)| (r, pos, a)))
            .collect();
        if !atts.is_empty() {
            diesel::sql_query(
                "INSERT INTO attachments (name, content_type, size, blob_key, uploader_id, message_id, position, created_at, token) \
                 SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[], \
                                      $7::BIGINT[], $8::BIGINT[], $9::TEXT[])",
            )
            .bind::<Array<Text>, _>(atts.iter().map(|(_, _, a)| a.name.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(atts.iter().map(|(_, _, a)| a.content_type.as_str()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(atts.iter().map(|(_, _, a)| a.size).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(atts.iter().map(|(_, _, a)| a.blob_key.as_str()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(atts.iter().map(|(r, _, _)| r.author).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(atts.iter().map(|(r, _, _)| r.id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(atts.iter().map(|(_, p, _)| *p).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(atts.iter().map(|(r, _, _)| r.created_at).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(atts.iter().map(|_| chat_core::files::new_token()).collect::<Vec<_>>())
            .execute(conn)
            .await?;
        }
        Ok(())
    })
    .await?;
    Ok(outcomes)
}

async fn sqlite_messages(
    pool: &SqlitePool,
    source: String,
    wanted: Vec<i64>,
    todo: Vec<Pending>,
) -> Result<Vec<(usize, Outcome)>, Fail> {
    let mut pooled = pool.get().await.map_err(Fail::pool)?;
    pooled
        .spawn_blocking(move |conn: &mut diesel::SqliteConnection| {
            Ok(conn.immediate_transaction(|conn| lite::sqlite_batch(conn, &source, &wanted, todo)))
        })
        .await?
}

/// The SQLite batch, in one blocking call on the writer's connection (see the
/// module docs).
mod lite {
    use super::{plan, taken_sql, KeyKind, Outcome, Pending};
    use crate::error::Fail;
    use crate::schema::{attachments, chat_import_keys, messages};
    use diesel::prelude::*;
    use std::collections::HashSet;

    #[derive(Insertable)]
    #[diesel(table_name = messages, treat_none_as_default_value = false)]
    struct ImportedMessageRow<'a> {
        id: i64,
        room_id: i64,
        author_id: i64,
        kind: &'a str,
        text: &'a str,
        reply_to: Option<i64>,
        created_at: i64,
        updated_at: i64,
        edited_at: Option<i64>,
        deleted_at: Option<i64>,
    }

    #[derive(Insertable)]
    #[diesel(table_name = attachments)]
    struct ImportedAttachmentRow<'a> {
        name: &'a str,
        content_type: &'a str,
        size: i64,
        blob_key: &'a str,
        uploader_id: i64,
        message_id: Option<i64>,
        position: i64,
        created_at: i64,
        token: String,
    }

    pub(super) fn sqlite_batch(
        conn: &mut diesel::SqliteConnection,
        source: &str,
        wanted: &[i64],
        todo: Vec<Pending>,
    ) -> Result<Vec<(usize, Outcome)>, Fail> {
        use diesel::sql_types::BigInt;

        #[derive(QueryableByName)]
        struct Top {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }

        let mut taken = HashSet::new();
        for chunk in taken_sql(wanted) {
            let part = messages::table
                .filter(messages::id.eq_any(chunk))
                .select(messages::id)
                .load::<i64>(conn)?;
            taken.extend(part);
        }
        // AUTOINCREMENT's counter is at least the highest id ever used; new ids go above
        // it and above every id the batch keeps, and moving it past them is SQLite's own.
        let top = diesel::sql_query(
        "SELECT COALESCE((SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'messages'), 0) AS v",
    )
    .get_result::<Top>(conn)?
    .v;
        let mut next = top.max(wanted.iter().copied().max().unwrap_or(0));
        let (rows, outcomes) = plan(todo, &taken, || {
            next += 1;
            next
        });
        for r in &rows {
            diesel::insert_into(messages::table)
                .values(ImportedMessageRow {
                    id: r.id,
                    room_id: r.room,
                    author_id: r.author,
                    kind: r.kind,
                    text: &r.text,
                    reply_to: r.reply_to,
                    created_at: r.created_at,
                    updated_at: r.updated_at(),
                    edited_at: r.edited_at,
                    deleted_at: r.deleted_at,
                })
                .execute(conn)?;
            diesel::insert_into(chat_import_keys::table)
                .values((
                    chat_import_keys::source.eq(source),
                    chat_import_keys::kind.eq(KeyKind::Message.as_str()),
                    chat_import_keys::key.eq(&r.key),
                    chat_import_keys::id.eq(r.id),
                ))
                .execute(conn)?;
            for (position, a) in (0_i64..).zip(&r.attachments) {
                diesel::insert_into(attachments::table)
                    .values(ImportedAttachmentRow {
                        name: &a.name,
                        content_type: &a.content_type,
                        size: a.size,
                        blob_key: &a.blob_key,
                        uploader_id: r.author,
                        message_id: Some(r.id),
                        position,
                        created_at: r.created_at,
                        token: chat_core::files::new_token(),
                    })
                    .execute(conn)?;
            }
        }
        Ok(outcomes)
    }
}

/// The reads of an export, in id order, a page at a time.
pub struct Exporter {
    db: Db,
}

impl Exporter {
    pub async fn users_after(&self, after: i64, limit: i64) -> StoreResult<Vec<User>> {
        with_conn!(&self.db, read, |conn| {
            users::table
                .filter(users::id.gt(after))
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

    /// Rooms after `after`, each with its members in the order they joined.
    pub async fn rooms_after(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<(Room, Vec<Member>)>> {
        with_conn!(&self.db, read, |conn| {
            let rows = rooms::table
                .filter(rooms::id.gt(after))
                .order(rooms::id)
                .limit(limit)
                .select(RoomRow::as_select())
                .load::<RoomRow>(conn)
                .await?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let mut by_room: HashMap<i64, Vec<Member>> = HashMap::new();
            for chunk in ids.chunks(CHUNK) {
                let part = members::table
                    .filter(members::room_id.eq_any(chunk))
                    .order((members::room_id, members::join_seq, members::user_id))
                    .select(MemberRow::as_select())
                    .load::<MemberRow>(conn)
                    .await?;
                for m in part {
                    by_room.entry(m.room_id).or_default().push(m.into_member()?);
                }
            }
            rows.into_iter()
                .map(|r| {
                    let ms = by_room.remove(&r.id).unwrap_or_default();
                    Ok((r.into_room()?, ms))
                })
                .collect()
        })
    }

    pub async fn messages_after(&self, after: i64, limit: i64) -> StoreResult<Vec<Message>> {
        with_conn!(&self.db, read, |conn| {
            let rows = messages::table
                .filter(messages::id.gt(after))
                .order(messages::id)
                .limit(limit)
                .select(MessageRow::as_select())
                .load::<MessageRow>(conn)
                .await?;
            conn.with_attachments(rows).await
        })
    }
}
