//! Feeding a target: seeds first, then mutants, each input under `catch_unwind`,
//! until the time or the iteration budget is spent or an input panics.

use crate::mutate::Mutator;
use crate::rng::Rng;
use crate::targets::Target;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Stop after this long (checked between inputs).
    pub time: Option<Duration>,
    /// Stop after this many inputs.
    pub iterations: Option<u64>,
    /// Where a panicking (or hanging) input is written.
    pub crash_dir: PathBuf,
    /// Keep going after a panic (count them) instead of stopping at the first.
    pub keep_going: bool,
    /// An input that runs longer than this is saved as a hang and ends the process.
    pub hang_after: Duration,
    /// The stack the target runs on: tokio's worker threads have 2 MiB.
    pub stack: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            time: Some(Duration::from_secs(10)),
            iterations: None,
            crash_dir: PathBuf::from("fuzz-crashes"),
            keep_going: false,
            hang_after: Duration::from_secs(20),
            stack: 2 << 20,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Report {
    pub target: &'static str,
    pub iterations: u64,
    pub elapsed: Duration,
    pub crashes: u64,
    /// The slowest single input.
    pub slowest: Duration,
    /// That input (kept so that a slow path can be looked into).
    pub slowest_input: Vec<u8>,
    /// The first panic: its message and where its input was saved.
    pub first_crash: Option<(String, PathBuf)>,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.iterations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static QUIET: RefCell<bool> = const { RefCell::new(false) };
}

/// Panics inside a fuzzed input are recorded, not printed; others print as usual.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(|q| *q.borrow()) {
                let bt = std::backtrace::Backtrace::force_capture();
                LAST_PANIC.with(|l| *l.borrow_mut() = Some(format!("{info}\n{bt}")));
            } else {
                default(info);
            }
        }));
    });
}

/// Run `target` on one input; the panic message if it panicked.
pub fn run_one(target: &Target, input: &[u8]) -> Option<String> {
    install_hook();
    QUIET.with(|q| *q.borrow_mut() = true);
    let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    QUIET.with(|q| *q.borrow_mut() = false);
    result.err().map(|_| {
        LAST_PANIC
            .with(|l| l.borrow_mut().take())
            .unwrap_or_default()
    })
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Write a failing input; its path.
pub fn save(dir: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{target}-{kind}-{:016x}.bin", fnv(input)));
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("chat-fuzz: cannot write {}: {e}", path.display());
    }
    path
}

/// Recent mutants that further inputs may start from (mutations then stack).
const POOL: usize = 256;

/// Fuzz `target` within the budget of `opts`.
pub fn run(target: &'static Target, opts: &Options) -> Report {
    let opts = opts.clone();
    let current: Arc<Mutex<Vec<u8>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let started_at = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let watchdog = {
        let (current, done, started_at) = (current.clone(), done.clone(), started_at.clone());
        let (dir, hang) = (opts.crash_dir.clone(), opts.hang_after);
        std::thread::spawn(move || {
            let mut seen = 0;
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(200));
                let start = started_at.load(Ordering::Acquire);
                if start == 0 || start != seen {
                    seen = start;
                    continue;
                }
                let running = epoch.elapsed().saturating_sub(Duration::from_nanos(start));
                if start != 0 && running > hang && !done.load(Ordering::Acquire) {
                    let input = current.lock().map(|c| c.clone()).unwrap_or_default();
                    let path = save(&dir, target.name, "hang", &input);
                    eprintln!(
                        "chat-fuzz: {}: one input has run for {:?}; saved to {}",
                        target.name,
                        running,
                        path.display()
                    );
                    std::process::exit(3);
                }
            }
        })
    };
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(opts.stack)
        .spawn(move || fuzz_loop(target, &opts, &current, &started_at, epoch))
        .expect("spawn the fuzz thread");
    let report = worker.join().expect("the fuzz loop catches panics");
    done.store(true, Ordering::Release);
    let _ = watchdog.join();
    report
}

fn fuzz_loop(
    target: &'static Target,
    opts: &Options,
    current: &Mutex<Vec<u8>>,
    started_at: &AtomicU64,
    epoch: Instant,
) -> Report {
    let mutator = Mutator::new(target.seeds);
    let mut rng = Rng::new(opts.seed);
    let mut pool: Vec<Vec<u8>> = Vec::with_capacity(POOL);
    let start = Instant::now();
    let mut report = Report {
        target: target.name,
        iterations: 0,
        elapsed: Duration::ZERO,
        crashes: 0,
        slowest: Duration::ZERO,
        slowest_input: Vec::new(),
        first_crash: None,
    };
    let seeds = mutator.seeds().len() as u64;
    loop {
        if opts.iterations.is_some_and(|n| report.iterations >= n) {
            break;
        }
        if report.iterations.is_multiple_of(32) && opts.time.is_some_and(|t| start.elapsed() >= t) {
            break;
        }
        let input = if report.iterations < seeds {
            mutator.seeds()[report.iterations as usize].clone()
        } else {
            let base = if !pool.is_empty() && rng.chance(3, 10) {
                &pool[rng.below(pool.len())]
            } else {
                rng.pick(mutator.seeds())
            };
            mutator.mutate(&mut rng, base)
        };
        if let Ok(mut c) = current.lock() {
            c.clone_from(&input);
        }
        let t0 = Instant::now();
        started_at.store((t0 - epoch).as_nanos().max(1) as u64, Ordering::Release);
        let panicked = run_one(target, &input);
        let took = t0.elapsed();
        // Not in a target: making the next input is not a hang of this one.
        started_at.store(0, Ordering::Release);
        if took > report.slowest {
            report.slowest = took;
            report.slowest_input.clone_from(&input);
        }
        report.iterations += 1;
        if let Some(message) = panicked {
            report.crashes += 1;
            let path = save(&opts.crash_dir, target.name, "crash", &input);
            eprintln!(
                "chat-fuzz: {}: input {} panicked; saved to {}\n{}",
                target.name,
                report.iterations,
                path.display(),
                message.lines().take(12).collect::<Vec<_>>().join("\n")
            );
            report.first_crash.get_or_insert((message, path));
            if !opts.keep_going {
                break;
            }
        }
        if input.len() <= 64 << 10 {
            if pool.len() < POOL {
                pool.push(input);
            } else {
                let i = rng.below(POOL);
                pool[i] = input;
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}
