//! Arenas: where task arguments and results too large for a ring slot go.
//!
//! An arena is a memfd that every side maps once with a large *virtual* reservation
//! ([`reserve`]) while the file itself starts small. The writer grows the file with
//! `ftruncate` when it needs room; because the mappings already cover the reserved
//! range, nobody ever remaps, and offsets stay valid in every process. Readers only
//! touch ranges that the writer published through a ring record, which the writer
//! grew the file to cover before publishing.
//!
//! * The **task arena** (one per pool) is written by the parent, which allocates
//!   with a first-fit free list kept in its own memory, and read by workers. A block
//!   is freed when its task completes or its worker dies.
//! * A **result arena** (one per worker process) is written by that worker with a
//!   bump allocator and read by the parent, which reports the bytes it has finished
//!   reading through the release counter in the arena's first bytes
//!   ([`RESULT_HEADER`]); the worker starts again from the first block once
//!   everything it handed out has been released. Because the counter lives in the
//!   arena, and the parent creates a new arena for every worker process, the count
//!   the worker compares with its own is always its own process's: a replacement can
//!   never inherit its predecessor's (issue 10, bug 1).

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::mapping::Mapping;
use crate::sys::{self, MapOptions};

/// The virtual address range reserved for each arena mapping: the largest payload
/// (and the most outstanding payload bytes) one arena can hold. It is the
/// machine's memory plus swap (no payload can be larger: it was in memory to be
/// serialized), rounded up to a power of two, at least 64 GiB and at most 1 TiB
/// (x86-64 gives a process 128 TiB of addresses, and a pool maps one arena per
/// worker slot plus one).
pub(crate) fn reserve() -> usize {
    static RESERVE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *RESERVE.get_or_init(|| {
        let memory = sys::memory_and_swap().unwrap_or(0);
        (memory.next_power_of_two() as usize).clamp(64 << 30, 1 << 40)
    })
}
/// Allocation granularity.
pub(crate) const ALIGN: u64 = 64;
/// Arenas are grown in steps of at least this much.
const GROW_STEP: u64 = 1 << 20;
/// When an idle result arena is larger than this, it is shrunk back to it.
const KEEP_WHEN_IDLE: u64 = 16 << 20;

/// Bytes at the start of a result arena that hold its release counter (one
/// `AtomicU64`, padded to the allocation granularity); blocks start after it.
pub(crate) const RESULT_HEADER: u64 = ALIGN;

/// Rounds up to the allocation granularity.
pub(crate) fn round(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// A memfd mapped with the full reservation.
#[derive(Debug)]
pub(crate) struct ArenaMap {
    fd: OwnedFd,
    map: Mapping,
}

impl ArenaMap {
    /// Creates a new, empty arena file and maps it.
    pub(crate) fn create(name: &std::ffi::CStr) -> io::Result<Self> {
        let fd = sys::memfd(name, 0)?;
        Self::open(fd, true)
    }

    /// Maps an existing arena file (received from the parent).
    pub(crate) fn open(fd: OwnedFd, writable: bool) -> io::Result<Self> {
        let mut reserve = reserve();
        loop {
            match Mapping::new(
                fd.as_fd(),
                reserve,
                MapOptions {
                    writable,
                    dont_fork: true,
                },
            ) {
                Ok(map) => return Ok(ArenaMap { fd, map }),
                // Address space limited (ulimit -v): reserve less.
                Err(e) if reserve > (256 << 20) && e.raw_os_error() == Some(libc::ENOMEM) => {
                    reserve /= 2
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The file descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The reserved size.
    pub(crate) fn reserved(&self) -> u64 {
        self.map.len() as u64
    }

    /// The current file length.
    pub(crate) fn file_len(&self) -> io::Result<u64> {
        sys::file_len(self.fd.as_fd())
    }

    /// Grows the file to at least `end` bytes (in steps), within the reservation.
    pub(crate) fn ensure_len(&self, end: u64, current: &mut u64) -> io::Result<()> {
        if end <= *current {
            return Ok(());
        }
        if end > self.reserved() {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "a payload needs {end} bytes of arena; the arena reserves {}",
                    self.reserved()
                ),
            ));
        }
        let target = end
            .max(current.saturating_mul(2))
            .max(GROW_STEP)
            .min(self.reserved());
        sys::set_len(self.fd.as_fd(), target)?;
        *current = target;
        Ok(())
    }

    /// Shrinks the file to `len` bytes, freeing the memory above.
    pub(crate) fn shrink_to(&self, len: u64, current: &mut u64) {
        if len < *current && sys::set_len(self.fd.as_fd(), len).is_ok() {
            *current = len;
        }
    }

    /// A pointer to offset `off`.
    pub(crate) fn at(&self, off: u64) -> *mut u8 {
        debug_assert!(off <= self.reserved());
        // SAFETY: off is within the reserved mapping (checked by callers against the
        // file length, which never exceeds the reservation).
        unsafe { self.map.ptr().add(off as usize) }
    }

    /// Reads `len` bytes at `off`, after checking they lie inside the file.
    ///
    /// # Safety
    /// The range must have been published to this reader (through a ring record
    /// whose Release/Acquire pair orders the writer's bytes before this read) and must
    /// not be written until the reader has released it.
    pub(crate) unsafe fn read(&self, off: u64, len: u64) -> io::Result<&[u8]> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= self.reserved())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "payload outside the arena")
            })?;
        if end > self.file_len()? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "payload beyond the arena's end",
            ));
        }
        // SAFETY: inside the mapping and the file (checked); exclusivity is the
        // caller's guarantee.
        Ok(unsafe { std::slice::from_raw_parts(self.at(off), len as usize) })
    }

    /// Gives the pages of `off..off+len` back to the system.
    pub(crate) fn discard(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        if let Some(ptr) = NonNull::new(self.at(off)) {
            // SAFETY: the range is a freed block of this arena: no reader or writer
            // uses it until it is allocated again, which reads as zeros afterwards.
            unsafe { sys::discard(ptr, len as usize) };
        }
    }
}

/// A block of the task arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// Offset in the arena.
    pub off: u64,
    /// Bytes reserved for it (a multiple of [`ALIGN`]).
    pub len: u64,
}

/// The parent's allocator for the task arena: first fit over a free list, with
/// coalescing. Kept in parent memory behind the pool's mutex.
#[derive(Debug)]
pub(crate) struct TaskArena {
    map: ArenaMap,
    file_len: u64,
    /// Free blocks below `end`, by offset.
    free: BTreeMap<u64, u64>,
    /// Everything at or above `end` is unused.
    end: u64,
}

impl TaskArena {
    /// A new, empty task arena.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(TaskArena {
            map: ArenaMap::create(c"shmpool-task-arena")?,
            file_len: 0,
            free: BTreeMap::new(),
            end: 0,
        })
    }

    /// The arena file, for the fork server to pass on.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.map.fd()
    }

    /// The arena file's current length in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.file_len
    }

    /// Copies `bytes` into a new block.
    pub(crate) fn store(&mut self, bytes: &[u8]) -> io::Result<Block> {
        let need = round(bytes.len() as u64).max(ALIGN);
        let found = self
            .free
            .iter()
            .find(|&(_, &len)| len >= need)
            .map(|(&off, &len)| (off, len));
        let off = match found {
            Some((off, len)) => {
                self.free.remove(&off);
                if len > need {
                    self.free.insert(off + need, len - need);
                }
                off
            }
            None => {
                let off = self.end;
                self.map.ensure_len(off + need, &mut self.file_len)?;
                self.end = off + need;
                off
            }
        };
        // SAFETY: the block is allocated to this call alone; no worker reads it until
        // the record naming it is pushed (Release) after this copy.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.at(off), bytes.len()) };
        Ok(Block { off, len: need })
    }

    /// Returns a block to the free list (its task finished or its worker died).
    pub(crate) fn free(&mut self, block: Block) {
        let (mut off, mut len) = (block.off, block.len);
        if len >= GROW_STEP {
            self.map.discard(off, len);
        }
        if let Some((&prev, &plen)) = self.free.range(..off).next_back() {
            if prev + plen == off {
                self.free.remove(&prev);
                off = prev;
                len += plen;
            }
        }
        if let Some(&nlen) = self.free.get(&(off + len)) {
            self.free.remove(&(off + len));
            len += nlen;
        }
        if off + len == self.end {
            self.end = off;
        } else {
            self.free.insert(off, len);
        }
        if self.end == 0 && self.file_len > KEEP_WHEN_IDLE {
            self.map.shrink_to(KEEP_WHEN_IDLE, &mut self.file_len);
        }
    }

    /// Bytes in use (for tests).
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.end - self.free.values().sum::<u64>()
    }
}

/// The release counter at the start of a result arena.
fn release_counter(map: &ArenaMap) -> &AtomicU64 {
    // SAFETY: every result arena file is created at least a page long
    // ([`ResultReader::create`]) and mapped from offset 0, which is page-aligned, so
    // the first 8 bytes are valid, aligned for an AtomicU64, and live as long as the
    // mapping `map` borrows. Both processes touch them only through this atomic.
    unsafe { &*map.at(0).cast::<AtomicU64>() }
}

/// A worker's allocator for its result arena.
#[derive(Debug)]
pub(crate) struct ResultWriter {
    map: ArenaMap,
    file_len: u64,
    head: u64,
    handed_out: u64,
}

impl ResultWriter {
    /// The writer over the arena file the parent created for this worker process.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Self> {
        let map = ArenaMap::open(fd, true)?;
        let file_len = map.file_len()?;
        if file_len < RESULT_HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a result arena without its header",
            ));
        }
        Ok(ResultWriter {
            map,
            file_len,
            head: RESULT_HEADER,
            handed_out: 0,
        })
    }

    /// Copies `bytes` into the arena and returns the offset. When the parent has
    /// released everything handed out so far, the arena starts again from its first
    /// block (and gives back excess memory).
    pub(crate) fn store(&mut self, bytes: &[u8]) -> io::Result<u64> {
        // SYNC(A1): Acquire — pairs with the parent's Release in
        // `ResultReader::release`: its reads of the released blocks are done before we
        // write over them.
        let released = release_counter(&self.map).load(Ordering::Acquire);
        if released == self.handed_out && self.head != RESULT_HEADER {
            self.head = RESULT_HEADER;
            if self.file_len > KEEP_WHEN_IDLE {
                self.map.shrink_to(KEEP_WHEN_IDLE, &mut self.file_len);
            }
        }
        let need = round(bytes.len() as u64).max(ALIGN);
        let off = self.head;
        self.map.ensure_len(off + need, &mut self.file_len)?;
        // SAFETY: `off..off+need` lies above every block the parent has not released
        // (the bump pointer only moves up until all are released), so nobody reads it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.at(off), bytes.len()) };
        self.head = off + need;
        self.handed_out = self.handed_out.wrapping_add(need);
        Ok(off)
    }
}

/// The parent's reader of one worker's result arena.
#[derive(Debug)]
pub(crate) struct ResultReader {
    map: ArenaMap,
}

impl ResultReader {
    /// Creates the arena file for a new worker process and maps it for reading. The
    /// file starts one page long, holding the release counter at zero.
    pub(crate) fn create() -> io::Result<Self> {
        let map = ArenaMap::create(c"shmpool-result-arena")?;
        sys::set_len(map.fd(), sys::page_size() as u64)?;
        Ok(ResultReader { map })
    }

    /// Gives the block of a `len`-byte result back to the worker: our reads of it
    /// are done.
    pub(crate) fn release(&self, len: u64) {
        // SYNC(A1): Release — our reads of the block happen before the worker reuses
        // it; pairs with the worker's Acquire load in `ResultWriter::store`.
        release_counter(&self.map).fetch_add(round(len).max(ALIGN), Ordering::Release);
    }

    /// The file, sent to the worker at spawn.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.map.fd()
    }

    /// The arena file's current length in bytes (the worker grows and shrinks it).
    pub(crate) fn size(&self) -> u64 {
        self.map.file_len().unwrap_or(0)
    }

    /// The bytes of a published result.
    ///
    /// # Safety
    /// As for [`ArenaMap::read`]: the range was published by a completion record
    /// this thread popped, and has not been released yet.
    pub(crate) unsafe fn read(&self, off: u64, len: u64) -> io::Result<&[u8]> {
        // SAFETY: Delegated to the caller.
        unsafe { self.map.read(off, len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_arena_reuses_and_coalesces() {
        let mut a = TaskArena::new().unwrap();
        let b1 = a.store(&[1; 100]).unwrap();
        let b2 = a.store(&[2; 10]).unwrap();
        let b3 = a.store(&[3; 200]).unwrap();
        assert_eq!(b1, Block { off: 0, len: 128 });
        assert_eq!(b2.off, 128);
        a.free(b1);
        a.free(b2);
        // Coalesced 0..192 serves a 150-byte block.
        let b4 = a.store(&[4; 150]).unwrap();
        assert_eq!(b4.off, 0);
        // SAFETY: reading back a block this test owns.
        let back = unsafe { a.map.read(b3.off, 200).unwrap().to_vec() };
        assert_eq!(back, vec![3; 200]);
        a.free(b3);
        a.free(b4);
        assert_eq!(a.used(), 0);
        assert_eq!(a.end, 0);
    }

    #[test]
    fn a_large_block_grows_the_file() {
        let mut a = TaskArena::new().unwrap();
        let big = vec![7u8; 5 << 20];
        let b = a.store(&big).unwrap();
        assert!(a.map.file_len().unwrap() >= 5 << 20);
        // SAFETY: as above.
        let back = unsafe { a.map.read(b.off, big.len() as u64) };
        assert!(back.unwrap().iter().all(|&x| x == 7));
        a.free(b);
    }

    #[test]
    fn a_new_writer_never_sees_another_process_releases() {
        // Issue 10, bug 1: each process gets its own arena, and so its own counter.
        let old = ResultReader::create().unwrap();
        let mut w = ResultWriter::new(old.fd().try_clone_to_owned().unwrap()).unwrap();
        w.store(&[1; 100]).unwrap();
        old.release(100);
        let new = ResultReader::create().unwrap();
        let mut w = ResultWriter::new(new.fd().try_clone_to_owned().unwrap()).unwrap();
        let a = w.store(&[1; 100]).unwrap();
        let b = w.store(&[2; 100]).unwrap();
        assert_ne!(a, b, "an unread result was overwritten");
        // SAFETY: both published above and not released.
        assert_eq!(unsafe { new.read(a, 100) }.unwrap(), &[1; 100]);
    }

    #[test]
    fn freeing_a_large_block_keeps_its_neighbours() {
        // Issue 10, bug 0: a freed block of 1 MiB or more is discarded; a partial last
        // page must not be, because the next block starts on it.
        for extra in [0u64, 64, 100, 4032, 4096, 4160] {
            let mut a = TaskArena::new().unwrap();
            let first = vec![1u8; (GROW_STEP + extra) as usize];
            let b1 = a.store(&first).unwrap();
            let b2 = a.store(&[2u8; 300]).unwrap();
            let b0 = a.store(&[3u8; 5000]).unwrap();
            a.free(b1);
            // SAFETY: b2 and b0 are live blocks this test owns.
            let (two, three) = unsafe {
                (
                    a.map.read(b2.off, 300).unwrap().to_vec(),
                    a.map.read(b0.off, 5000).unwrap().to_vec(),
                )
            };
            assert_eq!(two, vec![2u8; 300], "block after a freed {extra}-byte tail");
            assert_eq!(three, vec![3u8; 5000]);
        }
    }

    #[test]
    fn only_whole_pages_inside_a_range_are_discarded() {
        let page = sys::page_size();
        assert_eq!(sys::pages_within(0, page - 1), None);
        assert_eq!(sys::pages_within(1, 2 * page), Some((page, page)));
        assert_eq!(
            sys::pages_within(page, 2 * page + 5),
            Some((page, 2 * page))
        );
        assert_eq!(sys::pages_within(usize::MAX - 3, 2), None);
    }

    #[test]
    fn result_arena_restarts_when_released() {
        let reader = ResultReader::create().unwrap();
        let fd = reader.fd().try_clone_to_owned().unwrap();
        let mut w = ResultWriter::new(fd).unwrap();
        let o1 = w.store(b"hello").unwrap();
        let o2 = w.store(b"world").unwrap();
        assert_eq!((o1, o2), (RESULT_HEADER, RESULT_HEADER + 64));
        // SAFETY: both were published by the writer above and not released.
        assert_eq!(unsafe { reader.read(o2, 5) }.unwrap(), b"world");
        reader.release(5);
        let o3 = w.store(b"third").unwrap();
        assert_eq!(o3, RESULT_HEADER + 128, "one block is still unread");
        reader.release(5);
        reader.release(5);
        let o4 = w.store(b"again").unwrap();
        assert_eq!(o4, RESULT_HEADER, "everything was released: start over");
        // SAFETY: a range beyond the file is refused, not read.
        assert!(unsafe { reader.read(reserve() as u64 - 8, 64) }.is_err());
    }
}
