//! Bulk operations in the storm: a kernel that kills its own worker at chosen
//! elements (every time, or only the first time, so that retries can succeed), and
//! the round's operations that run it: a map, a map cancelled through its token from
//! another thread, and a deterministic reduction whose bits are checked against a
//! reference computed here.

use std::ops::Range;
use std::time::Duration;

use shmpool::{CancelMode, CancelOutcome, CancelToken, Error, SharedArray, Work};

use super::round::Round;
use super::{Cx, Totals};
use crate::common::{die, failed_ranges, first_time, ok, remove_markers};

/// Input flag: the kernel kills its worker at this element, every time.
const DIE_ALWAYS: u64 = 1 << 63;
/// Input flag: the kernel kills its worker at this element the first time only.
const DIE_ONCE: u64 = 1 << 62;
/// The element's key: its index and the map's nonce, without the flags.
const KEY: u64 = DIE_ONCE - 1;
/// What an output element holds before the map writes it.
const UNSET: u64 = u64::MAX;

pub(super) fn mix(v: u64) -> u64 {
    (v ^ (v >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ 0x1234
}

fn storm_kernel(v: u64) -> u64 {
    if v & DIE_ALWAYS != 0 || (v & DIE_ONCE != 0 && first_time("storm-once", v & KEY)) {
        die();
    }
    mix(v & KEY)
}

/// `storm_kernel` over a chunk, after a pause, so that a cancel finds chunks
/// running, queued and done.
fn slow_chunk_kernel(xs: &[u64], ys: &mut [u64]) {
    std::thread::sleep(Duration::from_micros(300));
    for (x, y) in xs.iter().zip(ys) {
        *y = storm_kernel(*x);
    }
}

/// A chunk kernel that sleeps as long as its chunk's first element says (its high
/// half, in µs), then maps every element (`mix`, flags and all: its inputs have
/// none).
pub(super) fn sleepy_chunk_kernel(xs: &[u64], ys: &mut [u64]) {
    if let Some(&first) = xs.first() {
        std::thread::sleep(Duration::from_micros(first >> 32));
    }
    for (x, y) in xs.iter().zip(ys) {
        *y = mix(*x);
    }
}

/// A reduction's partial: an exact wrapping sum, and a float sum (as bits) whose
/// value depends on the order of its additions.
pub(super) type Partial = [u64; 2];

fn partial_of(m: u64) -> Partial {
    [m, ((m >> 11) as f64 * 1e-7).to_bits()]
}

pub(super) fn reduce_map(v: u64) -> Partial {
    partial_of(storm_kernel(v))
}

pub(super) fn reduce_combine(a: Partial, b: Partial) -> Partial {
    [
        a[0].wrapping_add(b[0]),
        (f64::from_bits(a[1]) + f64::from_bits(b[1])).to_bits(),
    ]
}

/// What the pool must return, bit for bit: each chunk folded in order from the
/// identity, and the partials combined pairwise in the documented fixed tree.
pub(super) fn reference_reduction(keys: &[u64], chunk_len: usize) -> Partial {
    let mut partials: Vec<Partial> = keys
        .chunks(chunk_len)
        .map(|chunk| {
            chunk.iter().fold([0, 0f64.to_bits()], |acc, &k| {
                reduce_combine(acc, partial_of(mix(k)))
            })
        })
        .collect();
    let mut step = 1;
    while step < partials.len() {
        let mut i = 0;
        while i + step < partials.len() {
            partials[i] = reduce_combine(partials[i], partials[i + step]);
            i += 2 * step;
        }
        step *= 2;
    }
    partials[0]
}

/// The input of one bulk operation: keys with death flags at random elements.
struct Planted {
    xs: SharedArray<u64>,
    chunk_len: usize,
    retries: u32,
    /// The elements that kill their worker every time.
    always: Vec<usize>,
    /// The keys that kill their worker the first time only (markers to remove).
    once: Vec<u64>,
    /// Every element that kills its worker (every time or once).
    deadly: Vec<usize>,
    /// Whether a worker may die elsewhere (killed from outside).
    outside_kills: bool,
}

impl Planted {
    fn describe(&self) -> String {
        format!(
            "{} elements in chunks of {}, retries {}, always dying at {:?}",
            self.xs.len(),
            self.chunk_len,
            self.retries,
            self.always
        )
    }
}

impl Round<'_> {
    fn plant(&mut self, cx: Cx) -> Planted {
        // Half the maps use one of a few lengths, so that their arrays often take
        // over the memory of an earlier map's arrays (the array cache), whose
        // workers may have been killed inside it.
        let len = if self.rng.chance(50) {
            self.rng.pick(&[4096u64, 30_000, 65_536]) as usize
        } else {
            self.rng.range(1000..100_000) as usize
        };
        let chunk_len = self.rng.range(100..5000) as usize;
        let retries = self.rng.pick(&[0u32, 0, 1, 2]);
        let nonce = self.rng.below(1 << 29);
        let deaths = self.rng.below(4) as usize;
        let mut xs = ok(
            SharedArray::try_from_iter((0..len as u64).map(|i| i | (nonce << 32))),
            cx,
        );
        let mut always = Vec::new();
        let mut once = Vec::new();
        let mut deadly = Vec::new();
        for _ in 0..deaths {
            let at = self.rng.below(len as u64) as usize;
            if retries > 0 && self.rng.chance(60) {
                xs[at] |= DIE_ONCE;
                once.push(xs[at] & KEY);
            } else {
                xs[at] |= DIE_ALWAYS;
                always.push(at);
            }
            deadly.push(at);
        }
        Planted {
            xs,
            chunk_len,
            retries,
            always,
            once,
            deadly,
            outside_kills: self.outside_kills(),
        }
    }

    fn bulk_map(&self, planted: &Planted) -> shmpool::Bulk<'_> {
        let mut map = self
            .pool
            .bulk()
            .chunk_len(planted.chunk_len)
            .retries(planted.retries);
        if let Some(t) = self.timeout {
            map = map.chunk_timeout(t);
        }
        map
    }

    /// A bulk map whose kernel kills its worker at chosen elements; in some, a
    /// thread cancels the map through its token after a random pause (killing its
    /// running chunks, or letting them finish). On error, every element outside the
    /// ranges the error names is right, and every element that always kills is
    /// inside them.
    pub(super) fn bulk(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let planted = self.plant(cx);
        let len = planted.xs.len();
        let mut ys = ok(SharedArray::<u64>::filled(len, UNSET), cx);
        let cancel = self.rng.chance(40).then(|| {
            let mode = self.rng.pick(&[CancelMode::Kill, CancelMode::LetFinish]);
            (mode, Duration::from_millis(self.rng.range(0..40)))
        });
        let map = self.bulk_map(&planted);
        let (r, outcome) = match cancel {
            None => (map.map_into(&planted.xs, &mut ys, storm_kernel), None),
            Some((mode, pause)) => {
                let token = CancelToken::new();
                let canceller = token.clone();
                std::thread::scope(|s| {
                    let cancelling = s.spawn(move || {
                        std::thread::sleep(pause);
                        canceller.cancel_with(mode)
                    });
                    let r = map.cancel_token(&token).map_chunks_into(
                        &planted.xs,
                        &mut ys,
                        slow_chunk_kernel,
                    );
                    (r, Some(cancelling.join().expect("the cancelling thread")))
                })
            }
        };
        remove_markers("storm-once", self.server, planted.once.iter().copied());
        let what = format!("{}, cancel {cancel:?}: {outcome:?}", planted.describe());
        // A cancel that says it cancelled makes the map return `MapCancelled` (even
        // when every chunk had run: then it names no range as not computed); one
        // that came after the map returned changes nothing.
        let said_cancelled = outcome.is_some_and(|o| o == CancelOutcome::Cancelled);
        check!(
            cx,
            said_cancelled == matches!(r, Err(Error::MapCancelled { .. })),
            "{what}: the map returned {r:?}"
        );
        let failed = match r {
            Ok(()) => {
                check!(cx, planted.always.is_empty(), "{what}: the map succeeded");
                totals.bulk_ok += 1;
                Vec::new()
            }
            Err(e @ Error::MapCancelled { .. }) => {
                let ranges = e.failed_ranges();
                check_named(cx, &what, &planted, &e, &ranges);
                totals.bulk_cancelled += 1;
                ranges
            }
            Err(e) => {
                totals.bulk_failed += 1;
                named_ranges(cx, &what, &planted, &e)
            }
        };
        let wrong = (0..len)
            .find(|&i| !failed.iter().any(|r| r.contains(&i)) && ys[i] != mix(planted.xs[i] & KEY));
        check!(
            cx,
            wrong.is_none(),
            "{what}: element {wrong:?} is wrong outside the failed ranges {failed:?}"
        );
    }

    /// A deterministic reduction (an exact sum and an order-sensitive float sum) whose
    /// kernel kills its worker at chosen elements: its result, when it has one, is
    /// bit-identical to the fixed-tree reference whatever the deaths, retries and
    /// replacements did; its error names every element that always kills.
    pub(super) fn reduce(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let planted = self.plant(cx);
        let r = self.bulk_map(&planted).map_reduce(
            &planted.xs,
            [0, 0f64.to_bits()],
            reduce_map,
            reduce_combine,
        );
        remove_markers("storm-once", self.server, planted.once.iter().copied());
        let what = planted.describe();
        match r {
            Ok(got) => {
                check!(
                    cx,
                    planted.always.is_empty(),
                    "{what}: the reduction succeeded"
                );
                let keys: Vec<u64> = planted.xs.iter().map(|&x| x & KEY).collect();
                let want = reference_reduction(&keys, planted.chunk_len);
                check!(
                    cx,
                    got == want,
                    "{what}: reduced to {got:?} (float {}), the fixed tree gives {want:?} \
                     (float {})",
                    f64::from_bits(got[1]),
                    f64::from_bits(want[1])
                );
                totals.reduce_ok += 1;
            }
            Err(e) => {
                named_ranges(cx, &what, &planted, &e);
                totals.reduce_failed += 1;
            }
        }
    }
}

/// The ranges a failed bulk operation names; fails unless they cover every element
/// that always kills its worker.
fn named_ranges(cx: Cx, what: &str, planted: &Planted, e: &Error) -> Vec<Range<usize>> {
    let ranges = match e {
        Error::KernelPanicked { .. } => None,
        e => failed_ranges(e),
    };
    check!(cx, ranges.is_some(), "{what}: unexpected error {e} ({e:?})");
    let ranges = ranges.unwrap();
    check_named(cx, what, planted, e, &ranges);
    ranges
}

/// Fails unless `ranges` (what `e` names as not computed) cover every element that
/// always kills its worker; and, in a round of the pool's own kills, unless every
/// death `e` reports is in a chunk where a death was planted (a death anywhere else
/// was a kill meant for other work).
fn check_named(cx: Cx, what: &str, planted: &Planted, e: &Error, ranges: &[Range<usize>]) {
    let unnamed = planted
        .always
        .iter()
        .find(|&&at| !ranges.iter().any(|r| r.contains(&at)));
    check!(
        cx,
        unnamed.is_none(),
        "{what}: {e} does not name element {unnamed:?}"
    );
    if !planted.outside_kills {
        let stray = death_ranges(e)
            .into_iter()
            .find(|r| !planted.deadly.iter().any(|at| r.contains(at)));
        check!(
            cx,
            stray.is_none(),
            "{what}: {e} reports a death in chunk {stray:?}, where none was planted ({e:?})"
        );
    }
}

/// The chunks in which `e` reports a worker's death.
pub(super) fn death_ranges(e: &Error) -> Vec<Range<usize>> {
    match e {
        Error::WorkerDied {
            work: Work::Chunk(r),
            ..
        }
        | Error::ChunkLost { chunk: r } => vec![r.clone()],
        Error::ChunksLost { errors } => errors.iter().flat_map(death_ranges).collect(),
        _ => Vec::new(),
    }
}
