//! `chat-conformance`: run one dialect's conformance scenario against a server and
//! print the table. The help texts that name dialects live with the dialects
//! ([`chat_conformance::dialects::help`]). Exit status: 0 when every case passed (skips allowed), 1 when a
//! case failed, 2 for bad usage.

use chat_conformance::dialects::help;
use chat_conformance::{run, Config, Dialect, Level};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "chat-conformance",
    about = "Walk a chat dialect's AsyncAPI spec against a live server (chat-gateway or a legacy backend) and validate every frame it sends.",
    after_help = help::EXAMPLE
)]
struct Args {
    #[arg(long, help = help::DIALECT)]
    dialect: String,
    /// The dialect's endpoint (ws://host:port/path/). Socket.IO dialects: the
    /// Engine.IO path, e.g. ws://host:port/socket.io/ (EIO=4&transport=websocket is added).
    #[arg(long)]
    url: String,
    /// Access token of a distinct user; repeat (A, B, C). Most dialects need three,
    /// the Socket.IO ones two.
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// User id of the token at the same position, when the tokens carry no `user_id`.
    #[arg(long = "user-id")]
    user_ids: Vec<i64>,
    /// Username of the token at the same position, when the tokens carry no `username`.
    #[arg(long = "username")]
    usernames: Vec<String>,
    #[arg(long, help = help::ADMIN_TOKEN)]
    admin_token: Option<String>,
    #[arg(long, help = help::ADMIN_URL)]
    admin_url: Option<String>,
    #[arg(long, help = help::ROOM)]
    room: Option<i64>,
    #[arg(long, help = help::PROJECT)]
    project: Option<i64>,
    #[arg(long, help = help::ORIGIN)]
    origin: Option<String>,
    /// What to check: `gateway` (the full spec) or `legacy` (only what the
    /// dialect's original API document promised, from the marks in the AsyncAPI
    /// document; differences from the full spec are listed as departures).
    #[arg(long, default_value = "gateway")]
    level: String,
    /// Directory with <dialect>/asyncapi.yaml (default: this repository's protocol-specs).
    #[arg(long)]
    specs: Option<PathBuf>,
    /// How long to wait for each expected frame, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// How long to watch for unexpected frames after each case, in milliseconds.
    #[arg(long, default_value_t = 200)]
    quiet_ms: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(dialect) = Dialect::parse(&args.dialect) else {
        eprintln!(
            "unknown dialect {:?}; one of: {}",
            args.dialect,
            Dialect::ALL.map(|d| d.name()).join(", ")
        );
        return ExitCode::from(2);
    };
    let Some(level) = Level::parse(&args.level) else {
        eprintln!("unknown level {:?}; one of: legacy, gateway", args.level);
        return ExitCode::from(2);
    };
    let mut cfg = Config::new(dialect, &args.url, args.tokens);
    cfg.level = level;
    cfg.user_ids = args.user_ids;
    cfg.usernames = args.usernames;
    cfg.admin_token = args.admin_token;
    cfg.admin_url = args.admin_url;
    cfg.room = args.room;
    cfg.project = args.project;
    cfg.origin = args.origin;
    if let Some(s) = args.specs {
        cfg.specs_dir = s;
    }
    cfg.timing.timeout = Duration::from_millis(args.timeout_ms);
    cfg.timing.quiet = Duration::from_millis(args.quiet_ms);
    let report = run(&cfg).await;
    print!("{}", report.render());
    if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
