//! Data segments: the shared memory behind a [`crate::SharedArray`].
//!
//! A segment is a file (a memfd for ordinary arrays) mapped `MAP_SHARED` by the
//! parent and, on first use, by each worker. The file starts with a small header
//! that lets a worker check it mapped what the job names; element 0 starts at
//! `data_off`. The segment never moves and never changes length.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

use super::liveness::Liveness;
use super::mapping::Mapping;
use super::page_policy::{self as pages, Offer, Pages};
use super::zeroing::HeldPages;
use crate::sys::huge_pages as sys_pages;
use crate::sys::page_kind::PageKind;
use crate::sys::{self, MapOptions};

/// "SHMARR01" in little-endian: the first word of a memfd array segment.
pub(crate) const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"SHMARR01");
/// Where element 0 starts in a memfd array segment: after the header, aligned for
/// any element type and for 128-byte cache-line pairs.
pub(crate) const DATA_OFFSET: usize = 128;

/// The header at the start of a memfd array segment.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentHeader {
    /// [`SEGMENT_MAGIC`].
    pub magic: u64,
    /// Layout version of this header (1).
    pub version: u32,
    /// `size_of` of the element type.
    pub elem_size: u32,
    /// Number of elements.
    pub len: u64,
    /// The segment's id in its creating process.
    pub id: u64,
    /// The creating process.
    pub owner_pid: u32,
    /// `align_of` of the element type.
    pub elem_align: u32,
}

/// How every process maps an array segment.
const SEGMENT_MAP: MapOptions = MapOptions {
    writable: true,
    dont_fork: true,
};

static NEXT_ID: StdAtomicU64 = StdAtomicU64::new(1);
static NEXT_TENANT: StdAtomicU64 = StdAtomicU64::new(1);

/// A process-unique tenant number (`Segment::tenant`).
fn new_tenant() -> u64 {
    NEXT_TENANT.fetch_add(1, StdOrdering::Relaxed)
}

/// The memory behind a segment.
#[derive(Debug)]
enum Backing {
    /// A memfd or a named shm object, mapped by us.
    Shared(Mapping),
    /// A file (`.npy`), mapped `MAP_SHARED` by memmap2: read-write, or read-only
    /// for a file opened read-only.
    File(memmap2::MmapRaw),
}

impl Backing {
    fn ptr(&self) -> *mut u8 {
        match self {
            Backing::Shared(m) => m.ptr(),
            Backing::File(m) => m.as_mut_ptr(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Backing::Shared(m) => m.len(),
            Backing::File(m) => m.len(),
        }
    }
}

/// Why a new segment could not be created: the array that asked turns it into the
/// crate's `Error` (`src/array/mod.rs`), so that shared memory stays below the
/// public error type.
#[derive(Debug)]
pub(crate) enum SegmentError {
    /// Huge pages were asked for explicitly, and cannot be had.
    HugePagesUnavailable {
        /// The kind asked for.
        kind: PageKind,
        /// Why it cannot be had, with the setting to change.
        reason: String,
    },
    /// The memory could not be created at all.
    Io(io::Error),
}

/// A segment, owned by the parent.
#[derive(Debug)]
pub(crate) struct Segment {
    id: u64,
    /// The file and its mapping: taken out only in `drop`, which either hands them
    /// to the array cache as a new `Segment` or releases them.
    storage: ManuallyDrop<Storage>,
    data_off: usize,
    data_bytes: usize,
    /// The pages that back it.
    pages: PageKind,
    live: OnceLock<u32>,
    /// For a named segment this process created: the name to unlink on drop.
    unlink: Option<String>,
    /// Which array holds the segment now: a process-unique number given when it is
    /// made and again each time an array takes it over from the array cache. The
    /// `id` names the memory (mappings, shipping, liveness) for as long as it
    /// lives, through every reuse; anything derived from the *contents* (a
    /// worker's decoded task context) must be keyed by the tenant as well.
    tenant: u64,
    /// A memfd segment made by [`Segment::new_memfd`], which the array cache
    /// (`src/shm/recycle.rs`) may keep when it is dropped; false for every other
    /// segment, and for one the cache released.
    recyclable: bool,
    /// The pages its file is known to hold, mapped in the parent's mapping: what
    /// `Segment::zero_data` zeroes (`src/shm/zeroing.rs`).
    held: HeldPages,
}

/// A segment's file and mapping.
#[derive(Debug)]
struct Storage {
    fd: OwnedFd,
    map: Backing,
}

impl Storage {
    fn new(fd: OwnedFd, map: Backing) -> ManuallyDrop<Storage> {
        ManuallyDrop::new(Storage { fd, map })
    }
}

/// What a worker needs to map a segment: sent with the descriptor.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShipInfo {
    /// The segment id.
    pub id: u64,
    /// Its liveness word.
    pub live: u64,
    /// Bytes to map from offset 0.
    pub map_len: u64,
    /// Offset of element 0.
    pub data_off: u64,
    /// Bytes of element data.
    pub data_bytes: u64,
    /// The pages behind it ([`PageKind::code`]): a worker marks a mapping of
    /// transparent huge pages `MADV_HUGEPAGE` too, since it is the worker's faults
    /// that allocate the pages.
    pub page_kind: u64,
}

impl ShipInfo {
    /// Bytes of the wire form: six little-endian words.
    pub(crate) const WIRE_LEN: usize = 48;

    /// The wire form (little-endian words).
    pub(crate) fn to_bytes(self) -> [u8; Self::WIRE_LEN] {
        let mut out = [0u8; Self::WIRE_LEN];
        for (i, w) in [
            self.id,
            self.live,
            self.map_len,
            self.data_off,
            self.data_bytes,
            self.page_kind,
        ]
        .into_iter()
        .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Parses the wire form.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::WIRE_LEN {
            return None;
        }
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        Some(ShipInfo {
            id: w(0),
            live: w(1),
            map_len: w(2),
            data_off: w(3),
            data_bytes: w(4),
            page_kind: w(5),
        })
    }
}

impl Segment {
    /// A memfd segment for `len` elements of the given size and alignment, backed by
    /// the pages `pages` asks for (`src/shm/page_policy.rs` has the policy), holding
    /// `contents`.
    ///
    /// The segment of a dropped array with the same bytes of data, on the kind of
    /// page a new one would get (counting the hugetlbfs pages that kept segments
    /// hold as free, `src/shm/page_policy.rs`), is taken from the array cache
    /// (`src/shm/recycle.rs`) when there is one, with a new tenant, and zeroed if
    /// `contents` asks for zeros (the pages its file holds; none is allocated).
    /// Otherwise the segment is new and reads as zeros: only the page holding the
    /// header is touched here, and every other page is faulted in by whoever first
    /// writes it (for an output array, the worker that computes its chunk). A
    /// creation that fails for want of descriptors, address space or memory is
    /// tried once more after the array cache has released what it holds.
    ///
    /// # Errors
    /// [`SegmentError::HugePagesUnavailable`] when huge pages were asked for
    /// explicitly and cannot be had; [`SegmentError::Io`] when the memory cannot be
    /// created at all.
    /// Under [`Pages::Auto`] a refused huge-page segment falls back to the next
    /// kind.
    pub(crate) fn new_memfd(
        len: usize,
        elem_size: usize,
        elem_align: usize,
        pages: Pages,
        contents: Contents,
    ) -> Result<Self, SegmentError> {
        let data_bytes = len
            .checked_mul(elem_size)
            .filter(|b| *b <= isize::MAX as usize - DATA_OFFSET - sys_pages::huge_page_size())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "array too large"))
            .map_err(SegmentError::Io)?;
        let total = DATA_OFFSET + data_bytes;
        let env_allows = pages != Pages::Auto || pages::env_allows_huge();
        let offer = match pages {
            Pages::Base => Offer::NONE,
            Pages::Auto if !env_allows || data_bytes < pages::HUGE_PAGE_THRESHOLD => Offer::NONE,
            _ => Offer::now(),
        };
        // The memory of a dropped array, of the kind a new one would get now
        // (counting the hugetlbfs pages that dropped arrays hold as free).
        let candidates = offer.candidates(pages, data_bytes, total, env_allows);
        let preferred = candidates[0];
        if let Some(kept) = super::recycle::take(data_bytes, preferred) {
            let kept: Box<dyn std::any::Any> = kept;
            let mut segment = *kept
                .downcast::<Segment>()
                .expect("the array cache holds segments only");
            segment.tenant = new_tenant();
            if contents == Contents::Zeros {
                segment.zero_data();
            }
            return Ok(segment);
        }
        let id = NEXT_ID.fetch_add(1, StdOrdering::Relaxed);
        if let Pages::HugeTlb | Pages::TransparentHuge = pages {
            // An explicit kind is the only candidate.
            if let Some(reason) = offer.refusal(preferred, total) {
                return Err(SegmentError::HugePagesUnavailable {
                    kind: preferred,
                    reason,
                });
            }
        }
        if preferred == PageKind::HugeTlb && offer.hugetlb_available < pages::huge_pages_for(total)
        {
            // Short only because the cache holds pages: it gives some back.
            super::recycle::give_back_hugetlb_pages(pages::huge_pages_for(total));
        }
        let name = CString::new(format!("shmpool-array-{id}")).expect("no NUL in a number");
        // Kept segments hold descriptors, address space and memory: when one of
        // them is what is missing, the cache lets go and the kinds are tried again.
        let created = super::recycle::retry_after_releasing(
            || create_first_of(&name, &candidates, total),
            |(_, e)| Some(e),
        );
        let (kind, fd, map) = match created {
            Ok(created) => created,
            // A huge-page kind refused for want of pages. A shortage of
            // descriptors is not about pages.
            Err((kind, e)) if kind.is_huge() && !sys::is_descriptor_shortage(&e) => {
                return Err(SegmentError::HugePagesUnavailable {
                    kind,
                    reason: e.to_string(),
                });
            }
            Err((_, e)) => return Err(SegmentError::Io(e)),
        };
        let header = SegmentHeader {
            magic: SEGMENT_MAGIC,
            version: 1,
            elem_size: elem_size as u32,
            len: len as u64,
            id,
            owner_pid: sys::getpid() as u32,
            elem_align: elem_align as u32,
        };
        // SAFETY: the mapping is at least DATA_OFFSET bytes, page-aligned and ours
        // alone: no worker has it yet. For hugetlbfs pages, `create` has faulted
        // this page in already, so the write cannot raise SIGBUS.
        unsafe { map.ptr().cast::<SegmentHeader>().write(header) };
        Ok(Segment {
            id,
            storage: Storage::new(fd, Backing::Shared(map)),
            data_off: DATA_OFFSET,
            data_bytes,
            pages: kind,
            live: OnceLock::new(),
            unlink: None,
            tenant: new_tenant(),
            recyclable: true,
            held: HeldPages::default(),
        })
    }

    /// Wraps a named segment whose elements start at `data_off`; `unlink` is the
    /// name to remove on drop, for the segment's creator.
    pub(crate) fn from_named(
        fd: OwnedFd,
        map: Mapping,
        data_off: usize,
        data_bytes: usize,
        unlink: Option<String>,
    ) -> Self {
        assert!(data_off + data_bytes <= map.len());
        Segment {
            id: NEXT_ID.fetch_add(1, StdOrdering::Relaxed),
            storage: Storage::new(fd, Backing::Shared(map)),
            data_off,
            data_bytes,
            pages: PageKind::Base,
            live: OnceLock::new(),
            unlink,
            tenant: new_tenant(),
            recyclable: false,
            held: HeldPages::default(),
        }
    }

    /// Wraps a file mapped `MAP_SHARED` whose elements start at `data_off`. A
    /// file opened read-only is mapped read-only by the workers as well.
    pub(crate) fn from_file(
        fd: OwnedFd,
        map: memmap2::MmapRaw,
        data_off: usize,
        data_bytes: usize,
    ) -> Self {
        assert!(data_off + data_bytes <= map.len());
        Segment {
            id: NEXT_ID.fetch_add(1, StdOrdering::Relaxed),
            storage: Storage::new(fd, Backing::File(map)),
            data_off,
            data_bytes,
            pages: PageKind::Base,
            live: OnceLock::new(),
            unlink: None,
            tenant: new_tenant(),
            recyclable: false,
            held: HeldPages::default(),
        }
    }

    /// Bytes of element data.
    pub(crate) fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    /// The pages that back the segment. Named segments and files report base
    /// pages: shmpool asked for nothing else (a `/dev/shm` mounted `huge=always`
    /// may still give them huge pages).
    pub(crate) fn page_kind(&self) -> PageKind {
        self.pages
    }

    /// For a named segment this process created (and will unlink): the first byte
    /// of its mapping, where its header is. `None` for every other segment,
    /// including named segments opened from another process's name.
    pub(crate) fn owned_named_header(&self) -> Option<*mut u8> {
        self.unlink.as_ref().map(|_| self.storage.map.ptr())
    }

    /// The process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Pointer to element 0.
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: data_off <= map.len() by construction.
        unsafe { self.storage.map.ptr().add(self.data_off) }
    }

    /// The descriptor, for shipping to workers.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.storage.fd.as_fd()
    }

    /// What a worker needs to map this segment, registering a liveness word on first
    /// call.
    pub(crate) fn ship_info(&self) -> io::Result<ShipInfo> {
        let live = match self.live.get() {
            Some(&i) => i,
            None => {
                let table = Liveness::global()?;
                let i = table.register(self.id)?;
                if let Err(i) = self.live.set(i) {
                    table.retire(i);
                }
                *self.live.get().expect("set above")
            }
        };
        Ok(ShipInfo {
            id: self.id,
            live: u64::from(live),
            map_len: self.storage.map.len() as u64,
            data_off: self.data_off as u64,
            data_bytes: self.data_bytes as u64,
            page_kind: self.pages.code(),
        })
    }
}

/// What the elements of a new memfd segment must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contents {
    /// Zeros.
    Zeros,
    /// Anything: the caller overwrites every element before anyone reads one. A
    /// fresh segment reads as zeros; a recycled one holds what its last array
    /// left.
    Unspecified,
}

impl Segment {
    /// Zeroes the elements of a segment taken from the array cache where its file
    /// holds pages, allocating none (`src/shm/zeroing.rs`).
    fn zero_data(&mut self) {
        let Backing::Shared(map) = &self.storage.map else {
            unreachable!("only memfd segments are recycled")
        };
        let data = self.data_off..self.data_off + self.data_bytes;
        // SAFETY: `map` is the parent's writable mapping of the whole file from
        // offset 0, and `data` lies inside it. The segment came from the array
        // cache, so no array refers to it and no worker writes it
        // (`src/shm/recycle.rs`): nobody else accesses the range during the call.
        unsafe {
            self.held
                .zero(self.storage.fd.as_fd(), map.as_non_null(), map.len(), data)
        };
    }

    /// Which array holds the segment now (see the field).
    pub(crate) fn tenant(&self) -> u64 {
        self.tenant
    }
}

impl super::recycle::Kept for Segment {
    fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    fn page_kind(&self) -> PageKind {
        self.pages
    }

    fn hugetlb_pages(&self) -> u64 {
        match self.pages {
            PageKind::HugeTlb => pages::huge_pages_for(self.storage.map.len()),
            _ => 0,
        }
    }

    fn forbid_recycling(&mut self) {
        self.recyclable = false;
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `storage` is taken exactly once, here; `self` is not used after
        // its drop, and no other code takes it.
        let storage = unsafe { ManuallyDrop::take(&mut self.storage) };
        if self.recyclable {
            // The array cache keeps the file, the mapping, the id and the liveness
            // word together; workers keep their mappings of it.
            let kept = Segment {
                id: self.id,
                storage: ManuallyDrop::new(storage),
                data_off: self.data_off,
                data_bytes: self.data_bytes,
                pages: self.pages,
                live: std::mem::take(&mut self.live),
                unlink: None,
                tenant: self.tenant,
                recyclable: true,
                held: std::mem::take(&mut self.held),
            };
            super::recycle::offer(Box::new(kept));
            return;
        }
        if let Some(name) = &self.unlink {
            let _ = sys::shm_unlink(name);
        }
        if let Some(&idx) = self.live.get() {
            if let Ok(table) = Liveness::global() {
                table.retire(idx);
            }
            // Workers holding a mapping notice when they next go idle; wake idle ones
            // now so the memory is freed promptly.
            super::registry::wake_idle_workers();
        }
        drop(storage);
    }
}

/// Creates and maps a memfd of at least `total` bytes on the first of `kinds`
/// that can back it; or the last kind tried, and why it was refused.
fn create_first_of(
    name: &CStr,
    kinds: &[PageKind],
    total: usize,
) -> Result<(PageKind, OwnedFd, Mapping), (PageKind, io::Error)> {
    let mut refused = None;
    for &kind in kinds {
        match create(name, kind, total) {
            Ok((fd, map)) => return Ok((kind, fd, map)),
            Err(e) => {
                tracing::debug!(?kind, total, error = %e, "page kind refused");
                refused = Some((kind, e));
            }
        }
    }
    Err(refused.expect("every request has at least one candidate"))
}

/// Creates and maps a memfd of at least `total` bytes backed by `kind` pages.
///
/// hugetlbfs: the file is whole huge pages long, and the `MAP_SHARED` mapping, made
/// without `MAP_NORESERVE`, reserves all of them for the file now: a short pool
/// fails here with `ENOMEM`, and no later fault, in this process or a worker's
/// mapping of the same file, can find the pool empty. The header's page is faulted
/// in with `MADV_POPULATE_WRITE`, which reports what would otherwise be a `SIGBUS`
/// (a hugetlb cgroup limit, a memory policy with no pages on its nodes) as an
/// error.
///
/// Transparent huge pages: the file is rounded up to whole huge pages too, so
/// that its last huge page lies within the file (`within_size` needs it), and the
/// mapping is marked `MADV_HUGEPAGE` (`advise` needs it). Faults that find no huge
/// page take base pages; nothing can fail later.
fn create(name: &CStr, kind: PageKind, total: usize) -> io::Result<(OwnedFd, Mapping)> {
    let rounded = || {
        total
            .checked_next_multiple_of(sys_pages::huge_page_size())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "array too large"))
    };
    match kind {
        PageKind::Base => {
            let fd = sys::memfd(name, total as u64)?;
            let map = Mapping::new(fd.as_fd(), total, SEGMENT_MAP)?;
            Ok((fd, map))
        }
        PageKind::HugeTlb => {
            let len = rounded()?;
            let fd = sys_pages::memfd_hugetlb(name, len as u64)?;
            let map = Mapping::new(fd.as_fd(), len, SEGMENT_MAP)?;
            // SAFETY: the first page of the writable mapping just made.
            unsafe { sys_pages::populate_write(map.as_non_null(), sys::page_size())? };
            Ok((fd, map))
        }
        PageKind::TransparentHuge => {
            let len = rounded()?;
            let fd = sys::memfd(name, len as u64)?;
            let map = Mapping::new(fd.as_fd(), len, SEGMENT_MAP)?;
            // SAFETY: the whole mapping just made; the advice changes which pages
            // back it, not its contents.
            unsafe { sys_pages::advise_huge(map.as_non_null(), len)? };
            Ok((fd, map))
        }
    }
}

/// A worker's mapping of a segment.
#[derive(Debug)]
pub(crate) struct WorkerMapping {
    info: ShipInfo,
    map: Mapping,
}

impl WorkerMapping {
    /// Maps a shipped segment. Not pre-faulted: a job over a range of a huge zeroed
    /// array touches only that range's pages, as with `np.zeros`, and a worker maps
    /// every array it is sent, most of which it may touch only in part.
    pub(crate) fn map(fd: BorrowedFd<'_>, info: ShipInfo) -> io::Result<Self> {
        let file_len = sys::file_len(fd)?;
        if info.map_len > file_len || info.data_off + info.data_bytes > info.map_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "segment is shorter than its description",
            ));
        }
        // A file opened read-only (`SharedArray::open_npy_read_only`) can only be
        // mapped for reading; such an array is never an output.
        let opts = MapOptions {
            writable: sys::fd_is_writable(fd)?,
            ..SEGMENT_MAP
        };
        let map = Mapping::new(fd, info.map_len as usize, opts)?;
        if PageKind::from_code(info.page_kind) == PageKind::TransparentHuge {
            // SAFETY: the mapping just made, whole. A refusal (a kernel without THP)
            // leaves this worker's faults on base pages: slower, never wrong.
            let _ = unsafe { sys_pages::advise_huge(map.as_non_null(), map.len()) };
        }
        let mapping = WorkerMapping { info, map };
        mapping.check_header()?;
        Ok(mapping)
    }

    /// A memfd array segment starts with its [`SegmentHeader`]: check that it is the
    /// segment the description names (id, version, size). Other segments (`.npy`
    /// files, named segments) start with their own magic and are left alone.
    fn check_header(&self) -> io::Result<()> {
        if (self.info.map_len as usize) < DATA_OFFSET || self.info.data_off != DATA_OFFSET as u64 {
            return Ok(());
        }
        // SAFETY: the mapping is at least DATA_OFFSET bytes (checked above) and
        // page-aligned; the header was written by the parent before the descriptor was
        // sent, and is never written again. A read of plain integers.
        let header = unsafe { self.map.ptr().cast::<SegmentHeader>().read() };
        if header.magic != SEGMENT_MAGIC {
            return Ok(());
        }
        let size_ok = header
            .len
            .checked_mul(u64::from(header.elem_size))
            .is_some_and(|bytes| bytes == self.info.data_bytes);
        if header.version != 1 || header.id != self.info.id || !size_ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "array segment {} does not match its header (id {}, version {}, {} x {} bytes)",
                    self.info.id, header.id, header.version, header.len, header.elem_size
                ),
            ));
        }
        Ok(())
    }

    /// The description it was mapped from.
    pub(crate) fn info(&self) -> ShipInfo {
        self.info
    }

    /// Pointer to element 0.
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: data_off + data_bytes <= map_len, checked in `map`.
        unsafe { self.map.ptr().add(self.info.data_off as usize) }
    }

    /// Bytes of element data.
    pub(crate) fn data_bytes(&self) -> usize {
        self.info.data_bytes as usize
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_worker_checks_an_array_segment_against_its_header() {
        let seg = Segment::new_memfd(1000, 8, 8, Pages::Auto, Contents::Zeros).unwrap();
        let info = ShipInfo {
            id: seg.id(),
            live: 0,
            map_len: (DATA_OFFSET + 8000) as u64,
            data_off: DATA_OFFSET as u64,
            data_bytes: 8000,
            page_kind: 0,
        };
        assert!(WorkerMapping::map(seg.fd(), info).is_ok());
        let wrong_id = ShipInfo {
            id: seg.id() + 1,
            ..info
        };
        let e = WorkerMapping::map(seg.fd(), wrong_id).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let wrong_size = ShipInfo {
            data_bytes: 4000,
            ..info
        };
        assert!(WorkerMapping::map(seg.fd(), wrong_size).is_err());
    }

    #[test]
    fn a_hugetlbfs_segment_the_pool_cannot_cover_fails_at_creation_not_at_a_write() {
        // One page more than a new mapping may reserve: the parent's mmap reserves
        // them all, so it fails there (ENOMEM) rather than at a later fault.
        let available = sys_pages::hugetlb_pool().map_or(0, |p| p.available) as usize;
        let total = (available + 1) * sys_pages::huge_page_size();
        assert!(create(c"shmpool-test", PageKind::HugeTlb, total).is_err());
    }
}

/// The page kind [`Pages::Auto`] gives an array of `data_bytes` created now.
pub(crate) fn auto_page_kind(data_bytes: usize) -> PageKind {
    pages::auto_kind(data_bytes, DATA_OFFSET + data_bytes)
}
