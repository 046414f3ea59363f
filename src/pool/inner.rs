//! The parent's side of a pool, as one set of owners: the settings it was built
//! with, the control segment, its life (`src/pool/life.rs`), the fork server
//! (`src/pool/fork_server.rs`), the shipping of arrays to workers
//! (`src/pool/shipping.rs`), generic tasks from submission to delivery
//! (`src/task/delivery.rs`, driven by `src/pool/task_rings.rs`), bulk jobs
//! (`src/job/ledger.rs`), the kills cancels ask for (`src/pool/kill.rs`), and
//! statistics. Each owner keeps its locks private; the methods here combine them.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PoolBuilder;
use super::fork_server::ForkServer;
use super::life::{PoolLife, StartError};
use super::shipping::Shipper;
use super::stats::{ArrayPages, Counters};
use crate::error::{Error, Result};
use crate::job::ledger::Ledger;
use crate::job::scratch::ScratchCache;
use crate::layout::{ControlView, Dims, INLINE_BYTES, Payload, TaskRecord};
use crate::shm::Mapping;
use crate::shm::arena::{ResultReader, TaskArena};
use crate::shm::liveness::Liveness;
use crate::shm::registry::IdleWorkers;
use crate::slot::SlotState;
use crate::sync::Ordering;
use crate::sys::{self, MapOptions};
use crate::task::cancel::CancelMode;
use crate::task::delivery::TaskDelivery;
use crate::wake::Backoff;
use crate::worker::server::Request;

/// Busy-spin iterations (a few microseconds) before a waiter starts yielding.
const SPINS: u32 = 128;

/// The most worker processes a pool may have (owner ids in claims are 16-bit, and
/// each process may need a spare slot).
pub(crate) const MAX_PROCESSES: usize = 4096;

/// How the pool was built: fixed for its life, read by anyone.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Worker processes the pool keeps running.
    pub processes: usize,
    /// The SIMD levels bulk kernels run at (resolved: never `Auto`).
    pub simd: crate::simd::Levels,
    /// How callers wait.
    pub backoff: Backoff,
    /// The default time limit of a task.
    pub task_timeout: Option<Duration>,
    /// The default number of retries of a task whose worker died.
    pub task_retries: u32,
    /// What `cancel()` and dropped futures and imaps do to running tasks.
    pub cancel_mode: CancelMode,
    /// `PoolBuilder::kill_decision_delay` (tests only).
    pub kill_decision_delay: Duration,
}

/// The control segment's mapping and memfd, which the view in [`PoolInner::ctrl`]
/// points into.
#[derive(Debug)]
struct ControlSegment {
    map: Mapping,
    /// Handed to the fork server.
    fd: OwnedFd,
}

/// The shared state of a pool: owners, each with private fields.
#[derive(Debug)]
pub(crate) struct PoolInner {
    /// How the pool was built.
    pub settings: Settings,
    /// The control segment (the memory is owned by `segment`).
    pub ctrl: ControlView,
    segment: ControlSegment,
    /// Running, closed or terminated; why it broke; whether the collector exited.
    pub life: PoolLife,
    /// The link to the fork server.
    pub server: ForkServer,
    /// The channels that ship array segments to workers.
    pub shipping: Shipper,
    /// Generic tasks from submission to delivery.
    pub delivery: TaskDelivery,
    /// The bulk job table, and the futures awaiting jobs.
    pub jobs: Ledger,
    /// The spare scratch of reductions.
    pub scratch: ScratchCache,
    /// Kills asked for by cancels, for the collector to order (`src/pool/kill.rs`).
    pub kill_requests: super::kill::Requests,
    /// Statistics.
    pub counters: Counters,
}

impl PoolInner {
    /// Creates the control segment for `processes` workers.
    pub(crate) fn new(processes: usize, b: &PoolBuilder) -> Result<Self> {
        if processes > MAX_PROCESSES {
            return Err(Error::TooManyProcesses {
                requested: processes,
                max: MAX_PROCESSES,
            });
        }
        let simd = simd_level(b.simd)?;
        let slots = (2 * processes).max(2) as u32;
        let dims = Dims {
            slots,
            submit_cap: 1024,
            completion_cap: 256,
            jobs: 32,
            max_chunks: 1 << 20,
            _reserved: 0,
        };
        let (_, total) = dims.layout();
        let ctrl_fd = sys::memfd(c"shmpool-control", total as u64)
            .map_err(Error::io("creating the control segment"))?;
        let ctrl_map = Mapping::new(
            ctrl_fd.as_fd(),
            total,
            MapOptions {
                writable: true,
                dont_fork: true,
            },
        )
        .map_err(Error::io("mapping the control segment"))?;
        let mut task_arena = TaskArena::new().map_err(Error::io("creating the task arena"))?;
        let mut init = None;
        if let Some(i) = &b.initializer {
            let bytes = i.args.clone()?;
            let payload = if bytes.len() <= INLINE_BYTES {
                Payload::inline(&bytes)
            } else {
                // Never freed: workers started later need it too.
                let block = task_arena
                    .store(&bytes)
                    .map_err(Error::io("storing initializer arguments"))?;
                Payload::in_arena_at(bytes.len(), block.off)
            };
            init = Some((crate::task::trampolines::task_offset(i.code), payload));
        }
        // SAFETY: a fresh, zero-filled mapping of `total` bytes that no other process
        // has yet; `ctrl_map` owns it for as long as the PoolInner (and so the view).
        let ctrl = unsafe {
            ControlView::init(ctrl_map.ptr(), ctrl_map.len(), dims, |h| {
                h.code_fingerprint = crate::kernel::fingerprint();
                h.parent_pid = sys::getpid() as u32;
                h.idle_spins = SPINS;
                h.idle_budget_us = b.idle_spin.as_micros().min(u32::MAX as u128) as u32;
                h.max_tasks_per_child = b.max_tasks_per_child;
                h.worker_memory_limit = b.worker_memory_limit;
                h.max_worker_rss = b.max_worker_rss;
                if let Some((code, payload)) = init {
                    h.has_initializer = 1;
                    h.init_code = code;
                    h.init_payload = payload;
                }
            })
        };
        let live = Liveness::global().map_err(Error::io("creating the liveness table"))?;
        let settings = Settings {
            processes,
            simd,
            backoff: Backoff {
                spins: SPINS,
                budget: b.idle_spin,
            },
            task_timeout: b.task_timeout,
            task_retries: b.task_retries,
            cancel_mode: b.cancel_mode,
            kill_decision_delay: b.kill_decision_delay,
        };
        Ok(PoolInner {
            settings,
            ctrl,
            segment: ControlSegment {
                map: ctrl_map,
                fd: ctrl_fd,
            },
            life: PoolLife::default(),
            server: ForkServer::default(),
            shipping: Shipper::new(slots as usize, live),
            delivery: TaskDelivery::new(slots as usize, task_arena, b.max_queued),
            jobs: Ledger::new(dims.jobs),
            scratch: ScratchCache::default(),
            kill_requests: Default::default(),
            counters: Counters::default(),
        })
    }

    /// The error for work that cannot run because the pool stopped.
    pub(crate) fn broken_or_terminated(&self) -> Error {
        self.life.broken_or_terminated()
    }

    /// Fails unless the pool takes work.
    pub(crate) fn check_open(&self) -> Result<()> {
        self.life.check_open()
    }

    /// `close`: no new work; workers exit once the submission ring is empty.
    pub(crate) fn close(&self) {
        tracing::info!("pool closing");
        self.life.close();
        // Workers are told once the backlog has gone into the ring: until then an
        // empty ring does not mean the work is done. The feed that empties it tells
        // them (`feed`); `request_close` and the feed decide under one mutex, so one of
        // the two does.
        if self.delivery.pending().request_close() {
            self.tell_workers_closing();
        }
        self.delivery.pending().wake_admissions();
        self.ctrl.header().completions.notify_always(1);
    }

    /// Lets workers exit once the submission ring is empty.
    fn tell_workers_closing(&self) {
        // SYNC(C3): Release — pairs with the worker's Acquire load of `closing` (SYNC C4):
        // pushes made before it (the whole backlog, after `close`) are visible to a worker
        // that sees the flag.
        self.ctrl.header().closing.store(1, Ordering::Release);
        self.ctrl.header().submit_ready.notify_always(u32::MAX);
    }

    /// Moves backlogged tasks into the submission ring while it has room, and wakes
    /// workers for them. Any thread may call it.
    pub(crate) fn feed(&self) {
        let fed = self.delivery.pending().feed(self.ctrl.submit_ring());
        self.after_feed(fed);
    }

    /// Counts and announces what a feed pushed.
    pub(crate) fn after_feed(&self, fed: crate::task::pending::Fed) {
        if fed.pushed > 0 {
            Counters::add(&self.counters.records_submitted, fed.pushed as u64);
            Counters::add(
                &self.counters.bytes_submitted,
                (fed.pushed * std::mem::size_of::<TaskRecord>()) as u64,
            );
            self.ctrl.header().submit_ready.notify(fed.pushed as u32);
        }
        if fed.close_now {
            self.tell_workers_closing();
        }
    }

    /// Asks the collector to kill the workers holding chunks of bulk job
    /// `index`/`generation` (a bulk cancel in `CancelMode::Kill`).
    pub(crate) fn request_chunk_kills(&self, index: u32, generation: u32) {
        let job = crate::job::protocol::pack_job(index, generation);
        self.kill_requests
            .push(super::kill::Target::JobChunks { job });
        self.ctrl.header().completions.notify_always(1);
    }

    /// `terminate`: kill every worker now (the collector finishes the rest).
    pub(crate) fn terminate(&self) {
        if self.life.terminate() {
            tracing::info!("pool terminating");
        }
        // SYNC(C3): Release — as in `close`; pairs with SYNC C4.
        self.ctrl.header().closing.store(1, Ordering::Release);
        let _ = self.server.send(Request::Shutdown, &[]);
        // Every sleeper that terminating concerns re-checks it: the collector, a
        // producer waiting for room in the ring, a submitter waiting under
        // `max_queued`.
        self.ctrl.header().completions.notify_always(1);
        self.ctrl.header().submit_space.notify_always(u32::MAX);
        self.delivery.pending().wake_admissions();
    }

    /// Marks the pool broken (workers cannot be kept running) and stops it.
    pub(crate) fn mark_broken(&self, why: String) {
        tracing::error!(reason = %why, "pool cannot keep its workers; stopping it");
        self.life.set_start_error(StartError::Message(why));
        self.terminate();
    }

    /// The control segment's memfd, for the fork server.
    pub(crate) fn ctrl_fd(&self) -> &OwnedFd {
        &self.segment.fd
    }

    /// Starts a new worker process in `slot` if the slot is empty; returns whether
    /// it did. Only the collector thread starts workers.
    ///
    /// The slot is claimed and its per-process words reset in one step
    /// (`Empty` → `Starting`, [`crate::slot`]), so no other process can be given it:
    /// nothing runs in it until the fork server receives the request sent last.
    pub(crate) fn start_worker(&self, slot: usize) -> Result<bool> {
        let s = self.ctrl.slot(slot);
        let Some(generation) = s.begin_start() else {
            return Ok(false);
        };
        tracing::debug!(worker = slot, generation, "slot starting a worker");
        let sent = self.send_start(slot, generation);
        if sent.is_err() {
            // No process will ever report: report the failure for it, so the slot
            // goes through `Exited` like any other.
            let failed = sys::ExitStatus::Code(crate::worker::exit_code::SPAWN_FAILED);
            let _ = s.report_exit(generation, failed);
        }
        sent.map(|()| true)
    }

    /// Creates the new process's result arena and channel, and asks the fork server
    /// for the process.
    fn send_start(&self, slot: usize, generation: u32) -> Result<()> {
        let reader =
            Arc::new(ResultReader::create().map_err(Error::io("creating a result arena"))?);
        let (parent_end, child_end) =
            sys::seqpacket_pair().map_err(Error::io("creating a worker channel"))?;
        sys::set_send_buffer(parent_end.as_fd(), 4 << 20);
        self.shipping.open_channel(slot, parent_end, &self.counters);
        let arena_fd = reader
            .fd()
            .try_clone_to_owned()
            .map_err(Error::io("sharing a result arena"))?;
        self.delivery.install_reader(slot, generation, reader);
        self.server
            .send(
                Request::Spawn {
                    slot: slot as u32,
                    generation,
                },
                &[child_end.as_fd(), arena_fd.as_fd()],
            )
            .map_err(Error::io("asking the fork server for a worker"))
    }

    /// Forgets a worker that exited: its channel, and its result arena. The collector
    /// drained the slot's completion ring first and the process is gone, so nothing
    /// is left to read there; the arena's memory (up to 16 MiB when idle) goes back
    /// now, not when the slot is next used, and `Stats::shared_memory_bytes` counts
    /// the arenas of live workers only.
    pub(crate) fn forget_worker(&self, slot: usize) {
        self.shipping.close_channel(slot);
        self.delivery.forget_reader(slot);
    }

    /// Pushes a record, waiting for space when the ring is full.
    pub(crate) fn push_record(&self, record: TaskRecord) -> Result<()> {
        Counters::add(&self.counters.records_submitted, 1);
        Counters::add(
            &self.counters.bytes_submitted,
            std::mem::size_of::<TaskRecord>() as u64,
        );
        let ring = self.ctrl.submit_ring();
        if ring.push(record).is_ok() {
            return Ok(());
        }
        self.settings.backoff.wait(
            &self.ctrl.header().submit_space,
            Some(Duration::from_millis(50)),
            || ring.push(record).ok().map(|_| Ok(())),
            || {
                self.life
                    .is_terminated()
                    .then(|| Err(self.broken_or_terminated()))
            },
        )
    }

    /// Waits until every initial worker is ready, or reports why it cannot be.
    pub(crate) fn wait_until_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(e) = self.life.start_error() {
                return Err(e);
            }
            // The phase load (SYNC G2) pairs with the worker's Ready transition.
            let ready = (0..self.ctrl.dims().slots as usize)
                .filter(|&i| self.ctrl.slot(i).phase().state == SlotState::Ready)
                .count();
            if ready >= self.settings.processes {
                return Ok(());
            }
            if self.life.collector_exited() || Instant::now() > deadline {
                return Err(Error::Start(
                    "workers did not become ready within 60 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The number of workers currently running.
    pub(crate) fn live_workers(&self) -> usize {
        // The phase loads (SYNC G2) only count.
        (0..self.ctrl.dims().slots as usize)
            .filter(|&i| self.ctrl.slot(i).phase().state.is_live())
            .count()
    }

    /// The shared memory this pool holds, in bytes: the control segment, the task
    /// arena and every result arena (their files' current lengths), and the data of
    /// every array shipped to a worker of the pool that is not dropped yet (each
    /// array once, however many workers map it). File lengths: pages no process
    /// touched take no memory, so this is what the pool may hold, not what is
    /// resident. Also the arrays' bytes by the pages behind them.
    pub(crate) fn shared_memory(&self) -> (u64, ArrayPages) {
        let control = self.segment.map.len() as u64;
        let task_arena = self.delivery.arena_bytes();
        let result_arenas = self.delivery.result_arena_bytes();
        let pages = self.shipping.array_pages();
        (control + task_arena + result_arenas + pages.total(), pages)
    }
}

impl IdleWorkers for PoolInner {
    fn wake_idle_workers(&self) {
        self.ctrl.header().submit_ready.notify(u32::MAX);
    }

    fn unmapped_through(&self, epoch: u64) -> bool {
        (0..self.ctrl.dims().slots as usize).all(|i| {
            let slot = self.ctrl.slot(i);
            // A worker that is not Ready or Retiring has taken no work since it
            // started (or is gone): it holds no array a job shipped it.
            // The phase load is SYNC G2.
            let serving = matches!(slot.phase().state, SlotState::Ready | SlotState::Retiring);
            // The Acquire load of SYNC L8.
            !serving || slot.unmapped_through() >= epoch
        })
    }
}

/// The SIMD levels a pool runs bulk kernels at: the builder's choice, else
/// `SHMPOOL_SIMD`, else the CPU's highest (and AVX2 at most for memory-bound
/// kernels, `Levels`); refused if the CPU cannot run it.
fn simd_level(chosen: Option<crate::simd::Simd>) -> Result<crate::simd::Levels> {
    let level = match chosen {
        Some(level) => level,
        None => match std::env::var("SHMPOOL_SIMD") {
            Ok(v) => crate::simd::Simd::parse(&v).ok_or_else(|| Error::InvalidArgument {
                name: "SHMPOOL_SIMD",
                reason: format!("{v:?} is none of baseline, avx2, avx512, auto"),
            })?,
            Err(_) => crate::simd::Simd::Auto,
        },
    };
    if !level.is_supported() {
        return Err(Error::SimdUnsupported {
            requested: level,
            detected: crate::simd::Simd::detected(),
        });
    }
    Ok(crate::simd::Levels::new(level))
}
