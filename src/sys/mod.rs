//! Every raw operating-system call shmpool makes, in one place.
//!
//! The rest of the crate never names `libc` or `rustix`: it calls the small,
//! documented functions here, by their paths in this module (`crate::sys::memfd`).
//! Linux only (memfd, futex, pidfd, `close_range`). Each file holds one kind of
//! call: [`mmap`] (memory files and shared mappings), [`futex`], [`clock`],
//! [`process`], [`socket`], [`shm_open`] (named shared memory), [`huge_pages`],
//! [`memory`] (memory limits and usage), [`cgroup`]; and [`page_kind`], the kind
//! of pages behind a mapping, which the calls and the errors name.

pub(crate) mod cgroup;
mod clock;
mod fd;
mod futex;
pub(crate) mod huge_pages;
mod memory;
mod mmap;
pub(crate) mod page_kind;
mod process;
mod shm_open;
mod socket;

pub(crate) use clock::{monotonic_ns, yield_now};
pub(crate) use futex::{futex_wait, futex_wake};
pub(crate) use memory::{
    Statm, data_hard_limit, is_descriptor_shortage, is_resource_shortage,
    record_allocation_failures, rename_env, resident_of, set_data_soft_limit,
    stop_recording_aborts, vm_data,
};
#[cfg(test)]
pub(crate) use mmap::pages_within;
pub(crate) use mmap::{
    MapOptions, check_file_size_limit, discard, fd_is_writable, file_len, free_space, map_shared,
    memfd, page_size, reserve, set_len, unmap,
};
pub(crate) use process::{
    ExitStatus, Forked, Pid, adopt_fd, clear_cloexec, close_all_except, cpus_allowed,
    default_sigchld, exit_now, fork, getenv_early, getpid, getppid, ignore_sigpipe, kill,
    memory_and_swap, open_missing_stdio, physical_memory, pidfd_exited, pidfd_kill, pidfd_open,
    reap, set_parent_death_kill, try_reap, unblock_all_signals, unsetenv_early,
};
pub(crate) use shm_open::{ShmMode, process_start_time, shm_open, shm_unlink};
pub(crate) use socket::{poll_readable, raw, recv_msg, send_msg, seqpacket_pair, set_send_buffer};
