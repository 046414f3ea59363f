//! The parent's table of submitted tasks, and the backlog of those waiting for room
//! in the submission ring.
//!
//! One owner, [`PendingTasks`], knows where every task is from its submission to its
//! answer, and every change of place goes through it, under its one mutex:
//!
//! ```text
//!            insert                 feed (ring has room)
//! submit ──────────→ Backlog ─────────────────────────────→ Ring(pos)
//!                      ▲  │ cancel: removed, answered          │ │ completion / final death:
//!                      │  ▼                                    │ │ removed, answered
//!   died (retry) or    │                                       │ │
//!   requeue (claimed,  └───────────────────────────────────────┘ │ cancel: withdrawn from the
//!   never started)                                               │ ring (removed, answered), or,
//!                                                                ▼ if a worker holds it:
//!                                                           Cancelled (answered; the record of
//!                                                           a task a worker may still read)
//!                                         completion or death of a Cancelled task: removed,
//!                                         its result discarded, its argument block freed
//! ```
//!
//! So submission never waits for the ring: what does not fit stays in the backlog, in
//! the parent's memory, and [`PendingTasks::feed`] moves it into the ring as the ring
//! drains (called by whichever thread drains completions, and by the collector on
//! every pass, so a backlog drains after deaths, replacements and `close` even when
//! no completion arrives). A task leaves the table in exactly one place, under the
//! mutex, so it is answered exactly once: by its completion, its final death, its
//! cancellation, or the pool's termination.
//!
//! Cancelling a task in the ring uses [`MpmcRing::withdraw`], whose compare-and-swap
//! on the slot's state word races a worker's claim fairly: exactly one wins. A task a
//! worker won is running (or about to run); the cancel answers it at once and returns
//! the task's ring position, so that (unless told to let it finish) the caller can ask
//! the collector to kill its worker (`src/pool/kill.rs`).

mod storage;

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::sink::Sink;
use crate::error::{Error, Result};
use crate::layout::TaskRecord;
use crate::ring::mpmc::MpmcRing;
use crate::shm::arena::Block;
use storage::{IdQueue, TaskSlots};

/// A submitted task: where its result goes, its argument block, where it is.
pub(crate) struct Pending {
    /// The sink.
    pub sink: Arc<dyn Sink>,
    /// Which of the sink's tasks this is.
    pub tag: u64,
    /// The task-arena block holding its arguments, if they did not fit inline.
    pub block: Option<Block>,
    /// The record as submitted, pushed into the ring (again, on a retry) from here.
    pub record: TaskRecord,
    /// How many more times it may run after its worker dies.
    pub retries_left: u32,
    place: Place,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("block", &self.block)
            .field("place", &self.place)
            .finish()
    }
}

impl Pending {
    /// A task about to be submitted.
    pub(crate) fn new(
        sink: Arc<dyn Sink>,
        tag: u64,
        block: Option<Block>,
        record: TaskRecord,
        retries_left: u32,
    ) -> Self {
        Pending {
            sink,
            tag,
            block,
            record,
            retries_left,
            place: Place::Backlog,
        }
    }
}

/// Where a pending task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// In the backlog, in the parent's memory only.
    Backlog,
    /// Pushed into the submission ring at this position; a worker may have claimed it
    /// (and may be running it).
    Ring(u64),
    /// Cancelled while a worker held it: already answered. It stays in the table
    /// until its completion or death, because the worker may still read its argument
    /// block; then it leaves, its result discarded.
    Cancelled,
}

/// What [`PendingTasks::cancel`] did to one task.
pub(crate) enum TaskCancel {
    /// It had not started: removed. Answer it, free its block.
    Withdrawn(Pending),
    /// A worker holds it: answer it through `sink` and `tag` (the entry stays, as
    /// [`Place::Cancelled`], until the worker is done with it). `pos` is its record's
    /// position in the submission ring, where the worker that claimed it is found.
    Running {
        sink: Arc<dyn Sink>,
        tag: u64,
        pos: u64,
    },
}

/// What [`PendingTasks::died`] decided about a task whose worker died.
pub(crate) enum AfterDeath {
    /// Back in the backlog, to run again (one retry counted).
    Retried,
    /// Removed: answer it with the error, free its block.
    Fail(Pending),
    /// Removed: it had been cancelled and answered; free its block.
    Discard(Pending),
    /// Not pending: nothing to do.
    Unknown,
}

/// What a pass of [`PendingTasks::feed`] did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fed {
    /// Records pushed into the ring.
    pub pushed: usize,
    /// The backlog became empty after `close`: workers may now be told to exit when
    /// the ring is empty.
    pub close_now: bool,
}

/// Both containers cost a bounded amount per operation, whatever they hold: no
/// rehash or copy of the whole under the mutex (`src/task/pending/storage.rs`).
#[derive(Default)]
struct Table {
    tasks: TaskSlots<Pending>,
    /// Ids in submission order (retries and requeues at the front). An id whose task
    /// is no longer in `Place::Backlog` (cancelled meanwhile) is skipped.
    backlog: IdQueue,
    /// Tasks neither answered nor cancelled: what `max_queued` counts.
    live: usize,
    /// Admissions granted and not yet inserted.
    reserved: usize,
    /// `close` came while the backlog held work.
    close_requested: bool,
}

/// The parent's submitted tasks: the table, the backlog, the bound on them.
pub(crate) struct PendingTasks {
    table: Mutex<Table>,
    /// Tasks in the backlog, a hint read without the mutex to skip empty feeds.
    backlogged: AtomicUsize,
    /// Signalled when a task stops counting against `limit`.
    room: Condvar,
    /// `max_queued`, if set.
    limit: Option<usize>,
}

impl std::fmt::Debug for PendingTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTasks")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl PendingTasks {
    /// An empty table; `limit` bounds the tasks submitted and not yet answered.
    pub(crate) fn new(limit: Option<usize>) -> Self {
        PendingTasks {
            table: Mutex::new(Table::default()),
            backlogged: AtomicUsize::new(0),
            room: Condvar::new(),
            limit,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // No invariant of the table spans a panic: each change is made whole under
        // the lock before anything that could panic.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits `n` tasks against `max_queued`: at once when there is room (or no
    /// bound); else, with `wait`, once there is, checking `open` while it waits; else
    /// [`Error::QueueFull`]. Each admission is used by one [`PendingTasks::insert`] or
    /// given back with [`PendingTasks::unadmit`].
    pub(crate) fn admit(&self, n: usize, wait: bool, open: &dyn Fn() -> Result<()>) -> Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let mut t = self.table();
        loop {
            open()?;
            let queued = t.live + t.reserved;
            if queued + n <= limit || (wait && queued == 0) {
                t.reserved += n;
                return Ok(());
            }
            if !wait {
                return Err(Error::QueueFull {
                    limit,
                    queued,
                    requested: n,
                });
            }
            t = self
                .room
                .wait_timeout(t, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Gives back `n` admissions that were not used.
    pub(crate) fn unadmit(&self, n: usize) {
        if self.limit.is_some() && n > 0 {
            let mut t = self.table();
            t.reserved = t.reserved.saturating_sub(n);
            self.room.notify_all();
        }
    }

    /// Adds a submitted task (using one admission) at the end of the backlog, and
    /// feeds the ring.
    pub(crate) fn insert(&self, id: u64, task: Pending, ring: MpmcRing<'_, TaskRecord>) -> Fed {
        let mut t = self.table();
        if self.limit.is_some() {
            t.reserved = t.reserved.saturating_sub(1);
        }
        t.live += 1;
        t.tasks.insert(id, task);
        t.backlog.push_back(id);
        self.feed_locked(&mut t, ring)
    }

    /// Moves tasks from the backlog into the ring while it has room.
    pub(crate) fn feed(&self, ring: MpmcRing<'_, TaskRecord>) -> Fed {
        // Relaxed: a hint. A task inserted after this load is fed by its inserter,
        // which feeds under the mutex itself.
        if self.backlogged.load(StdOrdering::Relaxed) == 0 {
            return Fed::default();
        }
        let mut t = self.table();
        self.feed_locked(&mut t, ring)
    }

    fn feed_locked(&self, t: &mut Table, ring: MpmcRing<'_, TaskRecord>) -> Fed {
        let mut fed = Fed::default();
        while let Some(id) = t.backlog.front() {
            let Some(task) = t.tasks.get_mut(id).filter(|p| p.place == Place::Backlog) else {
                t.backlog.pop_front(); // cancelled while it waited
                continue;
            };
            match ring.push_at(task.record) {
                Ok(pos) => {
                    task.place = Place::Ring(pos);
                    t.backlog.pop_front();
                    fed.pushed += 1;
                }
                Err(_) => break,
            }
        }
        if t.backlog.is_empty() && t.close_requested {
            t.close_requested = false;
            fed.close_now = true;
        }
        // Relaxed: a hint for `feed`; the backlog itself is read under the mutex.
        self.backlogged.store(t.backlog.len(), StdOrdering::Relaxed);
        fed
    }

    /// Wakes submitters waiting for room under `max_queued`, so they see that the
    /// pool closed or stopped (their re-check under the table's mutex includes it).
    pub(crate) fn wake_admissions(&self) {
        if self.limit.is_some() {
            let _t = self.table();
            self.room.notify_all();
        }
    }

    /// `close` was called: returns whether workers may be told now (the backlog is
    /// empty); if not, the feed that empties it says so ([`Fed::close_now`]).
    pub(crate) fn request_close(&self) -> bool {
        let mut t = self.table();
        if t.backlog.is_empty() {
            true
        } else {
            t.close_requested = true;
            false
        }
    }

    /// Removes task `id` for its completion; the flag says whether it had been
    /// cancelled (then its result is discarded).
    pub(crate) fn complete(&self, id: u64) -> Option<(Pending, bool)> {
        let mut t = self.table();
        let task = t.tasks.remove(id)?;
        let cancelled = task.place == Place::Cancelled;
        if !cancelled {
            self.answered(&mut t);
        }
        Some((task, cancelled))
    }

    fn answered(&self, t: &mut Table) {
        t.live -= 1;
        if self.limit.is_some() {
            self.room.notify_all();
        }
    }

    /// The worker running task `id` died. `retry` says whether the death allows a
    /// retry (a death, not a timeout); one is counted if the task has one left.
    pub(crate) fn died(&self, id: u64, retry: bool) -> AfterDeath {
        let mut t = self.table();
        let Some(task) = t.tasks.get_mut(id) else {
            return AfterDeath::Unknown;
        };
        if task.place == Place::Cancelled {
            let task = t.tasks.remove(id).expect("present");
            return AfterDeath::Discard(task);
        }
        if retry && task.retries_left > 0 {
            task.retries_left -= 1;
            task.place = Place::Backlog;
            t.backlog.push_front(id);
            // Relaxed: a hint (see `feed`).
            self.backlogged.store(t.backlog.len(), StdOrdering::Relaxed);
            return AfterDeath::Retried;
        }
        let task = t.tasks.remove(id).expect("present");
        self.answered(&mut t);
        AfterDeath::Fail(task)
    }

    /// Task `id` was taken by a worker that died before starting it (a claim
    /// recovered from the ring), or was running on a worker killed for another task's
    /// cancel: it goes back to the front of the backlog, with no retry counted. A
    /// task cancelled meanwhile leaves instead, and is returned to free its block.
    pub(crate) fn requeue(&self, id: u64) -> Option<Pending> {
        let mut t = self.table();
        let task = t.tasks.get_mut(id)?;
        match task.place {
            Place::Cancelled => t.tasks.remove(id),
            Place::Backlog => None,
            Place::Ring(_) => {
                task.place = Place::Backlog;
                t.backlog.push_front(id);
                // Relaxed: a hint (see `feed`).
                self.backlogged.store(t.backlog.len(), StdOrdering::Relaxed);
                None
            }
        }
    }

    /// Cancels tasks `ids` (those still pending): each withdrawn if it has not
    /// started, else answered now ([`TaskCancel::Running`] says where its worker is,
    /// for a kill). One hold of the mutex for the whole set, queued tasks first: no
    /// worker is killed (and so none replaced, free to claim) before every queued task
    /// of the set is out of its reach.
    pub(crate) fn cancel(
        &self,
        ids: impl Iterator<Item = u64>,
        ring: MpmcRing<'_, TaskRecord>,
    ) -> Vec<(u64, TaskCancel)> {
        let mut t = self.table();
        let mut done = Vec::new();
        let mut running = Vec::new();
        for id in ids {
            let Some(task) = t.tasks.get(id) else {
                continue;
            };
            let withdrawn = match task.place {
                Place::Cancelled => continue,
                // Its id stays in the backlog until a feed skips it.
                Place::Backlog => true,
                Place::Ring(pos) => ring.withdraw(pos),
            };
            if withdrawn {
                let task = t.tasks.remove(id).expect("present");
                self.answered(&mut t);
                done.push((id, TaskCancel::Withdrawn(task)));
            } else {
                running.push(id);
            }
        }
        for id in running {
            let task = t.tasks.get_mut(id).expect("present");
            let Place::Ring(pos) = task.place else {
                continue;
            };
            task.place = Place::Cancelled;
            let answer = TaskCancel::Running {
                sink: Arc::clone(&task.sink),
                tag: task.tag,
                pos,
            };
            self.answered(&mut t);
            done.push((id, answer));
        }
        done
    }

    /// Removes every task (the pool stopped); the flag says whether each had been
    /// cancelled (answered already).
    pub(crate) fn remove_all(&self) -> Vec<(Pending, bool)> {
        let mut t = self.table();
        t.backlog.clear();
        t.live = 0;
        self.backlogged.store(0, StdOrdering::Relaxed);
        self.room.notify_all();
        t.tasks
            .drain()
            .map(|p| {
                let cancelled = p.place == Place::Cancelled;
                (p, cancelled)
            })
            .collect()
    }

    /// Whether no task is pending (cancelled ones whose worker is busy count).
    pub(crate) fn is_empty(&self) -> bool {
        self.table().tasks.is_empty()
    }
}
