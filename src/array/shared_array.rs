//! [`SharedArray`]: a numeric array in shared memory that workers read and write in
//! place; its constructors, views of its elements, and the standard traits.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::shm::{Contents, PageKind, Pages, Segment, SegmentError};

/// A fixed-length array of plain-old-data elements in shared memory.
///
/// The memory is a memfd mapped `MAP_SHARED`. In the parent the array reads and
/// writes as an ordinary slice (`&[T]`, `&mut [T]`, through `Deref`). When a pool
/// maps over it, workers map the same memory, read their chunk of the input and
/// write their chunk of the output directly: nothing is copied or serialized. An
/// array can be created before or after the pool that uses it, and used with
/// several pools.
///
/// `T` is any [`bytemuck::Pod`] type: `f32`, `f64`, the integers, and your own
/// `#[repr(C)]` structs that derive `Pod`.
///
/// Memory is returned to the system when the array is dropped and every worker that
/// mapped it has noticed (workers check whenever they go idle, and idle workers are
/// woken to check at once). Arrays are not inherited across `fork`: pass them
/// to workers through the pool's map calls.
///
/// # Examples
///
/// ```
/// use shmpool::SharedArray;
///
/// let mut xs = SharedArray::from_slice(&[1.0f64, 4.0, 9.0])?;
/// xs[0] = 16.0;
/// assert_eq!(xs.len(), 3);
/// assert_eq!(xs.to_vec(), vec![16.0, 4.0, 9.0]);
/// # Ok::<(), shmpool::Error>(())
/// ```
///
/// Element types must be plain old data; a `String` is refused at compile time:
///
/// ```compile_fail
/// let xs = shmpool::SharedArray::from_slice(&[String::new()]);
/// ```
pub struct SharedArray<T: Pod> {
    pub(super) segment: Arc<Segment>,
    pub(super) len: usize,
    pub(super) shape: Box<[usize]>,
    pub(super) _elements: PhantomData<T>,
}

impl<T: Pod> SharedArray<T> {
    const NOT_ZERO_SIZED: () = assert!(
        std::mem::size_of::<T>() > 0 && std::mem::align_of::<T>() <= 128,
        "SharedArray elements must have a non-zero size and an alignment of at most 128"
    );

    /// An array of `len` zeroed elements.
    ///
    /// Pages are allocated lazily, on first touch, as with `np.zeros`: this call
    /// touches only the page that holds the segment's 128-byte header. The memory
    /// reads as zeros without being written, so an output array made here is
    /// faulted in by the workers that write its chunks, in parallel, and never by
    /// the parent. When it takes over the memory of a dropped array of the same
    /// byte length instead ([`array_cache`](crate::array_cache)), whose pages the
    /// workers have mapped already, it zeroes, in the calling thread, the pages
    /// that memory holds (those its earlier arrays touched) and allocates none: the
    /// rest reads as zeros and stays unallocated, so an output used in part stays
    /// lazy from one array to the next.
    ///
    /// Arrays of at least [`HUGE_PAGE_THRESHOLD`](crate::HUGE_PAGE_THRESHOLD) bytes
    /// get huge pages where the system offers them ([`Pages::Auto`]); see
    /// [`SharedArray::zeroed_with_pages`] and [`SharedArray::page_kind`].
    ///
    /// # Errors
    /// [`Error::Io`] when the shared memory cannot be created (out of memory,
    /// address space or file descriptors), also after the array cache released
    /// what it held and the creation was tried again.
    ///
    /// # Examples
    ///
    /// ```
    /// let ys = shmpool::SharedArray::<f32>::zeroed(1000)?;
    /// assert!(ys.iter().all(|&y| y == 0.0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<Self> {
        Self::zeroed_with_pages(len, Pages::Auto)
    }

    /// An array of `len` zeroed elements on the pages `pages` asks for.
    ///
    /// - [`Pages::Auto`] (what [`SharedArray::zeroed`] uses): for an array of at
    ///   least [`HUGE_PAGE_THRESHOLD`](crate::HUGE_PAGE_THRESHOLD) bytes, hugetlbfs
    ///   pages when enough are reserved and free, else transparent huge pages when
    ///   `/sys/kernel/mm/transparent_hugepage/shmem_enabled` is `advise`,
    ///   `within_size` or `always`, else base pages. Base pages for smaller arrays,
    ///   and for every array when the environment has `SHMPOOL_HUGE_PAGES=0`.
    /// - [`Pages::Base`], [`Pages::TransparentHuge`], [`Pages::HugeTlb`]: that kind,
    ///   whatever the size, or an error.
    ///
    /// Huge-page segments are rounded up to whole huge pages (2 MiB on x86-64).
    /// hugetlbfs pages are all reserved here, so a shortage is reported now and
    /// never as a signal at a later write; transparent huge pages cannot run out
    /// (the kernel takes base pages where it finds no huge ones).
    ///
    /// # Errors
    /// [`Error::HugePagesUnavailable`] when a huge-page kind was asked for
    /// explicitly and the system cannot give it; [`Error::Io`] as for
    /// [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{PageKind, Pages, SharedArray};
    ///
    /// let xs = SharedArray::<f64>::zeroed_with_pages(1 << 20, Pages::Base)?;
    /// assert_eq!((xs.page_kind(), xs.page_size()), (PageKind::Base, 4096));
    /// // 8 MiB: huge pages if this machine offers them, base pages otherwise.
    /// let ys = SharedArray::<f64>::zeroed_with_pages(1 << 20, Pages::Auto)?;
    /// assert!(ys.page_size() >= 4096);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed_with_pages(len: usize, pages: Pages) -> Result<Self> {
        Self::new_memfd(len, pages, Contents::Zeros)
    }

    /// An array of `len` elements whose values are unspecified, for an output that
    /// a call overwrites whole: numpy's `np.empty`.
    ///
    /// The memory of a dropped array of the same byte length may be reused
    /// ([`array_cache`](crate::array_cache)) without being zeroed first: the values
    /// are then what that array held, else zeros. Every bit pattern is a valid
    /// `T` (it is [`Pod`]), so reading them is safe, but they mean nothing.
    /// [`SharedArray::zeroed`] zeroes reused memory, which costs a pass over it.
    ///
    /// # Errors
    /// As for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::from_slice(&[1.0f64, 4.0, 9.0])?;
    /// let mut ys = shmpool::SharedArray::for_overwrite(xs.len())?;
    /// pool.map_into(&xs, &mut ys, |x: f64| x.sqrt())?;
    /// assert_eq!(&ys[..], &[1.0, 2.0, 3.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_overwrite(len: usize) -> Result<Self> {
        Self::new_memfd(len, Pages::Auto, Contents::Unspecified)
    }

    fn new_memfd(len: usize, pages: Pages, contents: Contents) -> Result<Self> {
        let () = Self::NOT_ZERO_SIZED;
        let segment = Segment::new_memfd(
            len,
            std::mem::size_of::<T>(),
            std::mem::align_of::<T>(),
            pages,
            contents,
        )
        .map_err(|e| match e {
            SegmentError::HugePagesUnavailable { kind, reason } => {
                Error::HugePagesUnavailable { kind, reason }
            }
            SegmentError::Io(e) => Error::io("creating a shared array")(e),
        })?;
        Ok(Self::from_segment(segment, len, vec![len]))
    }

    /// The kind of pages behind the array: what the system gave when it was
    /// created ([`SharedArray::zeroed_with_pages`]). Arrays over named segments and
    /// `.npy` files report [`PageKind::Base`].
    ///
    /// For [`PageKind::TransparentHuge`] this is what was asked for: the kernel
    /// backs each 2 MiB range with a huge page when it finds one at the first
    /// touch, and with base pages when it does not (`/proc/PID/smaps` shows which,
    /// as `ShmemPmdMapped`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{PageKind, SharedArray};
    ///
    /// let xs = SharedArray::from_slice(&[1.0f64, 2.0])?;
    /// assert_eq!(xs.page_kind(), PageKind::Base);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn page_kind(&self) -> PageKind {
        self.segment.page_kind()
    }

    /// The size in bytes of the pages behind the array: the base page size (4096
    /// on x86-64), or the huge page size (2 MiB on x86-64) for either huge kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::<u8>::zeroed(10)?;
    /// assert_eq!(xs.page_size(), 4096);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn page_size(&self) -> usize {
        self.page_kind().page_size()
    }

    /// An array over a segment holding `len` elements, viewed with `shape`.
    pub(crate) fn from_segment(segment: Segment, len: usize, shape: Vec<usize>) -> Self {
        let () = Self::NOT_ZERO_SIZED;
        debug_assert!(segment.data_bytes() >= len * std::mem::size_of::<T>());
        debug_assert_eq!(shape.iter().product::<usize>(), len);
        SharedArray {
            segment: Arc::new(segment),
            len,
            shape: shape.into_boxed_slice(),
            _elements: PhantomData,
        }
    }

    /// An array of `len` elements over the start of an existing segment, which
    /// must hold at least that many bytes: a scratch buffer reused from call to
    /// call. The elements are whatever the segment last held.
    #[cfg(feature = "mpi")]
    pub(crate) fn over_segment(segment: Arc<Segment>, len: usize) -> Self {
        let () = Self::NOT_ZERO_SIZED;
        assert!(
            len.checked_mul(std::mem::size_of::<T>())
                .is_some_and(|b| b <= segment.data_bytes())
        );
        SharedArray {
            segment,
            len,
            shape: vec![len].into_boxed_slice(),
            _elements: PhantomData,
        }
    }

    /// An array holding a copy of `values`, of shape `[values.len()]`
    /// ([`SharedArray::from_slice_shaped`] gives another).
    ///
    /// # Errors
    /// As for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::from_slice(&[1u16, 2, 3])?;
    /// assert_eq!(&xs[..], &[1, 2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Self> {
        let mut a = Self::for_overwrite(values.len())?;
        a.as_mut_slice().copy_from_slice(values);
        Ok(a)
    }

    /// An array holding a copy of `values`, viewed with `shape` (C order, numpy's
    /// default): `np.array(values).reshape(shape)` in one step. The shape travels
    /// with the array, into [`SharedArray::save_npy`] and ndarray views.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `shape` holds exactly `values.len()`
    /// elements (nothing is allocated then); as for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmpool::SharedArray::from_slice_shaped(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(a.shape(), &[2, 3]);
    /// assert!(shmpool::SharedArray::from_slice_shaped(&[1u8, 2, 3], &[2, 2]).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_slice_shaped(values: &[T], shape: &[usize]) -> Result<Self> {
        if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(values.len()) {
            return Err(Error::ShapeMismatch {
                len: values.len(),
                shape: shape.to_vec(),
            });
        }
        let mut a = Self::from_slice(values)?;
        a.shape = shape.into();
        Ok(a)
    }

    /// An array holding the elements of `values` (copied once into shared memory).
    ///
    /// # Errors
    /// As for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::from_vec(vec![0.5f32; 4])?;
    /// assert_eq!(xs.len(), 4);
    /// assert_eq!(xs[3], 0.5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_vec(values: Vec<T>) -> Result<Self> {
        Self::from_slice(&values)
    }

    /// An array of `len` copies of `value`.
    ///
    /// # Errors
    /// As for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::filled(3, 7i64)?;
    /// assert_eq!(&xs[..], &[7, 7, 7]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn filled(len: usize, value: T) -> Result<Self> {
        let mut a = Self::for_overwrite(len)?;
        a.as_mut_slice().fill(value);
        Ok(a)
    }

    /// An array holding the items of an iterator, written straight into shared memory
    /// when the iterator reports an exact length.
    ///
    /// # Errors
    /// As for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::try_from_iter((0..5).map(|i| i as f64))?;
    /// assert_eq!(&xs[..], &[0.0, 1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_from_iter<I: IntoIterator<Item = T>>(iter: I) -> Result<Self> {
        let iter = iter.into_iter();
        match iter.size_hint() {
            (lo, Some(hi)) if lo == hi => {
                let mut a = Self::for_overwrite(lo)?;
                let mut n = 0;
                for (slot, v) in a.as_mut_slice().iter_mut().zip(iter) {
                    *slot = v;
                    n += 1;
                }
                if n == lo {
                    return Ok(a);
                }
                // The iterator lied about its length: keep what it gave.
                Self::from_slice(&a[..n])
            }
            _ => Self::from_vec(iter.collect()),
        }
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::<u8>::zeroed(5)?;
    /// assert_eq!(xs.len(), 5);
    /// assert_eq!(xs.reshape(&[5, 1])?.len(), 5); // all elements, whatever the shape
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// The shape, as numpy has it: `[len]` unless set with [`SharedArray::reshape`]
    /// or read from a file. The elements are stored in C (row-major) order.
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::<f64>::zeroed(6)?;
    /// assert_eq!(xs.shape(), &[6]);
    /// assert_eq!(xs.reshape(&[2, 3])?.shape(), &[2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The same elements viewed with another shape (numpy's `reshape`): no data
    /// moves. Bulk maps work element by element whatever the shape; `map_array`
    /// gives its output the input's shape.
    ///
    /// The array that owns a named segment (made by
    /// [`SharedArray::create_named_shaped`] or [`SharedArray::create_named`]) also
    /// rewrites the shape in the segment's header, so that Python and
    /// [`SharedArray::open_named`] see it from then on. Only the owner writes the
    /// header; an array from `open_named` changes its own view alone. The header is
    /// shared memory like the data: reshape while no other process reads it, as
    /// you would write the data.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless the shape holds exactly `len()` elements;
    /// [`Error::UnsupportedShape`] for more than 8 axes on the owner of a named
    /// segment. The array is consumed either way, and an owner unlinks its
    /// segment when dropped: check a shape you are not sure of before reshaping.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmpool::SharedArray::try_from_iter(0..12u32)?.reshape(&[3, 4])?;
    /// assert_eq!(a.shape(), &[3, 4]);
    /// assert!(a.try_clone()?.reshape(&[5, 2]).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        match shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
            Some(n) if n == self.len => {
                super::named_arrays::record_shape(&self.segment, shape)?;
                self.shape = shape.into();
                Ok(self)
            }
            _ => Err(Error::ShapeMismatch {
                len: self.len,
                shape: shape.to_vec(),
            }),
        }
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmpool::SharedArray::<u32>::zeroed(0)?.is_empty());
    /// assert!(!shmpool::SharedArray::<u32>::zeroed(1)?.is_empty());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements as a slice.
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::from_slice(&[1.0f64, 2.0, 3.0])?;
    /// let s: &[f64] = xs.as_slice();
    /// assert_eq!(s.iter().sum::<f64>(), 6.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the segment holds `len` elements of T from `data_ptr`, aligned to
        // 128 bytes (DATA_OFFSET from a page-aligned mapping). Workers write this memory
        // only while a pool call holds `&mut self` (bulk maps borrow the output
        // mutably until every worker is done with it), so no write races this shared
        // borrow.
        unsafe { std::slice::from_raw_parts(self.segment.data_ptr().cast::<T>(), self.len) }
    }

    /// The elements as a mutable slice.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut xs = shmpool::SharedArray::from_slice(&[1u8, 2, 3])?;
    /// xs.as_mut_slice().reverse();
    /// assert_eq!(&xs[..], &[3, 2, 1]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`; `&mut self` excludes every other reference in this
        // process, and workers touch the memory only during pool calls that borrow it.
        unsafe { std::slice::from_raw_parts_mut(self.segment.data_ptr().cast::<T>(), self.len) }
    }

    /// A copy of the elements in a `Vec`.
    ///
    /// # Examples
    ///
    /// ```
    /// let xs = shmpool::SharedArray::try_from_iter(0..4u32)?;
    /// let v: Vec<u32> = xs.to_vec(); // ordinary heap memory
    /// assert_eq!(v, [0, 1, 2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.as_slice().to_vec()
    }

    /// A new array with a copy of the elements and the same shape.
    ///
    /// # Errors
    /// As for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmpool::SharedArray::from_slice(&[1i32, 2, 3, 4])?.reshape(&[2, 2])?;
    /// let mut b = a.try_clone()?;
    /// b[0] = 100;
    /// assert_eq!(a[0], 1); // a copy, in memory of its own
    /// assert_eq!(b.shape(), &[2, 2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_clone(&self) -> Result<Self> {
        Self::from_slice(self.as_slice())?.reshape(&self.shape)
    }

    /// This array's memory is released when it is dropped, never kept by the array
    /// cache: for memory whose size rarely repeats (a task context's bytes).
    pub(crate) fn never_kept(mut self) -> Self {
        if let Some(segment) = Arc::get_mut(&mut self.segment) {
            crate::shm::recycle::Kept::forbid_recycling(segment);
        }
        self
    }

    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }
}

impl<T: Pod> Deref for SharedArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> DerefMut for SharedArray<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Pod> AsRef<[T]> for SharedArray<T> {
    fn as_ref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> AsMut<[T]> for SharedArray<T> {
    fn as_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for SharedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let mut list = f.debug_list();
        list.entries(self.iter().take(SHOWN));
        if self.len > SHOWN {
            list.entry(&format_args!("... {} more", self.len - SHOWN));
        }
        list.finish()
    }
}

impl<T: Pod + PartialEq> PartialEq for SharedArray<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Pod> TryFrom<&[T]> for SharedArray<T> {
    type Error = Error;
    fn try_from(values: &[T]) -> Result<Self> {
        Self::from_slice(values)
    }
}

impl<T: Pod> TryFrom<Vec<T>> for SharedArray<T> {
    type Error = Error;
    fn try_from(values: Vec<T>) -> Result<Self> {
        Self::from_vec(values)
    }
}

impl<T: Pod> FromIterator<T> for SharedArray<T> {
    /// Collects into shared memory.
    ///
    /// # Panics
    /// When the shared memory cannot be created; use [`SharedArray::try_from_iter`] to
    /// get the error instead.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::try_from_iter(iter).expect("cannot allocate a shared array")
    }
}
