//! Every live pool of this process, so that dropping an array can wake idle workers
//! everywhere to unmap it at once, and a caller that needs the memory back can wait
//! until they have ([`settle`]).
//!
//! Segments sit below pools, so the registry knows a pool only as something whose
//! idle workers can be woken ([`IdleWorkers`]).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::liveness::Liveness;

/// A pool, as the registry sees it.
pub(crate) trait IdleWorkers: Send + Sync {
    /// Wakes the pool's sleeping workers, so they check the liveness table now.
    fn wake_idle_workers(&self);
    /// Whether every worker that has taken work has let go of every array
    /// retired by the liveness table's retirement `epoch`.
    fn unmapped_through(&self, epoch: u64) -> bool;
}

static POOLS: Mutex<Vec<Weak<dyn IdleWorkers>>> = Mutex::new(Vec::new());

/// Registers a pool.
pub(crate) fn add<P: IdleWorkers + 'static>(pool: &Arc<P>) {
    let pool: Weak<dyn IdleWorkers> = Arc::<P>::downgrade(pool);
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.retain(|p| p.strong_count() > 0);
    pools.push(pool);
}

/// Wakes sleeping workers of every pool, so they check the liveness table now.
/// Costs one fence and one load per pool whose workers are all awake.
pub(crate) fn wake_idle_workers() {
    for pool in live_pools() {
        pool.wake_idle_workers();
    }
}

fn live_pools() -> Vec<Arc<dyn IdleWorkers>> {
    let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.iter().filter_map(Weak::upgrade).collect()
}

/// Waits, for at most `limit`, until the workers of every pool have let go of
/// every array dropped so far; returns at once if they all have. The caller
/// retries what failed either way: the workers may have let go between its
/// failure and this call (a test caught that race at load 6 on 2 cores).
///
/// Idle workers do within a millisecond or so of the drop; a worker busy in a task
/// does between records, so the wait is bounded. Called where a failure may be for
/// want of that memory (a named segment that `/dev/shm` had no room for).
pub(crate) fn settle(limit: Duration) {
    let Ok(table) = Liveness::global() else {
        return;
    };
    let epoch = table.epoch();
    let behind = || live_pools().into_iter().any(|p| !p.unmapped_through(epoch));
    if !behind() {
        return;
    }
    wake_idle_workers();
    let deadline = Instant::now() + limit;
    while behind() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(100));
    }
}
