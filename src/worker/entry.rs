//! Entering server or worker mode in a re-executed binary, before `main`.
//!
//! Under the `ForkServer` and `Spawn` start methods, the fork server (and, for
//! `Spawn`, each worker) is a fresh execution of the current binary
//! (`/proc/self/exe`). It must not run the user's `main`. A function in the
//! `.init_array` section runs when the binary is loaded, before `main`: if the
//! environment variable `__SHMPOOL_ROLE` is set, it removes it, runs the role, and
//! exits the process; otherwise it returns and the program starts as usual. The user
//! adds nothing to `main`.

use std::os::fd::{BorrowedFd, OwnedFd};

use super::role::{ROLE_VAR, ROLE_VAR_STR, Role, ServerArgs, StartKind, server_text};
use crate::sys;

/// Runs before `main` in every binary that links shmpool's spawn support.
extern "C" fn early_entry() {
    let Some(text) = sys::getenv_early(ROLE_VAR) else {
        return;
    };
    sys::unsetenv_early(ROLE_VAR);
    // A standard stream the parent ran without is /dev/null here (our descriptors
    // are all above 2, so none is taken).
    sys::open_missing_stdio();
    // SAFETY: the role text was written by our own parent process, which cleared
    // close-on-exec on exactly these descriptors for this process to adopt.
    match unsafe { Role::decode(&text) } {
        Some(Role::Server(args)) => super::server::server_main(args),
        Some(Role::Worker(args)) => super::worker_loop::worker_main(args),
        None => sys::exit_now(super::exit_code::BAD_SEGMENT),
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static EARLY_ENTRY: extern "C" fn() = early_entry;

/// Makes sure the linker keeps [`EARLY_ENTRY`]: called on every path that re-executes
/// the binary, so its object file is always part of such a binary.
pub(crate) fn keep_early_entry() {
    std::hint::black_box(&EARLY_ENTRY);
}

/// Starts the fork server as a re-execution of this binary. Returns its pid.
pub(crate) fn exec_server(
    ctrl: &OwnedFd,
    live: BorrowedFd<'_>,
    task_arena: BorrowedFd<'_>,
    sock: &OwnedFd,
    workers: StartKind,
) -> std::io::Result<sys::Pid> {
    use std::os::unix::process::CommandExt;
    keep_early_entry();
    let raw = [
        sys::raw(ctrl),
        sys::raw(&live),
        sys::raw(&task_arena),
        sys::raw(sock),
    ];
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("shmpool-server")
        .env(ROLE_VAR_STR, server_text(raw, sys::getpid(), workers));
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl,
    // which is async-signal-safe; it touches no lock and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for fd in raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(child.id() as sys::Pid)
}

/// Starts the fork server by forking the calling thread. Returns its pid.
///
/// # Safety
/// Call from the pool's own thread before it takes any lock: the child runs only
/// shmpool code, which takes no lock another thread of the parent could hold
/// (glibc's `fork` makes `malloc` safe in the child).
pub(crate) unsafe fn fork_server(
    ctrl: &OwnedFd,
    live: BorrowedFd<'_>,
    task_arena: BorrowedFd<'_>,
    sock: &OwnedFd,
    workers: StartKind,
) -> std::io::Result<sys::Pid> {
    let parent_pid = sys::getpid();
    // SAFETY: Delegated to the caller.
    match unsafe { sys::fork() }? {
        sys::Forked::Child => {
            sys::open_missing_stdio();
            sys::close_all_except(&[
                sys::raw(ctrl),
                sys::raw(&live),
                sys::raw(&task_arena),
                sys::raw(sock),
            ]);
            let (Ok(c), Ok(l), Ok(a), Ok(s)) = (
                ctrl.try_clone(),
                live.try_clone_to_owned(),
                task_arena.try_clone_to_owned(),
                sock.try_clone(),
            ) else {
                sys::exit_now(super::exit_code::SPAWN_FAILED);
            };
            super::server::server_main(ServerArgs {
                ctrl: c,
                live: l,
                task_arena: a,
                sock: s,
                parent_pid,
                workers,
                reexec: false,
            })
        }
        sys::Forked::Parent(pid) => Ok(pid),
    }
}
