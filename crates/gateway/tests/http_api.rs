//! The HTTP side of the gateway on a real socket: health, REST API, files, mounts,
//! shutdown and restart.

mod support;

use chat_testkit::steps::{create_users, direct_room, get_as, sqlite_with, upload_raw};
use chat_testkit::{dual_backend_test, http_request, HttpResponse, Options, TestGateway, WsClient};
use serde_json::json;
use support::open_chat;

async fn health_and_unknown_routes(gw: TestGateway) {
    let r = gw.http("GET", "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    let r = gw.http("GET", "/nope", None, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");
    // A plain GET on a WebSocket mount explains itself instead of hanging.
    let r = gw.http("GET", "/ws/chat/", None, None).await;
    assert_eq!(r.status, 426);
}
dual_backend_test!(health_and_unknown_routes);

async fn rest_requires_a_valid_token(gw: TestGateway) {
    let r = gw.http("GET", "/api/rooms", None, None).await;
    assert_eq!(r.status, 401);
    let r = gw
        .http("GET", "/api/rooms", Some(&gw.expired_token(1)), None)
        .await;
    assert_eq!(r.status, 401);
    assert!(r.json()["detail"].as_str().unwrap().contains("expired"));
    let r = gw
        .http("GET", "/api/rooms", Some(&gw.forged_token(1)), None)
        .await;
    assert_eq!(r.status, 401);
    let r = gw
        .http("GET", "/api/rooms", Some(&gw.alg_none_token(1)), None)
        .await;
    assert_eq!(r.status, 401);
    // ?token= is refused (URLs end up in logs); the header works.
    let t = gw.token(1, "ann");
    let r = gw
        .http("GET", &format!("/api/rooms?token={t}"), None, None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        gw.http("GET", "/api/rooms", Some(&t), None).await.status,
        200
    );
}
dual_backend_test!(rest_requires_a_valid_token);

/// `POST path` with a JSON `body`, `token` as the bearer token.
async fn post(gw: &TestGateway, path: &str, token: &str, body: serde_json::Value) -> HttpResponse {
    gw.http("POST", path, Some(token), Some(body)).await
}

async fn admin_creates_users_and_rooms(gw: TestGateway) {
    let admin = gw.admin_token(100, "root");
    let user = gw.token(1, "ann");
    // Non-admins may not; an admin may, once: the same id again is a conflict.
    let attempts = [
        (&user, json!({"id": 2, "username": "bob"}), 403),
        (
            &admin,
            json!({"id": 2, "username": "bob", "email": "b@x.io"}),
            201,
        ),
        (&admin, json!({"id": 2, "username": "bob2"}), 409),
    ];
    for (token, body, want) in attempts {
        let r = post(&gw, "/api/users", token, body).await;
        assert_eq!(r.status, want, "{}", r.text());
        if want == 201 {
            assert_eq!(r.json()["username"], "bob");
        }
    }
    // Bad bodies.
    let r = gw
        .http("POST", "/api/users", Some(&admin), Some(json!({"id": "x"})))
        .await;
    assert_eq!(r.status, 400);
    let r = gw
        .http("POST", "/api/users", Some(&admin), Some(json!({"nope": 1})))
        .await;
    assert_eq!(r.status, 400);
    // ann exists once she has shown her token.
    assert_eq!(
        gw.http("GET", "/api/rooms", Some(&user), None).await.status,
        200
    );
    let r = gw
        .http(
            "POST",
            "/api/rooms",
            Some(&admin),
            Some(
                json!({"kind": "group", "title": "team", "members": [1, 2], "has_business": true}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    let room = r.json();
    assert_eq!(room["has_business"], true);
    assert_eq!(room["members"].as_array().unwrap().len(), 2);
    let id = room["id"].as_i64().unwrap();
    // Project rooms are unique per project id.
    let body = json!({"kind": "project", "project_id": 77, "members": [1]});
    assert_eq!(
        gw.http("POST", "/api/rooms", Some(&admin), Some(body.clone()))
            .await
            .status,
        201
    );
    assert_eq!(
        gw.http("POST", "/api/rooms", Some(&admin), Some(body))
            .await
            .status,
        409
    );
    // Unknown members are refused.
    let r = post(&gw, "/api/rooms", &admin, json!({"members": [1, 999]})).await;
    assert_eq!(r.status, 400);
    // Members, then ann sees both rooms.
    assert_eq!(
        gw.http(
            "POST",
            "/api/users",
            Some(&admin),
            Some(json!({"id": 3, "username": "cy"}))
        )
        .await
        .status,
        201
    );
    let r = post(
        &gw,
        &format!("/api/rooms/{id}/members"),
        &admin,
        json!({"users": [3]}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["members"].as_array().unwrap().len(), 3);
    let rooms = gw.http("GET", "/api/rooms", Some(&user), None).await.json();
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 2);
    // Wrong method.
    assert_eq!(
        gw.http("DELETE", "/api/rooms", Some(&admin), None)
            .await
            .status,
        405
    );
}
dual_backend_test!(admin_creates_users_and_rooms);

async fn history_is_for_members_only(gw: TestGateway) {
    create_users(&gw, &[(1, "ann"), (2, "bob"), (3, "eve")]).await;
    let room = direct_room(&gw, 1, 2, false).await;
    let svc = gw.service();
    let ann = svc.authenticate(&gw.token(1, "ann")).await.unwrap();
    for i in 0..5 {
        svc.send_message(
            &ann,
            chat_core::SendMessage::text(chat_core::RoomRef::Id(room), format!("m{i}")),
            None,
        )
        .await
        .unwrap();
    }
    let history = format!("/api/rooms/{room}/messages");
    let bob = gw.token(2, "bob");
    let r = get_as(&gw, &format!("{history}?limit=2"), &bob).await;
    assert_eq!(r.status, 200);
    let msgs = r.json()["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["text"], "m4");
    let before = msgs[1]["id"].as_i64().unwrap();
    let r = get_as(&gw, &format!("{history}?before={before}"), &bob).await;
    let texts: Vec<_> = r.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("m2"), json!("m1"), json!("m0")]);
    let r = get_as(&gw, &history, &gw.token(3, "eve")).await;
    assert_eq!(r.status, 404);
    let r = get_as(&gw, &format!("{history}?limit=0"), &gw.token(1, "ann")).await;
    assert_eq!(r.status, 400);
    let r = get_as(&gw, "/api/rooms/abc/messages", &gw.token(1, "ann")).await;
    assert_eq!(r.status, 400);
}
dual_backend_test!(history_is_for_members_only);

async fn files_upload_and_download(gw: TestGateway) {
    let t = gw.token(1, "ann");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let r = upload_raw(
        &gw.http_url("/api/files?name=pic.png"),
        &t,
        "image/png",
        &bytes,
    )
    .await;
    assert_eq!(r.status, 201);
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let got = http_request("GET", &url, &[], vec![]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "image/png");
    assert_eq!(got.body.as_ref(), bytes.as_slice());
    // The name is part of the address.
    let wrong = url.replace("pic.png", "other.png");
    assert_eq!(http_request("GET", &wrong, &[], vec![]).await.status, 404);
    assert_eq!(
        http_request("GET", &gw.http_url("/files/999/x"), &[], vec![])
            .await
            .status,
        404
    );
    // A multipart form, as `curl -F file=@doc.txt` sends it.
    let (files, multipart) = (
        gw.http_url("/api/files"),
        "multipart/form-data; boundary=bnd",
    );
    let form = b"--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"doc.txt\"\r\nContent-Type: text/plain\r\n\r\nhello form\r\n--bnd--\r\n".to_vec();
    let r = upload_raw(&files, &t, multipart, &form).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.json()["name"], "doc.txt");
    let got = http_request("GET", r.json()["url"].as_str().unwrap(), &[], vec![]).await;
    assert_eq!(got.body.as_ref(), b"hello form");
    assert_eq!(got.headers["content-type"], "text/plain");
    let r = upload_raw(&files, &t, multipart, b"garbage").await;
    assert_eq!(r.status, 400);
    // Uploads need a token.
    let r = http_request(
        "POST",
        &gw.http_url("/api/files?name=a"),
        &[],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(r.status, 401);
}
dual_backend_test!(files_upload_and_download);

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let gw = sqlite_with(|c| c.limits.max_attachment_bytes = 1000).await;
    let t = gw.token(1, "ann");
    let r = http_request(
        "POST",
        &gw.http_url("/api/files?name=big.bin"),
        &[("authorization".into(), format!("Bearer {t}"))],
        vec![0u8; 1001],
    )
    .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn mount_conflicts_are_refused_naming_both() {
    let config = chat_gateway::GatewayConfig {
        dialects: vec!["method-args".into()],
        mounts: vec!["method-args=/a,/a/".parse().unwrap()],
        ..chat_gateway::GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "sqlite::memory:",
            chat_gateway::Jwt::hs256(b"x").unwrap(),
            std::env::temp_dir(),
        )
    };
    let err = chat_gateway::mounts::plan(&config).expect_err("a conflicting mount is refused");
    let msg = err.to_string();
    assert!(msg.contains("mount conflict on 127.0.0.1:0/a"), "{msg}");
    assert!(msg.matches("method-args").count() >= 2, "{msg}");
    // Two dialects on one path: the message names both and where each came from.
    let mut two = config.clone();
    two.dialects = vec!["method-args".into(), "action-request".into()];
    two.mounts = vec!["action-request=/ws/chat/".parse().unwrap()];
    let msg = chat_gateway::mounts::plan(&two).unwrap_err().to_string();
    assert!(
        msg.contains("`method-args` (default mount of method-args)"),
        "{msg}"
    );
    assert!(
        msg.contains("`action-request` (--mount action-request=/ws/chat/"),
        "{msg}"
    );
    // On its own address it is fine.
    two.mounts = vec!["action-request=/ws/chat/@127.0.0.2:9999".parse().unwrap()];
    let plan = chat_gateway::mounts::plan(&two).unwrap();
    assert_eq!(plan.len(), 2);
    // Unknown dialects are refused too.
    let mut bad = config.clone();
    bad.mounts = vec!["nope=/x".parse().unwrap()];
    assert!(chat_gateway::mounts::plan(&bad)
        .unwrap_err()
        .to_string()
        .contains("unknown dialect `nope`"));
    // Malformed flags.
    assert!("method-args"
        .parse::<chat_gateway::mounts::MountSpec>()
        .is_err());
    assert!("method-args=relative"
        .parse::<chat_gateway::mounts::MountSpec>()
        .is_err());
    assert!("method-args=/x@notanaddr"
        .parse::<chat_gateway::mounts::MountSpec>()
        .is_err());
}

#[tokio::test]
async fn a_dialect_can_move_to_its_own_address_and_path() {
    let opts = Options {
        dialects: Some(vec!["method-args".into()]),
        mounts: vec!["method-args=/legacy/chat/@127.0.0.2:0".parse().unwrap()],
        ..Options::default()
    };
    let gw = TestGateway::start(opts).await.unwrap();
    let addrs = gw.addrs();
    assert_eq!(addrs.len(), 2);
    let mut c = WsClient::connect(&format!("ws://{}/legacy/chat", addrs[1])).await;
    c.send_json(&json!({"method": "auth", "access_token": gw.token(1, "ann")}))
        .await;
    assert_eq!(c.recv_json().await["type"], "authenticated");
    // The default path is gone from the main listener.
    assert_eq!(gw.http("GET", "/ws/chat/", None, None).await.status, 404);
}

async fn graceful_shutdown_sends_close_frames(gw: TestGateway) {
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    c.send_json(&json!({"method": "auth", "access_token": gw.token(1, "ann")}))
        .await;
    assert_eq!(c.recv_json().await["type"], "authenticated");
    let stop = tokio::spawn(gw.stop());
    let close = c.recv_close().await;
    assert_eq!(close.map(|c| c.0), Some(1001));
    stop.await.unwrap();
}
dual_backend_test!(graceful_shutdown_sends_close_frames);

async fn history_survives_a_restart(mut gw: TestGateway) {
    gw.create_user(1, "ann").await;
    gw.create_user(2, "bob").await;
    let (mut c, chat) = open_chat(&gw, 1, "ann", 2).await;
    c.send_json(&json!({"method": "send_message", "args": {"chat": chat, "text": "kept"}}))
        .await;
    c.recv_where("type", "message_created").await;
    gw.restart().await;
    let bob = gw.token(2, "bob");
    let r = get_as(&gw, &format!("/api/rooms/{chat}/messages"), &bob).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["messages"][0]["text"], "kept");
}
dual_backend_test!(history_survives_a_restart);

/// Users looked up by username are cached for a moment; a profile change made through
/// the service is seen at once (the cache is dropped, never served stale).
async fn username_cache_follows_renames(gw: TestGateway) {
    gw.user_token(1, "ann").await;
    let svc = gw.service();
    let ann = svc
        .user_by_username("ann")
        .await
        .expect("lookup")
        .expect("ann exists");
    assert_eq!(ann.id.0, 1);
    // Served from the cache now; rename her through the service.
    assert!(svc.user_by_username("ann").await.expect("lookup").is_some());
    let profile = chat_core::UserProfile {
        id: Some(ann.id),
        username: Some("annie".into()),
        ..Default::default()
    };
    svc.upsert_user(&profile).await.expect("rename");
    assert!(
        svc.user_by_username("ann").await.expect("lookup").is_none(),
        "the old name is gone at once"
    );
    let annie = svc
        .user_by_username("annie")
        .await
        .expect("lookup")
        .expect("the new name is found");
    assert_eq!(annie.id, ann.id);
}
dual_backend_test!(username_cache_follows_renames);
