//! Users: sign-in upserts, explicit creation, lookups.
//!
//! **Invariant: usernames and external ids each belong to one user.** Every write
//! checks the value is free inside its transaction ([`UserConn::ensure_free`]) and
//! unique indexes back the check; a write that loses a race meets the index, and
//! both paths report the same conflict ([`user_conflict`]). So a concurrent first
//! sign-in of one person cannot create two users: the loser retries and finds the
//! winner's row.

use super::ids::{reserve_id, IdTable};
use crate::db::Db;
use crate::error::Fail;
use crate::query::{dedup_keep_order, on_both_backends, rows_by_ids, with_conn, with_tx};
use crate::rows::{now_micros, NewUserRow, UserChanges, UserRow};
use crate::schema::users;
use chat_core::store::{StoreResult, UserWrite};
use chat_core::{User, UserId, UserProfile};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::sync::atomic::{AtomicU64, Ordering};

/// One unique key of a user.
#[derive(Clone, Debug)]
pub(super) enum Lookup {
    Id(i64),
    Username(String),
    ExternalId(String),
}

impl Lookup {
    fn label(&self) -> &'static str {
        match self {
            Lookup::Id(_) => "id",
            Lookup::Username(_) => "username",
            Lookup::ExternalId(_) => "external id",
        }
    }
}

/// The user an upsert profile designates: by id when given, else by external id,
/// else by username.
pub(super) fn designated(p: &UserProfile) -> Option<Lookup> {
    if let Some(id) = p.id {
        Some(Lookup::Id(id.0))
    } else if let Some(ext) = clean(&p.external_id) {
        Some(Lookup::ExternalId(ext.to_owned()))
    } else {
        clean(&p.username).map(|name| Lookup::Username(name.to_owned()))
    }
}

/// User queries run inside an operation's connection or transaction.
pub(super) trait UserConn {
    /// The user holding `key`.
    async fn user_row(&mut self, key: &Lookup) -> Result<Option<UserRow>, Fail>;

    /// Fail with a conflict when `key` belongs to a user other than `me`.
    async fn ensure_free(&mut self, key: &Lookup, me: Option<i64>) -> Result<(), Fail>;

    /// Create a user from a profile inside a transaction, after the caller's checks.
    async fn insert_user(&mut self, p: &UserProfile) -> Result<UserRow, Fail>;

    /// Inside a transaction: create the user `p` designates, or refresh the fields
    /// it gives; the row and what was done to it.
    async fn upsert_row(&mut self, p: &UserProfile) -> Result<(UserRow, UserWrite), Fail>;
}

on_both_backends! {
    impl UserConn {
        async fn user_row(&mut self, key: &Lookup) -> Result<Option<UserRow>, Fail> {
            let query = users::table.select(UserRow::as_select());
            let row = match key {
                Lookup::Id(id) => query.find(*id).first::<UserRow>(self).await,
                Lookup::Username(name) => {
                    query
                        .filter(users::username.eq(name))
                        .first::<UserRow>(self)
                        .await
                }
                Lookup::ExternalId(ext) => {
                    query
                        .filter(users::external_id.eq(ext))
                        .first::<UserRow>(self)
                        .await
                }
            };
            Ok(row.optional()?)
        }

        async fn ensure_free(&mut self, key: &Lookup, me: Option<i64>) -> Result<(), Fail> {
            match self.user_row(key).await? {
                Some(holder) if Some(holder.id) != me => {
                    let value = match key {
                        Lookup::Id(id) => id.to_string(),
                        Lookup::Username(v) | Lookup::ExternalId(v) => v.clone(),
                    };
                    Err(Fail::conflict(format!(
                        "{} {value:?} is taken by another user",
                        key.label()
                    )))
                }
                _ => Ok(()),
            }
        }

        async fn insert_user(&mut self, p: &UserProfile) -> Result<UserRow, Fail> {
            let now = now_micros();
            let wanted = clean(&p.username).map(str::to_owned);
            let external = clean(&p.external_id);
            if let Some(name) = &wanted {
                self.ensure_free(&Lookup::Username(name.clone()), None).await?;
            }
            if let Some(ext) = external {
                self.ensure_free(&Lookup::ExternalId(ext.to_owned()), None).await?;
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
                .get_result::<UserRow>(&mut *self)
                .await?;
            if wanted.is_some() {
                return Ok(row);
            }
            // Only now is the id known. Should someone have chosen `user<id>` as their
            // own name, fall back to a suffix rather than refuse the new user.
            let mut candidate = format!("user{}", row.id);
            let mut n = 1;
            while self.user_row(&Lookup::Username(candidate.clone())).await?.is_some() {
                n += 1;
                candidate = format!("user{}_{}", row.id, n);
            }
            Ok(diesel::update(users::table.find(row.id))
                .set(users::username.eq(&candidate))
                .returning(UserRow::as_returning())
                .get_result::<UserRow>(self)
                .await?)
        }

        async fn upsert_row(&mut self, p: &UserProfile) -> Result<(UserRow, UserWrite), Fail> {
            let found = match designated(p) {
                Some(key) => self.user_row(&key).await?,
                None => None,
            };
            let Some(row) = found else {
                return Ok((self.insert_user(p).await?, UserWrite::Created));
            };
            let Some(changes) = changes_for(&row, p) else {
                return Ok((row, UserWrite::Unchanged));
            };
            if let Some(name) = &changes.username {
                self.ensure_free(&Lookup::Username(name.clone()), Some(row.id))
                    .await?;
            }
            if let Some(ext) = &changes.external_id {
                self.ensure_free(&Lookup::ExternalId(ext.clone()), Some(row.id))
                    .await?;
            }
            let row = diesel::update(users::table.find(row.id))
                .set(&changes)
                .returning(UserRow::as_returning())
                .get_result::<UserRow>(self)
                .await?;
            Ok((row, UserWrite::Changed))
        }
    }
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

/// The outcome of a user write, as the domain sees it.
pub(super) fn user_written(
    row: Result<(UserRow, UserWrite), Fail>,
) -> StoreResult<(User, UserWrite)> {
    row.map_err(user_conflict)
        .and_then(|(row, write)| Ok((row.into_user()?, write)))
        .map_err(Fail::into_store_error)
}

/// The user as it is when an upsert of `profile` would leave it unchanged: most
/// upserts are a known user signing in again with the same claims, answered from a
/// reader without queueing for the writer.
pub(super) async fn unchanged(db: &Db, profile: &UserProfile) -> StoreResult<Option<User>> {
    let lookup = profile.clone();
    with_conn!(db, read, |conn| {
        let found = match designated(&lookup) {
            Some(key) => conn.user_row(&key).await?,
            None => None,
        };
        match found {
            Some(row) if changes_for(&row, &lookup).is_none() => Ok(Some(row.into_user()?)),
            _ => Ok(None),
        }
    })
}

/// A user write (after [`unchanged`] found one needed) in a transaction of its own:
/// what a batch of user writes falls back to when it fails as a whole (`signup.rs`).
pub(super) async fn upsert_alone(db: &Db, profile: &UserProfile) -> StoreResult<(User, UserWrite)> {
    let p = profile.clone();
    if let Some(id) = p.id {
        reserve_id(db, IdTable::Users, id.0).await?;
    }
    // Two first sign-ins of the same new user can both find nothing and both
    // try to insert; the loser then meets the winner's row, as a unique violation
    // or through the explicit checks (a `Conflict`). Trying again finds the row and
    // takes the update path. A genuine conflict with another user stays one after
    // the retries, which only cost a little in that rare case.
    let mut retries = 2;
    loop {
        let p = p.clone();
        let row = with_tx!(db, |conn| conn.upsert_row(&p).await);
        match row {
            Err(fail) if (fail.is_unique_violation() || fail.is_conflict()) && retries > 0 => {
                retries -= 1
            }
            row => return user_written(row),
        }
    }
}

pub(super) async fn create(db: &Db, profile: &UserProfile) -> StoreResult<User> {
    let p = profile.clone();
    if let Some(id) = p.id {
        reserve_id(db, IdTable::Users, id.0).await?;
    }
    let created = user_written(with_tx!(db, |conn| {
        if let Some(id) = p.id {
            if conn.user_row(&Lookup::Id(id.0)).await?.is_some() {
                return Err(Fail::conflict(format!("user {id} exists already")));
            }
        }
        Ok((conn.insert_user(&p).await?, UserWrite::Created))
    }))?;
    Ok(created.0)
}

/// The user holding `key`.
pub(super) async fn find(db: &Db, key: Lookup) -> StoreResult<Option<User>> {
    with_conn!(db, read, |conn| {
        let row = conn.user_row(&key).await?;
        row.map(UserRow::into_user).transpose()
    })
}

/// The users with these ids, by id; unknown ids are left out.
pub(super) async fn many(db: &Db, ids: &[UserId]) -> StoreResult<Vec<User>> {
    let ids = dedup_keep_order(ids.iter().map(|i| i.0));
    with_conn!(db, read, |conn| {
        let mut rows = rows_by_ids!(conn, users::table, users::id, ids, UserRow)?;
        rows.sort_by_key(|r| r.id);
        rows.into_iter().map(UserRow::into_user).collect()
    })
}

pub(super) async fn list(db: &Db, limit: i64) -> StoreResult<Vec<User>> {
    let limit = limit.max(0);
    with_conn!(db, read, |conn| {
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
