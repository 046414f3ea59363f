//! Data segments: the shared memory behind a [`crate::SharedArray`].
//!
//! A segment is a file (a memfd for ordinary arrays) mapped `MAP_SHARED` by the
//! parent and, on first use, by each worker. The file starts with a small header
//! that lets a worker check it mapped what the job names; element 0 starts at
//! `data_off`. The segment never moves and never changes length.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

use super::liveness::Liveness;
use super::mapping::Mapping;
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

static NEXT_ID: StdAtomicU64 = StdAtomicU64::new(1);

/// The memory behind a segment.
#[derive(Debug)]
enum Backing {
    /// A memfd or a named shm object, mapped by us.
    Shared(Mapping),
    /// A file (`.npy`), mapped `MAP_SHARED` by memmap2.
    File(memmap2::MmapMut),
}

impl Backing {
    fn ptr(&self) -> *mut u8 {
        match self {
            Backing::Shared(m) => m.ptr(),
            Backing::File(m) => m.as_ptr().cast_mut(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Backing::Shared(m) => m.len(),
            Backing::File(m) => m.len(),
        }
    }
}

/// A segment, owned by the parent.
#[derive(Debug)]
pub(crate) struct Segment {
    id: u64,
    fd: OwnedFd,
    map: Backing,
    data_off: usize,
    data_bytes: usize,
    live: OnceLock<u32>,
    /// For a named segment this process created: the name to unlink on drop.
    unlink: Option<String>,
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
}

impl ShipInfo {
    /// The wire form (little-endian words).
    pub(crate) fn to_bytes(self) -> [u8; 40] {
        let mut out = [0u8; 40];
        for (i, w) in [
            self.id,
            self.live,
            self.map_len,
            self.data_off,
            self.data_bytes,
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
        if b.len() != 40 {
            return None;
        }
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        Some(ShipInfo {
            id: w(0),
            live: w(1),
            map_len: w(2),
            data_off: w(3),
            data_bytes: w(4),
        })
    }
}

impl Segment {
    /// A new zero-filled memfd segment for `len` elements of the given size/alignment.
    pub(crate) fn new_memfd(len: usize, elem_size: usize, elem_align: usize) -> io::Result<Self> {
        let data_bytes = len
            .checked_mul(elem_size)
            .filter(|b| *b <= isize::MAX as usize - DATA_OFFSET)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "array too large"))?;
        let id = NEXT_ID.fetch_add(1, StdOrdering::Relaxed);
        let total = DATA_OFFSET + data_bytes;
        let fd = sys::memfd(c"shmpool-array", total as u64)?;
        let map = Mapping::new(
            fd.as_fd(),
            total,
            MapOptions {
                writable: true,
                dont_fork: true,
            },
        )?;
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
        // alone: no worker has it yet.
        unsafe { map.ptr().cast::<SegmentHeader>().write(header) };
        Ok(Segment {
            id,
            fd,
            map: Backing::Shared(map),
            data_off: DATA_OFFSET,
            data_bytes,
            live: OnceLock::new(),
            unlink: None,
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
            fd,
            map: Backing::Shared(map),
            data_off,
            data_bytes,
            live: OnceLock::new(),
            unlink,
        }
    }

    /// Wraps a file mapped `MAP_SHARED` whose elements start at `data_off`.
    pub(crate) fn from_file(
        fd: OwnedFd,
        map: memmap2::MmapMut,
        data_off: usize,
        data_bytes: usize,
    ) -> Self {
        assert!(data_off + data_bytes <= map.len());
        Segment {
            id: NEXT_ID.fetch_add(1, StdOrdering::Relaxed),
            fd,
            map: Backing::File(map),
            data_off,
            data_bytes,
            live: OnceLock::new(),
            unlink: None,
        }
    }

    /// Bytes of element data.
    pub(crate) fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    /// For a named segment this process created (and will unlink): the first byte
    /// of its mapping, where its header is. `None` for every other segment,
    /// including named segments opened from another process's name.
    pub(crate) fn owned_named_header(&self) -> Option<*mut u8> {
        self.unlink.as_ref().map(|_| self.map.ptr())
    }

    /// The process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Pointer to element 0.
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: data_off <= map.len() by construction.
        unsafe { self.map.ptr().add(self.data_off) }
    }

    /// The descriptor, for shipping to workers.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
            map_len: self.map.len() as u64,
            data_off: self.data_off as u64,
            data_bytes: self.data_bytes as u64,
        })
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
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
        let map = Mapping::new(
            fd,
            info.map_len as usize,
            MapOptions {
                writable: true,
                dont_fork: true,
            },
        )?;
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
        let seg = Segment::new_memfd(1000, 8, 8).unwrap();
        let info = ShipInfo {
            id: seg.id(),
            live: 0,
            map_len: (DATA_OFFSET + 8000) as u64,
            data_off: DATA_OFFSET as u64,
            data_bytes: 8000,
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
}
