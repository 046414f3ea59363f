//! The state that generic tasks pass through from submission to delivery, in one
//! owner, [`TaskDelivery`]: the table of pending tasks and its backlog, the task
//! arena (large arguments), the readers of the workers' result arenas, the drain
//! lock, the callback thread, and the seal set when the pool's last sweep ran.
//!
//! Every lock here is private, and its guard can be had only through this type, which
//! holds each lock only inside one method call: the lock order is what the types
//! allow. Whoever drains the completion rings holds a [`Draining`] (the drain lock),
//! and under it takes the readers, then the table, then the task arena, each
//! released before the next (`src/pool/task_rings.rs`); then a result's own state or the
//! callback queue. The table and the arena are also taken alone by submitters and
//! cancellers. Nothing else is locked while any of them is held.

use std::ops::Range;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::callback_thread::CallbackRunner;
use super::pending::PendingTasks;
use super::sink::Ctx;
use crate::shm::arena::{Block, ResultReader, TaskArena};
use crate::sync::lock;

/// The generation of a worker process and the parent's reader of its result arena.
pub(crate) type ProcessReader = (u32, Arc<ResultReader>);

/// Generic tasks' state on the parent's side; see the module docs.
#[derive(Debug)]
pub(crate) struct TaskDelivery {
    /// Tasks submitted and not yet answered, and the backlog of those not yet in the
    /// submission ring (its own lock, `src/task/pending.rs`).
    pending: PendingTasks,
    /// Arguments too large for a ring record.
    arena: Mutex<TaskArena>,
    /// Per slot: the generation of the slot's latest process and the parent's reader
    /// of that process's result arena.
    readers: Mutex<Vec<Option<ProcessReader>>>,
    /// Held by whichever thread consumes the completion rings.
    drain_lock: Mutex<()>,
    /// Runs callbacks on their own thread.
    callbacks: CallbackRunner,
    /// Set by the collector just before its last sweep of the table: a task inserted
    /// after that sweep is failed by its own submitter (`submit_task`).
    sealed: AtomicBool,
    /// The next task id.
    next_task: AtomicU64,
}

/// The drain lock, held: whoever holds it consumes the completion rings.
#[derive(Debug)]
pub(crate) struct Draining<'a> {
    delivery: &'a TaskDelivery,
    _guard: MutexGuard<'a, ()>,
}

impl Draining<'_> {
    /// The reader of the result arena of `slot`'s latest process (taken and released
    /// under the drain lock: the lock order's second step).
    pub(crate) fn reader(&self, slot: usize) -> Option<ProcessReader> {
        lock(&self.delivery.readers)[slot].clone()
    }
}

impl TaskDelivery {
    /// What a delivery needs: where to hand callbacks.
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            callbacks: &self.callbacks,
        }
    }

    /// Empty, for `slots` worker slots, with `arena` for large arguments and
    /// `max_queued` bounding the tasks submitted and not yet answered.
    pub(crate) fn new(slots: usize, arena: TaskArena, max_queued: Option<usize>) -> Self {
        TaskDelivery {
            pending: PendingTasks::new(max_queued),
            arena: Mutex::new(arena),
            readers: Mutex::new((0..slots).map(|_| None).collect()),
            drain_lock: Mutex::new(()),
            callbacks: CallbackRunner::new(),
            sealed: AtomicBool::new(false),
            next_task: AtomicU64::new(1),
        }
    }

    /// The table of pending tasks.
    pub(crate) fn pending(&self) -> &PendingTasks {
        &self.pending
    }

    /// The callback thread.
    pub(crate) fn callbacks(&self) -> &CallbackRunner {
        &self.callbacks
    }

    /// `n` fresh task ids, consecutive.
    pub(crate) fn new_task_ids(&self, n: usize) -> Range<u64> {
        // Relaxed: only unique, not ordered with anything.
        let first = self.next_task.fetch_add(n as u64, Ordering::Relaxed);
        first..first + n as u64
    }

    /// Stores task arguments in the task arena.
    pub(crate) fn store_args(&self, bytes: &[u8]) -> std::io::Result<Block> {
        lock(&self.arena).store(bytes)
    }

    /// Frees an argument block, if there is one.
    pub(crate) fn free_block(&self, block: Option<Block>) {
        if let Some(b) = block {
            lock(&self.arena).free(b);
        }
    }

    /// A descriptor of the task arena's memfd, for the fork server.
    pub(crate) fn arena_fd(&self) -> std::io::Result<OwnedFd> {
        lock(&self.arena).fd().try_clone_to_owned()
    }

    /// The task arena's file length.
    pub(crate) fn arena_bytes(&self) -> u64 {
        lock(&self.arena).size()
    }

    /// Installs the result-arena reader of process `generation`, starting in `slot`.
    pub(crate) fn install_reader(&self, slot: usize, generation: u32, reader: Arc<ResultReader>) {
        lock(&self.readers)[slot] = Some((generation, reader));
    }

    /// Drops the reader of a process that exited (its completions drained).
    pub(crate) fn forget_reader(&self, slot: usize) {
        lock(&self.readers)[slot] = None;
    }

    /// The file lengths of the live workers' result arenas.
    pub(crate) fn result_arena_bytes(&self) -> u64 {
        lock(&self.readers)
            .iter()
            .flatten()
            .map(|(_, reader)| reader.size())
            .sum()
    }

    /// Takes the drain lock, waiting for it.
    pub(crate) fn drain_lock(&self) -> Draining<'_> {
        Draining {
            delivery: self,
            _guard: lock(&self.drain_lock),
        }
    }

    /// Takes the drain lock if no other thread holds it.
    pub(crate) fn try_drain_lock(&self) -> Option<Draining<'_>> {
        let guard = match self.drain_lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Draining {
            delivery: self,
            _guard: guard,
        })
    }

    /// Seals the table: the collector's last sweep follows.
    pub(crate) fn seal(&self) {
        // Relaxed: ordered by the table's mutex. A submitter that inserts after the
        // sweep takes that mutex after it, so it then reads `true` and fails its own
        // task; one that inserts before is failed by the sweep.
        self.sealed.store(true, Ordering::Relaxed);
    }

    /// Whether the table was sealed (read after inserting, under the table's order).
    pub(crate) fn is_sealed(&self) -> bool {
        // Relaxed: see `seal`.
        self.sealed.load(Ordering::Relaxed)
    }
}
