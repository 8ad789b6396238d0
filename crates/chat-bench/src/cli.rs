//! The command line.
//!
//! Invariant: the flags, their defaults and their help are what they always were,
//! yet no dialect is named here. Mechanism: everything per dialect (the values of
//! `--dialects`, its default, one `--path-<dialect>` flag each, the `--origin` note)
//! is generated from chat-client's catalogue; the fixed flags are a clap derive and
//! the per-dialect ones are added to its command before parsing. Consequence: a
//! dialect added to the catalogue gets its flags here without an edit.

use chat_client::Dialect;
use clap::builder::PossibleValue;
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser};
use std::sync::LazyLock;

/// The names of the catalogue's dialects that `pick` keeps, in catalogue order.
fn dialect_names(pick: fn(Dialect) -> bool) -> Vec<&'static str> {
    Dialect::ALL
        .into_iter()
        .filter(|d| pick(*d))
        .map(Dialect::name)
        .collect()
}

/// The dialects a default run mixes: every one that shows group rooms.
static DEFAULT_DIALECTS: LazyLock<String> =
    LazyLock::new(|| dialect_names(Dialect::sees_groups).join(","));

static ORIGIN_HELP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "`Origin` header for the upgrades ({} servers check it)",
        dialect_names(Dialect::checks_origin).join(", ")
    )
});

/// A catalogue dialect as a `--dialects` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DialectArg(pub Dialect);

const DIALECT_ARGS: [DialectArg; Dialect::ALL.len()] = {
    let mut out = [DialectArg(Dialect::ALL[0]); Dialect::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = DialectArg(Dialect::ALL[i]);
        i += 1;
    }
    out
};

impl clap::ValueEnum for DialectArg {
    fn value_variants<'a>() -> &'a [Self] {
        &DIALECT_ARGS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One room, every client a member; `--senders` of them send at `--rate` in total.
    Fanout,
    /// `--pairs` direct rooms of two; both members send, closed loop unless `--rate`.
    Direct,
    /// `--connections` idle clients; the server's memory per connection.
    Idle,
    /// `--connections` clients connect and authenticate at once; time until all usable.
    Storm,
}

/// How the rooms of a run are set up (`--setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Setup {
    /// In the protocol where the run's dialects can (a dialect that creates rooms in
    /// its protocol; direct chats of dialects that address the other user need
    /// nothing), the admin REST API for the rest.
    Auto,
    /// Only in the protocol: a room no dialect of the run can create fails the set-up.
    Protocol,
    /// Every room through the admin REST API (`POST /api/rooms`).
    Rest,
}

#[derive(Parser, Debug)]
#[command(
    name = "chat-bench",
    about = "Load generator for the chat gateway's five WebSocket dialects"
)]
pub struct Args {
    /// Server base URL (http:// or ws://, host and port). Several, comma-separated
    /// or repeated: the nodes of one cluster; clients are spread over them
    /// round-robin (so the two members of a direct pair are on different nodes), and
    /// rooms are set up through the first.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    pub url: Vec<String>,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Dialects of the clients, assigned round-robin.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = DEFAULT_DIALECTS.as_str()
    )]
    pub dialects: Vec<DialectArg>,
    /// Clients: room size for fanout (default 1000), count for idle (15000) and storm (5000).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Direct scenario: number of two-member rooms.
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Fanout scenario: how many members send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per second over all senders; 0 means closed loop (send, await own ack, repeat).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of sending (fanout, direct) or of holding the connections (idle, storm).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to wait after sending stops for deliveries still in flight.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// New connections per second; 0 opens them all at once (storm's default).
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// Spread client sockets over 127.0.0.1..=127.0.0.N (loopback targets only).
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// HS256 secret to mint simplejwt-shaped access tokens for the benchmark users.
    #[arg(long, env = "CHAT_BENCH_JWT_SECRET")]
    pub jwt_secret: String,
    /// Where rooms are set up: `auto` (the protocol where the run's dialects can, the
    /// admin REST API for the rest), `protocol` (never REST), `rest` (always REST).
    #[arg(long, value_enum, default_value_t = Setup::Auto)]
    pub setup: Setup,
    /// Admin token for `POST /api/rooms`; minted with the secret when absent.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// First user id of this run (default: derived from the clock, so runs never collide).
    #[arg(long)]
    pub user_base: Option<i64>,
    /// The server's pid: report its CPU and resident memory over the run.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Generator worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Extra characters appended to every message text.
    #[arg(long, default_value_t = 0)]
    pub pad: usize,
    #[arg(long, default_value = "http://localhost", help = ORIGIN_HELP.as_str())]
    pub origin: String,
    /// Storm: do not sign every user in once beforehand, so the storm measures
    /// first-sight sign-ups instead of returning users.
    #[arg(long)]
    pub new_users: bool,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

/// Where each dialect is mounted on the target server (`--path-<dialect>`).
#[derive(Clone, Debug)]
pub struct Paths([String; Dialect::ALL.len()]);

impl Paths {
    pub fn of(&self, d: Dialect) -> &str {
        let i = Dialect::ALL.iter().position(|x| *x == d).unwrap_or(0);
        &self.0[i]
    }
}

/// The flag of a dialect's path, e.g. `path-<name>`, and its value name; made once
/// per run, so leaking them to get clap's `'static` ids costs a few bytes.
fn path_flag(d: Dialect) -> (&'static str, &'static str) {
    let flag = format!("path-{}", d.name());
    let value = flag.replace('-', "_").to_uppercase();
    (
        Box::leak(flag.into_boxed_str()),
        Box::leak(value.into_boxed_str()),
    )
}

/// Parse the process's arguments (exits with clap's message on bad usage).
pub fn parse() -> (Args, Paths) {
    let flags = Dialect::ALL.map(path_flag);
    let mut cmd = Args::command();
    for (d, (flag, value)) in Dialect::ALL.into_iter().zip(flags) {
        cmd = cmd.arg(
            Arg::new(flag)
                .long(flag)
                .value_name(value)
                .action(ArgAction::Set)
                .default_value(d.default_path()),
        );
    }
    let matches = cmd.get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let paths = Paths(std::array::from_fn(|i| {
        matches
            .get_one::<String>(flags[i].0)
            .cloned()
            .unwrap_or_else(|| Dialect::ALL[i].default_path().to_string())
    }));
    (args, paths)
}
