//! Shipping array segments to workers: one channel per worker process (a Unix
//! socket, descriptors sent with `SCM_RIGHTS`), what each was sent, and the segments
//! running jobs use, so that a worker started mid-job gets them too. One owner,
//! [`Shipper`], whose lock nothing else can take.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use super::stats::{ArrayPages, Counters};
use crate::error::{Error, Result};
use crate::shm::liveness::Liveness;
use crate::shm::{PageKind, Segment};
use crate::sync::lock;
use crate::sys;

/// The channel to one worker, and what it has been sent.
#[derive(Debug)]
struct Channel {
    sock: OwnedFd,
    /// Segment id → its liveness word, data bytes and pages, for every segment sent
    /// to this worker.
    shipped: HashMap<u64, (u32, u64, PageKind)>,
}

/// Segments in use by running jobs, and the channels to send them on.
#[derive(Debug)]
struct State {
    channels: Vec<Option<Channel>>,
    active: HashMap<u64, (Arc<Segment>, usize)>,
}

/// The pool's channels to its workers and the segments its jobs use. Its lock is
/// taken alone: nothing else is locked while it is held.
#[derive(Debug)]
pub(crate) struct Shipper {
    state: Mutex<State>,
    /// The process-wide liveness table of array segments.
    live: &'static Liveness,
}

impl Shipper {
    /// No channels yet, for `slots` worker slots.
    pub(crate) fn new(slots: usize, live: &'static Liveness) -> Self {
        Shipper {
            state: Mutex::new(State {
                channels: (0..slots).map(|_| None).collect(),
                active: HashMap::new(),
            }),
            live,
        }
    }

    /// The liveness table (its memfd goes to the fork server).
    pub(crate) fn liveness(&self) -> &'static Liveness {
        self.live
    }

    /// Opens the channel to the process about to start in `slot`, and sends it the
    /// segments of the jobs running now.
    pub(crate) fn open_channel(&self, slot: usize, sock: OwnedFd, counters: &Counters) {
        let mut state = lock(&self.state);
        let mut channel = Channel {
            sock,
            shipped: HashMap::new(),
        };
        let active: Vec<Arc<Segment>> = state.active.values().map(|(s, _)| Arc::clone(s)).collect();
        for seg in &active {
            ship(&mut channel, seg, self.live, counters);
        }
        state.channels[slot] = Some(channel);
    }

    /// Closes the channel of a worker that exited.
    pub(crate) fn close_channel(&self, slot: usize) {
        lock(&self.state).channels[slot] = None;
    }

    /// Sends `segments` to every worker that does not have them yet, and keeps them
    /// ready for workers started while the job runs.
    pub(crate) fn ship_for_job(
        &self,
        segments: &[&Arc<Segment>],
        counters: &Counters,
    ) -> Result<()> {
        // Register liveness words first (outside the lock: it may allocate the table).
        for seg in segments {
            seg.ship_info()
                .map_err(Error::io("registering an array with the pool"))?;
        }
        let mut state = lock(&self.state);
        for seg in segments {
            state
                .active
                .entry(seg.id())
                .or_insert_with(|| (Arc::clone(seg), 0))
                .1 += 1;
        }
        for channel in state.channels.iter_mut().flatten() {
            for seg in segments {
                ship(channel, seg, self.live, counters);
            }
        }
        Ok(())
    }

    /// Releases what [`Shipper::ship_for_job`] kept.
    pub(crate) fn unship_after_job(&self, segments: &[&Arc<Segment>]) {
        let mut state = lock(&self.state);
        for seg in segments {
            if let Some(entry) = state.active.get_mut(&seg.id()) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    state.active.remove(&seg.id());
                }
            }
        }
    }

    /// The data of every array shipped to a worker and not dropped yet, and of every
    /// array a running job uses (each array once, however many workers map it), by
    /// the pages behind it.
    pub(crate) fn array_pages(&self) -> ArrayPages {
        let mut pages = ArrayPages::default();
        let state = lock(&self.state);
        let mut seen = HashMap::new();
        for channel in state.channels.iter().flatten() {
            for (&id, &(word, bytes, kind)) in &channel.shipped {
                if self.live.is_alive(word, id) {
                    seen.insert(id, (bytes, kind));
                }
            }
        }
        for (seg, _) in state.active.values() {
            seen.insert(seg.id(), (seg.data_bytes() as u64, seg.page_kind()));
        }
        for (bytes, kind) in seen.into_values() {
            pages.add(kind, bytes);
        }
        pages
    }
}

/// Sends one segment on a channel unless it was sent before; prunes the record of
/// dropped segments now and then.
fn ship(channel: &mut Channel, seg: &Segment, live: &Liveness, counters: &Counters) {
    if channel.shipped.contains_key(&seg.id()) {
        return;
    }
    let Ok(info) = seg.ship_info() else { return };
    if channel.shipped.len() >= 256 {
        channel
            .shipped
            .retain(|&id, &mut (word, ..)| live.is_alive(word, id));
    }
    // A failure means the worker is gone; its replacement gets a new channel.
    if sys::send_msg(channel.sock.as_fd(), &info.to_bytes(), &[seg.fd()]).is_ok() {
        channel.shipped.insert(
            seg.id(),
            (info.live as u32, info.data_bytes, seg.page_kind()),
        );
        Counters::add(&counters.segments_shipped, 1);
        Counters::add(&counters.bytes_mapped, info.data_bytes);
    }
}
