//! Huge pages: what the running system offers, and the calls that ask for them.
//!
//! Two kinds exist on Linux, and shmpool uses both for large arrays
//! (`src/shm/page_policy.rs` has the policy):
//!
//! - **hugetlbfs pages** (`memfd_create(MFD_HUGETLB)`): taken from a pool the
//!   administrator reserved (`/proc/sys/vm/nr_hugepages`). A `MAP_SHARED` mapping
//!   made *without* `MAP_NORESERVE` reserves every page of its range when it is
//!   made, and the reservation belongs to the file: `mmap` fails with `ENOMEM` when
//!   the pool is short, and later faults, in any process that maps the file, are
//!   served from the reservation. So a shortage is an error at creation, never a
//!   `SIGBUS` at first touch.
//! - **transparent huge pages for shared memory**: the kernel backs a shmem file
//!   with 2 MiB pages where it can find them, and with base pages where it cannot,
//!   when `/sys/kernel/mm/transparent_hugepage/shmem_enabled` allows it (`always`,
//!   `within_size`, or `advise` for mappings marked `MADV_HUGEPAGE`). Nothing is
//!   reserved and nothing can fail: a fault that finds no huge page takes a small one.

use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::MemfdFlags;
use rustix::mm::Advice;

/// Where the transparent-huge-page settings live.
const THP_DIR: &str = "/sys/kernel/mm/transparent_hugepage";

/// The shared-memory transparent-huge-page mode
/// (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShmemThp {
    /// `never`: no huge pages for shmem.
    Never,
    /// `advise`: huge pages for mappings marked `MADV_HUGEPAGE`.
    Advise,
    /// `within_size`: huge pages that lie wholly inside the file (and `advise`).
    WithinSize,
    /// `always`: huge pages wherever possible.
    Always,
    /// `deny`: never, even where a mount asks for them (emergency switch).
    Deny,
    /// `force`: always, for every shmem mount (testing switch).
    Force,
}

impl ShmemThp {
    /// Parses the file's contents, in which the chosen mode is in brackets:
    /// `always within_size advise [never] deny force`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let chosen = s.split_whitespace().find(|w| w.starts_with('['))?;
        Some(match chosen.trim_matches(|c| c == '[' || c == ']') {
            "never" => ShmemThp::Never,
            "advise" => ShmemThp::Advise,
            "within_size" => ShmemThp::WithinSize,
            "always" => ShmemThp::Always,
            "deny" => ShmemThp::Deny,
            "force" => ShmemThp::Force,
            _ => return None,
        })
    }

    /// Whether a mapping marked `MADV_HUGEPAGE` gets huge pages in this mode.
    pub(crate) fn allows_advised(self) -> bool {
        !matches!(self, ShmemThp::Never | ShmemThp::Deny)
    }

    /// The word the file uses for this mode.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ShmemThp::Never => "never",
            ShmemThp::Advise => "advise",
            ShmemThp::WithinSize => "within_size",
            ShmemThp::Always => "always",
            ShmemThp::Deny => "deny",
            ShmemThp::Force => "force",
        }
    }
}

/// The shared-memory THP mode now, or `None` when the kernel has no THP (the file
/// is missing or unreadable).
pub(crate) fn shmem_thp() -> Option<ShmemThp> {
    let s = std::fs::read_to_string(format!("{THP_DIR}/shmem_enabled")).ok()?;
    ShmemThp::parse(&s)
}

/// The size of a huge page mapped by one page-table entry of the middle level
/// (2 MiB on x86-64): the size of both transparent and, here, hugetlbfs pages.
pub(crate) fn huge_page_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::fs::read_to_string(format!("{THP_DIR}/hpage_pmd_size"))
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|n| n.is_power_of_two() && *n > super::mmap::page_size())
            .unwrap_or(2 << 20)
    })
}

/// The hugetlbfs pool of pages of `huge_page_size()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HugeTlbPool {
    /// Pages in the pool (`nr_hugepages`).
    pub total: u64,
    /// Pages neither in use nor reserved by a mapping: what a new mapping may
    /// reserve (free minus reserved), plus the surplus pages the kernel may still
    /// add (`nr_overcommit_hugepages` minus those already added).
    pub available: u64,
}

/// The hugetlbfs pool for the huge page size, read from
/// `/sys/kernel/mm/hugepages/hugepages-<size>kB/`; `None` when the kernel has no
/// such pool.
pub(crate) fn hugetlb_pool() -> Option<HugeTlbPool> {
    let dir = format!(
        "/sys/kernel/mm/hugepages/hugepages-{}kB",
        huge_page_size() / 1024
    );
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("{dir}/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let total = read("nr_hugepages")?;
    let free = read("free_hugepages")?;
    let reserved = read("resv_hugepages").unwrap_or(0);
    let overcommit = read("nr_overcommit_hugepages").unwrap_or(0);
    let surplus = read("surplus_hugepages").unwrap_or(0);
    Some(HugeTlbPool {
        total,
        available: free.saturating_sub(reserved) + overcommit.saturating_sub(surplus),
    })
}

/// Creates a close-on-exec hugetlbfs memory file of `len` bytes (a multiple of
/// [`huge_page_size`], as hugetlbfs requires). No page is reserved yet: the first
/// `MAP_SHARED` mapping reserves them (see the module docs).
pub(crate) fn memfd_hugetlb(name: &std::ffi::CStr, len: u64) -> io::Result<OwnedFd> {
    let size = huge_page_size();
    if len % size as u64 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a hugetlbfs file's length must be a multiple of the huge page size",
        ));
    }
    // MFD_HUGE_<size>: log2 of the page size in bits 26..32 (MFD_HUGE_SHIFT).
    let size_bits = MemfdFlags::from_bits_retain(size.trailing_zeros() << 26);
    let fd = super::fd::above_stdio(rustix::fs::memfd_create(
        name,
        MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB | size_bits,
    )?)?;
    super::mmap::set_len(fd.as_fd(), len)?;
    Ok(fd)
}

/// Marks a shared mapping for transparent huge pages (`MADV_HUGEPAGE`).
///
/// # Safety
/// `ptr..ptr+len` must be a mapping this process made. The advice changes which
/// pages back it, never its contents.
pub(crate) unsafe fn advise_huge(ptr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: Delegated to the caller.
    unsafe { rustix::mm::madvise(ptr.as_ptr().cast(), len, Advice::LinuxHugepage)? };
    Ok(())
}

/// Faults in the pages of `ptr..ptr+len` for writing (`MADV_POPULATE_WRITE`,
/// Linux 5.14). Where touching a page would raise `SIGBUS` or fail for want of
/// memory, this returns the error instead (`EFAULT`, `ENOMEM`). The contents do not
/// change: a new page reads as zeros.
///
/// # Safety
/// `ptr..ptr+len` must lie inside a writable shared mapping this process made.
pub(crate) unsafe fn populate_write(ptr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: Delegated to the caller.
    unsafe { rustix::mm::madvise(ptr.as_ptr().cast(), len, Advice::LinuxPopulateWrite)? };
    Ok(())
}

/// Maps the pages of `ptr..ptr+len` that are already in the file, as read faults
/// would, without touching them (`MADV_POPULATE_READ`, Linux 5.14). For a shared
/// mapping of shared memory the entries it makes are writable.
///
/// # Safety
/// `ptr..ptr+len` must lie inside a mapping this process made.
pub(crate) unsafe fn populate_read(ptr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: Delegated to the caller.
    unsafe { rustix::mm::madvise(ptr.as_ptr().cast(), len, Advice::LinuxPopulateRead)? };
    Ok(())
}

/// Appends to `out` the ranges of `range` in which the file `fd` holds pages, in
/// order: what `lseek` finds with `SEEK_DATA` and `SEEK_HOLE`. For a memory file
/// (a memfd, tmpfs) those are the pages anyone wrote or read through any mapping,
/// in memory or swapped out; the rest of the file holds no memory and reads as
/// zeros. A file system that keeps no holes (hugetlbfs) reports the whole range,
/// and so does a kernel that does not know the two requests. `range` starts on a
/// page boundary; the ranges found start on page boundaries and end on one, or at
/// the end of the file.
pub(crate) fn data_extents(
    fd: BorrowedFd<'_>,
    range: Range<u64>,
    out: &mut Vec<Range<u64>>,
) -> io::Result<()> {
    use rustix::fs::SeekFrom;
    let mut at = range.start;
    while at < range.end {
        let data = match rustix::fs::seek(fd, SeekFrom::Data(at)) {
            Ok(data) => data,
            // No data at or after `at`.
            Err(rustix::io::Errno::NXIO) => break,
            Err(rustix::io::Errno::INVAL) => {
                out.push(at..range.end);
                break;
            }
            Err(e) => return Err(e.into()),
        };
        if data >= range.end {
            break;
        }
        let hole = match rustix::fs::seek(fd, SeekFrom::Hole(data)) {
            Ok(hole) => hole.min(range.end),
            Err(rustix::io::Errno::NXIO) => range.end,
            Err(e) => return Err(e.into()),
        };
        out.push(data..hole);
        at = hole;
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_thp_mode_is_the_bracketed_word() {
        let parse = ShmemThp::parse;
        assert_eq!(
            parse("always within_size advise [never] deny force\n"),
            Some(ShmemThp::Never)
        );
        assert_eq!(
            parse("always [within_size] advise never deny force"),
            Some(ShmemThp::WithinSize)
        );
        assert_eq!(parse("[advise] never"), Some(ShmemThp::Advise));
        assert_eq!(parse("always advise never"), None);
        assert!(ShmemThp::Advise.allows_advised() && ShmemThp::Always.allows_advised());
        assert!(!ShmemThp::Never.allows_advised() && !ShmemThp::Deny.allows_advised());
    }

    #[test]
    fn the_huge_page_size_is_a_power_of_two_above_the_base_page() {
        let size = huge_page_size();
        assert!(size.is_power_of_two() && size > super::super::mmap::page_size());
    }

    #[test]
    fn data_extents_are_the_pages_a_memory_file_holds() {
        let page = super::super::mmap::page_size() as u64;
        let fd = super::super::mmap::memfd(c"extents", 64 * page).unwrap();
        let find = |range: Range<u64>| {
            let mut out = Vec::new();
            data_extents(fd.as_fd(), range, &mut out).unwrap();
            out
        };
        assert_eq!(find(0..64 * page), [], "a new file holds nothing");
        for (off, byte) in [(3 * page + 5, 1u8), (4 * page, 2), (40 * page, 3)] {
            rustix::io::pwrite(&fd, &[byte], off).unwrap();
        }
        assert_eq!(
            find(0..64 * page),
            [3 * page..5 * page, 40 * page..41 * page]
        );
        assert_eq!(
            find(4 * page..64 * page),
            [4 * page..5 * page, 40 * page..41 * page]
        );
        assert_eq!(find(0..40 * page), vec![3 * page..5 * page]);
        assert_eq!(find(41 * page..64 * page), []);
    }

    #[test]
    fn a_hugetlb_file_must_be_whole_huge_pages() {
        let e = memfd_hugetlb(c"t", 4096).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
