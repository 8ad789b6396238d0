//! What the reader of a node knows about events in flight.
//!
//! **Invariant: a command waiting for its own event is answered exactly once, after
//! that event was delivered on this node.** The writer registers each of its events
//! by (shard, sequence) and each committed message by id ([`ReaderState::expect`],
//! [`ReaderState::expect_message`]); the reader takes them up in shard order
//! ([`ReaderState::take`]) and answers after delivery ([`ReaderState::delivered`]).
//! Whichever side comes first, the other finds its trace (an entry waiting, or a
//! cursor already past it), so no registration is lost to a race. An event of this
//! node registered by (shard, sequence) that is next in its shard is taken up
//! without a read at all ([`ReaderState::take_next_known`]): sequence numbers of a
//! shard have no gaps, so no other event can come before it.

use chat_core::cluster::Local;
use chat_store::OutboxEvent;
use std::collections::{HashMap, VecDeque};
use tokio::sync::oneshot;

/// Messages whose event this node already delivered, remembered for a command
/// that asks after its message's event once it was delivered.
const RECENT_MESSAGES: usize = 16_384;

/// An event of this node waiting for its turn in the outbox.
pub(crate) struct Pending {
    pub local: Option<Local>,
    pub done: Option<oneshot::Sender<()>>,
}

pub(crate) struct ReaderState {
    /// Per shard: the last sequence number the reader has taken up.
    pub taken: Vec<i64>,
    /// Per shard: the last sequence number delivered.
    pub delivered: Vec<i64>,
    pub by_seq: HashMap<(usize, i64), Pending>,
    pub by_message: HashMap<i64, Pending>,
    /// Recently taken message events: message id → (shard, seq).
    pub recent: HashMap<i64, (usize, i64)>,
    pub recent_order: VecDeque<i64>,
    /// Commands waiting for an event the reader has taken up but not yet delivered.
    pub waiters: Vec<(usize, i64, oneshot::Sender<()>)>,
}

impl ReaderState {
    pub fn new(cursors: Vec<i64>) -> Self {
        ReaderState {
            taken: cursors.clone(),
            delivered: cursors,
            by_seq: HashMap::new(),
            by_message: HashMap::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            waiters: Vec::new(),
        }
    }

    /// Register `pending` for the event at (shard, seq) unless the reader took it up
    /// already (then only wait for its delivery).
    pub fn expect(&mut self, shard: usize, seq: i64, pending: Pending) {
        if self.taken[shard] < seq {
            self.by_seq.insert((shard, seq), pending);
        } else {
            self.wait_delivered(shard, seq, pending);
        }
    }

    pub fn expect_message(&mut self, message: i64, pending: Pending) {
        match self.recent.get(&message).copied() {
            Some((shard, seq)) => self.wait_delivered(shard, seq, pending),
            None => {
                self.by_message.insert(message, pending);
            }
        }
    }

    fn wait_delivered(&mut self, shard: usize, seq: i64, pending: Pending) {
        let Some(done) = pending.done else { return };
        if self.delivered[shard] >= seq {
            let _ = done.send(());
        } else {
            self.waiters.push((shard, seq, done));
        }
    }

    /// The reader takes up an event: what this node kept of it, if anything.
    pub fn take(&mut self, ev: &OutboxEvent) -> Option<Pending> {
        self.taken[ev.shard] = ev.seq;
        let mut pending = self.by_seq.remove(&(ev.shard, ev.seq));
        if let Some(id) = ev.message_id {
            if let Some(p) = self.by_message.remove(&id) {
                pending = Some(p);
            }
            self.recent.insert(id, (ev.shard, ev.seq));
            self.recent_order.push_back(id);
            if self.recent_order.len() > RECENT_MESSAGES {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
        pending
    }

    /// An event of this node, held in memory, that is next in its shard: taken up
    /// without reading the outbox (only the reader calls this, between deliveries,
    /// when `taken` equals `delivered`).
    pub fn take_next_known(&mut self) -> Option<(usize, i64, Local, Option<oneshot::Sender<()>>)> {
        for shard in 0..self.taken.len() {
            let key = (shard, self.taken[shard] + 1);
            if self.by_seq.get(&key).is_none_or(|p| p.local.is_none()) {
                continue;
            }
            let Pending { local, done } = self.by_seq.remove(&key)?;
            self.taken[shard] = key.1;
            return Some((shard, key.1, local?, done));
        }
        None
    }

    /// Whether any event this node waits for still has to be read from the outbox.
    pub fn awaits_read(&self) -> bool {
        !self.by_seq.is_empty() || !self.by_message.is_empty()
    }

    pub fn delivered(&mut self, shard: usize, seq: i64) {
        self.delivered[shard] = seq;
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].0 == shard && self.waiters[i].1 <= seq {
                let (_, _, done) = self.waiters.swap_remove(i);
                let _ = done.send(());
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_store::outbox::SHARDS;

    fn ev(shard: usize, seq: i64, message: Option<i64>) -> OutboxEvent {
        OutboxEvent {
            shard,
            seq,
            payload: String::new(),
            message: None,
            message_id: message,
        }
    }

    fn pending() -> (Pending, oneshot::Receiver<()>) {
        let (done, answer) = oneshot::channel();
        (
            Pending {
                local: None,
                done: Some(done),
            },
            answer,
        )
    }

    #[test]
    fn a_command_registered_late_still_waits_for_delivery() {
        let mut st = ReaderState::new(vec![0; SHARDS]);
        // The reader takes event 1 of shard 3 before the writer registers it.
        assert!(st.take(&ev(3, 1, None)).is_none());
        let (p, mut answer) = pending();
        st.expect(3, 1, p);
        assert!(answer.try_recv().is_err(), "taken but not delivered yet");
        st.delivered(3, 1);
        assert!(answer.try_recv().is_ok());
        // Registered before the reader comes: handed over on take.
        let (p, _answer) = pending();
        st.expect(3, 2, p);
        assert!(st.take(&ev(3, 2, None)).is_some());
    }

    #[test]
    fn message_events_are_found_by_message_id_either_way() {
        let mut st = ReaderState::new(vec![0; SHARDS]);
        let (p, _a) = pending();
        st.expect_message(10, p);
        assert!(st.take(&ev(2, 1, Some(10))).is_some());
        assert!(st.take(&ev(2, 2, Some(11))).is_none());
        st.delivered(2, 2);
        let (p, mut answer) = pending();
        st.expect_message(11, p);
        assert!(
            answer.try_recv().is_ok(),
            "delivered before it was asked for"
        );
    }

    fn local() -> Local {
        use chat_core::{Event, Published, User, UserId};
        let user = User::placeholder(UserId(1));
        Local {
            recipients: vec![UserId(1)],
            event: std::sync::Arc::new(Published::new(
                Event::Presence { user, online: true },
                None,
            )),
        }
    }

    #[test]
    fn own_events_next_in_their_shard_need_no_read_and_a_gap_does() {
        let mut st = ReaderState::new(vec![0; SHARDS]);
        let (done, _a) = oneshot::channel();
        st.expect(
            4,
            2,
            Pending {
                local: Some(local()),
                done: Some(done),
            },
        );
        // Seq 1 of shard 4 is another node's: nothing can be handed over yet.
        assert!(st.take_next_known().is_none());
        assert!(st.awaits_read());
        st.take(&ev(4, 1, None));
        st.delivered(4, 1);
        let (shard, seq, _, done) = st.take_next_known().expect("next in its shard");
        assert_eq!((shard, seq), (4, 2));
        assert!(done.is_some());
        st.delivered(4, 2);
        assert!(!st.awaits_read());
        // Held without its event (presence the database appended): must be read.
        st.expect(
            5,
            1,
            Pending {
                local: None,
                done: None,
            },
        );
        assert!(st.take_next_known().is_none());
        assert!(st.awaits_read());
    }
}
