//! Python's vocabulary: `apply`, `map`, `starmap` and `imap`, over any serializable
//! arguments and results, in every form, for functions with and without a task
//! context.
//!
//! * [`tasks_builder`]: [`Tasks`], one call's options and what its function receives
//!   first, made by `pool.tasks()`;
//! * [`forms`]: `apply`, `map` and `starmap`, blocking, `try_`, `_async` and
//!   `_async_with`, each written once for both; [`imap`]: the lazy iterators;
//! * [`submit`]: submitting one task or a map's chunks; [`chunks`]: a map's chunks
//!   and the result they add up to; [`shipment`]: a task context in shared memory;
//!   [`progress`]: progress bars.

mod chunks;
mod forms;
mod imap;
#[cfg(feature = "progress")]
pub(crate) mod progress;
mod shipment;
mod submit;
mod tasks_builder;

#[cfg(feature = "mpi")]
pub(crate) use chunks::collect_input;
pub use imap::{Imap, ImapStream};
#[cfg(feature = "progress")]
pub use progress::Progress;
pub use tasks_builder::Tasks;
