//! Which pages back an array: the policy for huge pages.
//!
//! A large array (at least [`HUGE_PAGE_THRESHOLD`] bytes of data) asked for with
//! [`Pages::Auto`], the default, gets, in this order of preference:
//!
//! 1. hugetlbfs pages, when the reserved pool has enough free pages for the whole
//!    segment (rounded up to whole huge pages), counting those that dropped arrays
//!    hold in the array cache: a held segment of the same size is taken over, and
//!    others are given back to make room (`src/shm/recycle.rs`). The mapping reserves
//!    the pages when it is made, so a shortage found then falls through to the
//!    next choice;
//! 2. transparent huge pages, when shmem THP is `advise`, `within_size`, `always`
//!    or `force`: the mapping (the parent's and every worker's) is marked
//!    `MADV_HUGEPAGE`, and the kernel uses a small page wherever it finds no huge
//!    one;
//! 3. base pages (4 KiB on x86-64).
//!
//! `SHMPOOL_HUGE_PAGES=0` (or `off`, `never`, `false`, `no`) in the environment
//! makes `Auto` mean base pages. An explicit [`Pages::HugeTlb`] or
//! [`Pages::TransparentHuge`] is honoured whatever the size and the variable, or
//! refused with [`crate::Error::HugePagesUnavailable`].
//!
//! Why 8 MiB: a huge-page segment is rounded up to whole 2 MiB pages (its data
//! plus a 128-byte header), so below 8 MiB the rounding could waste more than a
//! quarter of a scarce reserved pool, while the page faults huge pages save on such
//! an array cost under a millisecond (`docs/BENCHMARKS.md`).

use crate::sys::huge_pages::{self as sys_pages, ShmemThp};
use crate::sys::page_kind::PageKind;

/// Arrays with at least this many bytes of data get huge pages under
/// [`Pages::Auto`], where the system offers them.
pub const HUGE_PAGE_THRESHOLD: usize = 8 << 20;

/// The environment variable that turns huge pages off for [`Pages::Auto`].
pub(crate) const ENV_VAR: &str = "SHMPOOL_HUGE_PAGES";

/// Which pages to ask for when creating an array
/// ([`crate::SharedArray::zeroed_with_pages`]).
///
/// # Examples
///
/// ```
/// use shmpool::{PageKind, Pages, SharedArray};
///
/// let xs = SharedArray::<f64>::zeroed_with_pages(1 << 21, Pages::Base)?;
/// assert_eq!(xs.page_kind(), PageKind::Base);
/// match SharedArray::<f64>::zeroed_with_pages(1 << 21, Pages::HugeTlb) {
///     Ok(ys) => assert_eq!(ys.page_kind(), PageKind::HugeTlb),
///     // No hugetlbfs pages reserved on this machine: a typed error, never a signal.
///     Err(shmpool::Error::HugePagesUnavailable { kind, .. }) => {
///         assert_eq!(kind, PageKind::HugeTlb)
///     }
///     Err(e) => return Err(e),
/// }
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Pages {
    /// Huge pages for arrays of at least [`HUGE_PAGE_THRESHOLD`] bytes where the
    /// system offers them (hugetlbfs first, then transparent huge pages), else base
    /// pages; base pages when `SHMPOOL_HUGE_PAGES=0`. The default.
    #[default]
    Auto,
    /// Base pages, whatever the size.
    Base,
    /// Transparent huge pages, whatever the size; refused when shmem THP is
    /// `never` or `deny`.
    TransparentHuge,
    /// hugetlbfs pages, whatever the size; refused when the reserved pool has too
    /// few free pages.
    HugeTlb,
}

/// Whether the environment leaves huge pages on for [`Pages::Auto`].
pub(crate) fn env_allows_huge() -> bool {
    env_value_allows_huge(std::env::var(ENV_VAR).ok().as_deref())
}

/// Whether a value of `SHMPOOL_HUGE_PAGES` leaves huge pages on.
pub(crate) fn env_value_allows_huge(value: Option<&str>) -> bool {
    !matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "off" | "never" | "false" | "no")
    )
}

/// What the system offers now, read from `/proc` and `/sys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offer {
    /// hugetlbfs pages a new mapping may reserve.
    pub hugetlb_available: u64,
    /// hugetlbfs pages held by segments in the array cache, which it gives to a
    /// new hugetlbfs array (`recycle::give_back_hugetlb_pages`).
    pub hugetlb_cached: u64,
    /// The shmem THP mode, `None` without THP.
    pub thp: Option<ShmemThp>,
}

impl Offer {
    /// An offer of nothing but base pages, for requests that need not look.
    pub(crate) const NONE: Offer = Offer {
        hugetlb_available: 0,
        hugetlb_cached: 0,
        thp: None,
    };

    /// Reads the system's settings, and what the array cache holds.
    pub(crate) fn now() -> Self {
        Offer {
            hugetlb_available: sys_pages::hugetlb_pool().map_or(0, |p| p.available),
            hugetlb_cached: super::recycle::hugetlb_pages_held(),
            thp: sys_pages::shmem_thp(),
        }
    }

    /// Why `kind` cannot back a segment of `total` bytes, or `None` when it can
    /// (as far as the settings tell: a reservation can still lose a race).
    pub(crate) fn refusal(&self, kind: PageKind, total: usize) -> Option<String> {
        match kind {
            PageKind::Base => None,
            PageKind::HugeTlb => {
                let needed = huge_pages_for(total);
                let free = self.hugetlb_available + self.hugetlb_cached;
                (free < needed).then(|| {
                    let cached = match self.hugetlb_cached {
                        0 => String::new(),
                        n => format!(", {n} of them held by the array cache"),
                    };
                    format!(
                        "{needed} hugetlbfs pages of {} KiB are needed and {free} are free{cached} \
                         (reserve more with `sysctl vm.nr_hugepages`)",
                        sys_pages::huge_page_size() / 1024,
                    )
                })
            }
            PageKind::TransparentHuge => match self.thp {
                Some(mode) if mode.allows_advised() => None,
                Some(mode) => Some(format!(
                    "transparent huge pages for shared memory are `{}` \
                     (/sys/kernel/mm/transparent_hugepage/shmem_enabled)",
                    mode.name()
                )),
                None => Some("this kernel has no transparent huge pages".into()),
            },
        }
    }

    /// The kinds to try for a segment of `total` bytes holding `data_bytes` of
    /// elements, best first, ending with base pages for [`Pages::Auto`] and
    /// [`Pages::Base`], and with the one kind asked for otherwise.
    pub(crate) fn candidates(
        &self,
        request: Pages,
        data_bytes: usize,
        total: usize,
        env_allows: bool,
    ) -> Vec<PageKind> {
        match request {
            Pages::Base => vec![PageKind::Base],
            Pages::HugeTlb => vec![PageKind::HugeTlb],
            Pages::TransparentHuge => vec![PageKind::TransparentHuge],
            Pages::Auto => {
                let mut kinds = Vec::with_capacity(3);
                if env_allows && data_bytes >= HUGE_PAGE_THRESHOLD {
                    for kind in [PageKind::HugeTlb, PageKind::TransparentHuge] {
                        if self.refusal(kind, total).is_none() {
                            kinds.push(kind);
                        }
                    }
                }
                kinds.push(PageKind::Base);
                kinds
            }
        }
    }
}

/// Huge pages needed for `bytes`.
pub(crate) fn huge_pages_for(bytes: usize) -> u64 {
    bytes.div_ceil(sys_pages::huge_page_size()) as u64
}

/// The page kind [`Pages::Auto`] gives an array of `data_bytes` data in a
/// segment of `total` bytes created now.
pub(crate) fn auto_kind(data_bytes: usize, total: usize) -> PageKind {
    Offer::now().candidates(Pages::Auto, data_bytes, total, env_allows_huge())[0]
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const BIG: usize = HUGE_PAGE_THRESHOLD;

    fn offer(hugetlb_available: u64, thp: ShmemThp) -> Offer {
        Offer {
            hugetlb_available,
            hugetlb_cached: 0,
            thp: Some(thp),
        }
    }

    #[test]
    fn auto_prefers_hugetlb_then_transparent_then_base() {
        let total = BIG + 128; // 5 huge pages of 2 MiB
        let both = offer(5, ShmemThp::Advise);
        assert_eq!(
            both.candidates(Pages::Auto, BIG, total, true),
            [PageKind::HugeTlb, PageKind::TransparentHuge, PageKind::Base]
        );
        let short = offer(4, ShmemThp::WithinSize);
        assert_eq!(
            short.candidates(Pages::Auto, BIG, total, true),
            [PageKind::TransparentHuge, PageKind::Base]
        );
        // Pages held in the array cache count: it gives them to a new array.
        let cached = Offer {
            hugetlb_cached: 3,
            ..offer(2, ShmemThp::Never)
        };
        assert_eq!(
            cached.candidates(Pages::Auto, BIG, total, true),
            [PageKind::HugeTlb, PageKind::Base]
        );
        let short = Offer {
            hugetlb_cached: 2,
            ..cached
        };
        assert!(
            short
                .refusal(PageKind::HugeTlb, total)
                .unwrap()
                .contains("and 4 are free, 2 of them held by the array cache")
        );
        let none = offer(0, ShmemThp::Never);
        assert_eq!(
            none.candidates(Pages::Auto, BIG, total, true),
            [PageKind::Base]
        );
        assert!(
            none.refusal(PageKind::HugeTlb, total)
                .unwrap()
                .contains("5 hugetlbfs")
        );
        assert!(
            none.refusal(PageKind::TransparentHuge, total)
                .unwrap()
                .contains("`never`")
        );
    }

    #[test]
    fn small_arrays_and_the_opt_out_get_base_pages() {
        let both = offer(100, ShmemThp::Always);
        assert_eq!(
            both.candidates(Pages::Auto, BIG - 1, BIG + 127, true),
            [PageKind::Base]
        );
        assert_eq!(
            both.candidates(Pages::Auto, BIG, BIG + 128, false),
            [PageKind::Base]
        );
        // An explicit request ignores size and environment.
        assert_eq!(
            both.candidates(Pages::HugeTlb, 8, 136, false),
            [PageKind::HugeTlb]
        );
        for off in ["0", "off", " OFF ", "never", "false", "no"] {
            assert!(!env_value_allows_huge(Some(off)), "{off}");
        }
        for on in [None, Some("1"), Some("auto"), Some("")] {
            assert!(env_value_allows_huge(on), "{on:?}");
        }
    }

    #[test]
    fn page_kinds_cross_the_wire() {
        for kind in [PageKind::Base, PageKind::TransparentHuge, PageKind::HugeTlb] {
            assert_eq!(PageKind::from_code(kind.code()), kind);
        }
        assert_eq!(PageKind::Base.page_size(), crate::sys::page_size());
        assert!(PageKind::HugeTlb.page_size() > PageKind::Base.page_size());
    }
}
