//! The roles a process of the pool starts in (the fork server, a worker), what each
//! starts from, and the text form of a role that a re-executed binary finds in its
//! environment (`src/worker/entry.rs`).

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use crate::sys::{self, Pid};

/// The environment variable that carries a role.
pub(crate) const ROLE_VAR: &CStr = c"__SHMPOOL_ROLE";
/// The same name as a `str`, for `Command::env`.
pub(crate) const ROLE_VAR_STR: &str = "__SHMPOOL_ROLE";

/// How the fork server starts workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartKind {
    /// `fork` from the (single-threaded) server.
    Fork,
    /// `fork` then `exec` of the binary in worker mode.
    Exec,
}

/// Everything the server starts from.
#[derive(Debug)]
pub(crate) struct ServerArgs {
    /// The pool's control segment.
    pub ctrl: OwnedFd,
    /// The parent's liveness table.
    pub live: OwnedFd,
    /// The pool's task arena.
    pub task_arena: OwnedFd,
    /// The server's end of the socket to the parent.
    pub sock: OwnedFd,
    /// The parent's pid.
    pub parent_pid: Pid,
    /// How to start workers.
    pub workers: StartKind,
    /// Whether the server itself was re-executed.
    pub reexec: bool,
}

/// Everything a worker process starts from.
#[derive(Debug)]
pub(crate) struct WorkerArgs {
    /// The pool's control segment.
    pub ctrl: OwnedFd,
    /// The parent's liveness table.
    pub live: OwnedFd,
    /// The pool's task arena (arguments too large for a ring slot).
    pub task_arena: OwnedFd,
    /// This worker's result arena.
    pub result_arena: OwnedFd,
    /// This worker's end of its channel from the parent.
    pub channel: OwnedFd,
    /// Worker slot index.
    pub slot: u32,
    /// This process's generation in the slot (`crate::slot`).
    pub generation: u32,
    /// The fork server, this worker's parent.
    pub server_pid: Pid,
    /// Whether this process was re-executed (Spawn start method).
    pub reexec: bool,
}

/// A role for a re-executed process.
#[derive(Debug)]
pub(crate) enum Role {
    /// Run the fork server.
    Server(ServerArgs),
    /// Run a worker.
    Worker(WorkerArgs),
}

impl Role {
    /// The text form put in the environment: comma-separated numbers.
    pub(crate) fn encode(&self) -> String {
        match self {
            Role::Server(a) => server_text(
                [
                    sys::raw(&a.ctrl),
                    sys::raw(&a.live),
                    sys::raw(&a.task_arena),
                    sys::raw(&a.sock),
                ],
                a.parent_pid,
                a.workers,
            ),
            Role::Worker(a) => format!(
                "worker,{},{},{},{},{},{},{},{}",
                sys::raw(&a.ctrl),
                sys::raw(&a.live),
                sys::raw(&a.task_arena),
                sys::raw(&a.result_arena),
                sys::raw(&a.channel),
                a.slot,
                a.generation,
                a.server_pid
            ),
        }
    }

    /// Parses the text form, taking ownership of the descriptors it names.
    ///
    /// # Safety
    /// The descriptor numbers must be open in this process and owned by nothing else
    /// (they were inherited across `exec` for exactly this purpose).
    pub(crate) unsafe fn decode(text: &str) -> Option<Role> {
        let parts: Vec<&str> = text.split(',').collect();
        let num = |i: usize| parts.get(i)?.parse::<i32>().ok();
        let fd = |i: usize| {
            num(i).filter(|&n| n > 2).map(|n| {
                // SAFETY: Delegated to the caller.
                unsafe { sys::adopt_fd(n) }
            })
        };
        match *parts.first()? {
            "server" if parts.len() == 7 => Some(Role::Server(ServerArgs {
                ctrl: fd(1)?,
                live: fd(2)?,
                task_arena: fd(3)?,
                sock: fd(4)?,
                parent_pid: num(5)?,
                workers: match parts[6] {
                    "fork" => StartKind::Fork,
                    "exec" => StartKind::Exec,
                    _ => return None,
                },
                reexec: true,
            })),
            "worker" if parts.len() == 9 => Some(Role::Worker(WorkerArgs {
                ctrl: fd(1)?,
                live: fd(2)?,
                task_arena: fd(3)?,
                result_arena: fd(4)?,
                channel: fd(5)?,
                slot: num(6)? as u32,
                generation: parts[7].parse().ok()?,
                server_pid: num(8)?,
                reexec: true,
            })),
            _ => None,
        }
    }
}

/// The text form of a server role, from the raw descriptor numbers (shared with
/// `entry::exec_server`, which has the descriptors only borrowed).
pub(crate) fn server_text(fds: [i32; 4], parent_pid: Pid, workers: StartKind) -> String {
    let workers = match workers {
        StartKind::Fork => "fork",
        StartKind::Exec => "exec",
    };
    let [ctrl, live, arena, sock] = fds;
    format!("server,{ctrl},{live},{arena},{sock},{parent_pid},{workers}")
}
