//! The parent's side of a pool: the control segment, the link to the fork server,
//! the channels that ship array segments to workers, and the table of bulk jobs.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{
    AtomicBool, AtomicU32 as StdAtomicU32, AtomicU64, Ordering as StdOrdering,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::PoolBuilder;
use super::callbacks::CallbackRunner;
use super::pending::PendingTasks;
use super::stats::{ArrayPages, Counters};
use crate::cancel::CancelMode;
use crate::error::{Error, Result};
use crate::job::ledger::Ledger;
use crate::layout::{ControlView, Dims, INLINE_BYTES, NO_CHUNK, NO_JOB, Payload, TaskRecord};
use crate::shm::arena::{ResultReader, TaskArena};
use crate::shm::liveness::Liveness;
use crate::shm::registry::IdleWorkers;
use crate::shm::{Mapping, PageKind, Segment};
use crate::slot::SlotState;
use crate::sync::Ordering;
use crate::sys::{self, MapOptions, Pid};
use crate::wake::Backoff;
use crate::worker::server::Request;

/// The state of a pool, held in [`PoolInner`] as a `u32` and decoded by
/// [`PoolInner::state`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolState {
    /// Taking work.
    Running = 0,
    /// `close` was called.
    Closed = 1,
    /// `terminate` was called (or the pool broke).
    Terminated = 2,
}

impl PoolState {
    /// Decodes the state word; `None` for a value that is no state.
    fn decode(word: u32) -> Option<PoolState> {
        match word {
            0 => Some(PoolState::Running),
            1 => Some(PoolState::Closed),
            2 => Some(PoolState::Terminated),
            _ => None,
        }
    }
}

/// Busy-spin iterations (a few microseconds) before a waiter starts yielding.
const SPINS: u32 = 128;

/// The most worker processes a pool may have (owner ids in claims are 16-bit, and
/// each process may need a spare slot).
pub(crate) const MAX_PROCESSES: usize = 4096;

/// Why a pool cannot keep workers running.
#[derive(Debug, Clone)]
pub(crate) enum StartError {
    /// Workers cannot be started or kept (message for `Error::Start`).
    Message(String),
    /// The initializer panicked (message for `Error::InitializerFailed`).
    Initializer(String),
}

impl StartError {
    /// The public error.
    pub(crate) fn to_error(&self) -> Error {
        match self {
            StartError::Message(m) => Error::Start(m.clone()),
            StartError::Initializer(m) => Error::InitializerFailed { message: m.clone() },
        }
    }
}

/// The parent's end of the fork server's socket.
#[derive(Debug)]
pub(crate) struct ServerLink {
    pub sock: OwnedFd,
    pub pid: Pid,
}

/// The channel to one worker, and what it has been sent.
#[derive(Debug)]
struct Channel {
    sock: OwnedFd,
    /// Segment id → its liveness word, data bytes and pages, for every segment sent
    /// to this worker.
    shipped: HashMap<u64, (u32, u64, PageKind)>,
}

/// Segments in use by running jobs, and the channels to send them on.
#[derive(Debug, Default)]
pub(crate) struct Shipping {
    channels: Vec<Option<Channel>>,
    active: HashMap<u64, (Arc<Segment>, usize)>,
}

/// The generation of a worker process and the parent's reader of its result arena.
pub(crate) type ProcessReader = (u32, Arc<ResultReader>);

/// The shared state of a pool.
#[derive(Debug)]
pub(crate) struct PoolInner {
    /// Worker processes the pool keeps running.
    pub processes: usize,
    /// The control segment (the memory is owned by `ctrl_map`).
    pub ctrl: ControlView,
    ctrl_map: Mapping,
    /// The control segment's memfd, handed to the fork server.
    pub ctrl_fd: OwnedFd,
    /// The liveness table's memfd, handed to the fork server.
    pub live: &'static Liveness,
    state: StdAtomicU32,
    /// The fork server, once started.
    pub server: Mutex<Option<ServerLink>>,
    shipping: Mutex<Shipping>,
    /// Bulk jobs (packed index and generation) whose running chunks a cancel asked
    /// the collector to kill.
    chunk_kills: Mutex<Vec<u64>>,
    /// Wakers of awaited bulk jobs (packed index and generation), woken by the
    /// collector when their job finishes.
    bulk_wakers: Mutex<Vec<(u64, std::task::Waker)>>,
    /// The spare scratch of reductions.
    pub reduce_scratch: super::scratch::ScratchCache,
    /// The bulk job table.
    pub jobs: Ledger,
    /// Why workers could not start, if they could not.
    pub start_error: Mutex<Option<StartError>>,
    /// Set by the collector thread as it exits.
    pub collector_exited: AtomicBool,
    /// Set by the collector just before its last sweep of `pending`: a task
    /// inserted after that sweep is failed by its own submitter (`submit_task`).
    pub pending_sealed: AtomicBool,
    /// How callers wait.
    pub backoff: Backoff,
    /// The SIMD level bulk kernels run at (resolved: never `Auto`).
    pub simd: crate::Simd,
    /// Statistics.
    pub counters: Counters,
    /// Arguments too large for a ring slot.
    pub task_arena: Mutex<TaskArena>,
    /// Per slot: the generation of the slot's latest process and the parent's reader
    /// of that process's result arena.
    pub readers: Mutex<Vec<Option<ProcessReader>>>,
    /// Tasks submitted and not yet answered, and the backlog of those not yet in the
    /// submission ring.
    pub tasks: PendingTasks,
    /// The next task id.
    pub next_task: AtomicU64,
    /// Held by whichever thread consumes the completion rings.
    pub drain_lock: Mutex<()>,
    /// Runs callbacks on their own thread.
    pub callbacks: CallbackRunner,
    /// The default time limit of a task.
    pub task_timeout: Option<Duration>,
    /// The default number of retries of a task whose worker died.
    pub task_retries: u32,
    /// What `cancel()` and dropped futures and imaps do to running tasks.
    pub cancel_mode: CancelMode,
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
            init = Some((crate::task::task_offset(i.code), payload));
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
        for i in 0..slots as usize {
            ctrl.slot(i).bulk_job.store(NO_JOB, Ordering::Relaxed);
        }
        let live = Liveness::global().map_err(Error::io("creating the liveness table"))?;
        Ok(PoolInner {
            processes,
            ctrl,
            ctrl_map,
            ctrl_fd,
            live,
            state: StdAtomicU32::new(PoolState::Running as u32),
            server: Mutex::new(None),
            chunk_kills: Mutex::new(Vec::new()),
            bulk_wakers: Mutex::new(Vec::new()),
            reduce_scratch: Default::default(),
            shipping: Mutex::new(Shipping {
                channels: (0..slots).map(|_| None).collect(),
                active: HashMap::new(),
            }),
            jobs: Ledger::new(dims.jobs),
            start_error: Mutex::new(None),
            collector_exited: AtomicBool::new(false),
            pending_sealed: AtomicBool::new(false),
            simd,
            backoff: Backoff {
                spins: SPINS,
                budget: b.idle_spin,
            },
            counters: Counters::default(),
            task_arena: Mutex::new(task_arena),
            readers: Mutex::new((0..slots).map(|_| None).collect()),
            tasks: PendingTasks::new(b.max_queued),
            next_task: AtomicU64::new(1),
            drain_lock: Mutex::new(()),
            callbacks: CallbackRunner::new(),
            task_timeout: b.task_timeout,
            task_retries: b.task_retries,
            cancel_mode: b.cancel_mode,
        })
    }

    /// The pool state.
    pub(crate) fn state(&self) -> PoolState {
        // SYNC(C2): Acquire — pairs with the Release of the transitions (SYNC C1): what was
        // done before them, such as `start_error` set by `mark_broken`, is visible to a caller
        // that sees the new state.
        let word = self.state.load(StdOrdering::Acquire);
        // Only the transitions below store the word, always a PoolState; anything else
        // would read as stopped, the state that lets nothing new start.
        PoolState::decode(word).unwrap_or(PoolState::Terminated)
    }

    /// Whether `close` or `terminate` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.state() != PoolState::Running
    }

    /// Fails unless the pool takes work.
    pub(crate) fn check_open(&self) -> Result<()> {
        match self.state() {
            PoolState::Running => Ok(()),
            PoolState::Closed => Err(Error::PoolClosed),
            PoolState::Terminated => Err(self.broken_or_terminated()),
        }
    }

    /// The error for work that cannot run because the pool stopped.
    pub(crate) fn broken_or_terminated(&self) -> Error {
        match lock(&self.start_error).as_ref() {
            Some(e) => e.to_error(),
            None => Error::PoolTerminated,
        }
    }

    /// `close`: no new work; workers exit once the submission ring is empty.
    pub(crate) fn close(&self) {
        tracing::info!("pool closing");
        // SYNC(C1): AcqRel — RUNNING → CLOSED, released to readers of `state` (SYNC C2). The
        // Acquire halves (success and failure) publish nothing we read; Release would do.
        let _ = self.state.compare_exchange(
            PoolState::Running as u32,
            PoolState::Closed as u32,
            StdOrdering::AcqRel,
            StdOrdering::Acquire,
        );
        // Workers are told once the backlog has gone into the ring: until then an
        // empty ring does not mean the work is done. The feed that empties it tells
        // them (`feed`); `request_close` and the feed decide under one mutex, so one of
        // the two does.
        if self.tasks.request_close() {
            self.tell_workers_closing();
        }
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
        let fed = self.tasks.feed(self.ctrl.submit_ring());
        self.after_feed(fed);
    }

    /// Counts and announces what a feed pushed.
    pub(crate) fn after_feed(&self, fed: super::pending::Fed) {
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
        lock(&self.chunk_kills).push(crate::job::protocol::pack_job(index, generation));
        self.ctrl.header().completions.notify_always(1);
    }

    /// Registers the waker of an awaited bulk job (replacing an older one of the
    /// same job).
    pub(crate) fn await_bulk_job(&self, index: u32, generation: u32, waker: &std::task::Waker) {
        let packed = crate::job::protocol::pack_job(index, generation);
        let mut wakers = lock(&self.bulk_wakers);
        match wakers.iter_mut().find(|(p, _)| *p == packed) {
            Some((_, w)) => w.clone_from(waker),
            None => wakers.push((packed, waker.clone())),
        }
    }

    /// Forgets the waker of an awaited bulk job.
    pub(crate) fn forget_bulk_job(&self, index: u32, generation: u32) {
        let packed = crate::job::protocol::pack_job(index, generation);
        lock(&self.bulk_wakers).retain(|(p, _)| *p != packed);
    }

    /// Wakes the futures of finished bulk jobs (all of them, with `all`: the
    /// collector is leaving, and they must see it).
    pub(crate) fn wake_bulk_futures(&self, all: bool) {
        let mut wakers = lock(&self.bulk_wakers);
        if wakers.is_empty() {
            return;
        }
        wakers.retain(|(packed, waker)| {
            let (index, _) = crate::job::protocol::unpack_job(*packed);
            let done = all || crate::job::protocol::is_finished(self.ctrl.job(index));
            if done {
                waker.wake_by_ref();
            }
            !done
        });
    }

    /// The bulk jobs whose running chunks are to be killed.
    pub(crate) fn take_chunk_kills(&self) -> Vec<u64> {
        std::mem::take(&mut *lock(&self.chunk_kills))
    }

    /// `terminate`: kill every worker now (the collector finishes the rest).
    pub(crate) fn terminate(&self) {
        if self.state() != PoolState::Terminated {
            tracing::info!("pool terminating");
        }
        // SYNC(C1): Release — the TERMINATED state; `start_error` (set by `mark_broken` before
        // this) is visible to readers of `state` (SYNC C2).
        self.state
            .store(PoolState::Terminated as u32, StdOrdering::Release);
        // SYNC(C3): Release — as in `close`; pairs with SYNC C4.
        self.ctrl.header().closing.store(1, Ordering::Release);
        let _ = self.send_server(Request::Shutdown, &[]);
        self.ctrl.header().completions.notify_always(1);
    }

    /// Marks the pool broken (workers cannot be kept running) and stops it.
    pub(crate) fn mark_broken(&self, why: String) {
        tracing::error!(reason = %why, "pool cannot keep its workers; stopping it");
        self.set_start_error(StartError::Message(why));
        self.terminate();
    }

    /// Sends a request (and descriptors) to the fork server.
    pub(crate) fn send_server(&self, req: Request, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        let server = lock(&self.server);
        match server.as_ref() {
            Some(link) => sys::send_msg(link.sock.as_fd(), &req.to_bytes(), fds),
            None => Err(std::io::Error::other("no fork server")),
        }
    }

    /// Starts a new worker process in `slot` if the slot is empty; returns whether
    /// it did. Only the collector thread starts workers.
    ///
    /// The slot is claimed first (`Empty` → `Starting`, [`crate::slot`]), so no
    /// other process can be given it, and then reset: nothing runs in it until the
    /// fork server receives the request sent last.
    pub(crate) fn start_worker(&self, slot: usize) -> Result<bool> {
        let s = self.ctrl.slot(slot);
        let Some(generation) = s.lifecycle.begin_start() else {
            return Ok(false);
        };
        tracing::debug!(worker = slot, generation, "slot starting a worker");
        s.current_task.store(0, Ordering::Relaxed);
        s.bulk_job.store(NO_JOB, Ordering::Relaxed);
        s.bulk_chunk.store(NO_CHUNK, Ordering::Relaxed);
        s.deadline_ns.store(0, Ordering::Relaxed);
        s.started_ns.store(0, Ordering::Relaxed);
        s.asleep.store(0, Ordering::Relaxed);
        s.memory_limit_hit.store(0, Ordering::Relaxed);
        s.exit_status.store(0, Ordering::Relaxed);
        s.pid.store(0, Ordering::Relaxed);
        let sent = self.send_start(slot, generation);
        if sent.is_err() {
            // No process will ever report: report the failure for it, so the slot
            // goes through `Exited` like any other.
            let failed = sys::ExitStatus::Code(crate::worker::exit_code::SPAWN_FAILED);
            s.exit_status.store(failed.encode(), Ordering::Relaxed);
            s.lifecycle.mark_exited(generation);
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
        {
            let mut sh = lock(&self.shipping);
            let mut channel = Channel {
                sock: parent_end,
                shipped: HashMap::new(),
            };
            let active: Vec<Arc<Segment>> =
                sh.active.values().map(|(s, _)| Arc::clone(s)).collect();
            for seg in &active {
                ship(&mut channel, seg, self.live, &self.counters);
            }
            sh.channels[slot] = Some(channel);
        }
        let arena_fd = reader
            .fd()
            .try_clone_to_owned()
            .map_err(Error::io("sharing a result arena"))?;
        lock(&self.readers)[slot] = Some((generation, reader));
        self.send_server(
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
        lock(&self.shipping).channels[slot] = None;
        lock(&self.readers)[slot] = None;
    }

    /// Sends `segments` to every worker that does not have them yet, and keeps them
    /// ready for workers started while the job runs.
    pub(crate) fn ship_for_job(&self, segments: &[&Arc<Segment>]) -> Result<()> {
        // Register liveness words first (outside the lock: it may allocate the table).
        for seg in segments {
            seg.ship_info()
                .map_err(Error::io("registering an array with the pool"))?;
        }
        let mut sh = lock(&self.shipping);
        for seg in segments {
            sh.active
                .entry(seg.id())
                .or_insert_with(|| (Arc::clone(seg), 0))
                .1 += 1;
        }
        for channel in sh.channels.iter_mut().flatten() {
            for seg in segments {
                ship(channel, seg, self.live, &self.counters);
            }
        }
        Ok(())
    }

    /// Releases what [`PoolInner::ship_for_job`] kept.
    pub(crate) fn unship_after_job(&self, segments: &[&Arc<Segment>]) {
        let mut sh = lock(&self.shipping);
        for seg in segments {
            if let Some(entry) = sh.active.get_mut(&seg.id()) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    sh.active.remove(&seg.id());
                }
            }
        }
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
        self.backoff.wait(
            &self.ctrl.header().submit_space,
            Some(Duration::from_millis(50)),
            || ring.push(record).ok().map(|_| Ok(())),
            || (self.state() == PoolState::Terminated).then(|| Err(self.broken_or_terminated())),
        )
    }

    /// Waits until every initial worker is ready, or reports why it cannot be.
    pub(crate) fn wait_until_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(e) = lock(&self.start_error).as_ref() {
                return Err(e.to_error());
            }
            // The phase load (SYNC G2) pairs with the worker's Ready transition.
            let ready = (0..self.ctrl.dims().slots as usize)
                .filter(|&i| self.ctrl.slot(i).lifecycle.load().state == SlotState::Ready)
                .count();
            if ready >= self.processes {
                return Ok(());
            }
            // SYNC(C6): Acquire — pairs with SYNC C5.
            if self.collector_exited.load(StdOrdering::Acquire) || Instant::now() > deadline {
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
            .filter(|&i| self.ctrl.slot(i).lifecycle.load().state.is_live())
            .count()
    }

    /// The shared memory this pool holds, in bytes: the control segment, the task
    /// arena and every result arena (their files' current lengths), and the data of
    /// every array shipped to a worker of the pool that is not dropped yet (each
    /// array once, however many workers map it). File lengths: pages no process
    /// touched take no memory, so this is what the pool may hold, not what is
    /// resident. Also the arrays' bytes by the pages behind them.
    pub(crate) fn shared_memory(&self) -> (u64, ArrayPages) {
        let control = self.ctrl_map.len() as u64;
        let task_arena = lock(&self.task_arena).size();
        let result_arenas: u64 = lock(&self.readers)
            .iter()
            .flatten()
            .map(|(_, reader)| reader.size())
            .sum();
        let mut pages = ArrayPages::default();
        {
            let sh = lock(&self.shipping);
            let mut seen = HashMap::new();
            for channel in sh.channels.iter().flatten() {
                for (&id, &(word, bytes, kind)) in &channel.shipped {
                    if self.live.is_alive(word, id) {
                        seen.insert(id, (bytes, kind));
                    }
                }
            }
            for (seg, _) in sh.active.values() {
                seen.insert(seg.id(), (seg.data_bytes() as u64, seg.page_kind()));
            }
            for (bytes, kind) in seen.into_values() {
                pages.add(kind, bytes);
            }
        }
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
            let serving = matches!(
                slot.lifecycle.load().state,
                SlotState::Ready | SlotState::Retiring
            );
            // SYNC(L8): Acquire — pairs with the worker's Release store (SYNC L7).
            !serving || slot.unmapped_through.load(Ordering::Acquire) >= epoch
        })
    }
}

/// Sends one segment on a channel unless it was sent before; prunes the record of
/// dropped segments now and then.
fn ship(channel: &mut Channel, seg: &Segment, live: &Liveness, counters: &Counters) {
    if channel.shipped.contains_key(&seg.id()) {
        return;
    }
    let Ok(info) = seg.ship_info() else { return };
    if channel.shipped.len() >= 256 {
        channel
            .shipped
            .retain(|&id, &mut (word, ..)| live.is_alive(word, id));
    }
    // A failure means the worker is gone; its replacement gets a new channel.
    if sys::send_msg(channel.sock.as_fd(), &info.to_bytes(), &[seg.fd()]).is_ok() {
        channel.shipped.insert(
            seg.id(),
            (info.live as u32, info.data_bytes, seg.page_kind()),
        );
        Counters::add(&counters.segments_shipped, 1);
        Counters::add(&counters.bytes_mapped, info.data_bytes);
    }
}

/// Locks a mutex, ignoring poisoning (no invariant here spans a panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The SIMD level a pool runs bulk kernels at: the builder's choice, else
/// `SHMPOOL_SIMD`, else the CPU's highest; refused if the CPU cannot run it.
fn simd_level(chosen: Option<crate::Simd>) -> Result<crate::Simd> {
    let level = match chosen {
        Some(level) => level,
        None => match std::env::var("SHMPOOL_SIMD") {
            Ok(v) => crate::Simd::parse(&v).ok_or_else(|| Error::InvalidArgument {
                name: "SHMPOOL_SIMD",
                reason: format!("{v:?} is none of baseline, avx2, avx512, auto"),
            })?,
            Err(_) => crate::Simd::Auto,
        },
    };
    if !level.is_supported() {
        return Err(Error::SimdUnsupported {
            requested: level,
            detected: crate::Simd::detected(),
        });
    }
    Ok(level.resolve())
}
