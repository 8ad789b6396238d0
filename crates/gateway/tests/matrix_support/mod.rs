//! The five dialects behind one interface, for the cross-dialect matrix (`matrix.rs`).
//!
//! The matrix asks the same questions of every pair of dialects ("did the message
//! arrive, with the same text, author and files?"), so each client here does two
//! things in its own protocol: *act* (post, edit, delete, read, type, reconnect) and
//! *decode* every frame it receives into a dialect-neutral [`Seen`]. The decoding
//! follows each dialect's spec under `protocol-specs/`, including its documented ways
//! of showing what it has no word for (method-args `messages_updated`, attachment URLs
//! appended to type-content and socketio-rooms texts); a frame the spec does not
//! mention decodes to nothing.
//!
//! The plain WebSocket dialects use the testkit's real [`WsClient`]; the two Socket.IO
//! dialects use the real npm `socket.io-client`, one Node process for all sockets
//! ([`NodeSio`]), with the client's default transports (polling, then the upgrade).

use base64::Engine as _;
/// The five dialects, as the tools name them (`Dialect::ALL`, `name`, `parse`).
pub use chat_client::Dialect;
use chat_testkit::{http_request, TestGateway, WsClient};
use serde_json::{json, Value};
use socketio_common::node::NodeSio;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long a window waits for its closing sentinel before giving up on it.
pub const WINDOW: Duration = Duration::from_secs(5);

/// What a frame meant, whatever dialect it came in.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// A message (or the sender's own echo of it). `files` is `None` when the dialect
    /// has no way to show attachments.
    Message {
        room: Option<i64>,
        id: i64,
        author: i64,
        text: String,
        files: Option<Vec<String>>,
    },
    Edit {
        id: i64,
        text: String,
    },
    Delete {
        id: i64,
    },
    /// `reader` read message `id` (`up_to`: every message up to and including `id`).
    /// method-args does not say who read.
    Read {
        reader: Option<i64>,
        id: i64,
        up_to: bool,
    },
    Typing {
        room: Option<i64>,
        user: i64,
    },
    Presence {
        user: i64,
        online: bool,
    },
    /// An error frame nobody asked for.
    Error(String),
}

/// A user of the fixture.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: i64,
    pub name: String,
}

/// A room of the fixture: a group room, or the direct room of two users (low first).
#[derive(Clone, Debug)]
pub struct Room {
    pub id: i64,
    pub direct: Option<(Person, Person)>,
}

impl Room {
    /// The other member of a direct room.
    pub fn peer_of(&self, me: i64) -> &Person {
        let (a, b) = self.direct.as_ref().expect("a direct room");
        if a.id == me {
            b
        } else {
            a
        }
    }

    /// type-content's name for the room.
    fn tc_chat(&self) -> (&'static str, Value) {
        match &self.direct {
            Some((a, b)) => ("direct", json!(format!("{}_{}", a.id, b.id))),
            None => ("group", json!(self.id)),
        }
    }
}

/// Names to ids, for decoding: socketio-pubsub speaks usernames, type-content names
/// direct rooms by their two users.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub people: BTreeMap<String, i64>,
    /// Direct rooms by (low, high) user id.
    pub direct: BTreeMap<(i64, i64), i64>,
}

impl Directory {
    fn user(&self, name: &str) -> i64 {
        *self
            .people
            .get(name)
            .unwrap_or_else(|| panic!("unknown username {name:?}"))
    }

    fn direct_room(&self, a: i64, b: i64) -> Option<i64> {
        self.direct.get(&(a.min(b), a.max(b))).copied()
    }

    fn tc_room(&self, chat_type: &str, chat_id: &Value) -> Option<i64> {
        match chat_type {
            "direct" => {
                let (a, b) = chat_id.as_str()?.split_once('_')?;
                self.direct_room(a.parse().ok()?, b.parse().ok()?)
            }
            _ => chat_id.as_i64(),
        }
    }
}

enum Conn {
    Ws(Box<WsClient>),
    /// A socket of the Node driver, by id.
    Sio(String),
    Closed,
}

/// One connection of one user in one dialect.
pub struct Client {
    pub dialect: Dialect,
    pub me: Person,
    /// action-request: the room this connection joins (a connection shows one room).
    pub joins: Option<i64>,
    token: String,
    conn: Conn,
    generation: u32,
    /// The node this client connects to (an index into [`World::nodes`]).
    pub node: usize,
}

/// The gateway, the Node driver and every client: what an action needs.
pub struct World {
    pub gw: TestGateway,
    pub node: NodeSio,
    pub clients: Vec<Client>,
    pub dir: Directory,
    /// The gateway nodes clients are spread over, round-robin: the in-process
    /// gateway first, then any node processes of a cluster on its database.
    pub nodes: Vec<std::net::SocketAddr>,
    admin: String,
    seq: u64,
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not an id: {v}"))
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    if field.is_empty() {
                        x.as_str()
                    } else {
                        x[field].as_str()
                    }
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Remove attachment URLs appended as lines after the text (type-content,
/// socketio-rooms); `urls` are the ones to expect.
fn strip_url_lines(text: &str, urls: &[String]) -> String {
    let mut t = text;
    for url in urls.iter().rev() {
        if let Some(rest) = t.strip_suffix(url.as_str()) {
            t = rest.strip_suffix('\n').unwrap_or(rest);
        }
    }
    t.to_string()
}

/// Decode one frame (WebSocket: the JSON document; Socket.IO: the driver's event line).
pub fn decode(dialect: Dialect, f: &Value, dir: &Directory) -> Vec<Seen> {
    match dialect {
        Dialect::MethodArgs => decode_ma(f),
        Dialect::TypeContent => decode_tc(f, dir),
        Dialect::ActionRequest => decode_ar(f),
        Dialect::SocketioRooms => decode_sr(f),
        Dialect::SocketioPubsub => decode_sp(f, dir),
    }
}

fn decode_ma(f: &Value) -> Vec<Seen> {
    let d = &f["data"];
    match f["type"].as_str().unwrap_or_default() {
        "new_message" | "message_created" => {
            let m = &d["message"];
            vec![Seen::Message {
                room: m["chat"].as_i64(),
                id: int(&m["id"]),
                author: int(&m["user"]["pk"]),
                text: m["text"].as_str().unwrap_or_default().to_string(),
                files: Some(strings(&m["attached_files"], "file")),
            }]
        }
        "messages_updated" => d["updates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| {
                let id = int(&u["id"]);
                let fields = &u["fields"];
                if fields["is_deleted"] == true {
                    Some(Seen::Delete { id })
                } else if fields["is_read"] == true {
                    Some(Seen::Read {
                        reader: None,
                        id,
                        up_to: false,
                    })
                } else {
                    fields["text"].as_str().map(|t| Seen::Edit {
                        id,
                        text: t.to_string(),
                    })
                }
            })
            .collect(),
        "error" => vec![Seen::Error(f.to_string())],
        _ => Vec::new(),
    }
}

fn decode_tc(f: &Value, dir: &Directory) -> Vec<Seen> {
    if f.get("error").is_some() {
        return vec![Seen::Error(f.to_string())];
    }
    let c = &f["content"];
    let room = || dir.tc_room(c["chat_type"].as_str().unwrap_or_default(), &c["chat_id"]);
    match f["type"].as_str().unwrap_or_default() {
        "new_message" => {
            let files = strings(&c["files"], "url");
            vec![Seen::Message {
                room: room(),
                id: int(&c["message_id"]),
                author: int(&c["author_id"]),
                text: strip_url_lines(c["text"].as_str().unwrap_or_default(), &files),
                files: Some(files),
            }]
        }
        "delete_message" => vec![Seen::Delete {
            id: int(&c["message_id"]),
        }],
        "message_read" => vec![Seen::Read {
            reader: Some(int(&c["user_id"])),
            id: int(&c["message_id"]),
            up_to: true,
        }],
        "user_typing" => vec![Seen::Typing {
            room: room(),
            user: int(&c["user_id"]),
        }],
        t @ ("set_online" | "set_offline") => vec![Seen::Presence {
            user: int(&c["user_id"]),
            online: t == "set_online",
        }],
        _ => Vec::new(),
    }
}

fn decode_ar(f: &Value) -> Vec<Seen> {
    let d = &f["data"];
    let status = f["response_status"].as_i64().unwrap_or_default();
    if status >= 400 {
        return vec![Seen::Error(f.to_string())];
    }
    match f["action"].as_str().unwrap_or_default() {
        "create_message" => vec![Seen::Message {
            room: d["room"]["pk"].as_i64(),
            id: int(&d["id"]),
            author: int(&d["user"]["id"]),
            text: d["text"].as_str().unwrap_or_default().to_string(),
            files: None,
        }],
        "edit_message" => vec![Seen::Edit {
            id: int(&d["message_id"]),
            text: d["message_text"].as_str().unwrap_or_default().to_string(),
        }],
        "delete_messages" => d["messages_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|id| Seen::Delete { id: int(id) })
            .collect(),
        _ => Vec::new(),
    }
}

fn decode_sr(f: &Value) -> Vec<Seen> {
    let a = &f["args"][0];
    match f["event"].as_str().unwrap_or_default() {
        "new-message" => {
            let msg = a["msg"].as_str().unwrap_or_default();
            // An attachment is an `img`/`file` message whose `msg` is its URL, or, after
            // a text, one URL per line.
            let (text, files) = match a["type"].as_str() {
                Some("img" | "file") => (String::new(), vec![msg.to_string()]),
                _ => {
                    let mut lines: Vec<&str> = msg.split('\n').collect();
                    let mut files = Vec::new();
                    while lines.len() > 1
                        && lines
                            .last()
                            .is_some_and(|l| l.starts_with("http") && l.contains("/files/"))
                    {
                        files.insert(0, lines.pop().unwrap_or_default().to_string());
                    }
                    (lines.join("\n"), files)
                }
            };
            vec![Seen::Message {
                room: Some(int(&a["chat_id"])),
                id: int(&a["id"]),
                author: int(&a["user_id"]),
                text,
                files: Some(files),
            }]
        }
        "error" => vec![Seen::Error(f.to_string())],
        _ => Vec::new(),
    }
}

fn decode_sp(f: &Value, dir: &Directory) -> Vec<Seen> {
    let a = &f["args"][0];
    match f["event"].as_str().unwrap_or_default() {
        "chat" => {
            let c = &a["chat"];
            let author = dir.user(c["sender"].as_str().unwrap_or_default());
            let other = dir.user(c["recipient"].as_str().unwrap_or_default());
            vec![Seen::Message {
                room: dir.direct_room(author, other),
                id: int(&c["id"]),
                author,
                text: c["message"].as_str().unwrap_or_default().to_string(),
                files: Some(strings(&c["media"], "")),
            }]
        }
        "read-chat" => vec![Seen::Read {
            reader: Some(dir.user(a["user"].as_str().unwrap_or_default())),
            id: int(&a["id"]),
            up_to: false,
        }],
        e @ ("user-online" | "user-offline") => vec![Seen::Presence {
            user: dir.user(a["user"].as_str().unwrap_or_default()),
            online: e == "user-online",
        }],
        "error" => vec![Seen::Error(f.to_string())],
        _ => Vec::new(),
    }
}

/// A file to attach: its name and bytes.
pub struct File<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// A message with a file, as sent.
#[derive(Clone, Debug)]
pub struct Posted {
    pub id: i64,
    /// The attachment URLs.
    pub files: Vec<String>,
    /// The text, for a receiver that shows the files apart from it.
    pub text: String,
    /// What a receiver that cannot show files sees as the text.
    pub plain_text: String,
}

impl Posted {
    fn attached(id: i64, text: &str, files: Vec<String>) -> Posted {
        Posted {
            id,
            files,
            text: text.to_string(),
            plain_text: text.to_string(),
        }
    }
}

impl World {
    pub fn new(gw: TestGateway, node: NodeSio, dir: Directory) -> World {
        World {
            nodes: vec![gw.addr()],
            admin: gw.admin_token(9_999, "matrix-admin"),
            gw,
            node,
            clients: Vec::new(),
            dir,
            seq: 0,
        }
    }

    /// Spread the clients added from now on over these nodes as well.
    pub fn spread_over(&mut self, nodes: impl IntoIterator<Item = std::net::SocketAddr>) {
        self.nodes.extend(nodes);
    }

    fn ws_url(&self, c: usize, path: &str) -> String {
        format!("ws://{}{path}", self.nodes[self.clients[c].node])
    }

    fn http_url(&self, c: usize, path: &str) -> String {
        format!("http://{}{path}", self.nodes[self.clients[c].node])
    }

    /// Open connections of `user` on node `node`: the in-process hub for the first,
    /// the admin REST (`GET /api/connections`) for the others.
    pub async fn connections_on(&self, node: usize, user: i64) -> usize {
        if node == 0 {
            return self
                .gw
                .service()
                .hub()
                .connections_of(chat_core::UserId(user));
        }
        let r = http_request(
            "GET",
            &format!("http://{}/api/connections?user={user}", self.nodes[node]),
            &[("authorization".into(), format!("Bearer {}", self.admin))],
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["user"].as_u64().unwrap_or(0) as usize
    }

    /// Wait until `user` has `n` connections on `node`.
    pub async fn wait_connections_on(&self, node: usize, user: i64, n: usize) {
        for _ in 0..1000 {
            if self.connections_on(node, user).await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("user {user} never had {n} connections on node {node}");
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Add a client and connect it; returns its index.
    pub async fn add(&mut self, dialect: Dialect, me: &Person, joins: Option<i64>) -> usize {
        let token = self.gw.token(me.id, &me.name);
        self.clients.push(Client {
            dialect,
            me: me.clone(),
            joins,
            token,
            conn: Conn::Closed,
            generation: 0,
            node: self.clients.len() % self.nodes.len(),
        });
        let c = self.clients.len() - 1;
        self.connect(c).await;
        c
    }

    /// Open client `c`'s connection and sign it in; returns once the gateway has
    /// registered it, so it gets every push from then on.
    pub async fn connect(&mut self, c: usize) {
        let node = self.clients[c].node;
        let before = self.connections_on(node, self.clients[c].me.id).await;
        let (ma_url, tc_url, ar_url) = (
            self.ws_url(c, "/ws/chat/"),
            self.ws_url(c, "/ws/chats/"),
            self.ws_url(c, "/ws/dcrf/chat/"),
        );
        let (sr_url, sp_url) = (self.http_url(c, "/"), self.http_url(c, "/chat"));
        let cl = &mut self.clients[c];
        cl.generation += 1;
        let bearer = format!("Bearer {}", cl.token);
        cl.conn = match cl.dialect {
            Dialect::MethodArgs => {
                let mut ws = WsClient::connect(&ma_url).await;
                ws.send_json(&json!({"method": "auth", "access_token": cl.token}))
                    .await;
                let v = ws.recv_where("type", "authenticated").await;
                assert_eq!(v["data"]["event_response_key"], Value::Null, "{v}");
                Conn::Ws(Box::new(ws))
            }
            Dialect::TypeContent => Conn::Ws(Box::new(
                WsClient::connect_with_headers(&tc_url, &[("authorization", &bearer)])
                    .await
                    .expect("type-content upgrade"),
            )),
            Dialect::ActionRequest => {
                let mut ws = WsClient::connect_with_headers(&ar_url, &[("authorization", &bearer)])
                    .await
                    .expect("action-request upgrade");
                let room = cl.joins.expect("an action-request client joins a room");
                ws.send_json(
                    &json!({"action": "join_room", "room_pk": room, "request_id": "join"}),
                )
                .await;
                let v = ws.recv_where("action", "join_room").await;
                assert_eq!(v["response_status"], 200, "{v}");
                Conn::Ws(Box::new(ws))
            }
            Dialect::SocketioRooms | Dialect::SocketioPubsub => {
                let id = format!("{}-{}-{}", cl.dialect.name(), cl.me.id, cl.generation);
                let (url, mut opts) = if cl.dialect == Dialect::SocketioRooms {
                    (sr_url, json!({}))
                } else {
                    (sp_url, json!({"path": "/ws"}))
                };
                opts["auth"] = json!({ "token": cl.token });
                self.node.connect_ok(&id, &url, opts).await;
                Conn::Sio(id)
            }
        };
        self.wait_connections_on(node, self.clients[c].me.id, before + 1)
            .await;
    }

    /// Close client `c`'s connection.
    pub async fn close(&mut self, c: usize) {
        match std::mem::replace(&mut self.clients[c].conn, Conn::Closed) {
            Conn::Ws(ws) => (*ws).close().await,
            Conn::Sio(id) => self.node.close(&id).await,
            Conn::Closed => {}
        }
    }

    /// Send type-content's `kind` about `room` (its `content`: the chat and `fields`);
    /// the reply, which must not be an error: the first `kind` frame `done` accepts.
    async fn tc_call(
        &mut self,
        c: usize,
        room: &Room,
        kind: &str,
        fields: Value,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let (chat_type, chat_id) = room.tc_chat();
        let mut content = json!({"chat_type": chat_type, "chat_id": chat_id});
        if let (Some(content), Value::Object(fields)) = (content.as_object_mut(), fields) {
            content.extend(fields);
        }
        let ws = self.ws(c);
        ws.send_json(&json!({"type": kind, "content": content}))
            .await;
        let v = ws
            .recv_until(|v| v.get("error").is_some() || (v["type"] == kind && done(v)))
            .await;
        assert_eq!(v["type"], kind, "{v}");
        v
    }

    fn ws(&mut self, c: usize) -> &mut WsClient {
        match &mut self.clients[c].conn {
            Conn::Ws(ws) => ws,
            _ => panic!("client {c} is not an open WebSocket"),
        }
    }

    /// Emit `event` with `payload` on client `c`'s Socket.IO socket; the ack.
    async fn sio_call(&mut self, c: usize, event: &str, payload: Value) -> Value {
        let sock = self.sio(c);
        self.node.call(&sock, event, payload).await
    }

    fn sio(&self, c: usize) -> String {
        match &self.clients[c].conn {
            Conn::Sio(id) => id.clone(),
            _ => panic!("client {c} is not an open Socket.IO socket"),
        }
    }

    /// The next frame client `c` receives before `deadline`, decoded.
    pub async fn next_seen(&mut self, c: usize, deadline: Instant) -> Option<(Value, Vec<Seen>)> {
        let dialect = self.clients[c].dialect;
        let frame = match &mut self.clients[c].conn {
            Conn::Ws(ws) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let text = ws.try_recv_text(left).await?;
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            Conn::Sio(id) => {
                let id = id.clone();
                let left = deadline.saturating_duration_since(Instant::now());
                self.node
                    .try_expect(&id, left, &|m: &Value| m["type"] == "event")
                    .await?
            }
            Conn::Closed => return None,
        };
        let seen = decode(dialect, &frame, &self.dir);
        Some((frame, seen))
    }

    /// Post a plain text message in `room` as client `c`; its id.
    pub async fn post(&mut self, c: usize, room: &Room, text: &str) -> i64 {
        let key = self.next();
        let me = self.clients[c].me.clone();
        match self.clients[c].dialect {
            Dialect::MethodArgs => {
                let v = self
                    .ma_send(
                        c,
                        json!({"chat": room.id, "text": text, "event_response_key": key}),
                    )
                    .await;
                int(&v["id"])
            }
            Dialect::TypeContent => {
                // The sender's own push is the acknowledgement.
                let fields = json!({"message": text, "reply_to": null});
                let v = self
                    .tc_call(c, room, "new_message", fields, |v| {
                        v["content"]["author_id"] == me.id && v["content"]["text"] == text
                    })
                    .await;
                int(&v["content"]["message_id"])
            }
            Dialect::ActionRequest => {
                let v = self
                    .ar_call(c, json!({"action": "create_message", "msg_text": text}))
                    .await;
                assert_eq!(v["response_status"], 201, "{v}");
                int(&v["data"]["id"])
            }
            Dialect::SocketioRooms => {
                let v = self
                    .sr_send(c, room, json!({"value": text, "type": "text"}))
                    .await;
                int(&v["id"])
            }
            Dialect::SocketioPubsub => {
                let v = self.sp_send(c, room, text, &[]).await;
                int(&v["id"])
            }
        }
    }

    /// Post a message with a file in the dialect's own way; `None` when it has none.
    ///
    /// method-args sends the bytes inline (base64), socketio-pubsub uploads them first
    /// and sends the URL in `media`; both attach a stored file to a text. socketio-rooms
    /// has no upload: an `img` message's value is a URL (of any host) and is the whole
    /// message, so its text is empty for those who show it as an image, and the URL for
    /// those who cannot.
    pub async fn post_file(
        &mut self,
        c: usize,
        room: &Room,
        text: &str,
        file: &File<'_>,
    ) -> Option<Posted> {
        let key = self.next();
        match self.clients[c].dialect {
            Dialect::MethodArgs => {
                let data = base64::engine::general_purpose::STANDARD.encode(file.bytes);
                let m = self
                    .ma_send(
                        c,
                        json!({"chat": room.id, "text": text, "event_response_key": key,
                               "files": [{"name": file.name, "data": data}]}),
                    )
                    .await;
                Some(Posted::attached(
                    int(&m["id"]),
                    text,
                    strings(&m["attached_files"], "file"),
                ))
            }
            Dialect::SocketioPubsub => {
                let url = self.upload(c, file).await;
                let m = self.sp_send(c, room, text, &[url]).await;
                Some(Posted::attached(
                    int(&m["id"]),
                    text,
                    strings(&m["media"], ""),
                ))
            }
            Dialect::SocketioRooms => {
                let url = format!("https://cdn.example.com/matrix/{}", file.name);
                let m = self
                    .sr_send(c, room, json!({"value": url, "type": "img"}))
                    .await;
                Some(Posted {
                    id: int(&m["id"]),
                    files: vec![url.clone()],
                    text: String::new(),
                    plain_text: url,
                })
            }
            Dialect::TypeContent | Dialect::ActionRequest => None,
        }
    }

    /// method-args `send_message`; the created message.
    async fn ma_send(&mut self, c: usize, args: Value) -> Value {
        let key = args["event_response_key"].clone();
        let ws = self.ws(c);
        ws.send_json(&json!({"method": "send_message", "args": args}))
            .await;
        let v = ws
            .recv_until(|v| {
                v["type"] == "error"
                    || (v["type"] == "message_created" && v["data"]["event_response_key"] == key)
            })
            .await;
        assert_eq!(v["type"], "message_created", "{v}");
        v["data"]["message"].clone()
    }

    /// socketio-rooms `new-message` with an ack; the message.
    async fn sr_send(&mut self, c: usize, room: &Room, message: Value) -> Value {
        let me = self.clients[c].me.id;
        let payload = json!({"chat": {"id": room.id.to_string()}, "user": {"id": me.to_string()},
                             "message": message});
        let v = self.sio_call(c, "new-message", payload).await;
        assert!(v.get("error").is_none(), "{v}");
        v
    }

    /// socketio-pubsub `send-message` to the other user of `room`; the chat.
    async fn sp_send(&mut self, c: usize, room: &Room, text: &str, media: &[String]) -> Value {
        let peer = room.peer_of(self.clients[c].me.id).name.clone();
        let payload = json!({"message": text, "user": peer, "media": media});
        let v = self.sio_call(c, "send-message", payload).await;
        assert!(v.get("error").is_none(), "{v}");
        v["chat"].clone()
    }

    /// Upload a file over the REST API as client `c`'s user; its URL.
    async fn upload(&self, c: usize, f: &File<'_>) -> String {
        let r = http_request(
            "POST",
            &self.http_url(c, &format!("/api/files?name={}", f.name)),
            &[
                (
                    "authorization".into(),
                    format!("Bearer {}", self.clients[c].token),
                ),
                ("content-type".into(), "text/plain".into()),
            ],
            f.bytes.to_vec(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()["url"].as_str().expect("a URL").to_string()
    }

    /// An action-request request and its reply (pushes before it are skipped).
    async fn ar_call(&mut self, c: usize, mut req: Value) -> Value {
        let key = format!("r{}", self.next());
        req["request_id"] = json!(key);
        let ws = self.ws(c);
        ws.send_json(&req).await;
        ws.recv_until(|v| v["request_id"] == key.as_str()).await
    }

    /// Edit message `id`; `false` when the dialect cannot.
    pub async fn edit(&mut self, c: usize, id: i64, text: &str) -> bool {
        if self.clients[c].dialect != Dialect::ActionRequest {
            return false;
        }
        let v = self
            .ar_call(
                c,
                json!({"action": "edit_message", "msg_id": id, "edited_msg_text": text}),
            )
            .await;
        assert_eq!(v["response_status"], 200, "{v}");
        true
    }

    /// Delete message `id`; `false` when the dialect cannot.
    pub async fn delete(&mut self, c: usize, room: &Room, id: i64) -> bool {
        match self.clients[c].dialect {
            Dialect::TypeContent => {
                let fields = json!({"message_id": id});
                self.tc_call(c, room, "delete_message", fields, |v| {
                    v["content"]["message_id"] == id
                })
                .await;
                true
            }
            Dialect::ActionRequest => {
                let v = self
                    .ar_call(c, json!({"action": "delete_messages", "msg_id_list": [id]}))
                    .await;
                assert_eq!(v["response_status"], 200, "{v}");
                true
            }
            _ => false,
        }
    }

    /// Mark `room` read up to message `id` (method-args reads the whole chat, which
    /// `id` is the newest message of); `false` when the dialect cannot.
    pub async fn read(&mut self, c: usize, room: &Room, id: i64) -> bool {
        let me = self.clients[c].me.id;
        match self.clients[c].dialect {
            Dialect::MethodArgs => {
                let ws = self.ws(c);
                ws.send_json(&json!({"method": "read_messages", "args": {"chat": room.id}}))
                    .await;
                let v = ws
                    .recv_until(|v| v["type"] == "error" || v["type"] == "messages_read")
                    .await;
                assert_eq!(v["data"]["chat"], room.id, "{v}");
                true
            }
            Dialect::TypeContent => {
                let fields = json!({"message_id": id});
                let v = self
                    .tc_call(c, room, "message_read", fields, |v| {
                        v["content"]["user_id"] == me
                    })
                    .await;
                assert_eq!(v["content"]["message_id"], id, "{v}");
                true
            }
            Dialect::SocketioPubsub => {
                let v = self.sio_call(c, "read-chat", json!({"id": id})).await;
                assert_eq!(v, json!({}), "read-chat {id}");
                true
            }
            _ => false,
        }
    }

    /// Announce presence without connecting or disconnecting; `false` when the
    /// dialect cannot.
    pub async fn announce(&mut self, c: usize, online: bool) -> bool {
        if self.clients[c].dialect != Dialect::TypeContent {
            return false;
        }
        let event = if online { "set_online" } else { "set_offline" };
        self.ws(c).send_json(&json!({ "type": event })).await;
        true
    }

    /// Say "typing" in `room`; `false` when the dialect cannot.
    pub async fn typing(&mut self, c: usize, room: &Room) -> bool {
        if self.clients[c].dialect != Dialect::TypeContent {
            return false;
        }
        let (chat_type, chat_id) = room.tc_chat();
        self.ws(c)
            .send_json(&json!({"type": "user_typing", "content": {
                "chat_type": chat_type, "chat_id": chat_id}}))
            .await;
        true
    }
}
