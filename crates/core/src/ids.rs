//! Typed ids. Every id in the domain is a 64-bit integer; dialects that use strings
//! carry its decimal form. Distinct types keep a room id from being passed as a user id.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<i64> for $name {
            fn from(v: i64) -> Self {
                Self(v)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

id_type!(
    /// A user.
    UserId
);
id_type!(
    /// A room (chat).
    RoomId
);
id_type!(
    /// A message; ordered per room.
    MessageId
);
id_type!(
    /// A stored attachment.
    AttachmentId
);
id_type!(
    /// One open connection of any dialect, unique within a process.
    ConnId
);

/// `list` without repeats, first occurrences kept in order; O(n).
pub fn dedup_keep_order<T: Copy + Eq + std::hash::Hash>(list: &[T]) -> Vec<T> {
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    list.iter().copied().filter(|x| seen.insert(*x)).collect()
}
