//! [`PoolBuilder`]: the settings a [`Pool`](crate::Pool) is built with, and
//! [`StartMethod`], how its workers are started. `build` itself, which starts the
//! pool, is the pool's (`src/pool/mod.rs`).

use std::time::Duration;

use crate::simd::Simd;
use crate::task::cancel::CancelMode;
use crate::task::codec::CodecFailure;
use crate::task::trampolines::TaskFn;
#[allow(unused_imports)] // named by the docs' links
use crate::{error::Error, pool::tasks::Tasks};

/// How worker processes are started.
///
/// | method | fork server | workers | use it when |
/// |---|---|---|---|
/// | `Fork` (default) | forked from the pool's thread at `build()` | forked from the server | you want the fastest start-up and workers that see the parent's globals as they were at `build()` |
/// | `ForkServer` | a fresh execution of the binary | forked from the server | the parent has threads that may hold locks at `build()` time |
/// | `Spawn` | a fresh execution of the binary | each a fresh execution | you want every worker to start clean, as Python's `spawn` |
///
/// With `Fork`, the server is a copy of the parent at `build()`, so workers start
/// with the parent's memory image (globals, loaded data) but, like every child here,
/// without its open file descriptors. If another thread of the parent holds a lock
/// at that instant (the stdout lock, a mutex of the application), a worker that takes
/// the same lock deadlocks: that is the classic fork hazard, and why Python moved
/// away from fork. `ForkServer` and `Spawn` re-execute the binary, which enters
/// worker mode before `main` runs (you add nothing to `main`), so no lock is
/// inherited; start-up costs an `exec`.
///
/// Replacement workers are never forked from the parent, whatever the method: the
/// single-threaded fork server starts them.
///
/// # Examples
///
/// ```
/// use shmpool::{Pool, StartMethod};
///
/// assert_eq!(StartMethod::default(), StartMethod::Fork);
/// // A fork server re-executed from the binary: no lock of this process is inherited.
/// let pool = Pool::builder()
///     .processes(1)
///     .start_method(StartMethod::ForkServer)
///     .build()?;
/// assert_eq!(pool.apply(|x: u32| x + 1, (41,))?, 42);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartMethod {
    /// Fork a server from the pool's thread at `build()`; fork workers from it.
    #[default]
    Fork,
    /// Execute a fresh server; fork workers from it.
    ForkServer,
    /// Execute a fresh server; execute each worker afresh.
    Spawn,
}

/// Settings for a [`Pool`](crate::Pool), built with [`Pool::builder`](crate::Pool::builder).
///
/// # Examples
///
/// ```
/// use shmpool::{Pool, StartMethod};
///
/// let pool = Pool::builder()
///     .processes(2)
///     .start_method(StartMethod::Fork)
///     .build()?;
/// assert_eq!(pool.processes(), 2);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    pub(crate) processes: Option<usize>,
    pub(crate) start_method: StartMethod,
    pub(crate) idle_spin: Duration,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) task_retries: u32,
    pub(crate) max_tasks_per_child: u32,
    pub(crate) worker_memory_limit: u64,
    pub(crate) max_worker_rss: u64,
    pub(crate) simd: Option<Simd>,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) max_queued: Option<usize>,
    pub(crate) cancel_mode: CancelMode,
    pub(crate) kill_decision_delay: Duration,
}

/// The initializer as the builder keeps it: a trampoline and its encoded arguments.
#[derive(Debug, Clone)]
pub(crate) struct Initializer {
    pub code: TaskFn,
    pub args: std::result::Result<Vec<u8>, CodecFailure>,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            processes: None,
            start_method: StartMethod::Fork,
            idle_spin: Duration::from_micros(50),
            task_timeout: None,
            task_retries: 0,
            max_tasks_per_child: 0,
            worker_memory_limit: 0,
            max_worker_rss: 0,
            simd: None,
            initializer: None,
            max_queued: None,
            cancel_mode: CancelMode::Kill,
            kill_decision_delay: Duration::ZERO,
        }
    }
}

impl PoolBuilder {
    /// The number of worker processes. Default: the CPUs this process may run on
    /// (`sched_getaffinity`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder().processes(2).build()?;
    /// assert_eq!(pool.processes(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// How workers are started. Default: [`StartMethod::Fork`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Pool, StartMethod};
    ///
    /// // Every worker is a fresh execution of the binary, as Python's `spawn`.
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .start_method(StartMethod::Spawn)
    ///     .build()?;
    /// assert_ne!(pool.apply(|| std::process::id(), ())?, std::process::id());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = method;
        self
    }

    /// How long an idle worker spins before it sleeps (default 50 µs). Longer keeps
    /// back-to-back calls free of wake-up syscalls; shorter frees the CPU sooner.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::builder()
    ///     .processes(1)
    ///     .idle_spin(Duration::from_micros(500))
    ///     .build()?;
    /// assert_eq!(pool.apply(|| 7, ())?, 7);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn idle_spin(mut self, d: Duration) -> Self {
        self.idle_spin = d;
        self
    }

    /// A time limit for every task (overridable per call with
    /// [`Tasks::timeout`]): a worker running a task longer is killed and replaced,
    /// and the task fails with [`Error::Timeout`]. Default: none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::builder()
    ///     .processes(1)
    ///     .task_timeout(Duration::from_millis(100))
    ///     .build()?;
    /// let hung = pool.apply(|| std::thread::sleep(Duration::from_secs(60)), ());
    /// assert!(matches!(hung, Err(shmpool::Error::Timeout { .. })));
    /// assert_eq!(pool.apply(|| 1, ())?, 1); // the worker was replaced
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn task_timeout(mut self, d: Duration) -> Self {
        self.task_timeout = Some(d);
        self
    }

    /// Run a task whose worker died again, on a fresh worker, up to `n` times
    /// (default 0): the pool-wide default of [`Tasks::retries`](crate::Tasks::retries).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder().processes(1).task_retries(2).build()?;
    /// assert_eq!(pool.apply(|x: u32| x + 1, (1,))?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn task_retries(mut self, n: u32) -> Self {
        self.task_retries = n;
        self
    }

    /// Bounds the generic tasks the pool holds submitted and not yet answered
    /// (waiting in the parent, waiting in the submission ring, or running) to `n`
    /// (at least 1). Default: no bound: an `_async` submission never waits, and the
    /// tasks that do not fit in the shared ring (1,024 records) wait in the parent's
    /// memory (a few hundred bytes each, plus arguments over 72 bytes).
    ///
    /// With a bound, the plain forms (`apply_async`, `map_async`, `imap`, ...) wait
    /// for room, one task (a `map`'s chunk) at a time; the `try_` forms of
    /// [`Pool::tasks`](crate::Pool::tasks) ([`Tasks::try_apply_async`], [`Tasks::try_map`],
    /// [`Tasks::try_starmap_async`] and the others) submit all of their tasks or
    /// none, and return [`Error::QueueFull`] when they do not fit. A cancelled task stops counting when
    /// it is cancelled. Bulk array maps are not counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(2).build()?;
    /// let slow = |ms: u64| { std::thread::sleep(Duration::from_millis(ms)); ms };
    /// let a = pool.apply_async(slow, (200,))?;
    /// let b = pool.apply_async(slow, (1,))?;
    /// assert!(matches!(pool.tasks().try_apply_async(slow, (1,)), Err(Error::QueueFull { limit: 2, .. })));
    /// let c = pool.apply_async(slow, (1,))?; // waits until `a` is answered
    /// assert_eq!((a.get()?, b.get()?, c.get()?), (200, 1, 1));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = Some(n.max(1));
        self
    }

    /// What cancelling does to a task that is already running, by default: kill its
    /// worker ([`CancelMode::Kill`], the default; the worker is replaced) or let it
    /// finish and discard its result ([`CancelMode::LetFinish`]). Applies to
    /// `cancel()`, and to futures and imaps dropped before they are done;
    /// `cancel_with` chooses per call. Queued tasks are always removed without
    /// running.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{CancelMode, Pool};
    ///
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .cancel_mode(CancelMode::LetFinish)
    ///     .build()?;
    /// let r = pool.apply_async(|| 1, ())?;
    /// r.wait();
    /// assert!(!r.cancel().was_cancelled()); // finished already: nothing to do
    /// assert_eq!(r.get()?, 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel_mode(mut self, mode: CancelMode) -> Self {
        self.cancel_mode = mode;
        self
    }

    /// Replace each worker after it has run `n` tasks (Python's
    /// `maxtasksperchild`), to bound leaks in task code. The replacement is started
    /// when the old worker begins its last task, so the pool never runs short.
    /// Default: 0, never. (Bulk-map chunks are not counted.)
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder()
    ///     .processes(1)
    ///     .max_tasks_per_child(2)
    ///     .build()?;
    /// let pids = (0..3)
    ///     .map(|_| pool.apply(|| std::process::id(), ()))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(pids[0], pids[1]);
    /// assert_ne!(pids[1], pids[2]); // a fresh worker after two tasks
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_tasks_per_child(mut self, n: u32) -> Self {
        self.max_tasks_per_child = n;
        self
    }

    /// Limits the private memory each worker may add, beyond what it holds when it
    /// starts, to `bytes` (default 0: no limit). A task that allocates past it fails
    /// alone: its worker dies and is replaced, and the task gets
    /// [`Error::WorkerDied`] with [`DeathCause::MemoryLimit`](crate::DeathCause)
    /// (or, if it uses fallible allocation such as `Vec::try_reserve`, its own
    /// error). Other tasks, including those running on other workers, are not
    /// affected.
    ///
    /// What counts is private writable memory (heap, thread stacks, private
    /// mappings), reserved or touched: the worker's `RLIMIT_DATA` soft limit is set
    /// to its `VmData` at start-up plus `bytes`, before the initializer runs (which
    /// runs under the limit). Shared memory does not count: `SharedArray`s, the
    /// arenas that carry large arguments and results, the control segment. Under
    /// [`StartMethod::Fork`] a worker starts with a copy of the parent's address
    /// space, which is why the limit is counted from what it holds at start.
    /// Processes a task starts inherit the limit (`RLIMIT_DATA` is inherited).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{DeathCause, Error, Pool};
    ///
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .worker_memory_limit(64 << 20)
    ///     .build()?;
    /// let greedy = pool.apply(|| vec![1u8; 1 << 30].len(), ());
    /// assert!(matches!(
    ///     greedy,
    ///     Err(Error::WorkerDied { cause: DeathCause::MemoryLimit { .. }, .. })
    /// ));
    /// assert_eq!(pool.apply(|| vec![1u8; 8 << 20].len(), ())?, 8 << 20); // replaced
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn worker_memory_limit(mut self, bytes: u64) -> Self {
        self.worker_memory_limit = bytes;
        self
    }

    /// Replaces a worker whose resident private memory grew by more than `bytes`
    /// since it started (loky's protection against leaks in task code; default 0:
    /// never). After a task the worker reads its resident private memory
    /// (`resident − shared` of `/proc/self/statm`, its anonymous pages: shared
    /// arrays and arenas do not count); if it holds more than it did at start-up
    /// (before the initializer) plus `bytes`, it retires instead of taking another
    /// task, and a replacement is started as for
    /// [`max_tasks_per_child`](Self::max_tasks_per_child). [`Pool::stats`](crate::Pool::stats) counts
    /// these retirements.
    ///
    /// The read costs a few microseconds, so a worker reads at most once per
    /// millisecond: after a task when at least 1 ms passed since its last read
    /// (always after a task that ran 1 ms or longer), and before it goes to sleep
    /// when a task ran since then. A worker that crosses the threshold in a burst of
    /// short tasks retires within about a millisecond of tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder()
    ///     .processes(1)
    ///     .max_worker_rss(32 << 20)
    ///     .build()?;
    /// let leaky = || {
    ///     Box::leak(vec![1u8; 64 << 20].into_boxed_slice()); // 64 MiB, never freed
    ///     std::process::id()
    /// };
    /// let first = pool.apply(leaky, ())?;
    /// let second = pool.apply(leaky, ())?;
    /// assert_ne!(first, second); // another process: the first one retired
    /// assert!(pool.stats().workers_retired_for_memory >= 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_worker_rss(mut self, bytes: u64) -> Self {
        self.max_worker_rss = bytes;
        self
    }

    /// The instruction-set level bulk kernels run at. Default: the
    /// `SHMPOOL_SIMD` environment variable if set (`baseline`, `avx2`, `avx512` or
    /// `auto`), else [`Simd::Auto`](crate::Simd::Auto), the highest level the CPU
    /// supports (AVX2 at most for memory-bound elementwise kernels). A forced level
    /// applies to every kernel. Forcing one is for reproducibility checks and
    /// benchmarks: results are bit-identical at every level (see [`crate::Simd`]).
    ///
    /// # Errors
    /// [`PoolBuilder::build`] fails with [`Error::SimdUnsupported`] for a level this CPU
    /// cannot run, and with [`Error::InvalidArgument`] for an `SHMPOOL_SIMD` it does
    /// not know.
    pub fn simd(mut self, level: Simd) -> Self {
        self.simd = Some(level);
        self
    }

    /// Runs `f(*args)` once in each worker before its first task (Python's
    /// `initializer` and `initargs`): to open files, load data, or set up
    /// per-process state in statics. If it panics, `build` fails with
    /// [`Error::InitializerFailed`] (and a replacement that fails stops the pool).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// static GREETING: OnceLock<String> = OnceLock::new();
    ///
    /// let pool = shmpool::Pool::builder()
    ///     .processes(2)
    ///     .initializer(|g: String| { GREETING.set(g).unwrap(); }, ("hello".to_string(),))
    ///     .build()?;
    /// let s = pool.apply(|| GREETING.get().cloned().unwrap_or_default(), ())?;
    /// assert_eq!(s, "hello");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn initializer<Args, F>(mut self, f: F, args: Args) -> Self
    where
        Args: serde::Serialize + serde::de::DeserializeOwned,
        F: crate::task::star_fn::StarFn<Args, Output = ()>,
    {
        let () = crate::kernel::AssertZeroSized::<F>::OK;
        let _ = f;
        self.initializer = Some(Initializer {
            code: crate::task::trampolines::apply_trampoline::<(), Args, F>,
            args: crate::task::codec::encode(&args, crate::error::CodecRole::Argument),
        });
        self
    }

    /// For tests of the kill protocol only: between finding a worker to kill (for a
    /// timeout or a cancel) and deciding the kill under the kill hold, the collector
    /// waits, at most `delay`, until the worker runs other work than it did when
    /// found: the race in which a kill could hit the next work, forced at any load. A
    /// pool with a delay still kills only the work it targets (`docs/PROTOCOL.md`
    /// §5c); its kills are slower. Not part of the API.
    #[doc(hidden)]
    pub fn kill_decision_delay(mut self, delay: Duration) -> Self {
        self.kill_decision_delay = delay;
        self
    }
}
