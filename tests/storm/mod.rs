//! The machinery of the seeded fault storm (`tests/faults_storm.rs`): its
//! configuration (`SHMPOOL_STORM_SEED`, `SHMPOOL_STORM_SECS`, `SHMPOOL_STORM_SKIP`),
//! the failure context every message starts with, and the storm's main loop.
//!
//! * `jobs`: a task's arguments and result, both derived from its seed, and the task
//!   or items an error names.
//! * `killer`: the thread that SIGKILLs and SIGSTOPs a round's workers at random.
//! * `round`: one pool, its kills (the killer from outside, or only the pool's own),
//!   a few random operations (`Op`), a canceller thread that runs operations whose
//!   work the pool kills beside them, and bystanders.
//! * `ops`: the task operations of a round: apply, map and starmap (some with a
//!   task context), imap and imap_unordered, a cancelled map_async, and an apply
//!   inside a callback.
//! * `bulk`: bulk maps (some cancelled through their token) and deterministic
//!   reductions whose kernel kills its own worker.
//! * `orders`: operations whose work the pool itself cancels, racing its end: tasks
//!   cancelled from another thread, imaps cancelled partway, dropped futures (of
//!   tasks, maps and bulk maps).
//! * `timeouts`: task, map and chunk time limits about as long as the work.
//! * `bystanders`: threads that run their own tasks, maps and bulk maps beside the
//!   round's operations, every value checked; none of them may ever fail.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use shmpool::StartMethod;

use crate::common::{Rng, within};
use round::Round;

/// `assert!` with the storm's position in front of the message. (The method and the
/// seed are put in front of every failure by `storm`.)
macro_rules! check {
    ($cx:expr, $cond:expr, $($fmt:tt)+) => {
        assert!($cond, "{}: {}", $cx, format_args!($($fmt)+))
    };
}

// The modules come after `check!`, which they use.
mod bulk;
mod bystanders;
pub mod jobs;
pub mod killer;
mod ops;
mod orders;
mod round;
mod timeouts;

// ---------------------------------------------------------------------------------
// Configuration and failure context
// ---------------------------------------------------------------------------------

const DEFAULT_SECS: u64 = 15;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn storm_seed(method: StartMethod) -> u64 {
    env_u64("SHMPOOL_STORM_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let salt = match method {
            StartMethod::Fork => 1u64,
            StartMethod::ForkServer => 2,
            _ => 3,
        };
        (now.as_nanos() as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    })
}

fn skipped() -> HashSet<String> {
    std::env::var("SHMPOOL_STORM_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Which of a round's threads runs an operation.
#[derive(Clone, Copy, Debug)]
enum Lane {
    /// The round's own thread: operations of every kind.
    Main,
    /// The canceller: operations whose work the pool kills, beside the main lane.
    Canceller,
    /// A bystander: work of its own, which nothing may fail.
    Bystander(usize),
}

/// Where in the storm we are, for failure messages.
#[derive(Clone, Copy, Debug)]
struct Cx {
    round: usize,
    lane: Lane,
    op: usize,
    name: &'static str,
}

impl Cx {
    /// `op` outside the random operations (building the pool, the final check).
    const NO_OP: usize = usize::MAX;
}

impl fmt::Display for Cx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "round {}, ", self.round)?;
        match self.lane {
            Lane::Main => {}
            Lane::Canceller => write!(f, "canceller, ")?,
            Lane::Bystander(b) => write!(f, "bystander {b}, ")?,
        }
        match self.op {
            Cx::NO_OP => write!(f, "{}", self.name),
            op => write!(f, "op {op} ({})", self.name),
        }
    }
}

/// Runs the storm of one start method under a time limit, and fails with the
/// method and the seed in front of whatever went wrong.
pub fn storm(method: StartMethod) {
    let seed = storm_seed(method);
    let budget = Duration::from_secs(env_u64("SHMPOOL_STORM_SECS").unwrap_or(DEFAULT_SECS));
    let header = format!("fault storm, {method:?}, SHMPOOL_STORM_SEED={seed:#x}");
    eprintln!("{header}: budget {budget:?}");
    let limit = budget + Duration::from_secs(120);
    let result = std::panic::catch_unwind(|| {
        within(limit, "fault storm", move || {
            run_storm(method, seed, budget)
        })
    });
    match result {
        Ok(summary) => eprintln!(
            "{header}: {summary}; array cache: {:?}",
            shmpool::array_cache::stats()
        ),
        Err(panic) => panic!("{header}: {}", panic_message(&*panic)),
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

fn run_storm(method: StartMethod, seed: u64, budget: Duration) -> String {
    let mut rng = Rng::new(seed);
    let skip = skipped();
    let deadline = Instant::now() + budget;
    let mut totals = Totals::default();
    let mut round = 0;
    while round == 0 || Instant::now() < deadline {
        Round::new(method, round, &mut rng, &skip).run(deadline, &mut totals);
        round += 1;
    }
    format!("{round} rounds; {totals:?}")
}

/// What the storm did, for the summary line.
#[derive(Debug, Default)]
struct Totals {
    /// Rounds with the killer (outside kills), and rounds with only the pool's own.
    rounds_killer: usize,
    rounds_pool_kills: usize,
    ops: usize,
    tasks_ok: usize,
    tasks_failed: usize,
    tasks_cancelled: usize,
    tasks_timed_out: usize,
    futures_dropped: usize,
    bulk_ok: usize,
    bulk_failed: usize,
    bulk_cancelled: usize,
    chunk_timeouts: usize,
    reduce_ok: usize,
    reduce_failed: usize,
    kills: usize,
    stops: usize,
    /// Worker deaths and replacements (`Stats::respawns`): outside kills, the pool's
    /// own kills, kernels that killed their worker, and retirements.
    respawns: u64,
    bystanders: bystanders::Tally,
}

impl Totals {
    /// Adds what another lane of a round did (not the round's own counts: rounds,
    /// outside kills, respawns, bystanders).
    fn add_lane(&mut self, lane: &Totals) {
        self.ops += lane.ops;
        self.tasks_ok += lane.tasks_ok;
        self.tasks_failed += lane.tasks_failed;
        self.tasks_cancelled += lane.tasks_cancelled;
        self.tasks_timed_out += lane.tasks_timed_out;
        self.futures_dropped += lane.futures_dropped;
        self.bulk_ok += lane.bulk_ok;
        self.bulk_failed += lane.bulk_failed;
        self.bulk_cancelled += lane.bulk_cancelled;
        self.chunk_timeouts += lane.chunk_timeouts;
        self.reduce_ok += lane.reduce_ok;
        self.reduce_failed += lane.reduce_failed;
    }
}
