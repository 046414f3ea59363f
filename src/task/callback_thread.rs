//! The thread that runs callbacks, apart from the thread that delivers results.
//!
//! Python's `Pool` runs `callback` and `error_callback` on its result-handler
//! thread, so a callback that waits for another result of the same pool waits for
//! itself, forever. Here results are delivered by the collector (or a polling
//! caller), and every callback is handed to a thread of its own, started with the
//! first callback: a callback may call any pool method, `apply` and `map` included,
//! and get its answer, because the thread it blocks is not the one that delivers.
//!
//! Callbacks run one at a time, oldest first, as in Python. A callback that waits
//! for a result whose own callbacks are queued behind it would wait for itself
//! again; so while the callback thread waits for a result, it runs the queued
//! callbacks itself ([`CallbackRunner::help`], called from the pool's wait loop).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A callback, boxed with what it was called with.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    static ON_CALLBACK_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The queue of a pool's callbacks and the thread that drains it.
pub(crate) struct CallbackRunner {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the runner closes.
    work: Condvar,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Whether the thread was started.
    started: bool,
    /// Set by [`CallbackRunner::close`]: the thread runs what is queued and exits,
    /// and later jobs run on the thread that submits them.
    closed: bool,
}

impl std::fmt::Debug for CallbackRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallbackRunner({} queued)", self.lock().jobs.len())
    }
}

impl CallbackRunner {
    /// A runner with no thread yet.
    pub(crate) fn new() -> Self {
        CallbackRunner {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    started: false,
                    closed: false,
                }),
                work: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.shared.lock()
    }

    /// Queues `job` for the callback thread, starting the thread if need be. After
    /// [`close`](Self::close), or if no thread can be started, runs it here.
    pub(crate) fn run_later(&self, job: Job) {
        let mut queue = self.lock();
        if queue.closed {
            drop(queue);
            run(job);
            return;
        }
        if !queue.started {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("shmpool-callbacks".into())
                .spawn(move || shared.serve());
            if spawned.is_err() {
                drop(queue);
                tracing::warn!("could not start the callback thread; running a callback inline");
                run(job);
                return;
            }
            queue.started = true;
        }
        queue.jobs.push_back(job);
        drop(queue);
        self.shared.work.notify_one();
    }

    /// Stops taking jobs: the thread runs what is queued, then exits (it is never
    /// joined, so dropping a pool from inside a callback cannot deadlock).
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.shared.work.notify_one();
    }

    /// Whether the calling thread is a pool's callback thread.
    pub(crate) fn on_callback_thread() -> bool {
        ON_CALLBACK_THREAD.with(|c| c.get())
    }

    /// On the callback thread, runs one queued callback and returns true; elsewhere,
    /// or with none queued, returns false. Called while a thread waits for a result.
    pub(crate) fn help(&self) -> bool {
        if !Self::on_callback_thread() {
            return false;
        }
        let job = self.lock().jobs.pop_front();
        job.map(run).is_some()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(&self) {
        ON_CALLBACK_THREAD.with(|c| c.set(true));
        loop {
            let mut queue = self.lock();
            let job = loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue = self.work.wait(queue).unwrap_or_else(|e| e.into_inner());
            };
            drop(queue);
            run(job);
        }
    }
}

/// Runs a job. A callback's own panic was caught inside it already; this guards
/// the thread against anything else.
fn run(job: Job) {
    let _ = crate::unwind::catch(job);
}
