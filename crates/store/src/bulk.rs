//! PostgreSQL statements that write a whole group of messages at once.
//!
//! A group commit (see `group.rs`) used to send one `INSERT` per message, pipelined:
//! one round trip, but PostgreSQL still parsed, bound and executed each statement on
//! its own, and diesel built each statement's SQL text again. Here a group is two
//! statements whatever its size: [`NextIds`] takes the group's ids from the table's
//! identity sequence, and [`InsertGroup`] inserts every row from arrays with
//! `unnest`. Their SQL text never depends on the values or on the group's size, so
//! each is prepared once per connection (static query ids) and then only bound.
//!
//! The ids are taken first, in a statement of their own, so that each message's id
//! is known before the insert: `INSERT … SELECT` does not promise which row gets
//! which value of a sequence, and two messages of a group may be identical.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::QueryResult;

/// `count` fresh message ids (`SELECT nextval(…) FROM generate_series(1, count)`).
/// The caller sorts them: a sequence hands them out increasing, the rows of the
/// `SELECT` carry no promised order.
pub(crate) struct NextIds(pub i64);

impl Query for NextIds {
    type SqlType = BigInt;
}

impl QueryId for NextIds {
    type QueryId = NextIds;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for NextIds {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1::bigint, ",
        );
        out.push_bind_param::<BigInt, _>(&self.0)?;
        out.push_sql(")");
        Ok(())
    }
}

/// The rows of a group, one array per column (all the same length), inserted with
/// their ids; `created_at` and `updated_at` are `now` for all of them.
pub(crate) struct InsertGroup<'a> {
    pub ids: &'a [i64],
    pub rooms: Vec<i64>,
    pub authors: Vec<i64>,
    pub kinds: Vec<&'a str>,
    pub texts: Vec<&'a str>,
    pub replies: Vec<Option<i64>>,
    pub now: i64,
}

impl QueryId for InsertGroup<'_> {
    type QueryId = InsertGroup<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for InsertGroup<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO messages (id, room_id, author_id, kind, text, reply_to, created_at, updated_at) \
             SELECT g.id, g.room_id, g.author_id, g.kind, g.text, g.reply_to, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<BigInt>, _>(self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.rooms)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.authors)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.texts)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.replies)?;
        out.push_sql(") AS g(id, room_id, author_id, kind, text, reply_to)");
        Ok(())
    }
}
