//! The parts an [`Error`](crate::Error) names: which way a codec failed and for what value, why
//! a worker died, and which work an error is about.

use std::fmt;
use std::ops::Range;

#[allow(unused_imports)] // named by doc links
use super::messages::human_bytes;

/// Whether a value failed to serialize or to deserialize ([`Error::Codec`](crate::Error::Codec)).
///
/// # Examples
///
/// ```
/// use shmpool::CodecDirection;
///
/// assert_eq!(CodecDirection::Encode.to_string(), "encode");
/// assert_eq!(CodecDirection::Decode.to_string(), "decode");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecDirection {
    /// Serializing, before the value travels.
    Encode,
    /// Deserializing, after it travelled.
    Decode,
}

impl fmt::Display for CodecDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodecDirection::Encode => "encode",
            CodecDirection::Decode => "decode",
        })
    }
}

/// What a value that failed to serialize or deserialize was
/// ([`Error::Codec`](crate::Error::Codec)).
///
/// # Examples
///
/// A result type whose `Serialize` impl fails, as Python's `MaybeEncodingError`
/// reports an unpicklable result:
///
/// ```
/// use serde::{Serialize, Serializer};
/// use shmpool::{CodecDirection, CodecRole, Error, Pool};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Unsendable;
///
/// impl Serialize for Unsendable {
///     fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(serde::ser::Error::custom("a file handle cannot travel"))
///     }
/// }
///
/// let pool = Pool::new(1)?;
/// match pool.apply(|| Unsendable, ()) {
///     Err(Error::Codec { direction, role, type_name, .. }) => {
///         assert_eq!((direction, role), (CodecDirection::Encode, CodecRole::Result));
///         assert!(type_name.ends_with("Unsendable"));
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(CodecRole::Argument.to_string(), "a task argument");
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecRole {
    /// What a task is called with: the argument tuple of an `apply` or an
    /// initializer, or one item (or argument tuple) of a `map`, `starmap` or `imap`.
    Argument,
    /// What a task returned: the result of an `apply`, or of one item of a `map`,
    /// `starmap` or `imap`.
    Result,
    /// The report of a task's panic, on its way from the worker.
    PanicReport,
}

impl fmt::Display for CodecRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodecRole::Argument => "a task argument",
            CodecRole::Result => "a task result",
            CodecRole::PanicReport => "a panic report",
        })
    }
}

/// How a worker process ended.
///
/// # Examples
///
/// ```
/// use shmpool::{DeathCause, Error, Pool, PoolKill};
///
/// let pool = Pool::new(1)?;
/// match pool.apply(|| -> u8 { std::process::exit(3) }, ()) {
///     Err(Error::WorkerDied { cause, .. }) => assert_eq!(cause, DeathCause::Exit(3)),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(DeathCause::Signal(11).to_string(), "was killed by SIGSEGV");
/// // A SIGKILL the pool did not order, while the kernel's OOM-kill count did not rise:
/// assert_eq!(
///     DeathCause::Signal(9).to_string(),
///     "was killed by SIGKILL from outside the pool (another process, or an OOM kill \
///      the kernel did not count)"
/// );
/// // One the pool ordered itself says why:
/// assert_eq!(
///     DeathCause::KilledByPool(PoolKill::Cancelled).to_string(),
///     "was killed by the pool: its work was cancelled"
/// );
/// assert_eq!(
///     DeathCause::MemoryLimit { limit: 64 << 20 }.to_string(),
///     "exceeded its memory limit of 67108864 bytes (64.0 MiB)"
/// );
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeathCause {
    /// Killed by this signal (SIGKILL, SIGSEGV, SIGABRT, ...).
    Signal(i32),
    /// Exited with this code (for example `std::process::exit(3)`).
    Exit(i32),
    /// An allocation failed under the pool's
    /// [`worker_memory_limit`](crate::PoolBuilder::worker_memory_limit): the worker
    /// aborted (SIGABRT) with `errno` at `ENOMEM`.
    MemoryLimit {
        /// The limit, in bytes: private memory the worker could add beyond what it
        /// held when it started.
        limit: u64,
    },
    /// Killed (SIGKILL) by the kernel's OOM killer: the OOM-kill count of the
    /// pool's memory cgroup (or, without one, of the whole system) rose when the
    /// worker died.
    OutOfMemory,
    /// Killed (SIGKILL) by the pool itself, for the reason given. The work the kill
    /// was for gets its own error ([`Error::Timeout`](crate::Error::Timeout),
    /// [`Error::Cancelled`](crate::Error::Cancelled), a cancelled map's
    /// [`Error::MapCancelled`](crate::Error::MapCancelled), or the pool's end); this
    /// cause shows in the pool's logs, and in the error of any chunk that such a
    /// death lost.
    KilledByPool(PoolKill),
}

/// Why the pool killed one of its own workers ([`DeathCause::KilledByPool`]).
///
/// A kill is decided while the worker is held on the work it was decided for (it
/// cannot move on until the pool lets go or kills it), so it never lands on other
/// work (`docs/FAULTS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolKill {
    /// Its task or chunk ran past its time limit (`task_timeout`, `chunk_timeout`).
    Timeout,
    /// Its task or bulk job was cancelled in [`CancelMode::Kill`](crate::CancelMode::Kill).
    Cancelled,
    /// The pool stopped: [`Pool::terminate`](crate::Pool::terminate), a dropped
    /// pool, or a pool that could not keep its workers.
    Stopped,
}

impl fmt::Display for PoolKill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolKill::Timeout => "its work ran past its time limit",
            PoolKill::Cancelled => "its work was cancelled",
            PoolKill::Stopped => "the pool stopped",
        })
    }
}

impl fmt::Display for DeathCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DeathCause::Signal(libc::SIGKILL) => f.write_str(
                "was killed by SIGKILL from outside the pool (another process, or an OOM \
                 kill the kernel did not count)",
            ),
            DeathCause::Signal(s) => write!(f, "was killed by {}", signal_name(s)),
            DeathCause::Exit(c) => write!(f, "exited with code {c}"),
            DeathCause::MemoryLimit { limit } if limit < 1024 => {
                write!(f, "exceeded its memory limit of {limit} bytes")
            }
            DeathCause::MemoryLimit { limit } => write!(
                f,
                "exceeded its memory limit of {limit} bytes ({})",
                human_bytes(limit)
            ),
            DeathCause::OutOfMemory => f.write_str("was killed by the kernel's OOM killer"),
            DeathCause::KilledByPool(why) => write!(f, "was killed by the pool: {why}"),
        }
    }
}

/// What a worker was running when something went wrong.
///
/// # Examples
///
/// A worker that dies in a `map` names the items of its chunk:
///
/// ```
/// use shmpool::{Error, Pool, Work};
///
/// let pool = Pool::new(2)?;
/// let die = |x: u32| if x == 13 { std::process::abort() } else { x };
/// match pool.tasks().chunksize(10).map(die, 0..40u32) {
///     Err(Error::WorkerDied { work, .. }) => assert_eq!(work, Work::Items(10..20)),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(Work::Chunk(96..128).to_string(), "chunk 96..128");
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Work {
    /// A generic task (`apply`, `apply_async`), by its id within the pool: the
    /// `task` field of the pool's tracing spans and events. The error arrives
    /// through that task's own result.
    Task(u64),
    /// The items, by input index, of one chunk of a `map`, `starmap` or `imap`.
    Items(Range<usize>),
    /// A chunk of a bulk array map, by element range.
    Chunk(Range<usize>),
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::Task(id) => write!(f, "task {id}"),
            Work::Items(r) => write!(f, "items {}..{}", r.start, r.end),
            Work::Chunk(r) => write!(f, "chunk {}..{}", r.start, r.end),
        }
    }
}

/// The conventional name of a signal number.
pub(crate) fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}
