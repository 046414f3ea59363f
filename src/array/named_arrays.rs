//! Arrays in named shared-memory segments, which other processes attach to by name.

use std::io;
use std::path::{Path, PathBuf};

use bytemuck::Pod;

use super::shared_array::SharedArray;
use crate::error::{Error, Result};
use crate::npy::NpyElement;
use crate::shm::Segment;
use crate::shm::named_segment::{self as named, CreateError, MAX_DIMS, NAMED_DATA_OFFSET};

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
    /// time); element 0 is at byte 128. The shape is `[len]`; use
    /// [`SharedArray::create_named_shaped`] to give another, or
    /// [`SharedArray::reshape`] later: the header follows. This process owns the
    /// segment and unlinks it when the array is dropped. If the owner dies first
    /// (SIGKILL, abort), a later `create_named` of the same name, or
    /// [`crate::reclaim_stale_segments`], reclaims it. Workers map it like any array:
    /// maps over it are zero-copy.
    ///
    /// The whole segment is reserved here (`fallocate`): its memory is taken from
    /// `/dev/shm`, a tmpfs with a size limit (64 MiB in a Docker container unless
    /// run with `--shm-size`), when the array is created, and a `/dev/shm` too small
    /// for it gives [`Error::NoSpace`] now instead of a `SIGBUS` at the first write.
    /// Before it reports `NoSpace`, it waits (up to 1 s, and no longer than they take) for pool workers still
    /// mapping named arrays this process dropped to let go of them, so the space of
    /// an array dropped just before is found free. Arrays that are not named ([`SharedArray::zeroed`] and the rest) are memfds,
    /// outside `/dev/shm`, and stay lazy: their pages are allocated when touched.
    ///
    /// # Safety
    /// The memory is shared with any process that opens the name. While this array
    /// (or a pool call on it) is alive, no other process may write it while you hold
    /// slices of it, nor resize the segment: coordinate as with any shared memory.
    ///
    /// # Errors
    /// [`Error::SegmentExists`] if the name is taken by a segment whose owner is
    /// alive; [`Error::NoSpace`], naming the bytes asked and those free, if
    /// `/dev/shm` has no room for the segment (nothing is left behind);
    /// [`Error::UnsupportedShape`] if `len` elements of `T` are more bytes than
    /// memory can address; [`Error::File`], naming the segment's path under
    /// `/dev/shm`, for an invalid name (empty, longer than 200 characters, or
    /// containing `/`) or when the segment cannot be created.
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
        // SAFETY: Delegated to the caller, under the same contract.
        unsafe { Self::create_named_shaped(name, &[len]) }
    }

    /// Creates a zeroed array of `shape` (C order, numpy's default) in a named
    /// shared-memory segment, as [`SharedArray::create_named`] does for a 1-D one.
    /// The shape is recorded in the segment's header, so a reader needs nothing
    /// but the name:
    ///
    /// ```python
    /// import struct
    /// n, descr = struct.unpack_from("<Q16s", shm.buf, 24)
    /// ndim, = struct.unpack_from("<I", shm.buf, 48)
    /// shape = struct.unpack_from(f"<{ndim}Q", shm.buf, 64)
    /// a = np.ndarray(shape, dtype=descr.rstrip(b"\0").decode(), buffer=shm.buf, offset=128)
    /// ```
    ///
    /// and [`SharedArray::open_named`] gives the array this shape. A header
    /// records at most 8 axes; an empty shape is a single element (numpy's `()`).
    ///
    /// This process owns the header as well as the segment: its
    /// [`SharedArray::reshape`] rewrites the recorded shape, and no other process
    /// writes it.
    ///
    /// # Safety
    /// As for [`SharedArray::create_named`].
    ///
    /// # Errors
    /// [`Error::UnsupportedShape`] for more than 8 axes, or a shape of more bytes
    /// than memory can address (nothing is created); otherwise as for
    /// [`SharedArray::create_named`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, SharedArray};
    ///
    /// let name = format!("shmpool-doc-shaped-{}", std::process::id());
    /// // SAFETY: no other process uses this name.
    /// let mut a = unsafe { SharedArray::<f32>::create_named_shaped(&name, &[2, 3])? };
    /// a.copy_from_slice(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    /// // SAFETY: as above; nothing writes the segment while `b` lives.
    /// let b = unsafe { SharedArray::<f32>::open_named(&name)? };
    /// assert_eq!(b.shape(), &[2, 3]);
    /// drop(b);
    ///
    /// let a = a.reshape(&[3, 2])?; // the owner rewrites the header
    /// // SAFETY: as above.
    /// assert_eq!(unsafe { SharedArray::<f32>::open_named(&name)? }.shape(), &[3, 2]);
    ///
    /// // SAFETY: as above; refused before anything is created.
    /// let nine_axes = unsafe { SharedArray::<f32>::create_named_shaped("x", &[1; 9]) };
    /// assert!(matches!(nine_axes, Err(Error::UnsupportedShape { .. })));
    /// # drop(a);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn create_named_shaped(name: &str, shape: &[usize]) -> Result<Self> {
        let elem = std::mem::size_of::<T>();
        let len = check_named_shape(shape, elem)?;
        let (fd, map) =
            named::create(name, len, elem, T::DTYPE.descr(), shape).map_err(|e| match e {
                CreateError::Exists => Error::SegmentExists {
                    name: name.to_string(),
                },
                CreateError::NoSpace { bytes, free } => Error::NoSpace {
                    bytes,
                    filesystem: named::SHM_DIR.into(),
                    free,
                },
                CreateError::Io(e) => Error::file(
                    "creating the named shared-memory segment",
                    &segment_path(name),
                )(e),
            })?;
        let segment = Segment::from_named(
            fd,
            map,
            NAMED_DATA_OFFSET,
            len * elem,
            Some(name.to_string()),
        );
        Ok(Self::from_segment(segment, len, shape.to_vec()))
    }

    /// Opens a named segment created by [`SharedArray::create_named`] in this or
    /// another process. This process does not own it: dropping the array leaves the
    /// segment in place.
    ///
    /// The array has the shape the header records when it is opened (`[len]` if
    /// the recorded shape does not hold `len` elements). Its
    /// [`SharedArray::reshape`] changes this view only, as numpy's `reshape` gives
    /// a new view of the same buffer: the header is the owner's, and stays as the
    /// owner set it. A later reshape by the owner is seen by opening the name again.
    ///
    /// # Safety
    /// As for [`SharedArray::create_named`].
    ///
    /// # Errors
    /// [`Error::File`], naming the segment's path under `/dev/shm`, if no segment
    /// has this name; [`Error::ForeignSegment`] if it is
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
            _ => Error::file(
                "opening the named shared-memory segment",
                &segment_path(name),
            )(e),
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

/// Checks that a named segment's header can record `shape` for elements of
/// `elem_size` bytes, and returns its number of elements.
fn check_named_shape(shape: &[usize], elem_size: usize) -> Result<usize> {
    check_axes(shape)?;
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| {
            n.checked_mul(elem_size)
                .and_then(|b| b.checked_add(NAMED_DATA_OFFSET))
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(|| Error::UnsupportedShape {
            shape: shape.to_vec(),
            reason: format!(
                "its elements of {elem_size} bytes need more memory than can be addressed"
            ),
        })
}

/// Refuses a shape of more axes than a named segment's header records.
fn check_axes(shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_DIMS {
        return Err(Error::UnsupportedShape {
            shape: shape.to_vec(),
            reason: format!(
                "it has {} axes, and a named segment's header records at most {MAX_DIMS}",
                shape.len()
            ),
        });
    }
    Ok(())
}

/// Records `shape` in the header of `segment` if this process owns it (created
/// it with [`SharedArray::create_named_shaped`]), so that Python and
/// [`SharedArray::open_named`] see the owner's shape. Any other segment is left
/// alone: its header, if it has one, is its owner's to write.
pub(super) fn record_shape(segment: &Segment, shape: &[usize]) -> Result<()> {
    let Some(header) = segment.owned_named_header() else {
        return Ok(());
    };
    check_axes(shape)?;
    // SAFETY: `header` is the start of this process's mapping of a named segment
    // it created, which is at least 128 bytes and lives as long as `segment`; the
    // shape has at most MAX_DIMS axes (checked).
    unsafe { named::write_shape(header, shape) };
    Ok(())
}

/// Unlinks every shmpool named segment in `/dev/shm` whose owner process is gone
/// (killed before it could unlink them), and returns their names. Segments of live
/// owners, and other programs' segments, are left alone.
///
/// # Errors
/// [`Error::File`] if `/dev/shm` cannot be read.
///
/// # Examples
///
/// ```
/// let reclaimed = shmpool::reclaim_stale_segments()?;
/// println!("reclaimed {} stale segments", reclaimed.len());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn reclaim_stale_segments() -> Result<Vec<String>> {
    named::reclaim_stale().map_err(Error::file("scanning", Path::new(named::SHM_DIR)))
}

/// Where the segment called `name` lives: `/dev/shm/<name>`, the path an error
/// about it names.
fn segment_path(name: &str) -> PathBuf {
    Path::new(named::SHM_DIR).join(name)
}
