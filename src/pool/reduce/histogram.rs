//! The bins of `np.histogram(x, bins, range=(lo, hi))`, found as numpy finds them.
//!
//! numpy computes the edges with `np.linspace(lo, hi, bins + 1)`: edge `i` is
//! `i·step + lo` with `step = (hi − lo) / bins` (a product, then a sum, each rounded
//! in `f64`), and the last edge is `hi` itself; for `float32` data the edges are then
//! rounded to `float32`. Bin `b` holds the values `v` with `edge[b] <= v <
//! edge[b + 1]`, and the last bin also holds `hi`. To find it without a search,
//! numpy computes `trunc((v − lo) / (hi − lo) · bins)` and corrects that index by
//! one against the two edges around it (`_histograms_impl.py`, "The index computation
//! is not guaranteed to give exactly consistent results within ~1 ULP of the bin
//! edges"). This module does the same operations in the same order and precision, so
//! every value lands in numpy's bin, including values on or next to an edge.
//!
//! The edges are computed where they are needed, from `i`, rather than read from a
//! table: the same two roundings give the same bits, and a loop without table reads
//! vectorizes. Every step is one IEEE operation on each element, so the bins (and the
//! counts) are the same at every SIMD level.

use bytemuck::{Pod, Zeroable};

use super::Number;
use crate::error::{Error, Result};

/// The most bins a histogram has.
pub(crate) const MAX_BINS: usize = 1 << 20;

/// Bins up to which a histogram counts on the stack.
const SMALL_BINS: usize = 256;

/// Elements whose bins `count_small` finds before it counts them.
const BIN_BLOCK: usize = 64;

/// A histogram's bins, for data of one [`Number`] type (which decides the precision
/// of the edges): what each worker needs to find an element's bin.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct HistParams {
    /// `lo` as given: the edges are computed from it.
    lo: f64,
    /// `lo` and `hi` in the data's precision (`f32` for `f32` data): the values
    /// counted are those in `lo_t..=hi_t`, and `hi_t` is the last edge.
    lo_t: f64,
    hi_t: f64,
    /// `hi − lo`, numpy's `norm_denom`.
    width: f64,
    /// `(hi − lo) / bins`, `np.linspace`'s step.
    step: f64,
    /// `bins`, as a float.
    bins_f: f64,
    /// `bins`.
    bins: u32,
    /// `bins − 1`, the last bin.
    last: u32,
}

impl HistParams {
    /// Checks the arguments as numpy does and describes the bins: `bins` from 1 to
    /// [`MAX_BINS`], a finite range with `lo < hi` whose width and ends are finite
    /// in the data's precision, and edges that all differ there.
    pub(crate) fn new<T: Number>(bins: usize, (lo, hi): (f64, f64)) -> Result<Self> {
        if bins == 0 || bins > MAX_BINS {
            return Err(Error::InvalidArgument {
                name: "bins",
                reason: format!("{bins} bins; a histogram has 1 to 2^20"),
            });
        }
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::InvalidArgument {
                name: "range",
                reason: format!("({lo}, {hi}) is not a finite range with lo < hi"),
            });
        }
        let precision = if T::SINGLE { "f32" } else { "f64" };
        let (lo_t, hi_t) = (round::<T>(lo), round::<T>(hi));
        // numpy computes `(v - lo) / (hi - lo)` in the data's precision: where the
        // width or an end overflows it, numpy's bins are garbage (an IndexError, or
        // every value in bin 0), so refuse the range.
        let width_t = if T::SINGLE {
            f64::from(hi_t as f32 - lo_t as f32)
        } else {
            hi - lo
        };
        if !(lo_t.is_finite() && hi_t.is_finite() && width_t.is_finite()) {
            return Err(Error::InvalidArgument {
                name: "range",
                reason: format!(
                    "the width of ({lo}, {hi}) overflows {precision}, the data's precision"
                ),
            });
        }
        let params = HistParams {
            lo,
            lo_t,
            hi_t,
            width: hi - lo,
            step: (hi - lo) / bins as f64,
            bins_f: bins as f64,
            bins: bins as u32,
            last: bins as u32 - 1,
        };
        // numpy refuses edges that do not increase ("Too many bins for data range"):
        // a range a few units of the last place wide, or too narrow for f32.
        let mut prev = params.edge::<T>(0);
        for i in 1..=params.last + 1 {
            let e = params.edge::<T>(i);
            if prev >= e {
                return Err(Error::InvalidArgument {
                    name: "bins",
                    reason: format!(
                        "{bins} bins over ({lo}, {hi}) have edges {} and {} that do not \
                         increase in {precision}, the data's precision: too many bins for \
                         the range",
                        i - 1,
                        i
                    ),
                });
            }
            prev = e;
        }
        Ok(params)
    }

    /// The number of bins.
    pub(crate) fn bins(&self) -> usize {
        self.bins as usize
    }

    /// Edge `i` (`0..=bins`), as `np.linspace` computes it and rounds it to the
    /// data's precision.
    #[inline(always)]
    fn edge<T: Number>(&self, i: u32) -> f64 {
        if i == self.bins {
            self.hi_t
        } else {
            // No FMA: numpy rounds the product and the sum separately.
            round::<T>(f64::from(i) * self.step + self.lo)
        }
    }

    /// The bin of `x`, or `bins` (an index past the last) if `x` is outside the
    /// range or NaN. Branch-free, so a loop of it vectorizes.
    #[inline(always)]
    fn bin_of<T: Number>(&self, x: T) -> u32 {
        let v = x.to_f64();
        let inside = v >= self.lo_t && v <= self.hi_t;
        // `(v - lo) / (hi - lo) * bins`, as numpy computes it: the difference in
        // the data's precision, the rest in f64. In range it lies in 0..=bins
        // (about; a little over `bins` for f32): an i32 holds it, and the cast
        // truncates as numpy's `astype(intp)` does. Out of range, NaN or infinite,
        // the cast saturates and the result is discarded below.
        let offset = if T::SINGLE {
            f64::from(v as f32 - self.lo_t as f32)
        } else {
            v - self.lo_t
        };
        let guess = ((offset / self.width * self.bins_f) as i32).clamp(0, self.last as i32);
        // One step down if `v` is below the guessed bin's lower edge, then one up if
        // it is at or past the upper edge (the last bin keeps `hi`).
        let below = v < self.edge_at::<T>(guess);
        let bin = guess - i32::from(below);
        let upper = if below {
            self.edge_at::<T>(guess)
        } else if guess as u32 == self.last {
            self.hi_t
        } else {
            self.edge_at::<T>(guess + 1)
        };
        let bin = bin + i32::from(v >= upper && bin as u32 != self.last);
        if inside { bin as u32 } else { self.bins }
    }

    /// Edge `i` for `i < bins`, without the test for the last one.
    #[inline(always)]
    fn edge_at<T: Number>(&self, i: i32) -> f64 {
        round::<T>(f64::from(i) * self.step + self.lo)
    }
}

/// `v` rounded to the precision numpy computes the edges in for data of type `T`:
/// `f32` for `f32` data, `f64` for the rest.
#[inline(always)]
fn round<T: Number>(v: f64) -> f64 {
    if T::SINGLE { f64::from(v as f32) } else { v }
}

/// Adds the bin counts of `xs` to `acc` (`h.bins()` counts).
#[inline(always)]
pub(crate) fn count<T: Number>(acc: &mut [u64], h: &HistParams, xs: &[T]) {
    if h.bins() <= SMALL_BINS {
        count_small(acc, h, xs);
    } else {
        count_into(acc, h, xs);
    }
}

/// Adds the bin counts of `xs` to `acc` (at most `SMALL_BINS` bins), as
/// `count_into` would, faster. The bins of a block of elements are found first, in a
/// loop without branches the compiler vectorizes (an element outside the range gets
/// the bin `bins`, counted in a spare entry that is never added to `acc`); then they
/// are counted into four histograms on the stack in turn, so that neighbours falling
/// in the same bin do not wait on each other's increment.
#[inline(always)]
fn count_small<T: Number>(acc: &mut [u64], h: &HistParams, xs: &[T]) {
    let mut local = [[0u64; SMALL_BINS + 1]; 4];
    let mut bins = [0u32; BIN_BLOCK];
    for block in xs.chunks(BIN_BLOCK) {
        for (bin, &x) in bins.iter_mut().zip(block) {
            *bin = h.bin_of(x);
        }
        let bins = &bins[..block.len()];
        let mut quads = bins.chunks_exact(4);
        for q in &mut quads {
            for (hist, &b) in local.iter_mut().zip(q) {
                hist[(b as usize).min(SMALL_BINS)] += 1;
            }
        }
        for &b in quads.remainder() {
            local[0][(b as usize).min(SMALL_BINS)] += 1;
        }
    }
    for (bin, a) in acc[..h.bins()].iter_mut().enumerate() {
        *a += local.iter().map(|hist| hist[bin]).sum::<u64>();
    }
}

/// Adds the bin counts of `xs` to `acc` (`h.bins()` counts).
#[inline(always)]
fn count_into<T: Number>(acc: &mut [u64], h: &HistParams, xs: &[T]) {
    let acc = &mut acc[..h.bins()];
    for &x in xs {
        if let Some(a) = acc.get_mut(h.bin_of(x) as usize) {
            *a += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HistParams;

    fn bin<T: super::Number>(x: T, bins: usize, range: (f64, f64)) -> u32 {
        HistParams::new::<T>(bins, range).unwrap().bin_of(x)
    }

    /// The cases of issue 25, with numpy 2.4's answers.
    #[test]
    fn values_next_to_an_edge_land_in_numpys_bin() {
        assert_eq!(bin(0.3f64, 10, (0.0, 1.0)), 2);
        assert_eq!(bin(-1e-17f64, 2, (-1.0, 1.0)), 0);
        assert_eq!(bin(0.009f64, 1000, (0.0, 1.0)), 8);
        assert_eq!(bin(-1.4e-45f32, 5, (-2.0, 3.0)), 1);
        assert_eq!(bin(0.7f32, 10, (0.0, 1.0)), 7);
        assert_eq!(bin(1.0f64, 10, (0.0, 1.0)), 9);
        assert_eq!(bin(1.5f64, 10, (0.0, 1.0)), 10);
        assert_eq!(bin(f64::NAN, 10, (0.0, 1.0)), 10);
    }

    #[test]
    fn ranges_numpy_cannot_bin_are_refused() {
        assert!(HistParams::new::<f64>(4, (-1e308, 1e308)).is_err());
        assert!(HistParams::new::<f64>(1, (-1e308, 1e308)).is_err());
        assert!(HistParams::new::<f32>(2, (-3e38, 3e38)).is_err());
        assert!(HistParams::new::<f32>(1, (0.0, 1e39)).is_err());
        assert!(HistParams::new::<f32>(10, (1.0, 1.0 + 1e-9)).is_err());
        assert!(HistParams::new::<f64>(10, (1.0, 1.0 + 1e-9)).is_ok());
        assert!(HistParams::new::<f64>(3, (0.0, 1e-323)).is_err());
    }
}
