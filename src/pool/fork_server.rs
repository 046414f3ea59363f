//! The parent's link to its fork server: one owner, [`ForkServer`], holds the socket
//! and the server's pid behind a lock that nothing else can take, and is the only way
//! to send it requests, see it die, or shut it down.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;
use crate::sys::{self, Pid};
use crate::worker::server::Request;

/// The parent's end of the fork server's socket.
#[derive(Debug)]
struct Link {
    sock: OwnedFd,
    pid: Pid,
}

/// The pool's fork server, once started. Its lock is taken alone: nothing else is
/// locked while it is held.
#[derive(Debug, Default)]
pub(crate) struct ForkServer {
    link: Mutex<Option<Link>>,
}

impl ForkServer {
    /// Keeps the link to a server just started (by the collector thread).
    pub(crate) fn connect(&self, sock: OwnedFd, pid: Pid) {
        *lock(&self.link) = Some(Link { sock, pid });
    }

    /// Sends a request (and descriptors) to the fork server.
    pub(crate) fn send(&self, req: Request, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        match lock(&self.link).as_ref() {
            Some(link) => sys::send_msg(link.sock.as_fd(), &req.to_bytes(), fds),
            None => Err(std::io::Error::other("no fork server")),
        }
    }

    /// Whether the server has died (and was reaped now); false when there is none.
    pub(crate) fn has_died(&self) -> bool {
        match lock(&self.link).as_ref() {
            Some(link) => !matches!(sys::try_reap(link.pid), Ok(None)),
            None => false,
        }
    }

    /// Whether the link is gone (shut down, or the server died).
    pub(crate) fn is_gone(&self) -> bool {
        lock(&self.link).is_none()
    }

    /// Forgets a server that died.
    pub(crate) fn forget(&self) {
        lock(&self.link).take();
    }

    /// Kills the server (which kills its workers, PDEATHSIG) and reaps it: the last
    /// resort when it did not stop on its own.
    pub(crate) fn kill(&self) {
        if let Some(link) = lock(&self.link).take() {
            let _ = sys::kill(link.pid, libc::SIGKILL);
            let _ = sys::reap(link.pid);
        }
    }

    /// Asks the server to exit and reaps it, killing it if it does not go within 2 s.
    pub(crate) fn shut_down(&self) {
        let Some(link) = lock(&self.link).take() else {
            return;
        };
        let _ = sys::send_msg(link.sock.as_fd(), &Request::Shutdown.to_bytes(), &[]);
        drop(link.sock);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match sys::try_reap(link.pid) {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    let _ = sys::kill(link.pid, libc::SIGKILL);
                    let _ = sys::reap(link.pid);
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}
