//! Zeroing reused memory without allocating it.
//!
//! [`crate::SharedArray::zeroed`] on a segment taken from the array cache
//! (`src/shm/recycle.rs`) must read as zeros, and must hold no more memory than a fresh
//! segment would: a fresh memfd allocates a page only when someone touches it (as
//! `np.zeros` does), so a loop that makes a 1 GiB output each step and writes 64 KiB
//! of it must hold 64 KiB, not the GiB, on every step.
//!
//! So only the pages the file holds are zeroed. The kernel keeps that set for us:
//! `lseek` with `SEEK_DATA` and `SEEK_HOLE` walks a memory file's pages, those in
//! memory and those swapped out (`src/sys/huge_pages.rs`, `data_extents`); everything else reads
//! as zeros already. A page leaves a segment's file only if the file is truncated or
//! a hole is punched, and shmpool does neither to an array segment, so the set only
//! grows. (Were a known page punched out all the same, zeroing it would allocate it
//! again: a lost saving, never a wrong value.) [`HeldPages`] remembers what it has found, and looks again only in the
//! gaps: a segment whose pages are all held costs no walk at all after its first
//! zeroing, and a sparse one costs a walk over its few extents.
//!
//! The zeros are written through the parent's mapping. Pages the workers wrote are
//! not mapped there yet, and a write would take a fault per 4 KiB page; each newly
//! found extent is mapped first with `MADV_POPULATE_READ`, which takes one fault per
//! 16 pages and, over pages the file holds, allocates nothing. The entries stay, so
//! later zeroings write at the speed of memory (`docs/BENCHMARKS.md`, "Reused
//! memory").
//!
//! Two other ways were measured and rejected (`docs/BENCHMARKS.md`): punching a
//! hole over the data (`fallocate(PUNCH_HOLE)`, `MADV_REMOVE`) frees the pages the
//! workers have mapped, so the next call faults every page in again, as into fresh
//! memory; zeroing the pages `mincore` reports resident is no faster than the walk
//! above, and wrong for a page that was swapped out, which `mincore` reports absent
//! though the file still holds its old contents.

use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use crate::sys;
use crate::sys::huge_pages as sys_pages;

/// The ranges of a segment's mapping known to hold pages in its file, each mapped
/// in this process's mapping when it was found.
#[derive(Debug, Default)]
pub(crate) struct HeldPages {
    /// Sorted, disjoint and not adjacent; offsets from the start of the mapping
    /// (which maps the file from offset 0).
    known: Vec<Range<usize>>,
}

impl HeldPages {
    /// Bytes known to be held (for tests).
    #[cfg(test)]
    fn known_bytes(&self) -> usize {
        self.known.iter().map(|r| r.len()).sum()
    }

    /// Writes zeros over the part of `data` where the file `fd` holds pages, and
    /// leaves the rest (which reads as zeros and holds no memory) untouched.
    ///
    /// # Safety
    /// `map..map+map_len` must be this process's writable `MAP_SHARED` mapping of
    /// the whole of `fd` from offset 0, `data` must lie inside it, and nobody may
    /// access `data` during the call.
    pub(crate) unsafe fn zero(
        &mut self,
        fd: BorrowedFd<'_>,
        map: NonNull<u8>,
        map_len: usize,
        data: Range<usize>,
    ) {
        self.learn(fd, map, map_len);
        for held in &self.known {
            let (start, end) = (held.start.max(data.start), held.end.min(data.end));
            if start < end {
                // SAFETY: `start..end` lies inside `data`, inside the mapping, which
                // nobody else accesses during the call (the caller's promise).
                unsafe { map.as_ptr().add(start).write_bytes(0, end - start) };
            }
        }
    }

    /// Looks for pages in the gaps between the known ranges, maps what it finds,
    /// and adds it to the known ranges.
    fn learn(&mut self, fd: BorrowedFd<'_>, map: NonNull<u8>, map_len: usize) {
        let mut gaps = Vec::new();
        let mut at = 0;
        for held in &self.known {
            if at < held.start {
                gaps.push(at..held.start);
            }
            at = held.end;
        }
        if at < map_len {
            gaps.push(at..map_len);
        }
        let mut found = Vec::new();
        for gap in gaps {
            let range = gap.start as u64..gap.end as u64;
            if let Err(e) = sys_pages::data_extents(fd, range, &mut found) {
                // Cannot tell: zero the whole gap. Correct, at the cost of
                // allocating its pages.
                tracing::debug!(error = %e, "SEEK_DATA failed; zeroing a whole gap");
                found.push(gap.start as u64..gap.end as u64);
            }
        }
        if found.is_empty() {
            return;
        }
        let page = sys::page_size();
        for extent in &found {
            let start = extent.start as usize;
            let end = (extent.end as usize).min(map_len);
            // Whole pages: the mapping's last page is whole even where the file
            // ends inside it.
            let len = (end - start).next_multiple_of(page).min(map_len - start);
            // SAFETY: `start..start+len` lies inside the caller's mapping; the
            // advice maps pages the file holds and changes no contents. A refusal
            // (a kernel before 5.14) only leaves the write to fault them in.
            let _ = unsafe { sys_pages::populate_read(map.add(start), len) };
        }
        self.known.extend(
            found
                .into_iter()
                .map(|r| r.start as usize..(r.end as usize).min(map_len)),
        );
        self.known.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(self.known.len());
        for r in self.known.drain(..) {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        self.known = merged;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::Mapping;
    use crate::sys::MapOptions;
    use std::os::fd::AsFd;

    #[test]
    fn only_the_pages_the_file_holds_are_zeroed_and_the_rest_stays_unallocated() {
        let page = sys::page_size();
        let len = 256 * page;
        let fd = sys::memfd(c"zeroing", len as u64).unwrap();
        let opts = MapOptions {
            writable: true,
            dont_fork: true,
        };
        let writer = Mapping::new(fd.as_fd(), len, opts).unwrap();
        let parent = Mapping::new(fd.as_fd(), len, opts).unwrap();
        let file = std::fs::File::from(fd.try_clone().unwrap());
        let held_bytes = || {
            use std::os::unix::fs::MetadataExt;
            file.metadata().unwrap().blocks() as usize * 512
        };
        let mut held = HeldPages::default();
        for round in 1..=3u8 {
            // Another mapping (a worker's) writes a few pages, one more each round.
            let touched = [0, 1, 100, 100 + usize::from(round)];
            for p in touched {
                // SAFETY: inside the writer's mapping, which only this test uses.
                unsafe { writer.ptr().add(p * page + 200).write(round) };
            }
            // SAFETY: the parent's mapping of the whole file; nothing else runs.
            unsafe { held.zero(fd.as_fd(), parent.as_non_null(), len, 128..len) };
            // SAFETY: reads of the writer's mapping, after the zeroing.
            let read = |off: usize| unsafe { writer.ptr().add(off).read() };
            for p in touched {
                assert_eq!(read(p * page + 200), 0, "round {round}, page {p}");
            }
            assert_eq!(
                held_bytes(),
                (3 + usize::from(round)) * page,
                "round {round}"
            );
            assert_eq!(held.known_bytes(), held_bytes());
        }
        // A byte before the data range is left alone.
        // SAFETY: as above.
        unsafe { writer.ptr().add(5).write(9) };
        // SAFETY: as above.
        unsafe { held.zero(fd.as_fd(), parent.as_non_null(), len, 128..len) };
        // SAFETY: as above.
        assert_eq!(unsafe { writer.ptr().add(5).read() }, 9);
    }
}
