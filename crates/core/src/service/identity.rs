//! Users: sign-in from token claims, profiles, creation and import.
//!
//! Invariant: every write that changes a user record makes the cached users and room
//! views stale, on every node. Mechanism: each such write is followed by
//! `profiles_changed`, which forgets both caches here and tells the other nodes of a
//! cluster to forget theirs (a record created shows in no cache yet: see `put_user`).
//! Consequence: a changed profile shows in the next view loaded anywhere.
//! A profile a client or operator gives is checked first (`validate_profile` caps
//! every field), so events that name a user carry no oversized field; a sign-in
//! writes only when the token says something the record does not, so checking a
//! token costs a read, not a write.

use super::ChatService;
use crate::auth::{Claims, Principal, Subject, TokenError};
use crate::cluster::{Envelope, Remote};
use crate::error::ChatError;
use crate::ids::UserId;
use crate::model::*;
use crate::policy;
use crate::store::UserWrite;
use crate::Result;

impl ChatService {
    /// Verify a token and return its principal, provisioning the user on first sight.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing.into());
        }
        let claims = self.verifier.verify(token)?;
        self.principal_for(&claims).await
    }

    /// The principal for verified claims; creates or refreshes the user.
    pub async fn principal_for(&self, claims: &Claims) -> Result<Principal> {
        let mut profile = UserProfile {
            username: claims.username.clone(),
            email: claims.email.clone(),
            first_name: claims.first_name.clone(),
            last_name: claims.last_name.clone(),
            ..Default::default()
        };
        let existing = match &claims.subject {
            Some(Subject::Id(id)) => {
                profile.id = Some(UserId(*id));
                self.store.user(UserId(*id)).await?
            }
            Some(Subject::External(ext)) => {
                profile.external_id = Some(ext.clone());
                self.store.user_by_external_id(ext).await?
            }
            None => return Err(TokenError::NoSubject.into()),
        };
        // Write only when the token says something the record does not: tokens are
        // checked on every connection and request, and most carry nothing new.
        let user = match existing {
            Some(u) if !profile_changes(&u, &profile) => u,
            _ => self.put_user(&profile).await?,
        };
        Ok(Principal {
            is_admin: user.is_admin || claims.is_admin,
            user,
            moderator: false,
            expires_at: claims.expires_at,
        })
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.store.user(id).await?)
    }

    /// The user with this username (served from the user cache, see [`crate::cache`]).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        if let Some(user) = self.users.get_if(username, |_| true) {
            return Ok(Some(user));
        }
        let generation = self.users.generation();
        let user = self.store.user_by_username(username).await?;
        if let Some(u) = &user {
            self.users.put(generation, u.username.clone(), u.clone());
        }
        Ok(user)
    }

    /// A user's profile changed (or a user was created): views that show users and
    /// cached users are loaded again.
    async fn profiles_changed(&self) {
        self.forget_profiles();
        if let Some(broker) = self.broker.get() {
            let envelope = Envelope::about_users(Remote::ProfilesChanged, Vec::new());
            broker.publish(envelope, None).await;
        }
    }

    pub(super) fn forget_profiles(&self) {
        self.rooms.views.forget_all();
        self.users.forget_all();
    }

    pub async fn list_users(&self, limit: i64) -> Result<Vec<User>> {
        Ok(self.store.list_users(limit).await?)
    }

    /// Create a user ahead of time (admins, CLI import).
    pub async fn create_user(
        &self,
        actor: Option<&Principal>,
        profile: &UserProfile,
    ) -> Result<User> {
        if let Some(actor) = actor {
            policy::require_admin(actor)?;
        }
        validate_profile(profile)?;
        let user = self.store.create_user(profile).await;
        self.profiles_changed().await;
        Ok(user?)
    }

    /// Create or refresh a user record on behalf of `actor`: admins any user, others
    /// only their own (a dialect's user-provisioning request made with a token).
    pub async fn upsert_user_as(&self, actor: &Principal, profile: &UserProfile) -> Result<User> {
        self.throttle(actor)?;
        policy::can_write_profile(actor, profile)?;
        let mut profile = profile.clone();
        if !actor.is_admin {
            profile.id = Some(actor.id());
        }
        self.upsert_user(&profile).await
    }

    /// Create or refresh a user (a dialect's user-provisioning request, CLI import).
    pub async fn upsert_user(&self, profile: &UserProfile) -> Result<User> {
        validate_profile(profile)?;
        self.put_user(profile).await
    }

    /// Write a user record, forgetting cached users and views only when an existing
    /// record changed: a record just created is in no room and under no cached name
    /// (the user cache holds only users found), so a storm of first sign-ins costs no
    /// cache reloads and sends no cluster-wide invalidation per user. A failed write
    /// may have changed something before it failed, so it counts as a change.
    async fn put_user(&self, profile: &UserProfile) -> Result<User> {
        match self.store.put_user(profile).await {
            Ok((user, UserWrite::Created | UserWrite::Unchanged)) => Ok(user),
            outcome => {
                self.profiles_changed().await;
                Ok(outcome?.0)
            }
        }
    }
}

/// Whether applying `p` would change `u`.
fn profile_changes(u: &User, p: &UserProfile) -> bool {
    fn differs(field: &Option<String>, current: &str) -> bool {
        field.as_deref().is_some_and(|v| v != current)
    }
    differs(&p.username, &u.username)
        || differs(&p.email, &u.email)
        || differs(&p.first_name, &u.first_name)
        || differs(&p.last_name, &u.last_name)
        || p.is_admin.is_some_and(|a| a != u.is_admin)
}

fn validate_profile(p: &UserProfile) -> Result<()> {
    if let Some(u) = &p.username {
        if u.trim().is_empty() || u.chars().count() > 150 {
            return Err(ChatError::invalid("username", "1 to 150 characters"));
        }
    }
    if let Some(UserId(id)) = p.id {
        if id <= 0 {
            return Err(ChatError::invalid("id", "a user id is a positive integer"));
        }
    }
    // Every field is shown to other users (and sent with every event that names the
    // user): each is capped, in characters and, for URLs, in bytes.
    let caps: [(&str, &Option<String>, usize); 7] = [
        ("email", &p.email, 254),
        ("first_name", &p.first_name, 150),
        ("last_name", &p.last_name, 150),
        ("name", &p.display_name, MAX_DISPLAY_NAME_CHARS),
        ("color", &p.color, 32),
        ("role", &p.role, 64),
        ("external_id", &p.external_id, 255),
    ];
    for (field, value, max) in caps {
        if value.as_deref().is_some_and(|v| v.chars().count() > max) {
            return Err(ChatError::invalid(
                field,
                format!("at most {max} characters"),
            ));
        }
    }
    if p.photo
        .as_deref()
        .is_some_and(|v| v.len() > MAX_PHOTO_BYTES)
    {
        return Err(ChatError::invalid(
            "photo",
            format!("at most {MAX_PHOTO_BYTES} bytes (a URL, not the image)"),
        ));
    }
    Ok(())
}

/// The longest display name ([`User::display_name`]).
pub const MAX_DISPLAY_NAME_CHARS: usize = 150;
/// The longest photo reference: a URL, never the image's bytes.
pub const MAX_PHOTO_BYTES: usize = 2048;
