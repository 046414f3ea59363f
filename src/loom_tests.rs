//! Model checks of the submission ring, the completion ring, the wake-up
//! protocol, alone and together, and an idle worker's wake-up by the liveness
//! table, under loom: every interleaving of the threads
//! below (up to `LOOM_MAX_PREEMPTIONS` preemptions) is run, with loom's atomics and
//! cells in place of std's (`src/sync.rs`) and the futex emulated with the same
//! contract. In shared memory the "threads" are processes; the code is the same.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test --lib --release --target-dir target/loom loom_tests
//! ```
//!
//! loom reports a data race on a ring slot's record (a `Cell` accessed without the
//! exclusivity the protocol claims), a deadlock (a waiter asleep with nobody left to
//! wake it: a lost wake-up), and any assertion below that fails in some
//! interleaving. What each model proves is on the model.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::thread;

use crate::ring::mpmc::owned::OwnedMpmc;
use crate::ring::spsc::owned::OwnedSpsc;
use crate::shm::liveness::Table;
use crate::wake::{Backoff, EventCount};
use crate::worker::idle::{Sources, Wake};

/// The bulk job's claim, quiescence and death protocol (`docs/PROTOCOL.md` §7).
mod bulk_job;

/// Pushes `record`, yielding while the ring is full.
fn push_until_done(ring: &OwnedMpmc<u64>, record: u64) {
    while ring.ring().push(record).is_err() {
        thread::yield_now();
    }
}

/// Two producers race for the tail of a ring of 2 while one consumer drains it:
/// both records arrive exactly once, and no record is read while it is written.
#[test]
fn mpmc_two_producers_one_consumer_lose_and_duplicate_nothing() {
    loom::model(|| {
        let ring = Arc::new(OwnedMpmc::<u64>::new(2));
        let producers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|record| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || push_until_done(&ring, record))
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < 2 {
            match ring.ring().try_claim(1) {
                Some(claim) => {
                    got.push(claim.record());
                    claim.release();
                }
                None => thread::yield_now(),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert!(ring.ring().try_claim(1).is_none());
    });
}

/// Two consumers race for two records: each record is claimed by exactly one of
/// them (the owner-tagged claim CAS), and the ring is empty afterwards.
#[test]
fn mpmc_two_consumers_never_claim_the_same_record() {
    loom::model(|| {
        let ring = Arc::new(OwnedMpmc::<u64>::new(2));
        ring.ring().push(10).unwrap();
        ring.ring().push(20).unwrap();
        let consumers: Vec<_> = [1u16, 2]
            .into_iter()
            .map(|owner| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(claim) = ring.ring().try_claim(owner) {
                        mine.push(claim.record());
                        claim.release();
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, [10, 20]);
    });
}

/// The producer withdraws a record (a cancelled task) while a consumer claims: exactly
/// one of them gets it, the other record is claimed once, and the withdrawn slot is
/// refilled on the next lap only after the withdrawal (SYNC M8 against M1).
#[test]
fn mpmc_a_withdrawal_and_a_claim_never_both_win() {
    loom::model(|| {
        let ring = Arc::new(OwnedMpmc::<u64>::new(2));
        let first = ring.ring().push_at(10).unwrap();
        ring.ring().push(20).unwrap();
        let consumer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut mine = Vec::new();
                while let Some(claim) = ring.ring().try_claim(1) {
                    mine.push(claim.record());
                    claim.release();
                }
                mine
            })
        };
        let withdrawn = ring.ring().withdraw(first);
        if withdrawn {
            // The slot is free for the next lap: a push now must not race the consumer.
            ring.ring().push(30).unwrap();
        }
        let mut got = consumer.join().unwrap();
        while let Some(claim) = ring.ring().try_claim(2) {
            got.push(claim.record());
            claim.release();
        }
        got.sort_unstable();
        if withdrawn {
            assert_eq!(got, [20, 30]);
        } else {
            assert_eq!(got, [10, 20]);
        }
    });
}

/// One producer pushes three records through a ring of two slots while a consumer
/// takes them: the ring wraps (a slot is reused on the next lap only after its
/// release), and the records come out in order.
#[test]
fn mpmc_wraps_around_in_order() {
    loom::model(|| {
        let ring = Arc::new(OwnedMpmc::<u64>::new(2));
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                for record in 1..=3 {
                    push_until_done(&ring, record);
                }
            })
        };
        let mut got = Vec::new();
        while got.len() < 3 {
            match ring.ring().try_claim(1) {
                Some(claim) => {
                    got.push(claim.record());
                    claim.release();
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

/// A consumer claims a record and dies before releasing it, while another consumer
/// and a producer carry on. Once the death is known (the thread is joined, as the
/// collector reaps a worker), `recover` returns exactly the dead consumer's record:
/// every record ends up either recovered or consumed, once, and the ring keeps
/// working across the recovered slot.
#[test]
fn mpmc_a_dead_consumers_claim_is_recovered_exactly_once() {
    loom::model(|| {
        let ring = Arc::new(OwnedMpmc::<u64>::new(2));
        ring.ring().push(1).unwrap();
        let dying = {
            let ring = Arc::clone(&ring);
            // Claims at most one record and "dies" holding it: no release.
            thread::spawn(move || ring.ring().try_claim(7).map(|claim| claim.record()))
        };
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || push_until_done(&ring, 2))
        };
        let mut consumed = Vec::new();
        if let Some(claim) = ring.ring().try_claim(1) {
            consumed.push(claim.record());
            claim.release();
        }
        let held = dying.join().unwrap();
        let recovered = ring.ring().recover(7);
        assert_eq!(recovered, held.into_iter().collect::<Vec<_>>());
        producer.join().unwrap();
        while let Some(claim) = ring.ring().try_claim(1) {
            consumed.push(claim.record());
            claim.release();
        }
        let mut all: Vec<u64> = consumed.into_iter().chain(recovered).collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
        // The recovered slot is usable again.
        ring.ring().push(3).unwrap();
        let claim = ring.ring().try_claim(1).unwrap();
        assert_eq!(claim.record(), 3);
        claim.release();
    });
}

/// The completion ring: one producer (a worker) pushes three records through two
/// slots, one consumer (the parent) pops them in order; no slot is read while it is
/// written.
#[test]
fn spsc_passes_every_record_in_order() {
    loom::model(|| {
        let ring = Arc::new(OwnedSpsc::<u64>::new(2));
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                for record in 1..=3 {
                    while ring.ring().push(record).is_err() {
                        thread::yield_now();
                    }
                }
            })
        };
        let mut got = Vec::new();
        while got.len() < 3 {
            match ring.ring().pop() {
                Some(record) => got.push(record),
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
        assert!(!ring.ring().has_records());
    });
}

/// The wake-up protocol alone: a waiter that finds nothing, registers, re-checks
/// and sleeps is always woken by a notifier that publishes after the waiter's
/// check. A lost wake-up leaves the waiter asleep forever, which loom reports as
/// a deadlock.
#[test]
fn eventcount_never_loses_a_wake_up() {
    loom::model(|| {
        let ev = Arc::new(EventCount::new());
        let flag = Arc::new(AtomicU32::new(0));
        let notifier = {
            let (ev, flag) = (Arc::clone(&ev), Arc::clone(&flag));
            thread::spawn(move || {
                flag.store(1, Ordering::Release);
                ev.notify(1);
            })
        };
        loop {
            if flag.load(Ordering::Acquire) == 1 {
                break;
            }
            let ticket = ev.prepare();
            if flag.load(Ordering::Acquire) == 1 {
                ev.finish(ticket);
                break;
            }
            ev.sleep(&ticket, None);
            ev.finish(ticket);
        }
        notifier.join().unwrap();
    });
}

/// A notify with nobody registered makes no futex call: the epoch (the futex word,
/// bumped only on the way to `futex_wake`) does not move. With a registered
/// sleeper it does.
#[test]
fn eventcount_notifies_without_a_syscall_when_nobody_sleeps() {
    loom::model(|| {
        let ev = EventCount::new();
        ev.notify(1);
        ev.notify(u32::MAX >> 1);
        assert_eq!(ev.epoch_for_tests(), 0);
        let ticket = ev.prepare();
        ev.notify(1);
        assert_eq!(ev.epoch_for_tests(), 1);
        ev.finish(ticket);
    });
}

/// The ring and the wake-up together, as the pool uses them: two producers each
/// push a record and notify; one consumer waits for records with
/// [`Backoff::wait`] (no spinning, straight to the register / re-check / sleep
/// loop). The consumer receives both records and never sleeps through one.
#[test]
fn ring_and_wake_up_together_deliver_every_record() {
    loom::model(|| {
        let ring = Arc::new(OwnedMpmc::<u64>::new(2));
        let ready = Arc::new(EventCount::new());
        let producers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|record| {
                let (ring, ready) = (Arc::clone(&ring), Arc::clone(&ready));
                thread::spawn(move || {
                    push_until_done(&ring, record);
                    ready.notify(1);
                })
            })
            .collect();
        let no_spin = Backoff {
            spins: 0,
            budget: std::time::Duration::ZERO,
        };
        let mut got = Vec::new();
        for _ in 0..2 {
            let record = no_spin.wait(
                &ready,
                None,
                || {
                    ring.ring().try_claim(1).map(|claim| {
                        let r = claim.record();
                        claim.release();
                        r
                    })
                },
                || None,
            );
            got.push(record);
        }
        for p in producers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

/// The kill hold (`src/slot/record.rs`, `docs/PROTOCOL.md` §5c): the collector raises
/// the hold and reads what the worker runs, while the worker ends its task and moves
/// on to the next. If the collector reads the old task (and so would kill for it),
/// the worker has not passed the end of that task, and does not until the hold is
/// let go: a kill decided under the hold can land only on its target, never on the
/// next task. Without either SeqCst fence (K1, K2) loom finds the interleaving in
/// which the collector reads the old task while the worker has moved on.
#[test]
fn kill_hold_keeps_a_worker_on_the_work_a_kill_is_decided_for() {
    use crate::slot::WorkerSlot;
    use loom::sync::atomic::AtomicBool;

    loom::model(|| {
        let (slot, generation) = WorkerSlot::new_ready();
        let slot = Arc::new(slot);
        let moved_on = Arc::new(AtomicBool::new(false));
        slot.take_task(7);
        let worker = {
            let (slot, moved_on) = (Arc::clone(&slot), Arc::clone(&moved_on));
            thread::spawn(move || {
                slot.leave_task();
                moved_on.store(true, Ordering::SeqCst);
                slot.take_task(8);
            })
        };
        let hold = slot.hold(generation).expect("the process is live");
        if hold.record().task == Some(7) {
            // The kill would be sent now: the worker is still on task 7, or waiting
            // at its end, and stays there while the hold is raised.
            thread::yield_now();
            assert!(
                !moved_on.load(Ordering::SeqCst),
                "the worker left a task held for its kill"
            );
            // The record may show the end of task 7 (a worker records that it left
            // its work, then checks the hold: SYNC K2), never the task after it.
            let now = hold.record().task;
            assert!(
                now == Some(7) || now.is_none(),
                "the record moved on to {now:?} under the hold"
            );
        }
        hold.release();
        worker.join().unwrap();
        assert_eq!(slot.assignment_hint().task, Some(8));
    });
}

/// The liveness table's words and retirement epoch, on the heap.
struct LivenessWords {
    words: [AtomicU64; 2],
    epoch: AtomicU64,
}

impl LivenessWords {
    fn table(&self) -> Table<'_> {
        Table::new(&self.words, &self.epoch)
    }
}

/// The liveness wake-up (issue 22, defect 3), with the worker's own wait
/// (`worker::idle::Sources::sleep`) and the table's own retirement
/// (`shm::liveness::Table::retire`). The parent drops two arrays the worker has
/// mapped, one after the other: each is a retirement (the word to 0, the epoch
/// moved: SYNC L3, L5) and a wake-up of idle workers (`notify`, as
/// `registry::wake_idle_workers` does). The worker does what its idle loop does: checks
/// its mappings (`housekeep`: the epoch, then the words), and while one is still
/// alive, waits on `submit_ready` for any of its wake-up sources. It must see both
/// arrays dead; a wake-up lost (a worker asleep after the last notify, with a
/// dropped array still mapped) is a deadlock, since the model's futex has no
/// timeout.
///
/// The model finds that deadlock when the epoch is left out of `Sources::check` (checked
/// by removing it: loom reports the deadlock in the interleaving where both
/// retirements land between the worker's check of its mappings and its
/// registration, the lost wake-up of issue 22).
#[test]
fn an_idle_worker_is_woken_by_every_retirement() {
    loom::model(|| {
        let live = Arc::new(LivenessWords {
            words: [AtomicU64::new(0), AtomicU64::new(0)],
            epoch: AtomicU64::new(0),
        });
        let ring = Arc::new(OwnedMpmc::<u64>::new(2));
        let ready = Arc::new(EventCount::new());
        let (closing, asleep) = (AtomicU32::new(0), AtomicU32::new(0));
        // Two arrays shipped and mapped: their words name them.
        let mapped = [(0u32, 11u64), (1, 12)];
        for (idx, id) in mapped {
            live.table().mark_alive(idx, id);
        }
        let parent = {
            let (live, ready) = (Arc::clone(&live), Arc::clone(&ready));
            thread::spawn(move || {
                for (idx, _) in mapped {
                    live.table().retire(idx);
                    ready.notify(u32::MAX);
                }
            })
        };
        let table = live.table();
        let mut still_mapped = mapped.to_vec();
        loop {
            // `SegmentCache::drop_dead`: the epoch first, then the words.
            let checked_epoch = table.epoch();
            still_mapped.retain(|&(idx, id)| table.is_alive(u64::from(idx), id));
            if still_mapped.is_empty() {
                break;
            }
            let sources = Sources {
                ring: ring.ring(),
                owner: 1,
                closing: &closing,
                live: table,
                checked_epoch,
            };
            match sources.sleep(
                &ready,
                |a| asleep.store(u32::from(a), Ordering::SeqCst),
                None,
            ) {
                Some(Wake::Retired) | None => {}
                Some(Wake::Record(_)) => panic!("nothing was pushed"),
                Some(Wake::Closing) => panic!("nothing closed the pool"),
            }
        }
        parent.join().unwrap();
        assert_eq!(asleep.load(Ordering::Relaxed), 0);
    });
}
