//! The `chat-gateway` binary as an admin runs it: token, migrate, users, rooms, and
//! `serve` with a real client and a SIGTERM.

use chat_testkit::WsClient;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chat-gateway"))
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "chat-cli-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The binary with `args`, then `--database-url db`.
fn on_db(db: &str, args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.args(args).args(["--database-url", db]);
    cmd
}

async fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().await.expect("the binary runs");
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn admin_commands_prepare_a_database() {
    let dir = temp_dir("admin");
    let db = format!("sqlite://{}", dir.join("gw.db").display());
    run_ok(bin().args(["migrate", "--database-url", &db])).await;
    run_ok(&mut on_db(
        &db,
        &["users", "add", "--id", "5", "--username", "eve"],
    ))
    .await;
    let file = dir.join("users.jsonl");
    std::fs::write(
        &file,
        "{\"id\": 6, \"username\": \"fay\", \"email\": \"f@x.io\"}\n{\"id\": 7, \"username\": \"gus\", \"is_admin\": true}\n",
    )
    .unwrap();
    run_ok(&mut on_db(
        &db,
        &["users", "import", file.to_str().unwrap()],
    ))
    .await;
    // Importing twice is fine (it updates).
    run_ok(&mut on_db(
        &db,
        &["users", "import", file.to_str().unwrap()],
    ))
    .await;
    let out = run_ok(&mut on_db(
        &db,
        &["rooms", "add", "--kind", "direct", "--members", "5,6"],
    ))
    .await;
    assert!(out.contains("direct"), "{out}");
    run_ok(&mut on_db(
        &db,
        &[
            "rooms",
            "add",
            "--kind",
            "project",
            "--project-id",
            "42",
            "--members",
            "5,6,7",
            "--has-business",
        ],
    ))
    .await;
    // Refusals are errors with a message, not panics.
    let out = on_db(
        &db,
        &["rooms", "add", "--kind", "direct", "--members", "5,6"],
    )
    .output()
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
    let out = bin()
        .args(["rooms", "add", "--members", "5,99", "--database-url", &db])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("user 99 does not exist"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn serve_token_chat_and_sigterm() {
    let dir = temp_dir("serve");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let db = format!("sqlite://{}", dir.join("gw.db").display());
    let data = dir.join("data");
    let mut child = bin()
        .args([
            "serve",
            "--listen",
            &listen,
            "--database-url",
            &db,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until it answers.
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the gateway did not start listening");
    // The token command uses the secret `serve` generated in the data dir.
    let token = run_ok(bin().args([
        "token",
        "--user",
        "1",
        "--username",
        "ann",
        "--data-dir",
        data.to_str().unwrap(),
    ]))
    .await
    .trim()
    .to_string();
    let mut c = WsClient::connect(&format!("ws://{listen}/ws/chat/")).await;
    c.send_json(
        &json!({"method": "auth", "access_token": token, "args": {"event_response_key": 1}}),
    )
    .await;
    let v = c.recv_json().await;
    assert_eq!(
        v,
        json!({"type": "authenticated", "data": {"event_response_key": 1}})
    );
    // SQLite is single-node: a second `serve` on the same file is refused at start,
    // and so is a broker; admin commands still work beside the running node.
    let second = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .args(["--data-dir", data.to_str().unwrap()])
        .output()
        .await
        .expect("the binary runs");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another gateway is already serving the SQLite database"),
        "{err}"
    );
    let brokered = bin()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args([
            "--database-url",
            &format!("sqlite://{}", dir.join("other.db").display()),
        ])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--broker", "redis://127.0.0.1:6379"])
        .output()
        .await
        .expect("the binary runs");
    assert!(!brokered.status.success());
    let err = String::from_utf8_lossy(&brokered.stderr);
    assert!(err.contains("SQLite"), "{err}");
    run_ok(&mut on_db(
        &db,
        &["users", "add", "--id", "7", "--username", "gus"],
    ))
    .await;
    // SIGTERM: close frames, exit 0.
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let close = c.recv_close().await;
    assert_eq!(close.map(|c| c.0), Some(1001));
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn serve_refuses_weak_secrets_and_keeps_a_generated_one_private() {
    let dir = temp_dir("secret");
    let db = format!("sqlite://{}", dir.join("gw.db").display());
    for weak in ["change-me", "short-secret"] {
        let out = bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
            .args(["--jwt-secret", weak])
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{weak} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("JWT secret"), "{err}");
    }
    // No secret given: one is generated, readable by its owner only.
    let data = dir.join("data");
    let first = run_ok(
        bin()
            .args(["token", "--user", "1"])
            .arg("--data-dir")
            .arg(&data),
    )
    .await;
    assert!(first.trim().split('.').count() == 3, "{first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Start `serve` with `extra` flags, let it log its start-up, stop it, return stderr.
async fn serve_logs(tag: &str, extra: &[&str]) -> String {
    let dir = temp_dir(tag);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let db = format!("sqlite://{}", dir.join("gw.db").display());
    let child = bin()
        .args(["serve", "--listen", &listen, "--database-url", &db])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test]
async fn logs_have_no_colour_in_a_pipe_and_json_on_request() {
    let text = serve_logs("logtext", &[]).await;
    assert!(text.contains("listening on"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes into a pipe: {text:?}"
    );
    let json = serve_logs("logjson", &["--log-format", "json"]).await;
    let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(v.get(key).is_some(), "{key} in {line}");
        }
    }
    assert!(lines.iter().any(|l| l.contains("listening on")), "{json}");
}
