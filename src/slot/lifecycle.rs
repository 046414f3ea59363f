//! The slot's state machine: one atomic word, `generation << 32 | was_ready << 16 |
//! state`, changed only by the typed transitions below (the diagram is in
//! `src/slot/mod.rs`). Each transition is a compare-and-swap that names the state and the
//! generation it starts from; from any other state it fails and changes nothing, so
//! a slot can never be given a second process, and a process can never move a slot
//! that a later process already owns.

use crate::sync::{AtomicU64, Ordering};

/// The state of a worker slot.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// No process; the collector may start one here.
    Empty = 0,
    /// The parent asked the fork server for a process; it has not finished starting.
    Starting = 1,
    /// The worker is up (mapped everything, ran its initializer) and taking work.
    Ready = 2,
    /// The worker runs its last task before it retires (`max_tasks_per_child`).
    Retiring = 3,
    /// The process has ended (reaped by the fork server, or killed by the collector
    /// and seen dead through its pidfd); `exit_status` is valid.
    Exited = 4,
}

impl SlotState {
    /// Decodes the state bits of a lifecycle word. An unknown value (a corrupt
    /// segment) reads as `Exited`, the state whose handling cleans up.
    fn decode(word: u64) -> SlotState {
        match word as u16 {
            0 => SlotState::Empty,
            1 => SlotState::Starting,
            2 => SlotState::Ready,
            3 => SlotState::Retiring,
            _ => SlotState::Exited,
        }
    }

    /// Whether a process is (or is about to be) alive in the slot.
    pub(crate) fn is_live(self) -> bool {
        matches!(
            self,
            SlotState::Starting | SlotState::Ready | SlotState::Retiring
        )
    }

    /// Whether the slot counts towards the pool's size: live, and not retiring.
    pub(crate) fn is_serving(self) -> bool {
        matches!(self, SlotState::Starting | SlotState::Ready)
    }
}

/// A decoded lifecycle word: the slot's state and the generation of its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Phase {
    /// The state.
    pub state: SlotState,
    /// The generation of the process in (or last in) the slot; 0 before the first.
    pub generation: u32,
    /// Whether that process ever became ready: true in `Ready` and `Retiring`, and
    /// in an `Exited` reached from them; false in an `Exited` reached from
    /// `Starting` (the process died while starting).
    pub was_ready: bool,
}

/// The bit of a lifecycle word that holds [`Phase::was_ready`].
const WAS_READY: u64 = 1 << 16;

impl Phase {
    fn pack(self) -> u64 {
        let ready = if self.was_ready { WAS_READY } else { 0 };
        (u64::from(self.generation) << 32) | ready | self.state as u64
    }

    fn unpack(word: u64) -> Phase {
        Phase {
            state: SlotState::decode(word),
            generation: (word >> 32) as u32,
            was_ready: word & WAS_READY != 0,
        }
    }
}

/// The slot's state word: `generation << 32 | was_ready << 16 | state`. Valid when
/// zero (`Empty`, generation 0), as a fresh control segment reads.
#[repr(transparent)]
#[derive(Debug)]
pub(crate) struct Lifecycle(AtomicU64);

impl Lifecycle {
    /// The zero state: `Empty`, generation 0 (as a fresh control segment reads).
    #[cfg(loom)]
    pub(super) fn new() -> Self {
        Lifecycle(AtomicU64::new(0))
    }
}

impl Lifecycle {
    /// The current phase.
    pub(super) fn load(&self) -> Phase {
        // SYNC(G2): Acquire — pairs with the Release of every transition (SYNC G1): the
        // stores its author made before it (the slot reset, a worker's `pid`, the fork
        // server's `exit_status`, and through process death every store a dead worker
        // made) are visible to whoever sees the new phase.
        Phase::unpack(self.0.load(Ordering::Acquire))
    }

    /// Moves from one of the states `from` of `generation` to `to(state)`; false
    /// (and nothing changed) when the slot is in another state or generation.
    fn transition(
        &self,
        from: &[SlotState],
        generation: u32,
        to: impl FnOnce(SlotState) -> Phase,
    ) -> bool {
        let current = self.load();
        if current.generation != generation || !from.contains(&current.state) {
            return false;
        }
        // SYNC(G1): AcqRel — Release publishes what the author wrote before the
        // transition (pairs with SYNC G2); Acquire orders the author after the previous
        // transition it replaces. Failure: Acquire, as a load (SYNC G2).
        self.0
            .compare_exchange(
                current.pack(),
                to(current.state).pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// `Empty(g)` → `Starting(g + 1)`, by the collector: claims the slot for a new
    /// process and returns its generation, or `None` if the slot is not empty.
    pub(super) fn begin_start(&self) -> Option<u32> {
        let current = self.load();
        let next = current.generation.wrapping_add(1).max(1);
        let to = |_| Phase {
            state: SlotState::Starting,
            generation: next,
            was_ready: false,
        };
        self.transition(&[SlotState::Empty], current.generation, to)
            .then_some(next)
    }

    /// `Starting(g)` → `Ready(g)`, by the worker of generation `g` once it is up.
    pub(super) fn become_ready(&self, generation: u32) -> bool {
        let to = |_| Phase {
            state: SlotState::Ready,
            generation,
            was_ready: true,
        };
        self.transition(&[SlotState::Starting], generation, to)
    }

    /// `Ready(g)` → `Retiring(g)`, by the worker of generation `g` as it starts its
    /// last task.
    pub(super) fn begin_retiring(&self, generation: u32) -> bool {
        let to = |_| Phase {
            state: SlotState::Retiring,
            generation,
            was_ready: true,
        };
        self.transition(&[SlotState::Ready], generation, to)
    }

    /// `Starting | Ready | Retiring (g)` → `Exited(g)`: process `g` has ended. By the
    /// fork server after reaping it, or by the collector for a process it killed and
    /// saw die, or whose fork server died. The caller wrote `exit_status` first.
    /// Returns false (and changes nothing) when `g` is no longer the slot's live
    /// process: somebody else reported its end already.
    pub(super) fn mark_exited(&self, generation: u32) -> bool {
        let to = |from| Phase {
            state: SlotState::Exited,
            generation,
            was_ready: from != SlotState::Starting,
        };
        self.transition(
            &[SlotState::Starting, SlotState::Ready, SlotState::Retiring],
            generation,
            to,
        )
    }

    /// `Exited(g)` → `Empty(g)`, by the collector once it has handled the end of
    /// process `g` (delivered its completions, requeued its claims, failed or
    /// retried its work).
    pub(super) fn release(&self, generation: u32) -> bool {
        let to = |_| Phase {
            state: SlotState::Empty,
            generation,
            was_ready: false,
        };
        self.transition(&[SlotState::Exited], generation, to)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn fresh() -> Lifecycle {
        Lifecycle(AtomicU64::new(0))
    }

    #[test]
    fn a_slot_goes_through_its_life_in_order() {
        let l = fresh();
        assert_eq!(l.load().state, SlotState::Empty);
        let g = l.begin_start().unwrap();
        assert_eq!(g, 1);
        assert!(l.become_ready(g));
        assert!(l.begin_retiring(g));
        assert!(l.mark_exited(g));
        assert!(l.load().was_ready);
        assert!(l.release(g));
        assert_eq!(
            l.load(),
            Phase {
                state: SlotState::Empty,
                generation: 1,
                was_ready: false
            }
        );
        assert_eq!(l.begin_start(), Some(2));
        assert!(l.mark_exited(2));
        assert!(!l.load().was_ready, "died while starting");
    }

    #[test]
    fn a_slot_is_never_given_a_second_process() {
        let l = fresh();
        let g = l.begin_start().unwrap();
        assert_eq!(l.begin_start(), None, "starting again while starting");
        assert!(l.become_ready(g));
        assert_eq!(l.begin_start(), None, "starting again while ready");
        assert!(l.mark_exited(g));
        assert_eq!(
            l.begin_start(),
            None,
            "starting before the death is handled"
        );
    }

    #[test]
    fn reports_about_an_old_process_change_nothing() {
        let l = fresh();
        let old = l.begin_start().unwrap();
        assert!(l.mark_exited(old));
        assert!(!l.mark_exited(old), "a second report of the same death");
        assert!(l.release(old));
        let new = l.begin_start().unwrap();
        assert!(!l.become_ready(old));
        assert!(!l.mark_exited(old), "the old process's exit, reported late");
        assert!(!l.begin_retiring(new), "retiring before ready");
        assert!(l.become_ready(new));
        assert_eq!(l.load().generation, new);
        assert_eq!(l.load().state, SlotState::Ready);
    }

    #[test]
    fn an_unknown_state_reads_as_exited() {
        let l = Lifecycle(AtomicU64::new((7 << 32) | 99));
        assert_eq!(l.load().state, SlotState::Exited);
        assert_eq!(l.load().generation, 7);
    }
}
