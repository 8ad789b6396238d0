//! The chat service: every command goes through here, in three steps —
//! authorize ([`crate::policy`]), commit ([`Store`]), publish ([`Hub`]). A command's
//! result is returned only after its commit, so what a client sees acknowledged is
//! durable; events are published after the commit, so nobody sees a change that was
//! not stored.
//!
//! This file holds the service itself (its state, construction, the per-user rate,
//! and `publish`, the way the events of commands leave it); the commands live with
//! the aggregate they change, one file each: `identity` (users, sign-in), `rooms` (lookup),
//! `room_changes` (create, rename, members), `messages`, `uploads`, `reads`,
//! `presence` (connections, typing, attention), and `delivery` for the events other
//! nodes send.

mod catch_up;
mod delivery;
mod identity;
mod messages;
mod presence;
mod reads;
mod room_changes;
mod rooms;
mod uploads;

pub use catch_up::{
    check_catch_up_limit, Page, RoomSummary, RoomSync, Sync, DEFAULT_CATCH_UP_LIMIT,
    MAX_CATCH_UP_LIMIT, MAX_CHANGED_PER_ROOM,
};
pub use identity::{MAX_DISPLAY_NAME_CHARS, MAX_PHOTO_BYTES};
pub use messages::{QueuedMessage, SendMessage};
pub use reads::ReadOutcome;
pub use room_changes::{CreateRoom, RoomShape};
pub use rooms::RoomRef;
pub use uploads::{sanitize_file_name, Upload};

use crate::auth::{Principal, TokenVerifier};
use crate::cache::{RoomCache, UserCache};
use crate::cluster::{Broker, Envelope, Local};
use crate::error::ChatError;
use crate::event::{Event, Origin, Published};
use crate::files::FileStore;
use crate::hub::{next_conn_id, Hub};
use crate::ids::{ConnId, UserId};
use crate::model::SharedRoom;
use crate::store::Store;
use crate::typing::TypingRegistry;
use crate::Result;
use std::sync::Arc;

/// Limits and addresses the service needs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Absolute base URL that file URLs are built on, without a trailing slash.
    pub public_base_url: String,
    pub max_attachment_bytes: usize,
    pub max_text_chars: usize,
    /// Events buffered per connection before it is closed as a slow consumer.
    pub outbound_queue: usize,
    /// Close a connection when the token it authorized with expires
    /// (`--close-on-token-expiry`; the legacy backends kept sockets open).
    pub close_on_token_expiry: bool,
    pub caps: Caps,
    /// Total bytes of one user's recorded uploads (`--max-upload-bytes-per-user`);
    /// 0: no limit.
    pub max_upload_bytes_per_user: u64,
    /// Uploads no message holds are deleted this long after their upload
    /// (`--unattached-upload-ttl-secs`); zero: never.
    pub unattached_upload_ttl: std::time::Duration,
    /// Commands per user (`--user-rate`, `--user-burst`), see [`crate::throttle`].
    pub user_rate: crate::throttle::Rate,
}

/// The default per-user command rate: far above what a person types or a client
/// syncs, far below what a script floods with.
pub const DEFAULT_USER_RATE: crate::throttle::Rate = crate::throttle::Rate {
    per_sec: 50.0,
    burst: 200.0,
};

/// Bounds on the work one request may ask of the server, checked before any of it
/// is done: every list a client sends is capped, so no frame costs more than a
/// bounded amount of CPU, memory and database work, and no reply grows without bound.
#[derive(Clone, Debug)]
pub struct Caps {
    /// Users named in one create or add (`--max-users-per-request`).
    pub users_per_request: usize,
    /// Members of one room (`--max-room-members`).
    pub room_members: usize,
    /// Message ids in one delete (`--max-ids-per-request`).
    pub ids_per_request: usize,
    /// A message's text in bytes (`--max-message-bytes`), besides its characters.
    pub text_bytes: usize,
    /// Text bytes of the messages of one history reply (`--max-page-bytes`): a page
    /// ends before the message that would cross it (never empty when there is one).
    pub page_bytes: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            users_per_request: 1000,
            room_members: 10_000,
            ids_per_request: 1000,
            text_bytes: 64 * 1024,
            page_bytes: 4 * 1024 * 1024,
        }
    }
}

pub use crate::ids::dedup_keep_order;

/// Refuse a list longer than `limit`, or a size above it (before any work is done
/// on it).
fn check_limit(what: &'static str, size: usize, limit: usize) -> Result<()> {
    if size > limit {
        return Err(ChatError::TooLarge { what, size, limit });
    }
    Ok(())
}

/// The ids a request names in its list `field`: at least one (`one` names what one
/// is), at most `limit`, each once in the order first named.
fn named_ids<T: Copy + Eq + std::hash::Hash>(
    field: &'static str,
    one: &str,
    list: &[T],
    limit: usize,
) -> Result<Vec<T>> {
    if list.is_empty() {
        return Err(ChatError::invalid(
            field,
            format!("give at least one {one}"),
        ));
    }
    check_limit(field, list.len(), limit)?;
    Ok(dedup_keep_order(list))
}

/// The default of [`ServiceConfig::max_upload_bytes_per_user`]: 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES_PER_USER: u64 = 1024 * 1024 * 1024;
/// The default of [`ServiceConfig::unattached_upload_ttl`]: 24 hours.
pub const DEFAULT_UNATTACHED_UPLOAD_TTL: std::time::Duration =
    std::time::Duration::from_secs(24 * 60 * 60);

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            public_base_url: "http://127.0.0.1:8080".into(),
            max_attachment_bytes: 10 * 1024 * 1024,
            max_text_chars: 16 * 1024,
            outbound_queue: 1024,
            close_on_token_expiry: false,
            caps: Caps::default(),
            user_rate: DEFAULT_USER_RATE,
            max_upload_bytes_per_user: DEFAULT_MAX_UPLOAD_BYTES_PER_USER,
            unattached_upload_ttl: DEFAULT_UNATTACHED_UPLOAD_TTL,
        }
    }
}

/// The one chat service of a process, shared by every connection of every dialect
/// (see the module docs).
pub struct ChatService {
    store: Arc<dyn Store>,
    verifier: Arc<dyn TokenVerifier>,
    files: FileStore,
    hub: Hub,
    typing: TypingRegistry,
    /// Users whose contacts were last told "online".
    announced_online: std::sync::Mutex<std::collections::HashSet<UserId>>,
    rooms: RoomCache,
    users: UserCache,
    config: ServiceConfig,
    /// Commands per user.
    throttle: crate::throttle::Throttle,
    /// Set when this node is one of a cluster (see [`crate::cluster`]).
    broker: std::sync::OnceLock<Arc<dyn Broker>>,
    /// Added to this process's connection ids: the node id in the high bits, so an
    /// origin's connection id is unique in the cluster.
    conn_base: std::sync::atomic::AtomicI64,
    /// Who has their conversation with whom open (`(who, peer)`), as the attention
    /// events of the whole cluster tell: a node learns of waits on other nodes from
    /// their events, and forgets a user's waits when the user goes offline (so a dead
    /// node's waits do not outlive it).
    waiting: std::sync::Mutex<std::collections::HashSet<(UserId, UserId)>>,
    /// Uploads (recording their row, then storing their bytes) hold it shared; the
    /// sweep holds it alone while it checks that no row names a blob and deletes
    /// it, so it never deletes the bytes of an upload recorded meanwhile.
    blob_gc: tokio::sync::RwLock<()>,
    /// What the operator's `/metrics` shows (see [`crate::meter`]).
    meter: crate::meter::Meter,
}

impl ChatService {
    pub fn new(
        store: Arc<dyn Store>,
        verifier: Arc<dyn TokenVerifier>,
        files: FileStore,
        config: ServiceConfig,
    ) -> Arc<Self> {
        Arc::new(ChatService {
            store,
            verifier,
            files,
            hub: Hub::new(config.outbound_queue),
            typing: TypingRegistry::default(),
            announced_online: Default::default(),
            rooms: RoomCache::default(),
            users: UserCache::default(),
            throttle: crate::throttle::Throttle::new(config.user_rate),
            config,
            broker: std::sync::OnceLock::new(),
            conn_base: std::sync::atomic::AtomicI64::new(0),
            waiting: Default::default(),
            blob_gc: tokio::sync::RwLock::new(()),
            meter: crate::meter::Meter::default(),
        })
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn files(&self) -> &FileStore {
        &self.files
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn meter(&self) -> &crate::meter::Meter {
        &self.meter
    }

    /// Make this service a node of a cluster: from now on every event goes through
    /// `broker` (see [`crate::cluster`]). Call before the first connection; a
    /// second call is refused.
    pub fn join_cluster(&self, broker: Arc<dyn Broker>, node: i64) -> Result<()> {
        self.conn_base.store(
            node.checked_shl(32).unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.broker
            .set(broker)
            .map_err(|_| ChatError::Storage("the service is already in a cluster".into()))?;
        self.store.joined_cluster(node);
        Ok(())
    }

    /// Count one command of `actor` against the per-user rate.
    pub(super) fn throttle(&self, actor: &Principal) -> Result<()> {
        match self.throttle.allow(actor.id()) {
            true => Ok(()),
            false => Err(ChatError::RateLimited { what: "command" }),
        }
    }

    pub fn new_conn_id(&self) -> ConnId {
        ConnId(self.conn_base.load(std::sync::atomic::Ordering::Relaxed) | next_conn_id().0)
    }

    /// Deliver an event to its recipients' connections: straight to the hub on a
    /// single node, through the broker in a cluster (returning once it came back).
    pub(super) async fn publish(
        &self,
        recipients: &[UserId],
        event: Event,
        origin: Option<Origin>,
    ) {
        match self.broker.get() {
            None => self
                .hub
                .publish(recipients, Arc::new(Published::new(event, origin))),
            Some(broker) => {
                let envelope = Envelope::of(&event, recipients, origin.as_ref());
                let local = Local {
                    recipients: recipients.to_vec(),
                    event: Arc::new(Published::new(event, origin)),
                };
                broker.publish(envelope, Some(local)).await;
            }
        }
    }

    /// Publish an event about a room to the members its view lists (the view the
    /// event carries: the room as committed by the command that publishes it).
    pub(super) async fn publish_to_members(&self, event: Event, origin: Option<Origin>) {
        let members = event.room().map(|r| r.member_ids()).unwrap_or_default();
        self.publish(&members, event, origin).await
    }

    /// Publish what a change did, when it did anything: `event` builds the event
    /// from the room after the change and what changed (the ids a command added,
    /// removed or deleted), sent to `recipients` (`None`: the members of that room).
    /// Returns both for the command's reply.
    pub(super) async fn publish_changed<T: Clone>(
        &self,
        room: SharedRoom,
        changed: Vec<T>,
        recipients: Option<&[UserId]>,
        event: impl FnOnce(SharedRoom, Vec<T>) -> Event,
        origin: Option<Origin>,
    ) -> (SharedRoom, Vec<T>) {
        if !changed.is_empty() {
            let event = event(room.clone(), changed.clone());
            match recipients {
                Some(to) => self.publish(to, event, origin).await,
                None => self.publish_to_members(event, origin).await,
            }
        }
        (room, changed)
    }
}
