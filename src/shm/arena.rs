//! Arenas: where task arguments and results too large for a ring slot go.
//!
//! An arena is a memfd that the writer grows with `ftruncate` when it needs room,
//! and that every process maps in windows as it reaches them
//! (`src/shm/windows.rs`): nobody ever remaps or moves a mapping, so offsets stay
//! valid in every process, and an arena takes address space only for what it has
//! carried. Readers only touch ranges that the writer published through a ring
//! record, which the writer grew the file to cover before publishing; every
//! payload lies inside one window.
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
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use super::windows::ArenaMap;
use super::windows::place;
use crate::sys;

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

    /// Copies `bytes` into a new block, which lies inside one window of the arena
    /// (`src/shm/windows.rs`).
    pub(crate) fn store(&mut self, bytes: &[u8]) -> io::Result<Block> {
        let need = round(bytes.len() as u64).max(ALIGN);
        // First fit: the first free block with room for the block inside a window.
        let found = self.free.iter().find_map(|(&off, &len)| {
            let at = place(off, need);
            (at + need <= off + len).then_some((off, len, at))
        });
        let off = match found {
            Some((off, len, at)) => {
                self.free.remove(&off);
                if at > off {
                    self.free.insert(off, at - off);
                }
                if at + need < off + len {
                    self.free.insert(at + need, off + len - (at + need));
                }
                at
            }
            None => {
                let at = place(self.end, need);
                self.map
                    .ensure_len(at + need, &mut self.file_len, GROW_STEP)?;
                if at > self.end {
                    // The rest of the window below: free, for smaller blocks. No
                    // free block ends at `end` (freeing one there lowers `end`).
                    self.free.insert(self.end, at - self.end);
                }
                self.end = at + need;
                at
            }
        };
        let block = Block { off, len: need };
        let dst = match self.map.range(off, need) {
            Ok(dst) => dst,
            Err(e) => {
                // No address space for the window: the block goes back.
                self.free(block);
                return Err(e);
            }
        };
        // SAFETY: the block lies in a mapped window and is allocated to this call
        // alone; no worker reads it until the record naming it is pushed (Release)
        // after this copy.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.as_ptr(), bytes.len()) };
        Ok(block)
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
    // ([`ResultReader::create`]) and its first window, from offset 0, which is
    // page-aligned, is mapped for as long as `map` lives, so the first 8 bytes are
    // valid, aligned for an AtomicU64, and live as long as the borrow of `map`.
    // Both processes touch them only through this atomic.
    unsafe { map.start().cast::<AtomicU64>().as_ref() }
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
        // Inside one window: the rest of the window below is skipped.
        let off = place(self.head, need);
        self.map
            .ensure_len(off + need, &mut self.file_len, GROW_STEP)?;
        let dst = self.map.range(off, need)?;
        // SAFETY: `off..off+need` lies in a mapped window, above every block the
        // parent has not released (the bump pointer only moves up until all are
        // released), so nobody reads it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.as_ptr(), bytes.len()) };
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
    fn blocks_of_any_size_lie_inside_one_window_and_read_back() {
        let seed = sys::monotonic_ns();
        let mut state = seed | 1;
        let mut next = move |n: u64| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut a = TaskArena::new().unwrap();
        let mut live: Vec<(Block, u8, usize)> = Vec::new();
        let mut peak = 0;
        for round in 0..300u32 {
            if !live.is_empty() && next(3) == 0 {
                let (block, _, _) = live.swap_remove(next(live.len() as u64) as usize);
                a.free(block);
                continue;
            }
            let len = match next(4) {
                0 => next(200) as usize,
                1 => next(64 << 10) as usize,
                2 => next(1 << 20) as usize + (1 << 19),
                _ => next(3 << 20) as usize,
            };
            let byte = round as u8;
            let block = a.store(&vec![byte; len]).unwrap();
            assert_eq!(
                super::super::windows::place(block.off, block.len),
                block.off,
                "seed {seed}: block {block:?} crosses a window"
            );
            live.push((block, byte, len));
            peak = peak.max(a.end);
        }
        for (block, byte, len) in &live {
            // SAFETY: live blocks this test stored and has not freed.
            let back = unsafe { a.map.read(block.off, *len as u64) }.unwrap();
            assert!(back.iter().all(|b| b == byte), "seed {seed}: {block:?}");
        }
        // Windows double: what is mapped is at most twice the highest end.
        assert!(
            a.map.mapped() <= 2 * peak.max(1 << 20),
            "seed {seed}: {} bytes mapped for an arena that reached {peak}",
            a.map.mapped(),
        );
        for (block, _, _) in live {
            a.free(block);
        }
        assert_eq!((a.used(), a.end), (0, 0), "seed {seed}");
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
        assert!(unsafe { reader.read(super::super::windows::capacity() - 8, 64) }.is_err());
    }
}
