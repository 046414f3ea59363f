//! The liveness table: how a worker learns that an array it mapped was dropped.
//!
//! Workers cache their mappings of array segments, because mapping (and faulting in)
//! a large array on every job would cost more than the job. A cached mapping keeps
//! the memory alive, so workers must drop it when the parent releases the segment:
//! when its array is dropped and the array cache (`recycle.rs`) does not keep it,
//! or when the cache lets it go. A kept segment's word stays alive. The
//! parent process keeps one small shared segment of 64-bit words: when an array is
//! first shipped to a pool it gets a word, which holds the array's segment id until
//! the segment is released and 0 after. Workers check the words of their cached mappings
//! whenever they go idle, and unmap the dead ones. A word is reused for a later array
//! with a different id, which the worker also notices.
//!
//! After the words comes one more: the *retirement epoch*, which the parent bumps
//! after every retirement. A busy worker, never idle, loads it between records
//! (one atomic load) and checks its mappings when it changed, so a dropped array's
//! memory comes back within one task's time even on a pool that is never idle.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use super::mapping::Mapping;
use crate::sync::{AtomicU64, Ordering};
use crate::sys::{self, MapOptions};

/// Words in the table: the most arrays that can be shipped to pools at once.
pub(crate) const WORDS: usize = 1 << 20;

/// The table's size in bytes: the words, then the retirement epoch on a cache line
/// of its own.
const TABLE_BYTES: usize = WORDS * 8 + 64;

/// The parent's table.
#[derive(Debug)]
pub(crate) struct Liveness {
    fd: OwnedFd,
    map: Mapping,
    free: Mutex<FreeList>,
}

#[derive(Debug, Default)]
struct FreeList {
    next: u32,
    returned: Vec<u32>,
}

/// The process's table, once one was created. A failed creation (EMFILE, ENOMEM)
/// is not cached: the next pool tries again (issue 10, bug 7).
static TABLE: OnceLock<Liveness> = OnceLock::new();
/// Serializes creation, so two threads never create two tables.
static CREATING: Mutex<()> = Mutex::new(());

impl Liveness {
    /// The process's table, created on first use.
    pub(crate) fn global() -> io::Result<&'static Liveness> {
        if let Some(table) = TABLE.get() {
            return Ok(table);
        }
        let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = TABLE.get() {
            return Ok(table);
        }
        let table = Liveness::create().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create the liveness table: {e}"))
        })?;
        Ok(TABLE.get_or_init(|| table))
    }

    fn create() -> io::Result<Liveness> {
        let bytes = TABLE_BYTES;
        let fd = sys::memfd(c"shmpool-liveness", bytes as u64)?;
        let map = Mapping::new(
            fd.as_fd(),
            bytes,
            MapOptions {
                writable: true,
                dont_fork: true,
            },
        )?;
        Ok(Liveness {
            fd,
            map,
            free: Mutex::new(FreeList::default()),
        })
    }

    /// The memfd, passed to every worker at spawn.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is WORDS * 8 bytes, page-aligned, zero-initialised, and
        // AtomicU64 is valid for any bits; it lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.ptr().cast::<AtomicU64>(), WORDS) }
    }

    fn epoch(&self) -> &AtomicU64 {
        // SAFETY: the epoch word is at byte WORDS * 8, inside the TABLE_BYTES-long
        // mapping, 8-aligned; it lives as long as `self`.
        unsafe { &*self.map.ptr().add(WORDS * 8).cast::<AtomicU64>() }
    }

    /// Takes a word for segment `id` and marks it alive.
    pub(crate) fn register(&self, id: u64) -> io::Result<u32> {
        let idx = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            match free.returned.pop() {
                Some(i) => i,
                None if (free.next as usize) < WORDS => {
                    free.next += 1;
                    free.next - 1
                }
                None => {
                    return Err(io::Error::other(
                        "more than 1,048,576 arrays are in use with pools at once",
                    ));
                }
            }
        };
        // SYNC(L1): Release — pairs with the worker's Acquire load in `is_alive` (SYNC
        // L2). The id is written before the array is shipped, so a worker that maps it
        // sees it alive.
        self.words()[idx as usize].store(id, Ordering::Release);
        Ok(idx)
    }

    /// Whether word `idx` still names segment `id`.
    pub(crate) fn is_alive(&self, idx: u32, id: u64) -> bool {
        // SYNC(L4): Acquire — the parent's own check (pruning a channel's shipped list); pairs
        // with SYNC L1/L3 from whichever parent thread registered or retired the word. Nothing
        // is read on its strength.
        self.words()
            .get(idx as usize)
            .is_some_and(|w| w.load(Ordering::Acquire) == id)
    }

    /// Marks the word dead and returns it to the free list.
    pub(crate) fn retire(&self, idx: u32) {
        // SYNC(L3): Release — the array is being dropped; pairs with SYNC L2.
        self.words()[idx as usize].store(0, Ordering::Release);
        // SYNC(L5): Release — orders the retirement (SYNC L3) before the new epoch;
        // pairs with the worker's Acquire load in `LivenessView::epoch` (SYNC L6), so
        // a worker that sees the new epoch then sees the word at 0.
        self.epoch().fetch_add(1, Ordering::Release);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.returned.push(idx);
    }
}

/// A worker's read-only view of the parent's table.
#[derive(Debug)]
pub(crate) struct LivenessView {
    map: Mapping,
}

impl LivenessView {
    /// Maps the table from the descriptor the fork server passed on.
    pub(crate) fn open(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let map = Mapping::new(
            fd,
            TABLE_BYTES,
            MapOptions {
                writable: false,
                dont_fork: true,
            },
        )?;
        Ok(LivenessView { map })
    }

    /// Whether word `idx` still names segment `id`.
    pub(crate) fn is_alive(&self, idx: u64, id: u64) -> bool {
        if idx as usize >= WORDS {
            return false;
        }
        // SAFETY: in bounds (checked), aligned, atomics over a shared mapping.
        let word = unsafe { &*self.map.ptr().cast::<AtomicU64>().add(idx as usize) };
        // SYNC(L2): Acquire — pairs with SYNC L1 and SYNC L3.
        word.load(Ordering::Acquire) == id
    }

    /// The retirement epoch: it changes whenever the parent drops a shipped array.
    pub(crate) fn epoch(&self) -> u64 {
        // SAFETY: the epoch word is at byte WORDS * 8 of the TABLE_BYTES-long
        // mapping, 8-aligned; atomics over a shared mapping.
        let word = unsafe { &*self.map.ptr().add(WORDS * 8).cast::<AtomicU64>() };
        // SYNC(L6): Acquire — pairs with SYNC L5: the retirements counted are visible
        // to the `is_alive` checks (SYNC L2) that follow.
        word.load(Ordering::Acquire)
    }
}
