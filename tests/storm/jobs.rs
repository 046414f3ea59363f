//! Jobs: a task's arguments and result, both derived from its seed, and the task or
//! items a death or timeout names.

use std::ops::Range;
use std::time::Duration;

use shmpool::{Error, Work};

use super::Cx;
use crate::common::{Rng, pattern, pattern_mismatch};

/// Salt of a result's pattern, so that it differs from its argument's.
const RESULT_SALT: u64 = 0xA5A5_5A5A_0FF0_F00F;

/// The arguments of `run_job`: seed, argument length, argument, result length, and
/// how long the task works (µs).
pub(super) type JobArgs = (u64, usize, Vec<u8>, usize, u64);

/// In a worker: checks the argument against its pattern (a corrupted one fails the
/// task with a panic, which the storm reports), works a while (so that the killer
/// hits busy workers too), and returns the seed and the result.
pub(super) fn run_job(
    seed: u64,
    arg_len: usize,
    arg: Vec<u8>,
    out_len: usize,
    work_us: u64,
) -> (u64, Vec<u8>) {
    if let Some(wrong) = pattern_mismatch(seed, arg_len, &arg) {
        panic!("job {seed}: the worker got a corrupted argument: {wrong}");
    }
    std::thread::sleep(Duration::from_micros(work_us));
    (seed, pattern(seed ^ RESULT_SALT, out_len))
}

/// `run_job` over one tuple, for `map` and `imap`.
pub(super) fn run_job_item(args: JobArgs) -> (u64, Vec<u8>) {
    run_job(args.0, args.1, args.2, args.3, args.4)
}

/// A call's task context: a salt, and a pad of the salt's pattern (its length drawn
/// like a payload's).
pub(super) type Context = (u64, Vec<u8>);

pub(super) fn context(rng: &mut Rng) -> Context {
    let salt = rng.next_u64() | 1;
    (salt, pattern(salt, payload_len(rng)))
}

/// `run_job_item` with a context: checks the pad (a context of another call, or a
/// corrupted one, fails the task with a panic) and salts the seed it returns, so the
/// parent sees which context the task got.
pub(super) fn context_job(context: &Context, args: JobArgs) -> (u64, Vec<u8>) {
    let (salt, pad) = context;
    if let Some(wrong) = pattern_mismatch(*salt, pad.len(), pad) {
        panic!("job {}: the context is not its call's: {wrong}", args.0);
    }
    let (seed, out) = run_job_item(args);
    (seed ^ salt, out)
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    pub(super) seed: u64,
    pub(super) arg_len: usize,
    pub(super) out_len: usize,
    pub(super) work_us: u64,
}

impl Job {
    pub(super) fn args(&self) -> JobArgs {
        (
            self.seed,
            self.arg_len,
            pattern(self.seed, self.arg_len),
            self.out_len,
            self.work_us,
        )
    }

    /// Fails unless `out` is exactly this job's result.
    pub(super) fn check(&self, cx: Cx, out: &(u64, Vec<u8>)) {
        check!(
            cx,
            out.0 == self.seed,
            "job {} got the result of job {}",
            self.seed,
            out.0
        );
        if let Some(wrong) = pattern_mismatch(self.seed ^ RESULT_SALT, self.out_len, &out.1) {
            panic!("{cx}: job {} ({self:?}): wrong result: {wrong}", self.seed);
        }
    }
}

/// A payload length: mostly around the 72-byte inline limit and a page, sometimes
/// up to 256 KiB, rarely up to 3 MiB.
pub(super) fn payload_len(rng: &mut Rng) -> usize {
    let n = match rng.below(100) {
        0..40 => rng.range(0..100),
        40..70 => rng.range(100..8193),
        70..92 => rng.range(8193..(256 << 10)),
        92..98 => rng.range((256 << 10)..(1 << 20) + 4097),
        _ => rng.range((1 << 20)..(3 << 20)),
    };
    n as usize
}

/// The task a death or timeout names, for `apply`: `Work::Task(id)`.
pub fn failed_task(e: &Error) -> Option<u64> {
    match e {
        Error::WorkerDied {
            work: Work::Task(id),
            ..
        }
        | Error::Timeout {
            work: Work::Task(id),
            ..
        } => Some(*id),
        _ => None,
    }
}

/// The items a death or timeout names, for `map`, `starmap` and `imap`.
pub(super) fn failed_items(e: &Error) -> Option<Range<usize>> {
    match e {
        Error::WorkerDied {
            work: Work::Items(r),
            ..
        }
        | Error::Timeout {
            work: Work::Items(r),
            ..
        } => Some(r.clone()),
        _ => None,
    }
}

/// The items a cancel names, for `imap`: `Cancelled` with `Work::Items`.
pub(super) fn cancelled_items(e: &Error) -> Option<Range<usize>> {
    match e {
        Error::Cancelled {
            work: Work::Items(r),
        } => Some(r.clone()),
        _ => None,
    }
}

/// Whether `e` is a worker's death (not a timeout, nor a cancel). In a round of the
/// pool's own kills, no task operation may see one: nothing there kills a worker
/// but for the work it runs, and that work gets its `Timeout` or `Cancelled`.
pub(super) fn is_death(e: &Error) -> bool {
    matches!(e, Error::WorkerDied { .. })
}
