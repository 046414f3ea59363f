//! Arrays in named shared-memory segments, which other processes attach to by name.

use std::io;

use bytemuck::Pod;

use super::SharedArray;
use crate::error::{Error, Result};
use crate::npy::NpyElement;
use crate::shm::Segment;
use crate::shm::named::{self, NAMED_DATA_OFFSET};

impl<T: NpyElement + Pod> SharedArray<T> {
    /// Creates an array of `len` zeroed elements in a named shared-memory segment
    /// (`shm_open`) that another process can attach to by name, including Python:
    ///
    /// ```python
    /// from multiprocessing import shared_memory
    /// import numpy as np
    /// shm = shared_memory.SharedMemory(name)          # no leading slash
    /// n = int.from_bytes(shm.buf[24:32], "little")     # len; dtype string at 32..48
    /// a = np.ndarray((n,), dtype="<f8", buffer=shm.buf, offset=128)
    /// ```
    ///
    /// The segment starts with a 128-byte header (layout in `src/shm/named.rs`:
    /// length, element size, numpy dtype string, shape, and the owner's pid and start
    /// time); element 0 is at byte 128. This process owns the segment and unlinks it
    /// when the array is dropped. If the owner dies first (SIGKILL, abort), a later
    /// `create_named` of the same name, or [`crate::reclaim_stale_segments`],
    /// reclaims it. Workers map it like any array: maps over it are zero-copy.
    ///
    /// # Safety
    /// The memory is shared with any process that opens the name. While this array
    /// (or a pool call on it) is alive, no other process may write it while you hold
    /// slices of it, nor resize the segment: coordinate as with any shared memory.
    ///
    /// # Errors
    /// [`Error::SegmentExists`] if the name is taken by a segment whose owner is
    /// alive; [`Error::Io`] for an invalid name (empty, longer than 200 characters,
    /// or containing `/`) or when the segment cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("shmpool-doc-{}", std::process::id());
    /// // SAFETY: no other process uses this name.
    /// let mut a = unsafe { shmpool::SharedArray::<f64>::create_named(&name, 4)? };
    /// a.copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
    /// assert!(std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    /// drop(a); // unlinked
    /// assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn create_named(name: &str, len: usize) -> Result<Self> {
        let elem = std::mem::size_of::<T>();
        let (fd, map) = named::create(name, len, elem, T::DTYPE.descr(), &[len]).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::SegmentExists {
                    name: name.to_string(),
                }
            } else {
                Error::io("creating a named shared-memory segment")(e)
            }
        })?;
        let segment = Segment::from_named(
            fd,
            map,
            NAMED_DATA_OFFSET,
            len * elem,
            Some(name.to_string()),
        );
        Ok(Self::from_segment(segment, len, vec![len]))
    }

    /// Opens a named segment created by [`SharedArray::create_named`] in this or
    /// another process. This process does not own it: dropping the array leaves the
    /// segment in place.
    ///
    /// # Safety
    /// As for [`SharedArray::create_named`].
    ///
    /// # Errors
    /// [`Error::Io`] if no segment has this name; [`Error::ForeignSegment`] if it is
    /// not a shmpool segment, is damaged, or holds another element type than `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::SharedArray;
    ///
    /// let name = format!("shmpool-doc-open-{}", std::process::id());
    /// // SAFETY: no other process uses this name.
    /// let mut owner = unsafe { SharedArray::<u32>::create_named(&name, 3)? };
    /// owner.copy_from_slice(&[7, 8, 9]);
    /// // SAFETY: as above; nothing writes the segment while `view` lives.
    /// let view = unsafe { SharedArray::<u32>::open_named(&name)? };
    /// assert_eq!(&view[..], &[7, 8, 9]);
    /// // SAFETY: as above.
    /// let wrong = unsafe { SharedArray::<f64>::open_named(&name) };
    /// assert!(matches!(wrong, Err(shmpool::Error::ForeignSegment { .. })));
    /// drop(view); // the segment stays
    /// drop(owner); // unlinked
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn open_named(name: &str) -> Result<Self> {
        let (fd, map, header) = named::open(name).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => Error::ForeignSegment {
                name: name.to_string(),
                reason: e.to_string(),
            },
            _ => Error::io("opening a named shared-memory segment")(e),
        })?;
        if header.descr != T::DTYPE.descr() || header.elem_size as usize != std::mem::size_of::<T>()
        {
            return Err(Error::ForeignSegment {
                name: name.to_string(),
                reason: format!(
                    "it holds {} elements, not {}",
                    header.descr,
                    T::DTYPE.descr()
                ),
            });
        }
        let len = header.len as usize;
        let shape = if header.shape.iter().product::<usize>() == len {
            header.shape
        } else {
            vec![len]
        };
        let segment = Segment::from_named(fd, map, NAMED_DATA_OFFSET, len * size_of::<T>(), None);
        Ok(Self::from_segment(segment, len, shape))
    }
}

/// Unlinks every shmpool named segment in `/dev/shm` whose owner process is gone
/// (killed before it could unlink them), and returns their names. Segments of live
/// owners, and other programs' segments, are left alone.
///
/// # Errors
/// [`Error::Io`] if `/dev/shm` cannot be read.
///
/// # Examples
///
/// ```
/// let reclaimed = shmpool::reclaim_stale_segments()?;
/// println!("reclaimed {} stale segments", reclaimed.len());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn reclaim_stale_segments() -> Result<Vec<String>> {
    named::reclaim_stale().map_err(Error::io("scanning /dev/shm"))
}
