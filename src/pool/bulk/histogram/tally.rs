//! Counting a chunk into a histogram's bins, for any bins ([`BinOf`]: numpy's
//! uniform bins, or explicit edges) and either tally ([`Weigh`]: one per element,
//! or its weight).
//!
//! Up to [`SMALL_BINS`] bins, the bins of a block of elements are found first, in a
//! loop without branches that the compiler vectorizes where the bins allow it (an
//! element outside every bin gets the bin number `bins`, tallied in a spare entry
//! that is never added to the result); then they are tallied into four histograms
//! on the stack in turn, so that neighbours falling in the same bin do not wait on
//! each other's addition. Beyond that, each element is tallied straight into the
//! chunk's partial.
//!
//! Either way the additions into each bin happen in an order fixed by the chunk's
//! elements alone: element `i` of a block goes to stack histogram `i % 4` (the last
//! `len % 4` of a chunk to histogram 0), and the four are added in order. So a sum
//! of weights is the same, bit for bit, at every SIMD level and for any number of
//! workers, given the chunk length, as every reduction is.

use super::super::number::Number;

/// Bins up to which a histogram tallies on the stack.
const SMALL_BINS: usize = 256;

/// Elements whose bins `tally_small` finds before it tallies them.
const BIN_BLOCK: usize = 64;

/// A histogram's bins, as the bin number of each element.
pub(super) trait BinOf<T> {
    /// How many bins.
    fn bins(&self) -> usize;
    /// The bin of `x`, or `bins()` where no bin holds it (outside the bins, NaN).
    fn bin(&self, x: T) -> u32;
}

/// What an element adds to its bin.
pub(super) trait Weigh: Copy {
    /// A bin's tally.
    type Sum: Copy + Default + std::ops::AddAssign;
    /// The weights of the `len` elements from `start` of the chunk.
    fn block(self, start: usize, len: usize) -> Self;
    /// What element `i` adds.
    fn at(&self, i: usize) -> Self::Sum;
}

/// Every element adds one: counts.
#[derive(Clone, Copy)]
pub(super) struct Ones;

impl Weigh for Ones {
    type Sum = u64;
    #[inline(always)]
    fn block(self, _: usize, _: usize) -> Self {
        self
    }
    #[inline(always)]
    fn at(&self, _: usize) -> u64 {
        1
    }
}

/// Element `i` adds its weight, `weights[i]`, as an `f64`.
#[derive(Clone, Copy)]
pub(super) struct Weights<'a, W>(pub &'a [W]);

impl<W: Number> Weigh for Weights<'_, W> {
    type Sum = f64;
    #[inline(always)]
    fn block(self, start: usize, len: usize) -> Self {
        Weights(&self.0[start..start + len])
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        self.0[i].to_f64()
    }
}

/// Adds the tallies of `xs` (weighed by `w`, which holds as many elements) to
/// `acc`, one entry per bin of `bins`.
#[inline(always)]
pub(super) fn tally<T: Copy, B: BinOf<T>, G: Weigh>(acc: &mut [G::Sum], bins: &B, xs: &[T], w: G) {
    if bins.bins() <= SMALL_BINS {
        tally_small(acc, bins, xs, w);
    } else {
        let acc = &mut acc[..bins.bins()];
        let w = w.block(0, xs.len());
        for (i, &x) in xs.iter().enumerate() {
            if let Some(a) = acc.get_mut(bins.bin(x) as usize) {
                *a += w.at(i);
            }
        }
    }
}

/// [`tally`] for at most `SMALL_BINS` bins, on the stack (see the module docs).
#[inline(always)]
fn tally_small<T: Copy, B: BinOf<T>, G: Weigh>(acc: &mut [G::Sum], bins: &B, xs: &[T], w: G) {
    let mut local = [[G::Sum::default(); SMALL_BINS + 1]; 4];
    let mut found = [0u32; BIN_BLOCK];
    for (k, block) in xs.chunks(BIN_BLOCK).enumerate() {
        for (bin, &x) in found.iter_mut().zip(block) {
            *bin = bins.bin(x);
        }
        let found = &found[..block.len()];
        let w = w.block(k * BIN_BLOCK, block.len());
        let mut quads = found.chunks_exact(4);
        for (q, quad) in (&mut quads).enumerate() {
            for (j, (hist, &b)) in local.iter_mut().zip(quad).enumerate() {
                hist[(b as usize).min(SMALL_BINS)] += w.at(4 * q + j);
            }
        }
        let done = found.len() - quads.remainder().len();
        for (j, &b) in quads.remainder().iter().enumerate() {
            local[0][(b as usize).min(SMALL_BINS)] += w.at(done + j);
        }
    }
    for (bin, a) in acc[..bins.bins()].iter_mut().enumerate() {
        let mut sum = local[0][bin];
        for hist in &local[1..] {
            sum += hist[bin];
        }
        *a += sum;
    }
}
