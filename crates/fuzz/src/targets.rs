//! The fuzz targets: each dialect's own (its descriptor's `fuzz`), then those of the
//! layers the dialects share, as the roster lists them. A target takes raw bytes and
//! runs one decoding path exactly as the server runs it on an incoming frame, up to the
//! point where the service is called; it must not panic on any input.

use std::sync::LazyLock;

/// One fuzz target.
pub type Target = dialect_kit::FuzzTarget;

/// Every target, in the roster's order.
pub static TARGETS: LazyLock<Vec<Target>> = LazyLock::new(chat_dialects::fuzz_targets);

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
