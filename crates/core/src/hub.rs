//! Fan-out of events to connections.
//!
//! Every open connection registers with the hub under its user and gets a bounded
//! queue. Publishing never waits: it tries to enqueue into each recipient connection,
//! and a connection whose queue is full is told to close ("slow consumer") instead of
//! holding everyone else up or growing memory without bound. The registry lock is only
//! held to look up senders, never across an await or a socket write.

use crate::event::Published;
use crate::ids::{ConnId, RoomId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a connection writes hub events at most, when they keep coming.
///
/// A connection that flushed less than this long ago leaves newer events in its queue
/// until the interval is over, then writes them together: in a room of a thousand
/// with a thousand messages a second, that is ~20 events per write instead of one,
/// and the per-write costs (a `send` here, a wake-up and a `recv` at the client, the
/// TCP segment and its acknowledgement) were most of the cost of a delivery. A
/// connection whose room is quiet writes at once (its last write is long past), and
/// answers to a client's own requests are never held back. The queue is bounded
/// ([`Hub::new`]), so a connection would need more than `queue_len` events in one
/// interval to be closed as a slow consumer for it.
pub const EVENT_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// Why the server closes a connection. Each connection loop maps it to its
/// protocol's close (a WebSocket close code, a Socket.IO event or a dropped
/// transport), and [`CloseReason::text`] is the sentence the client gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The server is going away (shutdown or drain): the client should reconnect,
    /// to this node later or to another one now.
    Shutdown,
    /// The connection fell a whole outbound queue behind.
    SlowConsumer,
    /// The token the connection signed in with expired (`--close-on-token-expiry`).
    TokenExpired,
}

impl CloseReason {
    pub fn text(self) -> &'static str {
        match self {
            CloseReason::Shutdown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer: outbound queue full",
            CloseReason::TokenExpired => "token expired: reconnect with a fresh token",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// A signal to close one connection, with the reason to give the client.
#[derive(Debug, Default)]
pub struct KillSwitch {
    token: CancellationToken,
    reason: Mutex<Option<CloseReason>>,
}

impl KillSwitch {
    /// A kill switch that also fires when `parent` is cancelled (server shutdown), so
    /// a connection waits on one token of its own rather than also polling a token
    /// shared by every connection (each poll of a token's `cancelled()` takes its
    /// lock). [`KillSwitch::reason`] stays `None` when only the parent fired.
    pub fn linked_to(parent: &CancellationToken) -> Self {
        KillSwitch {
            token: parent.child_token(),
            reason: Mutex::new(None),
        }
    }

    /// Close the connection; the first reason given is the one it is closed with.
    pub fn kill(&self, reason: CloseReason) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(reason);
        }
        self.token.cancel();
    }

    pub fn is_killed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the connection has been told to close.
    pub async fn killed(&self) {
        self.token.cancelled().await
    }

    pub fn reason(&self) -> Option<CloseReason> {
        self.reason.lock().ok().and_then(|r| *r)
    }
}

#[derive(Clone)]
struct Entry {
    conn: ConnId,
    tx: mpsc::Sender<Arc<Published>>,
    kill: Arc<KillSwitch>,
}

struct Inner {
    conns: RwLock<HashMap<UserId, Vec<Entry>>>,
    /// Connections that watch a room they are not a member of (moderators), by room.
    watchers: RwLock<HashMap<RoomId, Vec<(UserId, Entry)>>>,
    queue_len: usize,
}

/// The fan-out hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// Put `event` in one connection's queue, or tell the connection to close when its
/// queue is full; a connection already gone is skipped.
fn enqueue(entry: &Entry, event: &Arc<Published>) {
    if let Err(mpsc::error::TrySendError::Full(_)) = entry.tx.try_send(event.clone()) {
        entry.kill.kill(CloseReason::SlowConsumer);
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A fresh connection id, unique in this process.
pub fn next_conn_id() -> ConnId {
    ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed) as i64)
}

/// A connection's registration: its queue of events and its kill switch. Dropping it
/// unregisters the connection.
pub struct Subscription {
    pub conn: ConnId,
    pub user: UserId,
    pub rx: mpsc::Receiver<Arc<Published>>,
    pub kill: Arc<KillSwitch>,
    hub: Hub,
    registered: bool,
}

impl Subscription {
    /// Unregister now; returns true when this was the user's last connection.
    pub fn unregister(&mut self) -> bool {
        if !self.registered {
            return false;
        }
        self.registered = false;
        self.hub.remove(self.user, self.conn)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl Hub {
    /// The registry of connections, for reading (past a poisoned lock, as every
    /// lock of the hub is taken).
    fn conns(&self) -> std::sync::RwLockReadGuard<'_, HashMap<UserId, Vec<Entry>>> {
        self.inner.conns.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A hub whose per-connection queues hold `queue_len` events.
    pub fn new(queue_len: usize) -> Self {
        Hub {
            inner: Arc::new(Inner {
                conns: RwLock::new(HashMap::new()),
                watchers: RwLock::new(HashMap::new()),
                queue_len: queue_len.max(1),
            }),
        }
    }

    /// Register a connection of `user`. Returns the subscription and whether it is the
    /// user's first open connection (the user just came online).
    pub fn register(
        &self,
        user: UserId,
        conn: ConnId,
        kill: Arc<KillSwitch>,
    ) -> (Subscription, bool) {
        let (tx, rx) = mpsc::channel(self.inner.queue_len);
        let mut map = self.inner.conns.write().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(user).or_default();
        let first = list.is_empty();
        list.push(Entry {
            conn,
            tx,
            kill: kill.clone(),
        });
        drop(map);
        (
            Subscription {
                conn,
                user,
                rx,
                kill,
                hub: self.clone(),
                registered: true,
            },
            first,
        )
    }

    /// Let a connection also receive the events of `room` (or stop, with `None`). Used
    /// for moderators viewing a room they are not a member of; the caller has checked
    /// that they may view it. A connection watches at most one room.
    pub fn watch(&self, sub: &Subscription, room: Option<RoomId>) {
        self.unwatch(sub.conn);
        let Some(room) = room else { return };
        let entry = {
            let map = self.conns();
            map.get(&sub.user)
                .and_then(|l| l.iter().find(|e| e.conn == sub.conn))
                .cloned()
        };
        if let Some(entry) = entry {
            self.inner
                .watchers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(room)
                .or_default()
                .push((sub.user, entry));
        }
    }

    fn unwatch(&self, conn: ConnId) {
        let mut w = self
            .inner
            .watchers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        w.retain(|_, list| {
            list.retain(|(_, e)| e.conn != conn);
            !list.is_empty()
        });
    }

    fn remove(&self, user: UserId, conn: ConnId) -> bool {
        self.unwatch(conn);
        let mut map = self.inner.conns.write().unwrap_or_else(|e| e.into_inner());
        let Some(list) = map.get_mut(&user) else {
            return false;
        };
        let before = list.len();
        list.retain(|e| e.conn != conn);
        let removed = list.len() != before;
        if list.is_empty() {
            map.remove(&user);
            removed
        } else {
            false
        }
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.conns().get(&user).is_some_and(|l| !l.is_empty())
    }

    /// Number of open connections of `user`.
    pub fn connections_of(&self, user: UserId) -> usize {
        self.conns().get(&user).map_or(0, Vec::len)
    }

    /// Users with at least one open connection.
    pub fn online_users(&self) -> Vec<UserId> {
        self.conns().keys().copied().collect()
    }

    /// Total open registered connections.
    pub fn connection_count(&self) -> usize {
        self.conns().values().map(Vec::len).sum()
    }

    /// Events waiting in the queues of the signed-in connections: in all, and in
    /// the deepest queue (a slow consumer is closed when one reaches its bound).
    pub fn queue_depths(&self) -> (usize, usize) {
        let mut total = 0;
        let mut deepest = 0;
        for e in self.conns().values().flatten() {
            let queued = e.tx.max_capacity() - e.tx.capacity();
            total += queued;
            deepest = deepest.max(queued);
        }
        (total, deepest)
    }

    /// Enqueue `event` for every connection of every user in `recipients` (each user
    /// once, even if listed twice). Never blocks.
    pub fn publish(&self, recipients: &[UserId], event: Arc<Published>) {
        // Each user once: a linear scan for small lists (most rooms), a set beyond,
        // so the cost stays O(n) whatever the room's size.
        let unique;
        let recipients = if recipients.len() <= 64 {
            let mut small: Vec<UserId> = Vec::with_capacity(recipients.len());
            for u in recipients {
                if !small.contains(u) {
                    small.push(*u);
                }
            }
            unique = small;
            &unique[..]
        } else {
            unique = crate::ids::dedup_keep_order(recipients);
            &unique[..]
        };
        let map = self.conns();
        for user in recipients {
            let Some(list) = map.get(user) else { continue };
            for entry in list {
                enqueue(entry, &event);
            }
        }
        drop(map);
        if let Some(room) = event.event.room().map(|r| r.id()) {
            let watchers = self
                .inner
                .watchers
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let list = watchers.get(&room).map(Vec::as_slice).unwrap_or(&[]);
            let members: std::collections::HashSet<UserId> = match list.is_empty() {
                true => Default::default(),
                false => recipients.iter().copied().collect(),
            };
            for (user, entry) in list {
                if members.contains(user) {
                    continue;
                }
                enqueue(entry, &event);
            }
        }
    }

    /// Ask every connection to close, `batch` at a time with `pause` between
    /// batches (a draining node: its clients reconnect elsewhere spread out).
    pub async fn close_all_paced(
        &self,
        reason: CloseReason,
        batch: usize,
        pause: std::time::Duration,
    ) {
        let kills: Vec<Arc<KillSwitch>> = {
            let map = self.conns();
            map.values().flatten().map(|e| e.kill.clone()).collect()
        };
        for (i, chunk) in kills.chunks(batch.max(1)).enumerate() {
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            for k in chunk {
                k.kill(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::model::User;

    fn user(id: i64) -> User {
        User::placeholder(UserId(id))
    }

    fn ev() -> Arc<Published> {
        Arc::new(Published::new(
            Event::Presence {
                user: user(9),
                online: true,
            },
            None,
        ))
    }

    #[test]
    fn fans_out_to_every_connection_and_tracks_presence() {
        let hub = Hub::new(4);
        let (mut a1, first) = hub.register(UserId(1), next_conn_id(), Default::default());
        assert!(first);
        let (mut a2, first) = hub.register(UserId(1), next_conn_id(), Default::default());
        assert!(!first);
        let (mut b, _) = hub.register(UserId(2), next_conn_id(), Default::default());
        hub.publish(&[UserId(1), UserId(1)], ev());
        assert!(a1.rx.try_recv().is_ok());
        assert!(a2.rx.try_recv().is_ok());
        assert!(
            a1.rx.try_recv().is_err(),
            "a duplicate recipient gets it once"
        );
        assert!(b.rx.try_recv().is_err());
        assert!(!a1.unregister());
        assert!(hub.is_online(UserId(1)));
        assert!(a2.unregister());
        assert!(!hub.is_online(UserId(1)));
    }

    #[test]
    fn a_big_recipient_list_with_repeats_delivers_once() {
        let hub = Hub::new(4);
        let (mut a, _) = hub.register(UserId(1), next_conn_id(), Default::default());
        // remove_from_chat in a room of 100: the members, then the actor again.
        let mut recipients: Vec<UserId> = (1..=100).map(UserId).collect();
        recipients.push(UserId(1));
        hub.publish(&recipients, ev());
        assert!(a.rx.try_recv().is_ok());
        assert!(a.rx.try_recv().is_err(), "the actor gets the event once");
    }

    #[test]
    fn watchers_get_room_events_once_until_they_stop() {
        use crate::model::{Room, RoomKind, RoomView};
        let hub = Hub::new(8);
        let now = chrono::Utc::now();
        let room = Arc::new(RoomView {
            room: Room {
                id: crate::RoomId(5),
                kind: RoomKind::Group,
                title: String::new(),
                has_business: true,
                created_by: None,
                created_at: now,
                updated_at: now,
            },
            members: vec![user(1)],
            watermarks: vec![],
        });
        let ev = || {
            Arc::new(Published::new(
                Event::Typing {
                    room: room.clone(),
                    user: user(1),
                    until: now,
                },
                None,
            ))
        };
        let (mut admin, _) = hub.register(UserId(9), next_conn_id(), Default::default());
        hub.watch(&admin, Some(crate::RoomId(5)));
        hub.publish(&[UserId(1)], ev());
        assert!(admin.rx.try_recv().is_ok());
        // A watcher who is also a recipient gets it once.
        hub.publish(&[UserId(1), UserId(9)], ev());
        assert!(admin.rx.try_recv().is_ok());
        assert!(admin.rx.try_recv().is_err());
        hub.watch(&admin, None);
        hub.publish(&[UserId(1)], ev());
        assert!(admin.rx.try_recv().is_err());
        // Unregistering forgets the watch.
        hub.watch(&admin, Some(crate::RoomId(5)));
        admin.unregister();
        assert!(hub.inner.watchers.read().unwrap().is_empty());
    }

    #[test]
    fn a_full_queue_kills_only_that_connection() {
        let hub = Hub::new(2);
        let (slow, _) = hub.register(UserId(1), next_conn_id(), Default::default());
        let (mut fast, _) = hub.register(UserId(2), next_conn_id(), Default::default());
        for _ in 0..3 {
            hub.publish(&[UserId(1), UserId(2)], ev());
            while fast.rx.try_recv().is_ok() {}
        }
        assert!(slow.kill.is_killed());
        assert_eq!(slow.kill.reason(), Some(CloseReason::SlowConsumer));
        assert!(!fast.kill.is_killed());
    }
}
