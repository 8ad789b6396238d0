//! [`Store`] on diesel-async, split by aggregate: `users`, `rooms`, `members`,
//! `messages` (reads and edits), `append` and `group` (new messages), `signup`
//! (batched user writes), `reads` (watermarks), `attachments`, and `ids` (explicit
//! legacy ids).
//!
//! **Invariant: every store operation is one function of its aggregate, run on a
//! task of its own against the [`Db`].** [`DieselStore`] only holds the database and
//! the batching writers (`group`, `signup`), and its [`Store`] impl delegates each
//! method to its aggregate's function; the functions take the `Db`, not the store, so the
//! aggregates depend on nothing above them and the group writer retries a failed
//! group with the same single insert the store uses ([`append::insert_single`]).
//! Queries are written once for both backends (see `crate::query`).

mod append;
mod attachments;
mod group;
mod ids;
pub(crate) mod import;
mod members;
pub(crate) mod messages;
mod reads;
mod rooms;
mod signup;
mod users;

use crate::db::Db;
use crate::note::CommitWake;
use crate::query::with_conn;
use async_trait::async_trait;
use chat_core::store::{
    Committed, Committing, NewAttachment, NewMessage, NewRoom, StoreResult, Unread, UserWrite,
};
use chat_core::{
    Attachment, AttachmentId, Member, Message, MessageId, Room, RoomId, RoomKind, Store, Timestamp,
    User, UserId, UserProfile,
};
use diesel_async::RunQueryDsl;
use group::GroupWriter;
use signup::SignupWriter;
use std::sync::Arc;
use users::Lookup;

pub(crate) struct DieselStore {
    db: Db,
    /// Group commit of plain messages (see `group.rs`).
    group: GroupWriter,
    /// Batched user writes (see `signup.rs`).
    signups: SignupWriter,
    /// The NOTIFY after a message's commit on PostgreSQL (see `crate::note`).
    wake: Option<Arc<CommitWake>>,
}

impl DieselStore {
    /// The store, with its group-commit writers started (needs a Tokio runtime).
    pub fn new(db: Db) -> Self {
        let wake = match &db {
            Db::Pg(pool) => Some(Arc::new(CommitWake::start(pool.clone()))),
            Db::Sqlite(_) => None,
        };
        let group = GroupWriter::start(&db, wake.clone());
        let signups = SignupWriter::start(&db);
        DieselStore {
            db,
            group,
            signups,
            wake,
        }
    }
}

#[async_trait]
impl Store for DieselStore {
    fn joined_cluster(&self, node: i64) {
        if let Some(wake) = &self.wake {
            wake.name(node);
        }
    }

    async fn upsert_user(&self, profile: &UserProfile) -> StoreResult<User> {
        if let Some(user) = users::unchanged(&self.db, profile).await? {
            return Ok(user);
        }
        Ok(self.put_user(profile).await?.0)
    }

    async fn put_user(&self, profile: &UserProfile) -> StoreResult<(User, UserWrite)> {
        self.signups.write(profile.clone()).await
    }

    async fn create_user(&self, profile: &UserProfile) -> StoreResult<User> {
        users::create(&self.db, profile).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        users::find(&self.db, Lookup::Id(id.0)).await
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        users::many(&self.db, ids).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        users::find(&self.db, Lookup::Username(username.to_owned())).await
    }

    async fn user_by_external_id(&self, external_id: &str) -> StoreResult<Option<User>> {
        users::find(&self.db, Lookup::ExternalId(external_id.to_owned())).await
    }

    async fn list_users(&self, limit: i64) -> StoreResult<Vec<User>> {
        users::list(&self.db, limit).await
    }

    async fn create_room(&self, room: &NewRoom) -> StoreResult<Room> {
        rooms::create(&self.db, room).await
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        rooms::by_id(&self.db, id).await
    }

    async fn room_by_kind(&self, kind: &RoomKind) -> StoreResult<Option<Room>> {
        rooms::by_kind(&self.db, kind).await
    }

    async fn set_room_title(&self, id: RoomId, title: &str) -> StoreResult<Room> {
        rooms::set_title(&self.db, id, title).await
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<bool> {
        rooms::delete(&self.db, id).await
    }

    async fn rooms_of(&self, user: UserId) -> StoreResult<Vec<Room>> {
        rooms::list(&self.db, Some(user)).await
    }

    fn pools(&self) -> Vec<chat_core::store::PoolState> {
        self.db.pools()
    }

    async fn ping(&self) -> StoreResult<()> {
        with_conn!(&self.db, read, |conn| {
            diesel::sql_query("SELECT 1").execute(conn).await?;
            Ok(())
        })
    }

    async fn all_rooms(&self) -> StoreResult<Vec<Room>> {
        rooms::list(&self.db, None).await
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        members::of_room(&self.db, room).await
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        members::one(&self.db, room, user).await
    }

    async fn add_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        members::add(&self.db, room, users).await
    }

    async fn remove_members(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        members::remove(&self.db, room, users).await
    }

    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        members::contacts(&self.db, user).await
    }

    async fn insert_message(&self, msg: &NewMessage) -> StoreResult<Message> {
        if msg.attachments.is_empty() {
            Ok(self.group.queue(msg.clone()).await?.await?.message)
        } else {
            append::insert_single(&self.db, msg, self.wake.as_deref()).await
        }
    }

    async fn queue_message(&self, msg: NewMessage) -> StoreResult<Committing> {
        if msg.attachments.is_empty() {
            self.group.queue(msg).await
        } else {
            let done = append::insert_single(&self.db, &msg, self.wake.as_deref())
                .await
                .map(Committed::unplaced);
            Ok(Box::pin(std::future::ready(done)))
        }
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        messages::one(&self.db, messages::Pick::Id(id)).await
    }

    async fn edit_message(&self, id: MessageId, text: &str) -> StoreResult<Message> {
        messages::edit(&self.db, id, text).await
    }

    async fn delete_messages(
        &self,
        room: RoomId,
        ids: &[MessageId],
    ) -> StoreResult<Vec<MessageId>> {
        messages::delete(&self.db, room, ids).await
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messages::history(&self.db, room, before, limit).await
    }

    async fn messages_between(
        &self,
        room: RoomId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messages::between(&self.db, room, from, to, limit).await
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: MessageId,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messages::after(&self.db, room, after, limit).await
    }

    async fn changed_since(
        &self,
        room: RoomId,
        up_to: MessageId,
        since: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messages::changed_since(&self.db, room, up_to, since, limit).await
    }

    async fn created_at_or_before(&self, id: MessageId) -> StoreResult<Option<Timestamp>> {
        messages::created_at_or_before(&self.db, id).await
    }

    async fn last_message(&self, room: RoomId) -> StoreResult<Option<Message>> {
        messages::one(&self.db, messages::Pick::LastOf(room)).await
    }

    async fn advance_read(
        &self,
        room: RoomId,
        user: UserId,
        up_to: MessageId,
    ) -> StoreResult<Option<Option<MessageId>>> {
        reads::advance(&self.db, room, user, up_to).await
    }

    async fn messages_read_between(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
        up_to: MessageId,
    ) -> StoreResult<Vec<(MessageId, UserId)>> {
        reads::read_between(&self.db, room, reader, after, up_to).await
    }

    async fn unread_count(
        &self,
        room: RoomId,
        reader: UserId,
        after: Option<MessageId>,
    ) -> StoreResult<Unread> {
        reads::unread_count(&self.db, room, reader, after).await
    }

    async fn unread_rooms(&self, user: UserId) -> StoreResult<i64> {
        reads::unread_rooms(&self.db, user).await
    }

    async fn insert_attachment(
        &self,
        a: &NewAttachment,
        quota: Option<i64>,
    ) -> StoreResult<Attachment> {
        attachments::insert(&self.db, a, quota).await
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        attachments::one(&self.db, id).await
    }

    async fn delete_unattached(&self, id: AttachmentId) -> StoreResult<bool> {
        attachments::delete_unattached(&self.db, id).await
    }

    async fn delete_unattached_before(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<Attachment>> {
        attachments::delete_unattached_before(&self.db, before, limit).await
    }

    async fn blob_in_use(&self, blob_key: &str) -> StoreResult<bool> {
        attachments::blob_in_use(&self.db, blob_key).await
    }
}
