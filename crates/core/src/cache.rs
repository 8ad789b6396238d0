//! What the service keeps in memory between commands: room views and users.
//!
//! Every send needs the room's members (to authorize and to know whom to publish to)
//! and their profiles (every dialect shows the author, some the whole member list).
//! Loading them costs two queries whose size grows with the room: for a room of a
//! thousand members, reloading a thousand user rows per message dominated a fan-out
//! benchmark. A dialect may also name the other side of a conversation by username
//! in every message, which cost a user lookup per send.
//!
//! Entries live for at most [`CACHE_TTL`] and are dropped whenever this service
//! changes what they hold: membership, read marks, titles (one room) or any user's
//! profile (all rooms, all users). The short lifetime bounds how long a change made
//! outside this process (the CLI on the same database file) can go unseen.
//!
//! A load that raced with an invalidation must not put back what it read before the
//! change, so every invalidation bumps a generation, and an entry is stored only if
//! the generation is still the one seen when its load began.

use crate::ids::RoomId;
use crate::model::{Room, RoomKind, SharedRoom, User};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached entry may be used.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(1);
/// Entries kept at most per map; a full map starts over.
const CACHE_MAX: usize = 4096;
/// Direct and project room ids remembered by key at most (about 100 bytes each).
const ROOM_KEYS_MAX: usize = 100_000;

/// A map whose entries expire after [`CACHE_TTL`], with the generation check above.
pub(crate) struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    generation: AtomicU64,
}

impl<K, V> Default for TtlMap<K, V> {
    fn default() -> Self {
        TtlMap {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    /// The entry, if stored less than [`CACHE_TTL`] ago and `fresh` accepts it.
    pub fn get_if<Q>(&self, key: &Q, fresh: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.get(key)?;
        (at.elapsed() < CACHE_TTL && fresh(value)).then(|| value.clone())
    }

    /// The generation to hand back to [`Self::put`] after a load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Store what a load that began at `seen_generation` read, unless something was
    /// invalidated since.
    pub fn put(&self, seen_generation: u64, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            // Read under the lock: invalidations bump it under the same lock.
            if self.generation.load(Ordering::Acquire) != seen_generation {
                return;
            }
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), value));
        }
    }

    pub fn forget(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.remove(key);
        }
    }

    pub fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
    }
}

/// Room views by id, and the ids of direct and project rooms by key.
///
/// A room addressed by id is served from the cache without reading its row again
/// (every change of a room row goes through this service and drops the view), and
/// the room of a direct pair or a project is remembered by its key: a room's kind
/// and key never change, and a deleted room is forgotten by both maps
/// ([`RoomCache::forget_room`]) before its deletion is published. Without these a
/// send still cost one or two lookups before its insert.
#[derive(Default)]
pub(crate) struct RoomCache {
    pub views: TtlMap<RoomId, SharedRoom>,
    keyed: Mutex<HashMap<RoomKind, RoomId>>,
}

impl RoomCache {
    /// The view of `room`, if loaded recently and of this very row.
    pub fn get(&self, room: &Room) -> Option<SharedRoom> {
        self.views.get_if(&room.id, |view| view.room == *room)
    }

    /// The view of room `id`, if one was loaded less than [`CACHE_TTL`] ago.
    pub fn get_by_id(&self, id: RoomId) -> Option<SharedRoom> {
        self.views.get_if(&id, |_| true)
    }

    /// The id of the direct or project room with this kind, once seen.
    pub fn id_of(&self, kind: &RoomKind) -> Option<RoomId> {
        self.keyed.lock().ok()?.get(kind).copied()
    }

    /// Forget a deleted room: its view and its key.
    pub fn forget_room(&self, room: &Room) {
        self.views.forget(&room.id);
        if let Ok(mut keyed) = self.keyed.lock() {
            if keyed.get(&room.kind) == Some(&room.id) {
                keyed.remove(&room.kind);
            }
        }
    }

    pub fn remember_key(&self, room: &Room) {
        if matches!(room.kind, RoomKind::Group) {
            return;
        }
        if let Ok(mut keyed) = self.keyed.lock() {
            if keyed.len() >= ROOM_KEYS_MAX {
                keyed.clear();
            }
            keyed.insert(room.kind.clone(), room.id);
        }
    }
}

/// Users by username.
pub(crate) type UserCache = TtlMap<String, User>;
