//! The worker's loop: it claims records from the submission ring and runs them
//! (`src/worker/task_exec.rs`, `src/worker/bulk_exec.rs`), sleeps when idle
//! (`src/worker/idle.rs`), and retires when told to or when it grew too big.

use std::os::fd::AsFd;
use std::time::Duration;

use super::memory_limits as memory;
use super::role::WorkerArgs;
use super::segments::SegmentCache;
use super::{bulk_exec, exit_code, idle, segments};
use crate::layout::{ControlView, RecordKind, TaskRecord};
use crate::ring::mpmc::{Claimed, MpmcRing};
use crate::shm::Mapping;
use crate::shm::arena::{ArenaMap, ResultWriter};
use crate::shm::liveness::LivenessView;
use crate::sync::{AtomicU32, Ordering};
use crate::sys::{self, MapOptions, Pid};

/// Runs a worker to completion and exits the process.
pub(crate) fn worker_main(args: WorkerArgs) -> ! {
    let code = match Worker::start(args) {
        Ok(mut w) => w.run(),
        Err(code) => code,
    };
    sys::exit_now(code)
}

/// What the loop does after a record.
enum Next {
    Continue,
    Retire,
}

pub(super) struct Worker {
    pub(super) ctrl: ControlView,
    // Owns the memory `ctrl` points into; declared after it so it drops last.
    pub(super) _ctrl_map: Mapping,
    pub(super) slot_index: usize,
    pub(super) generation: u32,
    pub(super) owner: u16,
    pub(super) segments: SegmentCache,
    pub(super) server_pid: Pid,
    pub(super) tasks_run: u64,
    pub(super) task_arena: ArenaMap,
    pub(super) results: ResultWriter,
    pub(super) out: Vec<u8>,
    /// The check of resident memory after tasks (`max_worker_rss`), if asked for.
    pub(super) rss: Option<memory::RssWatch>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Before the control segment (which holds the flag) is unmapped.
        sys::stop_recording_aborts();
    }
}

impl Worker {
    fn start(args: WorkerArgs) -> Result<Worker, i32> {
        if sys::set_parent_death_kill().is_err() || sys::getppid() != args.server_pid {
            return Err(exit_code::ORPHANED);
        }
        sys::unblock_all_signals();
        sys::ignore_sigpipe();
        if args.reexec {
            // A fresh process: installing the hook takes no inherited lock.
            crate::unwind::install_hook();
        }
        crate::unwind::enter_worker_mode();

        let len = sys::file_len(args.ctrl.as_fd()).map_err(|_| exit_code::BAD_SEGMENT)? as usize;
        // Not populated: most of the segment is bulk-job bitmaps that a worker may
        // never touch, and prefaulting all 4 MiB in every worker was 80% of a pool's
        // start-up (5.9 ms against 1.1 ms for 2 workers). The pages a worker uses
        // fault in once, on first touch.
        let ctrl_map = Mapping::new(
            args.ctrl.as_fd(),
            len,
            MapOptions {
                writable: true,
                dont_fork: true,
            },
        )
        .map_err(|_| exit_code::BAD_SEGMENT)?;
        // SAFETY: the mapping is the pool's control segment, owned by `_ctrl_map`, which
        // the Worker keeps for as long as it keeps the view.
        let ctrl = unsafe { ControlView::open(ctrl_map.ptr(), ctrl_map.len()) }
            .map_err(|_| exit_code::BAD_SEGMENT)?;
        if args.reexec && ctrl.header().code_fingerprint != crate::kernel::fingerprint() {
            return Err(exit_code::BINARY_MISMATCH);
        }
        let live = LivenessView::open(args.live.as_fd()).map_err(|_| exit_code::BAD_SEGMENT)?;
        let slot_index = args.slot as usize;
        if slot_index >= ctrl.dims().slots as usize {
            return Err(exit_code::BAD_SEGMENT);
        }
        let task_arena =
            ArenaMap::open(args.task_arena, false).map_err(|_| exit_code::BAD_SEGMENT)?;
        let results = ResultWriter::new(args.result_arena).map_err(|_| exit_code::BAD_SEGMENT)?;
        // Last, so that what the worker holds now (its mappings, what it inherited)
        // is the baseline both controls count from; before the initializer, which
        // runs under them.
        let header = ctrl.header();
        if header.worker_memory_limit != 0 {
            memory::apply_limit(ctrl.slot(slot_index), header.worker_memory_limit)
                .map_err(|_| exit_code::MEMORY_CONTROLS)?;
        }
        let rss = match header.max_worker_rss {
            0 => None,
            allowance => {
                Some(memory::RssWatch::start(allowance).map_err(|_| exit_code::MEMORY_CONTROLS)?)
            }
        };
        Ok(Worker {
            ctrl,
            _ctrl_map: ctrl_map,
            slot_index,
            generation: args.generation,
            owner: args.slot as u16 + 1,
            segments: SegmentCache::new(args.channel, live),
            server_pid: args.server_pid,
            tasks_run: 0,
            task_arena,
            results,
            out: Vec::new(),
            rss,
        })
    }

    fn run(&mut self) -> i32 {
        let ctrl = self.ctrl;
        let slot = ctrl.slot(self.slot_index);
        slot.record_pid(sys::getpid() as u32);
        if let Err(code) = self.run_initializer() {
            return code;
        }
        // SYNC(W5): the transition's Release (SYNC G1) publishes `pid` (stored above)
        // with Ready; the parent's loads of the phase (SYNC G2) pair with it. It fails
        // only if this process is no longer the slot's (the collector reported it
        // dead): then it must not take work.
        if !slot.become_ready(self.generation) {
            return exit_code::ORPHANED;
        }
        ctrl.header().completions.notify(1);

        self.join_active_jobs();
        let ring = ctrl.submit_ring();
        loop {
            let next = self.next_record(ring);
            let Some(claimed) = next else {
                return exit_code::OK;
            };
            match self.dispatch(claimed) {
                Err(_) => return exit_code::ORPHANED,
                Ok(Next::Retire) => return exit_code::OK,
                Ok(Next::Continue) => {}
            }
            self.segments.drop_dead_if_any_retired();
        }
    }

    /// A new worker joins bulk jobs already in progress, so a replacement picks up
    /// the chunks its dead predecessor would have run.
    fn join_active_jobs(&mut self) {
        let ctrl = self.ctrl;
        for index in 0..ctrl.dims().jobs {
            let job = ctrl.job(index);
            if crate::job::protocol::is_finished(job) {
                continue;
            }
            let (generation, next) = crate::job::protocol::cursor_state(job);
            if generation != 0 && next < job.chunks.load(Ordering::Relaxed) {
                let _ = self.run_bulk(index, generation);
            }
        }
    }

    /// Waits for the next record: spin, yield, then sleep on `submit_ready` until a
    /// source in [`idle::Sources`] has something. `None` when the pool is closing and
    /// the ring is empty, or the parent is gone.
    fn next_record<'r>(
        &mut self,
        ring: MpmcRing<'r, TaskRecord>,
    ) -> Option<Claimed<'r, TaskRecord>> {
        let ctrl = self.ctrl;
        let header = ctrl.header();
        let slot = ctrl.slot(self.slot_index);
        let owner = self.owner;
        let budget = Duration::from_micros(u64::from(header.idle_budget_us));
        let mut wake = {
            let sources = idle_sources(ring, owner, &header.closing, &self.segments);
            crate::wake::spin_then_yield(header.idle_spins, budget, || sources.check())
        };
        loop {
            match wake {
                Some(idle::Wake::Record(claimed)) => return Some(claimed),
                Some(idle::Wake::Closing) => return None,
                Some(idle::Wake::Retired) | None => {}
            }
            let Ok(through) = self.segments.housekeep() else {
                return None;
            };
            // The unmaps are done: published with SYNC L7.
            slot.record_unmapped_through(through);
            if sys::getppid() != self.server_pid {
                return None;
            }
            if self
                .rss
                .as_mut()
                .is_some_and(memory::RssWatch::before_sleep)
            {
                self.retire_for_memory();
                return None;
            }
            wake = idle_sources(ring, owner, &header.closing, &self.segments).sleep(
                &header.submit_ready,
                |asleep| slot.set_asleep(asleep),
                Some(Duration::from_secs(1)),
            );
        }
    }

    fn dispatch(&mut self, claimed: Claimed<'_, TaskRecord>) -> Result<Next, segments::ParentGone> {
        let ctrl = self.ctrl;
        let header = ctrl.header();
        let slot = ctrl.slot(self.slot_index);
        let record = claimed.record();
        match RecordKind::decode(record.kind) {
            Some(RecordKind::Task) => {
                // Recorded as ours before the ring slot is released (SYNC W3).
                slot.take_task(record.id);
                claimed.release();
                header.submit_space.notify(1);
                let limit = u64::from(header.max_tasks_per_child);
                let last = limit != 0 && self.tasks_run + 1 >= limit;
                if last {
                    // Ask for a replacement now, so it starts while this task runs.
                    // SYNC(W6): the transition's Release (SYNC G1) orders `current_task`
                    // (SYNC W3) before Retiring, for the collector's loads (SYNC G2).
                    slot.begin_retiring(self.generation);
                    header.completions.notify_always(1);
                }
                self.run_task(&record)?;
                self.tasks_run += 1;
                if last {
                    return Ok(Next::Retire);
                }
                let now = sys::monotonic_ns();
                if self.rss.as_mut().is_some_and(|w| w.after_task(now)) {
                    self.retire_for_memory();
                    return Ok(Next::Retire);
                }
                Ok(Next::Continue)
            }
            Some(RecordKind::JoinBulk) => {
                claimed.release();
                header.submit_space.notify(1);
                let (index, generation) = crate::job::protocol::unpack_job(record.id);
                self.run_bulk(index, generation)?;
                Ok(Next::Continue)
            }
            None => {
                // Unknown to this version: drop it rather than wedge the ring.
                claimed.release();
                header.submit_space.notify(1);
                Ok(Next::Continue)
            }
        }
    }

    /// Retires this worker because its resident memory grew past `max_worker_rss`:
    /// as `max_tasks_per_child` does, `Ready → Retiring` asks the collector for a
    /// replacement, and the worker exits instead of taking another record.
    fn retire_for_memory(&self) {
        let header = self.ctrl.header();
        header.retired_for_memory.fetch_add(1, Ordering::Relaxed);
        // SYNC(W6): the transition's Release (SYNC G1) publishes the count (and
        // `current_task`, 0 after the task) with Retiring, for the collector's loads
        // (SYNC G2).
        self.ctrl
            .slot(self.slot_index)
            .begin_retiring(self.generation);
        header.completions.notify_always(1);
    }

    fn run_bulk(&mut self, index: u32, generation: u32) -> Result<(), segments::ParentGone> {
        let ctrl = self.ctrl;
        let slot = ctrl.slot(self.slot_index);
        // No chunk of this job is ours yet: a death before the first claim names none
        // (rather than the last chunk of the previous job).
        slot.enter_job(crate::job::protocol::pack_job(index, generation));
        let result = bulk_exec::run(self, index, generation);
        slot.leave_job();
        result
    }
}

/// What can wake this worker when idle, as of its last check of its mappings.
fn idle_sources<'a, 'r>(
    ring: MpmcRing<'r, TaskRecord>,
    owner: u16,
    closing: &'a AtomicU32,
    segments: &'a SegmentCache,
) -> idle::Sources<'a, 'r, TaskRecord> {
    idle::Sources {
        ring,
        owner,
        closing,
        live: segments.table(),
        checked_epoch: segments.checked_epoch(),
    }
}
