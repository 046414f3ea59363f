//! Memory files and shared mappings: `memfd_create`, `ftruncate`, `fallocate`,
//! `mmap`, `munmap`, `madvise`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::mm::{Advice, MapFlags, ProtFlags};

use super::fd::above_stdio;

/// Creates an anonymous, close-on-exec memory file of `len` bytes, filled with zeros.
/// Its pages are allocated when first touched.
pub(crate) fn memfd(name: &CStr, len: u64) -> io::Result<OwnedFd> {
    let fd = above_stdio(rustix::fs::memfd_create(
        name,
        rustix::fs::MemfdFlags::CLOEXEC,
    )?)?;
    set_len(fd.as_fd(), len)?;
    Ok(fd)
}

/// Sets the length of a memory file; growing it adds zero bytes.
///
/// A length beyond this process's file-size limit (`RLIMIT_FSIZE`, `ulimit -f`) is
/// refused with `EFBIG` before the call: `ftruncate` past the limit would also
/// raise `SIGXFSZ`, whose default action kills the process.
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    check_file_size_limit(len)?;
    Ok(rustix::fs::ftruncate(fd, len)?)
}

/// `Err(EFBIG)`, with the limit in the message, when a file of `len` bytes would
/// exceed `RLIMIT_FSIZE`.
pub(crate) fn check_file_size_limit(len: u64) -> io::Result<()> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Fsize).current;
    match limit {
        Some(max) if len > max => Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "{len} bytes exceed this process's file-size limit of {max} bytes \
                 (RLIMIT_FSIZE, `ulimit -f`), which shared memory files count against \
                 (EFBIG)"
            ),
        )),
        _ => Ok(()),
    }
}

/// Allocates every byte of `0..len` of a file now (`fallocate`, mode 0, which
/// also extends the file to `len`), so that touching its pages later cannot fail
/// for want of space. On tmpfs this charges the pages to the filesystem's size
/// limit: a full `/dev/shm` answers `ENOSPC` here instead of `SIGBUS` at the first
/// write. The pages read as zeros.
///
/// Only named segments are reserved: memfds stay lazy, as `np.zeros` is.
/// An interrupted call (`EINTR`: tmpfs stops for a pending signal and undoes
/// what it allocated) is retried. A filesystem that cannot preallocate
/// (`EOPNOTSUPP`) leaves the file as it was, its pages allocated on first touch.
pub(crate) fn reserve(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(()); // fallocate refuses an empty range
    }
    check_file_size_limit(len)?; // past it, fallocate raises SIGXFSZ too
    loop {
        match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::OPNOTSUPP) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Bytes free for an unprivileged user on the filesystem that holds `fd`
/// (`fstatvfs`: available blocks × fragment size).
pub(crate) fn free_space(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let st = rustix::fs::fstatvfs(fd)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The current length of a file.
pub(crate) fn file_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_size as u64)
}

/// Whether `fd` was opened for writing (`O_RDWR` or `O_WRONLY`).
pub(crate) fn fd_is_writable(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mode = rustix::fs::fcntl_getfl(fd)? & rustix::fs::OFlags::ACCMODE;
    Ok(mode != rustix::fs::OFlags::RDONLY)
}

/// How a shared mapping is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapOptions {
    /// Map for writing as well as reading.
    pub writable: bool,
    /// Keep the mapping out of children created by `fork` (`MADV_DONTFORK`).
    pub dont_fork: bool,
}

/// Maps `len` bytes of `fd`, starting at `offset`, `MAP_SHARED`.
///
/// The mapping is never private: writes are seen by every process that maps the same
/// file. The caller owns the returned range and must release it with [`unmap`].
pub(crate) fn map_shared(
    fd: BorrowedFd<'_>,
    offset: u64,
    len: usize,
    opts: MapOptions,
) -> io::Result<NonNull<u8>> {
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
    }
    let mut prot = ProtFlags::READ;
    if opts.writable {
        prot |= ProtFlags::WRITE;
    }
    let flags = MapFlags::SHARED;
    // SAFETY: a fresh mapping at an address the kernel picks cannot overlap any memory
    // Rust already references; the fd is valid for the duration of the call.
    let ptr = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, flags, fd, offset)? };
    if opts.dont_fork {
        // SAFETY: `ptr..ptr+len` is the mapping just created; the advice changes only
        // what `fork` copies, never the contents.
        if let Err(e) = unsafe { rustix::mm::madvise(ptr, len, Advice::LinuxDontFork) } {
            // SAFETY: unmapping the range created above, which nothing else references.
            let _ = unsafe { rustix::mm::munmap(ptr, len) };
            return Err(e.into());
        }
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Releases a mapping made by [`map_shared`].
///
/// # Safety
/// `ptr..ptr+len` must be exactly one mapping returned by [`map_shared`], and no
/// reference into it may be used afterwards.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: Delegated to the caller.
    let _ = unsafe { rustix::mm::munmap(ptr.as_ptr().cast(), len) };
}

/// The size of a memory page (what `mmap` offsets and `madvise` ranges align to).
pub(crate) fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: sysconf reads a constant of the running system; no memory is involved.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

/// The whole pages inside `start..start+len`: the start rounded up and the end
/// rounded down to page boundaries, or `None` when no whole page fits.
pub(crate) fn pages_within(start: usize, len: usize) -> Option<(usize, usize)> {
    let page = page_size();
    let first = start.checked_next_multiple_of(page)?;
    let end = start.checked_add(len)? / page * page;
    (end > first).then(|| (first, end - first))
}

/// Gives the whole pages inside `ptr..ptr+len` back to the kernel (`MADV_REMOVE`):
/// the file reads as zeros there afterwards, and its memory is freed.
///
/// Only pages that lie entirely inside the range are discarded. The kernel would
/// round a partial last page *up*, zeroing whatever follows the range on that page
/// (issue 10, bug 0: the length prefix of the next live arena block), so the
/// rounding is done here, inward, once for every caller.
///
/// # Safety
/// The range must lie inside a shared file mapping that nobody reads or writes while
/// this runs.
pub(crate) unsafe fn discard(ptr: NonNull<u8>, len: usize) {
    let Some((first, len)) = pages_within(ptr.as_ptr() as usize, len) else {
        return;
    };
    // SAFETY: `first..first+len` lies inside the caller's range (rounded inward), so
    // the caller's guarantee covers it.
    let _ =
        unsafe { rustix::mm::madvise(first as *mut std::ffi::c_void, len, Advice::LinuxRemove) };
}
