//! Spin briefly, then sleep on a shared futex: the wake-up protocol.
//!
//! An [`EventCount`] lets a waiter sleep until "something may have changed", with
//! two guarantees (argued in `docs/PROTOCOL.md`, checked by `src/loom_tests.rs`):
//!
//! 1. **No lost wake-up.** A waiter that found nothing, and then sleeps, is woken
//!    by any change published after its check.
//! 2. **No syscall when nobody sleeps.** A notifier pays one fence and one load;
//!    it bumps the futex word and calls `futex_wake` only when the sleeper count
//!    is non-zero.
//!
//! The pattern is the classic eventcount (a Dekker-style handshake between the
//! notifier's "publish, then read `sleepers`" and the waiter's "raise `sleepers`,
//! then re-check"), the same idea as rayon-core's sleep module.

use std::time::Duration;

use crate::sync::{AtomicU32, Ordering, fence, futex_wait, futex_wake, spin_hint};

/// A futex word plus a count of sleepers, placed in shared memory.
///
/// Both fields are plain 32-bit atomics: valid when zeroed, holding no pointers,
/// so the type may live in a segment mapped by several processes.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct EventCount {
    /// The futex word. Bumped (wrapping) by a notify that found sleepers, so a
    /// waiter whose snapshot is stale does not fall asleep.
    epoch: AtomicU32,
    /// Waiters between [`EventCount::prepare`] and the end of their sleep.
    sleepers: AtomicU32,
}

/// A waiter's registration, returned by [`EventCount::prepare`]; it must end with
/// [`EventCount::finish`].
#[derive(Debug)]
#[must_use = "a registration must end with finish"]
pub(crate) struct Ticket(u32);

impl EventCount {
    /// A new event count (the zero state), for loom models.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        EventCount {
            epoch: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// The futex word, for loom models that check when it moves.
    #[cfg(loom)]
    pub(crate) fn epoch_for_tests(&self) -> u32 {
        // SYNC(E8): SeqCst — loom models only: observes whether a bump (SYNC E4) happened;
        // pairs with nothing.
        self.epoch.load(Ordering::SeqCst)
    }

    /// Step 1 of waiting: announce a sleeper and snapshot the epoch.
    ///
    /// After this the caller must re-check its condition, sleep with
    /// [`EventCount::sleep`] only if it still holds nothing, and then
    /// [`EventCount::finish`].
    #[inline]
    pub(crate) fn prepare(&self) -> Ticket {
        // SYNC(E1): SeqCst RMW, then the SeqCst fence below orders it before the
        // caller's re-check of its condition; pairs with the notifier's fence (SYNC E3)
        // before it loads `sleepers`: either the notifier sees this sleeper, or the
        // re-check sees the notifier's publication.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // SYNC(E2): Acquire — if this reads a bump (SYNC E4), the publication before
        // that bump is visible to the caller's re-check.
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Step 2 of waiting: sleep until notified (or `timeout`). Spurious returns are
    /// possible: callers loop. The registration stays until [`EventCount::finish`].
    #[inline]
    pub(crate) fn sleep(&self, ticket: &Ticket, timeout: Option<Duration>) {
        // The kernel compares the word with the snapshot atomically with queueing us:
        // a bump that happened after `prepare` makes this return at once.
        futex_wait(&self.epoch, ticket.0, timeout);
    }

    /// Step 3: withdraws the registration, after sleeping or instead of it (when the
    /// re-check found work).
    #[inline]
    pub(crate) fn finish(&self, _ticket: Ticket) {
        // SYNC(E5): Release — pairs with nothing: the notifier reads `sleepers` Relaxed (after
        // SYNC E3), and SYNC E6 only joins the same RMW chain. The no-lost-wake-up argument
        // rests on SYNC E1/E3 and the futex compare; a waiter withdraws only after its re-check
        // found work or its sleep returned. Stronger than needed.
        self.sleepers.fetch_sub(1, Ordering::Release);
    }

    /// Notifies after publishing a change: wakes up to `n` sleepers, if any.
    #[inline]
    pub(crate) fn notify(&self, n: u32) {
        // SYNC(E3): SeqCst fence between the caller's publication (made before this
        // call) and the load of `sleepers`; pairs with SYNC E1.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.bump_and_wake(n);
        }
    }

    /// Wakes up to `n` sleepers unconditionally (a rare event such as shutdown or a
    /// housekeeping request).
    pub(crate) fn notify_always(&self, n: u32) {
        // SYNC(E3): SeqCst fence, as in `notify`. Not strictly needed here: the bump is
        // unconditional and its Release (SYNC E4) already orders the caller's publication for
        // any waiter whose snapshot (SYNC E2) reads it; kept so both notifiers match.
        fence(Ordering::SeqCst);
        self.bump_and_wake(n);
    }

    #[cold]
    fn bump_and_wake(&self, n: u32) {
        // SYNC(E4): Release — a waiter whose snapshot (SYNC E2) reads this value sees
        // the caller's publication.
        self.epoch.fetch_add(1, Ordering::Release);
        futex_wake(&self.epoch, n);
    }

    /// Removes a registration left behind by a waiter that died while registered.
    ///
    /// Only the pool's collector calls this, after it has seen the death and knows
    /// from the dead worker's slot that it was registered. An over-count is harmless
    /// (a wasted `futex_wake`), an under-count would lose wake-ups, so callers only
    /// call this when the registration is certain.
    pub(crate) fn forget_dead_sleeper(&self) {
        // SYNC(E6): AcqRel RMW — what matters is that it is an RMW, so it cannot lose a live
        // waiter's concurrent SYNC E1/E5. The dead waiter's increment is visible through SYNC
        // F1 and its `asleep` flag (SYNC W10) before this runs; Relaxed would do.
        let _ = self
            .sleepers
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |s| s.checked_sub(1));
    }
}

/// How a waiter waits before it sleeps: a short busy spin, then checks separated by
/// `sched_yield` until a time budget runs out.
///
/// On a machine with few cores the waiter, the thread it waits for and idle workers
/// compete for the CPU. Pure spinning then starves the very thread that would make
/// progress; yielding hands it the core while still reacting within microseconds.
/// The budget is time, not iterations, so it means the same on any CPU.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    /// Iterations of `spin_loop` before the first yield (a few microseconds).
    pub spins: u32,
    /// How long to keep checking, yielding between checks, before sleeping.
    pub budget: Duration,
}

/// Runs `check` through the spin and yield phases; `Some` as soon as it yields one.
///
/// After `spins` busy iterations it keeps spinning, but gives up the CPU with
/// `sched_yield` about every 10 µs (every [`YIELD_EVERY`] checks of [`SPIN_BATCH`]
/// spins each): often enough that a descheduled thread it waits for gets the core,
/// rarely enough that yields do not turn into a storm of context switches.
pub(crate) fn spin_then_yield<T>(
    spins: u32,
    budget: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    for _ in 0..spins {
        if let Some(v) = check() {
            return Some(v);
        }
        spin_hint();
    }
    if budget.is_zero() {
        return check();
    }
    let end = std::time::Instant::now() + budget;
    let mut round = 0u32;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        round = round.wrapping_add(1);
        if round % YIELD_EVERY == 0 {
            if std::time::Instant::now() >= end {
                return None;
            }
            #[cfg(not(loom))]
            crate::sys::yield_now();
            #[cfg(loom)]
            loom::thread::yield_now();
        } else {
            for _ in 0..SPIN_BATCH {
                spin_hint();
            }
        }
    }
}

/// Busy iterations between two checks in the yield phase.
const SPIN_BATCH: u32 = 16;
/// Checks between two yields (with [`SPIN_BATCH`], about 10 µs of spinning).
const YIELD_EVERY: u32 = 32;

impl Backoff {
    /// Waits for `ready` to return `Some`: spins, yields, then sleeps on `ev`, waking
    /// every `tick` (if given) to run `on_tick`, which may end the wait.
    ///
    /// `ready` must be safe to call repeatedly; it is called once more after the
    /// sleeper registration, which is what makes the protocol lossless.
    pub(crate) fn wait<T>(
        self,
        ev: &EventCount,
        tick: Option<Duration>,
        mut ready: impl FnMut() -> Option<T>,
        mut on_tick: impl FnMut() -> Option<T>,
    ) -> T {
        if let Some(v) = spin_then_yield(self.spins, self.budget, &mut ready) {
            return v;
        }
        loop {
            let ticket = ev.prepare();
            if let Some(v) = ready() {
                ev.finish(ticket);
                return v;
            }
            ev.sleep(&ticket, tick);
            ev.finish(ticket);
            if let Some(v) = ready() {
                return v;
            }
            if let Some(v) = on_tick() {
                return v;
            }
        }
    }
}
