//! Reference moments and the stated error bounds for the tests of `mean`, `var`
//! and `std` against numpy (`tests/bulk_stats.rs`, `tests/bulk_axis.rs`).
//!
//! A test includes this file alone: `#[path = "common/moments.rs"] mod moments;`.
//!
//! **The bounds.** For `n` values with exact mean `μ` and exact `M2 = Σ(x − μ)²`,
//! in a format of unit roundoff `ε`:
//!
//! - shmpool's `M2` (`src/pool/bulk/moments.rs`) is within
//!   `(8·(t + 8) + ⌈log2 p⌉ + 8)·ε·M2` of the exact one, where `t` is the longest
//!   run of sequential additions in a partial (a chunk's lane, `⌈c/16⌉` for chunks
//!   of `c`; a column's rows in a chunk along axis 0; a row's lane along axis 1)
//!   and `p` the number of partials combined in the tree. The shifted terms of a
//!   chunk add up to at most 7 times its share of `M2`, each summed with at most
//!   `t + 8` roundings; the tree adds `⌈log2 p⌉`; the correction `R²/n` cancels the
//!   mean's error to first order, what is left being far below `ε·M2`.
//! - numpy's two-pass `M2` carries `n·δ²` on top, `δ` being its mean's error, and
//!   the rounding of its own sums: with `d` the depth of its sums (pairwise along
//!   a contiguous axis: at most `⌈log2 n⌉ + 32 + n/8192`, its 8192-element
//!   buffers being added in sequence when it casts; sequential down axis 0: `n`),
//!   `δ ≤ d·ε·Σ|x|/n + 2ε·|μ|`, and `|M2_np − M2| ≤ (d + 3)·ε·(M2 + n·δ²) + n·δ²`.
//!
//! So `|var − var_np| ≤ (ours + numpy's)/(n − ddof) + 4ε·var` (the divisions'
//! roundings), and for `std`, `|s − s_np| = |var − var_np|/(s + s_np)` plus `2ε·s`.
//! Means are within the bound of a sum, `2·n·ε·Σ|x|`, over `n`, plus `4ε·|μ|`.

#![allow(dead_code)]

/// A compensated (Neumaier) sum: within `2ε·|Σ|` plus `O(n·ε²)·Σ|x|` of the exact.
pub fn neumaier(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for x in xs {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

/// The moments of some values, computed far more precisely than the code under
/// test: `M2` within about `4ε₆₄·M2` of the exact, from the corrected two-pass
/// formula over compensated sums.
#[derive(Debug, Clone, Copy)]
pub struct Moments {
    pub n: usize,
    pub mean: f64,
    pub m2: f64,
    /// `Σ|x|`.
    pub abs_sum: f64,
}

impl Moments {
    /// The moments of `xs` (finite values).
    pub fn of(xs: &[f64]) -> Moments {
        let n = xs.len();
        let mean = neumaier(xs.iter().copied()) / n as f64;
        let r = neumaier(xs.iter().map(|&x| x - mean));
        let q = neumaier(xs.iter().map(|&x| (x - mean) * (x - mean)));
        Moments {
            n,
            mean,
            m2: (q - r * r / n as f64).max(0.0),
            abs_sum: neumaier(xs.iter().map(|x| x.abs())),
        }
    }

    /// The variance, `M2 / (n − ddof)`.
    pub fn var(&self, ddof: usize) -> f64 {
        self.m2 / (self.n - ddof) as f64
    }
}

/// `⌈log2 p⌉` (0 for `p <= 1`).
pub fn log2_ceil(p: usize) -> f64 {
    f64::from(usize::BITS - p.saturating_sub(1).leading_zeros())
}

/// shmpool's relative bound on `M2`: `(8·(t + 8) + ⌈log2 p⌉ + 8)·ε`.
pub fn ours_relative(t: usize, p: usize, eps: f64) -> f64 {
    (8.0 * (t as f64 + 8.0) + log2_ceil(p) + 8.0) * eps
}

/// numpy's depth of a sum of `n` values along a contiguous axis.
pub fn numpy_pairwise_depth(n: usize) -> f64 {
    log2_ceil(n) + 32.0 + (n / 8192) as f64
}

/// numpy's absolute bound on its `M2`, its sums `depth` deep.
pub fn numpy_m2_error(m: &Moments, depth: f64, eps: f64) -> f64 {
    let n = m.n as f64;
    let delta = depth * eps * m.abs_sum / n + 2.0 * eps * m.mean.abs();
    (depth + 3.0) * eps * (m.m2 + n * delta * delta) + n * delta * delta
}

/// The bound on `|var − var_np|` for `ddof < n`: shmpool's relative bound `ours`
/// and numpy's sums `depth` deep.
pub fn var_tolerance(m: &Moments, ddof: usize, ours: f64, depth: f64, eps: f64) -> f64 {
    let div = (m.n - ddof) as f64;
    (ours * m.m2 + numpy_m2_error(m, depth, eps)) / div + 4.0 * eps * m.var(ddof)
}

/// The bound on `|s − s_np|` for two standard deviations whose variances are
/// within `var_tol` of each other.
pub fn std_tolerance(s: f64, s_np: f64, var_tol: f64, eps: f64) -> f64 {
    if s + s_np == 0.0 {
        return 0.0;
    }
    var_tol / (s + s_np) + 2.0 * eps * s.max(s_np)
}

/// The bound on `|mean − mean_np|`: two sums of `n` terms over `n`, and the
/// divisions' roundings.
pub fn mean_tolerance(m: &Moments, eps: f64) -> f64 {
    2.0 * eps * m.abs_sum + 4.0 * eps * m.mean.abs()
}

/// Whether two results agree as the tests require of non-finite ones: equal, or
/// both NaN.
pub fn same_special(got: f64, want: f64) -> bool {
    got == want || (got.is_nan() && want.is_nan())
}
