//! The conformance runner against the re-created legacy stacks of `../shared/peers/`:
//! node-socketio (socketio-pubsub) and django-dcrf (action-request). At
//! `--level legacy` each must pass every case it implements, which is what proves
//! that the legacy level of the specs describes the old servers; the gateway level's
//! table is printed beside it (its failures are the gateway's own choices).
//!
//! Each peer is copied under Cargo's target tmp dir and set up once with its own
//! `setup.sh` (npm and PyPI packages, about half a minute together), then started on
//! a free port with a fresh PostgreSQL database (`peer_conf_node`, `peer_conf_dcrf`).
//! When something it needs is missing — the peers' folder, `node`/`npm`, `python3`,
//! `psql`, PostgreSQL, the package registries — the test says so on stderr and
//! passes; under `CI=true` it fails instead.

use chat_conformance::{run, Config, Dialect, Level, Report};
use serde_json::json;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const SECRET: &str = "chat-conformance-peer-secret-of-32-bytes";

/// Skip loudly, or fail under `CI=true`.
fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        panic!("legacy peer unavailable and CI=true: {why}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let line = format!("SKIPPED (legacy peer unavailable: {why}): {test}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn peers_dir() -> PathBuf {
    std::env::var_os("CHAT_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let beside = PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/peers"
            ));
            // A clone elsewhere (CI's) finds the workplace copy.
            match beside.exists() {
                true => beside,
                false => PathBuf::from("/work/shared/peers"),
            }
        })
}

/// The PostgreSQL server (no database) the peers' databases are made on.
fn pg_server() -> String {
    std::env::var("PEER_PG_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn succeeds(cmd: &mut Command) -> bool {
    matches!(
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().await,
        Ok(s) if s.success()
    )
}

/// The copy of peer `name`, set up; `Err` says what is missing.
async fn prepared(name: &str, tools: &[&str], installed: &str) -> Result<PathBuf, String> {
    let src = peers_dir().join(name);
    if !src.join("setup.sh").is_file() {
        return Err(format!("no peer at {}", src.display()));
    }
    for tool in tools {
        if !succeeds(Command::new(tool).arg("--version")).await {
            return Err(format!("`{tool}` is not installed"));
        }
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("peers")
        .join(name);
    if !dir.join(installed).exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.parent().unwrap_or(&dir)).map_err(|e| e.to_string())?;
        let copied = succeeds(Command::new("cp").arg("-r").arg(&src).arg(&dir)).await;
        if !copied {
            return Err(format!(
                "cannot copy {} to {}",
                src.display(),
                dir.display()
            ));
        }
        let setup = Command::new("./setup.sh")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match tokio::time::timeout(Duration::from_secs(300), setup).await {
            Ok(Ok(out)) if out.status.success() => {}
            Ok(Ok(out)) => {
                let _ = std::fs::remove_dir_all(dir.join(installed));
                return Err(format!(
                    "{name}/setup.sh failed (are the package registries reachable?): {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or_default()
                ));
            }
            Ok(Err(e)) => return Err(format!("{name}/setup.sh: {e}")),
            Err(_) => return Err(format!("{name}/setup.sh took more than 5 minutes")),
        }
    }
    Ok(dir)
}

/// A fresh database `db`; its URL.
async fn fresh_database(db: &str) -> Result<String, String> {
    let admin = format!("{}/postgres", pg_server());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!("CREATE DATABASE {db}"),
    ] {
        if !succeeds(Command::new("psql").args([&admin, "-q", "-c", &sql])).await {
            return Err(format!("`psql {admin} -c \"{sql}\"` failed"));
        }
    }
    Ok(format!("{}/{db}", pg_server()))
}

struct Running {
    _child: Child,
    port: u16,
}

/// Start the peer in `dir` with `./run.sh PORT DATABASE_URL SECRET` and wait for its
/// `/healthz`.
async fn start(dir: &Path, database_url: &str) -> Result<Running, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let log = std::fs::File::create(dir.join("run.log")).map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new("./run.sh")
        .args([&port.to_string(), database_url, SECRET])
        .current_dir(dir)
        .stdout(log)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("run.sh: {e}"))?;
    let health = format!("http://127.0.0.1:{port}/healthz");
    for _ in 0..240 {
        // The HTTP client panics on a refused connection: ask only once the port is open.
        let open = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok();
        if open
            && chat_testkit::http_request("GET", &health, &[], Vec::new())
                .await
                .status
                == 200
        {
            return Ok(Running {
                _child: child,
                port,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "the peer in {} did not answer {health} within a minute (see run.log)",
        dir.display()
    ))
}

/// A simplejwt-shaped access token signed with the peers' secret.
fn token(user_id: i64, username: &str, staff: bool) -> String {
    let now = chrono_now();
    let mut claims = json!({
        "token_type": "access", "exp": now + 3600, "iat": now,
        "jti": format!("{user_id:x}{now:x}"), "user_id": user_id, "username": username,
    });
    if staff {
        claims["is_staff"] = json!(true);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("HS256 signing")
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Both levels against one peer: the legacy level must pass.
async fn both_levels(mut cfg: Config) {
    cfg.level = Level::Gateway;
    let gateway: Report = run(&cfg).await;
    println!("{}", gateway.render());
    cfg.level = Level::Legacy;
    let legacy = run(&cfg).await;
    println!("{}", legacy.render());
    assert!(
        legacy.success(),
        "{} at the legacy level:\n{}",
        legacy.dialect,
        legacy.failures().join("\n")
    );
    assert!(
        legacy.unmatched_gateway_cases().is_empty(),
        "{:?}",
        legacy.unmatched_gateway_cases()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_socketio_passes_the_legacy_level() {
    let dir = match prepared("node-socketio", &["node", "npm", "psql"], "node_modules").await {
        Ok(d) => d,
        Err(why) => return skip(&why),
    };
    let db = match fresh_database("peer_conf_node").await {
        Ok(u) => u,
        Err(why) => return skip(&why),
    };
    let peer = match start(&dir, &db).await {
        Ok(p) => p,
        Err(why) => panic!("{why}"),
    };
    let tokens = vec![token(1, "ann", false), token(2, "bob", false)];
    let cfg = Config::new(
        Dialect::SocketioPubsub,
        &format!("ws://127.0.0.1:{}/ws/", peer.port),
        tokens,
    );
    both_levels(cfg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_dcrf_passes_the_legacy_level() {
    let dir = match prepared("django-dcrf", &["python3", "psql"], ".venv/bin/daphne").await {
        Ok(d) => d,
        Err(why) => return skip(&why),
    };
    let db = match fresh_database("peer_conf_dcrf").await {
        Ok(u) => u,
        Err(why) => return skip(&why),
    };
    let peer = match start(&dir, &db).await {
        Ok(p) => p,
        Err(why) => panic!("{why}"),
    };
    let base = format!("127.0.0.1:{}", peer.port);
    let body = json!({"participants": [1, 2], "has_business": true}).to_string();
    let r = chat_testkit::http_request(
        "POST",
        &format!("http://{base}/api/rooms"),
        &[("content-type".into(), "application/json".into())],
        body.into_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let room = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["pk"].as_i64())
        .expect("the room's pk");
    let tokens = vec![
        token(1, "ann", false),
        token(2, "bob", false),
        token(3, "cid", false),
    ];
    let mut cfg = Config::new(
        Dialect::ActionRequest,
        &format!("ws://{base}/ws/chat/"),
        tokens,
    );
    cfg.admin_token = Some(token(9, "root", true));
    cfg.room = Some(room);
    cfg.origin = Some("http://localhost".into());
    both_levels(cfg).await;
}
