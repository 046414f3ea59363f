//! The liveness table: how a worker learns that an array it mapped was dropped.
//!
//! Workers cache their mappings of array segments, because mapping (and faulting in)
//! a large array on every job would cost more than the job. A cached mapping keeps
//! the memory alive, so workers must drop it when the parent releases the segment:
//! when its array is dropped and the array cache (`src/shm/recycle.rs`) does not keep it,
//! or when the cache lets it go. A kept segment's word stays alive. The
//! parent process keeps one small shared segment of 64-bit words: when an array is
//! first shipped to a pool it gets a word, which holds the array's segment id until
//! the segment is released and 0 after. Workers check the words of their cached mappings
//! before they sleep, and unmap the dead ones. A word is reused for a later array
//! with a different id, which the worker also notices.
//!
//! After the words comes one more: the *retirement epoch*, which the parent bumps
//! after every retirement, and then wakes idle workers (`src/shm/registry.rs`). An idle
//! worker counts the epoch among the sources it re-checks before it sleeps
//! (`src/worker/idle.rs`), so no retirement can slip in unseen between its check and its
//! sleep. A busy worker, never idle, loads it between records (one atomic load) and
//! checks its mappings when it changed, so a dropped array's memory comes back
//! within one task's time even on a pool that is never idle.
//!
//! The protocol on the words is [`Table`] (`src/shm/liveness/table.rs`); this file maps
//! the table and hands out its words.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use super::mapping::Mapping;
use crate::sync::AtomicU64;
use crate::sys::{self, MapOptions};

mod table;
pub(crate) use table::Table;

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

    /// The words and the epoch, as the protocol sees them.
    fn table(&self) -> Table<'_> {
        // SAFETY: the mapping is TABLE_BYTES long, page-aligned, zero-initialised and
        // writable, and lives as long as `self`.
        unsafe { table_at(self.map.ptr()) }
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
        self.table().mark_alive(idx, id);
        Ok(idx)
    }

    /// Whether word `idx` still names segment `id`.
    pub(crate) fn is_alive(&self, idx: u32, id: u64) -> bool {
        self.table().is_alive(u64::from(idx), id)
    }

    /// The retirement epoch: how many retirements there have been.
    pub(crate) fn epoch(&self) -> u64 {
        self.table().epoch()
    }

    /// Marks the word dead, moves the retirement epoch, and returns the word to the
    /// free list. The caller then wakes idle workers (`registry::wake_idle_workers`).
    pub(crate) fn retire(&self, idx: u32) {
        self.table().retire(idx);
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

    /// The words and the epoch, as the protocol sees them (loads only).
    pub(crate) fn table(&self) -> Table<'_> {
        // SAFETY: the mapping is TABLE_BYTES long, page-aligned, and lives as long as
        // `self`; it is read-only, and a worker only loads through the table.
        unsafe { table_at(self.map.ptr()) }
    }
}

/// The table in a mapping of it.
///
/// # Safety
/// `base` points to [`TABLE_BYTES`] bytes, 8-aligned, valid for `'a`, that hold only
/// atomics (any bits are valid). Stores through the table (`mark_alive`, `retire`)
/// additionally need the memory writable.
unsafe fn table_at<'a>(base: *mut u8) -> Table<'a> {
    // SAFETY: by the caller's contract: the words are the first WORDS * 8 bytes, and
    // the epoch is the 8 bytes at WORDS * 8, inside TABLE_BYTES.
    let (words, epoch) = unsafe {
        (
            std::slice::from_raw_parts(base.cast::<AtomicU64>(), WORDS),
            &*base.add(WORDS * 8).cast::<AtomicU64>(),
        )
    };
    Table::new(words, epoch)
}
