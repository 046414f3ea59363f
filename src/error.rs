//! The one error type of the crate.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

mod kinds;
mod messages;
pub(crate) mod npy_errors;

pub use kinds::{CodecDirection, CodecRole, DeathCause, PoolKill, Work};
use messages::{no_space_message, shape_elements};
pub use npy_errors::NpyError;

/// The result type of every fallible shmpool call.
///
/// # Examples
///
/// ```
/// fn squares(pool: &shmpool::Pool) -> shmpool::Result<Vec<u64>> {
///     pool.map(|x: u64| x * x, 0..4u64)
/// }
/// let pool = shmpool::Pool::new(1)?;
/// assert_eq!(squares(&pool)?, [0, 1, 4, 9]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, one variant per failure a caller can act on.
///
/// Messages are written for people: `worker 1 (pid 4242) was killed by SIGSEGV
/// while running chunk 96..128`.
///
/// Errors are values: `Error` is `Clone` (an [`io::Error`](std::io::Error) is
/// shared through an [`Arc`]), so one failure can be reported on several items.
///
/// # Examples
///
/// Match on what you can act on; every other error still has a readable message:
///
/// ```
/// use shmpool::{Error, Pool};
///
/// let pool = Pool::new(1)?;
/// match pool.apply(|x: u32| if x == 0 { panic!("zero") } else { 10 / x }, (0,)) {
///     Err(Error::TaskPanicked { message, location }) => {
///         assert_eq!(message, "zero");
///         assert!(location.is_some()); // file:line:column of the panic
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// let e = Error::LengthMismatch { input: 3, output: 4 };
/// assert_eq!(e.to_string(), "array lengths differ: the input has 3 elements, the output 4");
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input and output arrays of a bulk map have different lengths.
    #[error("array lengths differ: the input has {input} elements, the output {output}")]
    LengthMismatch {
        /// Elements in the input.
        input: usize,
        /// Elements in the output.
        output: usize,
    },

    /// An array of a bulk operation with several arrays has another length than
    /// the first input (or, for row operations, another number of rows).
    #[error("{what} has {len} elements, but the operation's first input has {expected}")]
    OperandLength {
        /// Which array: `"input 1"`, `"output 1"`, `"the output's rows"`.
        what: String,
        /// Its length.
        len: usize,
        /// The first input's length.
        expected: usize,
    },

    /// A bulk operation names more arrays (inputs, outputs, context arrays and a
    /// reduction's scratch) than one job holds.
    #[error("a bulk operation may name at most {max} arrays, this one names {count}")]
    TooManyArrays {
        /// Arrays named.
        count: usize,
        /// The most a job holds.
        max: usize,
    },

    /// An argument outside its domain, such as a histogram with no bins.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A NaN-ignoring index (`nanargmin`, `nanargmax`) of data that are all NaN:
    /// there is no number to point at, where numpy raises `ValueError("All-NaN
    /// slice encountered")`.
    #[error("all {len} elements are NaN: there is no number to give the index of")]
    AllNan {
        /// Elements reduced.
        len: usize,
    },

    /// A SIMD level this CPU cannot run was asked for (`PoolBuilder::simd` or
    /// `SHMPOOL_SIMD`).
    #[error("SIMD level {requested} was asked for, but this CPU supports up to {detected}")]
    SimdUnsupported {
        /// The level asked for.
        requested: crate::simd::Simd,
        /// The highest level the CPU supports.
        detected: crate::simd::Simd,
    },

    /// A bulk map's element range does not lie within the arrays
    /// ([`crate::Bulk::range`]).
    #[error("the range {}..{} does not lie within an array of {len} elements", range.start, range.end)]
    RangeOutOfBounds {
        /// The range asked for.
        range: Range<usize>,
        /// Elements in the array.
        len: usize,
    },

    /// A chunk length (or `chunksize`) of zero was given.
    #[error("the chunk length must be at least 1")]
    ZeroChunkLen,

    /// A pool was asked for zero worker processes.
    #[error("a pool needs at least one worker process")]
    ZeroProcesses,

    /// A pool was asked for more worker processes than a pool can have. Nothing
    /// was started.
    #[error("{requested} worker processes were asked for; a pool can have at most {max}")]
    TooManyProcesses {
        /// The processes asked for.
        requested: usize,
        /// The most a pool can have.
        max: usize,
    },

    /// A bulk job would have more chunks than a job can track.
    #[error("{chunks} chunks exceed the limit of {max} per job; use a larger chunk length")]
    TooManyChunks {
        /// Chunks the job would have.
        chunks: u64,
        /// The most a job can have.
        max: u64,
    },

    /// A kernel of a bulk array map panicked.
    #[error("the kernel panicked in chunk {}..{}: {message}", chunk.start, chunk.end)]
    KernelPanicked {
        /// The element range of the chunk.
        chunk: Range<usize>,
        /// The panic message.
        message: String,
    },

    /// A task panicked; the worker caught it and lives on.
    #[error("the task panicked{}: {message}", location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
    TaskPanicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },

    /// The worker process running this work died (signal or exit) before finishing.
    #[error("worker {worker} (pid {pid}) {cause} while running {work}")]
    WorkerDied {
        /// Worker slot number.
        worker: usize,
        /// The process id.
        pid: i32,
        /// How it died.
        cause: DeathCause,
        /// What it was running.
        work: Work,
    },

    /// A chunk of a bulk array map was not computed: a worker of the job died while
    /// it held the chunk, but no record says which worker that was, so no worker,
    /// pid or cause can be named.
    #[error(
        "chunk {}..{} was not computed: a worker died while holding it, and which worker \
         is not known",
        chunk.start,
        chunk.end
    )]
    ChunkLost {
        /// The element range of the chunk.
        chunk: Range<usize>,
    },

    /// Elements of a bulk array map that were not computed because the map stopped
    /// when another chunk failed: its kernel panicked, or its worker died (or was
    /// killed for running past `chunk_timeout`) and no retry was left. A stopped map
    /// claims no more chunks: the chunks running then are completed, those not yet
    /// claimed are skipped. Contiguous skipped chunks are reported as one range.
    #[error("elements {}..{} were not computed: the map stopped after chunk {}..{} failed", chunk.start, chunk.end, after.start, after.end)]
    ChunkSkipped {
        /// The element range skipped.
        chunk: Range<usize>,
        /// The chunk whose failure stopped the map: the chunk whose kernel panicked,
        /// or the chunk a dead worker was running. Its own error
        /// ([`Error::KernelPanicked`], [`Error::WorkerDied`] or [`Error::Timeout`]) is
        /// in the same [`Error::ChunksLost`]. If a panic and a death both happen, it
        /// is whichever stopped the map first: a panic stops it at once, a death when
        /// the pool notices it (within about a millisecond).
        after: Range<usize>,
    },

    /// Several chunks of a bulk array map were not computed. Each element of
    /// `errors` is the error of one chunk or range: a [`Error::WorkerDied`] or
    /// [`Error::Timeout`] naming it as [`Work::Chunk`], an [`Error::ChunkLost`], an
    /// [`Error::KernelPanicked`], or an [`Error::ChunkSkipped`]. Together they name
    /// every element that was not computed.
    /// [`Error::failed_ranges`] lists their element ranges.
    #[error("{}", chunks_lost_message(errors))]
    ChunksLost {
        /// The error of each chunk that was not computed.
        errors: Vec<Error>,
    },

    /// The work ran past its time limit; the worker was killed and replaced.
    #[error("{work} ran past its {limit:?} time limit; worker {worker} (pid {pid}) was killed")]
    Timeout {
        /// Worker slot number.
        worker: usize,
        /// The killed process.
        pid: i32,
        /// The limit that was exceeded.
        limit: Duration,
        /// What it was running.
        work: Work,
    },

    /// Waiting for a result timed out; the task itself keeps running (as in Python).
    #[error("no result within {0:?}; the task is still running")]
    WaitTimeout(Duration),

    /// The result is not ready yet (`AsyncResult::successful` before completion).
    #[error("the result is not ready yet")]
    NotReady,

    /// The result was already taken by an earlier `get`, `get_timeout` or
    /// `try_get` on the same handle (or by awaiting it).
    #[error("the result was already taken")]
    AlreadyTaken,

    /// The work was cancelled before it finished (`cancel`, or a dropped future or
    /// imap): it was removed before it ran, or its worker was killed, or (with
    /// [`crate::CancelMode::LetFinish`]) its result was discarded.
    #[error("cancelled before it finished ({work})")]
    Cancelled {
        /// What was cancelled.
        work: Work,
    },

    /// A bulk operation was cancelled through its [`crate::CancelToken`]. The chunks
    /// of `completed` ran to their end: those elements (rows, for row operations) are
    /// computed. The rest of `range` was skipped, or was running in a worker that
    /// was killed ([`crate::CancelMode::Kill`]), and may be partly written.
    ///
    /// A cancel that returned [`crate::CancelOutcome::Cancelled`] always ends its
    /// operation with this error (unless the operation failed with an error that
    /// names no range), even when every chunk had run by then: `completed` is then
    /// the whole `range`. A cancel that returned `AlreadyDone` changed nothing.
    #[error("bulk operation cancelled; computed: {completed:?} of {range:?}")]
    MapCancelled {
        /// The element ranges computed, in order.
        completed: Vec<Range<usize>>,
        /// The operation's whole range.
        range: Range<usize>,
    },

    /// A `try_` submission found the pool holding as many unanswered tasks as
    /// [`crate::PoolBuilder::max_queued`] allows. Nothing was submitted.
    #[error(
        "the pool holds {queued} unanswered tasks and allows {limit} (max_queued); \
         {requested} more do not fit"
    )]
    QueueFull {
        /// The bound set with `max_queued`.
        limit: usize,
        /// Tasks submitted and not yet answered (or admitted), at the time.
        queued: usize,
        /// Tasks this submission needed.
        requested: usize,
    },

    /// A `callback` or `error_callback` panicked. The pool's result thread caught
    /// it and carries on; the task itself finished.
    #[error("the result callback panicked: {message}")]
    CallbackPanicked {
        /// The panic message.
        message: String,
    },

    /// The input iterator of `map`, `imap` or `starmap` panicked. Items taken from it
    /// before the panic were submitted and their results delivered.
    #[error("the input iterator panicked: {message}")]
    InputPanicked {
        /// The panic message.
        message: String,
    },

    /// Work was submitted after `close` or `terminate`.
    #[error("the pool is closed and takes no new work")]
    PoolClosed,

    /// The pool was terminated while this work was pending.
    #[error("the pool was terminated before this work finished")]
    PoolTerminated,

    /// `join` was called before `close` (or `terminate`), as Python forbids too.
    #[error("join() needs close() or terminate() first")]
    JoinBeforeClose,

    /// A task's argument or result could not be serialized or deserialized (with
    /// postcard). Python's equivalent is `MaybeEncodingError`.
    ///
    /// Arguments are encoded in the calling process and decoded in a worker;
    /// results the other way round. A failure on either side arrives here. (Under
    /// `Cluster::map`, items and results also travel between MPI ranks.)
    #[error("could not {direction} {role} of type `{type_name}`: {reason}")]
    Codec {
        /// Encoding (serializing) or decoding (deserializing).
        direction: CodecDirection,
        /// What the value was.
        role: CodecRole,
        /// The value's Rust type, as [`std::any::type_name`] spells it. For the
        /// items or results of a `map`, the type of one item or result.
        type_name: String,
        /// Why: postcard's error, with a hint at the usual cause.
        reason: String,
    },

    /// A task's serialized arguments or result could not be moved between the
    /// calling process and a worker: for example, a result larger than a worker's
    /// result arena.
    #[error("could not pass a task's data between processes: {reason}")]
    Transfer {
        /// What went wrong.
        reason: String,
    },

    /// A worker process could not start (for example, a different binary under
    /// `StartMethod::Spawn`) or the pool's helper processes failed.
    #[error("the pool could not start or keep its workers: {0}")]
    Start(String),

    /// A worker's initializer panicked, so the worker could not take tasks.
    #[error("the worker initializer panicked: {message}")]
    InitializerFailed {
        /// The panic message.
        message: String,
    },

    /// A `.npy` file cannot be mapped as asked.
    #[error("{}: {problem}", path.display())]
    Npy {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        #[source]
        problem: NpyError,
    },

    /// A shape whose element count differs from the array's length.
    #[error(
        "a shape of {shape:?} holds {} elements, but the array has {len}",
        shape_elements(shape)
    )]
    ShapeMismatch {
        /// The array's length.
        len: usize,
        /// The shape asked for.
        shape: Vec<usize>,
    },

    /// An ndarray view of a fixed number of axes was asked of an array whose shape
    /// has another number ([`crate::SharedArray::as_array_dim`]).
    #[error("an array of shape {shape:?} has {} axes, not {axes}", shape.len())]
    Dimensionality {
        /// The array's shape.
        shape: Vec<usize>,
        /// The number of axes asked for.
        axes: usize,
    },

    /// A shape that a named segment cannot record
    /// ([`crate::SharedArray::create_named_shaped`], or
    /// [`crate::SharedArray::reshape`] of the array that owns a named segment):
    /// more than 8 axes, the most its 128-byte header holds, or more bytes than
    /// memory can address. Nothing was created or changed.
    #[error("a named segment cannot have the shape {shape:?}: {reason}")]
    UnsupportedShape {
        /// The shape asked for.
        shape: Vec<usize>,
        /// Why it cannot be used.
        reason: String,
    },

    /// A named segment of this name exists and its owner is still running.
    #[error("a shared-memory segment named {name:?} already exists and its owner is alive")]
    SegmentExists {
        /// The name.
        name: String,
    },

    /// A named segment could not be given its memory: the filesystem that holds
    /// named segments (`/dev/shm`, a tmpfs) has less room than the segment needs.
    /// The whole segment is reserved when it is created, so this is reported by
    /// the create call, never as a `SIGBUS` at the first write; nothing is left
    /// behind. Docker gives a container a 64 MiB `/dev/shm` unless it is run with
    /// `--shm-size`. Arrays that are not named (memfds) do not live there.
    #[error("{}", no_space_message(*bytes, filesystem, *free))]
    NoSpace {
        /// Bytes the segment needs: its elements and its 128-byte header.
        bytes: u64,
        /// Where named segments live: `/dev/shm`.
        filesystem: std::path::PathBuf,
        /// Bytes free there after the failed reservation, when `statvfs` could
        /// tell.
        free: Option<u64>,
    },

    /// Huge pages were asked for explicitly
    /// ([`crate::Pages::HugeTlb`], [`crate::Pages::TransparentHuge`]) and the system
    /// cannot give them: too few hugetlbfs pages are free, or transparent huge pages
    /// for shared memory are off. The check and the hugetlbfs reservation happen
    /// when the array is created, so a shortage is this error, never a `SIGBUS` at
    /// a later write. Nothing was created. [`crate::Pages::Auto`] (the default)
    /// falls back to other pages instead.
    #[error("cannot back the array with {kind} pages: {reason}")]
    HugePagesUnavailable {
        /// The kind asked for.
        kind: crate::sys::page_kind::PageKind,
        /// Why it cannot be had, with the setting to change.
        reason: String,
    },

    /// A named segment is not one shmpool can open as asked (not a shmpool segment,
    /// damaged, or of another element type).
    #[error("cannot open segment {name:?}: {reason}")]
    ForeignSegment {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },

    /// An MPI call could not be made as asked (feature `mpi`): MPI was already
    /// initialized, an array is beyond MPI's `int` counts, or two distributed
    /// arrays are split differently. Every rank of the call gets the same error.
    #[error("MPI: {0}")]
    Mpi(String),

    /// Another rank of the MPI job failed in a collective call this rank took part
    /// in (feature `mpi`): every rank returns an error, so none goes on alone. The
    /// failing rank itself returns its own error.
    #[error("rank {rank} failed: {message}")]
    RankFailed {
        /// The lowest rank that failed.
        rank: usize,
        /// Its error, as text.
        message: String,
    },

    /// The ranks of an MPI job made one collective call in ways that cannot go
    /// together (feature `mpi`): different calls, distributed arrays of
    /// different global lengths or splits, or other arguments that must match
    /// (a grid's width, a histogram's bins). Their programs diverged. Every rank
    /// gets this error, from the same numbers, before any data moves.
    #[error("the MPI ranks disagree on the {what}: {detail}")]
    RanksDisagree {
        /// What differs: `"call"`, `"length"`, `"split"` or `"arguments"`.
        what: &'static str,
        /// The calls or values involved.
        detail: String,
    },

    /// A file, or a named shared-memory segment, could not be opened, created,
    /// read or written: the path says which.
    #[error("{context} {}: {source}", path.display())]
    File {
        /// What shmpool was doing: `"opening the .npy file"`.
        context: &'static str,
        /// The file, or the segment's path under `/dev/shm`.
        path: std::path::PathBuf,
        /// The underlying error, shared so that `Error` can be cloned.
        #[source]
        source: Arc<std::io::Error>,
    },

    /// An operating-system call failed (one on no file of the caller's: files
    /// give [`Error::File`]).
    #[error("{context}: {source}")]
    Io {
        /// What shmpool was doing.
        context: &'static str,
        /// The underlying error, shared so that `Error` can be cloned.
        #[source]
        source: Arc<std::io::Error>,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io {
            context,
            source: Arc::new(source),
        }
    }

    /// An [`Error::File`] for `path`, from an `io::Error`.
    pub(crate) fn file(
        context: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::File {
            context,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// The operating system's error behind an [`Error::File`] or an [`Error::Io`],
    /// for a test of its kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmpool::SharedArray::<f64>::load_npy("/no/such/dir/x.npy").unwrap_err();
    /// assert_eq!(e.io_error().map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
    /// assert!(e.to_string().contains("/no/such/dir/x.npy"));
    /// ```
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::File { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The element ranges of a bulk array map that this error names as not (fully)
    /// computed, in the order the error names them.
    ///
    /// - [`Error::WorkerDied`] or [`Error::Timeout`] on a [`Work::Chunk`]: that
    ///   chunk's range.
    /// - [`Error::KernelPanicked`], [`Error::ChunkSkipped`] and [`Error::ChunkLost`]:
    ///   the chunk's range.
    /// - [`Error::ChunksLost`]: the ranges of each of its errors, one after another.
    /// - Anything else, including a death or timeout on [`Work::Items`] or
    ///   [`Work::Task`]: none. Items are indices into a `map`'s input, not element
    ///   ranges of an array, so they are not listed here; match on
    ///   [`Error::WorkerDied`] to read them.
    ///
    /// Elements outside these ranges were computed; those inside may have been
    /// written in part.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{DeathCause, Error, Pool, SharedArray, Work};
    ///
    /// // A kernel that panics leaves its chunk unfinished, and stops the map: chunks
    /// // not yet claimed then are skipped, and named too.
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::try_from_iter(0..100u32)?;
    /// let mut y = SharedArray::zeroed(100)?;
    /// let e = pool
    ///     .bulk()
    ///     .chunk_len(10)
    ///     .map_into(&x, &mut y, |v: u32| if v == 42 { panic!("42") } else { v })
    ///     .unwrap_err();
    /// let failed = e.failed_ranges();
    /// assert!(failed.contains(&(40..50)));
    /// for i in (0..100).filter(|i| !failed.iter().any(|r| r.contains(i))) {
    ///     assert_eq!(y[i], i as u32); // everything not named was computed
    /// }
    ///
    /// // Several lost chunks, in the order they are named.
    /// let died = |work| Error::WorkerDied {
    ///     worker: 1,
    ///     pid: 4242,
    ///     cause: DeathCause::Signal(9),
    ///     work,
    /// };
    /// let e = Error::ChunksLost {
    ///     errors: vec![died(Work::Chunk(0..10)), Error::ChunkLost { chunk: 30..40 }],
    /// };
    /// assert_eq!(e.failed_ranges(), [0..10, 30..40]);
    ///
    /// // Items of a `map` are not array ranges.
    /// assert!(died(Work::Items(0..10)).failed_ranges().is_empty());
    /// assert!(Error::PoolClosed.failed_ranges().is_empty());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn failed_ranges(&self) -> Vec<Range<usize>> {
        match self {
            Error::WorkerDied {
                work: Work::Chunk(r),
                ..
            }
            | Error::Timeout {
                work: Work::Chunk(r),
                ..
            }
            | Error::KernelPanicked { chunk: r, .. }
            | Error::ChunkSkipped { chunk: r, .. }
            | Error::ChunkLost { chunk: r } => vec![r.clone()],
            Error::ChunksLost { errors } => errors.iter().flat_map(Error::failed_ranges).collect(),
            Error::MapCancelled { completed, range } => gaps(range, completed),
            _ => Vec::new(),
        }
    }

    /// This error with the task it names (a worker's death or timeout in a
    /// chunk of a `map` or `imap`) replaced by the chunk's input items.
    pub(crate) fn for_items(self, items: Range<usize>) -> Error {
        match self {
            Error::WorkerDied {
                worker,
                pid,
                cause,
                work: Work::Task(_),
            } => Error::WorkerDied {
                worker,
                pid,
                cause,
                work: Work::Items(items),
            },
            Error::Timeout {
                worker,
                pid,
                limit,
                work: Work::Task(_),
            } => Error::Timeout {
                worker,
                pid,
                limit,
                work: Work::Items(items),
            },
            Error::Cancelled {
                work: Work::Task(_),
            } => Error::Cancelled {
                work: Work::Items(items),
            },
            other => other,
        }
    }

    /// This error with every element, row or item range it names moved from a
    /// local numbering to a global one: index `i` becomes `i - local + global`. A
    /// rank of a cluster runs its share of a distributed call on a local block
    /// (whose first index is `local`, holding the global indices from `global`), and
    /// its errors name global indices, as the user's distributed arrays do.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn rebased(mut self, local: usize, global: usize) -> Error {
        self.for_each_range(&mut |r: &mut Range<usize>| {
            // Every range a local call names starts at `local` or later.
            *r = (r.start.saturating_sub(local) + global)..(r.end.saturating_sub(local) + global);
        });
        self
    }

    /// Calls `f` on every index range this error names (in chunks, items and
    /// cancelled ranges).
    fn for_each_range(&mut self, f: &mut dyn FnMut(&mut Range<usize>)) {
        match self {
            Error::WorkerDied { work, .. }
            | Error::Timeout { work, .. }
            | Error::Cancelled { work } => match work {
                Work::Items(r) | Work::Chunk(r) => f(r),
                Work::Task(_) => {}
            },
            Error::KernelPanicked { chunk, .. } | Error::ChunkLost { chunk } => f(chunk),
            Error::ChunkSkipped { chunk, after } => {
                f(chunk);
                f(after);
            }
            Error::ChunksLost { errors } => {
                errors.iter_mut().for_each(|e| e.for_each_range(f));
            }
            Error::MapCancelled { completed, range } => {
                completed.iter_mut().for_each(&mut *f);
                f(range);
            }
            _ => {}
        }
    }
}

/// The parts of `range` outside the sorted, disjoint `covered` ranges.
pub(crate) fn gaps(range: &Range<usize>, covered: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = range.start;
    for r in covered {
        if r.start > at {
            out.push(at..r.start.min(range.end));
        }
        at = at.max(r.end);
    }
    if at < range.end {
        out.push(at..range.end);
    }
    out
}

/// The message of [`Error::ChunksLost`]: how many chunks, then each one's error.
fn chunks_lost_message(errors: &[Error]) -> String {
    let mut s = match errors.len() {
        1 => "1 chunk was not computed".to_string(),
        n => format!("{n} chunks were not computed"),
    };
    for (i, e) in errors.iter().enumerate() {
        s.push_str(if i == 0 { ": " } else { "; " });
        s.push_str(&e.to_string());
    }
    s
}

#[cfg(test)]
mod error_tests;
