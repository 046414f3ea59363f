//! Processes: ids, `fork`, `exec`, `waitpid`, pidfds, signals, resource limits,
//! descriptors, and the environment before `main`.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::fd::above_stdio;
use super::socket::poll_readable;

/// A process id.
pub(crate) type Pid = i32;

/// Which side of a `fork` we are on.
pub(crate) enum Forked {
    /// In the new child process.
    Child,
    /// In the parent; the child's pid.
    Parent(Pid),
}

/// `fork(2)`.
///
/// # Safety
/// When the calling process has other threads, the child may only call functions that
/// are async-signal-safe or that take no lock another thread could have held at the
/// moment of the fork. shmpool calls this from the pool's own thread only to start
/// the fork server, and from the single-threaded fork server to start workers.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: Delegated to the caller.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends this process at once, running no destructors and no `atexit` handlers.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// The calling process's id.
pub(crate) fn getpid() -> Pid {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// The parent process's id, or 0 when there is none.
pub(crate) fn getppid() -> Pid {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
}

/// Asks the kernel to SIGKILL this process when the thread that created it exits.
pub(crate) fn set_parent_death_kill() -> io::Result<()> {
    Ok(rustix::process::set_parent_process_death_signal(Some(
        rustix::process::Signal::KILL,
    ))?)
}

/// Sends `signal` to `pid`. Errors (the process is gone) are returned, not raised.
pub(crate) fn kill(pid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: `kill` has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens a pidfd for a process (a child, or a worker of ours), which becomes
/// readable when the process exits.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid 0"))?;
    above_stdio(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Sends SIGKILL to the process a pidfd refers to. Unlike `kill(pid)`, this can
/// never hit another process that reused the pid.
pub(crate) fn pidfd_kill(pidfd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::process::pidfd_send_signal(
        pidfd,
        rustix::process::Signal::KILL,
    )?)
}

/// Whether the process a pidfd refers to has ended (its pidfd is readable). True
/// as soon as it is dead, before anyone reaps it.
pub(crate) fn pidfd_exited(pidfd: BorrowedFd<'_>) -> bool {
    poll_readable(&[pidfd], Some(Duration::ZERO)).is_ok_and(|ready| ready[0])
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// It returned or called `exit` with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl ExitStatus {
    /// Packs the status into one word for shared memory: codes as themselves
    /// (0..=255), signals as 256 + signal.
    pub(crate) fn encode(self) -> u32 {
        match self {
            ExitStatus::Code(c) => (c & 0xff) as u32,
            ExitStatus::Signal(s) => 256 + s as u32,
        }
    }

    /// The inverse of [`ExitStatus::encode`].
    pub(crate) fn decode(word: u32) -> Self {
        if word >= 256 {
            ExitStatus::Signal((word - 256) as i32)
        } else {
            ExitStatus::Code(word as i32)
        }
    }
}

fn status_of(raw: i32) -> ExitStatus {
    if libc::WIFSIGNALED(raw) {
        ExitStatus::Signal(libc::WTERMSIG(raw))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(raw))
    }
}

/// Reaps `pid` if it has exited; `Ok(None)` if it is still running.
pub(crate) fn try_reap(pid: Pid) -> io::Result<Option<ExitStatus>> {
    let mut raw = 0;
    // SAFETY: `raw` is a valid out-pointer for the duration of the call.
    match unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) } {
        0 => Ok(None),
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(Some(status_of(raw))),
    }
}

/// Waits for `pid` to exit and reaps it.
pub(crate) fn reap(pid: Pid) -> io::Result<ExitStatus> {
    let mut raw = 0;
    loop {
        // SAFETY: `raw` is a valid out-pointer for the duration of the call.
        match unsafe { libc::waitpid(pid, &mut raw, 0) } {
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            _ => return Ok(status_of(raw)),
        }
    }
}

/// In a child of the pool (the fork server, a worker), opens `/dev/null` on each
/// standard stream (0, 1, 2) that is closed, so that a task's `println!` goes
/// nowhere instead of failing, and no descriptor the child opens can land there.
/// Async-signal-safe: callable right after `fork`.
pub(crate) fn open_missing_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries a descriptor number; a closed one gives EBADF.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        // SAFETY: open of a constant path; the lower numbers are open (checked in
        // order), so the lowest free number is `fd`, which the loop then owns.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if null >= 0 && null != fd {
            // SAFETY: `null` is the descriptor just opened; dup2 onto the closed
            // standard number, then close the extra one.
            unsafe {
                libc::dup2(null, fd);
                libc::close(null);
            }
        }
    }
}

/// Closes every descriptor from 3 up, except those in `keep`.
pub(crate) fn close_all_except(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep.iter().map(|&fd| fd as u32).collect();
    keep.sort_unstable();
    let mut from = 3u32;
    for &k in &keep {
        if k >= from {
            if k > from {
                close_range(from, k - 1);
            }
            from = k + 1;
        }
    }
    close_range(from, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range only closes descriptors; the callers own every descriptor
    // in the range by construction (a freshly forked single-threaded child).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r != 0 {
        // Kernels before 5.9: close one by one up to the soft limit.
        let max = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1024)
            .min(1 << 20) as u32;
        for fd in first..=last.min(max) {
            // SAFETY: see above.
            unsafe { libc::close(fd as i32) };
        }
    }
}

/// Clears `FD_CLOEXEC` so the descriptor survives `exec`.
pub(crate) fn clear_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?)
}

/// Takes ownership of a descriptor number inherited across `exec`.
///
/// # Safety
/// `fd` must be open and owned by nothing else in this process.
pub(crate) unsafe fn adopt_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: Delegated to the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Ignores SIGPIPE, as Rust's runtime does before `main`, so a closed socket is an
/// error code rather than a silent death.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Restores the default disposition of SIGCHLD, so `waitpid` sees our children even
/// if the application ignored the signal.
pub(crate) fn default_sigchld() {
    // SAFETY: see `ignore_sigpipe`.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
}

/// Unblocks every signal in the calling thread (a forked child inherits the mask
/// of the thread that forked).
pub(crate) fn unblock_all_signals() {
    // SAFETY: the set is initialised by sigemptyset before use.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut());
    }
}

/// Physical memory, in bytes (`sysinfo`); `None` if it cannot be read.
pub(crate) fn physical_memory() -> Option<u64> {
    // SAFETY: `info` is a valid, zeroed sysinfo struct for the duration of the call.
    unsafe {
        let mut info: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&mut info) != 0 {
            return None;
        }
        Some((info.totalram as u64).saturating_mul(u64::from(info.mem_unit.max(1))))
    }
}

/// Physical memory plus swap, in bytes (`sysinfo`); `None` if it cannot be read.
pub(crate) fn memory_and_swap() -> Option<u64> {
    // SAFETY: `info` is a valid, zeroed sysinfo struct for the duration of the call.
    unsafe {
        let mut info: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&mut info) != 0 {
            return None;
        }
        let unit = u64::from(info.mem_unit.max(1));
        Some(
            (info.totalram as u64)
                .saturating_add(info.totalswap as u64)
                .saturating_mul(unit),
        )
    }
}

/// The number of CPUs this process may run on (`sched_getaffinity`).
pub(crate) fn cpus_allowed() -> usize {
    // SAFETY: `set` is a valid, zeroed cpu_set_t for the duration of the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return n as usize;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads an environment variable with `getenv`, which works before Rust's runtime
/// has started (inside an `.init_array` constructor).
pub(crate) fn getenv_early(name: &CStr) -> Option<String> {
    // SAFETY: getenv reads the environment; no other thread exists this early in a
    // re-executed worker, so nothing modifies the environment concurrently.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returned a pointer to a NUL-terminated string.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Removes an environment variable before Rust's runtime has started.
pub(crate) fn unsetenv_early(name: &CStr) {
    // SAFETY: as for `getenv_early`: single-threaded at this point.
    unsafe { libc::unsetenv(name.as_ptr()) };
}
