//! The chat service: every command goes through here, in three steps —
//! authorize ([`crate::policy`]), commit ([`Store`]), publish ([`Hub`]). A command's
//! result is returned only after its commit, so what a client sees acknowledged is
//! durable; events are published after the commit, so nobody sees a change that was
//! not stored.

use crate::auth::{Claims, Principal, Subject, TokenError, TokenVerifier};
use crate::cache::{RoomCache, UserCache};
use crate::cluster::{Broker, Envelope, Local, Remote};
use crate::command::*;
use crate::error::ChatError;
use crate::event::{Event, Origin, Published};
use crate::files::FileStore;
use crate::hub::{next_conn_id, Hub, KillSwitch, Subscription};
use crate::ids::{AttachmentId, ConnId, MessageId, RoomId, UserId};
use crate::model::*;
use crate::policy;
use crate::store::{NewAttachment, NewMessage, NewRoom, Store};
use crate::typing::{TypingDecision, TypingRegistry, TYPING_TTL};
use crate::Result;
use std::collections::HashMap;
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

/// `list` without repeats, first occurrences kept in order; O(n).
pub fn dedup_keep_order<T: Copy + Eq + std::hash::Hash>(list: &[T]) -> Vec<T> {
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    list.iter().copied().filter(|x| seen.insert(*x)).collect()
}

/// Refuse a list longer than `limit` (before any work is done on it).
fn cap_list(what: &'static str, len: usize, limit: usize) -> Result<()> {
    if len > limit {
        return Err(ChatError::TooLarge {
            what,
            size: len,
            limit,
        });
    }
    Ok(())
}

/// The default of [`ServiceConfig::max_upload_bytes_per_user`]: 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES_PER_USER: u64 = 1024 * 1024 * 1024;
/// The default of [`ServiceConfig::unattached_upload_ttl`]: 24 hours.
pub const DEFAULT_UNATTACHED_UPLOAD_TTL: std::time::Duration =
    std::time::Duration::from_secs(24 * 60 * 60);
/// Unattached uploads deleted per sweep query.
const SWEEP_BATCH: i64 = 500;

/// Why a connection closed by `--close-on-token-expiry` is closed.
pub const TOKEN_EXPIRED: &str = "token expired: reconnect with a fresh token";

/// Fire `kill` when the token expiring at `exp` (Unix seconds) does, unless the
/// connection closed first.
fn close_at_expiry(exp: i64, kill: Arc<KillSwitch>) {
    let left = exp.saturating_sub(chrono::Utc::now().timestamp()).max(0) as u64;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(left)) => kill.kill(TOKEN_EXPIRED),
            _ = kill.killed() => {}
        }
    });
}

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
}

/// The result of a read command.
#[derive(Clone, Debug)]
pub struct ReadOutcome {
    pub room: SharedRoom,
    pub up_to: Option<MessageId>,
    /// Whether the reader's watermark moved (and an event was published).
    pub moved: bool,
    /// Messages of other authors that became read by this command.
    pub newly_read: Vec<MessageId>,
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
            .map_err(|_| ChatError::Storage("the service is already in a cluster".into()))
    }

    /// Whether events go through a cluster broker.
    pub fn is_clustered(&self) -> bool {
        self.broker.get().is_some()
    }

    /// Deliver an event that came through the cluster broker (from another node, or
    /// from this one when it was not kept in memory) to this node's connections.
    /// `message`: the committed row of a new message's event.
    pub async fn deliver(&self, envelope: Envelope, message: Option<Message>) -> Result<()> {
        let Envelope {
            room,
            to,
            origin,
            what,
        } = envelope;
        let origin = origin.map(crate::cluster::WireOrigin::into_origin);
        let view = match room {
            Some(id) => {
                if what.changes_room() {
                    self.rooms.views.forget(&id);
                }
                Some(self.room_by_id(id).await?)
            }
            None => None,
        };
        let needs_room = || ChatError::Storage("a room event without its room".into());
        let event = match what {
            Remote::ProfilesChanged => {
                self.forget_profiles();
                return Ok(());
            }
            Remote::PresenceOf { user, online } => {
                if !online {
                    self.lock_waiting().retain(|(who, _)| *who != user);
                }
                if self.hub.connection_count() == 0 {
                    return Ok(());
                }
                let Some(user) = self.store.user(user).await? else {
                    return Ok(());
                };
                let contacts = self.store.contacts(user.id).await?;
                self.hub.publish(
                    &contacts,
                    Arc::new(Published::new(Event::Presence { user, online }, None)),
                );
                return Ok(());
            }
            Remote::Presence { user, online } => Event::Presence {
                user: *user,
                online,
            },
            Remote::Attention { user, waiting } => {
                for peer in to.iter().flatten() {
                    self.note_waiting(user.id, *peer, waiting);
                }
                Event::Attention {
                    user: *user,
                    waiting,
                }
            }
            what => {
                let room = view.clone().ok_or_else(needs_room)?;
                match what {
                    Remote::RoomCreated { by } => Event::RoomCreated { room, by },
                    Remote::RoomUpdated { by } => Event::RoomUpdated { room, by },
                    Remote::MembersAdded { users, by } => Event::MembersAdded { room, users, by },
                    Remote::MembersRemoved { users, by } => {
                        Event::MembersRemoved { room, users, by }
                    }
                    Remote::MessageCreated { message: sent } => {
                        let message = match (sent, message) {
                            (Some(view), _) => Arc::new(*view),
                            (None, Some(row)) => {
                                Arc::new(self.message_views(&room, vec![row]).await?.remove(0))
                            }
                            (None, None) => return Ok(()),
                        };
                        Event::MessageCreated { room, message }
                    }
                    Remote::MessageEdited { message } => Event::MessageEdited {
                        room,
                        message: Arc::new(*message),
                    },
                    Remote::MessagesDeleted { ids, by } => Event::MessagesDeleted { room, ids, by },
                    Remote::MessagesRead {
                        reader,
                        up_to,
                        newly_read,
                    } => Event::MessagesRead {
                        room,
                        reader,
                        up_to,
                        newly_read,
                    },
                    Remote::Typing { user, until } => Event::Typing {
                        room,
                        user: *user,
                        until,
                    },
                    Remote::ProfilesChanged
                    | Remote::PresenceOf { .. }
                    | Remote::Presence { .. }
                    | Remote::Attention { .. } => unreachable!("handled above"),
                }
            }
        };
        let recipients = match (to, &view) {
            (Some(to), _) => to,
            (None, Some(view)) => view.member_ids(),
            (None, None) => Vec::new(),
        };
        self.hub
            .publish(&recipients, Arc::new(Published::new(event, origin)));
        Ok(())
    }

    /// Count one command of `actor` against the per-user rate.
    fn throttle(&self, actor: &Principal) -> Result<()> {
        match self.throttle.allow(actor.id()) {
            true => Ok(()),
            false => Err(ChatError::RateLimited { what: "command" }),
        }
    }

    // ------------------------------------------------------------------ identity

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
            _ => {
                let user = self.store.upsert_user(&profile).await;
                self.profiles_changed().await;
                user?
            }
        };
        Ok(Principal {
            is_admin: user.is_admin || claims.is_admin,
            user,
            moderator: false,
            expires_at: claims.expires_at,
        })
    }

    // ------------------------------------------------------------------ connections

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
        let contacts = match self.store.contacts(user.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "presence not published");
                return;
            }
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
            self.hub.publish(
                &contacts,
                Arc::new(Published::new(
                    Event::Presence {
                        user: user.clone(),
                        online,
                    },
                    None,
                )),
            );
        }
    }

    pub fn new_conn_id(&self) -> ConnId {
        ConnId(self.conn_base.load(std::sync::atomic::Ordering::Relaxed) | next_conn_id().0)
    }

    /// Whether the user has an open connection (on any node of a cluster).
    pub fn is_online(&self, user: UserId) -> bool {
        self.hub.is_online(user) || self.broker.get().is_some_and(|b| b.is_online(user))
    }

    async fn publish_presence(&self, user: &User, online: bool) {
        match self.store.contacts(user.id).await {
            Ok(contacts) => {
                self.publish(
                    &contacts,
                    Event::Presence {
                        user: user.clone(),
                        online,
                    },
                    None,
                )
                .await
            }
            Err(e) => tracing::warn!(user = %user.id, error = %e, "presence not published"),
        }
    }

    /// Deliver an event to its recipients' connections: straight to the hub on a
    /// single node, through the broker in a cluster (returning once it came back).
    async fn publish(&self, recipients: &[UserId], event: Event, origin: Option<Origin>) {
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

    // ------------------------------------------------------------------ rooms

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

    async fn room_by_id(&self, id: RoomId) -> Result<SharedRoom> {
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

    // ------------------------------------------------------------------ messages

    fn message_view(
        &self,
        room: &RoomView,
        message: Message,
        author: Option<&User>,
    ) -> MessageView {
        let author = author
            .cloned()
            .or_else(|| room.member(message.author_id).cloned())
            .unwrap_or_else(|| User::placeholder(message.author_id));
        MessageView {
            is_read: room.is_read(message.author_id, message.id),
            message,
            author,
        }
    }

    /// Views of messages of a room, with authors who may have left the room.
    async fn message_views(
        &self,
        room: &RoomView,
        messages: Vec<Message>,
    ) -> Result<Vec<MessageView>> {
        let mut missing: Vec<UserId> = messages
            .iter()
            .map(|m| m.author_id)
            .filter(|a| !room.is_member(*a))
            .collect();
        missing.sort();
        missing.dedup();
        let former = if missing.is_empty() {
            Vec::new()
        } else {
            self.store.users(&missing).await?
        };
        Ok(messages
            .into_iter()
            .map(|m| {
                let author = former.iter().find(|u| u.id == m.author_id);
                self.message_view(room, m, author)
            })
            .collect())
    }

    /// Record an uploaded file and store its bytes. The row comes first, so the
    /// per-user quota is checked before any bytes are written, and a sweep running
    /// meanwhile sees the row and keeps the bytes (see `blob_gc`).
    pub async fn upload(&self, actor: &Principal, upload: Upload) -> Result<Attachment> {
        self.throttle(actor)?;
        self.store_upload(actor, upload).await
    }

    /// An upload as part of a command already counted (a message's files).
    async fn store_upload(&self, actor: &Principal, upload: Upload) -> Result<Attachment> {
        let name = sanitize_file_name(&upload.name);
        if upload.bytes.len() > self.config.max_attachment_bytes {
            return Err(ChatError::TooLarge {
                what: "file",
                size: upload.bytes.len(),
                limit: self.config.max_attachment_bytes,
            });
        }
        let content_type = upload
            .content_type
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| {
                mime_guess::from_path(&name)
                    .first_or_octet_stream()
                    .to_string()
            });
        let quota = match self.config.max_upload_bytes_per_user {
            0 => None,
            q => Some(i64::try_from(q).unwrap_or(i64::MAX)),
        };
        let _shared = self.blob_gc.read().await;
        let attachment = self
            .store
            .insert_attachment(
                &NewAttachment {
                    name,
                    content_type,
                    size: upload.bytes.len() as i64,
                    blob_key: crate::files::key_of(&upload.bytes),
                    uploader_id: actor.id(),
                    token: crate::files::new_token(),
                },
                quota,
            )
            .await?;
        if let Err(e) = self.files.put(&upload.bytes).await {
            tracing::error!(attachment = %attachment.id, error = %e, "could not store an upload's bytes");
            if let Err(e) = self.store.delete_unattached(attachment.id).await {
                tracing::warn!(attachment = %attachment.id, error = %e, "could not forget an upload whose bytes were not stored (the sweep will)");
            }
            return Err(ChatError::Storage("could not store the file".into()));
        }
        Ok(attachment)
    }

    pub async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        Ok(self.store.attachment(id).await?)
    }

    /// The absolute URL an attachment is served at:
    /// `<public base>/files/<id>/<token>/<name>` (see [`crate::files`]).
    pub fn file_url(&self, a: &Attachment) -> String {
        format!(
            "{}/files/{}/{}/{}",
            self.config.public_base_url.trim_end_matches('/'),
            a.id,
            a.token,
            percent_encoding::utf8_percent_encode(&a.name, FILE_NAME_ESCAPES)
        )
    }

    /// Delete the uploads no message holds that are older than
    /// [`ServiceConfig::unattached_upload_ttl`], and the bytes of each that no other
    /// attachment shares. Returns how many uploads went.
    pub async fn sweep_unattached_uploads(&self) -> Result<usize> {
        let ttl = self.config.unattached_upload_ttl;
        if ttl.is_zero() {
            return Ok(0);
        }
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let mut deleted = 0;
        let mut keys = std::collections::BTreeSet::new();
        loop {
            let batch = self
                .store
                .delete_unattached_before(cutoff, SWEEP_BATCH)
                .await?;
            deleted += batch.len();
            let full = batch.len() as i64 >= SWEEP_BATCH;
            keys.extend(batch.into_iter().map(|a| a.blob_key));
            if !full {
                break;
            }
        }
        for key in keys {
            let _alone = self.blob_gc.write().await;
            if self.store.blob_in_use(&key).await? {
                continue;
            }
            if let Err(e) = self.files.delete(&key).await {
                tracing::warn!(blob = %key, error = %e, "could not delete an unused blob");
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted uploads no message took");
        }
        Ok(deleted)
    }

    /// Run [`Self::sweep_unattached_uploads`] periodically (a quarter of the TTL,
    /// between 1 s and 10 min) until `stop`; nothing when the TTL is zero.
    pub fn spawn_upload_sweeper(
        self: &Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let ttl = service.config.unattached_upload_ttl;
            if ttl.is_zero() {
                return;
            }
            let period = (ttl / 4).clamp(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(600),
            );
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = service.sweep_unattached_uploads().await {
                    tracing::warn!(error = %e, "the sweep of unattached uploads failed");
                }
            }
        })
    }

    /// Send a message. Returns after the message is committed, then publishes it to
    /// every member of the room.
    pub async fn send_message(
        &self,
        actor: &Principal,
        cmd: SendMessage,
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Arc<MessageView>)> {
        self.throttle(actor)?;
        self.check_text_size(&cmd.text)?;
        if cmd.text.trim().is_empty() && cmd.uploads.is_empty() && cmd.attachments.is_empty() {
            return Err(ChatError::invalid("text", "a message needs text or files"));
        }
        for u in &cmd.uploads {
            if u.bytes.len() > self.config.max_attachment_bytes {
                return Err(ChatError::TooLarge {
                    what: "file",
                    size: u.bytes.len(),
                    limit: self.config.max_attachment_bytes,
                });
            }
        }
        let room = self.resolve_room(actor, &cmd.room).await?;
        policy::can_post(actor, &room)?;
        if let Some(reply_to) = cmd.reply_to {
            match self.store.message(reply_to).await? {
                Some(m) if m.room_id == room.id() => {}
                _ => {
                    return Err(ChatError::invalid(
                        "reply_to",
                        format!("message {reply_to} is not a message of this chat"),
                    ))
                }
            }
        }
        let mut attachments = Vec::with_capacity(cmd.attachments.len() + cmd.uploads.len());
        for id in &cmd.attachments {
            match self.store.attachment(*id).await? {
                Some(a) if a.uploader_id == actor.id() && a.message_id.is_none() => {
                    attachments.push(a.id)
                }
                _ => {
                    return Err(ChatError::invalid(
                        "media",
                        format!("attachment {id} is not an unused upload of yours"),
                    ))
                }
            }
        }
        for u in cmd.uploads {
            attachments.push(self.store_upload(actor, u).await?.id);
        }
        let message = self
            .store
            .insert_message(&NewMessage {
                room_id: room.id(),
                author_id: actor.id(),
                kind: cmd.kind,
                text: cmd.text,
                reply_to: cmd.reply_to,
                attachments,
                note: self
                    .broker
                    .get()
                    .map(|b| b.message_note(room.id(), origin.as_ref())),
            })
            .await?;
        self.typing.clear(room.id(), actor.id());
        let view = Arc::new(self.message_view(&room, message, Some(&actor.user)));
        let event = Event::MessageCreated {
            room: room.clone(),
            message: view.clone(),
        };
        match self.broker.get() {
            // Its event was written with it: wait for it to come back.
            Some(broker) => {
                let local = Local {
                    recipients: room.member_ids(),
                    event: Arc::new(Published::new(event, origin)),
                };
                broker.message_committed(view.message.id, local).await;
            }
            None => self.publish(&room.member_ids(), event, origin).await,
        }
        Ok((room, view))
    }

    async fn message_in(&self, id: MessageId, room: Option<RoomId>) -> Result<Message> {
        match self.store.message(id).await? {
            Some(m) if room.is_none_or(|r| r == m.room_id) => Ok(m),
            _ => Err(ChatError::not_found("message")),
        }
    }

    /// A message text within `--max-message-bytes` and [`ServiceConfig::max_text_chars`]
    /// (bytes first: counting characters is then bounded too).
    fn check_text_size(&self, text: &str) -> Result<()> {
        if text.len() > self.config.caps.text_bytes {
            return Err(ChatError::TooLarge {
                what: "message",
                size: text.len(),
                limit: self.config.caps.text_bytes,
            });
        }
        let chars = text.chars().count();
        if chars > self.config.max_text_chars {
            return Err(ChatError::TooLarge {
                what: "text",
                size: chars,
                limit: self.config.max_text_chars,
            });
        }
        Ok(())
    }

    /// Edit a message's text (author only). `room`: the room the caller is in, when the
    /// dialect has that notion; a message of another room is then not found.
    pub async fn edit_message(
        &self,
        actor: &Principal,
        id: MessageId,
        text: &str,
        room: Option<RoomId>,
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Arc<MessageView>)> {
        self.throttle(actor)?;
        if text.trim().is_empty() {
            return Err(ChatError::invalid("text", "the new text must not be empty"));
        }
        self.check_text_size(text)?;
        let msg = self.message_in(id, room).await?;
        let view = self.room_by_id(msg.room_id).await?;
        policy::can_view(actor, &view)?;
        policy::can_edit(actor, &view, &msg)?;
        let edited = self.store.edit_message(id, text).await?;
        let mv = Arc::new(self.message_views(&view, vec![edited]).await?.remove(0));
        self.publish(
            &view.member_ids(),
            Event::MessageEdited {
                room: view.clone(),
                message: mv.clone(),
            },
            origin,
        )
        .await;
        Ok((view, mv))
    }

    /// Delete messages (tombstones). All must be in one room (`room` when given) and
    /// deletable by the actor, or nothing is deleted. Returns the ids newly deleted.
    pub async fn delete_messages(
        &self,
        actor: &Principal,
        ids: &[MessageId],
        room: Option<RoomId>,
        origin: Option<Origin>,
    ) -> Result<(SharedRoom, Vec<MessageId>)> {
        self.throttle(actor)?;
        if ids.is_empty() {
            return Err(ChatError::invalid(
                "messages",
                "give at least one message id",
            ));
        }
        cap_list("messages", ids.len(), self.config.caps.ids_per_request)?;
        let ids = &dedup_keep_order(ids)[..];
        let mut room_id = room;
        let mut msgs = Vec::with_capacity(ids.len());
        for id in ids {
            let m = self.message_in(*id, room_id).await?;
            room_id = Some(m.room_id);
            msgs.push(m);
        }
        let room_id = room_id.expect("at least one message");
        let view = self.room_by_id(room_id).await?;
        policy::can_view(actor, &view)?;
        for m in &msgs {
            policy::can_delete(actor, &view, m)?;
        }
        let stored = self.store.delete_messages(room_id, ids).await?;
        // Report in the order the caller named them, each once.
        let mut deleted: Vec<MessageId> = Vec::with_capacity(stored.len());
        for id in ids {
            if stored.contains(id) && !deleted.contains(id) {
                deleted.push(*id);
            }
        }
        if !deleted.is_empty() {
            self.publish(
                &view.member_ids(),
                Event::MessagesDeleted {
                    room: view.clone(),
                    ids: deleted.clone(),
                    by: actor.id(),
                },
                origin,
            )
            .await;
        }
        Ok((view, deleted))
    }

    /// Mark a room read up to a message (or to its newest message).
    pub async fn mark_read(
        &self,
        actor: &Principal,
        room: &RoomRef,
        up_to: Option<MessageId>,
        origin: Option<Origin>,
    ) -> Result<ReadOutcome> {
        self.throttle(actor)?;
        let view = self.find_room(actor, room).await?;
        if !view.is_member(actor.id()) {
            return Err(ChatError::forbidden("only members have a read state"));
        }
        let up_to = match up_to {
            Some(id) => {
                let m = self.message_in(id, Some(view.id())).await?;
                Some(m.id)
            }
            None => self.store.last_message(view.id()).await?.map(|m| m.id),
        };
        let Some(up_to) = up_to else {
            return Ok(ReadOutcome {
                room: view,
                up_to: None,
                moved: false,
                newly_read: Vec::new(),
            });
        };
        let advanced = self.store.advance_read(view.id(), actor.id(), up_to).await;
        self.rooms.views.forget(&view.id());
        let Some(previous) = advanced? else {
            return Ok(ReadOutcome {
                room: view,
                up_to: Some(up_to),
                moved: false,
                newly_read: Vec::new(),
            });
        };
        // Messages that were unread by everyone but their author and now are read.
        let candidates = self
            .store
            .messages_read_between(view.id(), actor.id(), previous, up_to)
            .await?;
        let newly_read: Vec<MessageId> = candidates
            .into_iter()
            .filter(|(id, author)| {
                // Already read when a member other than the reader and the author had
                // read past it before.
                !view
                    .watermarks
                    .iter()
                    .any(|(u, w)| *u != actor.id() && *u != *author && w.is_some_and(|w| w >= *id))
            })
            .map(|(id, _)| id)
            .collect();
        let after = self.room_by_id(view.id()).await?;
        self.publish(
            &after.member_ids(),
            Event::MessagesRead {
                room: after.clone(),
                reader: actor.id(),
                up_to,
                newly_read: newly_read.clone(),
            },
            origin,
        )
        .await;
        Ok(ReadOutcome {
            room: after,
            up_to: Some(up_to),
            moved: true,
            newly_read,
        })
    }

    /// Mark read up to a message, wherever it is (socketio-pubsub `read-chat` names only
    /// the message).
    pub async fn mark_read_message(
        &self,
        actor: &Principal,
        id: MessageId,
        origin: Option<Origin>,
    ) -> Result<ReadOutcome> {
        // Counted once, by `mark_read`.
        let msg = self
            .store
            .message(id)
            .await?
            .ok_or(ChatError::not_found("message"))?;
        self.mark_read(actor, &RoomRef::Id(msg.room_id), Some(id), origin)
            .await
    }

    /// Number of live messages by others after the actor's read mark in `room`.
    pub async fn unread_in(&self, actor: &Principal, room: &RoomView) -> Result<i64> {
        Ok(self.unread_through(actor, room).await?.0)
    }

    /// [`Self::unread_in`], and the newest message id the count accounts for: the
    /// newest unread message or the read mark, whichever is later (see
    /// [`crate::unread::UnreadTracker`]).
    pub async fn unread_through(
        &self,
        actor: &Principal,
        room: &RoomView,
    ) -> Result<(i64, Option<MessageId>)> {
        policy::can_view(actor, room)?;
        let mark = room.watermark(actor.id());
        let unread = self.store.unread_count(room.id(), actor.id(), mark).await?;
        Ok((unread.count, unread.newest.max(mark)))
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

    /// Announce presence explicitly (type-content `set_online` / `set_offline`).
    pub async fn set_presence(&self, actor: &Principal, online: bool) -> Result<()> {
        self.throttle(actor)?;
        self.publish_presence(&actor.user, online).await;
        Ok(())
    }

    fn lock_waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<(UserId, UserId)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record that `who` opened (or closed) their conversation with `peer`; whether
    /// that changed anything.
    fn note_waiting(&self, who: UserId, peer: UserId, waiting: bool) -> bool {
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
        // the actor: in socketio-pubsub the direct chat is made by the first message,
        // after both opened the conversation.)
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

    /// History, newest first, below `before`.
    pub async fn history(
        &self,
        actor: &Principal,
        room: &RoomRef,
        before: Option<MessageId>,
        limit: i64,
    ) -> Result<(SharedRoom, Vec<MessageView>)> {
        self.throttle(actor)?;
        let view = self.resolve_room(actor, room).await?;
        let messages = self
            .store
            .history(view.id(), before, limit.clamp(1, 500))
            .await?;
        let messages = cut_page(messages, self.config.caps.page_bytes);
        let views = self.message_views(&view, messages).await?;
        Ok((view, views))
    }

    /// Messages created in a time window, oldest first.
    pub async fn messages_between(
        &self,
        actor: &Principal,
        room: &RoomRef,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: i64,
    ) -> Result<(SharedRoom, Vec<MessageView>)> {
        self.throttle(actor)?;
        let view = self.resolve_room(actor, room).await?;
        let messages = self
            .store
            .messages_between(view.id(), from, to, limit.clamp(1, 5000))
            .await?;
        let messages = cut_page(messages, self.config.caps.page_bytes);
        let views = self.message_views(&view, messages).await?;
        Ok((view, views))
    }

    /// Number of the actor's rooms with unread messages from others.
    pub async fn unread_rooms(&self, actor: &Principal) -> Result<i64> {
        Ok(self.store.unread_rooms(actor.id()).await?)
    }

    // ------------------------------------------------------------------ users

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

    fn forget_profiles(&self) {
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
    /// only their own (socketio-rooms `create-user` with a token).
    pub async fn upsert_user_as(&self, actor: &Principal, profile: &UserProfile) -> Result<User> {
        self.throttle(actor)?;
        policy::can_write_profile(actor, profile)?;
        let mut profile = profile.clone();
        if !actor.is_admin {
            profile.id = Some(actor.id());
        }
        self.upsert_user(&profile).await
    }

    /// Create or refresh a user (socketio-rooms `create-user`, CLI import).
    pub async fn upsert_user(&self, profile: &UserProfile) -> Result<User> {
        validate_profile(profile)?;
        let user = self.store.upsert_user(profile).await;
        self.profiles_changed().await;
        Ok(user?)
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

/// The first messages of `page` whose texts fit in `max_bytes` (at least one).
fn cut_page(mut page: Vec<Message>, max_bytes: usize) -> Vec<Message> {
    let mut total = 0usize;
    let keep = page
        .iter()
        .position(|m| {
            total += m.text.len();
            total > max_bytes
        })
        .unwrap_or(page.len())
        .max(1);
    page.truncate(keep);
    page
}

/// The longest display name (`name` in socketio-rooms, `display_name` elsewhere).
pub const MAX_DISPLAY_NAME_CHARS: usize = 150;
/// The longest photo reference: a URL, never the image's bytes.
pub const MAX_PHOTO_BYTES: usize = 2048;

/// Characters escaped in a file name inside a URL path: all but RFC 3986 unreserved.
const FILE_NAME_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Keep a file name's last path component, without control characters.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.is_empty() {
        "file".to_string()
    } else {
        clean
    }
}
