//! Where the pool's descriptors land: above the standard streams.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// Moves a descriptor the pool made above the standard streams. When this process
/// runs with descriptor 0, 1 or 2 closed (a daemon, a job started with `<&-`), a
/// new descriptor takes the lowest free number: a child would then inherit shared
/// memory as its stdout, or a re-executed server refuse the number. Duplicates it
/// from 3 up (close-on-exec) and closes the low number.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}
