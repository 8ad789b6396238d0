//! Fuzz targets: how a dialect offers its decoders to the fuzzer (`chat-fuzz`).

use std::borrow::Cow;

/// One fuzz target: a decoding path from raw client bytes into the dialect, run
/// exactly as the server runs it on an incoming frame, up to the call of the service.
#[derive(Clone, Copy, Debug)]
pub struct FuzzTarget {
    pub name: &'static str,
    pub about: &'static str,
    /// Runs the path on the bytes. Must not panic on any input; may assert properties
    /// the server relies on (what it sends back is JSON, limits hold).
    pub run: fn(&[u8]),
    /// Real frames of the protocol, from its spec and the decoders' tests.
    pub seeds: &'static [&'static str],
}

/// A WebSocket text frame: tungstenite hands the server valid UTF-8 only, so invalid
/// input is made valid rather than thrown away.
pub fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A frame the server sends must be JSON. (An echoed value may already be as deep as
/// the parser allows, so the envelope around it can be too deep to read back; that
/// is the reader's limit, not a malformed frame.)
pub fn assert_json(frame: &str) {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(frame) {
        assert!(
            e.to_string().starts_with("recursion limit exceeded"),
            "the server would send a frame that is not JSON ({e}): {frame:.200}"
        );
    }
}
