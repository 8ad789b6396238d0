//! `chat-gateway import` and `export`, run as the binary against a real SQLite file
//! and a real PostgreSQL schema: import, idempotence, resume after `kill -9`, bad
//! lines, key mapping, the export round trip, and the worked examples of the README
//! (the legacy stacks' tables turned into the format by SQL).

use chat_store::testing::{postgres_schema, sqlite_temp, TestDb};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chat-gateway"))
}

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "chat-import-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn import(db: &str, dir: &Path, file: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("import")
        .arg(file)
        .args(["--database-url", db, "--quiet"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .output()
        .expect("run import")
}

fn export(db: &str, dir: &Path, tag: &str) -> String {
    let out = bin()
        .args(["export", "--database-url", db])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--files-dir")
        .arg(dir.join(format!("files-{tag}")))
        .output()
        .expect("run export");
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 export")
}

/// The export with what differs between two databases by nature left out: the
/// attachment folder of each export and the times the import itself chose.
fn comparable(export: &str) -> Vec<serde_json::Value> {
    export
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("export line is JSON");
            if let Some(atts) = v.get_mut("attachments").and_then(|a| a.as_array_mut()) {
                for a in atts {
                    let p = a["path"].as_str().unwrap_or_default();
                    let key = Path::new(p)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned());
                    a["path"] = key.unwrap_or_default().into();
                }
            }
            v
        })
        .collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A history with every record type; `messages` messages over two rooms.
fn sample(dir: &Path, messages: usize) -> PathBuf {
    std::fs::write(dir.join("photo.png"), b"\x89PNG fake bytes").expect("attachment");
    let path = dir.join("history.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    let lines = [
        r#"{"type":"user","id":1,"username":"alice","email":"a@example.com","is_admin":true,"created_at":"2021-03-01T10:00:00Z"}"#,
        r#"{"type":"user","id":2,"username":"bob","first_name":"Bob","created_at":"2021-03-01T10:00:00Z"}"#,
        r#"{"type":"user","id":"c-3","username":"carol","created_at":"2021-03-01T10:00:00Z"}"#,
        r#"{"type":"room","id":10,"kind":"direct","members":[1,2],"created_at":"2021-03-02T10:00:00Z"}"#,
        r#"{"type":"room","id":11,"kind":"project","project_id":77,"title":"Project","has_business":true,"created_by":1,"members":[1],"created_at":"2021-03-02T10:00:00Z"}"#,
        r#"{"type":"member","room":11,"user":"c-3","joined_at":"2021-03-03T10:00:00Z"}"#,
        r#"{"type":"member","room":11,"user":2,"joined_at":"2021-03-03T10:00:00Z"}"#,
        r#"{"type":"message","id":1000,"room":10,"author":1,"text":"first","created_at":"2021-03-04T10:00:00Z","attachments":[{"path":"photo.png"}]}"#,
        r#"{"type":"message","id":1001,"room":10,"author":2,"text":"reply","reply_to":1000,"created_at":"2021-03-04T10:01:00Z","edited_at":"2021-03-04T10:02:00Z"}"#,
        r#"{"type":"message","id":1002,"room":11,"author":"c-3","kind":"img","text":"http://old.example/i.png","created_at":"2021-03-04T10:03:00Z","deleted_at":"2021-03-05T10:00:00Z"}"#,
    ];
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
    for i in 0..messages {
        let (room, author) = if i % 2 == 0 {
            (10, 1 + (i / 2) % 2)
        } else {
            (11, 1)
        };
        writeln!(
            f,
            r#"{{"type":"message","id":{},"room":{room},"author":{author},"text":"message {i}","created_at":{}}}"#,
            2000 + i,
            1_620_000_000 + i
        )
        .expect("write");
    }
    writeln!(f, r#"{{"type":"read","room":10,"user":2,"message":1001}}"#).expect("write");
    writeln!(
        f,
        r#"{{"type":"read","room":11,"user":"c-3","message":1002}}"#
    )
    .expect("write");
    f.flush().expect("flush");
    path
}

async fn with_backends(test: impl AsyncFn(TestDb, &'static str)) {
    test(sqlite_temp().await, "sqlite").await;
    if let Some(pg) = postgres_schema().await {
        test(pg, "postgres").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn import_is_idempotent_and_export_round_trips() {
    with_backends(async |db, backend| {
        let dir = tmp_dir(&format!("round-{backend}"));
        let file = sample(&dir, 40);
        let first = import(
            &db.url,
            &dir,
            &file,
            &["--map", dir.join("map.jsonl").to_str().unwrap_or_default()],
        );
        assert!(first.status.success(), "{backend}: {}", stderr(&first));
        let summary = stdout(&first);
        assert!(
            summary.contains("users: 3 imported, 0 already there"),
            "{summary}"
        );
        assert!(summary.contains("rooms: 2 imported"), "{summary}");
        assert!(summary.contains("members: 2 imported"), "{summary}");
        assert!(summary.contains("messages: 43 imported"), "{summary}");
        assert!(summary.contains("reads: 2 imported"), "{summary}");
        let before = export(&db.url, &dir, "a");

        // Keys whose ids were free keep them; the text key got an id of its own.
        let map = std::fs::read_to_string(dir.join("map.jsonl")).expect("map written");
        assert!(map.contains(r#"{"type":"user","key":"1","id":1}"#), "{map}");
        assert!(
            map.contains(r#"{"type":"message","key":"1000","id":1000}"#),
            "{map}"
        );
        assert!(map.contains(r#""key":"c-3","id":3"#), "{map}");
        assert_eq!(map.lines().count(), 3 + 2 + 43, "{map}");

        // The same file again changes nothing.
        let again = import(&db.url, &dir, &file, &[]);
        assert!(again.status.success(), "{}", stderr(&again));
        let summary = stdout(&again);
        assert!(
            summary.contains("messages: 0 imported, 43 already there"),
            "{summary}"
        );
        assert!(
            summary.contains("reads: 0 imported, 2 already there"),
            "{summary}"
        );
        assert_eq!(
            export(&db.url, &dir, "b"),
            before.replace("files-a", "files-b")
        );

        // What the export holds: the deleted message as a tombstone, the reply, the
        // attachment's bytes, the read marks.
        assert!(
            before.contains(r#""deleted_at":"2021-03-05T10:00:00.000000Z""#),
            "{before}"
        );
        assert!(before.contains(r#""reply_to":1000"#), "{before}");
        assert!(before.contains(r#""name":"photo.png""#), "{before}");
        assert!(before.contains(r#""content_type":"image/png""#), "{before}");
        assert!(
            before.contains(r#"{"message":1001,"room":10,"type":"read","user":2}"#),
            "{before}"
        );
        assert!(
            !before.contains("old.example"),
            "a deleted message keeps no text: {before}"
        );

        // Export, then import into an empty database: the same data.
        let exported = dir.join("export.jsonl");
        std::fs::write(&exported, &before).expect("write export");
        let fresh = sqlite_temp().await;
        let into = import(&fresh.url, &dir.join("second"), &exported, &[]);
        assert!(into.status.success(), "{}", stderr(&into));
        let after = export(&fresh.url, &dir.join("second"), "c");
        let (mut a, mut b) = (comparable(&before), comparable(&after));
        // The import stamps users and rooms it is given no time for with its own.
        for v in a.iter_mut().chain(b.iter_mut()) {
            if v["type"] == "user" || v["type"] == "room" || v["type"] == "member" {
                v.as_object_mut()
                    .map(|o| o.remove("created_at").or(o.remove("joined_at")));
            }
        }
        assert_eq!(a, b, "{backend}: export → import → export differs");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_lines_are_reported_by_number_and_the_rest_imported() {
    with_backends(async |db, backend| {
        let dir = tmp_dir(&format!("bad-{backend}"));
        let file = dir.join("bad.jsonl");
        std::fs::write(
            &file,
            [
                r#"{"type":"user","id":1,"username":"alice"}"#,
                r#"{"type":"user","id":2,"username":"bob"}"#,
                r#"this is not JSON"#,
                r#"{"type":"room","id":5,"kind":"direct","members":[1]}"#,
                r#"{"type":"room","id":6,"kind":"group","members":[1,2]}"#,
                r#"{"type":"message","id":7,"room":6,"author":1,"text":"ok","created_at":"2022-01-01T00:00:00Z"}"#,
                r#"{"type":"message","id":8,"room":404,"author":1,"text":"no room","created_at":"2022-01-01T00:00:00Z"}"#,
                r#"{"type":"message","id":9,"room":6,"author":1,"text":"no time"}"#,
                r#"{"type":"message","id":10,"room":6,"author":1,"reply_to":999,"text":"x","created_at":"2022-01-01T00:00:00Z"}"#,
                r#"{"type":"nonsense","id":1}"#,
                r#"{"type":"message","id":11,"room":6,"author":2,"text":"also ok","created_at":"2022-01-01T00:00:01Z","attachments":[{"url":"ftp://example/x"}]}"#,
                r#"{"type":"message","id":12,"room":6,"author":2,"text":"fine","created_at":"2022-01-01T00:00:02Z"}"#,
                r#"{"type":"read","room":6,"user":2,"message":12}"#,
                "",
            ]
            .join("\n"),
        )
        .expect("write");
        let out = import(&db.url, &dir, &file, &[]);
        assert_eq!(out.status.code(), Some(3), "{backend}: {}", stderr(&out));
        let err = stderr(&out);
        for line in [3, 4, 7, 8, 9, 10, 11] {
            assert!(err.contains(&format!("line {line}: ")), "{backend}: line {line} not reported: {err}");
        }
        for line in [1, 2, 5, 6, 12, 13] {
            assert!(!err.contains(&format!("line {line}: ")), "{backend}: line {line} reported: {err}");
        }
        assert!(err.contains("only http and https"), "{err}");
        assert!(stdout(&out).contains("refused lines: 7"), "{}", stdout(&out));
        let ex = export(&db.url, &dir, "a");
        assert!(ex.contains(r#""text":"ok""#) && ex.contains(r#""text":"fine""#), "{ex}");
        assert!(!ex.contains("no room") && !ex.contains("no time"), "{ex}");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn taken_ids_are_mapped_and_references_follow() {
    with_backends(async |db, backend| {
        let dir = tmp_dir(&format!("map-{backend}"));
        // A first system takes ids 1, 2, 10 and 100.
        let a = dir.join("a.jsonl");
        std::fs::write(
            &a,
            [
                r#"{"type":"user","id":1,"username":"alice"}"#,
                r#"{"type":"user","id":2,"username":"bob"}"#,
                r#"{"type":"room","id":10,"kind":"group","members":[1,2]}"#,
                r#"{"type":"message","id":100,"room":10,"author":1,"text":"from a","created_at":"2022-01-01T00:00:00Z"}"#,
            ]
            .join("\n"),
        )
        .expect("write");
        assert!(import(&db.url, &dir, &a, &["--source", "a"]).status.success());
        // A second one uses the same ids for other people and rooms.
        let b = dir.join("b.jsonl");
        std::fs::write(
            &b,
            [
                r#"{"type":"user","id":1,"username":"zed"}"#,
                r#"{"type":"user","id":2,"username":"bob"}"#,
                r#"{"type":"room","id":10,"kind":"group","members":[1,2]}"#,
                r#"{"type":"message","id":100,"room":10,"author":1,"text":"from b","created_at":"2022-01-01T00:00:00Z"}"#,
                r#"{"type":"message","id":101,"room":10,"author":2,"reply_to":100,"text":"reply in b","created_at":"2022-01-01T00:00:01Z"}"#,
            ]
            .join("\n"),
        )
        .expect("write");
        let map = dir.join("b-map.jsonl");
        let out = import(&db.url, &dir, &b, &["--source", "b", "--map", map.to_str().unwrap_or_default()]);
        assert!(out.status.success(), "{backend}: {}", stderr(&out));
        let map: Vec<serde_json::Value> = std::fs::read_to_string(&map)
            .expect("map")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let id = |kind: &str, key: &str| {
            map.iter()
                .find(|v| v["type"] == kind && v["key"] == key)
                .and_then(|v| v["id"].as_i64())
                .unwrap_or_else(|| panic!("{kind} {key} not in the map: {map:?}"))
        };
        let zed = id("user", "1");
        assert_ne!(zed, 1, "id 1 is alice's");
        assert_eq!(id("user", "2"), 2, "bob is the same user (same username)");
        let room = id("room", "10");
        assert_ne!(room, 10);
        let m100 = id("message", "100");
        assert_ne!(m100, 100);
        assert_eq!(id("message", "101"), 101, "a free id is kept");
        let ex = export(&db.url, &dir, "x");
        let lines = comparable(&ex);
        let msg = |id: i64| lines.iter().find(|v| v["type"] == "message" && v["id"] == id).cloned();
        let from_b = msg(m100).expect("b's message 100");
        assert_eq!(from_b["room"], room);
        assert_eq!(from_b["author"], zed);
        assert_eq!(msg(101).expect("b's 101")["reply_to"], m100);
        assert_eq!(msg(100).expect("a's 100")["text"], "from a");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_import_resumes_to_the_same_result() {
    with_backends(async |db, backend| {
        let dir = tmp_dir(&format!("kill-{backend}"));
        let file = sample(&dir, 60_000);
        let mut child = bin()
            .arg("import")
            .arg(&file)
            .args(["--database-url", &db.url, "--quiet", "--batch", "500"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn import");
        // Kill it (SIGKILL) once some messages are in, before it is done.
        let started = std::time::Instant::now();
        let killed_midway;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("{backend}: the import ended ({status}) before it could be killed");
            }
            let mapped = count_keys(&db.url).await;
            if mapped > 2_000 {
                child.kill().expect("kill -9");
                let _ = child.wait();
                let now = count_keys(&db.url).await;
                killed_midway = now < 60_003;
                break;
            }
            assert!(started.elapsed().as_secs() < 240, "{backend}: no progress");
        }
        assert!(
            killed_midway,
            "{backend}: the import finished before the kill"
        );
        let resumed = import(&db.url, &dir, &file, &[]);
        assert!(resumed.status.success(), "{backend}: {}", stderr(&resumed));
        let summary = stdout(&resumed);
        assert!(!summary.contains("messages: 0 imported"), "{summary}");
        let after_kill = export(&db.url, &dir, "a");

        let clean = sqlite_temp().await;
        let once = import(&clean.url, &dir.join("second"), &file, &[]);
        assert!(once.status.success(), "{}", stderr(&once));
        let reference = export(&clean.url, &dir.join("second"), "b");
        let strip = |s: &str| {
            let mut v = comparable(s);
            for x in &mut v {
                if x["type"] == "user" || x["type"] == "room" || x["type"] == "member" {
                    x.as_object_mut()
                        .map(|o| o.remove("created_at").or(o.remove("joined_at")));
                }
            }
            v
        };
        let (a, b) = (strip(&after_kill), strip(&reference));
        assert_eq!(
            a.len(),
            b.len(),
            "{backend}: resumed import has a different size"
        );
        assert!(
            a == b,
            "{backend}: the resumed import differs from a clean one"
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

/// Message keys imported so far (0 while the table does not exist yet).
async fn count_keys(url: &str) -> i64 {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let out = Command::new("sqlite3")
            .arg(path)
            .arg("SELECT count(*) FROM chat_import_keys")
            .output();
        if let Ok(o) = out {
            return String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
        }
        return count_with_store(url).await;
    }
    count_with_store(url).await
}

async fn count_with_store(url: &str) -> i64 {
    let Ok(importer) = chat_store::import::open_importer(url, "legacy").await else {
        return 0;
    };
    importer
        .mapping(chat_store::import::KeyKind::Message, None, 1_000_000)
        .await
        .map_or(0, |v| v.len() as i64)
}

/// `../shared/peers/` beside the repository, where the legacy stacks are; `None`
/// (after a loud SKIPPED line) when it or `psql` is missing, except under CI=true.
fn peers_and_psql(test: &str) -> Option<PathBuf> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers");
    // A clone elsewhere (CI's) finds the workplace copy, or CHAT_PEERS_DIR.
    let peers = match std::env::var_os("CHAT_PEERS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None if beside.exists() => beside,
        None => PathBuf::from("/work/shared/peers"),
    };
    let psql = Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let why = if !peers.join("node-socketio/schema.sql").exists() {
        format!("{} not found", peers.display())
    } else if !psql {
        "psql not installed".to_owned()
    } else {
        return Some(peers);
    };
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        panic!("{test}: {why}, and CI=true");
    }
    let _ = std::io::stderr().write_all(format!("SKIPPED ({why}): {test}\n").as_bytes());
    None
}

fn psql(url: &str, args: &[&str]) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-At"])
        .args(args)
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Serves `body` as image/png to every request, on 127.0.0.1.
async fn one_file_server(body: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_sql_turns_the_legacy_stacks_tables_into_an_import() {
    let test = "the_readme_sql_turns_the_legacy_stacks_tables_into_an_import";
    let Some(peers) = peers_and_psql(test) else {
        return;
    };
    let Some(legacy) = postgres_schema().await else {
        return;
    };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/import");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README");
    for f in ["node-chats.sql", "dcrf-chat.sql"] {
        let sql = std::fs::read_to_string(examples.join(f)).expect("example SQL");
        assert!(
            readme.contains(sql.trim()),
            "README.md must show examples/import/{f} as it is"
        );
    }
    // The legacy schemas, from the peers' own files (the Node stack's schema.sql) and
    // the SQL equivalent of the Django migrations (examples/import/dcrf-schema.sql).
    let node_schema = peers.join("node-socketio/schema.sql");
    let dcrf_schema = examples.join("dcrf-schema.sql");
    psql(
        &legacy.url,
        &[
            "-f",
            node_schema.to_str().unwrap_or_default(),
            "-f",
            dcrf_schema.to_str().unwrap_or_default(),
        ],
    );
    let png: &'static [u8] = b"\x89PNG\r\n\x1a\n legacy media";
    let server = one_file_server(png).await;
    psql(
        &legacy.url,
        &[
            "-c",
            &format!(
                "INSERT INTO users VALUES ('alice', false), ('bob', true); \
                 INSERT INTO chats (sender, recipient, message, has_read, media, created_at) VALUES \
                   ('alice', 'bob', 'hi bob', true, '[\"http://{server}/media/cat.png\"]', '2023-05-01T10:00:00Z'), \
                   ('bob', 'alice', 'hi alice', false, '[]', '2023-05-01T10:01:00Z'), \
                   ('alice', 'bob', 'unread', false, '[]', '2023-05-01T10:02:00Z'); \
                 INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) VALUES \
                   (7, '', false, 'ann', 'Ann', 'Ames', 'ann@example.com', true, true, '2022-01-01T00:00:00Z'), \
                   (8, '', false, 'ben', 'Ben', 'Bell', 'ben@example.com', false, true, '2022-01-01T00:00:00Z'); \
                 INSERT INTO chat_brand (id, name, user_id) VALUES (1, 'Ann Co', 7), (2, 'Ben Inc', 8); \
                 INSERT INTO chat_room (id, has_business) VALUES (3, true); \
                 INSERT INTO chat_room_participants (room_id, brand_id) VALUES (3, 1), (3, 2); \
                 INSERT INTO chat_message (id, text, created_at, room_id, user_id) VALUES \
                   (50, 'hello ben', '2023-06-01T09:00:00Z', 3, 7), (51, 'hello ann', '2023-06-01T09:01:00Z', 3, 8);"
            ),
        ],
    );
    let dir = tmp_dir("peers");
    let gateway = sqlite_temp().await;
    for (sql, source) in [("node-chats.sql", "node"), ("dcrf-chat.sql", "dcrf")] {
        let lines = psql(
            &legacy.url,
            &["-f", examples.join(sql).to_str().unwrap_or_default()],
        );
        let file = dir.join(format!("{source}.jsonl"));
        std::fs::write(&file, lines).expect("write");
        let out = import(&gateway.url, &dir, &file, &["--source", source]);
        assert!(
            out.status.success(),
            "{source}: {}\n{}",
            stderr(&out),
            stdout(&out)
        );
    }
    let store = chat_store::connect(&gateway.url, chat_store::StoreOptions::default())
        .await
        .expect("open the gateway's store");
    // The Node stack: a direct room of the pair, its history, the media, the read mark.
    let alice = store
        .user_by_username("alice")
        .await
        .expect("q")
        .expect("alice");
    let bob = store
        .user_by_username("bob")
        .await
        .expect("q")
        .expect("bob");
    let kind = chat_core::RoomKind::direct(alice.id, bob.id).expect("two users");
    let room = store
        .room_by_kind(&kind)
        .await
        .expect("q")
        .expect("the direct room");
    let history = store.history(room.id, None, 10).await.expect("history");
    let texts: Vec<&str> = history.iter().rev().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hi bob", "hi alice", "unread"]);
    let first = history.last().expect("oldest");
    assert_eq!(first.created_at.to_rfc3339(), "2023-05-01T10:00:00+00:00");
    assert_eq!(first.attachments.len(), 1);
    assert_eq!(first.attachments[0].name, "cat.png");
    assert_eq!(first.attachments[0].content_type, "image/png");
    assert_eq!(first.attachments[0].size, png.len() as i64);
    let mark = store
        .member(room.id, bob.id)
        .await
        .expect("q")
        .expect("bob is a member");
    assert_eq!(mark.last_read, Some(first.id));
    let unread = store
        .unread_count(room.id, bob.id, mark.last_read)
        .await
        .expect("count");
    assert_eq!(unread.count, 1, "bob has not read 'unread'");
    // The DCRF stack: users keep their ids, the brand is the display name, the room
    // and its messages keep theirs.
    let ann = store
        .user(chat_core::UserId(7))
        .await
        .expect("q")
        .expect("user 7");
    assert_eq!(
        (
            ann.username.as_str(),
            ann.display_name.as_str(),
            ann.is_admin
        ),
        ("ann", "Ann Co", true)
    );
    let dcrf_room = store
        .room(chat_core::RoomId(3))
        .await
        .expect("q")
        .expect("room 3");
    assert!(dcrf_room.has_business);
    let members: Vec<i64> = store
        .members(dcrf_room.id)
        .await
        .expect("q")
        .iter()
        .map(|m| m.user_id.0)
        .collect();
    assert_eq!(members, [7, 8]);
    let h = store
        .history(dcrf_room.id, None, 10)
        .await
        .expect("history");
    let got: Vec<(i64, i64, &str)> = h
        .iter()
        .rev()
        .map(|m| (m.id.0, m.author_id.0, m.text.as_str()))
        .collect();
    assert_eq!(got, [(50, 7, "hello ben"), (51, 8, "hello ann")]);
    let _ = std::fs::remove_dir_all(&dir);
}
