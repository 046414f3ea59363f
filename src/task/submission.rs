//! What a submission asks of the pool: the task's limits ([`TaskLimits`]), and
//! how it waits for room under `max_queued` ([`Admission`]).

use std::time::Duration;

#[allow(unused_imports)] // named by the docs' links
use crate::error::Error;

/// How a task may run: its time limit, and how often it runs again after its
/// worker dies. `None` takes the pool's default.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TaskLimits {
    /// Kill the worker when the task runs longer.
    pub timeout: Option<Duration>,
    /// Run the task again on a fresh worker this many times at most.
    pub retries: Option<u32>,
}

/// How a submission waits for room under `max_queued`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Wait for room (the plain forms).
    Wait,
    /// Fail with [`Error::QueueFull`] (the `try_` forms).
    NoWait,
    /// The caller admitted the task already (`PendingTasks::admit`).
    Admitted,
}
