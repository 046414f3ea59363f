//! [`ReadOnlyArray`]: a shared array that nothing may write, over a file mapped
//! read-only.

use std::fmt;
use std::ops::Deref;

use bytemuck::Pod;

use super::shared_array::SharedArray;

/// A [`SharedArray`] that cannot be written: a `.npy` file mapped read-only by
/// [`SharedArray::open_npy_read_only`] (numpy's `mmap_mode="r"`).
///
/// It dereferences to `&SharedArray<T>`, so it goes wherever a pool reads an array
/// (`pool.bulk().sum(&x)`, the input of `map_into`, a context array) and reads as
/// a slice (`x[i]`, `x.iter()`). It never gives a `&mut SharedArray` or a `&mut
/// [T]`, so it cannot be the output of a map, nor be written in this process: the
/// memory is mapped read-only, in the workers too. [`SharedArray::try_clone`]
/// copies it into an array you can write. Where an operation takes a tuple of
/// arrays (`zip_map_into((&a, &b), ..)`), write `&*x` for the read-only one.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("shmpool-doc-roa-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("x.npy");
/// shmpool::npy::save(&path, &[3u32, 1, 2])?;
/// // SAFETY: nobody writes or truncates this file while we use it.
/// let x = unsafe { shmpool::SharedArray::<u32>::open_npy_read_only(&path)? };
/// assert_eq!(x[0], 3);
/// let mut y = x.try_clone()?; // a copy in shared memory, writable
/// y.sort();
/// assert_eq!(&y[..], &[1, 2, 3]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadOnlyArray<T: Pod> {
    array: SharedArray<T>,
}

impl<T: Pod> ReadOnlyArray<T> {
    /// Wraps an array over memory that must never be written.
    pub(super) fn new(array: SharedArray<T>) -> Self {
        ReadOnlyArray { array }
    }
}

impl<T: Pod> Deref for ReadOnlyArray<T> {
    type Target = SharedArray<T>;
    fn deref(&self) -> &SharedArray<T> {
        &self.array
    }
}

impl<T: Pod> AsRef<[T]> for ReadOnlyArray<T> {
    fn as_ref(&self) -> &[T] {
        self.array.as_slice()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ReadOnlyArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.array, f)
    }
}

impl<T: Pod + PartialEq> PartialEq<SharedArray<T>> for ReadOnlyArray<T> {
    fn eq(&self, other: &SharedArray<T>) -> bool {
        self.array == *other
    }
}
