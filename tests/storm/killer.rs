//! The killer: a thread that SIGKILLs and SIGSTOPs a round's workers at random.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shmpool::Pool;

use crate::common::{Rng, signal_worker, worker_pids};

/// How the killer behaves in one round.
#[derive(Clone, Debug)]
pub struct KillerPlan {
    /// Pause between two blows.
    pub every: Range<u64>,
    /// Percent of blows that SIGSTOP instead of SIGKILL.
    pub stop_percent: u64,
    /// How long a stopped worker stays stopped (ms). Longer than the round's task
    /// timeout when it has one: then the timeout must kill it.
    pub stop_ms: Range<u64>,
}

/// Until `stop`: SIGKILLs random workers of `pool`, or SIGSTOPs one (at most one at
/// a time) and SIGCONTs it later. Continues every stopped worker before it returns.
/// Returns (kills, stops).
pub fn killer(
    pool: &Pool,
    server: i32,
    stop: &AtomicBool,
    mut rng: Rng,
    plan: KillerPlan,
) -> (usize, usize) {
    let (mut kills, mut stops) = (0, 0);
    let mut stopped: Option<(i32, Instant)> = None;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(rng.range(plan.every.clone())));
        if let Some((pid, until)) = stopped {
            if Instant::now() >= until {
                signal_worker(pid, server, libc::SIGCONT);
                stopped = None;
            }
        }
        let pids = worker_pids(pool);
        if pids.is_empty() {
            continue;
        }
        let pid = rng.pick(&pids);
        if stopped.is_none() && rng.chance(plan.stop_percent) {
            if signal_worker(pid, server, libc::SIGSTOP) {
                let ms = rng.range(plan.stop_ms.clone());
                stopped = Some((pid, Instant::now() + Duration::from_millis(ms)));
                stops += 1;
            }
        } else if signal_worker(pid, server, libc::SIGKILL) {
            kills += 1;
        }
    }
    if let Some((pid, _)) = stopped {
        signal_worker(pid, server, libc::SIGCONT);
    }
    (kills, stops)
}
