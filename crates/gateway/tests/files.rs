//! Attachments on a real gateway and real sockets, on SQLite and PostgreSQL: how files
//! are served (disposition, sandbox, tokens in URLs, streamed bytes), the per-user
//! upload quota on each upload path, and the sweep of uploads no message took.

use base64::Engine;
mod support;

use chat_testkit::steps::{get_as, upload_raw};
use chat_testkit::{dual_backend_test_with, http_request, HttpResponse, TestGateway, WsClient};
use serde_json::json;
use std::time::Duration;
use support::open_chat;

async fn upload(gw: &TestGateway, token: &str, name: &str, ct: &str, bytes: &[u8]) -> HttpResponse {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("name", name)
        .finish();
    upload_raw(&gw.http_url(&format!("/api/files?{q}")), token, ct, bytes).await
}

async fn uploaded_url(gw: &TestGateway, token: &str, name: &str, ct: &str, bytes: &[u8]) -> String {
    let r = upload(gw, token, name, ct, bytes).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["url"].as_str().expect("a url").to_string()
}

async fn get(url: &str) -> HttpResponse {
    http_request("GET", url, &[], vec![]).await
}

fn header<'a>(r: &'a HttpResponse, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {:?}", r.headers))
}

fn assert_sandboxed(r: &HttpResponse) {
    assert_eq!(header(r, "content-security-policy"), "sandbox");
    assert_eq!(header(r, "x-content-type-options"), "nosniff");
}

/// `/files/{id}/{token}/{name}` split into its parts.
fn parts(url: &str) -> (String, String, String, String) {
    let (base, rest) = url.split_once("/files/").expect("a file URL");
    let mut p = rest.splitn(3, '/');
    let id = p.next().unwrap().to_string();
    let token = p.next().unwrap().to_string();
    let name = p.next().unwrap().to_string();
    (base.to_string(), id, token, name)
}

// ------------------------------------------------------------------ serving

async fn files_are_served_as_downloads_in_a_sandbox(gw: TestGateway) {
    let t = gw.token(1, "ann");
    let cases = [
        ("pic.png", "image/png", "inline"),
        ("pic.jpg", "image/jpeg", "inline"),
        ("anim.gif", "image/gif", "inline"),
        ("pic.webp", "image/webp", "inline"),
        ("doc.pdf", "application/pdf", "inline"),
        ("page.html", "text/html", "attachment"),
        ("page2.html", "text/html; charset=utf-8", "attachment"),
        ("logo.svg", "image/svg+xml", "attachment"),
        ("notes.txt", "text/plain", "attachment"),
        ("data.bin", "application/octet-stream", "attachment"),
    ];
    for (name, ct, kind) in cases {
        let url = uploaded_url(&gw, &t, name, ct, b"<script>alert(1)</script>").await;
        let r = get(&url).await;
        assert_eq!(r.status, 200, "{name}");
        assert_sandboxed(&r);
        assert_eq!(header(&r, "content-type"), ct, "{name}");
        assert_eq!(
            header(&r, "content-disposition"),
            format!("{kind}; filename=\"{name}\""),
            "{name}"
        );
    }
    // A name that is not plain ASCII: a safe quoted fallback, and the exact name in
    // RFC 5987 form.
    let name = "résumé \"final\".txt";
    let url = uploaded_url(&gw, &t, name, "text/plain", b"cv").await;
    let r = get(&url).await;
    assert_eq!(r.status, 200);
    let cd = header(&r, "content-disposition");
    assert!(
        cd.starts_with("attachment; filename=\"r_sum_ _final_.txt\"; filename*=UTF-8''"),
        "{cd}"
    );
    let star = cd.split("filename*=UTF-8''").nth(1).unwrap();
    assert_eq!(
        percent_encoding::percent_decode_str(star)
            .decode_utf8()
            .unwrap(),
        name
    );
    assert_eq!(r.body.as_ref(), b"cv");
}
dual_backend_test_with!(files_are_served_as_downloads_in_a_sandbox, |_| {});

async fn file_urls_need_their_token(gw: TestGateway) {
    let t = gw.token(1, "ann");
    let url = uploaded_url(&gw, &t, "pic.png", "image/png", b"png bytes").await;
    let (base, id, token, name) = parts(&url);
    assert_eq!(token.len(), 32, "128 bits as hex: {url}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    assert_eq!(get(&url).await.status, 200);
    // The old shape, id and name alone.
    let old = get(&format!("{base}/files/{id}/{name}")).await;
    assert_eq!(old.status, 404);
    assert_sandboxed(&old);
    // A wrong token, a shortened one, one of another file; a wrong name.
    let mut flipped = token.clone().into_bytes();
    flipped[0] = if flipped[0] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other = uploaded_url(&gw, &t, "other.png", "image/png", b"other").await;
    let (_, _, other_token, _) = parts(&other);
    for bad in [
        format!("{base}/files/{id}/{flipped}/{name}"),
        format!("{base}/files/{id}/{}/{name}", &token[..31]),
        format!("{base}/files/{id}/{other_token}/{name}"),
        format!("{base}/files/{id}//{name}"),
        format!("{base}/files/{id}/{token}/other.png"),
        format!("{base}/files/{id}/{token}"),
    ] {
        let r = get(&bad).await;
        assert_eq!(r.status, 404, "{bad}");
        assert_sandboxed(&r);
    }
    // Two uploads of the same bytes share a blob, not a URL.
    let again = uploaded_url(&gw, &t, "pic.png", "image/png", b"png bytes").await;
    assert_ne!(parts(&again).2, token);
    // Every URL the gateway builds has the token: REST history after a chat-socket
    // message with a file.
    gw.create_user(2, "bob").await;
    let (mut c, chat) = open_chat(&gw, 1, "ann", 2).await;
    c.send_json(&json!({"method": "send_message", "args": {"chat": chat, "text": "f", "files": [{"name": "hi.txt", "data": "aGk="}]}}))
        .await;
    let sent = c.recv_where("type", "message_created").await;
    let file = sent["data"]["message"]["attached_files"][0]["file"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(parts(&file).2.len(), 32, "{file}");
    assert_eq!(get(&file).await.body.as_ref(), b"hi");
    let bob = gw.token(2, "bob");
    let h = get_as(&gw, &format!("/api/rooms/{chat}/messages"), &bob).await;
    assert_eq!(h.json()["messages"][0]["attachments"][0]["url"], file);
}
dual_backend_test_with!(file_urls_need_their_token, |_| {});

async fn large_files_stream_whole(gw: TestGateway) {
    let t = gw.token(1, "ann");
    // Several disk (64 KiB) and database (256 KiB) chunks, and a ragged end.
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 7)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let url = uploaded_url(&gw, &t, "big.bin", "application/octet-stream", &bytes).await;
    let r = get(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "content-length"), bytes.len().to_string());
    assert!(r.body.as_ref() == bytes.as_slice(), "the bytes differ");
    let head = http_request("HEAD", &url, &[], vec![]).await;
    assert_eq!(head.status, 200);
    assert_eq!(header(&head, "content-length"), bytes.len().to_string());
    assert!(head.body.is_empty());
    assert_sandboxed(&head);
    // Many downloads at once all get every byte.
    let mut all = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        all.push(tokio::spawn(async move { get(&url).await.body }));
    }
    for d in all {
        assert!(d.await.unwrap().as_ref() == bytes.as_slice());
    }
}
dual_backend_test_with!(large_files_stream_whole, |c| c
    .limits
    .max_attachment_bytes =
    8 * 1024 * 1024);

// ------------------------------------------------------------------ quota

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn uploads_count_against_a_per_user_quota(gw: TestGateway) {
    gw.create_user(1, "ann").await;
    gw.create_user(2, "bob").await;
    let ann = gw.token(1, "ann");
    let bob = gw.token(2, "bob");
    let first = upload(&gw, &ann, "a.bin", "application/octet-stream", &[1; 600]).await;
    assert_eq!(first.status, 201);
    let over = upload(&gw, &ann, "b.bin", "application/octet-stream", &[2; 600]).await;
    assert_eq!(over.status, 413, "{}", over.text());
    assert_eq!(over.json()["error"], "quota_exceeded");
    let detail = over.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("quota") && detail.contains("600 of 1000"),
        "{detail}"
    );
    // Up to the quota exactly is fine; another user has a quota of their own.
    assert_eq!(
        upload(&gw, &ann, "c.bin", "application/octet-stream", &[3; 400])
            .await
            .status,
        201
    );
    assert_eq!(
        upload(&gw, &bob, "d.bin", "application/octet-stream", &[4; 600])
            .await
            .status,
        201
    );
    // Inline files on the chat socket: its error event, and nothing stored.
    let (mut c, chat) = open_chat(&gw, 1, "ann", 2).await;
    c.send_json(&json!({"method": "send_message", "args": {"chat": chat, "text": "f", "files": [{"name": "e.txt", "data": b64(b"x")}], "event_response_key": 7}}))
        .await;
    let err = c.recv_where("type", "error").await;
    assert_eq!(err["data"]["type"], "field_error", "{err}");
    assert!(
        err["data"]["detail"].as_str().unwrap().contains("quota"),
        "{err}"
    );
    assert_eq!(err["data"]["event_response_key"], 7);
    let h = get_as(&gw, &format!("/api/rooms/{chat}/messages"), &bob).await;
    assert_eq!(h.json()["messages"], json!([]));
    // Bob still can, through the chat socket too.
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    c.send_json(&json!({"method": "auth", "access_token": bob}))
        .await;
    assert_eq!(c.recv_json().await["type"], "authenticated");
    c.send_json(&json!({"method": "send_message", "args": {"chat": chat, "text": "f", "files": [{"name": "e.txt", "data": b64(&[5; 300])}]}}))
        .await;
    c.recv_where("type", "message_created").await;
}
dual_backend_test_with!(uploads_count_against_a_per_user_quota, |c| c
    .max_upload_bytes_per_user =
    1000);

// ------------------------------------------------------------------ expiry

async fn unattached_uploads_expire(gw: TestGateway) {
    gw.create_user(1, "ann").await;
    gw.create_user(2, "bob").await;
    let ann = gw.token(1, "ann");
    let svc = gw.service();
    let blob_of = |url: &str| {
        let id: i64 = parts(url).1.parse().unwrap();
        let svc = svc.clone();
        async move {
            svc.attachment(chat_core::AttachmentId(id))
                .await
                .unwrap()
                .map(|a| a.blob_key)
        }
    };
    let lonely = uploaded_url(&gw, &ann, "lonely.txt", "text/plain", b"nobody takes me").await;
    let lonely_blob = blob_of(&lonely).await.unwrap();
    let shared = uploaded_url(&gw, &ann, "shared.txt", "text/plain", b"shared bytes").await;
    // The same bytes, attached to a message at once (inline files on the chat socket).
    let (mut c, chat) = open_chat(&gw, 1, "ann", 2).await;
    c.send_json(
        &json!({"method": "send_message", "args": {"chat": chat, "text": "f", "files": [
        {"name": "shared.txt", "data": b64(b"shared bytes")},
        {"name": "kept.txt", "data": b64(b"kept bytes")}]}}),
    )
    .await;
    let sent = c.recv_where("type", "message_created").await;
    let files: Vec<String> = sent["data"]["message"]["attached_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .collect();
    let shared_blob = blob_of(&shared).await.unwrap();
    assert_eq!(blob_of(&files[0]).await, Some(shared_blob.clone()));

    // The sweep runs every second with a 1 s TTL.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while get(&lonely).await.status != 404 || get(&shared).await.status != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "unattached uploads were not swept"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(blob_of(&lonely).await, None);
    assert_eq!(blob_of(&shared).await, None);
    // The lonely bytes are gone; the shared ones stay for the message that holds them.
    assert!(svc.files().open(&lonely_blob).await.unwrap().is_none());
    assert!(svc.files().open(&shared_blob).await.unwrap().is_some());
    assert_eq!(get(&files[0]).await.body.as_ref(), b"shared bytes");
    assert_eq!(get(&files[1]).await.body.as_ref(), b"kept bytes");
    // The same bytes can come again: a new blob.
    let again = uploaded_url(&gw, &ann, "lonely.txt", "text/plain", b"nobody takes me").await;
    assert_eq!(get(&again).await.body.as_ref(), b"nobody takes me");
}
dual_backend_test_with!(unattached_uploads_expire, |c| {
    c.unattached_upload_ttl = std::time::Duration::from_secs(1);
});

async fn the_sweep_keeps_recent_and_attached_uploads(gw: TestGateway) {
    let ann = gw.token(1, "ann");
    let url = uploaded_url(&gw, &ann, "fresh.txt", "text/plain", b"fresh").await;
    assert_eq!(gw.service().sweep_unattached_uploads().await.unwrap(), 0);
    assert_eq!(get(&url).await.body.as_ref(), b"fresh");
}
dual_backend_test_with!(the_sweep_keeps_recent_and_attached_uploads, |_| {});
