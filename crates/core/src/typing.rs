//! Typing indicators: ephemeral, never stored. A client sends "typing" on keystrokes;
//! the registry turns that stream into at most one published event per room and user
//! per refresh interval, and refuses a flood outright.

use crate::ids::{RoomId, UserId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a typing indicator lasts after the last keystroke event.
pub const TYPING_TTL: Duration = Duration::from_secs(5);
/// A new event is published at most this often per room and user.
pub const TYPING_REFRESH: Duration = Duration::from_secs(1);
/// More than this many typing requests per second from one user in one room is a flood.
pub const TYPING_FLOOD_PER_SEC: u32 = 10;

#[derive(Debug, PartialEq, Eq)]
pub enum TypingDecision {
    /// Publish a typing event lasting [`TYPING_TTL`].
    Publish,
    /// Already announced recently; nothing to publish.
    Quiet,
    /// Too many requests: refuse.
    Flood,
}

struct Slot {
    last_published: Instant,
    window_start: Instant,
    count: u32,
}

#[derive(Default)]
pub struct TypingRegistry {
    slots: Mutex<HashMap<(RoomId, UserId), Slot>>,
}

impl TypingRegistry {
    pub fn touch(&self, room: RoomId, user: UserId, now: Instant) -> TypingDecision {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() > 10_000 {
            slots.retain(|_, s| now.duration_since(s.last_published) < TYPING_TTL);
        }
        match slots.get_mut(&(room, user)) {
            None => {
                slots.insert(
                    (room, user),
                    Slot {
                        last_published: now,
                        window_start: now,
                        count: 1,
                    },
                );
                TypingDecision::Publish
            }
            Some(slot) => {
                if now.duration_since(slot.window_start) >= Duration::from_secs(1) {
                    slot.window_start = now;
                    slot.count = 0;
                }
                slot.count += 1;
                if slot.count > TYPING_FLOOD_PER_SEC {
                    TypingDecision::Flood
                } else if now.duration_since(slot.last_published) >= TYPING_REFRESH {
                    slot.last_published = now;
                    TypingDecision::Publish
                } else {
                    TypingDecision::Quiet
                }
            }
        }
    }

    /// Forget a user's typing in a room (they sent a message).
    pub fn clear(&self, room: RoomId, user: UserId) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(room, user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_once_per_refresh_and_refuses_floods() {
        let reg = TypingRegistry::default();
        let t0 = Instant::now();
        let (r, u) = (RoomId(1), UserId(1));
        assert_eq!(reg.touch(r, u, t0), TypingDecision::Publish);
        assert_eq!(
            reg.touch(r, u, t0 + Duration::from_millis(100)),
            TypingDecision::Quiet
        );
        assert_eq!(
            reg.touch(r, u, t0 + Duration::from_millis(1100)),
            TypingDecision::Publish
        );
        let t1 = t0 + Duration::from_secs(3);
        let decisions: Vec<_> = (0..12).map(|_| reg.touch(r, u, t1)).collect();
        assert_eq!(decisions.last(), Some(&TypingDecision::Flood));
        assert_eq!(reg.touch(RoomId(2), u, t1), TypingDecision::Publish);
    }
}
