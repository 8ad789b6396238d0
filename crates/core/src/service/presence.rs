//! Connections and ephemeral state: online presence, typing, attention. Nothing
//! here is stored.
//!
//! Invariant: what a user's contacts were last told about their presence is the
//! hub's current state. Mechanism: connects and disconnects race, so an announcement
//! publishes the state read at announcement time, under the lock that records what
//! was announced, and only when it differs. Consequence: contacts never end on a
//! stale "offline" for a connected user. (In a cluster the broker's database, which
//! knows every node's connections, decides instead.) Typing is published at most once per
//! refresh interval ([`crate::typing`]) and attention only on a real change, so
//! repeating either costs the recipients nothing.

use super::rooms::RoomRef;
use super::ChatService;
use crate::auth::Principal;
use crate::error::ChatError;
use crate::event::{Event, Published};
use crate::hub::{KillSwitch, Subscription};
use crate::ids::{ConnId, UserId};
use crate::model::*;
use crate::policy;
use crate::typing::{TypingDecision, TYPING_TTL};
use crate::Result;
use std::sync::Arc;

/// Fire `kill` when the token expiring at `exp` (Unix seconds) does, unless the
/// connection closed first.
fn close_at_expiry(exp: i64, kill: Arc<KillSwitch>) {
    let left = exp.saturating_sub(chrono::Utc::now().timestamp()).max(0) as u64;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(left)) => kill.kill(crate::hub::CloseReason::TokenExpired),
            _ = kill.killed() => {}
        }
    });
}

impl ChatService {
    /// Register an open connection of `principal` with the hub. The first connection of
    /// a user makes them online, which their contacts are told.
    pub async fn connect(
        &self,
        principal: &Principal,
        conn: ConnId,
        kill: Arc<KillSwitch>,
    ) -> Subscription {
        if self.config.close_on_token_expiry {
            if let Some(exp) = principal.expires_at {
                close_at_expiry(exp, kill.clone());
            }
        }
        let (sub, first) = self.hub.register(principal.id(), conn, kill);
        if first {
            self.announce_presence(&principal.user).await;
        }
        sub
    }

    /// Unregister a connection; the last one of a user makes them offline.
    pub async fn disconnect(&self, sub: &mut Subscription) {
        if sub.unregister() {
            if let Ok(Some(user)) = self.store.user(sub.user).await {
                self.announce_presence(&user).await;
            }
        }
    }

    /// Tell a user's contacts whether they are online now. Connects and disconnects
    /// race (a reconnect can register before the previous close has published), so
    /// this publishes the hub's current state, and only when it differs from what was
    /// last announced: contacts never end on a stale "offline" for a connected user.
    async fn announce_presence(&self, user: &User) {
        if let Some(broker) = self.broker.get() {
            // The cluster's database knows every node's connections and decides.
            broker.presence_changed(user.id);
            return;
        }
        let Some(contacts) = self.presence_audience(user).await else {
            return;
        };
        let mut announced = self
            .announced_online
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let online = self.hub.is_online(user.id);
        let changed = if online {
            announced.insert(user.id)
        } else {
            announced.remove(&user.id)
        };
        if changed {
            // Publishing only enqueues; holding this lock across it keeps the order of
            // announcements equal to the order of the state changes they report.
            self.presence_to_hub(&contacts, user.clone(), online);
        }
    }

    /// The contacts a user's presence goes to; `None` (logged) when they cannot be
    /// read, and the presence is not published.
    async fn presence_audience(&self, user: &User) -> Option<Vec<UserId>> {
        match self.store.contacts(user.id).await {
            Ok(contacts) => Some(contacts),
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "presence not published");
                None
            }
        }
    }

    /// Put a presence event straight into this node's queues, not through a broker:
    /// for a presence this node decides alone, or one the cluster decided.
    pub(super) fn presence_to_hub(&self, contacts: &[UserId], user: User, online: bool) {
        self.hub.publish(
            contacts,
            Arc::new(Published::new(Event::Presence { user, online }, None)),
        );
    }

    /// Whether the user has an open connection (on any node of a cluster).
    pub fn is_online(&self, user: UserId) -> bool {
        self.hub.is_online(user) || self.broker.get().is_some_and(|b| b.is_online(user))
    }

    async fn publish_presence(&self, user: &User, online: bool) {
        if let Some(contacts) = self.presence_audience(user).await {
            let event = Event::Presence {
                user: user.clone(),
                online,
            };
            self.publish(&contacts, event, None).await
        }
    }

    /// The actor is typing in a room: published to the other members at most once per
    /// refresh interval; a flood is refused.
    pub async fn typing(&self, actor: &Principal, room: &RoomRef) -> Result<SharedRoom> {
        self.throttle(actor)?;
        let view = self.resolve_room(actor, room).await?;
        policy::can_post(actor, &view)?;
        match self
            .typing
            .touch(view.id(), actor.id(), std::time::Instant::now())
        {
            TypingDecision::Flood => Err(ChatError::RateLimited { what: "typing" }),
            TypingDecision::Quiet => Ok(view),
            TypingDecision::Publish => {
                let until =
                    chrono::Utc::now() + chrono::Duration::from_std(TYPING_TTL).unwrap_or_default();
                let others: Vec<UserId> = view
                    .member_ids()
                    .into_iter()
                    .filter(|u| *u != actor.id())
                    .collect();
                self.publish(
                    &others,
                    Event::Typing {
                        room: view.clone(),
                        user: actor.user.clone(),
                        until,
                    },
                    None,
                )
                .await;
                Ok(view)
            }
        }
    }

    /// Announce presence explicitly (a dialect with online and offline requests).
    pub async fn set_presence(&self, actor: &Principal, online: bool) -> Result<()> {
        self.throttle(actor)?;
        self.publish_presence(&actor.user, online).await;
        Ok(())
    }

    pub(super) fn lock_waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<(UserId, UserId)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record that `who` opened (or closed) their conversation with `peer`; whether
    /// that changed anything.
    pub(super) fn note_waiting(&self, who: UserId, peer: UserId, waiting: bool) -> bool {
        let mut set = self.lock_waiting();
        if waiting {
            set.insert((who, peer))
        } else {
            set.remove(&(who, peer))
        }
    }

    /// Whether `who` has their conversation with `peer` open, on any node of the
    /// cluster (as far as the attention events delivered here tell).
    pub fn is_waiting_for(&self, who: UserId, peer: UserId) -> bool {
        self.lock_waiting().contains(&(who, peer))
    }

    /// Tell `peer` that the actor opened or closed their conversation.
    pub async fn attention(&self, actor: &Principal, peer: UserId, waiting: bool) -> Result<()> {
        self.throttle(actor)?;
        if self.store.user(peer).await?.is_none() {
            return Err(ChatError::not_found("user"));
        }
        // Published only on a real change: repeating the command costs the peer
        // nothing. (It goes to the one user named, who need not share a room with
        // the actor: a dialect may make the direct chat with the first message, after
        // both opened the conversation.)
        if !self.note_waiting(actor.user.id, peer, waiting) {
            return Ok(());
        }
        self.publish(
            &[peer],
            Event::Attention {
                user: actor.user.clone(),
                waiting,
            },
            None,
        )
        .await;
        Ok(())
    }
}
