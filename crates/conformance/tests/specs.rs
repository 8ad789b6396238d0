//! Every `protocol-specs/*/asyncapi.yaml` parses, every message has a payload schema
//! and at least one example, every example validates against its own message's schema,
//! every object schema says whether it allows extra properties, and every message is
//! used by an operation. A spec that fails here would make the conformance runner's
//! verdicts meaningless, so this runs before (and independently of) any server.

use chat_conformance::spec::Spec;
use chat_conformance::{default_specs_dir, Dialect};

#[test]
fn every_spec_is_complete_and_its_examples_validate() {
    let dir = default_specs_dir();
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("asyncapi.yaml").is_file())
        .collect();
    entries.sort();
    for d in entries {
        let path = d.join("asyncapi.yaml");
        match Spec::load(&path) {
            Ok(spec) => {
                let name = d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                for p in spec.lint() {
                    problems.push(format!("{name}: {p}"));
                }
                if spec.messages.is_empty() {
                    problems.push(format!("{name}: no messages"));
                }
                checked.push(name);
            }
            Err(e) => problems.push(e),
        }
    }
    eprintln!("checked specs: {checked:?}");
    // The three plain-WebSocket dialects must always have one.
    for d in [
        Dialect::MethodArgs,
        Dialect::TypeContent,
        Dialect::ActionRequest,
    ] {
        assert!(
            checked.iter().any(|c| c == d.name()),
            "no spec for {}",
            d.name()
        );
    }
    assert!(
        problems.is_empty(),
        "spec problems:\n{}",
        problems.join("\n")
    );
}
