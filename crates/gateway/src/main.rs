//! `chat-gateway`: see `chat-gateway --help`.

use chat_core::{RoomId, RoomKind, UserId, UserProfile};
use chat_gateway::cli::{load_jwt, Cli, Command, LogFormat, RoomsCommand, UsersCommand};
use chat_gateway::rest::UserInput;
use chat_gateway::TokenSpec;
use clap::Parser;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// jemalloc rather than the system allocator, for idle memory. Every connection is
/// set up by short-lived allocations (hyper's 8 KiB request buffer, the handshake's
/// header copies, the sign-up's tasks) that die interleaved with the connection's
/// long-lived state; while a burst of connects waits on user sign-ups thousands of
/// them are alive at once. glibc keeps the freed pages of that peak resident (its
/// arenas only give memory back from the top), which was over a third of the RSS per
/// idle connection; jemalloc keeps small objects of a size together and hands pages
/// that fall empty back to the kernel. See IDLE-NOTES.md for the measurements.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (overridable at run time with `_RJEM_MALLOC_CONF`):
/// a background thread purges freed pages even while the server is idle (otherwise
/// jemalloc purges only on later allocation activity), freed pages go back to the
/// kernel after about a second (default 10 s), and without a second "muzzy" stage.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 60] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs what it does; one-shot admin commands only warnings, so their
    // output (a token, say) stays easy to capture.
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = chat_gateway::cli::log_filter(std::env::var("RUST_LOG").ok(), default_level);
    let format = match &cli.command {
        Command::Serve(args) => args.log_format,
        _ => LogFormat::Text,
    };
    // Colour escapes only for a person at a terminal, never into a file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        LogFormat::Text => logs.with_ansi(ansi).init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit code of an import that refused some lines (and imported the rest).
const EXIT_LINES_REFUSED: u8 = 3;

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Import(a) => {
            let counts = chat_gateway::transfer::import(chat_gateway::transfer::ImportOptions {
                file: (a.file != "-").then(|| std::path::PathBuf::from(&a.file)),
                database_url: a.db.database_url,
                data_dir: a.data_dir,
                source: a.source,
                map: a.map,
                quiet: a.quiet,
                batch: a.batch,
                max_attachment_bytes: a.max_attachment_bytes as u64,
            })
            .await?;
            println!("{counts}");
            Ok(if counts.refused > 0 {
                ExitCode::from(EXIT_LINES_REFUSED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Export(a) => {
            let done = chat_gateway::transfer::export(chat_gateway::transfer::ExportOptions {
                database_url: a.db.database_url,
                data_dir: a.data_dir,
                output: a.output,
                files_dir: a.files_dir,
            })
            .await?;
            let [u, r, m, msg, rd] = done.counts;
            eprintln!(
                "exported {u} users, {r} rooms, {m} members, {msg} messages, {rd} read marks"
            );
            if done.attachments_left_out > 0 {
                eprintln!(
                    "{} attachments left out: give --files-dir to export their bytes",
                    done.attachments_left_out
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        other => run_admin(other).await.map(|()| ExitCode::SUCCESS),
    }
}

async fn run_admin(command: Command) -> Result<(), String> {
    match command {
        Command::Import(_) | Command::Export(_) => Err("handled by run".into()),
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(db) => {
            chat_store::migrate(&db.database_url)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "migrations applied to {}",
                chat_store::describe_url(&db.database_url)
            );
            Ok(())
        }
        Command::Token(t) => {
            let jwt = load_jwt(&t.keys, true)?;
            if !jwt.can_mint() {
                return Err("tokens can only be minted with an HS256 secret (--jwt-secret)".into());
            }
            if t.user <= 0 {
                return Err("--user must be a positive integer".into());
            }
            let token = jwt
                .mint(&TokenSpec {
                    user_id: t.user,
                    username: t.username,
                    admin: t.admin,
                    ttl_secs: t.ttl.max(1),
                })
                .ok_or("could not sign the token")?;
            println!("{token}");
            Ok(())
        }
        Command::Users(UsersCommand::Add(a)) => {
            let store = open(&a.db.database_url).await?;
            let user = store
                .create_user(&UserProfile {
                    id: a.id.map(UserId),
                    username: a.username,
                    external_id: a.external_id,
                    email: a.email,
                    first_name: a.first_name,
                    last_name: a.last_name,
                    is_admin: Some(a.admin),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("created user {} ({})", user.id, user.username);
            Ok(())
        }
        Command::Users(UsersCommand::Import { file, db }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let rows = parse_user_file(&text)?;
            let store = open(&db.database_url).await?;
            for (i, row) in rows.into_iter().enumerate() {
                let profile = row.into_profile();
                store
                    .upsert_user(&profile)
                    .await
                    .map_err(|e| format!("user #{} of {}: {e}", i + 1, file.display()))?;
            }
            println!("imported users from {}", file.display());
            Ok(())
        }
        Command::Rooms(RoomsCommand::Add(a)) => {
            let store = open(&a.db.database_url).await?;
            let members: Vec<UserId> = a.members.iter().copied().map(UserId).collect();
            let found = store.users(&members).await.map_err(|e| e.to_string())?;
            if let Some(missing) = members.iter().find(|m| !found.iter().any(|u| u.id == **m)) {
                return Err(format!(
                    "user {missing} does not exist (create it with `users add`)"
                ));
            }
            let kind = match (a.kind.as_str(), a.project_id) {
                ("direct", None) => match members.as_slice() {
                    [x, y] => {
                        RoomKind::direct(*x, *y).ok_or("a direct room needs two different users")?
                    }
                    _ => return Err("a direct room has exactly two --members".into()),
                },
                ("group", None) => RoomKind::Group,
                ("project", Some(project_id)) => RoomKind::Project { project_id },
                ("project", None) => return Err("a project room needs --project-id".into()),
                (_, Some(_)) => return Err("--project-id is only for --kind project".into()),
                (other, None) => {
                    return Err(format!("unknown --kind `{other}` (direct, group, project)"))
                }
            };
            let room = store
                .create_room(&chat_core::store::NewRoom {
                    id: a.id.map(RoomId),
                    kind,
                    title: a.title,
                    has_business: a.has_business,
                    created_by: None,
                    members,
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("created room {} ({})", room.id, room.kind.name());
            Ok(())
        }
    }
}

async fn open(url: &str) -> Result<std::sync::Arc<dyn chat_core::Store>, String> {
    chat_store::connect(url, chat_store::StoreOptions::default())
        .await
        .map_err(|e| e.to_string())
}

fn parse_user_file(text: &str) -> Result<Vec<UserInput>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .map_err(|e| format!("invalid JSON array of users: {e}"));
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

async fn serve(args: chat_gateway::cli::ServeArgs) -> Result<(), String> {
    let deadline = std::time::Duration::from_secs(args.shutdown_timeout.max(1));
    let grace = std::time::Duration::from_secs(args.drain_grace);
    let config = args.into_config()?;
    let _single_node =
        chat_store::lock_single_node(&config.database_url).map_err(|e| e.to_string())?;
    let shutdown = CancellationToken::new();
    let gw = chat_gateway::start(config, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    let signal = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| e.to_string())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        Ok::<(), String>(())
    };
    signal.await?;
    gw.begin_drain();
    if !grace.is_zero() {
        tracing::info!("shutting down: /readyz fails; still serving for {grace:?} (--drain-grace)");
        tokio::time::sleep(grace).await;
    }
    tracing::info!("shutting down: draining (at most {deadline:?})");
    if tokio::time::timeout(deadline, gw.stop()).await.is_err() {
        tracing::warn!("the drain did not finish within {deadline:?}; exiting anyway");
    }
    tracing::info!("stopped");
    Ok(())
}
