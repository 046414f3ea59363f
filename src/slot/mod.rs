//! A worker slot: one typed state machine, one generation per process, and the one
//! module that writes the slot's per-process words.
//!
//! Every worker process lives in a slot of the control segment. A slot holds:
//!
//! * its **lifecycle** ([`Lifecycle`], `src/slot/lifecycle.rs`): the state and the generation of
//!   its process in one atomic word, changed only by typed transitions;
//! * the **record of what the process runs** (`src/slot/record.rs`): the task it runs, the bulk
//!   job it is inside and the chunk it holds there, and the clock of the current
//!   task or chunk. Only the worker writes it, through the methods of this module;
//! * the **kill hold** (`src/slot/record.rs`): the collector raises it while it decides whether
//!   to kill the process, and the worker does not leave the work it runs while it is
//!   raised. So what the collector reads under the hold stays true until it kills or
//!   lets go: a kill can land only on the work it was decided for (`docs/PROTOCOL.md`
//!   §5c);
//! * the **end of the process** (`src/slot/death.rs`): the fork server (or the collector, for a
//!   process it killed) reports the exit status, and the collector takes the dead
//!   process's record once, as a [`DeadProcess`] token whose `release` empties the
//!   slot.
//!
//! Nothing outside this module writes a slot's words: every field is private, and a
//! new process starts from words reset in one step ([`WorkerSlot::begin_start`]), so
//! a replacement cannot inherit what its predecessor left.
//!
//! ```text
//!            begin_start (collector)           become_ready (worker)
//!   Empty(g) ───────────────────► Starting(g+1) ──────────────► Ready(g+1)
//!      ▲       (resets the words)      │                          │ begin_retiring
//!      │ DeadProcess::release          │ report_exit              ▼ (worker, last task)
//!      │ (collector, after handling    │ (fork server after    Retiring(g+1)
//!      │  the death; resets them)      │  reaping; collector       │
//!   Exited(g+1) ◄──────────────────────┴───────────────────────────┘
//!                  report_exit: from Starting, Ready or Retiring of the same generation
//! ```
//!
//! The generation is the process's identity in shared memory. A worker learns its own
//! generation with its start request, stamps it on every completion record it pushes
//! (the parent refuses a record whose generation is not that of the result arena it
//! holds for the slot), and the fork server names it when it reports an exit, so a
//! report about an old process can never move a slot that a newer one owns.
//!
//! A "respawn pending" slot is not a state here: a replacement is not tied to the
//! slot of the process it replaces. The collector keeps the pool topped up to its
//! size from whatever slots are `Empty` (`src/pool/collector.rs`, `top_up`), after a
//! back-off when workers keep dying while starting; that is where "respawn pending"
//! lives.

#[cfg(not(loom))]
mod death;
mod lifecycle;
mod record;
mod worker_slot;

#[cfg(not(loom))]
pub(crate) use death::{DeadProcess, Released};
pub(crate) use lifecycle::SlotState;
pub(crate) use record::{Assignment, KillHold};
pub(crate) use worker_slot::WorkerSlot;
