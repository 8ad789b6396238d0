//! The storage trait. `chat-store` implements it on PostgreSQL and SQLite; the domain
//! only asks for records and atomic changes, never for SQL.

use crate::ids::{AttachmentId, MessageId, RoomId, UserId};
use crate::model::*;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("a room with the same key exists: {0}")]
    DuplicateRoom(RoomId),
    #[error("{0}")]
    Conflict(String),
    /// The uploader's uploads would pass their quota (`used` bytes recorded).
    #[error("upload quota exceeded: {used} of {limit} bytes used, the file is {size} bytes")]
    QuotaExceeded { used: i64, size: i64, limit: i64 },
    #[error("{0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A message insert placed in its room's commit order ([`Store::queue_message`]):
/// resolves to the committed message.
pub type Committing =
    std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<Committed>> + Send>>;

/// A committed message, and where its cluster note went when the store knows it.
#[derive(Clone, Debug)]
pub struct Committed {
    pub message: Message,
    /// The note's (outbox shard, sequence number); `None` without a note, or when
    /// the insert path does not report it (the broker then finds the note by reading).
    pub note_at: Option<(usize, i64)>,
}

impl Committed {
    /// A message whose note's place is not known.
    pub fn unplaced(message: Message) -> Committed {
        Committed {
            message,
            note_at: None,
        }
    }
}

/// What [`Store::put_user`] did to the user's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserWrite {
    /// The record is new: no view or cache can hold an older version of it.
    Created,
    /// An existing record was changed: what shows it is stale.
    Changed,
    /// The record already said what the profile says.
    Unchanged,
}

/// A room to create, with its first members.
#[derive(Clone, Debug)]
pub struct NewRoom {
    /// Explicit id (a legacy backend's primary key). `None`: allocate one.
    pub id: Option<RoomId>,
    pub kind: RoomKind,
    pub title: String,
    pub has_business: bool,
    pub created_by: Option<UserId>,
    pub members: Vec<UserId>,
}

/// A reader's unread messages in one room (see [`Store::unread_count`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unread {
    pub count: i64,
    /// The newest of them (`None` when there are none).
    pub newest: Option<MessageId>,
}

/// A message to append.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub author_id: UserId,
    pub kind: MessageKind,
    pub text: String,
    pub reply_to: Option<MessageId>,
    /// Uploaded attachments to bind to this message, in order.
    pub attachments: Vec<AttachmentId>,
    /// The message's event for the other nodes of a cluster (an opaque note from
    /// [`crate::cluster::Broker::message_note`]): appended to the cluster's outbox in
    /// the transaction that inserts the message, so a room's messages reach every
    /// node in id order. `None` on a single node.
    pub note: Option<String>,
}

/// An uploaded file's record.
#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub blob_key: String,
    pub uploader_id: UserId,
    /// The URL token ([`crate::files::new_token`]).
    pub token: String,
}

/// One connection pool of a store, at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolState {
    /// Which pool (`read`, `write`, or `main` where one pool does both).
    pub name: &'static str,
    /// Connections open, and of those idle (the rest are in use).
    pub open: u32,
    pub idle: u32,
    /// Checkouts that had to wait for a connection, and that gave up waiting.
    pub waits: u64,
    pub timeouts: u64,
}

/// Persistent state of the chat domain.
///
/// Every method is one atomic change or one consistent read. Methods that change a
/// room's membership or messages return the rows they actually changed, so the
/// service publishes exactly what was committed.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A cheap round trip to the database (health checks).
    async fn ping(&self) -> StoreResult<()>;

    /// The state of the store's connection pools, for the operator's metrics (none
    /// for a store without pools).
    fn pools(&self) -> Vec<PoolState> {
        Vec::new()
    }

    // ---- users
    /// Create a user, or refresh the given fields of an existing one. Matching is by
    /// `id` when given, else by `external_id`, else by `username`. A `username` already
    /// taken by another user is a conflict.
    async fn upsert_user(&self, profile: &UserProfile) -> StoreResult<User>;
    /// [`Store::upsert_user`] for a caller that expects a write (it read the record
    /// already), saying what the write did, so that a caller caching users forgets
    /// them only when one changed. Goes straight to the writer: concurrent calls may
    /// share one transaction (first sign-ins in a connect storm), which also finds
    /// an unchanged record. The default says [`UserWrite::Changed`] whatever happened.
    async fn put_user(&self, profile: &UserProfile) -> StoreResult<(User, UserWrite)> {
        Ok((self.upsert_user(profile).await?, UserWrite::Changed))
    }
    /// Create a user; any existing id, username or external id is a conflict.
    async fn create_user(&self, profile: &UserProfile) -> StoreResult<User>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn user_by_external_id(&self, external_id: &str) -> StoreResult<Option<User>>;
    /// Users ordered by id, at most `limit`.
    async fn list_users(&self, limit: i64) -> StoreResult<Vec<User>>;

    // ---- rooms
    /// Create a room with its members. A direct or project room whose key exists
    /// already is `DuplicateRoom(existing id)`.
    async fn create_room(&self, room: &NewRoom) -> StoreResult<Room>;
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>>;
    /// The direct or project room with that key; always `None` for `Group`.
    async fn room_by_kind(&self, kind: &RoomKind) -> StoreResult<Option<Room>>;
    async fn set_room_title(&self, id: RoomId, title: &str) -> StoreResult<Room>;
    /// Delete a room with its memberships and messages (their attachments become
    /// unattached uploads, deleted by the upload sweep); whether it existed.
    async fn delete_room(&self, id: RoomId) -> StoreResult<bool>;
    /// Rooms the user is a member of, by id.
    async fn rooms_of(&self, user: UserId) -> StoreResult<Vec<Room>>;
    /// Every room, by id.
    async fn all_rooms(&self) -> StoreResult<Vec<Room>>;
    /// Members of a room, by join order.
    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>>;
    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>>;
    /// Add users; returns those who were not members before.
    async fn add_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// Remove users; returns those who were members.
    async fn remove_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// Users who share at least one room with `user` (not `user` itself).
    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>>;

    /// This store now writes for cluster node `node`: the wake-ups it sends after
    /// committing messages name that node, so the node can tell its own wake-ups
    /// (whose events it delivers from memory) from the other nodes'. The default
    /// does nothing.
    fn joined_cluster(&self, _node: i64) {}

    // ---- messages
    /// Append a message. Ids of one room commit in increasing order. An attachment that
    /// is missing or already bound is `Conflict`, and nothing is inserted.
    async fn insert_message(&self, msg: &NewMessage) -> StoreResult<Message>;
    /// [`Store::insert_message`] in two steps: returns once the message has its place
    /// in its room's commit order, with a future that resolves when it is committed.
    /// Messages of a room queued one after the other get increasing ids, so a caller
    /// may queue the next before the previous committed (pipelining). The default
    /// inserts at once.
    async fn queue_message(&self, msg: NewMessage) -> StoreResult<Committing> {
        let done = self.insert_message(&msg).await.map(Committed::unplaced);
        Ok(Box::pin(std::future::ready(done)))
    }
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// Replace a message's text; a tombstone is `Conflict`.
    async fn edit_message(&self, id: MessageId, text: &str) -> StoreResult<Message>;
    /// Tombstone the given messages of `room` that are not deleted yet; returns their ids.
    async fn delete_messages(&self, room: RoomId, ids: &[MessageId])
        -> StoreResult<Vec<MessageId>>;
    /// Newest first: messages of `room` with id below `before` (if given), at most `limit`.
    async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Oldest first: messages of `room` created in `[from, to]`.
    async fn messages_between(
        &self,
        room: RoomId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Oldest first: messages of `room` with id above `after`, at most `limit`.
    async fn messages_after(
        &self,
        room: RoomId,
        after: MessageId,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Messages of `room` with ids up to `up_to` that were edited or deleted at or
    /// after `since`, in the order they changed, at most `limit`.
    async fn changed_since(
        &self,
        room: RoomId,
        up_to: MessageId,
        since: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// When the newest message with an id up to `id` was created, in any room
    /// (`None`: there is none).
    async fn created_at_or_before(&self, id: MessageId) -> StoreResult<Option<Timestamp>>;
    /// The newest message of a room.
    async fn last_message(&self, room: RoomId) -> StoreResult<Option<Message>>;

    // ---- read state
    /// Move `user`'s watermark in `room` forward to `up_to` (never back). Returns the
    /// previous watermark when it moved, `None` when it did not.
    async fn advance_read(
        &self,
        room: RoomId,
        user: UserId,
        up_to: MessageId,
    ) -> StoreResult<Option<Option<MessageId>>>;
    /// Ids and authors of the live messages in `room` by authors other than `reader`
    /// with ids in `(after, up_to]`, oldest first.
    async fn messages_read_between(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
        up_to: MessageId,
    ) -> StoreResult<Vec<(MessageId, UserId)>>;
    /// Live messages in `room` by authors other than `reader` with ids above `after`
    /// (all of them when `None`): how many, and the newest of them.
    async fn unread_count(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
    ) -> StoreResult<Unread>;
    /// Number of the user's rooms with a message from someone else after the user's watermark.
    async fn unread_rooms(&self, user: UserId) -> StoreResult<i64>;

    // ---- attachments
    /// Record an upload. With `quota`, refuse it ([`StoreError::QuotaExceeded`]) when
    /// the bytes of the uploader's recorded uploads plus this one would pass `quota`;
    /// the check and the insert are one transaction holding the uploader's row, so
    /// concurrent uploads of one user cannot both slip under it.
    async fn insert_attachment(
        &self,
        a: &NewAttachment,
        quota: Option<i64>,
    ) -> StoreResult<Attachment>;
    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>>;
    /// Delete one attachment row if no message holds it (an upload whose bytes could
    /// not be stored); whether it went.
    async fn delete_unattached(&self, id: AttachmentId) -> StoreResult<bool>;
    /// Delete at most `limit` attachments that no message holds and that were
    /// uploaded before `before` (the sweep of abandoned uploads); returns them.
    async fn delete_unattached_before(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Attachment>>;
    /// Whether an attachment row names the blob `blob_key`.
    async fn blob_in_use(&self, blob_key: &str) -> StoreResult<bool>;
}
