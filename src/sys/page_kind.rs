//! [`PageKind`]: the kind of pages behind an array (or any shared mapping). A leaf
//! module: the policy that chooses a kind is `src/shm/page_policy.rs`.

use super::huge_pages as sys_pages;

/// The kind of memory page behind a `SharedArray`.
///
/// # Examples
///
/// ```
/// use shmpool::{PageKind, SharedArray};
///
/// let small = SharedArray::<f64>::zeroed(1000)?;
/// assert_eq!(small.page_kind(), PageKind::Base); // small arrays never get huge pages
/// assert!(!small.page_kind().is_huge());
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageKind {
    /// Base pages (4 KiB on x86-64), faulted in one at a time.
    Base,
    /// Transparent huge pages (2 MiB on x86-64): the mapping is marked
    /// `MADV_HUGEPAGE` in every process, and the kernel backs each aligned 2 MiB
    /// range with a huge page when it can find one at the first touch, and with base
    /// pages when it cannot.
    TransparentHuge,
    /// hugetlbfs pages (2 MiB on x86-64) from the pool reserved by the administrator
    /// (`vm.nr_hugepages`), all reserved when the array was created.
    HugeTlb,
}

impl PageKind {
    /// Whether the pages are (or, for [`PageKind::TransparentHuge`], are asked to
    /// be) huge pages.
    pub fn is_huge(self) -> bool {
        self != PageKind::Base
    }

    /// The wire code, for a worker's `ShipInfo`.
    pub(crate) fn code(self) -> u64 {
        match self {
            PageKind::Base => 0,
            PageKind::TransparentHuge => 1,
            PageKind::HugeTlb => 2,
        }
    }

    /// The inverse of [`PageKind::code`]; unknown codes read as base pages.
    pub(crate) fn from_code(code: u64) -> Self {
        match code {
            1 => PageKind::TransparentHuge,
            2 => PageKind::HugeTlb,
            _ => PageKind::Base,
        }
    }

    /// The size of the pages the kind asks for: the base page size, or the huge
    /// page size.
    pub(crate) fn page_size(self) -> usize {
        match self {
            PageKind::Base => crate::sys::page_size(),
            PageKind::TransparentHuge | PageKind::HugeTlb => sys_pages::huge_page_size(),
        }
    }
}

impl std::fmt::Display for PageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PageKind::Base => "base",
            PageKind::TransparentHuge => "transparent huge",
            PageKind::HugeTlb => "hugetlbfs",
        })
    }
}
