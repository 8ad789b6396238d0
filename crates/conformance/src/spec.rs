//! Loading an AsyncAPI 3.0 document and turning each of its messages into a JSON
//! Schema validator.
//!
//! Why the document is read at run time (from `--specs DIR`, by default the
//! repository's `protocol-specs/`) rather than embedded: the runner is a tool for
//! checking a server against *the spec as written*, and a spec author iterating on a
//! schema should not need to rebuild it. The default directory is the one next to this
//! crate's sources, so `cargo run -p chat-conformance` works out of the box.
//!
//! Each message's payload schema is compiled on its own, with the document's
//! `components` carried alongside so that `$ref: '#/components/schemas/…'` pointers
//! resolve inside the same root (JSON Schema 2020-12: `$ref` next to an unknown
//! keyword is fine, and unknown keywords are ignored). Formats (`date-time`, `uri`)
//! are validated; unknown ones such as AsyncAPI's `int64` are annotations only.
//!
//! Direction comes from the operations. The documents describe the *server*: an
//! operation with `action: receive` lists what clients send, `action: send` what the
//! server sends, and a `reply` goes the other way of its operation.
//!
//! **Levels.** Each document describes two levels (see [`Level`]): the gateway's full
//! spec, and what the dialect's original API document (the seed) promised. The
//! document marks what the seed never promised, and the runner derives the legacy
//! level from those marks (nothing about levels is written in Rust):
//! - `x-level: gateway` on a property's schema: at the legacy level the property is
//!   optional and may hold anything (the seed never named it);
//! - `x-legacy: <schema>` on any schema: at the legacy level that schema is replaced
//!   by `<schema>` (the seed promised less: a string, not a millisecond timestamp);
//! - `x-level: gateway` on a message: the seed has no such message (it is left out of
//!   the "never received" note at the legacy level);
//! - `x-conformance.gateway-cases`, a list of `{operation, case, why}`: cases whose
//!   promise the seed never made. At the legacy level their failure is a departure,
//!   not a failure (see [`crate::report`]).
//!
//! At the legacy level a frame must satisfy the legacy schema; where it does but the
//! gateway's schema refuses it, the difference is recorded as a *departure* of the
//! case that received the frame.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Which promise a run checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    /// Only what the dialect's original API document promised.
    Legacy,
    /// The gateway's full spec (the default).
    #[default]
    Gateway,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "legacy" => Some(Level::Legacy),
            "gateway" => Some(Level::Gateway),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Legacy => "legacy",
            Level::Gateway => "gateway",
        }
    }
}

/// A case the document marks as the gateway's own promise (`x-conformance.gateway-cases`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayCase {
    pub operation: String,
    pub case: String,
    /// Why the seed does not promise it.
    pub why: String,
}

/// Departures noticed while validating frames, waiting for the case that received
/// them to be recorded (shared with the [`crate::Report`]).
pub type Departures = Arc<Mutex<Vec<String>>>;

/// Who sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// One message of the document.
pub struct MessageSpec {
    /// Its key under `components.messages`.
    pub key: String,
    /// Its wire name (`name`, else the key): the `type`, `method`, `action` or
    /// Socket.IO event it travels as.
    pub name: String,
    /// The directions it travels in (from the operations that list it).
    pub directions: BTreeSet<Direction>,
    /// Whether an operation lists it as a `reply`.
    pub is_reply: bool,
    /// The raw payload schema (absent when the document has none).
    pub payload: Option<Value>,
    /// The payloads of its examples.
    pub examples: Vec<Value>,
    /// Whether the document marks it `x-level: gateway` (the seed has no such message).
    pub gateway_only: bool,
    validator: Option<jsonschema::Validator>,
    /// The legacy level's validator (absent when the run is at the gateway level).
    legacy: Option<jsonschema::Validator>,
}

fn errors_of(v: &jsonschema::Validator, payload: &Value) -> Result<(), String> {
    let errors: Vec<String> = v
        .iter_errors(payload)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("at {at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

impl MessageSpec {
    /// Validate a payload at the run's level; `Err` lists every violation (at most a
    /// handful).
    pub fn validate(&self, payload: &Value) -> Result<(), String> {
        match (&self.legacy, &self.validator) {
            (Some(l), _) => errors_of(l, payload),
            (None, Some(v)) => errors_of(v, payload),
            (None, None) => Err(format!("message `{}` has no payload schema", self.key)),
        }
    }

    /// Validate a payload against the gateway's full schema, whatever the run's level.
    pub fn validate_gateway(&self, payload: &Value) -> Result<(), String> {
        match &self.validator {
            Some(v) => errors_of(v, payload),
            None => Err(format!("message `{}` has no payload schema", self.key)),
        }
    }
}

/// Compile the payload schema of message `key` within `components`.
fn compile(key: &str, components: &Value) -> Result<jsonschema::Validator, String> {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/messages/{}/payload", pointer_escape(key)),
        "components": components,
    });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| e.to_string())
}

/// The legacy level of a schema tree: `x-legacy` replacements made, properties marked
/// `x-level: gateway` made optional and unconstrained.
pub fn legacy_view(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(replacement) = m.get("x-legacy") {
                return legacy_view(replacement);
            }
            let mut out = Map::new();
            let mut dropped: Vec<String> = Vec::new();
            for (k, child) in m {
                if k == "properties" {
                    if let Value::Object(props) = child {
                        let mut p = Map::new();
                        for (name, schema) in props {
                            if is_gateway_only(schema) {
                                dropped.push(name.clone());
                                p.insert(name.clone(), json!({}));
                            } else {
                                p.insert(name.clone(), legacy_view(schema));
                            }
                        }
                        out.insert(k.clone(), Value::Object(p));
                        continue;
                    }
                }
                out.insert(k.clone(), legacy_view(child));
            }
            if let Some(Value::Array(req)) = out.get_mut("required") {
                req.retain(|r| r.as_str().is_none_or(|r| !dropped.iter().any(|d| d == r)));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(legacy_view).collect()),
        other => other.clone(),
    }
}

fn is_gateway_only(schema: &Value) -> bool {
    schema.get("x-level").and_then(Value::as_str) == Some("gateway")
}

/// A loaded document.
pub struct Spec {
    /// The file it came from.
    pub path: String,
    /// The whole document as JSON.
    pub doc: Value,
    pub messages: BTreeMap<String, MessageSpec>,
    /// Problems found while loading (a message without schema, a bad `$ref`, a schema
    /// that does not compile). The runner reports them; the spec test fails on them.
    pub problems: Vec<String>,
    /// The level the run checks.
    pub level: Level,
    /// The cases the document marks as the gateway's own promise.
    pub gateway_cases: Vec<GatewayCase>,
    /// Departures of frames received since the last recorded case.
    pub departures: Departures,
    seen: Mutex<BTreeSet<String>>,
}

impl Spec {
    /// Read and compile `path` at the gateway level.
    pub fn load(path: &Path) -> Result<Spec, String> {
        Self::load_at(path, Level::Gateway)
    }

    /// Read and compile `path` for a run at `level`.
    pub fn load_at(path: &Path, level: Level) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse_at(&path.display().to_string(), &text, level)
    }

    /// Compile a document given as YAML (or JSON) text, at the gateway level.
    pub fn parse(path: &str, text: &str) -> Result<Spec, String> {
        Self::parse_at(path, text, Level::Gateway)
    }

    /// Compile a document given as YAML (or JSON) text, for a run at `level`.
    pub fn parse_at(path: &str, text: &str, level: Level) -> Result<Spec, String> {
        let doc: Value =
            serde_yaml_ng::from_str(text).map_err(|e| format!("{path}: not valid YAML: {e}"))?;
        if doc.get("asyncapi").and_then(Value::as_str) != Some("3.0.0") {
            return Err(format!("{path}: not an AsyncAPI 3.0.0 document"));
        }
        let components = doc.get("components").cloned().unwrap_or(Value::Null);
        let legacy_components = legacy_view(&components);
        let mut problems = Vec::new();
        let mut messages = BTreeMap::new();
        let empty = serde_json::Map::new();
        let defs = components
            .get("messages")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (key, m) in defs {
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(key)
                .to_string();
            let payload = m.get("payload").cloned();
            let validator = match &payload {
                None => {
                    problems.push(format!("message `{key}` has no payload schema"));
                    None
                }
                Some(_) => match compile(key, &components) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        problems.push(format!("message `{key}`: schema does not compile: {e}"));
                        None
                    }
                },
            };
            // The legacy view is compiled for every run, so that a broken `x-legacy`
            // shows up in the spec test, and kept only for a legacy run.
            let legacy = match &payload {
                None => None,
                Some(_) => match compile(key, &legacy_components) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        problems.push(format!(
                            "message `{key}`: legacy-level schema does not compile: {e}"
                        ));
                        None
                    }
                },
            }
            .filter(|_| level == Level::Legacy);
            let examples = m
                .get("examples")
                .and_then(Value::as_array)
                .map(|xs| {
                    xs.iter()
                        .filter_map(|x| x.get("payload").cloned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            messages.insert(
                key.clone(),
                MessageSpec {
                    key: key.clone(),
                    name,
                    directions: BTreeSet::new(),
                    is_reply: false,
                    payload,
                    examples,
                    gateway_only: is_gateway_only(m),
                    validator,
                    legacy,
                },
            );
        }
        let gateway_cases = gateway_cases(&doc, &mut problems);
        let mut spec = Spec {
            path: path.to_string(),
            doc,
            messages,
            problems,
            level,
            gateway_cases,
            departures: Departures::default(),
            seen: Mutex::new(BTreeSet::new()),
        };
        spec.assign_directions();
        Ok(spec)
    }

    /// Follow each operation's message references to the component messages.
    fn assign_directions(&mut self) {
        let ops = self
            .doc
            .get("operations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (op_name, op) in &ops {
            let dir = match op.get("action").and_then(Value::as_str) {
                Some("receive") => Direction::ClientToServer,
                Some("send") => Direction::ServerToClient,
                other => {
                    self.problems
                        .push(format!("operation `{op_name}`: bad action {other:?}"));
                    continue;
                }
            };
            let back = match dir {
                Direction::ClientToServer => Direction::ServerToClient,
                Direction::ServerToClient => Direction::ClientToServer,
            };
            // The operation's own messages travel in its direction, its reply's back.
            let mut refs: Vec<(Value, Direction, bool)> = Vec::new();
            for (pointer, d, reply) in [("/messages", dir, false), ("/reply/messages", back, true)]
            {
                for r in op
                    .pointer(pointer)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    refs.push((r.clone(), d, reply));
                }
            }
            for (r, d, reply) in refs {
                match self.component_key(&r) {
                    Some(key) => {
                        if let Some(m) = self.messages.get_mut(&key) {
                            m.directions.insert(d);
                            m.is_reply |= reply;
                        }
                    }
                    None => self
                        .problems
                        .push(format!("operation `{op_name}`: unresolved message {r}")),
                }
            }
        }
        for m in self.messages.values() {
            if m.directions.is_empty() {
                self.problems
                    .push(format!("message `{}` is used by no operation", m.key));
            }
        }
    }

    /// The `components.messages` key a message reference ends at (through a
    /// channel's message, which itself refers to a component).
    fn component_key(&self, r: &Value) -> Option<String> {
        let mut target = r.get("$ref")?.as_str()?.to_string();
        for _ in 0..4 {
            if let Some(k) = target.strip_prefix("#/components/messages/") {
                let k = pointer_unescape(k);
                return self.messages.contains_key(&k).then_some(k);
            }
            let node = self.doc.pointer(target.strip_prefix('#')?)?;
            target = node.get("$ref")?.as_str()?.to_string();
        }
        None
    }

    /// The message with this key.
    pub fn message(&self, key: &str) -> Option<&MessageSpec> {
        self.messages.get(key)
    }

    /// Validate `payload` as the message `key` (and, when `name` is given, check the
    /// wire name too). Records the message as seen when it passes, and a departure
    /// when only the legacy level accepts it.
    pub fn check(&self, key: &str, name: Option<&str>, payload: &Value) -> Result<(), String> {
        let m = self
            .messages
            .get(key)
            .ok_or_else(|| format!("the spec has no message `{key}`"))?;
        if let Some(n) = name {
            if n != m.name {
                return Err(format!("expected `{}`, got `{n}`", m.name));
            }
        }
        m.validate(payload)?;
        if m.legacy.is_some() {
            if let Err(e) = m.validate_gateway(payload) {
                self.depart(&m.key, &e);
            }
        }
        self.mark_seen(key);
        Ok(())
    }

    /// The server-sent messages that accept this payload (and wire name, if given), at
    /// the run's level. At the legacy level, a frame that only the legacy schemas
    /// accept is recorded as a departure (from the first message that accepts it).
    pub fn identify(&self, name: Option<&str>, payload: &Value) -> Vec<String> {
        let found: Vec<&MessageSpec> = self
            .messages
            .values()
            .filter(|m| m.directions.contains(&Direction::ServerToClient))
            .filter(|m| name.is_none_or(|n| n == m.name))
            .filter(|m| m.validate(payload).is_ok())
            .collect();
        if self.level == Level::Legacy && !found.is_empty() {
            let gateway: Vec<Result<(), String>> =
                found.iter().map(|m| m.validate_gateway(payload)).collect();
            if gateway.iter().all(Result::is_err) {
                if let (Some(m), Some(Err(e))) = (found.first(), gateway.first()) {
                    self.depart(&m.key, e);
                }
            }
        }
        found.iter().map(|m| m.key.clone()).collect()
    }

    /// Note that a frame received as `key` departs from the gateway's schema.
    fn depart(&self, key: &str, why: &str) {
        if let Ok(mut d) = self.departures.lock() {
            let line = format!("`{key}`: {why}");
            // One line per difference, however many frames showed it.
            if !d.contains(&line) && d.len() < 20 {
                d.push(line);
            }
        }
    }

    pub fn mark_seen(&self, key: &str) {
        if let Ok(mut s) = self.seen.lock() {
            s.insert(key.to_string());
        }
    }

    /// Server-sent messages that no check has received yet (at the legacy level, of
    /// those the seed has).
    pub fn unseen_server_messages(&self) -> Vec<String> {
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        self.messages
            .values()
            .filter(|m| m.directions.contains(&Direction::ServerToClient))
            .filter(|m| self.level == Level::Gateway || !m.gateway_only)
            .filter(|m| !seen.contains(&m.key))
            .map(|m| m.key.clone())
            .collect()
    }

    /// Structural checks for the spec test: every message has a schema and an
    /// example, every example validates, and every object schema says whether it
    /// allows extra properties.
    pub fn lint(&self) -> Vec<String> {
        let mut out = self.problems.clone();
        for m in self.messages.values() {
            if m.examples.is_empty() {
                out.push(format!("message `{}` has no example", m.key));
            }
            for (i, ex) in m.examples.iter().enumerate() {
                if let Err(e) = m.validate(ex) {
                    out.push(format!(
                        "message `{}`: example {i} does not match its schema: {e}",
                        m.key
                    ));
                }
            }
        }
        if let Some(c) = self.doc.get("components") {
            loose_objects(c, "#/components", &mut out);
        }
        out
    }
}

/// `x-conformance.gateway-cases` of a document; malformed entries are problems.
fn gateway_cases(doc: &Value, problems: &mut Vec<String>) -> Vec<GatewayCase> {
    let Some(list) = doc.pointer("/x-conformance/gateway-cases") else {
        return Vec::new();
    };
    let Some(items) = list.as_array() else {
        problems.push("x-conformance.gateway-cases is not a list".into());
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |f: &str| item.get(f).and_then(Value::as_str).map(str::to_string);
        match (field("operation"), field("case"), field("why")) {
            (Some(operation), Some(case), Some(why)) => out.push(GatewayCase {
                operation,
                case,
                why,
            }),
            _ => problems.push(format!(
                "x-conformance.gateway-cases[{i}]: needs the strings operation, case and why"
            )),
        }
    }
    out
}

/// Object schemas with `properties` but no `additionalProperties` decision.
fn loose_objects(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties")
                && !m.contains_key("additionalProperties")
                && !m.contains_key("unevaluatedProperties")
            {
                out.push(format!(
                    "{at}: object schema without `additionalProperties` (say false, or why extras are allowed)"
                ));
            }
            for (k, child) in m {
                // `examples` hold data, not schemas; conditions (`if`, `then`,
                // `else`, `not`, `anyOf` alternatives) constrain values whose object the
                // outer schema closes.
                if matches!(
                    k.as_str(),
                    "examples" | "example" | "if" | "then" | "else" | "not" | "anyOf"
                ) {
                    continue;
                }
                loose_objects(child, &format!("{at}/{}", pointer_escape(k)), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                loose_objects(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn pointer_unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"
asyncapi: 3.0.0
info: {title: t, version: '1'}
channels:
  c:
    address: /x
    messages:
      ping: {$ref: '#/components/messages/ping'}
      pong: {$ref: '#/components/messages/pong'}
operations:
  rx:
    action: receive
    channel: {$ref: '#/channels/c'}
    messages: [{$ref: '#/channels/c/messages/ping'}]
    reply:
      channel: {$ref: '#/channels/c'}
      messages: [{$ref: '#/channels/c/messages/pong'}]
components:
  schemas:
    When: {type: string, format: date-time}
  messages:
    ping:
      payload: {type: object, required: [n], properties: {n: {type: integer}}, additionalProperties: false}
      examples: [{payload: {n: 1}}]
    pong:
      name: pong-event
      payload:
        type: object
        required: [at]
        properties: {at: {$ref: '#/components/schemas/When'}}
        additionalProperties: false
      examples: [{payload: {at: '2024-01-01T00:00:00.000Z'}}]
"##;

    #[test]
    fn directions_refs_and_formats() {
        let s = Spec::parse("t", DOC).unwrap();
        assert!(s.lint().is_empty(), "{:?}", s.lint());
        let pong = s.message("pong").unwrap();
        assert!(pong.directions.contains(&Direction::ServerToClient) && pong.is_reply);
        assert_eq!(pong.name, "pong-event");
        assert!(s.check("pong", None, &json!({"at": "yesterday"})).is_err());
        assert!(s
            .check("pong", None, &json!({"at": "2024-01-01T00:00:00Z", "x": 1}))
            .is_err());
        assert_eq!(
            s.identify(Some("pong-event"), &json!({"at": "2024-01-01T00:00:00Z"})),
            vec!["pong".to_string()]
        );
        assert_eq!(s.unseen_server_messages(), vec!["pong".to_string()]);
    }
}
