//! Bulk maps in the storm: a kernel that kills its own worker at chosen elements
//! (every time, or only the first time, so that retries can succeed), and the
//! round's operation that runs it.

use shmpool::{Error, SharedArray};

use super::Totals;
use super::round::Round;
use crate::common::{die, failed_ranges, first_time, ok, remove_markers};

/// Input flag: the kernel kills its worker at this element, every time.
const DIE_ALWAYS: u64 = 1 << 63;
/// Input flag: the kernel kills its worker at this element the first time only.
const DIE_ONCE: u64 = 1 << 62;
/// The element's key: its index and the map's nonce, without the flags.
const KEY: u64 = DIE_ONCE - 1;
/// What an output element holds before the map writes it.
const UNSET: u64 = u64::MAX;

fn mix(v: u64) -> u64 {
    (v ^ (v >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ 0x1234
}

fn storm_kernel(v: u64) -> u64 {
    if v & DIE_ALWAYS != 0 || (v & DIE_ONCE != 0 && first_time("storm-once", v & KEY)) {
        die();
    }
    mix(v & KEY)
}

impl Round<'_> {
    /// A bulk map whose kernel kills its worker at chosen elements: always at some,
    /// only the first time at others (so that retries can succeed). On error, every
    /// element outside the ranges the error names is right, and every element that
    /// always kills is inside them.
    pub(super) fn bulk(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let len = self.rng.range(1000..100_000) as usize;
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
        for _ in 0..deaths {
            let at = self.rng.below(len as u64) as usize;
            if retries > 0 && self.rng.chance(60) {
                xs[at] |= DIE_ONCE;
                once.push(xs[at] & KEY);
            } else {
                xs[at] |= DIE_ALWAYS;
                always.push(at);
            }
        }
        let mut ys = ok(SharedArray::<u64>::filled(len, UNSET), cx);
        let mut map = self.pool.bulk().chunk_len(chunk_len).retries(retries);
        if let Some(t) = self.timeout {
            map = map.chunk_timeout(t);
        }
        let r = map.map_into(&xs, &mut ys, storm_kernel);
        remove_markers("storm-once", self.server, once);
        let what = format!(
            "{len} elements in chunks of {chunk_len}, retries {retries}, always dying at \
             {always:?}"
        );
        let failed = match r {
            Ok(()) => {
                check!(cx, always.is_empty(), "{what}: the map succeeded");
                totals.bulk_ok += 1;
                Vec::new()
            }
            Err(e) => {
                let ranges = match &e {
                    Error::KernelPanicked { .. } => None,
                    e => failed_ranges(e),
                };
                check!(cx, ranges.is_some(), "{what}: unexpected error {e} ({e:?})");
                let ranges = ranges.unwrap();
                let unnamed = always
                    .iter()
                    .find(|&&at| !ranges.iter().any(|r| r.contains(&at)));
                check!(
                    cx,
                    unnamed.is_none(),
                    "{what}: {e} does not name element {unnamed:?}"
                );
                totals.bulk_failed += 1;
                ranges
            }
        };
        let wrong =
            (0..len).find(|&i| !failed.iter().any(|r| r.contains(&i)) && ys[i] != mix(xs[i] & KEY));
        check!(
            cx,
            wrong.is_none(),
            "{what}: element {wrong:?} is wrong outside the failed ranges {failed:?}"
        );
    }
}
