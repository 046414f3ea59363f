//! Worker processes: the loop that claims records from the submission ring and
//! runs them, and the fork server that starts and reaps workers.
//!
//! * [`worker_loop`]: a worker's life, from start to exit; [`task_exec`] and
//!   [`bulk_exec`]: running a generic task and a bulk job's chunks; [`idle`]: what
//!   wakes an idle worker, and its sleep; [`segments`]: the arrays it has mapped;
//!   [`memory_limits`]: `worker_memory_limit` and `max_worker_rss`;
//! * [`server`]: the fork server; [`entry`]: the re-executed process's entry, before
//!   `main`; [`role`]: what a re-executed process is asked to be; [`exit_code`]: why
//!   a worker stopped.

pub(crate) mod bulk_exec;
pub(crate) mod entry;
pub(crate) mod exit_code;
pub(crate) mod idle;
mod memory_limits;
pub(crate) mod role;
pub(crate) mod segments;
pub(crate) mod server;
mod task_exec;
mod worker_loop;
