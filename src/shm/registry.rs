//! Every live pool of this process, so that dropping an array can wake idle workers
//! everywhere to unmap it at once.
//!
//! Segments sit below pools, so the registry knows a pool only as something whose
//! idle workers can be woken ([`IdleWorkers`]).

use std::sync::{Arc, Mutex, Weak};

/// A pool, as the registry sees it.
pub(crate) trait IdleWorkers: Send + Sync {
    /// Wakes the pool's sleeping workers, so they check the liveness table now.
    fn wake_idle_workers(&self);
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
    let pools: Vec<Arc<dyn IdleWorkers>> = {
        let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        pools.iter().filter_map(Weak::upgrade).collect()
    };
    for pool in pools {
        pool.wake_idle_workers();
    }
}
