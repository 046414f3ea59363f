//! Named shared memory: `shm_open`, `shm_unlink`, and what identifies a process
//! that may own a name.

use std::io;
use std::os::fd::OwnedFd;

use super::fd::above_stdio;
use super::process::Pid;

/// Whether a create should fail if the name exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShmMode {
    /// Create a new object; fail with `AlreadyExists` if the name is taken.
    CreateNew,
    /// Open an existing object.
    Open,
}

/// `shm_open("/" + name)`, read-write, owner-only permissions for a new object.
pub(crate) fn shm_open(name: &str, mode: ShmMode) -> io::Result<OwnedFd> {
    use rustix::shm::{Mode, OFlags};
    let flags = match mode {
        ShmMode::CreateNew => OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
        ShmMode::Open => OFlags::RDWR,
    };
    above_stdio(rustix::shm::open(
        format!("/{name}").as_str(),
        flags,
        Mode::RUSR | Mode::WUSR,
    )?)
}

/// `shm_unlink("/" + name)`.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    Ok(rustix::shm::unlink(format!("/{name}").as_str())?)
}

/// The start time of a process (clock ticks since boot, field 22 of
/// `/proc/PID/stat`), which with the pid identifies it even after pid reuse.
pub(crate) fn process_start_time(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // After the command: state is field 3, so start time (22) is index 19 here.
    rest.split(' ').nth(19)?.parse().ok()
}
