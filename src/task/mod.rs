//! The generic-task engine, on both sides: what a task is (serialized arguments and
//! a trampoline), how the parent tracks it from submission to answer, and the
//! handles the caller holds.
//!
//! * the call: [`star_fn`] (how a function takes its arguments), [`codec`]
//!   (postcard, and the typed failures of a value that does not encode or decode),
//!   [`trampolines`] (the monomorphized functions a worker runs), [`context`] (a task
//!   context, decoded once per worker);
//! * the parent's side: [`pending`] (the table of submitted tasks and its backlog),
//!   [`delivery`] (the owner of every piece of task state from submission to
//!   delivery), [`submission`] (a task's limits and how it waits for room),
//!   [`sink`] (where a completion goes), [`callback_thread`] (where callbacks run);
//! * the handles: [`async_result`] (`AsyncResult`, `Callbacks`), [`result_future`]
//!   (its future), [`cancel`] (what a cancel does and did), [`signal`] (what a
//!   waiter sleeps on), and [`host`], the trait through which they reach their pool.
//!
//! The pool drives this engine (`src/pool/task_rings.rs`: submit, drain, deliver,
//! retry, cancel); the worker runs its trampolines (`src/worker/task_exec.rs`).

pub(crate) mod async_result;
pub(crate) mod callback_thread;
pub(crate) mod cancel;
pub(crate) mod codec;
pub(crate) mod context;
pub(crate) mod delivery;
pub(crate) mod host;
pub(crate) mod pending;
pub(crate) mod result_future;
pub(crate) mod signal;
pub(crate) mod sink;
pub(crate) mod star_fn;
pub(crate) mod submission;
pub(crate) mod trampolines;
