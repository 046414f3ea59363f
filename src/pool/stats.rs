//! Counters a pool keeps about itself, and the [`Stats`] snapshot users read.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::page_kind::PageKind;

/// The parent's counters (all Relaxed: they are statistics, not synchronization).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records pushed into the submission ring.
    pub records_submitted: AtomicU64,
    /// Bytes of those records, plus any payload bytes written to the task arena.
    pub bytes_submitted: AtomicU64,
    /// Records taken from completion rings.
    pub records_completed: AtomicU64,
    /// Bytes of those records, plus any result bytes read from result arenas.
    pub bytes_completed: AtomicU64,
    /// Array segments sent to workers (one descriptor per worker per array).
    pub segments_shipped: AtomicU64,
    /// Bytes of array memory made visible to workers by those shipments (mapped,
    /// not copied).
    pub bytes_mapped: AtomicU64,
    /// Worker processes started to replace ones that exited.
    pub respawns: AtomicU64,
    /// Tasks run again after their worker died (`retries`).
    pub tasks_retried: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What one worker slot has done.
///
/// # Examples
///
/// ```
/// let pool = shmpool::Pool::new(2)?;
/// let mut xs = shmpool::SharedArray::<u8>::zeroed(8)?;
/// pool.bulk().chunk_len(1).for_each_mut(&mut xs, |v: &mut u8| *v = 1)?;
/// let workers = pool.stats().workers;
/// assert_eq!(workers.iter().map(|w| w.slot).collect::<Vec<_>>(), [0, 1]);
/// assert!(workers.iter().all(|w| w.pid.is_some())); // both running
/// assert_eq!(workers.iter().map(|w| w.chunks_done).sum::<u64>(), 8);
/// // Each running worker's resident memory, read from /proc when `stats` is called.
/// assert!(workers.iter().all(|w| w.resident_private.is_some_and(|b| b > 0)));
/// assert!(workers.iter().all(|w| w.resident_shared.is_some_and(|b| b > 0)));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// The slot number (stable across replacements).
    pub slot: usize,
    /// The current process in the slot, if one is running.
    pub pid: Option<i32>,
    /// Generic tasks completed by every process that ran in this slot. A task is
    /// counted before its result is published, so once a task's result has been
    /// received, it is included here. (A process killed between the two counts a
    /// task whose result was lost.)
    pub tasks_done: u64,
    /// Bulk-map chunks completed by every process that ran in this slot, counted
    /// in the same way: once a bulk call has returned, its chunks are included.
    pub chunks_done: u64,
    /// The current process's resident private memory in bytes: `resident − shared`
    /// of `/proc/PID/statm`, its anonymous pages (heap, stacks). Under
    /// [`StartMethod::Fork`](crate::StartMethod) this includes pages inherited from
    /// the parent and not yet written, which are one copy shared by every process
    /// that maps them. `None` when no process runs in the slot.
    pub resident_private: Option<u64>,
    /// The current process's resident shared memory in bytes: `shared` of
    /// `/proc/PID/statm`, pages of files and shared memory it has touched (arrays,
    /// arenas, the control segment, the binary and its libraries), each also counted
    /// by every other process that touched it. `None` when no process runs in the
    /// slot.
    pub resident_shared: Option<u64>,
}

/// A snapshot of a pool's counters, from [`crate::Pool::stats`].
///
/// # Examples
///
/// ```
/// let pool = shmpool::Pool::new(2)?;
/// pool.tasks().chunksize(2).map(|x: u32| x + 1, 0..8u32)?; // four tasks
/// let stats = pool.stats();
/// assert_eq!(stats.workers.len(), 2);
/// assert_eq!(stats.respawns, 0);
/// assert!(stats.records_submitted >= 4 && stats.records_completed >= 4);
/// assert_eq!(stats.bytes_mapped, 0); // no array was shared
/// assert!(stats.shared_memory_bytes >= 4 << 20); // the control segment, at least
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// One entry per worker slot that has ever run a process.
    pub workers: Vec<WorkerStats>,
    /// Worker processes started to replace ones that exited.
    pub respawns: u64,
    /// Tasks run again after their worker died ([`crate::Tasks::retries`]).
    pub tasks_retried: u64,
    /// Records pushed into the submission ring.
    pub records_submitted: u64,
    /// Bytes that went through the submission side (records and task payloads).
    /// For bulk array maps this does not grow with the array: the arrays are shared,
    /// never sent.
    pub bytes_submitted: u64,
    /// Records taken from the completion rings.
    pub records_completed: u64,
    /// Bytes that came back through the completion side (records and results).
    pub bytes_completed: u64,
    /// Array segments mapped into workers.
    pub segments_shipped: u64,
    /// Bytes of arrays mapped into workers (shared, not copied).
    pub bytes_mapped: u64,
    /// Workers replaced because their resident memory grew past
    /// [`max_worker_rss`](crate::PoolBuilder::max_worker_rss).
    pub workers_retired_for_memory: u64,
    /// The shared memory the pool holds now, in bytes: its control segment, its
    /// task arena and its workers' result arenas (the current lengths of their
    /// files), and the data of every array currently shipped to its workers and not
    /// dropped (each array once). Pages nobody touched take no memory, so this
    /// bounds what the pool holds rather than measuring what is resident.
    pub shared_memory_bytes: u64,
    /// The instruction-set level bulk kernels run at ([`crate::simd::Simd`]): the highest
    /// the CPU supports, unless `PoolBuilder::simd` or `SHMPOOL_SIMD` chose one. Left
    /// to `Simd::Auto`, memory-bound elementwise kernels run at AVX2 at most.
    pub simd: crate::simd::Simd,
    /// The arrays counted in `shared_memory_bytes`, by the pages behind them.
    pub array_pages: ArrayPages,
    /// The pages a large array ([`crate::HUGE_PAGE_THRESHOLD`] bytes or more) made
    /// now with [`crate::SharedArray::zeroed`] would get: [`PageKind::Base`] when
    /// the system offers no huge pages (no hugetlbfs pages free, and shared-memory
    /// transparent huge pages `never`) or `SHMPOOL_HUGE_PAGES=0` turns them off.
    /// Read from `/proc` and `/sys` when `stats` is called.
    pub large_array_pages: PageKind,
}

/// Bytes of array data by the kind of page behind them ([`Stats::array_pages`]).
///
/// # Examples
///
/// ```
/// use shmpool::{Pages, Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let xs = SharedArray::<f64>::zeroed_with_pages(1 << 20, Pages::Base)?;
/// let mut ys = SharedArray::<f64>::zeroed_with_pages(1 << 20, Pages::Base)?;
/// pool.map_into(&xs, &mut ys, |v: f64| v + 1.0)?;
/// let pages = pool.stats().array_pages;
/// assert_eq!(pages.base_bytes, 2 * (8 << 20)); // both arrays, once each
/// assert_eq!(pages.huge_bytes(), 0);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArrayPages {
    /// Bytes on base pages (4 KiB on x86-64).
    pub base_bytes: u64,
    /// Bytes of arrays marked for transparent huge pages. The kernel backs them with
    /// huge pages where it found some at the first touch.
    pub transparent_huge_bytes: u64,
    /// Bytes on hugetlbfs pages.
    pub hugetlb_bytes: u64,
}

impl ArrayPages {
    /// Bytes on either kind of huge page.
    pub fn huge_bytes(&self) -> u64 {
        self.transparent_huge_bytes + self.hugetlb_bytes
    }

    /// Bytes in all.
    pub fn total(&self) -> u64 {
        self.base_bytes + self.huge_bytes()
    }

    pub(crate) fn add(&mut self, kind: PageKind, bytes: u64) {
        match kind {
            PageKind::Base => self.base_bytes += bytes,
            PageKind::TransparentHuge => self.transparent_huge_bytes += bytes,
            PageKind::HugeTlb => self.hugetlb_bytes += bytes,
        }
    }
}
