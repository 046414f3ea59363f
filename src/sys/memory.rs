//! The system calls of the memory controls: a worker's data limit (`RLIMIT_DATA`),
//! the SIGABRT handler that records an allocation failure, and the kernel's counts
//! of a process's memory under `/proc`.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use super::process::Pid;

// ───────────────────────────── the data limit ─────────────────────────────

/// This process's `RLIMIT_DATA` hard limit in bytes, `None` when unlimited.
pub(crate) fn data_hard_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Data).maximum
}

/// Sets this process's `RLIMIT_DATA` soft limit to `bytes`, keeping the hard limit.
/// From then on an `mmap`, `brk` or `mremap` that would take the process's private
/// writable mappings (`VmData`) above `bytes` fails with `ENOMEM`.
pub(crate) fn set_data_soft_limit(bytes: u64) -> io::Result<()> {
    let current = rustix::process::getrlimit(rustix::process::Resource::Data);
    let limit = rustix::process::Rlimit {
        current: Some(bytes),
        maximum: current.maximum,
    };
    Ok(rustix::process::setrlimit(
        rustix::process::Resource::Data,
        limit,
    )?)
}

/// This process's `VmData` in bytes (`/proc/self/status`): its private writable
/// mappings, the memory `RLIMIT_DATA` counts (Linux 4.7 and later).
pub(crate) fn vm_data() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmData:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmData in /proc/self/status"))
}

// ───────────────────────────── running out ─────────────────────────────

/// Whether `e` says that a resource a process holds ran out: descriptors
/// (`EMFILE`, `ENFILE`), memory or address space (`ENOMEM`, which `mmap` also
/// returns under `RLIMIT_AS` and at `vm.max_map_count`), or room in a file system
/// (`ENOSPC`).
pub(crate) fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOSPC)
    )
}

/// Whether `e` says that descriptors ran out (`EMFILE`: this process's
/// `RLIMIT_NOFILE`; `ENFILE`: the system's table).
pub(crate) fn is_descriptor_shortage(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

// ───────────────────────────── resident memory ─────────────────────────────

/// A process's resident memory, as `/proc/PID/statm` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Resident {
    /// Resident pages that are not shared: `resident − shared`, the process's
    /// anonymous resident pages (`RssAnon`), in bytes. Under `fork`, pages inherited
    /// and not yet written are counted here in each process that maps them.
    pub private: u64,
    /// Resident pages of files and shared memory (`RssFile + RssShmem`), in bytes.
    pub shared: u64,
}

/// `/proc/PID/statm`, kept open and read again with `pread` (a read from offset 0
/// makes the kernel format the file afresh).
#[derive(Debug)]
pub(crate) struct Statm {
    file: File,
}

impl Statm {
    /// This process's `statm`.
    pub(crate) fn open_self() -> io::Result<Statm> {
        Ok(Statm {
            file: File::open("/proc/self/statm")?,
        })
    }

    /// Process `pid`'s `statm`.
    pub(crate) fn open(pid: Pid) -> io::Result<Statm> {
        Ok(Statm {
            file: File::open(format!("/proc/{pid}/statm"))?,
        })
    }

    /// Reads it now: one `pread` into a buffer on the stack.
    pub(crate) fn read(&self) -> io::Result<Resident> {
        let mut buf = [0u8; 160];
        let n = self.file.read_at(&mut buf, 0)?;
        parse_statm(&buf[..n], super::mmap::page_size() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected statm"))
    }
}

/// Parses `size resident shared text lib data dt` (pages).
fn parse_statm(text: &[u8], page: u64) -> Option<Resident> {
    let mut fields = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .map(|f| std::str::from_utf8(f).ok()?.parse::<u64>().ok());
    let _size = fields.next()??;
    let resident = fields.next()??;
    let shared = fields.next()??;
    Some(Resident {
        private: resident.saturating_sub(shared) * page,
        shared: shared * page,
    })
}

/// Process `pid`'s resident memory, `None` if it is gone (or `/proc` is not there).
pub(crate) fn resident_of(pid: Pid) -> Option<Resident> {
    Statm::open(pid).ok()?.read().ok()
}

// ───────────────────────────── failed allocations ─────────────────────────────

/// Where the SIGABRT handler records an allocation failure: a worker slot's
/// `memory_limit_hit`, or null when no handler should write anywhere.
static ABORT_FLAG: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());

/// The SIGABRT handler. Rust aborts a process whose allocation failed (after
/// printing "memory allocation of N bytes failed"); the failed `mmap`, `brk` or
/// `mremap` left `errno` at `ENOMEM`, and neither that message's `write` nor
/// `abort` changes it when they succeed. So `errno == ENOMEM` at entry means an
/// allocation failed, which under `RLIMIT_DATA` means the limit was hit.
///
/// Only async-signal-safe operations: a read of `errno`, atomic loads and stores,
/// `sigaction`, `raise`.
extern "C" fn on_abort(_signal: libc::c_int) {
    // SAFETY: `__errno_location` returns this thread's errno, valid for the thread's
    // life; reading it is async-signal-safe.
    let errno = unsafe { *libc::__errno_location() };
    // Relaxed: the pointer was stored by the worker's thread before any task ran,
    // which happens-before this handler on that thread or on any thread a task
    // started.
    let flag = ABORT_FLAG.load(Ordering::Relaxed);
    if errno == libc::ENOMEM && !flag.is_null() {
        // SAFETY: non-null only while the control segment holding the flag is mapped
        // (`stop_recording_aborts` clears it before the worker unmaps it).
        let flag = unsafe { &*flag };
        // SYNC(W13): Release — pairs with the collector's Acquire load after the death
        // (`Collector::cause_of`); the process's death, reported through SYNC F1/G1,
        // orders it already, so this is margin.
        flag.store(1, Ordering::Release);
    }
    // SAFETY: a zeroed sigaction is a valid argument; with SIG_DFL restored, the
    // SIGABRT raised here (pending until the handler returns, as the signal is
    // blocked while its handler runs) ends the process as the abort meant to.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGABRT, &default, std::ptr::null_mut());
        libc::raise(libc::SIGABRT);
    }
}

/// Installs the SIGABRT handler that sets `flag` to 1 when the process aborts
/// after a failed allocation (`errno == ENOMEM`), then dies of SIGABRT as before.
///
/// # Safety
/// `flag` must stay valid until [`stop_recording_aborts`] is called.
pub(crate) unsafe fn record_allocation_failures(flag: &AtomicU32) -> io::Result<()> {
    ABORT_FLAG.store(std::ptr::from_ref(flag).cast_mut(), Ordering::Relaxed);
    // SAFETY: `action` is a valid, fully initialised sigaction whose handler is an
    // `extern "C" fn(c_int)` that uses only async-signal-safe operations.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_abort as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut())
    };
    if rc != 0 {
        ABORT_FLAG.store(std::ptr::null_mut(), Ordering::Relaxed);
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the SIGABRT handler record nothing from now on (the flag's memory is about
/// to be unmapped).
pub(crate) fn stop_recording_aborts() {
    ABORT_FLAG.store(std::ptr::null_mut(), Ordering::Relaxed);
}

// ───────────────────────────── the environment ─────────────────────────────

unsafe extern "C" {
    /// The C library's environment: a null-terminated array of `NAME=value` strings.
    static mut environ: *mut *mut libc::c_char;
}

/// Renames environment variable `from` to `to`, keeping its value, or removes
/// `from` if `to` is set already. It edits the `environ` array in place (one
/// pointer replaced, or the rest moved down), taking no lock: the C library's
/// `setenv` lock, or std's, may be held forever in a process forked from a
/// threaded one.
///
/// # Safety
/// The process must be single-threaded (nothing else reads or writes the
/// environment during the call).
pub(crate) unsafe fn rename_env(from: &CStr, to: &CStr) {
    let matches = |entry: *const libc::c_char, name: &CStr| {
        // SAFETY: every entry of `environ` is a NUL-terminated string.
        let entry = unsafe { CStr::from_ptr(entry) }.to_bytes();
        let name = name.to_bytes();
        entry.len() > name.len() && entry.starts_with(name) && entry[name.len()] == b'='
    };
    // SAFETY: single-threaded (the caller's promise): nobody else touches the
    // array while we read and edit it; it ends with a null pointer.
    unsafe {
        let env = environ;
        if env.is_null() {
            return;
        }
        let mut found = None;
        let mut to_set = false;
        let mut n = 0;
        while !(*env.add(n)).is_null() {
            let entry = *env.add(n);
            if matches(entry, from) && found.is_none() {
                found = Some(n);
            }
            to_set |= matches(entry, to);
            n += 1;
        }
        let Some(i) = found else { return };
        if to_set {
            // Remove: move the rest (and the terminating null) down by one.
            std::ptr::copy(env.add(i + 1), env.add(i), n - i);
            return;
        }
        let entry = CStr::from_ptr(*env.add(i)).to_bytes();
        let value = &entry[from.to_bytes().len() + 1..];
        let mut renamed = to.to_bytes().to_vec();
        renamed.push(b'=');
        renamed.extend_from_slice(value);
        if let Ok(renamed) = std::ffi::CString::new(renamed) {
            // Never freed: the environment keeps pointing to it.
            *env.add(i) = renamed.into_raw();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_is_parsed_into_private_and_shared_bytes() {
        let r = parse_statm(b"5000 1200 200 100 0 900 0\n", 4096).unwrap();
        assert_eq!(r.private, 1000 * 4096);
        assert_eq!(r.shared, 200 * 4096);
        assert_eq!(parse_statm(b"", 4096), None);
        assert_eq!(parse_statm(b"12 x 3", 4096), None);
    }

    #[test]
    fn our_own_statm_and_vm_data_read() {
        let own = Statm::open_self().unwrap().read().unwrap();
        assert!(own.private > 0 && own.shared > 0);
        assert!(vm_data().unwrap() > 0);
        assert!(resident_of(i32::MAX).is_none());
    }
}
