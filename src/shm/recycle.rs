//! The array cache: the memory of dropped arrays, kept for the next array of the
//! same size.
//!
//! A fresh array's memory is faulted in page by page on its first write. With base
//! 4 KiB pages that costs the kernel (and, in a VM, the host) a few microseconds per
//! page, four to five times the cost of the write itself (`docs/BENCHMARKS.md`,
//! first touch). So when an array made by [`SharedArray::zeroed`],
//! [`SharedArray::for_overwrite`] or their siblings is dropped, its memory is kept
//! here, still mapped in the workers that wrote it. The next such array of exactly
//! the same byte length (any element type), on the kind of page it would get new,
//! takes it over, and the workers that write it find their pages mapped already.
//! The hugetlbfs pages that kept segments hold count as free when that kind is
//! chosen: a new array of a kept hugetlbfs segment's size takes it over, and one
//! of another size has the cache give kept hugetlbfs segments back to the system
//! until its pages are free, so kept arrays never
//! push new ones off huge pages.
//! `zeroed` zeroes the pages reused memory holds and allocates none
//! (`src/shm/zeroing.rs`); `for_overwrite` does not zero.
//!
//! The cache is bounded: at most [`MAX_SEGMENTS`] arrays and [`limit`] bytes (an
//! eighth of physical memory or of the process's cgroup memory limit, whichever is
//! lower, at most 4 GiB, by default); the least recently
//! dropped go first. [`set_limit`] or the `SHMPOOL_ARRAY_CACHE` environment
//! variable sets the limit, and `0` turns the cache off. [`trim`] gives everything
//! back. Named segments and `.npy` files are never kept.
//!
//! Kept segments hold what a new array may need: a descriptor each (counted
//! against `RLIMIT_NOFILE`), a mapping (address space, counted against
//! `RLIMIT_AS`, and one of `vm.max_map_count`), and their pages. So when making a
//! new array fails for want of one of them (`EMFILE`, `ENFILE`, `ENOMEM`,
//! `ENOSPC`), the cache releases everything it holds and the creation is tried
//! once more; only a second failure is the caller's error.
//!
//! [`SharedArray::zeroed`]: crate::SharedArray::zeroed
//! [`SharedArray::for_overwrite`]: crate::SharedArray::for_overwrite

// How it works. A dropped segment is kept whole: its file, the parent's mapping, its
// id and its liveness word, which stays alive, so workers keep their mappings. An
// array that takes it over gives it a new tenant number (`Segment::tenant`), which
// is what anything derived from a segment's contents is keyed by. A released
// segment (evicted, trimmed, or over the limit when dropped) is retired as a
// dropped one always was: its liveness word goes to 0 and the workers unmap it.
//
// Only the process that made the cache uses it: a forked child (a worker, a user's
// `fork`) has none of the parent's segment mappings, which are `MADV_DONTFORK`,
// and must not take a segment from the copy of the cache it inherited, nor wait on
// a lock another thread held at the fork.
//
// Safety of reuse: a segment reaches the cache only when its last `Arc` is
// dropped, after every bulk call that used it returned; a bulk call returns only
// once no worker is inside its job (`docs/PROTOCOL.md` §7), so no worker writes a
// segment once it is here. Task contexts, which workers only read, are not kept.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use std::any::Any;

use crate::sys;
use crate::sys::page_kind::PageKind;

/// What the cache holds: an array segment (`src/shm/segment.rs`, which hands its
/// segments here from its `Drop` and takes them back as `Box<dyn Any>`). The cache
/// needs only its size and page kind, and a way to make its next drop final.
pub(crate) trait Kept: Any + Send {
    /// Bytes of element data: what an array must need to take it over.
    fn data_bytes(&self) -> usize;
    /// Its pages: what an array must ask for to take it over.
    fn page_kind(&self) -> PageKind;
    /// hugetlbfs pages it holds (its file's, all reserved for it): 0 for other
    /// kinds of page.
    fn hugetlb_pages(&self) -> u64;
    /// Makes its drop release it, instead of offering it here again.
    fn forbid_recycling(&mut self);
}

/// The most segments the cache holds, whatever their size.
pub const MAX_SEGMENTS: usize = 16;

/// How long [`give_back_hugetlb_pages`] waits for the pages it released to reach
/// the system's pool.
const HUGETLB_RETURN_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The environment variable that sets the byte limit: a number of bytes with an
/// optional `K`, `M` or `G` suffix (powers of 1024), or `0` to turn recycling off.
pub const ENV_VAR: &str = "SHMPOOL_ARRAY_CACHE";

/// The default byte limit: an eighth of the memory this process may use (physical
/// memory, or its cgroups' limit if lower: in a container, kept arrays must not
/// crowd out the next allocation), at most 4 GiB.
fn default_limit() -> u64 {
    let memory = sys::physical_memory().unwrap_or(0);
    let memory = sys::cgroup::memory_limit().map_or(memory, |limit| limit.min(memory));
    (memory / 8).min(4 << 30)
}

/// What the cache holds and has done, from [`stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Segments held now.
    pub segments: usize,
    /// Bytes of element data held now.
    pub bytes: u64,
    /// The byte limit in force.
    pub limit: u64,
    /// Arrays that took over a held segment, since the process started.
    pub reused: u64,
    /// Dropped segments the cache took, since the process started.
    pub kept: u64,
    /// Held segments it released (evicted, trimmed), since the process started.
    pub released: u64,
}

struct Cache {
    /// Most recently dropped first.
    held: VecDeque<Box<dyn Kept>>,
    bytes: u64,
    /// `None` until first read from the environment.
    limit: Option<u64>,
    reused: u64,
    kept: u64,
    released: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    held: VecDeque::new(),
    bytes: 0,
    limit: None,
    reused: 0,
    kept: 0,
    released: 0,
});

/// The process that owns [`CACHE`]: the first to use it. 0 before that.
static OWNER: AtomicU32 = AtomicU32::new(0);

/// Locks the cache, or `None` in a process that does not own it (a forked child).
fn lock() -> Option<std::sync::MutexGuard<'static, Cache>> {
    let me = std::process::id();
    let owner = match OWNER.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => me,
        Err(owner) => owner,
    };
    (owner == me).then(|| CACHE.lock().unwrap_or_else(|e| e.into_inner()))
}

impl Cache {
    fn limit(&mut self) -> u64 {
        *self
            .limit
            .get_or_insert_with(|| match std::env::var(ENV_VAR) {
                Ok(v) => parse_bytes(&v).unwrap_or_else(|| {
                    tracing::warn!(value = %v, "{ENV_VAR} is not a byte count; using the default");
                    default_limit()
                }),
                Err(_) => default_limit(),
            })
    }

    /// Removes the least recently dropped segments until both bounds hold,
    /// returning them (to be dropped outside the lock).
    fn evict_to(&mut self, bytes: u64, segments: usize) -> Vec<Box<dyn Kept>> {
        let mut out = Vec::new();
        while self.bytes > bytes || self.held.len() > segments {
            let Some(segment) = self.held.pop_back() else {
                break;
            };
            self.bytes -= segment.data_bytes() as u64;
            self.released += 1;
            out.push(segment);
        }
        out
    }
}

/// Releases `segments` for good: each is retired as a dropped segment is.
fn release(segments: Vec<Box<dyn Kept>>) {
    for mut segment in segments {
        segment.forbid_recycling();
        drop(segment);
    }
}

/// Offers a dropped segment: the cache keeps it, or releases it (over the limit, or
/// in a process that does not own the cache).
pub(crate) fn offer(segment: Box<dyn Kept>) {
    let bytes = segment.data_bytes() as u64;
    let released = match lock() {
        Some(mut cache) => {
            let limit = cache.limit();
            if bytes <= limit {
                cache.bytes += bytes;
                cache.kept += 1;
                cache.held.push_front(segment);
                cache.evict_to(limit, MAX_SEGMENTS)
            } else {
                vec![segment]
            }
        }
        None => vec![segment],
    };
    release(released);
}

/// A held segment of exactly `data_bytes` bytes of element data on `kind` pages,
/// if there is one. Its contents are whatever its last array left.
pub(crate) fn take(data_bytes: usize, kind: PageKind) -> Option<Box<dyn Kept>> {
    let mut cache = lock()?;
    let at = cache
        .held
        .iter()
        .position(|s| s.data_bytes() == data_bytes && s.page_kind() == kind)?;
    let segment = cache.held.remove(at).expect("the position found");
    cache.bytes -= data_bytes as u64;
    cache.reused += 1;
    Some(segment)
}

/// Runs `make`; when it fails with a shortage (`sys::is_resource_shortage` of the
/// error `io_error` finds in it) and the cache holds segments, releases them all and
/// runs `make` once more.
pub(crate) fn retry_after_releasing<T, E>(
    mut make: impl FnMut() -> Result<T, E>,
    io_error: impl Fn(&E) -> Option<&std::io::Error>,
) -> Result<T, E> {
    match make() {
        Err(e) if io_error(&e).is_some_and(sys::is_resource_shortage) => {
            let released = lock().map(|mut cache| cache.evict_to(0, 0));
            match released {
                Some(released) if !released.is_empty() => {
                    tracing::debug!(
                        segments = released.len(),
                        error = ?io_error(&e),
                        "releasing the array cache to make a new array"
                    );
                    release(released);
                    make()
                }
                _ => Err(e),
            }
        }
        other => other,
    }
}

/// hugetlbfs pages the held segments hold: pages a new hugetlbfs array can have,
/// by taking over a held segment of its size, or from the system's pool once
/// [`give_back_hugetlb_pages`] has released others.
pub(crate) fn hugetlb_pages_held() -> u64 {
    lock().map_or(0, |cache| {
        cache.held.iter().map(|s| s.hugetlb_pages()).sum()
    })
}

/// Makes room in the system's hugetlbfs pool for a segment of `needed` pages:
/// when fewer are free, releases held hugetlbfs segments, the least recently
/// dropped first, until enough pages would be free, and waits (at most
/// [`HUGETLB_RETURN_WAIT`]) for them to come back. A released segment's pages
/// return when its last mapping goes: this process's at once, a worker's when
/// it sees the segment retired (woken now if idle, else between two tasks).
/// Returns whether `needed` pages are free.
pub(crate) fn give_back_hugetlb_pages(needed: u64) -> bool {
    let free = || sys::huge_pages::hugetlb_pool().map_or(0, |p| p.available);
    let short = needed.saturating_sub(free());
    if short == 0 {
        return true;
    }
    let released = {
        let Some(mut cache) = lock() else {
            return false;
        };
        let mut released = Vec::new();
        let mut pages = 0;
        while pages < short {
            let Some(at) = cache.held.iter().rposition(|s| s.hugetlb_pages() > 0) else {
                break;
            };
            let segment = cache.held.remove(at).expect("the position found");
            cache.bytes -= segment.data_bytes() as u64;
            cache.released += 1;
            pages += segment.hugetlb_pages();
            released.push(segment);
        }
        released
    };
    if released.is_empty() {
        return false;
    }
    tracing::debug!(
        segments = released.len(),
        needed,
        "releasing cached hugetlbfs segments for a new one"
    );
    release(released);
    let deadline = std::time::Instant::now() + HUGETLB_RETURN_WAIT;
    loop {
        if free() >= needed {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The byte limit of the array cache: the most element data that dropped arrays
/// may keep for reuse. By default an eighth of physical memory or of the cgroup
/// memory limit, whichever is lower, at most 4 GiB; or what `SHMPOOL_ARRAY_CACHE`
/// says.
pub fn limit() -> u64 {
    lock().map_or(0, |mut c| c.limit())
}

/// Sets the byte limit of the array cache, releasing what no longer fits; `0`
/// turns recycling off and releases everything.
///
/// # Examples
///
/// ```
/// shmpool::array_cache::set_limit(256 << 20);
/// assert_eq!(shmpool::array_cache::limit(), 256 << 20);
/// ```
pub fn set_limit(bytes: u64) {
    let Some(mut cache) = lock() else { return };
    cache.limit = Some(bytes);
    let evicted = cache.evict_to(bytes, MAX_SEGMENTS);
    drop(cache);
    release(evicted);
}

/// Releases every segment the array cache holds: their memory goes back to the
/// system once the workers that mapped them notice (when they next go idle, or
/// between tasks).
///
/// # Examples
///
/// ```
/// drop(shmpool::SharedArray::<f64>::zeroed(1 << 16)?);
/// shmpool::array_cache::trim();
/// assert_eq!(shmpool::array_cache::stats().segments, 0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn trim() {
    let Some(mut cache) = lock() else { return };
    let evicted = cache.evict_to(0, 0);
    drop(cache);
    release(evicted);
}

/// What the array cache holds now and has done.
pub fn stats() -> CacheStats {
    let Some(mut cache) = lock() else {
        return CacheStats::default();
    };
    CacheStats {
        segments: cache.held.len(),
        bytes: cache.bytes,
        limit: cache.limit(),
        reused: cache.reused,
        kept: cache.kept,
        released: cache.released,
    }
}

/// Parses `1234`, `64K`, `512M`, `2G` (powers of 1024; case and a trailing `B`
/// ignored).
fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_suffix('B').unwrap_or(&s);
    let (digits, shift) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 10),
        'M' => (&s[..s.len() - 1], 20),
        'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("0"), Some(0));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("64k"), Some(64 << 10));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes(" 2GB "), Some(2 << 30));
        assert_eq!(parse_bytes("two"), None);
        assert_eq!(parse_bytes("G"), None);
        assert_eq!(parse_bytes("99999999999G"), None);
    }
}
