//! The roster: every dialect the gateway can mount, in one list.
//!
//! Invariant: this file and its `Cargo.toml` are the only places outside a dialect's own
//! crate that the gateway's build names it. Mechanism: each dialect crate exports its
//! [`Descriptor`]s (`DESCRIPTORS`); [`all`] concatenates them in the order of DESIGN.md,
//! and the gateway builds its mounts, `--dialects` defaults, trusted-mode flags and
//! origin rules from that list, the fuzzer its targets. Consequence: a new dialect is
//! one crate plus one line here (see "Adding a dialect" in the README).

use dialect_kit::{Descriptor, FuzzTarget};

/// Every dialect, in the order of DESIGN.md. HTTP-served (prefix) mounts come after
/// the WebSocket ones in this order too, though the router does not depend on it.
pub fn all() -> Vec<Descriptor> {
    [
        dialect_method_args::DESCRIPTORS,
        dialect_type_content::DESCRIPTORS,
        dialect_action_request::DESCRIPTORS,
        dialect_socketio_rooms::DESCRIPTORS,
        dialect_socketio_pubsub::DESCRIPTORS,
    ]
    .concat()
}

/// Every fuzz target: each dialect's, then those of the layers the dialects share.
pub fn fuzz_targets() -> Vec<FuzzTarget> {
    all()
        .iter()
        .flat_map(|d| d.fuzz.iter().copied())
        .chain(socketio_common::fuzz::TARGETS.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_paths_and_fuzz_targets_are_unique() {
        let all = all();
        let names: HashSet<_> = all.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), all.len(), "two dialects share a name");
        let mut paths = HashSet::new();
        for d in &all {
            assert!(
                !d.default_paths.is_empty(),
                "{} has no default path",
                d.name
            );
            for p in d.default_paths {
                assert!(p.starts_with('/'), "{}: {p}", d.name);
                assert!(paths.insert(*p), "{}: default path {p} taken twice", d.name);
            }
        }
        let targets = fuzz_targets();
        let names: HashSet<_> = targets.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), targets.len(), "two fuzz targets share a name");
    }
}
