//! The bins of `np.histogram(x, bins, range=(lo, hi))`, found as numpy finds them.
//!
//! numpy computes the edges with `np.linspace(lo, hi, bins + 1)`: edge `i` is
//! `i·step + lo` with `step = (hi − lo) / bins` (a product, then a sum, each rounded
//! in `f64`), and the last edge is `hi` itself; for `float32` data the edges are then
//! rounded to `float32`. Bin `b` holds the values `v` with `edge[b] <= v <
//! edge[b + 1]`, and the last bin also holds `hi`. To find it without a search,
//! numpy computes the guess `g = trunc((v − lo) / (hi − lo) · bins)` and corrects it
//! by one against the two edges around it (`_histograms_impl.py`: "The index
//! computation is not guaranteed to give exactly consistent results within ~1 ULP
//! of the bin edges"): one down if `v < edge[g]`, else one up if `v >= edge[g + 1]`
//! (but never past the last bin). The edges increase strictly (numpy and
//! [`HistParams::new`] refuse others), so at most one of the two applies.
//!
//! The correction lands on the edge rule's bin `b*` whenever the guess is within
//! one of it. Where it is not, numpy's answer is whatever its guess makes it, so
//! this module has two guesses:
//!
//! - **numpy's** (`EXACT`): the same operations in the same order and precision,
//!   the difference `v − lo` in the data's precision, then a division and a
//!   product in `f64`, truncated. Same guess, same correction, same bin, always.
//! - **a faster one**, taken when the arguments prove both guesses within one of
//!   `b*`, so that both land on `b*`: `(v − lo) · (bins / (hi − lo))` rounded to
//!   the nearest whole number, a product where numpy divides. The proof, in
//!   `HistParams::guess_is_close`: every edge lies within `D` bins of `lo + i·w`
//!   (`w = (hi − lo) / bins`), and each computed position within `F` bins of the
//!   exact `(v − lo) / w`; a truncated guess is then within `D + F + 1` of `b*`, a
//!   rounded one within `D + F + 1/2`, so `D + F <= 1/2` puts both within one. The
//!   fast guess is taken for `D + F <= 1/4`: ordinary ranges, where `D + F` is
//!   about `bins · 10^-16` for `f64` (`10^-7` for `f32`). Ranges a few units in
//!   the last place wide per bin (`(1e15, 1e15 + 12.8)` in 64 bins) take numpy's.
//!
//! The edges are computed where they are needed, from `g`, rather than read from a
//! table: the same two roundings give the same bits, and the loop vectorizes at
//! every SIMD level, SSE2 included (no branch, no table read, no saturating
//! float-to-integer cast: bin numbers are whole floats, read out with the 2^52
//! trick). Every step is one IEEE operation on each element, so the bins (and the
//! counts) are the same at every SIMD level.

use bytemuck::{Pod, Zeroable};

use super::super::number::Number;
use super::tally::{BinOf, Weigh, tally};
use crate::error::{Error, Result};

/// The most bins a histogram has.
pub(crate) const MAX_BINS: usize = 1 << 20;

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
    /// `bins − 1`, as a float.
    last_f: f64,
    /// `bins / (hi − lo)`, for the fast guess.
    scale: f64,
    /// `bins`.
    bins: u64,
    /// 1 where the fast guess lands every value in numpy's bin (see the module
    /// docs), 0 where numpy's own guess is needed.
    fast: u64,
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
            last_f: (bins - 1) as f64,
            scale: bins as f64 / (hi - lo),
            bins: bins as u64,
            fast: u64::from(guess_is_close::<T>(bins, (lo, hi))),
        };
        // numpy refuses edges that do not increase ("Too many bins for data range"):
        // a range a few units of the last place wide, or too narrow for f32.
        let mut prev = params.edge::<T>(0);
        for i in 1..=bins as u32 {
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

    /// Every edge, `bins + 1` of them, as numpy computes them for data of type `T`
    /// (the `f32` values for `f32` data).
    pub(super) fn edges<T: Number>(&self) -> Vec<f64> {
        (0..=self.bins as u32).map(|i| self.edge::<T>(i)).collect()
    }

    /// Edge `i` (`0..=bins`), as `np.linspace` computes it and rounds it to the
    /// data's precision.
    #[inline(always)]
    fn edge<T: Number>(&self, i: u32) -> f64 {
        if u64::from(i) == self.bins {
            self.hi_t
        } else {
            self.edge_at::<T>(f64::from(i))
        }
    }

    /// The bin of `x`, or `bins` (an index past the last) if `x` is outside the
    /// range or NaN: from numpy's guess (`EXACT`), or from the fast one, which
    /// only a histogram whose `fast` is set may use (see the module docs).
    ///
    /// Every step is a float operation or a select, so a loop of it vectorizes.
    /// Bin numbers are carried as `2^52 + b`, whose low bits are `b`.
    #[inline(always)]
    fn bin_of<T: Number, const EXACT: bool>(&self, x: T) -> u32 {
        let v = x.to_f64();
        let inside = v >= self.lo_t && v <= self.hi_t;
        // The difference in the data's precision, as numpy computes it. In range it
        // is at least 0, and the position below at most `bins` (a little more for
        // f32): numpy takes `bins` for the last bin, as clamping to `last_f` does.
        // Out of range or NaN, anything may come out; it is discarded below.
        let offset = if T::SINGLE {
            f64::from(v as f32 - self.lo_t as f32)
        } else {
            v - self.lo_t
        };
        let guess = if EXACT {
            // numpy's `(v - lo) / norm_denom * bins`, truncated.
            let f = offset / self.width * self.bins_f;
            trunc_small(if f < self.last_f { f } else { self.last_f })
        } else {
            let f = offset * self.scale;
            let f = if f < self.last_f { f } else { self.last_f };
            (f + TWO_52) - TWO_52
        };
        let lower = self.edge_at::<T>(guess);
        let upper = self.edge_at::<T>(guess + 1.0);
        let bin = if v < lower {
            guess - 1.0
        } else if v >= upper && guess != self.last_f {
            guess + 1.0
        } else {
            guess
        };
        let bin = if inside { bin } else { self.bins_f };
        // The low bits of `2^52 + bin` are `bin`, a whole number below 2^32.
        (bin + TWO_52).to_bits() as u32
    }

    /// Edge `i` for `i < bins` (a whole number), without the test for the last one;
    /// `i = bins` gives a number above every value the bin's test sees (the last
    /// bin is never raised).
    #[inline(always)]
    fn edge_at<T: Number>(&self, i: f64) -> f64 {
        // No FMA: numpy rounds the product and the sum separately.
        round::<T>(i * self.step + self.lo)
    }
}

/// Adds the tallies of `xs` (weighed by `w`) to `acc`, one entry per bin of `h`.
#[inline(always)]
pub(super) fn tally_uniform<T: Number, G: Weigh>(
    acc: &mut [G::Sum],
    h: &HistParams,
    xs: &[T],
    w: G,
) {
    if h.fast != 0 {
        tally(acc, &Guess::<false>(h), xs, w);
    } else {
        tally(acc, &Guess::<true>(h), xs, w);
    }
}

/// The bins of `h`, found by numpy's guess (`EXACT`) or by the fast one.
struct Guess<'a, const EXACT: bool>(&'a HistParams);

impl<T: Number, const EXACT: bool> BinOf<T> for Guess<'_, EXACT> {
    #[inline(always)]
    fn bins(&self) -> usize {
        self.0.bins()
    }
    #[inline(always)]
    fn bin(&self, x: T) -> u32 {
        self.0.bin_of::<T, EXACT>(x)
    }
}

/// Whether, for `bins` bins over `(lo, hi)` and data of type `T`, both numpy's
/// guess and the fast one are within one bin of the edge rule's bin, for every
/// value: `D + F <= 1/4` (module docs), with `u` the unit roundoff of `f64` and
/// `u_t` that of the data's precision where it is coarser (`f32`):
///
/// - `D`, how far edge `i` may lie from `lo + i·w`, in bins: `(hi − lo)`, the step
///   and `i·step` are rounded (`3u·bins`), the sum with `lo` and the rounding to
///   `T` (`M·(u + u_t)/w`, `M = max(|lo|, |hi|)`);
/// - `F`, how far a computed position may lie from `(v − lo)/w`: the difference in
///   the data's precision and the three roundings after it (`bins·(u_d + 3u)`,
///   `u_d` = `u_t`, or `u` for `f64` and integers), and `lo` rounded to `T`
///   (`M·u_t/w`).
///
/// Each term is taken 1% larger to cover the second-order terms. Where a result
/// is subnormal, its rounding error is absolute rather than relative, at most half
/// the smallest subnormal (`η`, of `f64` or of `T`): four such roundings add
/// `4·η/w` bins. A `bins / (hi − lo)` that overflows (a subnormal range) rules the
/// fast guess out.
fn guess_is_close<T: Number>(bins: usize, (lo, hi): (f64, f64)) -> bool {
    let u = f64::EPSILON / 2.0;
    let (u_t, eta_t) = if T::SINGLE {
        (
            f64::from(f32::EPSILON) / 2.0,
            f64::from(f32::from_bits(1)) / 2.0,
        )
    } else {
        (0.0, 0.0)
    };
    let eta = f64::from_bits(1) / 2.0;
    let u_d = u_t.max(u);
    let n = bins as f64;
    let w = (hi - lo) / n;
    let m = lo.abs().max(hi.abs());
    let d = 3.01 * u * n + 1.01 * m * (u + u_t) / w;
    let f = n * (u_d + 3.01 * u) + 1.01 * m * u_t / w;
    let subnormal = 4.0 * (eta + eta_t) / w;
    (n / (hi - lo)).is_finite() && d + f + subnormal <= 0.25
}

/// 2^52: floats at least this large are whole numbers.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// `f.trunc()` for `0 <= f < 2^52`, in float operations that vectorize without
/// SSE4.1's `roundpd`: `f + 2^52 - 2^52` rounds `f` to the nearest whole number,
/// one less if that is above `f`.
#[inline(always)]
fn trunc_small(f: f64) -> f64 {
    let nearest = (f + TWO_52) - TWO_52;
    if nearest > f { nearest - 1.0 } else { nearest }
}

/// `v` rounded to the precision numpy computes the edges in for data of type `T`:
/// `f32` for `f32` data, `f64` for the rest.
#[inline(always)]
fn round<T: Number>(v: f64) -> f64 {
    if T::SINGLE { f64::from(v as f32) } else { v }
}

#[cfg(test)]
mod tests {
    use super::HistParams;

    /// The bin of `x` by both guesses, which must agree where the fast one is
    /// allowed.
    fn bin<T: super::Number>(x: T, bins: usize, range: (f64, f64)) -> u32 {
        let h = HistParams::new::<T>(bins, range).unwrap();
        let exact = h.bin_of::<T, true>(x);
        if h.fast != 0 {
            assert_eq!(h.bin_of::<T, false>(x), exact, "{bins} bins over {range:?}");
        }
        exact
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
    fn the_fast_guess_is_kept_for_ranges_a_few_ulps_wide_per_bin() {
        let fast = |bins, range| HistParams::new::<f64>(bins, range).unwrap().fast != 0;
        let fast32 = |bins, range| HistParams::new::<f32>(bins, range).unwrap().fast != 0;
        assert!(fast(256, (0.0, 1.0)) && fast(1 << 20, (-1e300, 1e300)));
        assert!(fast32(256, (-100.0, 100.0)) && fast32(1 << 20, (0.0, 1.0)));
        assert!(!fast(64, (1e15, 1e15 + 12.8)));
        assert!(!fast32(500, (1e4, 1e4 + 1.0)));
        // A subnormal range: bins / (hi - lo) overflows.
        assert!(!fast(6, (0.0, 1e-320)));
        assert!(fast(6, (0.0, 1e-300)));
    }

    /// Where the fast guess is allowed it gives numpy's bin: values on and one unit
    /// in the last place either side of every edge of seeded random ranges.
    #[test]
    fn the_fast_guess_agrees_with_numpys_next_to_every_edge() {
        let mut state = 0x5EED_0025u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // `e` and the floats either side of it.
        let neighbours = |e: f64| {
            let step = |up: bool| match (e == 0.0, (e > 0.0) == up) {
                (true, _) => f64::from_bits(1).copysign(if up { 1.0 } else { -1.0 }),
                (false, true) => f64::from_bits(e.to_bits() + 1),
                (false, false) => f64::from_bits(e.to_bits() - 1),
            };
            [e, step(true), step(false)]
        };
        let mut checked = 0;
        for _ in 0..300 {
            let lo = (next() - 0.5) * 10f64.powi((next() * 24.0) as i32 - 12);
            let hi = lo + next() * 10f64.powi((next() * 24.0) as i32 - 12) + f64::MIN_POSITIVE;
            let bins = 1 + (next() * 3000.0) as usize;
            let (Ok(h), Ok(h32)) = (
                HistParams::new::<f64>(bins, (lo, hi)),
                HistParams::new::<f32>(bins, (lo, hi)),
            ) else {
                continue;
            };
            for i in (0..=bins).step_by(1 + bins / 50) {
                for v in neighbours(h.edge::<f64>(i as u32)) {
                    if h.fast != 0 {
                        assert_eq!(
                            h.bin_of::<f64, false>(v),
                            h.bin_of::<f64, true>(v),
                            "{v} in {bins} over ({lo}, {hi})"
                        );
                        checked += 1;
                    }
                    let v32 = v as f32;
                    if h32.fast != 0 {
                        assert_eq!(
                            h32.bin_of::<f32, false>(v32),
                            h32.bin_of::<f32, true>(v32),
                            "{v32} in {bins} over ({lo}, {hi}), f32"
                        );
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
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
