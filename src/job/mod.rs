//! The bulk job: the one home of a bulk operation's bookkeeping (a map's, a
//! reduction's), on both sides: the parent's and the workers'.
//!
//! * [`protocol`]: the job entry in shared memory and the protocol both sides
//!   follow: publish, join, claim, done-bits, panics, finish (`docs/PROTOCOL.md`).
//! * [`ledger`]: the parent's table of entries, the deaths the collector reports
//!   into it, the futures awaiting jobs, the finishing of jobs abandoned by dead
//!   workers, and the one function ([`ledger::Ledger::outcome`]) that decides what a
//!   finished job means: every chunk not computed, each named with its cause.
//! * [`scratch`]: the shared-memory scratch a reduction's partials go to, kept
//!   between calls.
//!
//! Under `cfg(loom)` only [`protocol`] is built: the loom models
//! (`src/loom_tests.rs`) run its claim, completion, stop and quiescence steps.
//!
//! The worker's chunk loop (`src/worker/bulk_exec.rs`) and the bulk engine with its retry
//! loop (`src/pool/bulk/engine.rs`) use these; neither keeps job state of its own.

#[cfg(not(loom))]
pub(crate) mod ledger;
pub(crate) mod protocol;
#[cfg(not(loom))]
pub(crate) mod scratch;
