//! The pending table's storage: containers whose every operation costs a bounded
//! amount, however many tasks they hold.
//!
//! The table is used under its mutex by every submitter, so one slow operation
//! stalls them all. A `HashMap` that doubles moves every entry when it grows: with
//! ~900,000 tasks queued one `apply_async` took 240-410 ms (issue 22, defect 4), and
//! a `VecDeque` of a million ids copies 8 MB when it doubles. Neither container here
//! ever moves more than one small block:
//!
//! - [`TaskSlots`] keeps tasks by id in pages of [`PAGE`] consecutive ids. Task ids
//!   are handed out consecutively, so the tasks of a backlog fill whole pages; a page
//!   is allocated when its first task arrives and freed when its last one leaves, and
//!   the pages sit in a `BTreeMap` by page number (a few thousand entries for a
//!   million tasks, and only live pages: an old task does not keep the pages after
//!   it alive).
//! - [`IdQueue`] is a double-ended queue of ids in chunks of [`CHUNK`], each
//!   allocated at its full size and never grown; the queue of chunks holds one small
//!   header per 4,096 ids.

use std::collections::{BTreeMap, VecDeque};

/// Ids per page of [`TaskSlots`]: a page of pending tasks is about 50 KiB, small
/// enough to come from the allocator's heap rather than a fresh `mmap`.
pub(super) const PAGE: u64 = 256;

/// Ids per chunk of [`IdQueue`] (32 KiB).
pub(super) const CHUNK: usize = 4096;

/// Values by `u64` id, in pages of [`PAGE`] consecutive ids.
pub(super) struct TaskSlots<V> {
    pages: BTreeMap<u64, Page<V>>,
    len: usize,
}

struct Page<V> {
    slots: Box<[Option<V>]>,
    /// Slots holding a value.
    live: usize,
}

impl<V> Default for TaskSlots<V> {
    fn default() -> Self {
        TaskSlots {
            pages: BTreeMap::new(),
            len: 0,
        }
    }
}

/// The page of `id`, and its place in the page.
fn place(id: u64) -> (u64, usize) {
    (id / PAGE, (id % PAGE) as usize)
}

impl<V> TaskSlots<V> {
    /// Stores `value` as `id`; returns the value it replaces, if any.
    pub(super) fn insert(&mut self, id: u64, value: V) -> Option<V> {
        let (page, at) = place(id);
        let page = self.pages.entry(page).or_insert_with(|| Page {
            slots: (0..PAGE).map(|_| None).collect(),
            live: 0,
        });
        let old = page.slots[at].replace(value);
        if old.is_none() {
            page.live += 1;
            self.len += 1;
        }
        old
    }

    /// The value of `id`.
    pub(super) fn get(&self, id: u64) -> Option<&V> {
        let (page, at) = place(id);
        self.pages.get(&page)?.slots[at].as_ref()
    }

    /// The value of `id`, to change.
    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        let (page, at) = place(id);
        self.pages.get_mut(&page)?.slots[at].as_mut()
    }

    /// Removes and returns the value of `id`; frees its page if it was the last.
    pub(super) fn remove(&mut self, id: u64) -> Option<V> {
        let (number, at) = place(id);
        let page = self.pages.get_mut(&number)?;
        let value = page.slots[at].take()?;
        page.live -= 1;
        self.len -= 1;
        if page.live == 0 {
            self.pages.remove(&number);
        }
        Some(value)
    }

    /// Whether no value is stored.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every value, in id order.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = V> {
        self.len = 0;
        std::mem::take(&mut self.pages)
            .into_values()
            .flat_map(|page| page.slots.into_vec().into_iter().flatten())
    }
}

/// A double-ended queue of ids in chunks of [`CHUNK`] that never grow. No chunk
/// is ever empty.
#[derive(Debug, Default)]
pub(super) struct IdQueue {
    chunks: VecDeque<VecDeque<u64>>,
    len: usize,
}

impl IdQueue {
    fn chunk() -> VecDeque<u64> {
        VecDeque::with_capacity(CHUNK)
    }

    /// Adds `id` at the back.
    pub(super) fn push_back(&mut self, id: u64) {
        if self.chunks.back().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push_back(Self::chunk());
        }
        self.chunks.back_mut().expect("a chunk").push_back(id);
        self.len += 1;
    }

    /// Adds `id` at the front.
    pub(super) fn push_front(&mut self, id: u64) {
        if self.chunks.front().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push_front(Self::chunk());
        }
        self.chunks.front_mut().expect("a chunk").push_front(id);
        self.len += 1;
    }

    /// The id at the front.
    pub(super) fn front(&self) -> Option<u64> {
        self.chunks.front()?.front().copied()
    }

    /// Removes and returns the id at the front.
    pub(super) fn pop_front(&mut self) -> Option<u64> {
        let chunk = self.chunks.front_mut()?;
        let id = chunk.pop_front().expect("no chunk is empty");
        if chunk.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(id)
    }

    /// Ids queued.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether no id is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every id.
    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so failures repeat.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn task_slots_match_a_btree_map_through_random_operations() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut slots = TaskSlots::default();
            // A BTreeMap, so that picking its n-th key repeats from run to run.
            let mut model = BTreeMap::new();
            // Ids mostly rising, as the pool hands them out, across many pages.
            let mut next = rng.below(1000);
            for step in 0..20_000 {
                let id = match rng.below(4) {
                    0 if !model.is_empty() => *model
                        .keys()
                        .nth(rng.below(model.len() as u64) as usize)
                        .unwrap(),
                    _ => {
                        next += 1 + rng.below(3);
                        next
                    }
                };
                match rng.below(3) {
                    0 | 1 => assert_eq!(
                        slots.insert(id, step),
                        model.insert(id, step),
                        "seed {seed}"
                    ),
                    _ => assert_eq!(slots.remove(id), model.remove(&id), "seed {seed}"),
                }
                assert_eq!(slots.get(id), model.get(&id), "seed {seed}");
                if let Some(v) = slots.get_mut(id) {
                    *v += 1;
                    *model.get_mut(&id).unwrap() += 1;
                }
                assert_eq!(slots.len, model.len(), "seed {seed}");
            }
            // Only pages with a value are kept.
            let pages: std::collections::BTreeSet<u64> = model.keys().map(|id| id / PAGE).collect();
            assert_eq!(
                slots
                    .pages
                    .keys()
                    .copied()
                    .collect::<std::collections::BTreeSet<_>>(),
                pages
            );
            let expected: Vec<(u64, i32)> = model.into_iter().collect();
            let drained: Vec<i32> = slots.drain().collect();
            assert_eq!(
                drained,
                expected.into_iter().map(|(_, v)| v).collect::<Vec<_>>()
            );
            assert!(slots.is_empty() && slots.pages.is_empty());
        }
    }

    #[test]
    fn id_queue_matches_a_vec_deque_through_random_operations() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let mut queue = IdQueue::default();
            let mut model = VecDeque::new();
            for step in 0..50_000u64 {
                // Long runs of pushes, so the queue spans many chunks.
                match rng.below(8) {
                    0..=3 => {
                        queue.push_back(step);
                        model.push_back(step);
                    }
                    4 => {
                        queue.push_front(step);
                        model.push_front(step);
                    }
                    _ => assert_eq!(queue.pop_front(), model.pop_front(), "seed {seed}"),
                }
                assert_eq!(queue.front(), model.front().copied(), "seed {seed}");
                assert_eq!(queue.len(), model.len(), "seed {seed}");
                assert!(
                    queue
                        .chunks
                        .iter()
                        .all(|c| !c.is_empty() && c.len() <= CHUNK)
                );
            }
            assert!(queue.chunks.len() > 2, "the test spans chunks");
            while let Some(id) = model.pop_front() {
                assert_eq!(queue.pop_front(), Some(id));
            }
            assert!(queue.is_empty() && queue.pop_front().is_none());
            queue.push_back(1);
            queue.clear();
            assert!(queue.is_empty() && queue.front().is_none());
        }
    }

    #[test]
    fn no_chunk_ever_grows() {
        let mut queue = IdQueue::default();
        for id in 0..(3 * CHUNK as u64 + 5) {
            queue.push_back(id);
        }
        for id in 0..(CHUNK as u64 + 3) {
            queue.push_front(id);
        }
        // Each chunk still has the buffer it was made with.
        let made = IdQueue::chunk().capacity();
        assert!(
            queue
                .chunks
                .iter()
                .all(|c| c.len() <= CHUNK && c.capacity() == made)
        );
        assert_eq!(queue.len(), 4 * CHUNK + 8);
    }
}
