//! The liveness table's protocol: the words and the retirement epoch, and what the
//! parent and the workers do with them. Apart from the mapping (`src/shm/liveness.rs`), so
//! that loom models run this same code on the heap (`src/loom_tests.rs`).

use crate::sync::{AtomicU64, Ordering};

/// The table's protocol, over its words wherever they are: the parent's writable
/// mapping, a worker's read-only one, or the heap in loom models
/// (`src/loom_tests.rs`). Both sides run this code and no other on the words.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Table<'a> {
    words: &'a [AtomicU64],
    /// The retirement epoch: moved by every retirement, after its word.
    epoch: &'a AtomicU64,
}

impl<'a> Table<'a> {
    /// The table over `words` and `epoch`: in a mapping of the table
    /// (`src/shm/liveness.rs`), or on the heap (loom models).
    pub(crate) fn new(words: &'a [AtomicU64], epoch: &'a AtomicU64) -> Self {
        Table { words, epoch }
    }

    /// Marks word `idx` alive for segment `id` (parent only).
    pub(crate) fn mark_alive(&self, idx: u32, id: u64) {
        // SYNC(L1): Release — pairs with the Acquire load in `is_alive` (SYNC L2). The id
        // is written before the array is shipped, so a worker that maps it sees it alive.
        self.words[idx as usize].store(id, Ordering::Release);
    }

    /// Marks word `idx` dead and moves the retirement epoch (parent only).
    pub(crate) fn retire(&self, idx: u32) {
        // SYNC(L3): Release — the array is being dropped; pairs with SYNC L2.
        self.words[idx as usize].store(0, Ordering::Release);
        // SYNC(L5): Release — orders the retirement (SYNC L3) before the new epoch;
        // pairs with the Acquire load in `epoch` (SYNC L6), so a worker that sees the
        // new epoch then sees the word at 0. The wake-up that follows
        // (`EventCount::notify`, SYNC E3) orders this store before its load of the
        // sleeper count: a worker that registered in time is woken, and one that
        // registered later sees the new epoch in its re-check (`src/worker/idle.rs`).
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Whether word `idx` still names segment `id`.
    pub(crate) fn is_alive(&self, idx: u64, id: u64) -> bool {
        // SYNC(L2): Acquire — pairs with SYNC L1 and SYNC L3 (for the parent's own
        // check, pruning a channel's shipped list, nothing is read on its strength).
        usize::try_from(idx)
            .ok()
            .and_then(|i| self.words.get(i))
            .is_some_and(|w| w.load(Ordering::Acquire) == id)
    }

    /// The retirement epoch: it changes whenever the parent drops a shipped array.
    pub(crate) fn epoch(&self) -> u64 {
        // SYNC(L6): Acquire — pairs with SYNC L5: the retirements counted are visible
        // to the `is_alive` checks (SYNC L2) that follow.
        self.epoch.load(Ordering::Acquire)
    }
}
