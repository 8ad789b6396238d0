//! `chat-gateway import` and `export`: a legacy backend's history as JSON lines.
//!
//! One JSON object per line, its `type` one of `user`, `room`, `member`, `message`,
//! `read` (README, "Import and export"). These are the wire types of that format;
//! the store's bulk import (`chat_store::import`) knows nothing of JSON. The import
//! reads the file once, in order: consecutive records of one type go to the store
//! in batches (one transaction each), so a record can refer to any record on an
//! earlier line. A bad line is reported with its number and counted, and the rest
//! goes on.

use chat_core::{FileStore, MessageKind, Timestamp, UserProfile};
use chat_store::import::{
    BlobRef, Exporter, Importer, KeyKind, MemberRecord, MessageRecord, Outcome, ReadRecord,
    RoomRecord, RoomShape, UserRecord,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Records of one type sent to the store at once (one transaction).
pub const DEFAULT_BATCH: usize = 5000;
/// The longest line read; a longer one is refused (and skipped).
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// How long fetching one attachment URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Rows read per query of an export.
const EXPORT_PAGE: i64 = 5000;

/// A key of the legacy system: an integer (kept as the id where free) or a string.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Text(String),
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Int(i) => i.to_string(),
            Key::Text(s) => s.clone(),
        }
    }

    fn wanted_id(&self) -> Option<i64> {
        match self {
            Key::Int(i) => Some(*i),
            Key::Text(s) => s.parse().ok(),
        }
        .filter(|i| *i > 0)
    }
}

/// A time: RFC 3339 text, or a number of seconds since the Unix epoch.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Time {
    Text(String),
    Seconds(f64),
}

impl Time {
    fn parse(&self, field: &str) -> Result<Timestamp, String> {
        match self {
            Time::Text(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{field}: {s:?} is not an RFC 3339 time ({e})")),
            Time::Seconds(x) => {
                let micros = (x * 1e6).round();
                if !micros.is_finite() || micros.abs() > 8.0e18 {
                    return Err(format!("{field}: {x} is out of range"));
                }
                DateTime::from_timestamp_micros(micros as i64)
                    .ok_or_else(|| format!("{field}: {x} is out of range"))
            }
        }
    }
}

fn time(t: &Option<Time>, field: &str) -> Result<Option<Timestamp>, String> {
    t.as_ref().map(|t| t.parse(field)).transpose()
}

fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One line of the file.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    User(UserLine),
    Room(RoomLine),
    Member(MemberLine),
    Message(MessageLine),
    Read(ReadLine),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLine {
    pub id: Key,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub photo: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_admin: Option<bool>,
    #[serde(default)]
    pub created_at: Option<Time>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomLine {
    pub id: Key,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub project_id: Option<i64>,
    #[serde(default)]
    pub has_business: Option<bool>,
    #[serde(default)]
    pub created_by: Option<Key>,
    #[serde(default)]
    pub created_at: Option<Time>,
    #[serde(default)]
    pub members: Option<Vec<Key>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberLine {
    pub room: Key,
    pub user: Key,
    #[serde(default)]
    pub joined_at: Option<Time>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageLine {
    pub id: Key,
    pub room: Key,
    pub author: Key,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub reply_to: Option<Key>,
    pub created_at: Time,
    #[serde(default)]
    pub edited_at: Option<Time>,
    #[serde(default)]
    pub deleted_at: Option<Time>,
    #[serde(default)]
    pub attachments: Option<Vec<AttachmentLine>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentLine {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadLine {
    pub room: Key,
    pub user: Key,
    pub message: Key,
}

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The file, or `None` for standard input.
    pub file: Option<PathBuf>,
    pub database_url: String,
    pub data_dir: PathBuf,
    /// The name the keys are kept under (two legacy systems may share keys).
    pub source: String,
    pub map: Option<PathBuf>,
    pub quiet: bool,
    pub batch: usize,
    pub max_attachment_bytes: u64,
}

/// Records by type: imported now, found already there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub imported: [u64; 5],
    pub existing: [u64; 5],
    /// Lines refused (not valid, or not importable).
    pub refused: u64,
}

const NAMES: [&str; 5] = ["users", "rooms", "members", "messages", "reads"];

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in NAMES.iter().enumerate() {
            writeln!(
                f,
                "{name}: {} imported, {} already there",
                self.imported[i], self.existing[i]
            )?;
        }
        write!(f, "refused lines: {}", self.refused)
    }
}

enum Batch {
    Users(Vec<(u64, UserRecord)>),
    Rooms(Vec<(u64, RoomRecord)>),
    Members(Vec<(u64, MemberRecord)>),
    Messages(Vec<(u64, MessageRecord)>),
    Reads(Vec<(u64, ReadRecord)>),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Users(v) => v.len(),
            Batch::Rooms(v) => v.len(),
            Batch::Members(v) => v.len(),
            Batch::Messages(v) => v.len(),
            Batch::Reads(v) => v.len(),
        }
    }

    fn slot(&self) -> usize {
        match self {
            Batch::Users(_) => 0,
            Batch::Rooms(_) => 1,
            Batch::Members(_) => 2,
            Batch::Messages(_) => 3,
            Batch::Reads(_) => 4,
        }
    }
}

/// A record, converted from its line.
enum Record {
    User(UserRecord),
    Room(RoomRecord),
    Member(MemberRecord),
    Message(MessageRecord, Vec<AttachmentLine>),
    Read(ReadRecord),
}

fn convert(line: Line) -> Result<Record, String> {
    Ok(match line {
        Line::User(u) => Record::User(UserRecord {
            key: u.id.text(),
            wanted_id: u.id.wanted_id(),
            created_at: time(&u.created_at, "created_at")?,
            profile: UserProfile {
                id: None,
                username: u.username,
                external_id: u.external_id,
                email: u.email,
                first_name: u.first_name,
                last_name: u.last_name,
                display_name: u.display_name,
                photo: u.photo,
                color: u.color,
                role: u.role,
                is_admin: u.is_admin,
            },
        }),
        Line::Room(r) => {
            let shape = match (r.kind.as_deref().unwrap_or("group"), r.project_id) {
                ("group", None) => RoomShape::Group,
                ("direct", None) => RoomShape::Direct,
                ("project", Some(project_id)) => RoomShape::Project { project_id },
                ("project", None) => return Err("a project room needs project_id".into()),
                ("group" | "direct", Some(_)) => {
                    return Err("project_id is only for kind \"project\"".into())
                }
                (other, _) => {
                    return Err(format!(
                        "kind {other:?} is not one of \"direct\", \"group\", \"project\""
                    ))
                }
            };
            Record::Room(RoomRecord {
                key: r.id.text(),
                wanted_id: r.id.wanted_id(),
                shape,
                title: r.title.unwrap_or_default(),
                has_business: r.has_business.unwrap_or(false),
                created_by: r.created_by.map(|k| k.text()),
                created_at: time(&r.created_at, "created_at")?,
                members: r
                    .members
                    .unwrap_or_default()
                    .iter()
                    .map(Key::text)
                    .collect(),
            })
        }
        Line::Member(m) => Record::Member(MemberRecord {
            room: m.room.text(),
            user: m.user.text(),
            joined_at: time(&m.joined_at, "joined_at")?,
        }),
        Line::Message(m) => {
            let kind = match m.kind.as_deref() {
                None => MessageKind::Text,
                Some(k) => MessageKind::parse(k).ok_or_else(|| {
                    format!("kind {k:?} is not one of \"text\", \"img\", \"file\"")
                })?,
            };
            let attachments = m.attachments.unwrap_or_default();
            for (i, a) in attachments.iter().enumerate() {
                if a.path.is_some() == a.url.is_some() {
                    return Err(format!(
                        "attachments[{i}]: give exactly one of \"path\" and \"url\""
                    ));
                }
            }
            Record::Message(
                MessageRecord {
                    key: m.id.text(),
                    wanted_id: m.id.wanted_id(),
                    room: m.room.text(),
                    author: m.author.text(),
                    kind,
                    text: m.text.unwrap_or_default(),
                    reply_to: m.reply_to.map(|k| k.text()),
                    created_at: m.created_at.parse("created_at")?,
                    edited_at: time(&m.edited_at, "edited_at")?,
                    deleted_at: time(&m.deleted_at, "deleted_at")?,
                    attachments: Vec::new(),
                },
                attachments,
            )
        }
        Line::Read(r) => Record::Read(ReadRecord {
            room: r.room.text(),
            user: r.user.text(),
            message: r.message.text(),
        }),
    })
}

/// What the run prints about itself: a progress bar, and refused lines.
struct Report {
    bar: indicatif::ProgressBar,
}

impl Report {
    fn new(total: Option<u64>, quiet: bool) -> Report {
        use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
        let shown = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {pos}/{len} lines, {per_sec}, ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {pos} lines, {per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_draw_target(if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Report { bar }
    }

    fn refused(&self, line: u64, why: &str) {
        self.bar.suspend(|| eprintln!("line {line}: {why}"));
    }
}

fn count_lines(path: &Path) -> Option<u64> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = std::io::Read::read(&mut f, &mut buf).ok()?;
        if got == 0 {
            return Some(n);
        }
        n += buf[..got].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

/// Read one line of at most [`MAX_LINE_BYTES`]; `Ok(None)` at the end, `Err` (with
/// the rest of the line skipped) for a longer one.
fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let (done, used) = {
            let avail = r.fill_buf()?;
            if avail.is_empty() {
                return Ok(if buf.is_empty() && !too_long {
                    None
                } else {
                    Some(!too_long)
                });
            }
            match avail.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    if !too_long && buf.len() + i <= MAX_LINE_BYTES {
                        buf.extend_from_slice(&avail[..i]);
                    } else {
                        too_long = true;
                    }
                    (true, i + 1)
                }
                None => {
                    if !too_long && buf.len() + avail.len() <= MAX_LINE_BYTES {
                        buf.extend_from_slice(avail);
                    } else {
                        too_long = true;
                        buf.clear();
                    }
                    (false, avail.len())
                }
            }
        };
        r.consume(used);
        if done {
            return Ok(Some(!too_long));
        }
    }
}

/// Run an import; the counts, or why it stopped. Lines refused are counted, not
/// errors: the caller turns them into the exit code.
pub async fn import(opts: ImportOptions) -> Result<Counts, String> {
    let total = opts.file.as_deref().and_then(count_lines);
    let mut input: Box<dyn BufRead + Send> = match &opts.file {
        Some(path) => Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
    };
    let base_dir = match &opts.file {
        Some(p) => p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        None => PathBuf::from("."),
    };
    let mut importer = chat_store::import::open_importer(&opts.database_url, &opts.source)
        .await
        .map_err(|e| e.to_string())?;
    let files = crate::file_store(&opts.database_url, &opts.data_dir)
        .await
        .map_err(|e| e.to_string())?;
    let fetch = Fetcher::new(opts.max_attachment_bytes, base_dir);
    let report = Report::new(total, opts.quiet);
    let mut counts = Counts::default();
    let batch_size = opts.batch.max(1);
    let mut batch: Option<Batch> = None;
    let mut buf = Vec::new();
    let mut lineno = 0u64;
    loop {
        let read = tokio::task::block_in_place(|| read_line(&mut *input, &mut buf))
            .map_err(|e| format!("reading the input: {e}"))?;
        let Some(fits) = read else { break };
        lineno += 1;
        report.bar.inc(1);
        if !fits {
            report.refused(lineno, &format!("longer than {MAX_LINE_BYTES} bytes"));
            counts.refused += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        if text.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str::<Line>(&text)
            .map_err(|e| e.to_string())
            .and_then(convert);
        let record = match record {
            Ok(r) => r,
            Err(why) => {
                report.refused(lineno, &why);
                counts.refused += 1;
                continue;
            }
        };
        let record = match record {
            Record::Message(mut m, atts) if !atts.is_empty() => {
                // Fetched only for a message not imported yet: a second run of the
                // file costs no download.
                let done = importer
                    .lookup(KeyKind::Message, vec![m.key.clone()])
                    .await
                    .map_err(|e| e.to_string())?;
                if done.is_empty() {
                    match fetch.all(&files, &atts).await {
                        Ok(blobs) => m.attachments = blobs,
                        Err(why) => {
                            report.refused(lineno, &why);
                            counts.refused += 1;
                            continue;
                        }
                    }
                }
                Record::Message(m, Vec::new())
            }
            other => other,
        };
        let same = matches!(
            (&batch, &record),
            (Some(Batch::Users(_)), Record::User(_))
                | (Some(Batch::Rooms(_)), Record::Room(_))
                | (Some(Batch::Members(_)), Record::Member(_))
                | (Some(Batch::Messages(_)), Record::Message(..))
                | (Some(Batch::Reads(_)), Record::Read(_))
        );
        if !same || batch.as_ref().is_some_and(|b| b.len() >= batch_size) {
            if let Some(b) = batch.take() {
                flush(&mut importer, b, &mut counts, &report).await?;
            }
        }
        let b = batch.get_or_insert_with(|| match &record {
            Record::User(_) => Batch::Users(Vec::new()),
            Record::Room(_) => Batch::Rooms(Vec::new()),
            Record::Member(_) => Batch::Members(Vec::new()),
            Record::Message(..) => Batch::Messages(Vec::new()),
            Record::Read(_) => Batch::Reads(Vec::new()),
        });
        match (b, record) {
            (Batch::Users(v), Record::User(r)) => v.push((lineno, r)),
            (Batch::Rooms(v), Record::Room(r)) => v.push((lineno, r)),
            (Batch::Members(v), Record::Member(r)) => v.push((lineno, r)),
            (Batch::Messages(v), Record::Message(r, _)) => v.push((lineno, r)),
            (Batch::Reads(v), Record::Read(r)) => v.push((lineno, r)),
            _ => return Err("internal error: a record in the wrong batch".into()),
        }
    }
    if let Some(b) = batch.take() {
        flush(&mut importer, b, &mut counts, &report).await?;
    }
    report.bar.finish_and_clear();
    if let Some(path) = &opts.map {
        write_map(&importer, path).await?;
    }
    Ok(counts)
}

async fn flush(
    importer: &mut Importer,
    batch: Batch,
    counts: &mut Counts,
    report: &Report,
) -> Result<(), String> {
    fn split<R>(v: Vec<(u64, R)>) -> (Vec<u64>, Vec<R>) {
        v.into_iter().unzip()
    }
    let slot = batch.slot();
    let (lines, outcomes) = match batch {
        Batch::Users(v) => {
            let (l, r) = split(v);
            (l, importer.users(r).await)
        }
        Batch::Rooms(v) => {
            let (l, r) = split(v);
            (l, importer.rooms(r).await)
        }
        Batch::Members(v) => {
            let (l, r) = split(v);
            (l, importer.members(r).await)
        }
        Batch::Messages(v) => {
            let (l, r) = split(v);
            (l, importer.messages(r).await)
        }
        Batch::Reads(v) => {
            let (l, r) = split(v);
            (l, importer.reads(r).await)
        }
    };
    let outcomes = outcomes.map_err(|e| {
        format!(
            "the database refused lines {}–{}: {e} (what was imported before stays; run again to resume)",
            lines.first().copied().unwrap_or(0),
            lines.last().copied().unwrap_or(0)
        )
    })?;
    for (line, outcome) in lines.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Imported(_) => counts.imported[slot] += 1,
            Outcome::Existing(_) => counts.existing[slot] += 1,
            Outcome::Refused(why) => {
                report.refused(line, &why);
                counts.refused += 1;
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct MapLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    key: &'a str,
    id: i64,
}

/// Every key of the source with the id it has here, one JSON object a line.
async fn write_map(importer: &Importer, path: &Path) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("writing {}: {e}", path.display());
    let file = std::fs::File::create(path).map_err(|e| fail(&e))?;
    let mut out = std::io::BufWriter::new(file);
    for kind in [KeyKind::User, KeyKind::Room, KeyKind::Message] {
        let mut after = None;
        loop {
            let page = importer
                .mapping(kind, after.clone(), EXPORT_PAGE)
                .await
                .map_err(|e| e.to_string())?;
            for (key, id) in &page {
                let line = MapLine {
                    kind: kind.as_str(),
                    key,
                    id: *id,
                };
                serde_json::to_writer(&mut out, &line).map_err(|e| fail(&e))?;
                out.write_all(b"\n").map_err(|e| fail(&e))?;
            }
            match page.last() {
                Some((k, _)) if page.len() as i64 == EXPORT_PAGE => after = Some(k.clone()),
                _ => break,
            }
        }
    }
    out.flush().map_err(|e| fail(&e))
}

/// Brings attachment bytes into the gateway's storage: a path is read (relative to
/// the input file's folder), a URL fetched (http and https only), both at most
/// `limit` bytes.
struct Fetcher {
    limit: u64,
    base: PathBuf,
    agent: ureq::Agent,
}

impl Fetcher {
    fn new(limit: u64, base: PathBuf) -> Fetcher {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(FETCH_TIMEOUT))
            .max_redirects(5)
            .http_status_as_error(true)
            .build()
            .into();
        Fetcher { limit, base, agent }
    }

    async fn all(
        &self,
        files: &FileStore,
        atts: &[AttachmentLine],
    ) -> Result<Vec<BlobRef>, String> {
        let mut out = Vec::with_capacity(atts.len());
        for (i, a) in atts.iter().enumerate() {
            let (bytes, name, sent_type) = self
                .one(a)
                .await
                .map_err(|e| format!("attachments[{i}]: {e}"))?;
            let name = a
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(name);
            let content_type = a.content_type.clone().or(sent_type).unwrap_or_else(|| {
                mime_guess::from_path(&name)
                    .first_or_octet_stream()
                    .to_string()
            });
            let blob_key = files
                .put(&bytes)
                .await
                .map_err(|e| format!("attachments[{i}]: storing the bytes: {e}"))?;
            out.push(BlobRef {
                name,
                content_type,
                size: bytes.len() as i64,
                blob_key,
            });
        }
        Ok(out)
    }

    /// The bytes, the name they came with, and the content type a server sent.
    async fn one(&self, a: &AttachmentLine) -> Result<(Vec<u8>, String, Option<String>), String> {
        if let Some(path) = &a.path {
            let path = self.base.join(path);
            let size = tokio::fs::metadata(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            if size > self.limit {
                return Err(format!(
                    "{} is {size} bytes, over the limit of {}",
                    path.display(),
                    self.limit
                ));
            }
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into());
            return Ok((bytes, name, None));
        }
        let raw = a.url.as_deref().unwrap_or_default();
        let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{raw:?}: only http and https URLs are fetched"));
        }
        let name = url
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_owned))
            .map(|s| {
                percent_encoding::percent_decode_str(&s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "file".into());
        let agent = self.agent.clone();
        let limit = self.limit;
        let fetched =
            tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Option<String>), String> {
                let mut resp = agent.get(url.as_str()).call().map_err(|e| e.to_string())?;
                let sent_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let bytes = resp
                    .body_mut()
                    .with_config()
                    .limit(limit)
                    .read_to_vec()
                    .map_err(|e| match e {
                        ureq::Error::BodyExceedsLimit(_) => {
                            format!("over the limit of {limit} bytes")
                        }
                        e => e.to_string(),
                    })?;
                Ok((bytes, sent_type))
            })
            .await
            .map_err(|e| format!("the fetch failed: {e}"))?
            .map_err(|e| format!("{raw}: {e}"))?;
        Ok((fetched.0, name, fetched.1))
    }
}

/// How an export runs.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub database_url: String,
    pub data_dir: PathBuf,
    /// The file, or `None` for standard output.
    pub output: Option<PathBuf>,
    /// Where attachment bytes are written (and named in `path`); `None`: attachments
    /// are left out.
    pub files_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct RoomOut<'a> {
    #[serde(rename = "type")]
    kind_tag: &'static str,
    id: i64,
    kind: &'static str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<i64>,
    has_business: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<i64>,
    created_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    members: Vec<i64>,
}

/// What an export wrote.
#[derive(Clone, Debug, Default)]
pub struct Exported {
    pub counts: [u64; 5],
    /// Attachments left out for want of `--files-dir`.
    pub attachments_left_out: u64,
}

/// Write the whole database in the import format: users, rooms, memberships,
/// messages (id order), read marks.
pub async fn export(opts: ExportOptions) -> Result<Exported, String> {
    let ex = chat_store::import::open_exporter(&opts.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let files = crate::file_store(&opts.database_url, &opts.data_dir)
        .await
        .map_err(|e| e.to_string())?;
    let files_dir = match &opts.files_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            Some(std::fs::canonicalize(d).map_err(|e| format!("{}: {e}", d.display()))?)
        }
        None => None,
    };
    let sink: Box<dyn Write + Send> = match &opts.output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Box::new(std::io::stdout()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let mut done = Exported::default();
    write_all(&ex, &files, files_dir.as_deref(), &mut out, &mut done).await?;
    out.flush()
        .map_err(|e| format!("writing the export: {e}"))?;
    Ok(done)
}

fn put_line(out: &mut dyn Write, v: &serde_json::Value) -> Result<(), String> {
    serde_json::to_writer(&mut *out, v)
        .and_then(|()| out.write_all(b"\n").map_err(serde_json::Error::io))
        .map_err(|e| format!("writing the export: {e}"))
}

async fn write_all(
    ex: &Exporter,
    files: &FileStore,
    files_dir: Option<&Path>,
    out: &mut dyn Write,
    done: &mut Exported,
) -> Result<(), String> {
    let e = |e: chat_core::StoreError| e.to_string();
    let mut after = 0;
    loop {
        let page = ex.users_after(after, EXPORT_PAGE).await.map_err(e)?;
        for u in &page {
            let mut v = serde_json::json!({
                "type": "user", "id": u.id.0, "username": u.username, "email": u.email,
                "first_name": u.first_name, "last_name": u.last_name,
                "display_name": u.display_name, "photo": u.photo, "color": u.color,
                "role": u.role, "is_admin": u.is_admin, "created_at": rfc3339(u.created_at),
            });
            if let Some(ext) = &u.external_id {
                v["external_id"] = ext.clone().into();
            }
            put_line(out, &v)?;
            done.counts[0] += 1;
        }
        match page.last() {
            Some(u) if page.len() as i64 == EXPORT_PAGE => after = u.id.0,
            _ => break,
        }
    }
    let mut marks = Vec::new();
    after = 0;
    loop {
        let page = ex.rooms_after(after, EXPORT_PAGE).await.map_err(e)?;
        for (room, members) in &page {
            let (kind, project_id, inline) = match room.kind {
                chat_core::RoomKind::Direct { low, high } => ("direct", None, vec![low.0, high.0]),
                chat_core::RoomKind::Group => ("group", None, Vec::new()),
                chat_core::RoomKind::Project { project_id } => {
                    ("project", Some(project_id), Vec::new())
                }
            };
            let line = RoomOut {
                kind_tag: "room",
                id: room.id.0,
                kind,
                title: &room.title,
                project_id,
                has_business: room.has_business,
                created_by: room.created_by.map(|u| u.0),
                created_at: rfc3339(room.created_at),
                members: inline,
            };
            let v = serde_json::to_value(&line).map_err(|e| e.to_string())?;
            put_line(out, &v)?;
            done.counts[1] += 1;
            for m in members {
                put_line(
                    out,
                    &serde_json::json!({
                        "type": "member", "room": room.id.0, "user": m.user_id.0,
                        "joined_at": rfc3339(m.joined_at),
                    }),
                )?;
                done.counts[2] += 1;
                if let Some(read) = m.last_read {
                    marks.push((room.id.0, m.user_id.0, read.0));
                }
            }
        }
        match page.last() {
            Some((r, _)) if page.len() as i64 == EXPORT_PAGE => after = r.id.0,
            _ => break,
        }
    }
    after = 0;
    loop {
        let page = ex.messages_after(after, EXPORT_PAGE).await.map_err(e)?;
        for m in &page {
            let mut v = serde_json::json!({
                "type": "message", "id": m.id.0, "room": m.room_id.0, "author": m.author_id.0,
                "kind": m.kind.as_str(), "text": m.text, "created_at": rfc3339(m.created_at),
            });
            if let Some(r) = m.reply_to {
                v["reply_to"] = r.0.into();
            }
            if let Some(t) = m.edited_at {
                v["edited_at"] = rfc3339(t).into();
            }
            if let Some(t) = m.deleted_at {
                v["deleted_at"] = rfc3339(t).into();
            }
            if !m.attachments.is_empty() {
                match files_dir {
                    None => done.attachments_left_out += m.attachments.len() as u64,
                    Some(dir) => {
                        let mut list = Vec::new();
                        for a in &m.attachments {
                            let path = dir.join(&a.blob_key);
                            if !path.exists() {
                                let bytes = files
                                    .get(&a.blob_key)
                                    .await
                                    .map_err(|e| format!("reading attachment {}: {e}", a.id))?
                                    .ok_or_else(|| {
                                        format!("the bytes of attachment {} are missing", a.id)
                                    })?;
                                std::fs::write(&path, bytes)
                                    .map_err(|e| format!("{}: {e}", path.display()))?;
                            }
                            list.push(serde_json::json!({
                                "path": path.to_string_lossy(), "name": a.name,
                                "content_type": a.content_type,
                            }));
                        }
                        v["attachments"] = list.into();
                    }
                }
            }
            put_line(out, &v)?;
            done.counts[3] += 1;
        }
        match page.last() {
            Some(m) if page.len() as i64 == EXPORT_PAGE => after = m.id.0,
            _ => break,
        }
    }
    for (room, user, message) in marks {
        put_line(
            out,
            &serde_json::json!({"type": "read", "room": room, "user": user, "message": message}),
        )?;
        done.counts[4] += 1;
    }
    Ok(())
}
