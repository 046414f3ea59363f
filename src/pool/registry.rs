//! Every live pool of this process, so that dropping an array can wake idle workers
//! everywhere to unmap it at once.

use std::sync::{Arc, Mutex, Weak};

use super::PoolInner;

static POOLS: Mutex<Vec<Weak<PoolInner>>> = Mutex::new(Vec::new());

/// Registers a pool.
pub(crate) fn add(pool: &Arc<PoolInner>) {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.retain(|p| p.strong_count() > 0);
    pools.push(Arc::downgrade(pool));
}

/// Wakes sleeping workers of every pool, so they check the liveness table now.
/// Costs one fence and one load per pool whose workers are all awake.
pub(crate) fn wake_idle_workers() {
    let pools: Vec<Arc<PoolInner>> = {
        let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        pools.iter().filter_map(Weak::upgrade).collect()
    };
    for pool in pools {
        pool.ctrl.header().submit_ready.notify(u32::MAX);
    }
}
