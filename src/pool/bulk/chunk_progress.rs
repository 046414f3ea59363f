//! What the caller of a blocking bulk operation shows while it waits: a bar of the
//! operation's chunks ([`Bulk::progress`](super::Bulk::progress), feature
//! `progress`), or nothing.
//!
//! The bar counts chunks run, read from the job's done-bitmap by the waiting caller
//! each time it wakes (every 50 ms while it sleeps, `Published::wait`): the
//! workers do nothing more for it than they do for every job, one bit and one
//! counter per chunk. Chunks a failed job skipped are not counted, and a chunk run
//! again after its worker died is counted once, so the bar ends where the
//! operation got to: full on success, part way (and its line ended) on an error.

#[cfg(feature = "progress")]
use crate::pool::progress_bar::Bar;

/// A blocking operation's chunk bar, or nothing.
pub(super) struct ChunkProgress {
    #[cfg(feature = "progress")]
    bar: Option<Bar>,
    /// Chunks run by the operation's earlier jobs (a retry runs a new job).
    ran: u64,
}

impl ChunkProgress {
    /// A bar of `chunks` chunks if `show` (and the feature is on).
    pub(super) fn new(show: bool, chunks: u64) -> Self {
        #[cfg(not(feature = "progress"))]
        let _ = (show, chunks);
        ChunkProgress {
            #[cfg(feature = "progress")]
            bar: show.then(|| Bar::chunks(chunks)),
            ran: 0,
        }
    }

    /// Whether a bar is shown: whether `running` is worth reading.
    pub(super) fn shown(&self) -> bool {
        #[cfg(feature = "progress")]
        return self.bar.is_some();
        #[cfg(not(feature = "progress"))]
        false
    }

    /// The running job has run `running` chunks.
    pub(super) fn running(&self, running: u64) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.set(self.ran + running);
        }
        #[cfg(not(feature = "progress"))]
        let _ = running;
    }

    /// A job of the operation ended, having run `ran` chunks.
    pub(super) fn job_ended(&mut self, ran: u64) {
        self.ran += ran;
        self.running(0);
    }

    /// The operation succeeded: the bar is drawn full and its line ended. (An
    /// operation that fails drops its bar, which stays where it got to.)
    pub(super) fn finish(&self) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
