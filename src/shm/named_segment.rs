//! Named shared-memory segments: `shm_open` objects that another process, such as
//! Python's `multiprocessing.shared_memory.SharedMemory(name)`, can attach to.
//!
//! Unlike memfds, a named object outlives its creator unless someone unlinks it. The
//! owner unlinks on drop; when an owner dies without dropping (SIGKILL, abort), its
//! segment is reclaimed later: the header records the owner's pid *and start time*
//! (so a recycled pid is not mistaken for the owner), and creating a segment of the
//! same name, or calling [`reclaim_stale`], unlinks segments whose owner is gone.
//!
//! Layout, readable from Python with `struct.unpack_from("<8sIIIIQ16sIIQ8Q", buf)`:
//!
//! ```text
//!   0  magic        8 bytes  b"SHMPNAMD"
//!   8  version      u32      1
//!  12  data_offset  u32      128: where element 0 starts
//!  16  elem_size    u32
//!  20  owner_pid    u32
//!  24  len          u64      elements
//!  32  descr        16 bytes numpy dtype string, NUL-padded ("<f8", "|V24" for structs)
//!  48  ndim         u32
//!  52  reserved     u32
//!  56  owner_start  u64      the owner's start time (/proc/PID/stat field 22)
//!  64  shape        8 × u64  (ndim of them used, the rest 0)
//! 128  data
//! ```
//!
//! Every field is written once, at creation, except `ndim` and `shape`: the owner
//! rewrites them when it reshapes its array ([`write_shape`]), so that the header
//! always holds the owner's shape. No other process writes a header.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use super::mapping::Mapping;
use super::registry;
use crate::sys::{self, MapOptions, ShmMode};

/// Where `shm_open` keeps named segments on Linux: a tmpfs.
pub(crate) const SHM_DIR: &str = "/dev/shm";
/// The first bytes of a named segment.
pub(crate) const NAMED_MAGIC: [u8; 8] = *b"SHMPNAMD";
/// Where element 0 starts.
pub(crate) const NAMED_DATA_OFFSET: usize = 128;
/// The most dimensions a named segment records.
pub(crate) const MAX_DIMS: usize = 8;

/// How long a creation that found no room waits for workers to let go of named
/// arrays this process dropped (`registry::settle`) before it tries once more. The
/// wait ends as soon as they have; the limit only bounds it for a worker that stays
/// busy in one long record, or a machine so loaded that a woken worker waits its
/// turn. 100 ms was too short for the second: on a 2-core machine at load 8, three
/// woken workers took longer, and a `/dev/shm` with room for the array refused it.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The decoded header of a named segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedHeader {
    pub elem_size: u32,
    pub owner_pid: u32,
    pub owner_start: u64,
    pub len: u64,
    pub descr: String,
    pub shape: Vec<usize>,
}

impl NamedHeader {
    fn encode(&self) -> [u8; NAMED_DATA_OFFSET] {
        let mut b = [0u8; NAMED_DATA_OFFSET];
        b[0..8].copy_from_slice(&NAMED_MAGIC);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&(NAMED_DATA_OFFSET as u32).to_le_bytes());
        b[16..20].copy_from_slice(&self.elem_size.to_le_bytes());
        b[20..24].copy_from_slice(&self.owner_pid.to_le_bytes());
        b[24..32].copy_from_slice(&self.len.to_le_bytes());
        let d = self.descr.as_bytes();
        b[32..32 + d.len().min(16)].copy_from_slice(&d[..d.len().min(16)]);
        b[56..64].copy_from_slice(&self.owner_start.to_le_bytes());
        encode_shape(&self.shape, &mut b);
        b
    }

    fn decode(b: &[u8]) -> Option<NamedHeader> {
        if b.len() < NAMED_DATA_OFFSET || b[0..8] != NAMED_MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if u32_at(8) != 1 || u32_at(12) as usize != NAMED_DATA_OFFSET {
            return None;
        }
        let ndim = (u32_at(48) as usize).min(MAX_DIMS);
        let descr_end = b[32..48]
            .iter()
            .position(|&c| c == 0)
            .map_or(48, |p| 32 + p);
        Some(NamedHeader {
            elem_size: u32_at(16),
            owner_pid: u32_at(20),
            len: u64_at(24),
            descr: String::from_utf8_lossy(&b[32..descr_end]).into_owned(),
            owner_start: u64_at(56),
            shape: (0..ndim).map(|i| u64_at(64 + 8 * i) as usize).collect(),
        })
    }

    /// Whether the process that created the segment is still running.
    pub(crate) fn owner_alive(&self) -> bool {
        sys::process_start_time(self.owner_pid as i32) == Some(self.owner_start)
    }
}

/// Writes `shape` into a header's `ndim` and `shape` fields (bytes 48..52 and
/// 64..128), zeroing the unused dimensions. At most [`MAX_DIMS`] are recorded:
/// callers check the shape first.
fn encode_shape(shape: &[usize], header: &mut [u8; NAMED_DATA_OFFSET]) {
    debug_assert!(shape.len() <= MAX_DIMS);
    let ndim = shape.len().min(MAX_DIMS);
    header[48..52].copy_from_slice(&(ndim as u32).to_le_bytes());
    for i in 0..MAX_DIMS {
        let dim = shape.get(i).map_or(0, |&d| d as u64);
        header[64 + 8 * i..72 + 8 * i].copy_from_slice(&dim.to_le_bytes());
    }
}

/// Rewrites the shape recorded in the header of a named segment, leaving every
/// other field as it is. `shape` has at most [`MAX_DIMS`] dimensions.
///
/// Only the segment's owner (the process that created it, and will unlink it)
/// calls this: a header has one writer, so it always holds the owner's shape.
///
/// # Safety
/// `base` is the first byte of a mapping of a named segment created by
/// [`create`], at least [`NAMED_DATA_OFFSET`] bytes long and still mapped.
/// Other processes may read the header meanwhile: the write is made through raw
/// pointers, never through a reference, so nothing in this process is
/// invalidated. A reader that catches the write half-done may see a torn shape,
/// most often one that does not hold `len` elements (which
/// `SharedArray::open_named` replaces by `[len]`), but not always: like the data,
/// the shape is to be rewritten while nobody reads it, which is the user's
/// contract with the other processes.
pub(crate) unsafe fn write_shape(base: *mut u8, shape: &[usize]) {
    let mut header = [0u8; NAMED_DATA_OFFSET];
    encode_shape(shape, &mut header);
    // SAFETY: `base..base+128` is mapped (the caller's guarantee); the two ranges
    // written, 48..52 and 64..128, lie inside it, and no reference to them exists
    // in this process (headers are only ever copied in and out).
    unsafe {
        base.add(48)
            .copy_from_nonoverlapping(header[48..52].as_ptr(), 4);
        base.add(64)
            .copy_from_nonoverlapping(header[64..].as_ptr(), NAMED_DATA_OFFSET - 64);
    }
}

/// Checks a name for `shm_open`: one path component, no slash, not empty.
pub(crate) fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty()
        || name.len() > 200
        || name.contains('/')
        || name.contains('\0')
        || name == "."
        || name == ".."
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid segment name (1 to 200 characters, no '/')"),
        ));
    }
    Ok(())
}

/// Maps `len` bytes of `fd`; when address space or mappings ran out, once more
/// after the array cache let go of what it holds (`src/shm/recycle.rs`).
fn map(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
    let opts = MapOptions {
        writable: true,
        dont_fork: true,
    };
    super::recycle::retry_after_releasing(|| Mapping::new(fd.as_fd(), len, opts), |e| Some(e))
}

/// `shm_open`; when descriptors ran out, once more after the array cache let go
/// of what it holds.
fn shm_open(name: &str, mode: ShmMode) -> io::Result<OwnedFd> {
    super::recycle::retry_after_releasing(|| sys::shm_open(name, mode), |e| Some(e))
}

/// Why [`create`] failed.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// The name is taken by a segment whose owner is alive.
    Exists,
    /// The filesystem could not reserve the segment's `bytes` (`fallocate` said
    /// `ENOSPC`, `EFBIG` or `ENOMEM`); `free` bytes are free there, if known.
    /// The half-made segment was unlinked.
    NoSpace { bytes: u64, free: Option<u64> },
    /// Any other failure.
    Io(io::Error),
}

impl From<io::Error> for CreateError {
    fn from(e: io::Error) -> Self {
        CreateError::Io(e)
    }
}

/// Creates a named segment for `len` elements, and reserves its memory: the
/// whole segment is allocated now, so that a filesystem too small for it fails
/// here, with [`CreateError::NoSpace`], and not with `SIGBUS` at the first write
/// to a page it has no room for. If the name is taken by a segment whose owner is
/// dead, that segment is reclaimed first. A reservation that finds no room waits
/// (up to [`SETTLE_LIMIT`]) for this process's pools' workers to let go of named
/// arrays dropped before, whose mappings may still hold the space, and tries once
/// more.
pub(crate) fn create(
    name: &str,
    len: usize,
    elem_size: usize,
    descr: &str,
    shape: &[usize],
) -> Result<(OwnedFd, Mapping), CreateError> {
    check_name(name)?;
    let bytes = len
        .checked_mul(elem_size)
        .and_then(|b| b.checked_add(NAMED_DATA_OFFSET))
        .filter(|b| *b <= isize::MAX as usize)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "array too large"))?;
    let fd = match shm_open(name, ShmMode::CreateNew) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && reclaim_if_stale(name) => {
            shm_open(name, ShmMode::CreateNew)?
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(CreateError::Exists),
        Err(e) => return Err(e.into()),
    };
    let built = (|| {
        sys::set_len(fd.as_fd(), bytes as u64)?;
        let no_space = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::StorageFull
                    | io::ErrorKind::FileTooLarge
                    | io::ErrorKind::OutOfMemory
            )
        };
        // Workers may still map named arrays this process dropped a moment ago,
        // which holds their space: once they have let go, try once more. Always
        // once more: they may have let go between the failure and the settle, which
        // then finds nobody behind.
        let reserved = sys::reserve(fd.as_fd(), bytes as u64).or_else(|e| {
            if no_space(&e) {
                registry::settle(SETTLE_LIMIT);
                sys::reserve(fd.as_fd(), bytes as u64)
            } else {
                Err(e)
            }
        });
        if let Err(e) = reserved {
            return Err(match e.kind() {
                io::ErrorKind::StorageFull
                | io::ErrorKind::FileTooLarge
                | io::ErrorKind::OutOfMemory => CreateError::NoSpace {
                    bytes: bytes as u64,
                    free: sys::free_space(fd.as_fd()).ok(),
                },
                _ => CreateError::Io(e),
            });
        }
        let mapping = map(&fd, bytes)?;
        let me = sys::getpid();
        let header = NamedHeader {
            elem_size: elem_size as u32,
            owner_pid: me as u32,
            owner_start: sys::process_start_time(me).unwrap_or(0),
            len: len as u64,
            descr: descr.to_string(),
            shape: shape.to_vec(),
        };
        // SAFETY: the mapping is at least 128 bytes, and ours alone until the header
        // is written: another process that opens the name finds no magic before.
        unsafe {
            mapping
                .ptr()
                .copy_from_nonoverlapping(header.encode().as_ptr(), NAMED_DATA_OFFSET)
        };
        Ok(mapping)
    })();
    match built {
        Ok(mapping) => Ok((fd, mapping)),
        Err(e) => {
            let _ = sys::shm_unlink(name);
            Err(e)
        }
    }
}

/// Opens an existing named segment and reads its header.
pub(crate) fn open(name: &str) -> io::Result<(OwnedFd, Mapping, NamedHeader)> {
    check_name(name)?;
    let fd = shm_open(name, ShmMode::Open)?;
    let file_len = sys::file_len(fd.as_fd())? as usize;
    let not_ours = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name:?} is not a shmpool segment (no SHMPNAMD header)"),
        )
    };
    if file_len < NAMED_DATA_OFFSET {
        return Err(not_ours());
    }
    let mapping = map(&fd, file_len)?;
    let mut head = [0u8; NAMED_DATA_OFFSET];
    // SAFETY: the mapping is at least 128 bytes (checked). The owner may rewrite
    // the shape fields at any time (`write_shape`), so the header is copied out
    // through a raw pointer, never borrowed. Whatever shape is read, the array's
    // length comes from `len`, checked against the file below, and the caller
    // uses the shape only if it holds `len` elements.
    unsafe {
        head.as_mut_ptr()
            .copy_from_nonoverlapping(mapping.ptr(), NAMED_DATA_OFFSET)
    };
    let header = NamedHeader::decode(&head).ok_or_else(not_ours)?;
    let needed = (header.len as usize)
        .checked_mul(header.elem_size as usize)
        .and_then(|b| b.checked_add(NAMED_DATA_OFFSET));
    if needed.is_none_or(|n| n > file_len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("segment {name:?} is shorter than its header says"),
        ));
    }
    Ok((fd, mapping, header))
}

/// Unlinks `name` if it is a shmpool segment whose owner is dead. Returns whether it
/// was reclaimed.
fn reclaim_if_stale(name: &str) -> bool {
    let Ok(mut file) = std::fs::File::open(format!("{SHM_DIR}/{name}")) else {
        return false;
    };
    let mut head = [0u8; NAMED_DATA_OFFSET];
    if std::io::Read::read_exact(&mut file, &mut head).is_err() {
        return false;
    }
    match NamedHeader::decode(&head) {
        Some(h) if !h.owner_alive() => sys::shm_unlink(name).is_ok(),
        _ => false,
    }
}

/// Unlinks every shmpool segment in `/dev/shm` whose owner process is gone (killed
/// before it could unlink its segments). Returns the names reclaimed.
pub fn reclaim_stale() -> io::Result<Vec<String>> {
    let mut reclaimed = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if check_name(&name).is_ok() && reclaim_if_stale(&name) {
            reclaimed.push(name);
        }
    }
    Ok(reclaimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = NamedHeader {
            elem_size: 8,
            owner_pid: 42,
            owner_start: 123_456,
            len: 12,
            descr: "<f8".into(),
            shape: vec![3, 4],
        };
        assert_eq!(NamedHeader::decode(&h.encode()), Some(h));
        assert_eq!(NamedHeader::decode(&[0u8; 128]), None);
    }

    #[test]
    fn write_shape_changes_the_shape_alone() {
        let h = NamedHeader {
            elem_size: 4,
            owner_pid: 42,
            owner_start: 7,
            len: 24,
            descr: "<f4".into(),
            shape: vec![2, 3, 4],
        };
        let mut b = h.encode();
        for shape in [
            vec![4, 6],
            vec![24],
            vec![1, 2, 3, 4, 1, 1, 1, 1],
            vec![2, 12],
        ] {
            // SAFETY: `b` is a 128-byte header nothing else references.
            unsafe { write_shape(b.as_mut_ptr(), &shape) };
            let expected = NamedHeader { shape, ..h.clone() };
            assert_eq!(NamedHeader::decode(&b), Some(expected));
        }
        // Dimensions beyond the current ndim are zeroed, not left from before.
        assert!(b[80..].iter().all(|&x| x == 0));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ok_name-1").is_ok());
        for bad in ["", "a/b", "..", "x\0y"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn our_own_process_is_alive() {
        let me = sys::getpid();
        let h = NamedHeader {
            elem_size: 1,
            owner_pid: me as u32,
            owner_start: sys::process_start_time(me).unwrap(),
            len: 0,
            descr: "|u1".into(),
            shape: vec![0],
        };
        assert!(h.owner_alive());
        assert!(
            !NamedHeader {
                owner_start: 1,
                ..h
            }
            .owner_alive()
        );
    }
}
