//! The fork server: the single-threaded process that starts and reaps workers.
//!
//! By the time a worker needs replacing, the parent is multi-threaded (the pool's
//! collector thread, and whatever the application runs), and a child forked from a
//! multi-threaded process inherits every lock another thread held at that instant.
//! So the parent never forks workers itself. It starts this server once, when the
//! pool is built, and from then on asks it over a socket: "start generation g of a
//! worker in slot i". The server is the workers' parent: it reaps them and writes
//! each exit status into the worker's slot in shared memory, moving the slot to
//! `Exited` only if generation g still owns it (`crate::slot`), then wakes the
//! collector. (Timeouts are enforced by the parent itself through a pidfd, so a
//! stopped server cannot delay them.) It exits (killing its workers) when the parent's end of the socket
//! closes, which happens when the pool is dropped or the parent dies.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;

use super::exit_code;
use super::role::{ROLE_VAR_STR, Role, ServerArgs, StartKind, WorkerArgs};
use crate::layout::ControlView;
use crate::shm::Mapping;
use crate::sys::{self, ExitStatus, MapOptions, Pid};

/// A request from the parent, 16 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// Start generation `generation` of the worker in this slot; the message carries
    /// the worker's channel end and its result arena.
    Spawn { slot: u32, generation: u32 },
    /// Kill every worker, reap them, and exit.
    Shutdown,
}

impl Request {
    /// The wire form.
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        let (op, a, b) = match self {
            Request::Spawn { slot, generation } => (1u32, slot, generation),
            Request::Shutdown => (3, 0, 0),
        };
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&op.to_le_bytes());
        out[4..8].copy_from_slice(&a.to_le_bytes());
        out[8..12].copy_from_slice(&b.to_le_bytes());
        out
    }

    /// Parses the wire form.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 16 {
            return None;
        }
        let w = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        match w(0) {
            1 => Some(Request::Spawn {
                slot: w(4),
                generation: w(8),
            }),
            3 => Some(Request::Shutdown),
            _ => None,
        }
    }
}

struct Child {
    slot: u32,
    generation: u32,
    pid: Pid,
    pidfd: OwnedFd,
}

/// Runs the server until the parent goes away; never returns.
pub(crate) fn server_main(args: ServerArgs) -> ! {
    if sys::set_parent_death_kill().is_err() || sys::getppid() != args.parent_pid {
        sys::exit_now(exit_code::ORPHANED);
    }
    sys::unblock_all_signals();
    sys::default_sigchld();
    sys::ignore_sigpipe();
    if args.reexec {
        // A fresh, single-threaded process: the panic hook that workers switch to
        // recording (`src/unwind.rs`) must exist before the first worker is forked
        // from here, or a ForkServer worker's panics lose their location.
        crate::unwind::install_hook();
    }
    let Some((_map, ctrl)) = map_control(&args) else {
        sys::exit_now(exit_code::BAD_SEGMENT);
    };
    let mut children: Vec<Child> = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let mut fds = vec![args.sock.as_fd()];
        fds.extend(children.iter().map(|c| c.pidfd.as_fd()));
        let Ok(ready) = sys::poll_readable(&fds, None) else {
            shutdown(&ctrl, &mut children)
        };
        drop(fds);
        if ready[0] {
            match sys::recv_msg(args.sock.as_fd(), &mut buf, false) {
                Ok((n, received)) if n > 0 => match Request::from_bytes(&buf[..n]) {
                    Some(Request::Spawn { slot, generation }) => {
                        let mut fds = received.into_iter();
                        if let (Some(channel), Some(results)) = (fds.next(), fds.next()) {
                            let start = Start {
                                slot,
                                generation,
                                channel,
                                results,
                            };
                            spawn(&args, &ctrl, start, &mut children);
                        } else if slot < ctrl.dims().slots {
                            // The descriptors did not arrive (EMFILE here truncates the
                            // message): no process can start, so say so rather than
                            // leave the slot starting forever.
                            let failed = ExitStatus::Code(exit_code::SPAWN_FAILED);
                            report_exit(&ctrl, slot, generation, failed);
                        }
                    }
                    Some(Request::Shutdown) | None => shutdown(&ctrl, &mut children),
                },
                // End of file: the parent dropped the pool or died.
                Ok(_) => shutdown(&ctrl, &mut children),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => shutdown(&ctrl, &mut children),
            }
        }
        let mut i = 0;
        while i < children.len() {
            if ready.get(i + 1).copied().unwrap_or(false) {
                if let Ok(Some(status)) = sys::try_reap(children[i].pid) {
                    let c = children.swap_remove(i);
                    report_exit(&ctrl, c.slot, c.generation, status);
                    continue;
                }
            }
            i += 1;
        }
    }
}

fn map_control(args: &ServerArgs) -> Option<(Mapping, ControlView)> {
    let len = sys::file_len(args.ctrl.as_fd()).ok()? as usize;
    let map = Mapping::new(
        args.ctrl.as_fd(),
        len,
        MapOptions {
            writable: true,
            dont_fork: true,
        },
    )
    .ok()?;
    // SAFETY: the control segment mapped above, kept alive by the returned Mapping for
    // as long as the view (the server never returns).
    let view = unsafe { ControlView::open(map.ptr(), map.len()) }.ok()?;
    if args.reexec && view.header().code_fingerprint != crate::kernel::fingerprint() {
        return None;
    }
    Some((map, view))
}

/// One spawn request: which process to start, and its descriptors.
struct Start {
    slot: u32,
    generation: u32,
    channel: OwnedFd,
    results: OwnedFd,
}

fn spawn(args: &ServerArgs, ctrl: &ControlView, start: Start, children: &mut Vec<Child>) {
    let Start {
        slot,
        generation,
        channel,
        results,
    } = start;
    if slot >= ctrl.dims().slots {
        return;
    }
    let server_pid = sys::getpid();
    // SAFETY: the server is single-threaded, so the child may run any code.
    match unsafe { sys::fork() } {
        Ok(sys::Forked::Child) => {
            let keep = [
                args.ctrl.as_raw_fd(),
                args.live.as_raw_fd(),
                args.task_arena.as_raw_fd(),
                channel.as_raw_fd(),
                results.as_raw_fd(),
            ];
            sys::close_all_except(&keep);
            let (Ok(ctrl_fd), Ok(live_fd), Ok(task_arena)) = (
                args.ctrl.try_clone(),
                args.live.try_clone(),
                args.task_arena.try_clone(),
            ) else {
                sys::exit_now(exit_code::SPAWN_FAILED);
            };
            let worker = WorkerArgs {
                ctrl: ctrl_fd,
                live: live_fd,
                task_arena,
                result_arena: results,
                channel,
                slot,
                generation,
                server_pid,
                reexec: args.workers == StartKind::Exec,
            };
            match args.workers {
                StartKind::Fork => super::worker_loop::worker_main(worker),
                StartKind::Exec => exec_worker(worker),
            }
        }
        Ok(sys::Forked::Parent(pid)) => {
            ctrl.slot(slot as usize).record_forked_pid(pid);
            match sys::pidfd_open(pid) {
                Ok(pidfd) => children.push(Child {
                    slot,
                    generation,
                    pid,
                    pidfd,
                }),
                Err(_) => {
                    // Cannot watch it: make sure it is gone and report the failure.
                    let _ = sys::kill(pid, libc::SIGKILL);
                    let _ = sys::reap(pid);
                    let failed = ExitStatus::Code(exit_code::SPAWN_FAILED);
                    report_exit(ctrl, slot, generation, failed);
                }
            }
        }
        Err(_) => {
            let failed = ExitStatus::Code(exit_code::SPAWN_FAILED);
            report_exit(ctrl, slot, generation, failed)
        }
    }
}

/// Replaces this (freshly forked) process with a re-execution of the binary in
/// worker mode.
fn exec_worker(w: WorkerArgs) -> ! {
    for fd in [&w.ctrl, &w.live, &w.task_arena, &w.result_arena, &w.channel] {
        if sys::clear_cloexec(fd.as_fd()).is_err() {
            sys::exit_now(exit_code::SPAWN_FAILED);
        }
    }
    let role = Role::Worker(w);
    let err = std::process::Command::new("/proc/self/exe")
        .arg0("shmpool-worker")
        .env(ROLE_VAR_STR, role.encode())
        .exec();
    let _ = err;
    sys::exit_now(exit_code::SPAWN_FAILED)
}

/// Reports the end of process `generation` of `slot`. If the collector reported it
/// first (it killed the process and saw it die), the transition fails and changes
/// nothing; the `exit_status` written here is then either the same status or
/// overwritten by the slot's next process before its own `Exited` is published.
fn report_exit(ctrl: &ControlView, slot: u32, generation: u32, status: ExitStatus) {
    // The transition (SYNC G1, Release) publishes the exit status and, through the
    // process's death, every store the dead worker made (SYNC F1).
    let _ = ctrl.slot(slot as usize).report_exit(generation, status);
    ctrl.header().completions.notify(1);
}

fn shutdown(ctrl: &ControlView, children: &mut Vec<Child>) -> ! {
    for c in children.iter() {
        let _ = sys::kill(c.pid, libc::SIGKILL);
    }
    for c in children.drain(..) {
        if let Ok(status) = sys::reap(c.pid) {
            report_exit(ctrl, c.slot, c.generation, status);
        }
    }
    sys::exit_now(0)
}
