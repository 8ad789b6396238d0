//! Every fuzz target for a few seconds (CHAT_FUZZ_SECS, default 3; CHAT_FUZZ_SEED,
//! default 1), and every input that once panicked (`regressions/`), as part of the
//! test suite. The long runs are `scripts/fuzz-long.sh`.

use chat_fuzz::runner::run_one;
use chat_fuzz::{find, run, Options, TARGETS};
use std::path::PathBuf;
use std::time::Duration;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fuzz(name: &str) {
    let target = find(name).expect("a target");
    let opts = Options {
        seed: env_or("CHAT_FUZZ_SEED", 1),
        time: Some(Duration::from_secs_f64(env_or("CHAT_FUZZ_SECS", 3.0))),
        crash_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes"),
        ..Options::default()
    };
    let r = run(target, &opts);
    println!(
        "{name}: {} inputs in {:.1} s ({:.0}/s), {} crashes, slowest {:.1} ms",
        r.iterations,
        r.elapsed.as_secs_f64(),
        r.rate(),
        r.crashes,
        r.slowest.as_secs_f64() * 1000.0
    );
    if let Some((message, path)) = r.first_crash {
        panic!(
            "{name}: an input panicked; saved to {} (replay: chat-fuzz replay {name} <file>)\n{message}",
            path.display()
        );
    }
    assert!(
        r.iterations > target.seeds.len() as u64,
        "{name}: only the seeds ran"
    );
}

#[test]
fn every_target_is_fuzzed_here() {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "method-args",
            "method-args-upload",
            "type-content",
            "action-request",
            "socketio-rooms",
            "socketio-pubsub",
            "engineio-payload",
        ]
    );
}

#[test]
fn seeds_are_real_frames() {
    // The seeds themselves, unmutated, run without panicking.
    for t in TARGETS.iter() {
        for s in t.seeds {
            assert_eq!(run_one(t, s.as_bytes()), None, "{}: {s}", t.name);
        }
    }
}

#[test]
fn regressions_do_not_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions/") {
        let path = entry.expect("an entry").path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        let Some((name, _)) = file.split_once("--") else {
            continue;
        };
        let target = find(name).unwrap_or_else(|| panic!("{file}: no target {name}"));
        let data = std::fs::read(&path).expect("readable");
        if let Some(message) = run_one(target, &data) {
            panic!("{file} panics again:\n{message}");
        }
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn action_request() {
    fuzz("action-request");
}

#[test]
fn method_args() {
    fuzz("method-args");
}

#[test]
fn method_args_upload() {
    fuzz("method-args-upload");
}

#[test]
fn type_content() {
    fuzz("type-content");
}

#[test]
fn engineio_payload() {
    fuzz("engineio-payload");
}

#[test]
fn socketio_rooms() {
    fuzz("socketio-rooms");
}

#[test]
fn socketio_pubsub() {
    fuzz("socketio-pubsub");
}
