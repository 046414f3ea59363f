//! How an idle worker waits, and the one list of what can wake it.
//!
//! A worker with nothing to run sleeps on the control segment's `submit_ready`
//! event count. Three things wake it, and each is published before its notifier
//! calls `notify` (`docs/PROTOCOL.md`, "Wake-ups"):
//!
//! | source                          | published by                      | means                  |
//! |---------------------------------|-----------------------------------|------------------------|
//! | a record in the submission ring | a submitter or the collector      | run it                 |
//! | the `closing` flag              | `close`, once the backlog is fed  | exit when the ring is empty |
//! | the liveness table's epoch      | the parent dropping shipped arrays | unmap the dropped ones |
//!
//! [`Sources::check`] is the only place that lists them, and it runs before the
//! worker sleeps *after* it registered as a sleeper ([`Sources::sleep`]): a
//! notifier that found no sleeper registered published before the registration, so
//! the re-check sees its change. Issue 22's lost wake-up was a re-check of the ring
//! alone, which slept through retirements made while the worker was busy in
//! `housekeep`, for the sleep's whole 1 s timeout.
//!
//! The timeout remains for what no notify announces: the death of the fork server
//! (the worker also has `PR_SET_PDEATHSIG`) and the memory watch.

use std::time::Duration;

use crate::ring::mpmc::{Claimed, MpmcRing};
use crate::shm::liveness::Table;
use crate::sync::{AtomicU32, Ordering};
use crate::wake::EventCount;

/// Why an idle worker stops waiting.
#[derive(Debug)]
pub(crate) enum Wake<C> {
    /// A record, claimed from the submission ring.
    Record(C),
    /// The pool is closing and the ring is empty: the worker exits.
    Closing,
    /// The parent retired arrays since the worker last checked its mappings: it
    /// unmaps the dead ones (`SegmentCache::housekeep`), then waits again.
    Retired,
}

/// Every source that can wake one idle worker.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sources<'a, 'r, R> {
    /// The submission ring.
    pub ring: MpmcRing<'r, R>,
    /// The worker's owner tag for ring claims (slot index + 1).
    pub owner: u16,
    /// The control header's `closing` flag.
    pub closing: &'a AtomicU32,
    /// The liveness table, for its retirement epoch.
    pub live: Table<'a>,
    /// The epoch at the worker's last check of its mappings.
    pub checked_epoch: u64,
}

impl<'r, R: Copy> Sources<'_, 'r, R> {
    /// Checks every source, most urgent first: work, then closing, then
    /// retirements. `None` when none has anything.
    pub(crate) fn check(&self) -> Option<Wake<Claimed<'r, R>>> {
        if let Some(c) = self.ring.try_claim(self.owner) {
            return Some(Wake::Record(c));
        }
        // SYNC(C4): Acquire — pairs with the Release store of `closing` (SYNC C3) in
        // `close`/`terminate`: a push made before `close` is then seen by `is_empty_hint`
        // (SYNC M7), so we do not exit with work in the ring.
        if self.closing.load(Ordering::Acquire) != 0 && self.ring.is_empty_hint() {
            return Some(Wake::Closing);
        }
        // The epoch load is SYNC L6 (Acquire, pairs with the retirement's SYNC L5).
        if self.live.epoch() != self.checked_epoch {
            return Some(Wake::Retired);
        }
        None
    }

    /// Registers as a sleeper on `ev`, re-checks every source, and sleeps (for at
    /// most `timeout`) only if none has anything; then checks once more. `None`
    /// after a timeout or a spurious wake-up with nothing to do: the caller loops.
    ///
    /// `set_asleep` sets the slot's flag (`WorkerSlot::set_asleep`, SYNC W10): raised
    /// after the registration and lowered before it is withdrawn, so a collector that
    /// finds it raised after the worker's death knows the registration is there to
    /// remove (`EventCount::forget_dead_sleeper`).
    pub(crate) fn sleep(
        &self,
        ev: &EventCount,
        set_asleep: impl Fn(bool),
        timeout: Option<Duration>,
    ) -> Option<Wake<Claimed<'r, R>>> {
        let ticket = ev.prepare();
        set_asleep(true);
        // The re-check after the registration (SYNC E1): a notifier that saw no sleeper
        // published before it, and this sees the publication.
        if let Some(wake) = self.check() {
            set_asleep(false);
            ev.finish(ticket);
            return Some(wake);
        }
        ev.sleep(&ticket, timeout);
        set_asleep(false);
        ev.finish(ticket);
        self.check()
    }
}
