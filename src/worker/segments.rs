//! A worker's cache of mapped array segments, fed by its channel from the parent.
//!
//! The parent sends each segment once per worker, as a message carrying the
//! descriptor (SCM_RIGHTS) and a [`ShipInfo`], before it publishes a job that uses
//! it. The worker maps it when the message arrives, and keeps the mapping until the
//! liveness table says the array is gone: it checks before it goes to sleep, when a
//! retirement wakes it (`src/worker/idle.rs`), and between records whenever the table's
//! retirement epoch moved.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::shm::liveness::{LivenessView, Table};
use crate::shm::{ShipInfo, WorkerMapping};
use crate::sys;

/// The cache.
#[derive(Debug)]
pub(crate) struct SegmentCache {
    channel: OwnedFd,
    live: LivenessView,
    maps: HashMap<u64, WorkerMapping>,
    /// The retirement epoch at the last check.
    checked_epoch: u64,
}

/// The parent closed the channel: it is gone, and the worker should exit.
#[derive(Debug)]
pub(crate) struct ParentGone;

impl SegmentCache {
    /// A cache reading from `channel`, checking liveness in `live`.
    pub(crate) fn new(channel: OwnedFd, live: LivenessView) -> Self {
        SegmentCache {
            channel,
            live,
            maps: HashMap::new(),
            checked_epoch: 0,
        }
    }

    /// The mapping of segment `id`, reading pending messages if it is not cached yet.
    pub(crate) fn get(&mut self, id: u64) -> Result<Option<&WorkerMapping>, ParentGone> {
        if !self.maps.contains_key(&id) {
            self.drain()?;
        }
        Ok(self.maps.get(&id))
    }

    /// Maps every segment waiting in the channel.
    pub(crate) fn drain(&mut self) -> Result<(), ParentGone> {
        let mut buf = [0u8; 64];
        loop {
            match sys::recv_msg(self.channel.as_fd(), &mut buf, true) {
                Ok((0, fds)) if fds.is_empty() => return Err(ParentGone),
                Ok((n, fds)) => {
                    let (Some(info), Some(fd)) = (ShipInfo::from_bytes(&buf[..n]), fds.first())
                    else {
                        continue; // not a segment message: ignore it
                    };
                    if self.live.table().is_alive(info.live, info.id) {
                        match WorkerMapping::map(fd.as_fd(), info) {
                            Ok(m) => {
                                self.maps.insert(info.id, m);
                            }
                            // Out of memory or address space: the job that needs the
                            // segment reports it as missing.
                            Err(_) => continue,
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ParentGone),
            }
        }
    }

    /// Picks up new segments, and lets go of the arrays the parent has dropped:
    /// unmaps them, and closes any descriptor of one still in the channel. Returns
    /// the retirement epoch through which it holds nothing dropped.
    pub(crate) fn housekeep(&mut self) -> Result<u64, ParentGone> {
        // The epoch first. Every array retired by then was shipped before its
        // retirement, so its message is in the channel now: `drain` closes its
        // descriptor (it maps only live segments), and `drop_dead` unmaps it.
        let epoch = self.live.table().epoch();
        self.drain()?;
        self.drop_dead(epoch);
        Ok(epoch)
    }

    /// Between records: one atomic load, and the mappings of dropped arrays go as
    /// soon as the parent has dropped any, even if this worker is never idle.
    pub(crate) fn drop_dead_if_any_retired(&mut self) {
        let epoch = self.live.table().epoch();
        if epoch != self.checked_epoch {
            self.drop_dead(epoch);
        }
    }

    /// The liveness table, for the idle worker's wake-up sources (`src/worker/idle.rs`).
    pub(crate) fn table(&self) -> Table<'_> {
        self.live.table()
    }

    /// The retirement epoch at the last check of the mappings: a retirement since
    /// moved the table's epoch away from it.
    pub(crate) fn checked_epoch(&self) -> u64 {
        self.checked_epoch
    }

    /// Unmaps the arrays dead by `epoch`, which the caller read before this (a
    /// retirement after that load moves the epoch again).
    fn drop_dead(&mut self, epoch: u64) {
        self.checked_epoch = epoch;
        let table = self.live.table();
        self.maps
            .retain(|_, m| table.is_alive(m.info().live, m.info().id));
    }
}
