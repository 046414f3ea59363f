//! Exit codes a worker uses to tell the collector why it stopped.

/// Normal exit: the pool is closing, or the worker retired.
pub(crate) const OK: i32 = 0;
/// The control segment was not a valid shmpool segment.
pub(crate) const BAD_SEGMENT: i32 = 70;
/// A re-executed worker found a different binary than the parent's.
pub(crate) const BINARY_MISMATCH: i32 = 71;
/// The parent or fork server is gone.
pub(crate) const ORPHANED: i32 = 72;
/// The initializer panicked.
pub(crate) const INIT_FAILED: i32 = 73;
/// The fork server could not start this worker.
pub(crate) const SPAWN_FAILED: i32 = 74;
/// The worker could not set up its memory controls (`RLIMIT_DATA`, or reading
/// `/proc/self/status` or `/proc/self/statm`).
pub(crate) const MEMORY_CONTROLS: i32 = 75;
