//! The JSON REST API beside the WebSockets, and the attachment file server.
//!
//! Wire types here are the gateway's own (documented in the README), separate from the
//! domain records. Every route authenticates with a bearer token in any carrier the
//! WebSockets accept; admin routes also require the admin claim.

use crate::http_util::{self, Body};
use crate::state::App;
use bytes::Bytes;
use chat_core::{
    Attachment, ChatError, CreateRoom, MessageId, MessageView, Principal, RoomId, RoomRef,
    RoomShape, RoomView, Upload, User, UserId, UserProfile,
};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- wire types

#[derive(Serialize)]
pub struct ApiUser {
    pub id: i64,
    pub username: String,
    pub external_id: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub photo: String,
    pub is_admin: bool,
    pub online: bool,
}

#[derive(Serialize)]
pub struct ApiRoom {
    pub id: i64,
    pub kind: &'static str,
    pub project_id: Option<i64>,
    pub title: String,
    pub has_business: bool,
    pub members: Vec<ApiUser>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize)]
pub struct ApiAttachment {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub url: String,
}

#[derive(Serialize)]
pub struct ApiMessage {
    pub id: i64,
    pub room_id: i64,
    pub author: ApiUser,
    pub kind: &'static str,
    pub text: String,
    pub reply_to: Option<i64>,
    pub attachments: Vec<ApiAttachment>,
    pub is_read: bool,
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: String,
    pub edited_at: Option<String>,
}

/// A room of the caller's room list: the room, its unread count and last message.
#[derive(Serialize)]
pub struct ApiRoomEntry {
    #[serde(flatten)]
    pub room: ApiRoom,
    pub unread: i64,
    pub last_message: Option<ApiMessage>,
}

/// A member's read mark: the last message they have read (`null`: none).
#[derive(Serialize)]
pub struct ApiReadMark {
    pub user_id: i64,
    pub last_read: Option<i64>,
}

/// One room of `GET /api/sync`.
#[derive(Serialize)]
pub struct ApiRoomSync {
    #[serde(flatten)]
    pub entry: ApiRoomEntry,
    pub messages: Vec<ApiMessage>,
    pub has_more: bool,
    pub changed: Vec<ApiMessage>,
    pub changed_has_more: bool,
    pub read_marks: Vec<ApiReadMark>,
}

/// A user as an admin describes one: the body of `POST /api/users` and a row of
/// `chat-gateway users import`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub id: Option<i64>,
    pub username: Option<String>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub photo: Option<String>,
    pub color: Option<String>,
    pub role: Option<String>,
    pub is_admin: Option<bool>,
}

impl UserInput {
    pub fn into_profile(self) -> UserProfile {
        UserProfile {
            id: self.id.map(UserId),
            username: self.username,
            external_id: self.external_id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            display_name: self.display_name,
            photo: self.photo,
            color: self.color,
            role: self.role,
            is_admin: self.is_admin,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoomBody {
    id: Option<i64>,
    kind: Option<String>,
    project_id: Option<i64>,
    #[serde(default)]
    title: String,
    members: Vec<i64>,
    #[serde(default)]
    has_business: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersBody {
    users: Vec<i64>,
}

fn ts(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl ApiUser {
    fn new(u: &User, online: bool) -> Self {
        ApiUser {
            id: u.id.0,
            username: u.username.clone(),
            external_id: u.external_id.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            display_name: u.display_name.clone(),
            photo: u.photo.clone(),
            is_admin: u.is_admin,
            online,
        }
    }
}

pub(crate) fn api_room(app: &App, r: &RoomView) -> ApiRoom {
    ApiRoom {
        id: r.room.id.0,
        kind: r.room.kind.name(),
        project_id: match r.room.kind {
            chat_core::RoomKind::Project { project_id } => Some(project_id),
            _ => None,
        },
        title: r.room.title.clone(),
        has_business: r.room.has_business,
        members: r
            .members
            .iter()
            .map(|u| ApiUser::new(u, app.service.is_online(u.id)))
            .collect(),
        created_at: ts(&r.room.created_at),
        updated_at: ts(&r.room.updated_at),
    }
}

fn api_attachment(app: &App, a: &Attachment) -> ApiAttachment {
    ApiAttachment {
        id: a.id.0,
        name: a.name.clone(),
        content_type: a.content_type.clone(),
        size: a.size,
        url: app.service.file_url(a),
    }
}

fn api_message(app: &App, m: &MessageView) -> ApiMessage {
    ApiMessage {
        id: m.message.id.0,
        room_id: m.message.room_id.0,
        author: ApiUser::new(&m.author, app.service.is_online(m.author.id)),
        kind: m.message.kind.as_str(),
        text: m.message.text.clone(),
        reply_to: m.message.reply_to.map(|r| r.0),
        attachments: m
            .message
            .attachments
            .iter()
            .map(|a| api_attachment(app, a))
            .collect(),
        is_read: m.is_read,
        deleted: m.message.is_deleted(),
        created_at: ts(&m.message.created_at),
        updated_at: ts(&m.message.updated_at),
        edited_at: m.message.edited_at.as_ref().map(ts),
    }
}

fn api_room_entry(app: &App, s: &chat_core::service::RoomSummary) -> ApiRoomEntry {
    ApiRoomEntry {
        room: api_room(app, &s.room),
        unread: s.unread,
        last_message: s.last_message.as_ref().map(|m| api_message(app, m)),
    }
}

fn api_room_sync(app: &App, r: &chat_core::service::RoomSync) -> ApiRoomSync {
    let messages = |list: &[MessageView]| list.iter().map(|m| api_message(app, m)).collect();
    ApiRoomSync {
        entry: api_room_entry(app, &r.summary),
        messages: messages(&r.messages),
        has_more: r.has_more,
        changed: messages(&r.changed),
        changed_has_more: r.changed_has_more,
        read_marks: r
            .summary
            .room
            .watermarks
            .iter()
            .map(|(user, last)| ApiReadMark {
                user_id: user.0,
                last_read: last.map(|m| m.0),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------- routing

/// Handle a request under `/api/`.
/// `GET /api/connections[?user=ID]` (admins): the connections open on this node, in
/// all and of one user.
fn connections(
    app: &App,
    principal: &Principal,
    query: Option<&str>,
) -> Result<Response<Body>, ChatError> {
    chat_core::policy::require_admin(principal)?;
    let hub = app.service.hub();
    let user = match http_util::query_param(query, "user") {
        Some(u) => Some(parse_id(&u, "user")?),
        None => None,
    };
    Ok(http_util::json(
        StatusCode::OK,
        &serde_json::json!({
            "total": hub.connection_count(),
            "user": user.map(|u| hub.connections_of(UserId(u))),
        }),
    ))
}

pub async fn handle(req: Request<Incoming>, app: &App) -> Response<Body> {
    // REST takes tokens from the Authorization header only: a URL's query string ends
    // up in access logs, proxies and browser history. (WebSocket handshakes keep the
    // query token their legacy clients send.)
    let in_query = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .any(|(k, _)| k == "token" || k == "access_token");
    if in_query {
        return http_util::error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "tokens are not accepted in a REST URL's query string: send Authorization: Bearer <token>",
        );
    }
    let token = http_util::find_token(req.headers(), None);
    let Some(token) = token else {
        return http_util::error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send a bearer token: Authorization: Bearer <token>",
        );
    };
    let principal = match app.service.authenticate(&token).await {
        Ok(p) => p,
        Err(e) => return http_util::chat_error(&e),
    };
    let path = dialect_kit::http::normalize_path(req.uri().path());
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let result = match (method.clone(), segments.as_slice()) {
        (Method::GET, ["api", "rooms"]) => list_rooms(app, &principal).await,
        (Method::GET, ["api", "rooms", id, "messages"]) => {
            history(app, &principal, id, req.uri().query()).await
        }
        (Method::DELETE, ["api", "rooms", id]) => delete_room(app, &principal, id).await,
        (Method::GET, ["api", "sync"]) => sync(app, &principal, req.uri().query()).await,
        (Method::POST, ["api", "users"]) => create_user(app, &principal, req).await,
        (Method::POST, ["api", "rooms"]) => create_room(app, &principal, req).await,
        (Method::POST, ["api", "rooms", id, "members"]) => {
            add_members(app, &principal, id, req).await
        }
        (Method::POST, ["api", "files"]) => upload(app, &principal, req).await,
        (Method::GET, ["api", "connections"]) => connections(app, &principal, req.uri().query()),
        (
            _,
            ["api", "rooms"]
            | ["api", "rooms", _]
            | ["api", "sync"]
            | ["api", "rooms", _, "messages"]
            | ["api", "users"]
            | ["api", "rooms", _, "members"]
            | ["api", "files"]
            | ["api", "connections"],
        ) => Ok(http_util::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here"),
        )),
        _ => Ok(http_util::error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        )),
    };
    result.unwrap_or_else(|e| http_util::chat_error(&e))
}

type ApiResult = Result<Response<Body>, ChatError>;

fn parse_id(s: &str, what: &str) -> Result<i64, ChatError> {
    s.parse::<i64>()
        .map_err(|_| ChatError::invalid(what, "must be an integer"))
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    app: &App,
    req: Request<Incoming>,
    limit: usize,
) -> Result<T, ChatError> {
    let bytes = read_body(app, req, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ChatError::invalid("body", format!("invalid JSON: {e}")))
}

/// A request's body, at most `limit` bytes, sent within `--body-timeout-secs`.
async fn read_body(app: &App, req: Request<Incoming>, limit: usize) -> Result<Bytes, ChatError> {
    let read = Limited::new(req.into_body(), limit).collect();
    let Ok(collected) = tokio::time::timeout(app.limits.body_timeout, read).await else {
        return Err(ChatError::invalid(
            "body",
            format!(
                "the body did not arrive within {} s",
                app.limits.body_timeout.as_secs()
            ),
        ));
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ChatError::TooLarge {
            what: "request body",
            size: limit + 1,
            limit,
        }),
        Err(e) => Err(ChatError::invalid(
            "body",
            format!("could not read the body: {e}"),
        )),
    }
}

/// A query parameter that is an id, if given.
fn id_param(query: Option<&str>, name: &str) -> Result<Option<i64>, ChatError> {
    match http_util::query_param(query, name) {
        Some(v) => parse_id(&v, name).map(Some),
        None => Ok(None),
    }
}

/// `GET /api/rooms`: the caller's rooms, each with its unread count and last message.
async fn list_rooms(app: &App, p: &Principal) -> ApiResult {
    let rooms = app.service.room_summaries(p).await?;
    let out: Vec<ApiRoomEntry> = rooms.iter().map(|r| api_room_entry(app, r)).collect();
    Ok(http_util::json(
        StatusCode::OK,
        &serde_json::json!({ "rooms": out }),
    ))
}

/// `GET /api/rooms/{id}/messages`: `?before=ID` (or neither) pages back, newest
/// first; `?after=ID` catches up, oldest first, with `has_more`.
async fn history(app: &App, p: &Principal, id: &str, query: Option<&str>) -> ApiResult {
    let room = RoomId(parse_id(id, "room id")?);
    let before = id_param(query, "before")?.map(MessageId);
    let after = id_param(query, "after")?.map(MessageId);
    let limit = id_param(query, "limit")?.unwrap_or(chat_core::service::DEFAULT_CATCH_UP_LIMIT);
    chat_core::service::check_catch_up_limit(limit)?;
    let out = |messages: &[MessageView]| -> Vec<ApiMessage> {
        messages.iter().map(|m| api_message(app, m)).collect()
    };
    let body = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ChatError::invalid(
                "after",
                "give either before or after, not both",
            ))
        }
        (_, Some(after)) => {
            let page = app.service.messages_after(p, room, after, limit).await?;
            serde_json::json!({ "messages": out(&page.messages), "has_more": page.has_more })
        }
        (before, None) => {
            let (_, messages) = app
                .service
                .history(p, &RoomRef::Id(room), before, limit)
                .await?;
            serde_json::json!({ "messages": out(&messages) })
        }
    };
    Ok(http_util::json(StatusCode::OK, &body))
}

/// `GET /api/sync?since=ID[&limit=N]`: every room of the caller with what changed
/// after message `since`.
async fn sync(app: &App, p: &Principal, query: Option<&str>) -> ApiResult {
    let since = id_param(query, "since")?.ok_or_else(|| {
        ChatError::invalid("since", "required: the last message id you saw (0: none)")
    })?;
    let limit = id_param(query, "limit")?.unwrap_or(chat_core::service::DEFAULT_CATCH_UP_LIMIT);
    let sync = app.service.sync(p, MessageId(since), limit).await?;
    let rooms: Vec<ApiRoomSync> = sync.rooms.iter().map(|r| api_room_sync(app, r)).collect();
    let has_more = sync.rooms.iter().any(|r| r.has_more);
    Ok(http_util::json(
        StatusCode::OK,
        &serde_json::json!({
            "since": since,
            "next_since": sync.next_since.0,
            "has_more": has_more,
            "rooms": rooms,
        }),
    ))
}

/// `DELETE /api/rooms/{id}` (admins): the room goes with its messages; answers the
/// room as it was.
async fn delete_room(app: &App, p: &Principal, id: &str) -> ApiResult {
    let room = RoomId(parse_id(id, "room id")?);
    let gone = app.service.delete_room(p, room, None).await?;
    Ok(http_util::json(StatusCode::OK, &api_room(app, &gone)))
}

async fn create_user(app: &App, p: &Principal, req: Request<Incoming>) -> ApiResult {
    chat_core::policy::require_admin(p)?;
    let b: UserInput = read_json(app, req, 64 * 1024).await?;
    let mut profile = b.into_profile();
    profile.is_admin.get_or_insert(false);
    let user = app.service.create_user(Some(p), &profile).await?;
    Ok(http_util::json(
        StatusCode::CREATED,
        &ApiUser::new(&user, false),
    ))
}

async fn create_room(app: &App, p: &Principal, req: Request<Incoming>) -> ApiResult {
    chat_core::policy::require_admin(p)?;
    let b: NewRoomBody = read_json(app, req, 256 * 1024).await?;
    let shape = match (b.kind.as_deref().unwrap_or("group"), b.project_id) {
        ("direct", None) => RoomShape::Direct,
        ("group", None) => RoomShape::Group,
        ("project", Some(pid)) => RoomShape::Project(pid),
        ("project", None) => {
            return Err(ChatError::invalid(
                "project_id",
                "a project room needs project_id",
            ))
        }
        (k @ ("direct" | "group"), Some(_)) => {
            return Err(ChatError::invalid(
                "project_id",
                format!("a {k} room has no project_id"),
            ))
        }
        (other, _) => {
            return Err(ChatError::invalid(
                "kind",
                format!("`{other}` is not one of direct, group, project"),
            ))
        }
    };
    let room = app
        .service
        .create_room(
            p,
            CreateRoom {
                id: b.id.map(RoomId),
                shape,
                title: b.title,
                members: b.members.into_iter().map(UserId).collect(),
                include_creator: false,
                has_business: b.has_business,
            },
            None,
        )
        .await?;
    Ok(http_util::json(StatusCode::CREATED, &api_room(app, &room)))
}

async fn add_members(app: &App, p: &Principal, id: &str, req: Request<Incoming>) -> ApiResult {
    chat_core::policy::require_admin(p)?;
    let room = RoomId(parse_id(id, "room id")?);
    let b: MembersBody = read_json(app, req, 64 * 1024).await?;
    let users: Vec<UserId> = b.users.into_iter().map(UserId).collect();
    let (room, _) = app.service.add_members(p, room, &users, None).await?;
    Ok(http_util::json(StatusCode::OK, &api_room(app, &room)))
}

/// `POST /api/files`: either a `multipart/form-data` form (the first part with a
/// filename is the file), or a raw body that is the file, named by `?name=`, the
/// `X-File-Name` header or `Content-Disposition`'s filename, typed by `Content-Type`.
async fn upload(app: &App, p: &Principal, req: Request<Incoming>) -> ApiResult {
    let headers = req.headers().clone();
    let name = http_util::query_param(req.uri().query(), "name")
        .or_else(|| {
            headers
                .get("x-file-name")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .or_else(|| {
            headers
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.split(';')
                        .find_map(|p| p.trim().strip_prefix("filename="))
                })
                .map(|f| f.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "file".to_string());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|c| !c.starts_with("application/x-www-form-urlencoded"));
    let bytes = read_body(app, req, app.limits.max_attachment_bytes)
        .await
        .map_err(|e| match e {
            ChatError::TooLarge { .. } => ChatError::TooLarge {
                what: "file",
                size: app.limits.max_attachment_bytes + 1,
                limit: app.limits.max_attachment_bytes,
            },
            e => e,
        })?;
    let upload = match content_type.as_deref().and_then(crate::multipart::boundary) {
        Some(boundary) => {
            let part = crate::multipart::first_file(&bytes, &boundary).map_err(|e| {
                ChatError::invalid("body", format!("malformed multipart form: {e}"))
            })?;
            Upload {
                name: part.name,
                content_type: part.content_type,
                bytes: part.bytes,
            }
        }
        None => Upload {
            name,
            content_type,
            bytes: bytes.to_vec(),
        },
    };
    let a = app.service.upload(p, upload).await?;
    Ok(http_util::json(
        StatusCode::CREATED,
        &api_attachment(app, &a),
    ))
}

/// Types a browser may show in place (`Content-Disposition: inline`): raster images
/// and PDF, which run no script in the gateway's origin. Everything else, HTML and
/// SVG included, is served as a download.
const INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
];

/// A download that takes no chunk for this long is ended, and its file closed.
pub const DOWNLOAD_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether `content_type` (its essence, without parameters) may be shown inline.
pub fn is_inline_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    INLINE_TYPES.contains(&essence.as_str())
}

/// Characters escaped in RFC 5987 `filename*` values: all but `attr-char`.
const ATTR_CHAR_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` for a file named `name`: `inline` for [`INLINE_TYPES`],
/// else `attachment`, with a quoted ASCII `filename` (other characters, quotes and
/// backslashes as `_`) and, when that is not the name, the exact name as RFC 5987
/// `filename*=UTF-8''…`.
pub fn content_disposition(content_type: &str, name: &str) -> String {
    let kind = if is_inline_type(content_type) {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    if ascii == name {
        format!("{kind}; filename=\"{ascii}\"")
    } else {
        format!(
            "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
            percent_encoding::utf8_percent_encode(name, ATTR_CHAR_ESCAPES)
        )
    }
}

/// `GET /files/{id}/{token}/{name}`: the stored bytes with their recorded content
/// type, streamed in chunks. The token (random, stored with the attachment, compared
/// in constant time) and the name must both match, so a URL cannot be made from the
/// id; any mismatch is the same 404 as a missing file. Every answer, errors included,
/// carries `Content-Security-Policy: sandbox` and `X-Content-Type-Options: nosniff`.
pub async fn serve_file(req: Request<Incoming>, app: &App) -> Response<Body> {
    let mut resp = file_response(req, app).await;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    resp
}

fn no_such_file() -> Response<Body> {
    http_util::error(StatusCode::NOT_FOUND, "not_found", "no such file")
}

async fn file_response(req: Request<Incoming>, app: &App) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return http_util::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches("/files/").splitn(3, '/');
    let (Some(id), Some(token), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return no_such_file();
    };
    let Ok(id) = id.parse::<i64>() else {
        return no_such_file();
    };
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .to_string();
    let att = match app.service.attachment(chat_core::AttachmentId(id)).await {
        Ok(Some(a)) if chat_core::files::token_matches(&a.token, token) && a.name == name => a,
        Ok(_) => return no_such_file(),
        Err(e) => return http_util::chat_error(&e),
    };
    let reader = match app.service.files().open(&att.blob_key).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::error!(attachment = id, blob = %att.blob_key, "an attachment's bytes are missing");
            return http_util::error(
                StatusCode::NOT_FOUND,
                "not_found",
                "the file's bytes are missing",
            );
        }
        Err(e) => {
            let e = ChatError::Storage(format!("attachment {id}, blob {}: {e}", att.blob_key));
            return http_util::chat_error(&e);
        }
    };
    let content_type = http::HeaderValue::from_str(&att.content_type)
        .unwrap_or_else(|_| http::HeaderValue::from_static("application/octet-stream"));
    let disposition =
        http::HeaderValue::from_str(&content_disposition(&att.content_type, &att.name))
            .unwrap_or_else(|_| http::HeaderValue::from_static("attachment"));
    let size = reader.size();
    let body = if req.method() == Method::HEAD {
        http_util::empty()
    } else {
        stream_body(reader, id)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, size)
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        )
        .body(body)
        .unwrap_or_else(|_| Response::new(http_util::empty()))
}

/// The body of a download: a task reads the blob a chunk at a time and hands each to
/// the connection through a one-slot channel, so a download holds about two chunks
/// in memory whatever the file's size. When the connection takes no chunk for
/// [`DOWNLOAD_IDLE_TIMEOUT`] the task gives up, closing the file; the body then
/// fails, and hyper drops the connection once it polls it again. (Closing a socket
/// whose peer never reads is the connection-level write timeout's job.)
fn stream_body(mut reader: chat_core::files::BlobReader, id: i64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        loop {
            let next = match reader.next_chunk().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(attachment = id, error = %e, "a download's bytes could not be read");
                    Err(std::io::Error::other("the file could not be read"))
                }
            };
            let failed = next.is_err();
            match tokio::time::timeout(DOWNLOAD_IDLE_TIMEOUT, tx.send(next)).await {
                Ok(Ok(())) if !failed => {}
                Ok(_) => return,
                Err(_) => {
                    tracing::info!(
                        attachment = id,
                        "a download took no data for {DOWNLOAD_IDLE_TIMEOUT:?}: ended"
                    );
                    return;
                }
            }
        }
    });
    ChannelBody { rx }.boxed()
}

/// A response body fed by a channel of chunks.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = http_util::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|next| {
            next.map(|chunk| {
                chunk
                    .map(hyper::body::Frame::data)
                    .map_err(|e| Box::new(e) as http_util::BoxError)
            })
        })
    }
}
