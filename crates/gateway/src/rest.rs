//! The JSON REST API beside the WebSockets, and the attachment file server.
//!
//! Wire types here are the gateway's own (documented in the README), separate from the
//! domain records. Every route authenticates with a bearer token in any carrier the
//! WebSockets accept; admin routes also require the admin claim.

use crate::http_util::{self, Body};
use crate::server::App;
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

fn api_room(app: &App, r: &RoomView) -> ApiRoom {
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
    let path = crate::server::normalize_path(req.uri().path());
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let result = match (method.clone(), segments.as_slice()) {
        (Method::GET, ["api", "rooms"]) => list_rooms(app, &principal).await,
        (Method::GET, ["api", "rooms", id, "messages"]) => {
            history(app, &principal, id, req.uri().query()).await
        }
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

async fn list_rooms(app: &App, p: &Principal) -> ApiResult {
    let rooms = app.service.rooms(p).await?;
    let out: Vec<ApiRoom> = rooms.iter().map(|r| api_room(app, r)).collect();
    Ok(http_util::json(
        StatusCode::OK,
        &serde_json::json!({ "rooms": out }),
    ))
}

async fn history(app: &App, p: &Principal, id: &str, query: Option<&str>) -> ApiResult {
    let room = RoomId(parse_id(id, "room id")?);
    let before = match http_util::query_param(query, "before") {
        Some(b) => Some(MessageId(parse_id(&b, "before")?)),
        None => None,
    };
    let limit = match http_util::query_param(query, "limit") {
        Some(l) => parse_id(&l, "limit")?,
        None => 50,
    };
    if !(1..=500).contains(&limit) {
        return Err(ChatError::invalid("limit", "between 1 and 500"));
    }
    let (_, messages) = app
        .service
        .history(p, &RoomRef::Id(room), before, limit)
        .await?;
    let out: Vec<ApiMessage> = messages.iter().map(|m| api_message(app, m)).collect();
    Ok(http_util::json(
        StatusCode::OK,
        &serde_json::json!({ "messages": out }),
    ))
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

/// `GET /files/{id}/{name}`: the stored bytes with their recorded content type. The
/// name must match the stored one, so a URL cannot be guessed from the id alone.
pub async fn serve_file(req: Request<Incoming>, app: &App) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return http_util::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches("/files/").splitn(2, '/');
    let (Some(id), Some(name)) = (parts.next(), parts.next()) else {
        return http_util::error(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    let Ok(id) = id.parse::<i64>() else {
        return http_util::error(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .to_string();
    let att = match app.service.attachment(chat_core::AttachmentId(id)).await {
        Ok(Some(a)) if a.name == name => a,
        Ok(_) => return http_util::error(StatusCode::NOT_FOUND, "not_found", "no such file"),
        Err(e) => return http_util::chat_error(&e),
    };
    let bytes = match app.service.files().get(&att.blob_key).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return http_util::error(
                StatusCode::NOT_FOUND,
                "not_found",
                "the file's bytes are missing",
            )
        }
        Err(e) => {
            return http_util::error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
        }
    };
    let is_head = req.method() == Method::HEAD;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, att.content_type.as_str())
        .header(header::CONTENT_LENGTH, bytes.len())
        .header(
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        )
        .header("x-content-type-options", "nosniff")
        .body(if is_head {
            http_util::empty()
        } else {
            http_util::full(bytes)
        })
        .unwrap_or_else(|_| Response::new(http_util::empty()))
}
