//! The PostgreSQL statement that writes a whole group of messages at once.
//!
//! A group commit (see `group.rs`) first sent one `INSERT` per message inside an
//! explicit transaction: `BEGIN`, the room locks, the inserts (pipelined), `COMMIT` —
//! four round trips per group, and PostgreSQL parsed, bound and executed every insert
//! on its own. Now a group is one call of the SQL function `chat_insert_messages`
//! (migrations `2026-11-21-000001_insert_messages_function`, and
//! `2026-12-02-000001_cluster`, which adds the cluster notes): one round trip, its own
//! transaction, one WAL flush. The function takes the group column by column as
//! arrays, locks the rooms as a single insert does, takes the ids from the sequence
//! in ascending order, inserts every row with `unnest`, and returns the ids in the
//! order of the arrays — so each message's id is known without reading rows back,
//! even when two messages of a group are identical.
//!
//! Since `2026-12-12-000002_insert_messages_placed` the function is
//! `chat_insert_messages_placed`: it returns the ids followed by each message's
//! outbox sequence number (0 for a message without a note), so the node that wrote
//! a note knows its place in the shard without reading it back (see `chat-cluster`).
//!
//! The statement's text never depends on the values or the group's size, so it is
//! prepared once per connection (static query id) and then only bound.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::QueryResult;

/// `SELECT chat_insert_messages_placed(rooms, authors, kinds, texts, replies, now, notes)`:
/// the arrays hold one element per message, in the group's order.
pub(crate) struct InsertMessages<'a> {
    pub rooms: Vec<i64>,
    pub authors: Vec<i64>,
    pub kinds: Vec<&'a str>,
    pub texts: Vec<&'a str>,
    pub replies: Vec<Option<i64>>,
    pub now: i64,
    /// Each message's cluster note (see `NewMessage::note`), appended to the outbox
    /// in the same transaction.
    pub notes: Vec<Option<&'a str>>,
}

impl Query for InsertMessages<'_> {
    /// The new ids, then the notes' sequence numbers, in the group's order.
    type SqlType = Nullable<Array<BigInt>>;
}

impl QueryId for InsertMessages<'_> {
    type QueryId = InsertMessages<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for InsertMessages<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT chat_insert_messages_placed(");
        out.push_bind_param::<Array<BigInt>, _>(&self.rooms)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.authors)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.texts)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.replies)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.notes)?;
        out.push_sql(")");
        Ok(())
    }
}
