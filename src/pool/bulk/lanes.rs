//! The in-chunk loops of the built-in reductions, written so that the compiler
//! vectorizes them at every SIMD level and their results do not depend on the level.
//!
//! Sums keep [`LANES`] running partial sums, element `i` going to lane `i % LANES`,
//! and add the lanes pairwise at the end; extremes keep `LANES` running extremes.
//! The lane count is fixed, so the order of the additions is too: the same bits at
//! the baseline, AVX2 and AVX-512. Every function here is `#[inline(always)]`, so
//! that it is compiled into each SIMD entry point with the kernel that calls it.

use super::accumulate::Float;
use super::number::Number;

/// Lanes of the in-chunk sums and extremes.
pub(super) const LANES: usize = 16;

/// `Σ term(xs[i], ys[i])` over the elements of `xs` in `LANES` lanes, element `i`
/// going to lane `i % LANES`, the lanes then added pairwise. `ys` holds at least as
/// many elements as `xs` (a sum of one array passes it twice). The lanes are walked
/// in whole blocks of `LANES`, with no index to check, so the loop vectorizes at
/// every SIMD level.
#[inline(always)]
pub(super) fn lane_sum<T: Copy, U: Copy, A: Number>(
    xs: &[T],
    ys: &[U],
    term: impl Fn(T, U) -> A,
) -> A {
    let ys = &ys[..xs.len()];
    let (x_blocks, y_blocks) = (xs.chunks_exact(LANES), ys.chunks_exact(LANES));
    let (x_tail, y_tail) = (x_blocks.remainder(), y_blocks.remainder());
    let mut lanes = [A::ZERO; LANES];
    for (x, y) in x_blocks.zip(y_blocks) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane = lane.add(term(x, y));
        }
    }
    for ((lane, &x), &y) in lanes.iter_mut().zip(x_tail).zip(y_tail) {
        *lane = lane.add(term(x, y));
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            lanes[j] = lanes[j].add(lanes[j + width]);
        }
    }
    lanes[0]
}

/// `Σ term(xs[i])` in lanes, as [`lane_sum`], starting from zero: what `sum`,
/// `mean` and `var` add a chunk with (`0 + Σ`, so that a chunk of `-0.0`s sums to
/// `0.0` in every form).
#[inline(always)]
pub(super) fn chunk_sum<T: Copy, A: Number>(xs: &[T], term: impl Fn(T) -> A) -> A {
    A::ZERO.add(lane_sum(xs, xs, |x, _| term(x)))
}

/// The extreme of `xs` by `better` (strictly), `start` for an empty slice.
///
/// With `SKIP_NAN` false, `better` is [`less`] or [`greater`] (a NaN beats a
/// number) and the result is the first NaN if there is one, as numpy's `min`.
/// With `SKIP_NAN` true, `better` must never pick a NaN ([`less_number`],
/// [`greater_number`]): NaNs are passed over, as numpy's `nanmin`, and the result
/// is the first element (a NaN) when every element is one.
#[inline(always)]
pub(super) fn lane_extreme<T: Number, const SKIP_NAN: bool>(
    xs: &[T],
    start: T,
    better: impl Fn(T, T) -> bool,
) -> T {
    let mut lanes = [start; LANES];
    let mut nan = [false; LANES];
    let mut number = [false; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            let v = c[j];
            lanes[j] = if better(v, lanes[j]) { v } else { lanes[j] };
            nan[j] |= v.is_nan();
            number[j] |= !v.is_nan();
        }
    }
    for (j, &v) in tail.iter().enumerate() {
        lanes[j] = if better(v, lanes[j]) { v } else { lanes[j] };
        nan[j] |= v.is_nan();
        number[j] |= !v.is_nan();
    }
    if SKIP_NAN {
        if !number.iter().any(|&n| n)
            && let Some(&first) = xs.first()
        {
            return first; // every element is a NaN
        }
    } else if nan.iter().any(|&n| n)
        && let Some(first_nan) = xs.iter().copied().find(|v| v.is_nan())
    {
        return first_nan;
    }
    lanes
        .into_iter()
        .fold(start, |acc, v| if better(v, acc) { v } else { acc })
}

/// Whether `a` should replace `b` as the minimum: smaller, or a NaN over a number.
#[inline(always)]
pub(super) fn less<T: Number>(a: T, b: T) -> bool {
    a < b || (a.is_nan() && !b.is_nan())
}

/// Whether `a` should replace `b` as the maximum.
#[inline(always)]
pub(super) fn greater<T: Number>(a: T, b: T) -> bool {
    a > b || (a.is_nan() && !b.is_nan())
}

/// Whether `a` should replace `b` as the minimum of the numbers (numpy's `fmin`):
/// a number smaller than `b`, or any number over a NaN. A NaN never replaces.
#[inline(always)]
pub(super) fn less_number<T: Number>(a: T, b: T) -> bool {
    a < b || (b.is_nan() && !a.is_nan())
}

/// Whether `a` should replace `b` as the maximum of the numbers (numpy's `fmax`).
#[inline(always)]
pub(super) fn greater_number<T: Number>(a: T, b: T) -> bool {
    a > b || (b.is_nan() && !a.is_nan())
}

/// The index of the first element of `xs` that nothing after it beats (0 for an
/// empty slice).
#[inline(always)]
pub(super) fn first_best<T: Number>(xs: &[T], better: impl Fn(T, T) -> bool) -> usize {
    let mut best = 0;
    for (i, &v) in xs.iter().enumerate().skip(1) {
        if better(v, xs[best]) {
            best = i;
        }
    }
    best
}

/// An element of `xs` nearest to `target` (`|term(x) − target|` smallest), as
/// `term(x)`: the shift of a variance (`src/pool/bulk/moments.rs`). Lane `j` keeps
/// the nearest of its elements, the first on a tie; the lanes are then compared
/// in order. A NaN distance never wins, so with a NaN target, or only NaNs, the
/// answer is the first element. `xs` is not empty.
#[inline(always)]
pub(super) fn nearest<T: Copy, A: Float>(xs: &[T], target: A, term: impl Fn(T) -> A) -> A {
    let first = term(xs[0]);
    let mut dist = [A::INFINITY; LANES];
    let mut value = [first; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            let v = term(c[j]);
            let d = (v - target).abs();
            let closer = d < dist[j];
            dist[j] = if closer { d } else { dist[j] };
            value[j] = if closer { v } else { value[j] };
        }
    }
    for (j, &x) in tail.iter().enumerate() {
        let v = term(x);
        let d = (v - target).abs();
        if d < dist[j] {
            dist[j] = d;
            value[j] = v;
        }
    }
    let (mut best, mut best_dist) = (first, A::INFINITY);
    for j in 0..LANES {
        if dist[j] < best_dist {
            best_dist = dist[j];
            best = value[j];
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::{
        chunk_sum, first_best, greater_number, lane_extreme, lane_sum, less, less_number, nearest,
    };

    #[test]
    fn sums_add_lane_by_lane_then_pairwise() {
        let xs: Vec<f64> = (0..37).map(f64::from).collect();
        assert_eq!(lane_sum(&xs, &xs, |x, _| x), 666.0);
        assert_eq!(chunk_sum(&[-0.0f64], |x| x).to_bits(), 0.0f64.to_bits());
        // Widened: 200 + 100 in u64, not u8.
        assert_eq!(chunk_sum(&[200u8, 100], u64::from), 300);
    }

    #[test]
    fn extremes_propagate_or_skip_nans() {
        let xs = [3.0, f64::NAN, -1.0, 7.0];
        assert!(lane_extreme::<_, false>(&xs, f64::INFINITY, less).is_nan());
        assert_eq!(lane_extreme::<_, true>(&xs, f64::NAN, less_number), -1.0);
        assert_eq!(lane_extreme::<_, true>(&xs, f64::NAN, greater_number), 7.0);
        assert!(lane_extreme::<_, true>(&[f64::NAN; 40], f64::NAN, less_number).is_nan());
        assert_eq!(
            lane_extreme::<_, true>(&[f64::INFINITY], f64::NAN, less_number),
            f64::INFINITY
        );
        assert_eq!(first_best(&[2, 1, 1, 0, 0], less), 3);
    }

    #[test]
    fn the_nearest_element_is_one_of_the_data() {
        let xs: Vec<f64> = (0..100).map(|i| f64::from(i) * 1.5).collect();
        assert_eq!(nearest(&xs, 10.0, |x| x), 10.5);
        assert_eq!(nearest(&xs, f64::NAN, |x| x), 0.0);
        assert_eq!(nearest(&[7u8], 1e9f64, f64::from), 7.0);
    }
}
