//! What goes over the wire between nodes: envelopes in the outbox, and events
//! on Redis.
//!
//! **Invariant: an event keeps its shard wherever it travels.** An envelope's
//! shard is its room's, or for an event about a user alone that user's
//! ([`shard_of_envelope`]), the same mapping the database uses; an event on Redis
//! carries its (shard, sequence) from the outbox, and one naming a shard this
//! version does not know is dropped ([`Wire::into_event`]). So every node orders
//! an event among the same neighbours however it learnt of it.

use chat_core::cluster::{Envelope, Remote};
use chat_store::outbox::shard_of;
use chat_store::OutboxEvent;

/// An event as it travels on Redis: the outbox row, with a new message's row.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Wire {
    s: usize,
    q: i64,
    p: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<chat_core::Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<i64>,
}

impl Wire {
    pub fn of(ev: &OutboxEvent) -> Wire {
        Wire {
            s: ev.shard,
            q: ev.seq,
            p: ev.payload.clone(),
            m: ev.message.clone(),
            i: ev.message_id,
        }
    }

    /// `None` for a shard out of range (not written by a node of this version).
    pub fn into_event(self) -> Option<OutboxEvent> {
        (self.s < chat_store::outbox::SHARDS).then_some(OutboxEvent {
            shard: self.s,
            seq: self.q,
            payload: self.p,
            message: self.m,
            message_id: self.i,
        })
    }
}

/// The outbox shard an envelope belongs to.
pub(crate) fn shard_of_envelope(env: &Envelope) -> usize {
    if let Some(room) = env.room {
        return shard_of(room.0);
    }
    let user = match &env.what {
        Remote::Presence { user, .. }
        | Remote::Attention { user, .. }
        | Remote::Typing { user, .. } => Some(user.id),
        Remote::PresenceOf { user, .. } => Some(*user),
        _ => None,
    };
    user.map_or(0, |u| shard_of(u.0))
}

/// An envelope as the outbox stores it.
pub(crate) fn encode(env: &Envelope) -> String {
    serde_json::to_string(env).unwrap_or_else(|e| {
        // Only plain data is serialized; a failure is a bug, and an event lost.
        tracing::error!(error = %e, "an event could not be encoded");
        String::from("{\"what\":{\"k\":\"ProfilesChanged\"}}")
    })
}
