//! `chat-fuzz`: run the fuzz targets for a bounded time or count, or replay saved
//! inputs. Exits 1 when an input panicked (it is saved under `--crash-dir`).

use chat_fuzz::{find, runner, Options, TARGETS};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "chat-fuzz",
    about = "Fuzz the gateway's decoders (stable toolchain)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the targets.
    List,
    /// Fuzz targets (all when none is named), one after another.
    Run {
        targets: Vec<String>,
        /// Seconds per target (default 10 unless --iterations is given).
        #[arg(long)]
        seconds: Option<f64>,
        /// Inputs per target.
        #[arg(long)]
        iterations: Option<u64>,
        /// The generator's seed: the same seed gives the same inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "fuzz-crashes")]
        crash_dir: PathBuf,
        /// Count panics and go on instead of stopping at the first.
        #[arg(long)]
        keep_going: bool,
        /// Also save each target's slowest input under --crash-dir.
        #[arg(long)]
        save_slowest: bool,
    },
    /// Run saved inputs through a target, letting a panic show.
    Replay { target: String, files: Vec<PathBuf> },
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::List => {
            for t in TARGETS.iter() {
                println!("{:<20} {}", t.name, t.about);
            }
            ExitCode::SUCCESS
        }
        Cmd::Replay { target, files } => {
            let Some(t) = find(&target) else {
                eprintln!("unknown target {target}; see `chat-fuzz list`");
                return ExitCode::from(2);
            };
            for f in files {
                let data = match std::fs::read(&f) {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("{}: {e}", f.display());
                        return ExitCode::from(2);
                    }
                };
                (t.run)(&data);
                println!("{}: ok", f.display());
            }
            ExitCode::SUCCESS
        }
        Cmd::Run {
            targets,
            seconds,
            iterations,
            seed,
            crash_dir,
            keep_going,
            save_slowest,
        } => {
            let chosen: Vec<_> = if targets.is_empty() {
                TARGETS.iter().collect()
            } else {
                let mut v = Vec::new();
                for name in &targets {
                    match find(name) {
                        Some(t) => v.push(t),
                        None => {
                            eprintln!("unknown target {name}; see `chat-fuzz list`");
                            return ExitCode::from(2);
                        }
                    }
                }
                v
            };
            let time = match (seconds, iterations) {
                (Some(s), _) => Some(Duration::from_secs_f64(s)),
                (None, Some(_)) => None,
                (None, None) => Some(Duration::from_secs(10)),
            };
            let opts = Options {
                seed,
                time,
                iterations,
                crash_dir: crash_dir.clone(),
                keep_going,
                ..Options::default()
            };
            println!(
                "{:<20} {:>12} {:>9} {:>10} {:>8} {:>11}",
                "target", "iterations", "seconds", "iter/s", "crashes", "slowest_ms"
            );
            let mut failed = false;
            for t in chosen {
                let r = runner::run(t, &opts);
                println!(
                    "{:<20} {:>12} {:>9.1} {:>10.0} {:>8} {:>11.1}",
                    r.target,
                    r.iterations,
                    r.elapsed.as_secs_f64(),
                    r.rate(),
                    r.crashes,
                    r.slowest.as_secs_f64() * 1000.0
                );
                if save_slowest {
                    let path = runner::save(&crash_dir, t.name, "slowest", &r.slowest_input);
                    eprintln!(
                        "{}: the slowest input ({} bytes) is {}",
                        t.name,
                        r.slowest_input.len(),
                        path.display()
                    );
                }
                failed |= r.crashes > 0;
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
