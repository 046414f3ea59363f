//! The shared-memory scratch a reduction's partials go to, kept between calls.
//!
//! A reduction writes one partial per chunk into a segment every worker maps. A
//! fresh segment per call would cost a memfd, a descriptor sent to each worker, a
//! mapping in each and a page fault per page touched; the pool keeps one small
//! scratch instead and lends it to one reduction at a time (a concurrent reduction
//! makes its own). Only a scratch of at most [`KEPT_BYTES`] is kept, so an idle pool
//! holds at most that much for it.

use std::sync::Mutex;

use crate::array::SharedArray;
use crate::error::Result;

/// The largest scratch the pool keeps between calls.
pub(crate) const KEPT_BYTES: usize = 4 << 20;

/// The pool's spare scratch.
#[derive(Debug, Default)]
pub(crate) struct ScratchCache {
    spare: Mutex<Option<SharedArray<u8>>>,
}

impl ScratchCache {
    /// A scratch of at least `bytes`: the spare one if it is big enough, else a new
    /// one.
    pub(crate) fn take(&self, bytes: usize) -> Result<SharedArray<u8>> {
        let spare = self.lock().take();
        match spare {
            Some(s) if s.len() >= bytes => Ok(s),
            _ => SharedArray::zeroed(bytes.max(64 << 10)),
        }
    }

    /// Gives a scratch back after a reduction; kept if it is small enough.
    pub(crate) fn give_back(&self, scratch: SharedArray<u8>) {
        if scratch.len() <= KEPT_BYTES {
            let mut spare = self.lock();
            if spare.as_ref().is_none_or(|s| s.len() < scratch.len()) {
                *spare = Some(scratch);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SharedArray<u8>>> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner())
    }
}
