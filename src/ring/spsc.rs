//! A completion ring: single producer (one worker process at a time), single consumer
//! (the parent, one thread at a time), in shared memory.
//!
//! This is Lamport's bounded queue with monotonically increasing positions (the
//! shape rtrb uses). Each worker slot has its own ring instead of all workers sharing
//! one multi-producer ring: a producer killed in the middle of a push has written
//! into a slot it had not yet published, so the consumer never sees the half-written
//! record, and the replacement worker simply continues from the published `tail`.
//! A shared MPSC ring would instead be left with a claimed, never-published slot that
//! blocks the consumer forever.

use crate::sync::{AtomicU64, Cell, Ordering, Padded};

/// The two cursors, each on its own cache-line pair.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SpscHeader {
    /// Written only by the producer: the next position to fill.
    tail: Padded<AtomicU64>,
    /// Written only by the consumer: the next position to read.
    head: Padded<AtomicU64>,
}

/// A view of one completion ring.
#[derive(Debug)]
pub(crate) struct SpscRing<'a, R> {
    header: &'a SpscHeader,
    slots: &'a [Cell<R>],
    mask: u64,
}

impl<R> Clone for SpscRing<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for SpscRing<'_, R> {}

impl<'a, R: Copy> SpscRing<'a, R> {
    /// A view of `header` and `slots` (a power-of-two count).
    pub(crate) fn new(header: &'a SpscHeader, slots: &'a [Cell<R>]) -> Self {
        assert!(slots.len().is_power_of_two());
        SpscRing {
            header,
            slots,
            mask: slots.len() as u64 - 1,
        }
    }

    /// Appends a record, or gives it back when the ring is full.
    ///
    /// Only the single producer may call this.
    pub(crate) fn push(&self, record: R) -> Result<(), R> {
        let tail = self.header.tail.load(Ordering::Relaxed);
        // SYNC(S1): Acquire — pairs with the consumer's Release store of `head`
        // (SYNC S4): its read of the slot we are about to reuse is finished.
        let head = self.header.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= self.slots.len() as u64 {
            return Err(record);
        }
        // SAFETY: positions head..tail are owned by the consumer, tail..head+cap by the
        // producer; `tail` is in the producer's range, and we are the only producer.
        unsafe { self.slots[(tail & self.mask) as usize].write(record) };
        // SYNC(S2): Release — publishes the record; pairs with SYNC S3.
        self.header
            .tail
            .store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Takes the oldest record, if any. Only the single consumer may call this.
    pub(crate) fn pop(&self) -> Option<R> {
        let head = self.header.head.load(Ordering::Relaxed);
        // SYNC(S3): Acquire — pairs with SYNC S2: the record is fully written.
        let tail = self.header.tail.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: `head` is published (head != tail) and we are the only consumer; the
        // producer does not write this slot until we move `head` past it.
        let record = unsafe { self.slots[(head & self.mask) as usize].read() };
        // SYNC(S4): Release — our read is done before the producer reuses the slot.
        self.header
            .head
            .store(head.wrapping_add(1), Ordering::Release);
        Some(record)
    }

    /// Whether a record is waiting (a hint for the consumer).
    pub(crate) fn has_records(&self) -> bool {
        // SYNC(S5): Acquire — as SYNC S3, pairs with SYNC S2. Only a hint: the record is read
        // by `pop`, whose own SYNC S3 load orders it, so Relaxed would do.
        self.header.head.load(Ordering::Relaxed) != self.header.tail.load(Ordering::Acquire)
    }
}

/// Heap-allocated rings for loom models and unit tests.
#[cfg(any(loom, test))]
pub(crate) mod owned {
    use super::*;

    /// A ring and its slots, owned.
    #[derive(Debug)]
    pub(crate) struct OwnedSpsc<R> {
        header: Box<SpscHeader>,
        slots: Box<[Cell<R>]>,
    }

    impl<R: Copy + Default> OwnedSpsc<R> {
        /// A ring of `cap` slots.
        pub(crate) fn new(cap: usize) -> Self {
            OwnedSpsc {
                header: Box::new(SpscHeader {
                    tail: Padded::new(AtomicU64::new(0)),
                    head: Padded::new(AtomicU64::new(0)),
                }),
                slots: (0..cap).map(|_| Cell::new(R::default())).collect(),
            }
        }

        /// The view.
        pub(crate) fn ring(&self) -> SpscRing<'_, R> {
            SpscRing::new(&self.header, &self.slots)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::owned::OwnedSpsc;

    #[test]
    fn fifo_full_and_empty() {
        let o = OwnedSpsc::<u32>::new(2);
        let r = o.ring();
        assert_eq!(r.pop(), None);
        r.push(1).unwrap();
        r.push(2).unwrap();
        assert_eq!(r.push(3), Err(3));
        assert!(r.has_records());
        assert_eq!(r.pop(), Some(1));
        r.push(3).unwrap();
        assert_eq!(r.pop(), Some(2));
        assert_eq!(r.pop(), Some(3));
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn threads_pass_every_record_in_order() {
        let o = OwnedSpsc::<u64>::new(8);
        let r = o.ring();
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..100_000u64 {
                    while r.push(i).is_err() {
                        std::hint::spin_loop();
                    }
                }
            });
            let mut next = 0;
            while next < 100_000 {
                if let Some(v) = r.pop() {
                    assert_eq!(v, next);
                    next += 1;
                }
            }
        });
    }
}
