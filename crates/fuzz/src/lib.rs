//! Fuzzing of the gateway's decoders on the stable toolchain.
//!
//! [`targets`] are the decoding paths, which each dialect crate offers in its
//! descriptor (its frame decoders, and for Socket.IO dialects the Engine.IO/Socket.IO
//! payloads through socketioxide's own parsers); [`mutate`] makes inputs from real frames;
//! [`runner`] feeds a target for a bounded time or count, catching panics, and
//! saves any input that panics. The `chat-fuzz` binary and `scripts/fuzz-long.sh`
//! drive it; `tests/short.rs` runs every target briefly as part of the test suite.

pub mod mutate;
pub mod rng;
pub mod runner;
pub mod targets;

pub use runner::{run, Options, Report};
pub use targets::{find, Target, TARGETS};
