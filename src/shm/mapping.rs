//! An owned `MAP_SHARED` mapping of a file descriptor.

use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use crate::sys::{self, MapOptions};

/// A shared mapping that is unmapped on drop.
///
/// # Safety of use
/// Other processes may write the mapped memory at any time. Code that forms `&[T]`
/// or `&mut [T]` over it must justify, at that line, why no other process writes the
/// range while the reference lives (exclusive ownership by protocol); everything else
/// goes through atomics or raw pointers.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; the raw pointer is only dereferenced under the
// rules stated on the type, which do not depend on the thread.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize, opts: MapOptions) -> io::Result<Self> {
        Self::new_at(fd, 0, len, opts)
    }

    /// Maps `len` bytes of `fd` from `offset`, a multiple of the page size.
    pub(crate) fn new_at(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        opts: MapOptions,
    ) -> io::Result<Self> {
        let ptr = sys::map_shared(fd, offset, len, opts)?;
        Ok(Mapping { ptr, len })
    }

    /// The first byte.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The first byte, as a non-null pointer.
    pub(crate) fn as_non_null(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is the mapping this value created and owns; every
        // reference into it borrows `self`, so none outlives this drop.
        unsafe { sys::unmap(self.ptr, self.len) };
    }
}
