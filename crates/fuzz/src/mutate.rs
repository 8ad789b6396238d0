//! The input generator: mutations of valid frames.
//!
//! There is no coverage feedback on the stable toolchain, so the generator leans on
//! structure instead. Every input starts from a seed (a real frame of the target's
//! protocol) or from a recent mutant, and gets one to four mutations: byte-level ones
//! (bit flips, interesting bytes, protocol tokens, deletions, duplications, splices
//! with other seeds, truncation) and JSON-aware ones, which find the JSON document in
//! the frame (after a Socket.IO/Engine.IO prefix such as `42/chat,7`, in any
//! `\x1e`-separated packet of a polling body) and change one of its nodes: huge,
//! negative, fractional or out-of-range numbers, strings of digits, very long strings,
//! deep nesting, wrong types, duplicated or missing keys, keys and values taken from
//! the other seeds. The mutated document is written back between the same prefix and
//! suffix, so most inputs still get past the outer layers to the code under test.

use crate::rng::Rng;
use serde_json::{Map, Value};

/// Inputs are cut to this length (the gateway accepts frames up to 16 MiB, but
/// inputs this size already take every length-dependent path).
pub const MAX_INPUT: usize = 2 << 20;

/// Stands for raw JSON text in a document before it is serialized (raw text may be
/// no `Value` at all: `1e999`, 40 digits, 10 000 nested arrays).
const RAW: &str = "@@chat-fuzz-raw@@";

/// Byte strings that mean something to one of the parsers.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\\udc00",
    "null",
    "true",
    "false",
    "-",
    "0",
    "-0",
    "1e999",
    "-1e999",
    "1.5",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "\u{1e}",
    "4",
    "42",
    "451-",
    "/chat,",
    "/,",
    "b",
    "2probe",
    "{\"_placeholder\":true,\"num\":0}",
    "é",
    "😀",
    "\u{feff}",
    "\u{0}",
    " ",
    "\t",
    "\n",
    "_",
    "data:",
    ";base64,",
    "=",
    "==",
    "+/",
    "-_",
    "T",
    "Z",
    "+23:59",
    "%",
    "&",
    "?",
    "token=",
    "Bearer ",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "1.0",
    "1.5",
    "-1.5",
    "1e2",
    "1E+2",
    "1e-7",
    "1e308",
    "1e309",
    "-1e309",
    "2147483647",
    "2147483648",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "8640000000000000",
    "-8640000000000001",
    "253402300799999",
    "0.1e1",
];

const DIGIT_STRINGS: &[&str] = &[
    "12",
    " 12 ",
    "-12",
    "+12",
    "007",
    "0",
    "12_23",
    "23_12",
    "7_7",
    "_",
    "1_",
    "-1_2",
    "1_9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "12.0",
    "1e3",
    "",
    " ",
    "١٢",
    "１２",
    "12\u{0}",
    "2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "0000-01-01T00:00:00+23:59",
    "+275760-09-13T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-05-01T12:00:60Z",
    "data:text/plain;base64,aGk=",
    "data:;base64,",
    "data:,",
    "aGVsbG8=",
    "====",
    "http://127.0.0.1:8080/files/1/a.png",
    "http://127.0.0.1:8080/files/9223372036854775808/a",
    "http://127.0.0.1:8080/files/-1/a",
    "http://127.0.0.1:8080/files/",
];

const CHARS: &[&str] = &[
    "a", "é", "😀", "\\n", "\\u0000", "\\\"", "\\\\", "0", " ", "\u{7f}",
];

/// The part of an input that is a JSON document: `input[start..end]`.
struct Doc {
    start: usize,
    end: usize,
    value: Value,
}

/// Find the first JSON object or array in `segment` (offsets relative to it).
fn find_doc(segment: &[u8]) -> Option<Doc> {
    let start = segment.iter().position(|b| *b == b'{' || *b == b'[')?;
    let mut stream = serde_json::Deserializer::from_slice(&segment[start..]).into_iter::<Value>();
    let value = stream.next()?.ok()?;
    let end = start + stream.byte_offset();
    Some(Doc { start, end, value })
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

fn nth_mut<'a>(v: &'a mut Value, k: &mut usize) -> Option<&'a mut Value> {
    if *k == 0 {
        return Some(v);
    }
    *k -= 1;
    match v {
        Value::Array(a) => {
            for x in a.iter_mut() {
                if let Some(found) = nth_mut(x, k) {
                    return Some(found);
                }
            }
            None
        }
        Value::Object(m) => {
            for x in m.values_mut() {
                if let Some(found) = nth_mut(x, k) {
                    return Some(found);
                }
            }
            None
        }
        _ => None,
    }
}

fn nth(v: &Value, k: &mut usize) -> Option<Value> {
    if *k == 0 {
        return Some(v.clone());
    }
    *k -= 1;
    match v {
        Value::Array(a) => a.iter().find_map(|x| nth(x, k)),
        Value::Object(m) => m.values().find_map(|x| nth(x, k)),
        _ => None,
    }
}

fn collect_words(v: &Value, keys: &mut Vec<String>, strings: &mut Vec<String>) {
    match v {
        Value::String(s) => strings.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_words(x, keys, strings)),
        Value::Object(m) => {
            for (k, x) in m {
                keys.push(k.clone());
                collect_words(x, keys, strings);
            }
        }
        _ => {}
    }
}

/// The generator for one target: its seeds and the words found in them.
pub struct Mutator {
    seeds: Vec<Vec<u8>>,
    docs: Vec<Value>,
    keys: Vec<String>,
    strings: Vec<String>,
}

impl Mutator {
    pub fn new(seeds: &[&str]) -> Self {
        let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
        let mut docs = Vec::new();
        let (mut keys, mut strings) = (Vec::new(), Vec::new());
        for s in &seeds {
            for segment in s.split(|b| *b == 0x1e) {
                if let Some(d) = find_doc(segment) {
                    collect_words(&d.value, &mut keys, &mut strings);
                    docs.push(d.value);
                }
            }
        }
        keys.sort();
        keys.dedup();
        strings.sort();
        strings.dedup();
        if keys.is_empty() {
            keys.push("id".into());
        }
        if strings.is_empty() {
            strings.push("x".into());
        }
        if docs.is_empty() {
            docs.push(Value::Null);
        }
        Mutator {
            seeds,
            docs,
            keys,
            strings,
        }
    }

    pub fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    /// A new input made from `base`.
    pub fn mutate(&self, rng: &mut Rng, base: &[u8]) -> Vec<u8> {
        let mut out = base.to_vec();
        let rounds = 1 + rng.below(4);
        for _ in 0..rounds {
            if rng.chance(11, 20) {
                if let Some(m) = self.mutate_json(rng, &out) {
                    out = m;
                    continue;
                }
            }
            self.mutate_bytes(rng, &mut out);
        }
        out.truncate(MAX_INPUT);
        out
    }

    // ------------------------------------------------------------------ JSON-aware

    fn mutate_json(&self, rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
        // The `\x1e`-separated segments (Engine.IO polling packets); pick one that
        // holds a document.
        let mut bounds = Vec::new();
        let mut from = 0;
        for (i, b) in input.iter().enumerate() {
            if *b == 0x1e {
                bounds.push((from, i));
                from = i + 1;
            }
        }
        bounds.push((from, input.len()));
        let first = rng.below(bounds.len());
        let (seg_start, doc) = (0..bounds.len()).find_map(|i| {
            let (s, e) = bounds[(first + i) % bounds.len()];
            find_doc(&input[s..e]).map(|d| (s, d))
        })?;
        let mut value = doc.value;
        let raw = self.mutate_tree(rng, &mut value);
        let mut text = serde_json::to_string(&value).ok()?;
        if let Some(raw) = raw {
            let quoted = format!("\"{RAW}\"");
            text = text.replacen(&quoted, &raw, 1);
        }
        let mut out = Vec::with_capacity(input.len() + text.len());
        out.extend_from_slice(&input[..seg_start + doc.start]);
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&input[seg_start + doc.end..]);
        Some(out)
    }

    /// Change one node of `v`; when the change is raw text, the text to put in place
    /// of the [`RAW`] marker.
    fn mutate_tree(&self, rng: &mut Rng, v: &mut Value) -> Option<String> {
        let n = count(v);
        let mut k = rng.below(n);
        let node = nth_mut(v, &mut k)?;
        match rng.below(20) {
            0..=5 => {
                *node = Value::String(RAW.into());
                return Some(self.raw_value(rng));
            }
            6..=8 => *node = self.simple_value(rng),
            9..=10 => *node = Value::String(rng.pick(&self.strings).clone()),
            11 => *node = Value::String(rng.pick(DIGIT_STRINGS).to_string()),
            12 => {
                let donor = rng.pick(&self.docs);
                let mut j = rng.below(count(donor));
                if let Some(d) = nth(donor, &mut j) {
                    *node = d;
                }
            }
            13..=15 => match node {
                Value::Object(m) => self.mutate_object(rng, m),
                Value::Array(a) => Self::mutate_array(rng, a),
                Value::String(s) => self.mutate_string(rng, s),
                other => *other = self.simple_value(rng),
            },
            16 => {
                let inner = node.take();
                *node = if rng.chance(1, 2) {
                    Value::Array(vec![inner])
                } else {
                    let mut m = Map::new();
                    m.insert(rng.pick(&self.keys).clone(), inner);
                    Value::Object(m)
                };
            }
            17 => {
                // Unwrap: a container becomes one of its items.
                let item = match node {
                    Value::Array(a) if !a.is_empty() => Some(a.swap_remove(rng.below(a.len()))),
                    Value::Object(m) if !m.is_empty() => {
                        let key = m.keys().nth(rng.below(m.len())).cloned();
                        key.and_then(|key| m.remove(&key))
                    }
                    _ => None,
                };
                if let Some(item) = item {
                    *node = item;
                }
            }
            _ => {
                // A duplicated key (a `Map` cannot hold one, so it is raw text).
                if let Value::Object(m) = node {
                    if let Some((k, x)) = m.iter().nth(rng.below(m.len().max(1))) {
                        let first = serde_json::to_string(x).ok()?;
                        let second = self.raw_value(rng);
                        let key = serde_json::to_string(k).ok()?;
                        let mut text = String::from("{");
                        for (other, y) in m.iter().filter(|(o, _)| *o != k) {
                            text.push_str(&serde_json::to_string(other).ok()?);
                            text.push(':');
                            text.push_str(&serde_json::to_string(y).ok()?);
                            text.push(',');
                        }
                        let (a, b) = if rng.chance(1, 2) {
                            (first, second)
                        } else {
                            (second, first)
                        };
                        text.push_str(&format!("{key}:{a},{key}:{b}}}"));
                        *node = Value::String(RAW.into());
                        return Some(text);
                    }
                }
                *node = Value::String(RAW.into());
                return Some(self.raw_value(rng));
            }
        }
        None
    }

    fn mutate_object(&self, rng: &mut Rng, m: &mut Map<String, Value>) {
        match rng.below(4) {
            0 if !m.is_empty() => {
                let key = m.keys().nth(rng.below(m.len())).cloned();
                if let Some(key) = key {
                    m.remove(&key);
                }
            }
            1 if !m.is_empty() => {
                let key = m.keys().nth(rng.below(m.len())).cloned();
                if let Some(x) = key.and_then(|key| m.remove(&key)) {
                    m.insert(rng.pick(&self.keys).clone(), x);
                }
            }
            2 => {
                let key = format!("k{}", rng.below(1_000_000));
                m.insert(key, self.simple_value(rng));
            }
            _ => {
                m.insert(rng.pick(&self.keys).clone(), self.simple_value(rng));
            }
        }
    }

    fn mutate_array(rng: &mut Rng, a: &mut Vec<Value>) {
        if a.is_empty() {
            a.push(Value::Null);
            return;
        }
        let i = rng.below(a.len());
        match rng.below(4) {
            0 => {
                a.remove(i);
            }
            1 => {
                let x = a[i].clone();
                a.insert(i, x);
            }
            2 => {
                // Many copies, but never more than the input size allows (a large
                // item copied ten thousand times would be gigabytes).
                let x = a[i].clone();
                let item = serde_json::to_string(&x).map_or(MAX_INPUT, |t| t.len() + 1);
                let n = rng.size(10_000).min(MAX_INPUT / item);
                a.extend(std::iter::repeat_n(x, n));
            }
            _ => a.reverse(),
        }
    }

    fn mutate_string(&self, rng: &mut Rng, s: &mut String) {
        match rng.below(6) {
            0 => s.clear(),
            1 => {
                let c = rng.pick(&["a", "é", "😀", "\u{0}", "\n", " ", "_", "/", "\u{202e}"]);
                let n = rng.size(1 << 20);
                s.push_str(&c.repeat(n));
            }
            2 => {
                let cut = s.floor_char_boundary(rng.below(s.len() + 1));
                s.truncate(cut);
            }
            3 => *s = s.to_uppercase(),
            4 => {
                let pos = s.floor_char_boundary(rng.below(s.len() + 1));
                let token = *rng.pick(TOKENS);
                s.insert_str(pos, token);
            }
            _ => *s = format!(" {s} "),
        }
    }

    fn simple_value(&self, rng: &mut Rng) -> Value {
        match rng.below(14) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(1, 2)),
            2 => Value::from(i64::MAX),
            3 => Value::from(i64::MIN),
            4 => Value::from(u64::MAX),
            5 => Value::from(-1),
            6 => Value::from(0),
            7 => Value::from(1.5),
            8 => Value::from(""),
            9 => Value::Array(Vec::new()),
            10 => Value::Object(Map::new()),
            11 => Value::from(rng.next_u64() as i64 >> rng.below(64)),
            12 => Value::from(rng.pick(&self.keys).clone()),
            _ => Value::from(rng.pick(DIGIT_STRINGS).to_string()),
        }
    }

    /// JSON text to put in place of a node; some of it is not valid JSON on purpose.
    fn raw_value(&self, rng: &mut Rng) -> String {
        match rng.below(12) {
            0..=2 => rng.pick(NUMBERS).to_string(),
            3 => {
                let depth = *rng.pick(&[10usize, 100, 126, 127, 128, 129, 200, 1000, 10_000]);
                format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
            }
            4 => {
                let depth = *rng.pick(&[10usize, 100, 127, 128, 129, 1000]);
                let key = serde_json::to_string(rng.pick(&self.keys)).unwrap_or_default();
                format!(
                    "{}1{}",
                    format!("{{{key}:").repeat(depth),
                    "}".repeat(depth)
                )
            }
            5 => {
                let c = rng.pick(CHARS);
                format!("\"{}\"", c.repeat(rng.size(1 << 20)))
            }
            6 => {
                let digits: String = (0..rng.size(400))
                    .map(|_| char::from(b'0' + rng.below(10) as u8))
                    .collect();
                if rng.chance(1, 2) {
                    format!("\"{digits}\"")
                } else {
                    digits
                }
            }
            7 => rng
                .pick(&[
                    "\"\\ud800\"",
                    "\"\\udfff\\ud800\"",
                    "\"\\u0000\"",
                    "\"\u{7f}\"",
                    "\"\\/\"",
                    "\"\\uD83D\\uDE00\"",
                    "\"",
                    "[",
                    "{",
                    "}",
                    "[1,]",
                    "{\"a\":}",
                    "NaN",
                    "Infinity",
                    "'x'",
                    "",
                ])
                .to_string(),
            8 => {
                let n = rng.size(100_000);
                format!("[{}1]", "1,".repeat(n))
            }
            9 => {
                let n = rng.size(20_000);
                let body: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
                format!("{{{}}}", body.join(","))
            }
            10 => serde_json::to_string(rng.pick(&self.strings)).unwrap_or_default(),
            _ => serde_json::to_string(rng.pick(DIGIT_STRINGS)).unwrap_or_default(),
        }
    }

    // ------------------------------------------------------------------ byte-level

    fn mutate_bytes(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let len = data.len();
        let pos = rng.below(len + 1);
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(&[
                    0u8, 0x1e, 0x7f, 0x80, 0xc3, 0xff, b'"', b'\\', b'{', b'}', b'[', b']', b',',
                    b':', b'0', b'9', b'-', b'/', b'_', b'b', b'4',
                ]);
            }
            2 => {
                let t = rng.pick(TOKENS).as_bytes();
                data.splice(pos..pos, t.iter().copied());
            }
            3 if len > 0 => {
                let n = rng.size(len).min(len - pos.min(len));
                data.drain(pos..pos + n);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let n = rng.size(len - start).min(len - start);
                let chunk: Vec<u8> = data[start..start + n].to_vec();
                let at = rng.below(data.len() + 1);
                let times = if rng.chance(1, 8) { rng.size(1000) } else { 1 };
                for _ in 0..times {
                    if data.len() + chunk.len() > MAX_INPUT {
                        break;
                    }
                    data.splice(at..at, chunk.iter().copied());
                }
            }
            5 => {
                let donor = rng.pick(&self.seeds);
                let from = rng.below(donor.len() + 1);
                data.truncate(pos);
                data.extend_from_slice(&donor[from..]);
            }
            6 => {
                let n = rng.size(64);
                let bytes: Vec<u8> = (0..n)
                    .map(|_| {
                        if rng.chance(3, 4) {
                            0x20 + rng.below(0x5f) as u8
                        } else {
                            rng.next_u64() as u8
                        }
                    })
                    .collect();
                data.splice(pos..pos, bytes);
            }
            7 => data.truncate(pos),
            8 => {
                // Replace a run of digits with another number.
                if let Some(start) = (pos..len).find(|i| data[*i].is_ascii_digit()) {
                    let end = (start..len)
                        .find(|i| !data[*i].is_ascii_digit())
                        .unwrap_or(len);
                    let n = rng.pick(NUMBERS).as_bytes();
                    data.splice(start..end, n.iter().copied());
                }
            }
            9 => {
                let w = if rng.chance(1, 2) {
                    rng.pick(&self.keys)
                } else {
                    rng.pick(&self.strings)
                };
                data.splice(pos..pos, w.bytes());
            }
            _ => {
                let w = serde_json::to_string(rng.pick(&self.strings)).unwrap_or_default();
                data.splice(pos..pos, w.bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_mutations_keep_the_prefix() {
        let m = Mutator::new(&["42/chat,7[\"send-message\",{\"user\":\"bob\"}]"]);
        let mut rng = Rng::new(1);
        let mut kept = 0;
        for _ in 0..200 {
            if let Some(out) = m.mutate_json(&mut rng, m.seeds()[0].as_slice()) {
                assert!(out.starts_with(b"42/chat,7"));
                kept += 1;
            }
        }
        assert_eq!(kept, 200);
    }

    #[test]
    fn deterministic() {
        let m = Mutator::new(&["{\"type\":\"set_online\"}", "[1,2,{\"a\":\"b\"}]"]);
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..100)
                .map(|i| m.mutate(&mut rng, &m.seeds()[i % 2]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
    }
}
