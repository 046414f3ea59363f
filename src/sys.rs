//! Every raw operating-system call shmpool makes, in one place.
//!
//! The rest of the crate never names `libc` or `rustix`: it calls the small,
//! documented functions here. Linux only (memfd, futex, pidfd, `close_range`).

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::mm::{Advice, MapFlags, ProtFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::thread::futex;

pub(crate) mod cgroup;
mod memory;
pub(crate) mod pages;
pub(crate) use memory::{
    Statm, data_hard_limit, is_descriptor_shortage, is_resource_shortage,
    record_allocation_failures, rename_env, resident_of, set_data_soft_limit,
    stop_recording_aborts, vm_data,
};

// ───────────────────────────── memory ─────────────────────────────

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

// ───────────────────────────── futex ─────────────────────────────

/// Sleeps while `*word == expected`, for at most `timeout`.
///
/// A *shared* futex: no `FUTEX_PRIVATE_FLAG`, so waiters and wakers may live in
/// different processes that map the same memory. Returns early on a wake-up, a
/// signal, or when the word no longer holds `expected`.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    // Every outcome (woken, EAGAIN because the word changed, EINTR, ETIMEDOUT) means
    // "look again", which every caller does.
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes up to `n` waiters sleeping on `word`, in any process.
///
/// `n` is clamped to `i32::MAX`: the kernel reads the count as a signed int, and
/// `u32::MAX` would mean -1, which wakes only one (DESIGN.md §8).
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), n.min(i32::MAX as u32));
}

// ───────────────────────────── time ─────────────────────────────

/// Nanoseconds on `CLOCK_MONOTONIC`, a clock every process on the machine shares.
pub(crate) fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Gives up the CPU to another runnable thread.
pub(crate) fn yield_now() {
    rustix::thread::sched_yield();
}

// ───────────────────────────── processes ─────────────────────────────

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

// ───────────────────────────── sockets ─────────────────────────────

/// A connected pair of `SOCK_SEQPACKET` Unix sockets: message boundaries are kept
/// and each message may carry descriptors.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((above_stdio(a)?, above_stdio(b)?))
}

/// Sends one message with the given descriptors attached (SCM_RIGHTS).
pub(crate) fn send_msg(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors",
        ));
    }
    let iov = [io::IoSlice::new(bytes)];
    loop {
        match rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one message and the descriptors that came with it. An empty message
/// with no descriptors means the peer closed its end.
pub(crate) fn recv_msg(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    nonblocking: bool,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    let n = loop {
        let mut iov = [io::IoSliceMut::new(buf)];
        match rustix::net::recvmsg(sock, &mut iov, &mut control, flags) {
            Ok(m) => break m.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    let fds = fds
        .into_iter()
        .map(above_stdio)
        .collect::<io::Result<_>>()?;
    Ok((n, fds))
}

/// Waits until one of `fds` is readable or hung up; returns the readiness of each.
pub(crate) fn poll_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    match rustix::event::poll(&mut pfds, ts.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(pfds.iter().map(|p| !p.revents().is_empty()).collect())
}

/// Sets the send buffer of a socket, so bursts of small messages do not block.
pub(crate) fn set_send_buffer(sock: BorrowedFd<'_>, bytes: usize) {
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(sock, bytes);
}

/// The raw number of a descriptor (for passing across `exec`).
pub(crate) fn raw(fd: &impl AsFd) -> RawFd {
    fd.as_fd().as_raw_fd()
}

// ───────────────────────────── named shared memory ─────────────────────────────

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
