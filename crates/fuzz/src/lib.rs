//! Fuzzing of the gateway's decoders on the stable toolchain.
//!
//! [`targets`] are the decoding paths (every dialect's frame decoder, the
//! method-args uploads, and Engine.IO/Socket.IO payloads through socketioxide's own
//! parsers into the Socket.IO dialects); [`mutate`] makes inputs from real frames;
//! [`runner`] feeds a target for a bounded time or count, catching panics, and
//! saves any input that panics. The `chat-fuzz` binary and `scripts/fuzz-long.sh`
//! drive it; `tests/short.rs` runs every target briefly as part of the test suite.

pub mod mutate;
pub mod rng;
pub mod runner;
pub mod targets;

pub use runner::{run, Options, Report};
pub use targets::{find, Target, TARGETS};
