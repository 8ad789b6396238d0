//! The cross-dialect matrix: for every ordered pair of dialects (sender, receiver),
//! which events sent through the first arrive through the second — measured on a real
//! gateway with real clients, and compared with the table in the README, so a dialect
//! change that alters what crosses fails here until the table says so too.
//!
//! # Fixture: where each pair meets
//!
//! socketio-pubsub only knows the direct conversation of two users, and a pair of the
//! same dialect needs two users of it, so the clients cannot all share one room:
//!
//! * Ten users: a *primary* per dialect (`ma` 1, `tc` 2, `ar` 3, `sr` 4, `sp` 5) and a
//!   *twin* per dialect (`ma2` 11 … `sp2` 15), the receiver when sender and receiver
//!   speak the same dialect.
//! * The group room `G` holds every primary and twin except the two socketio-pubsub
//!   users. Pairs of the four room-capable dialects meet there.
//! * The direct rooms `ma–sp`, `tc–sp`, `ar–sp`, `sr–sp` (each primary with the
//!   socketio-pubsub primary) are where a pair with socketio-pubsub on one side meets,
//!   and `sp–sp2` is where socketio-pubsub meets itself.
//! * One connection per user and dialect, except action-request, whose connection shows
//!   only the room it joined: `ar` has one connection joined to `G` and one to `ar–sp`.
//!
//! # A probe
//!
//! For each pair and each thing the sender's dialect can do (see [`can_send`]), the
//! sender does it in the pair's room, then posts a *sentinel* message there. Pushes
//! reach a connection in the order they were published, and the sentinel is published
//! after the probe's effect, so everything the probe caused at the receiver has arrived
//! once the sentinel has: absence is decided without sleeping. (Were the sentinel itself
//! not to arrive, the window closes after [`WINDOW`].) The receiver's frames are decoded
//! into dialect-neutral facts ([`Seen`]) and the cell gets the event when the fact is
//! there: the message with its id, text, author and files; the edit with its new text;
//! the deletion; the read mark covering the message; typing; the sender's user going
//! offline and then online. A fact that arrives wrong (another text or author, an
//! unexpected error, a message twice) is a failure of its own, reported after the
//! table.
//!
//! Presence is one probe per sender: its connections close, then open again (the user
//! goes offline, then online), then the sentinels follow.
//!
//! Runs on SQLite and PostgreSQL; both must give the README's table.

mod cluster_support;
mod matrix_support;

use chat_core::{RoomKind, UserId};
use chat_testkit::{dual_backend_test, http_request, TestGateway};
use matrix_support::{Dialect, Directory, File, Person, Room, Seen, World, WINDOW};
use socketio_common::node::NodeSio;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;
use tokio::time::Instant;

/// An event that can cross, in the order the table lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// A text message, with the same text and author.
    Message,
    /// A message's attachments, as the receiver's own attachment form.
    Files,
    Edit,
    Delete,
    Read,
    Typing,
    Presence,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Message,
        Kind::Files,
        Kind::Edit,
        Kind::Delete,
        Kind::Read,
        Kind::Typing,
        Kind::Presence,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Files => "files",
            Kind::Edit => "edit",
            Kind::Delete => "delete",
            Kind::Read => "read",
            Kind::Typing => "typing",
            Kind::Presence => "presence",
        }
    }

    fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// What each dialect has a request for (its spec's client events). Everyone can
/// come online and go offline: that is opening and closing a connection.
fn can_send(d: Dialect, k: Kind) -> bool {
    use Dialect::*;
    match k {
        Kind::Message | Kind::Presence => true,
        Kind::Files => matches!(d, MethodArgs | SocketioRooms | SocketioPubsub),
        Kind::Edit => d == ActionRequest,
        Kind::Delete => matches!(d, TypeContent | ActionRequest),
        Kind::Read => matches!(d, MethodArgs | TypeContent | SocketioPubsub),
        Kind::Typing => d == TypeContent,
    }
}

type Matrix = BTreeMap<(Dialect, Dialect), BTreeSet<Kind>>;

struct Fixture {
    w: World,
    group: Room,
    /// The direct room of each dialect's primary with socketio-pubsub's (for
    /// socketio-pubsub itself: with its twin).
    direct: BTreeMap<Dialect, Room>,
    primary: BTreeMap<Dialect, Person>,
    twin: BTreeMap<Dialect, Person>,
    matrix: Matrix,
    problems: Vec<String>,
    seq: u64,
}

const FILE_BYTES: &[u8] = b"the same bytes, whoever downloads them\n";

impl Fixture {
    async fn new(gw: TestGateway, node: NodeSio, spread: &[std::net::SocketAddr]) -> Fixture {
        let people = |base: i64, suffix: &str| -> BTreeMap<Dialect, Person> {
            let short = ["ma", "tc", "ar", "sr", "sp"];
            Dialect::ALL
                .into_iter()
                .zip(short)
                .enumerate()
                .map(|(i, (d, s))| {
                    (
                        d,
                        Person {
                            id: base + i as i64,
                            name: format!("{s}{suffix}"),
                        },
                    )
                })
                .collect()
        };
        let primary = people(1, "");
        let twin = people(11, "2");
        let mut dir = Directory::default();
        for p in primary.values().chain(twin.values()) {
            gw.create_user(p.id, &p.name).await;
            dir.people.insert(p.name.clone(), p.id);
        }
        let sp = primary[&Dialect::SocketioPubsub].clone();
        let members: Vec<i64> = Dialect::ALL
            .into_iter()
            .filter(|d| *d != Dialect::SocketioPubsub)
            .flat_map(|d| [primary[&d].id, twin[&d].id])
            .collect();
        let group = Room {
            id: gw.create_room(RoomKind::Group, &members, false).await.0,
            direct: None,
        };
        let mut direct = BTreeMap::new();
        for d in Dialect::ALL {
            let other = if d == Dialect::SocketioPubsub {
                twin[&d].clone()
            } else {
                primary[&d].clone()
            };
            let (low, high) = if other.id < sp.id {
                (other, sp.clone())
            } else {
                (sp.clone(), other)
            };
            let kind = RoomKind::direct(UserId(low.id), UserId(high.id)).expect("two users");
            let id = gw.create_room(kind, &[low.id, high.id], false).await.0;
            dir.direct.insert((low.id, high.id), id);
            direct.insert(
                d,
                Room {
                    id,
                    direct: Some((low, high)),
                },
            );
        }

        let mut w = World::new(gw, node, dir);
        w.spread_over(spread.iter().copied());
        for d in Dialect::ALL {
            let p = &primary[&d];
            let t = &twin[&d];
            if d == Dialect::ActionRequest {
                w.add(d, p, Some(group.id)).await;
                w.add(d, p, Some(direct[&d].id)).await;
                w.add(d, t, Some(group.id)).await;
            } else {
                w.add(d, p, None).await;
                w.add(d, t, None).await;
            }
        }
        Fixture {
            w,
            group,
            direct,
            primary,
            twin,
            matrix: Matrix::new(),
            problems: Vec::new(),
            seq: 0,
        }
    }

    /// The client of `person` (speaking `d`) that shows `room`.
    fn client(&self, d: Dialect, person: &Person, room: &Room) -> usize {
        self.w
            .clients
            .iter()
            .position(|c| {
                c.dialect == d && c.me.id == person.id && c.joins.is_none_or(|j| j == room.id)
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {} client of {} in room {}",
                    d.name(),
                    person.name,
                    room.id
                )
            })
    }

    /// Where the pair meets: the room, the sender's client and the receiver's client.
    fn seat(&self, s: Dialect, r: Dialect) -> (Room, usize, usize) {
        let sp = Dialect::SocketioPubsub;
        let room = if s == sp || r == sp {
            let other = if s == sp { r } else { s };
            self.direct[&other].clone()
        } else {
            self.group.clone()
        };
        let receiver = if s == r {
            &self.twin[&r]
        } else {
            &self.primary[&r]
        };
        (
            room.clone(),
            self.client(s, &self.primary[&s], &room),
            self.client(r, receiver, &room),
        )
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn problem(&mut self, s: Dialect, r: Dialect, what: String) {
        self.problems
            .push(format!("{} → {}: {what}", s.name(), r.name()));
    }

    fn mark(&mut self, s: Dialect, r: Dialect, k: Kind) {
        self.matrix.entry((s, r)).or_default().insert(k);
    }

    /// The sender posts a sentinel in `room`; everything client `rc` receives before it
    /// arrives (unexpected errors are reported).
    async fn close_window(
        &mut self,
        s: Dialect,
        r: Dialect,
        sc: usize,
        rc: usize,
        room: &Room,
    ) -> Vec<Seen> {
        let sentinel = format!("sentinel {}", self.next());
        self.w.post(sc, room, &sentinel).await;
        let deadline = Instant::now() + WINDOW;
        let mut seen = Vec::new();
        loop {
            let Some((_frame, facts)) = self.w.next_seen(rc, deadline).await else {
                eprintln!(
                    "matrix: {} → {}: the sentinel did not arrive within {WINDOW:?}",
                    s.name(),
                    r.name()
                );
                return seen;
            };
            for f in facts {
                match f {
                    Seen::Message {
                        ref text, room: at, ..
                    } if *text == sentinel && at.is_none_or(|at| at == room.id) => {
                        return seen;
                    }
                    Seen::Error(e) => self.problem(s, r, format!("unexpected error frame {e}")),
                    f => seen.push(f),
                }
            }
        }
    }

    /// The one message `id` among `seen`, reporting duplicates.
    fn the_message(&mut self, s: Dialect, r: Dialect, seen: &[Seen], id: i64) -> Option<Seen> {
        let hits: Vec<&Seen> = seen
            .iter()
            .filter(|f| matches!(f, Seen::Message { id: i, .. } if *i == id))
            .collect();
        if hits.len() > 1 {
            self.problem(s, r, format!("message {id} arrived {} times", hits.len()));
        }
        hits.first().map(|f| (*f).clone())
    }

    async fn probe_message(&mut self, s: Dialect, r: Dialect) {
        let (room, sc, rc) = self.seat(s, r);
        let text = format!("hello from {} to {} ({})", s.name(), r.name(), self.next());
        let id = self.w.post(sc, &room, &text).await;
        let seen = self.close_window(s, r, sc, rc, &room).await;
        let Some(Seen::Message {
            room: at,
            author,
            text: got,
            files,
            ..
        }) = self.the_message(s, r, &seen, id)
        else {
            return;
        };
        self.mark(s, r, Kind::Message);
        let sender = self.primary[&s].id;
        if got != text || author != sender || at.is_some_and(|at| at != room.id) {
            self.problem(
                s,
                r,
                format!("message {id} arrived as ({got:?} by {author} in {at:?}), sent as ({text:?} by {sender} in {})", room.id),
            );
        }
        if files.as_ref().is_some_and(|f| !f.is_empty()) {
            self.problem(
                s,
                r,
                format!("a message without files arrived with {files:?}"),
            );
        }
    }

    async fn probe_files(&mut self, s: Dialect, r: Dialect) {
        let (room, sc, rc) = self.seat(s, r);
        let text = format!("a file from {} to {}", s.name(), r.name());
        let name = format!("note-{}.txt", self.next());
        let file = File {
            name: &name,
            bytes: FILE_BYTES,
        };
        let Some(sent) = self.w.post_file(sc, &room, &text, &file).await else {
            panic!("{} cannot send files", s.name());
        };
        // The URLs the sender was given serve the bytes (only the gateway's own).
        for url in sent.files.iter().filter(|u| u.contains("/files/")) {
            let got = http_request("GET", url, &[], Vec::new()).await;
            assert_eq!((got.status, &got.body[..]), (200, FILE_BYTES), "{url}");
        }
        let seen = self.close_window(s, r, sc, rc, &room).await;
        let Some(Seen::Message {
            text: got, files, ..
        }) = self.the_message(s, r, &seen, sent.id)
        else {
            return;
        };
        match files {
            Some(f) if f == sent.files => {
                self.mark(s, r, Kind::Files);
                if got != sent.text {
                    self.problem(
                        s,
                        r,
                        format!("text {got:?} beside the files, sent {:?}", sent.text),
                    );
                }
            }
            Some(f) if !f.is_empty() => {
                self.problem(s, r, format!("files {f:?} arrived, sent {:?}", sent.files));
            }
            _ => {
                if got != sent.plain_text {
                    self.problem(
                        s,
                        r,
                        format!(
                            "without its files the message reads {got:?}, expected {:?}",
                            sent.plain_text
                        ),
                    );
                }
            }
        }
    }

    async fn probe_edit(&mut self, s: Dialect, r: Dialect) {
        let (room, sc, rc) = self.seat(s, r);
        let id = self.w.post(sc, &room, "before the edit").await;
        let text = format!("edited by {} for {}", s.name(), r.name());
        assert!(self.w.edit(sc, id, &text).await);
        let seen = self.close_window(s, r, sc, rc, &room).await;
        let edits: Vec<String> = seen
            .iter()
            .filter_map(|f| match f {
                Seen::Edit { id: i, text } if *i == id => Some(text.clone()),
                _ => None,
            })
            .collect();
        if let Some(got) = edits.first() {
            self.mark(s, r, Kind::Edit);
            if *got != text || edits.len() > 1 {
                self.problem(
                    s,
                    r,
                    format!("edit of {id} arrived as {edits:?}, sent {text:?}"),
                );
            }
        }
    }

    async fn probe_delete(&mut self, s: Dialect, r: Dialect) {
        let (room, sc, rc) = self.seat(s, r);
        let id = self.w.post(sc, &room, "to be deleted").await;
        assert!(self.w.delete(sc, &room, id).await);
        let seen = self.close_window(s, r, sc, rc, &room).await;
        let n = seen
            .iter()
            .filter(|f| matches!(f, Seen::Delete { id: i } if *i == id))
            .count();
        if n > 0 {
            self.mark(s, r, Kind::Delete);
        }
        if n > 1 {
            self.problem(s, r, format!("the deletion of {id} arrived {n} times"));
        }
    }

    /// The receiver posts a message; the sender reads up to it.
    async fn probe_read(&mut self, s: Dialect, r: Dialect) {
        let (room, sc, rc) = self.seat(s, r);
        let id = self.w.post(rc, &room, "please read this").await;
        assert!(self.w.read(sc, &room, id).await);
        let seen = self.close_window(s, r, sc, rc, &room).await;
        let reader = self.primary[&s].id;
        let mut found = false;
        for f in &seen {
            if let Seen::Read {
                reader: who,
                id: at,
                up_to,
            } = f
            {
                let covers = if *up_to { *at >= id } else { *at == id };
                if covers {
                    found = true;
                    if who.is_some_and(|who| who != reader) {
                        self.problem(
                            s,
                            r,
                            format!("read of {id} arrived as read by {who:?}, not {reader}"),
                        );
                    }
                }
            }
        }
        if found {
            self.mark(s, r, Kind::Read);
        }
    }

    async fn probe_typing(&mut self, s: Dialect, r: Dialect) {
        let (room, sc, rc) = self.seat(s, r);
        assert!(self.w.typing(sc, &room).await);
        let seen = self.close_window(s, r, sc, rc, &room).await;
        let typist = self.primary[&s].id;
        let hits: Vec<&Seen> = seen
            .iter()
            .filter(|f| matches!(f, Seen::Typing { user, .. } if *user == typist))
            .collect();
        if let Some(Seen::Typing { room: at, .. }) = hits.first() {
            self.mark(s, r, Kind::Typing);
            if at.is_some_and(|at| at != room.id) {
                self.problem(
                    s,
                    r,
                    format!("typing arrived for room {at:?}, not {}", room.id),
                );
            }
        }
    }

    /// The sender's user goes offline (every connection closes) and online again; a
    /// dialect that can also announce presence (type-content `set_offline`,
    /// `set_online`) then does, and that must arrive as well.
    async fn probe_presence(&mut self, s: Dialect) {
        let user = self.primary[&s].clone();
        let conns: Vec<usize> = (0..self.w.clients.len())
            .filter(|&c| self.w.clients[c].dialect == s && self.w.clients[c].me.id == user.id)
            .collect();
        for &c in &conns {
            self.w.close(c).await;
        }
        let nodes: BTreeSet<usize> = conns.iter().map(|&c| self.w.clients[c].node).collect();
        for node in nodes {
            self.w.wait_connections_on(node, user.id, 0).await;
        }
        // "Offline" is published after the last connection is unregistered (the
        // contacts are looked up first); let it go out before "online" can.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for &c in &conns {
            self.w.connect(c).await;
        }
        let mut expected = vec![false, true];
        if self.w.announce(conns[0], false).await {
            assert!(self.w.announce(conns[0], true).await);
            expected.extend([false, true]);
        }
        for r in Dialect::ALL {
            let (room, sc, rc) = self.seat(s, r);
            let seen = self.close_window(s, r, sc, rc, &room).await;
            let states: Vec<bool> = seen
                .iter()
                .filter_map(|f| match f {
                    Seen::Presence { user: u, online } if *u == user.id => Some(*online),
                    _ => None,
                })
                .collect();
            if states == expected {
                self.mark(s, r, Kind::Presence);
            } else if !states.is_empty() {
                self.problem(
                    s,
                    r,
                    format!(
                        "presence of {} arrived as {states:?} (online?), expected {expected:?}",
                        user.name
                    ),
                );
            }
        }
    }

    async fn run(&mut self) {
        for s in Dialect::ALL {
            for k in Kind::ALL {
                if !can_send(s, k) || k == Kind::Presence {
                    continue;
                }
                for r in Dialect::ALL {
                    match k {
                        Kind::Message => self.probe_message(s, r).await,
                        Kind::Files => self.probe_files(s, r).await,
                        Kind::Edit => self.probe_edit(s, r).await,
                        Kind::Delete => self.probe_delete(s, r).await,
                        Kind::Read => self.probe_read(s, r).await,
                        Kind::Typing => self.probe_typing(s, r).await,
                        Kind::Presence => unreachable!(),
                    }
                }
            }
            self.probe_presence(s).await;
        }
    }
}

// ------------------------------------------------------------------ the README table

const BEGIN: &str = "<!-- cross-dialect-matrix:begin -->";
const END: &str = "<!-- cross-dialect-matrix:end -->";

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The table between the markers: rows are senders, columns receivers, cells the
/// comma-separated events, `—` for none.
fn documented() -> Matrix {
    let text = readme();
    let start = text
        .find(BEGIN)
        .expect("the README has the matrix begin marker")
        + BEGIN.len();
    let end = text[start..]
        .find(END)
        .expect("the README has the matrix end marker")
        + start;
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| {
                c.trim()
                    .trim_matches(|ch| ch == '*' || ch == '`')
                    .to_string()
            })
            .collect()
    };
    let mut rows = text[start..end]
        .lines()
        .filter(|l| l.trim_start().starts_with('|'));
    let header = cells(rows.next().expect("a header row"));
    let columns: Vec<Dialect> = header[1..]
        .iter()
        .map(|h| Dialect::parse(h).unwrap_or_else(|| panic!("unknown dialect {h:?} in the header")))
        .collect();
    let mut m = Matrix::new();
    for line in rows.filter(|l| !l.contains("---")) {
        let row = cells(line);
        let s = Dialect::parse(&row[0]).unwrap_or_else(|| panic!("unknown dialect {:?}", row[0]));
        assert_eq!(row.len(), columns.len() + 1, "row {line:?}");
        for (r, cell) in columns.iter().zip(&row[1..]) {
            let kinds: BTreeSet<Kind> = cell
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty() && *k != "—")
                .map(|k| {
                    Kind::from_name(k).unwrap_or_else(|| panic!("unknown event {k:?} in {line:?}"))
                })
                .collect();
            if !kinds.is_empty() {
                m.insert((s, *r), kinds);
            }
        }
    }
    m
}

/// The table as the README spells it.
fn render(m: &Matrix) -> String {
    let mut out = String::from("| sender ↓ · receiver → |");
    for r in Dialect::ALL {
        let _ = write!(out, " {} |", r.name());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(Dialect::ALL.len()));
    out.push('\n');
    for s in Dialect::ALL {
        let _ = write!(out, "| **{}** |", s.name());
        for r in Dialect::ALL {
            let kinds: Vec<&str> = m
                .get(&(s, r))
                .into_iter()
                .flatten()
                .map(|k| k.name())
                .collect();
            let cell = if kinds.is_empty() {
                "—".to_string()
            } else {
                kinds.join(", ")
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

async fn cross_dialect_matrix(gw: TestGateway) {
    cross_dialect_matrix_over(gw, &[], "one node").await;
}
dual_backend_test!(cross_dialect_matrix);

/// The same matrix with its clients spread round-robin over three nodes of one
/// PostgreSQL (the in-process one and two node processes), so nearly every pair
/// crosses nodes; `--broker` as given.
async fn matrix_over_three_nodes(broker: Option<&cluster_support::RedisServer>) {
    let Some(gw) = TestGateway::start(chat_testkit::Options {
        backend: chat_testkit::Backend::Postgres,
        broker: broker.map(|r| r.url()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let base = format!("http://{}", gw.addr());
    let mut flags = vec!["--public-base-url".to_string(), base];
    if let Some(r) = broker {
        flags.extend(["--broker".to_string(), r.url()]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let b = cluster_support::Node::spawn(gw.database_url(), &flags).await;
    let c = cluster_support::Node::spawn(gw.database_url(), &flags).await;
    let label = if broker.is_some() {
        "three nodes, Redis broker"
    } else {
        "three nodes, PostgreSQL broker"
    };
    cross_dialect_matrix_over(gw, &[b.addr, c.addr], label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_dialect_matrix_over_three_nodes() {
    matrix_over_three_nodes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_dialect_matrix_over_three_nodes_with_redis() {
    let Some(redis) = cluster_support::RedisServer::start().await else {
        return;
    };
    matrix_over_three_nodes(Some(&redis)).await;
}

async fn cross_dialect_matrix_over(gw: TestGateway, spread: &[std::net::SocketAddr], label: &str) {
    let Some(node) = NodeSio::start().await else {
        return;
    };
    let backend = gw.backend;
    let started = Instant::now();
    let mut fx = Fixture::new(gw, node, spread).await;
    fx.run().await;
    eprintln!(
        "matrix on {backend:?} ({label}): measured in {:?}\n{}\nproblems: {:#?}",
        started.elapsed(),
        render(&fx.matrix),
        fx.problems
    );
    let expected = documented();
    let mut diff = String::new();
    for s in Dialect::ALL {
        for r in Dialect::ALL {
            let got = fx.matrix.get(&(s, r)).cloned().unwrap_or_default();
            let want = expected.get(&(s, r)).cloned().unwrap_or_default();
            if got != want {
                let _ = writeln!(
                    diff,
                    "  {} → {}: observed {:?}, README says {:?}",
                    s.name(),
                    r.name(),
                    got,
                    want
                );
            }
        }
    }
    let mut failure = String::new();
    if !diff.is_empty() {
        let _ = write!(
            failure,
            "the cross-dialect matrix changed:\n{diff}\nIf the change is intended, put this table between the markers in README.md:\n\n{}\n",
            render(&fx.matrix)
        );
    }
    if !fx.problems.is_empty() {
        let _ = write!(
            failure,
            "events crossed, but not intact:\n  {}\n",
            fx.problems.join("\n  ")
        );
    }
    assert!(failure.is_empty(), "{label}: {failure}");
    fx.w.node.exit().await;
}

/// The README's table parses and names every dialect once per row and column.
#[test]
fn readme_table_is_well_formed() {
    let m = documented();
    let text = readme();
    let start = text.find(BEGIN).unwrap();
    let table = &text[start..text.find(END).unwrap()];
    for d in Dialect::ALL {
        assert!(
            table.contains(&format!("**{}**", d.name())),
            "row {}",
            d.name()
        );
    }
    assert!(!m.is_empty());
}
