//! An arena file mapped in windows: address space taken as payloads need it.
//!
//! An arena (`src/shm/arena.rs`) is a memfd that its writer grows with `ftruncate` and
//! that readers read at offsets published through the rings. Every process maps it
//! in **windows** that double in size: window 0 covers bytes `0..W` of the file,
//! window 1 `W..2W`, window 2 `2W..4W`, window k `W·2^(k-1)..W·2^k`
//! ([`FIRST_WINDOW`] = W = 1 MiB). A process maps a window the first time it
//! writes or reads inside it, and keeps it until the arena is dropped, so a pointer
//! into a window stays valid as long as the [`ArenaMap`] does, and nobody ever
//! moves or remaps anything: offsets are file offsets, the same in every process.
//! The writers place every payload inside one window ([`place`]), so a payload is
//! contiguous in every process's address space.
//!
//! So an arena takes address space for what it has carried, not for what it
//! might: 1 MiB per process while payloads are small, and at most about twice the
//! highest offset used. Under `ulimit -v` (`RLIMIT_AS`) arrays and payloads share
//! the limit, and whichever does not fit is a typed error. Before, every arena
//! mapping reserved the machine's memory plus swap (64 GiB to 1 TiB), halved
//! until it fitted: at 2 GiB the arenas left under 256 MiB for arrays, and at
//! 1 GiB `build` failed (issue 24).
//!
//! The file itself may grow to [`capacity`]: twice the largest payload, which is
//! the machine's memory plus swap rounded up to a power of two (64 GiB to 1 TiB).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::OnceLock;

use super::mapping::Mapping;
use crate::sys::{self, MapOptions};

/// The size of windows 0 and 1; window k > 1 is `FIRST_WINDOW << (k - 1)` bytes.
pub(crate) const FIRST_WINDOW: u64 = 1 << 20;

/// The largest payload an arena carries: the machine's memory plus swap (no
/// payload can be larger: it was in memory to be serialized), rounded up to a
/// power of two, at least 64 GiB and at most 1 TiB. The same in every process on
/// the machine.
pub(crate) fn max_payload() -> u64 {
    static MAX: OnceLock<u64> = OnceLock::new();
    *MAX.get_or_init(|| {
        let memory = sys::memory_and_swap().unwrap_or(0);
        memory.next_power_of_two().clamp(64 << 30, 1 << 40)
    })
}

/// The most bytes an arena file may grow to: the end of the window that holds a
/// payload of [`max_payload`] bytes.
pub(crate) fn capacity() -> u64 {
    2 * max_payload()
}

/// The window that holds file offset `off`.
fn window_of(off: u64) -> usize {
    (u64::BITS - (off / FIRST_WINDOW).leading_zeros()) as usize
}

/// The file range window `k` covers.
fn window_range(k: usize) -> std::ops::Range<u64> {
    match k {
        0 => 0..FIRST_WINDOW,
        k => FIRST_WINDOW << (k - 1)..FIRST_WINDOW << k,
    }
}

/// The first offset at or after `off` where `len` bytes lie inside one window; or,
/// for a payload no window within [`capacity`] holds, the start of the last
/// window, where it does not fit either ([`ArenaMap::ensure_len`] refuses it).
pub(crate) fn place(off: u64, len: u64) -> u64 {
    let mut at = off;
    loop {
        let window = window_range(window_of(at));
        if at.saturating_add(len) <= window.end || window.end >= capacity() {
            return at;
        }
        at = window.end;
    }
}

/// An arena file and this process's windows of it.
#[derive(Debug)]
pub(crate) struct ArenaMap {
    fd: OwnedFd,
    writable: bool,
    /// Window 0, mapped when the arena is opened (a result arena's release
    /// counter lives there).
    first: Mapping,
    /// Window k at index k - 1, once this process has mapped it. Never unmapped
    /// before the arena is dropped: pointers into them borrow `self`.
    more: Box<[OnceLock<Mapping>]>,
}

impl ArenaMap {
    /// Creates a new, empty arena file and maps its first window.
    pub(crate) fn create(name: &std::ffi::CStr) -> io::Result<Self> {
        let fd = sys::memfd(name, 0)?;
        Self::open(fd, true)
    }

    /// Maps the first window of an existing arena file (received from the
    /// parent); the others are mapped when first used.
    pub(crate) fn open(fd: OwnedFd, writable: bool) -> io::Result<Self> {
        let first = map_window(fd.as_fd(), 0, writable)?;
        let windows = window_of(capacity() - 1);
        Ok(ArenaMap {
            fd,
            writable,
            first,
            more: (0..windows).map(|_| OnceLock::new()).collect(),
        })
    }

    /// The file descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The current file length.
    pub(crate) fn file_len(&self) -> io::Result<u64> {
        sys::file_len(self.fd.as_fd())
    }

    /// Address space this process has mapped for the arena (for tests).
    #[cfg(test)]
    pub(crate) fn mapped(&self) -> u64 {
        self.first.len() as u64
            + self
                .more
                .iter()
                .filter_map(|w| w.get())
                .map(|m| m.len() as u64)
                .sum::<u64>()
    }

    /// Grows the file to at least `end` bytes (in steps of at least `step`, and
    /// doubling), within [`capacity`].
    pub(crate) fn ensure_len(&self, end: u64, current: &mut u64, step: u64) -> io::Result<()> {
        if end <= *current {
            return Ok(());
        }
        if end > capacity() {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "a payload needs {end} bytes of arena; an arena holds at most {}",
                    capacity()
                ),
            ));
        }
        let target = end.max(current.saturating_mul(2)).max(step).min(capacity());
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

    /// The first byte of window 0, mapped since the arena was opened.
    pub(crate) fn start(&self) -> NonNull<u8> {
        self.first.as_non_null()
    }

    /// A pointer to file offset `off`, where `len` bytes lie inside one window,
    /// which this call maps if this process has not yet. The pointer is valid for
    /// `len` bytes as long as `self` lives (windows are never unmapped before).
    pub(crate) fn range(&self, off: u64, len: u64) -> io::Result<NonNull<u8>> {
        let k = window_of(off);
        let window = window_range(k);
        if off.checked_add(len).is_none_or(|end| end > window.end) || window.end > capacity() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{len} bytes at {off} do not lie inside one window of the arena"),
            ));
        }
        let map = match k {
            0 => &self.first,
            k => {
                let slot = &self.more[k - 1];
                match slot.get() {
                    Some(map) => map,
                    None => {
                        let map = map_window(self.fd.as_fd(), k, self.writable)?;
                        // Another thread may have mapped it meanwhile: the loser's
                        // mapping, never handed out, is dropped.
                        let _ = slot.set(map);
                        slot.get().expect("set above")
                    }
                }
            }
        };
        // SAFETY: `off - window.start` is less than the window's length, which is
        // the length of its mapping (checked above: `off < window.end`).
        Ok(unsafe { map.as_non_null().add((off - window.start) as usize) })
    }

    /// Reads `len` bytes at `off`, after checking they lie inside the file and
    /// inside one window.
    ///
    /// # Safety
    /// The range must have been published to this reader (through a ring record
    /// whose Release/Acquire pair orders the writer's bytes before this read) and must
    /// not be written until the reader has released it.
    pub(crate) unsafe fn read(&self, off: u64, len: u64) -> io::Result<&[u8]> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= capacity())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "payload outside the arena")
            })?;
        if end > self.file_len()? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "payload beyond the arena's end",
            ));
        }
        let ptr = self.range(off, len)?;
        // SAFETY: inside one mapped window and inside the file (checked), valid
        // while `self` lives; exclusivity is the caller's guarantee.
        Ok(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len as usize) })
    }

    /// Gives the pages of `off..off+len` back to the system; the range lies inside
    /// one window.
    pub(crate) fn discard(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        if let Ok(ptr) = self.range(off, len) {
            // SAFETY: the range is a freed block of this arena: no reader or writer
            // uses it until it is allocated again, which reads as zeros afterwards.
            unsafe { sys::discard(ptr, len as usize) };
        }
    }
}

/// Maps window `k` of the arena file `fd`. When address space runs out and this
/// process's array cache holds segments, it lets them go and the mapping is tried
/// again (`src/shm/recycle.rs`).
fn map_window(fd: BorrowedFd<'_>, k: usize, writable: bool) -> io::Result<Mapping> {
    let window = window_range(k);
    let opts = MapOptions {
        writable,
        dont_fork: true,
    };
    let len = (window.end - window.start) as usize;
    super::recycle::retry_after_releasing(
        || Mapping::new_at(fd, window.start, len, opts),
        |e| Some(e),
    )
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "mapping {len} bytes of an arena at offset {}: {e}",
                window.start
            ),
        )
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const W: u64 = FIRST_WINDOW;

    #[test]
    fn windows_double_and_tile_the_file() {
        assert_eq!(window_range(0), 0..W);
        assert_eq!(window_range(1), W..2 * W);
        assert_eq!(window_range(2), 2 * W..4 * W);
        for k in 0..30 {
            let r = window_range(k);
            assert_eq!(window_of(r.start), k);
            assert_eq!(window_of(r.end - 1), k);
            assert_eq!(window_range(k + 1).start, r.end);
        }
        assert!(window_of(capacity() - 1) >= 1);
    }

    #[test]
    fn a_payload_is_placed_inside_one_window() {
        assert_eq!(place(0, 100), 0);
        assert_eq!(place(W - 64, 64), W - 64);
        assert_eq!(place(W - 64, 128), W, "would cross into window 1");
        assert_eq!(place(100, W + 1), 2 * W, "windows 0 and 1 are too small");
        assert_eq!(place(3 * W, 2 * W), 4 * W);
        // Larger than any window: refused by `ensure_len`, not looped over.
        let at = place(0, capacity());
        assert!(at + capacity() > capacity());
        for (off, len) in [(5, 7 * W), (W + 3, 3 * W), (17 * W, W)] {
            let at = place(off, len);
            assert!(at >= off);
            assert_eq!(window_of(at), window_of(at + len - 1), "{off} {len}");
        }
    }

    #[test]
    fn windows_are_mapped_when_first_used_and_read_what_was_written() {
        let writer = ArenaMap::create(c"windows-test").unwrap();
        let reader = ArenaMap::open(writer.fd().try_clone_to_owned().unwrap(), false).unwrap();
        assert_eq!(writer.mapped(), W, "only the first window at first");
        let mut len = 0;
        let off = place(W - 10, 4096);
        writer.ensure_len(off + 4096, &mut len, W).unwrap();
        let ptr = writer.range(off, 4096).unwrap();
        // SAFETY: inside a window this test's writer mapped, which nothing else
        // writes.
        unsafe { ptr.as_ptr().write_bytes(7, 4096) };
        assert_eq!(writer.mapped(), 2 * W);
        // SAFETY: written above; nobody writes it while it is read.
        let back = unsafe { reader.read(off, 4096) }.unwrap();
        assert!(back.iter().all(|&b| b == 7));
        assert_eq!(reader.mapped(), 2 * W);
        // A range across two windows, or past the file, is refused, not read.
        // SAFETY: refused before anything is read.
        assert!(unsafe { reader.read(W - 8, 16) }.is_err());
        // SAFETY: as above.
        assert!(unsafe { reader.read(len, 8) }.is_err());
    }
}
