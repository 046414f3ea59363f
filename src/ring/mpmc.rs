//! The submission ring: a bounded multi-producer, multi-consumer queue whose claims
//! survive the death of the consumer that made them.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue (the one crossbeam's
//! `ArrayQueue` uses): every slot carries a sequence stamp that says whether it is
//! empty for lap *k* or full for lap *k*. Consumers here do not take an element by
//! advancing `head` alone, because a worker process can be killed between taking an
//! element and finishing with it. Instead a consumer **claims** the slot by writing
//! its owner id into the slot's state word with one compare-and-swap, reads the
//! record, and **releases** the slot afterwards. A slot claimed by a dead worker is
//! found by [`MpmcRing::recover`], which returns its record and releases it, so the
//! task is attributed and the ring never wedges.
//!
//! # The state word (one `AtomicU64` per slot)
//!
//! ```text
//!  63      48 47                                            0
//! ┌──────────┬───────────────────────────────────────────────┐
//! │  owner   │  sequence (position arithmetic modulo 2^48)    │
//! └──────────┴───────────────────────────────────────────────┘
//! ```
//! For the element at position `p` (slot `p % cap`):
//! * `seq == p`, owner 0: empty, a producer at `tail == p` may fill it;
//! * `seq == p + 1`, owner 0: full, a consumer at `head == p` may claim it;
//! * `seq == p + 1`, owner `w`: claimed by consumer `w`, not yet released;
//! * `seq == p + cap`, owner 0: released: empty for the next lap.
//!
//! Sequences are compared with wrapping 48-bit arithmetic, so the counters never
//! overflow in practice: they only need to tell apart positions less than 2^47 apart.
//! The full argument is in `docs/PROTOCOL.md`.

use crate::sync::{AtomicU64, Cell, Ordering, Padded};

const SEQ_BITS: u32 = 48;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
#[inline]
fn seq(x: u64) -> u64 {
    x & SEQ_MASK
}

#[inline]
fn owner(state: u64) -> u16 {
    (state >> SEQ_BITS) as u16
}

/// `a - b` on 48-bit sequences, as a signed distance.
#[inline]
fn dist(a: u64, b: u64) -> i64 {
    ((a.wrapping_sub(b) << (64 - SEQ_BITS)) as i64) >> (64 - SEQ_BITS)
}

/// Producer and consumer cursors, each on its own cache-line pair.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct MpmcHeader {
    /// The next position a producer will fill.
    tail: Padded<AtomicU64>,
    /// The next position a consumer will try to claim (a hint: the slot states are
    /// the truth, and any consumer may help it forward).
    head: Padded<AtomicU64>,
}

/// One slot: the state word and the record.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct MpmcSlot<R> {
    state: AtomicU64,
    record: Cell<R>,
}

/// A view of a ring that lives elsewhere (in a shared segment, or on the heap under
/// loom). `R` is a plain-data record copied in and out whole.
#[derive(Debug)]
pub(crate) struct MpmcRing<'a, R> {
    header: &'a MpmcHeader,
    slots: &'a [MpmcSlot<R>],
    mask: u64,
}

// Manual impls: `derive` would require `R: Copy`.
impl<R> Clone for MpmcRing<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for MpmcRing<'_, R> {}

/// The ring is full: the record was not pushed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// A slot this consumer has claimed. The record stays in the slot until
/// [`Claimed::release`], so a death before then is recoverable.
#[derive(Debug)]
#[must_use = "a claimed slot must be released"]
pub(crate) struct Claimed<'a, R> {
    slot: &'a MpmcSlot<R>,
    pos: u64,
    cap: u64,
}

impl<'a, R: Copy> Claimed<'a, R> {
    /// The claimed record.
    pub(crate) fn record(&self) -> R {
        // SAFETY: the slot is claimed by us (owner field set by our CAS in
        // `try_claim`): producers cannot write it until we release it (its sequence is
        // not `pos + cap` yet), and other consumers cannot claim it (owner is set).
        unsafe { self.slot.record.read() }
    }

    /// Gives the slot back to producers.
    pub(crate) fn release(self) {
        // SYNC(M4): Release — our read of the record happens-before a producer's
        // next write to it; pairs with the producer's Acquire load of `state`
        // (SYNC M1). Clearing the owner and moving to the next lap in one store.
        self.slot
            .state
            .store(seq(self.pos.wrapping_add(self.cap)), Ordering::Release);
    }
}

impl<'a, R: Copy> MpmcRing<'a, R> {
    /// A view of `header` and `slots`.
    ///
    /// `slots.len()` must be a power of two no larger than 2^46, and the ring must
    /// have been initialised with [`MpmcRing::init`] before any process uses it.
    pub(crate) fn new(header: &'a MpmcHeader, slots: &'a [MpmcSlot<R>]) -> Self {
        assert!(slots.len().is_power_of_two() && slots.len() <= 1 << 46);
        MpmcRing {
            header,
            slots,
            mask: slots.len() as u64 - 1,
        }
    }

    /// Sets every slot empty for lap 0 and both cursors to 0. Only the creator calls
    /// this, before the memory is shared.
    pub(crate) fn init(&self) {
        self.header.tail.store(0, Ordering::Relaxed);
        self.header.head.store(0, Ordering::Relaxed);
        for (i, slot) in self.slots.iter().enumerate() {
            slot.state.store(i as u64, Ordering::Relaxed);
        }
    }

    #[inline]
    fn slot(&self, pos: u64) -> &'a MpmcSlot<R> {
        &self.slots[(pos & self.mask) as usize]
    }

    /// Appends a record, or returns [`Full`].
    pub(crate) fn push(&self, record: R) -> Result<(), Full> {
        self.push_at(record).map(drop)
    }

    /// Appends a record and returns its position (for [`MpmcRing::withdraw`] and
    /// [`MpmcRing::claimant`]), or returns [`Full`].
    pub(crate) fn push_at(&self, record: R) -> Result<u64, Full> {
        let mut pos = self.header.tail.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(pos);
            // SYNC(M1): Acquire — pairs with the Release in `release` (SYNC M4) and in
            // `recover` (SYNC M5): the previous lap's reader is done with the record.
            let state = slot.state.load(Ordering::Acquire);
            let d = dist(seq(state), seq(pos));
            if d == 0 {
                // Relaxed is enough: the tail CAS only arbitrates between producers; the
                // slot's state is what publishes (SYNC M2).
                match self.header.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the tail CAS for `pos` while the slot reads
                        // empty-for-`pos` gives this producer sole access to the record
                        // until it publishes below.
                        unsafe { slot.record.write(record) };
                        // SYNC(M2): Release — publishes the record; pairs with the
                        // consumer's Acquire load in `try_claim` (SYNC M3).
                        slot.state
                            .store(seq(pos.wrapping_add(1)), Ordering::Release);
                        return Ok(pos);
                    }
                    Err(current) => pos = current,
                }
            } else if d < 0 {
                // The slot still holds the previous lap (full or claimed): the ring is
                // full. Re-read the tail in case another producer moved on.
                let current = self.header.tail.load(Ordering::Relaxed);
                if current == pos {
                    return Err(Full);
                }
                pos = current;
            } else {
                // Another producer already filled `pos`; catch up.
                pos = self.header.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Claims the oldest record for consumer `owner` (1..=65535), or returns `None`
    /// when the ring is empty.
    pub(crate) fn try_claim(&self, owner_id: u16) -> Option<Claimed<'a, R>> {
        debug_assert!(owner_id != 0);
        let mut pos = self.header.head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(pos);
            // SYNC(M3): Acquire — pairs with the producer's Release (SYNC M2): the
            // record is fully written when the state reads full.
            let state = slot.state.load(Ordering::Acquire);
            let d = dist(seq(state), seq(pos.wrapping_add(1)));
            if d == 0 && owner(state) == 0 {
                let claimed = state | (u64::from(owner_id) << SEQ_BITS);
                // Acquire on success for the same reason as SYNC M3 (the CAS may read
                // a newer value than the load above).
                match slot.state.compare_exchange_weak(
                    state,
                    claimed,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.advance_head(pos);
                        return Some(Claimed {
                            slot,
                            pos,
                            cap: self.slots.len() as u64,
                        });
                    }
                    Err(_) => continue,
                }
            } else if d < 0 {
                // Not yet filled for this lap. If the head moved meanwhile, retry there.
                let current = self.header.head.load(Ordering::Relaxed);
                if current == pos {
                    return None;
                }
                pos = current;
            } else {
                // Claimed by someone (d == 0, owner set) or already released/refilled
                // (d > 0): the element at `pos` is taken, so the head may move past it.
                self.advance_head(pos);
                pos = self.header.head.load(Ordering::Relaxed);
            }
        }
    }

    #[inline]
    fn advance_head(&self, pos: u64) {
        // Relaxed: `head` is only a hint for where to look; every decision is taken on
        // a slot's state word. Failure means someone already moved it.
        let _ = self.header.head.compare_exchange(
            pos,
            pos.wrapping_add(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Releases every slot claimed by `owner_id` and returns their records.
    ///
    /// Call only when that owner can no longer run (its process is dead and reaped),
    /// and from one thread at a time.
    pub(crate) fn recover(&self, owner_id: u16) -> Vec<R> {
        let mut records = Vec::new();
        let cap = self.slots.len() as u64;
        for slot in self.slots {
            // SYNC(M6): Acquire — pairs with the producer's Release (SYNC M2) through the dead
            // consumer's claim CAS, which continues M2's release sequence: the record is complete.
            // The claim itself is visible because the owner is dead and reaped (SYNC F1).
            let state = slot.state.load(Ordering::Acquire);
            if owner(state) == owner_id && owner_id != 0 {
                // SAFETY: the slot is claimed by a consumer that no longer runs; no
                // producer writes a claimed slot and no consumer claims it, so reading
                // it here is exclusive.
                records.push(unsafe { slot.record.read() });
                let pos = seq(state).wrapping_sub(1);
                self.advance_head(pos);
                // SYNC(M5): Release — as SYNC M4, on behalf of the dead consumer.
                slot.state
                    .store(seq(pos.wrapping_add(cap)), Ordering::Release);
            }
        }
        records
    }

    /// Takes back the record pushed at `pos` if no consumer has claimed it yet, and
    /// releases its slot without reading it; returns whether it did. The producer
    /// that withdraws uses this to cancel a record (the parent cancelling a queued
    /// task).
    ///
    /// One compare-and-swap decides between the withdrawal and a consumer's claim
    /// (`try_claim`), which compare the same word: the state must still read "full
    /// for `pos`, unowned". The 48-bit sequence names the lap, so a later element in
    /// the same slot can never be taken for this one (no ABA). A withdrawn slot reads
    /// as released, which consumers skip (helping `head` past it) exactly as they skip
    /// a slot released by `recover`.
    pub(crate) fn withdraw(&self, pos: u64) -> bool {
        let slot = self.slot(pos);
        let full = seq(pos.wrapping_add(1));
        let released = seq(pos.wrapping_add(self.slots.len() as u64));
        // SYNC(M8): AcqRel — the Acquire half continues the release sequence of the
        // producer's publication (SYNC M2) and the Release half hands it on to the next
        // lap's producer (its Acquire load, SYNC M1): the next write of the record
        // happens after the previous one, as a release (SYNC M4) would order it. The
        // record itself is not read.
        let won = slot
            .state
            .compare_exchange(full, released, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if won {
            self.advance_head(pos);
        }
        won
    }

    /// The consumer that holds the claim on the element pushed at `pos`, if that
    /// element is claimed and not yet released.
    pub(crate) fn claimant(&self, pos: u64) -> Option<u16> {
        // SYNC(M9): Acquire — pairs with the Release of a consumer's release (SYNC M4): once
        // the slot reads released, a worker's `current_task` store (SYNC W3), made before
        // its release, is visible to the caller's next load of it.
        let state = self.slot(pos).state.load(Ordering::Acquire);
        let claimed = dist(seq(state), seq(pos.wrapping_add(1))) == 0 && owner(state) != 0;
        claimed.then(|| owner(state))
    }

    /// Whether the ring looks empty right now (a hint: it may change at once).
    pub(crate) fn is_empty_hint(&self) -> bool {
        let pos = self.header.head.load(Ordering::Relaxed);
        // SYNC(M7): Acquire — pairs with SYNC M2 (and M4/M5 for a released slot). No record is
        // read on its strength; in the worker's exit check it follows the Acquire load of
        // `closing` (SYNC C4), so a push made before `close` is seen.
        let state = self.slot(pos).state.load(Ordering::Acquire);
        dist(seq(state), seq(pos.wrapping_add(1))) < 0
    }
}

/// Heap-allocated rings for loom models and unit tests.
#[cfg(any(loom, test))]
pub(crate) mod owned {
    use super::*;

    /// A ring and its slots, owned.
    #[derive(Debug)]
    pub(crate) struct OwnedMpmc<R> {
        header: Box<MpmcHeader>,
        pub(super) slots: Box<[MpmcSlot<R>]>,
    }

    impl<R: Copy + Default> OwnedMpmc<R> {
        /// A ring of `cap` slots.
        pub(crate) fn new(cap: usize) -> Self {
            let header = Box::new(MpmcHeader {
                tail: Padded::new(AtomicU64::new(0)),
                head: Padded::new(AtomicU64::new(0)),
            });
            let slots = (0..cap)
                .map(|_| MpmcSlot {
                    state: AtomicU64::new(0),
                    record: Cell::new(R::default()),
                })
                .collect();
            let owned = OwnedMpmc { header, slots };
            owned.ring().init();
            owned
        }

        /// The view.
        pub(crate) fn ring(&self) -> MpmcRing<'_, R> {
            MpmcRing::new(&self.header, &self.slots)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::owned::OwnedMpmc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn fifo_and_full() {
        let owned = OwnedMpmc::<u64>::new(4);
        let ring = owned.ring();
        for i in 0..4 {
            ring.push(i).unwrap();
        }
        assert_eq!(ring.push(9), Err(super::Full));
        for i in 0..4 {
            let c = ring.try_claim(1).unwrap();
            assert_eq!(c.record(), i);
            c.release();
        }
        assert!(ring.try_claim(1).is_none());
        assert!(ring.is_empty_hint());
    }

    #[test]
    fn a_dead_claim_is_recovered_and_the_ring_moves_on() {
        let owned = OwnedMpmc::<u64>::new(2);
        let ring = owned.ring();
        ring.push(10).unwrap();
        ring.push(11).unwrap();
        let lost = ring.try_claim(7).unwrap();
        drop(lost); // the owner "dies" holding it: dropped without `release`
        assert_eq!(ring.push(12), Err(super::Full));
        assert_eq!(ring.recover(7), vec![10]);
        ring.push(12).unwrap();
        let c = ring.try_claim(1).unwrap();
        assert_eq!(c.record(), 11);
        c.release();
        let c = ring.try_claim(1).unwrap();
        assert_eq!(c.record(), 12);
        c.release();
        assert!(ring.try_claim(1).is_none());
    }

    #[test]
    fn recovery_of_a_claim_whose_head_was_never_advanced() {
        let owned = OwnedMpmc::<u64>::new(4);
        let ring = owned.ring();
        ring.push(1).unwrap();
        // Claim by hand without advancing head, as a consumer killed between its two
        // steps would leave it.
        let slot = &owned.slots[0];
        let st = slot.state.load(super::Ordering::Relaxed);
        slot.state
            .store(st | (3u64 << super::SEQ_BITS), super::Ordering::Relaxed);
        assert!(ring.try_claim(1).is_none());
        assert_eq!(ring.recover(3), vec![1]);
        ring.push(2).unwrap();
        let c = ring.try_claim(1).unwrap();
        assert_eq!(c.record(), 2);
        c.release();
    }

    #[test]
    fn a_withdrawn_record_is_skipped_and_its_slot_reused() {
        let owned = OwnedMpmc::<u64>::new(4);
        let ring = owned.ring();
        let a = ring.push_at(1).unwrap();
        let b = ring.push_at(2).unwrap();
        let c = ring.push_at(3).unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        // The middle one, then the first: consumers never see either.
        assert!(ring.withdraw(b));
        assert!(!ring.withdraw(b), "a second withdrawal finds nothing");
        assert!(ring.withdraw(a));
        let claim = ring.try_claim(1).unwrap();
        assert_eq!(claim.record(), 3);
        assert_eq!(ring.claimant(c), Some(1));
        // A claimed record cannot be withdrawn: the claim won.
        assert!(!ring.withdraw(c));
        claim.release();
        assert_eq!(ring.claimant(c), None);
        assert!(ring.try_claim(1).is_none());
        // Every slot is usable again, and an old position names no new element.
        for i in 10..14 {
            ring.push(i).unwrap();
        }
        assert!(!ring.withdraw(a), "position 0's slot now holds position 4");
        for i in 10..14 {
            let claim = ring.try_claim(2).unwrap();
            assert_eq!(claim.record(), i);
            claim.release();
        }
    }

    #[test]
    fn withdrawals_race_claims_and_exactly_one_wins_each_record() {
        use std::sync::atomic::Ordering;
        let owned = OwnedMpmc::<u64>::new(64);
        let ring = owned.ring();
        let claimed = std::sync::Mutex::new(Vec::new());
        let withdrawn = std::sync::Mutex::new(Vec::new());
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) || !ring.is_empty_hint() {
                    if let Some(c) = ring.try_claim(1) {
                        claimed.lock().unwrap().push(c.record());
                        c.release();
                    }
                }
            });
            for i in 0..20_000u64 {
                let pos = loop {
                    if let Ok(pos) = ring.push_at(i) {
                        break pos;
                    }
                    std::hint::spin_loop();
                };
                if i % 2 == 0 && ring.withdraw(pos) {
                    withdrawn.lock().unwrap().push(i);
                }
            }
            done.store(true, Ordering::Relaxed);
        });
        let mut all = claimed.into_inner().unwrap();
        all.extend(withdrawn.into_inner().unwrap());
        all.sort_unstable();
        assert_eq!(all, (0..20_000).collect::<Vec<_>>());
    }

    #[test]
    fn wrapping_sequences() {
        assert_eq!(super::dist(0, super::SEQ_MASK), 1);
        assert_eq!(super::dist(super::SEQ_MASK, 0), -1);
        assert_eq!(super::dist(5, 3), 2);
    }

    #[test]
    fn many_producers_many_consumers_lose_and_duplicate_nothing() {
        use std::sync::atomic::Ordering;
        let owned = OwnedMpmc::<u64>::new(64);
        let ring = owned.ring();
        let per = 20_000u64;
        let total = 3 * per as usize;
        let taken = AtomicUsize::new(0);
        let seen = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for p in 0..3u64 {
                s.spawn(move || {
                    for i in 0..per {
                        while ring.push(p * per + i).is_err() {
                            std::hint::spin_loop();
                        }
                    }
                });
            }
            for c in 1..=3u16 {
                let (taken, seen) = (&taken, &seen);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    // SYNC(M8): test only — pairs with the other consumers' `fetch_add`
                    // below; it only ends the loop (records come through SYNC M2/M3).
                    while taken.load(Ordering::Acquire) < total {
                        if let Some(cl) = ring.try_claim(c) {
                            mine.push(cl.record());
                            cl.release();
                            // SYNC(M8): test only — see the load above.
                            taken.fetch_add(1, Ordering::AcqRel);
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    seen.lock().unwrap().extend(mine);
                });
            }
        });
        let mut all = seen.into_inner().unwrap();
        all.sort_unstable();
        assert_eq!(all, (0..3 * per).collect::<Vec<_>>());
    }
}
