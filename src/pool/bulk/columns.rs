//! Reductions over the columns of a 2-D array (numpy's `axis=0`): each chunk of
//! rows folds its rows into one partial of a value per column, in a worker; the
//! parent combines the partials in the fixed tree, in chunk order, column by
//! column. So the result depends on the chunk length (in rows) and the range,
//! never on the workers, the start method or the SIMD level.
//!
//! Within a chunk a column is added (or compared) row after row, which
//! vectorizes across the columns. By default a chunk holds at least
//! [`PARTIAL_SHARE`] times as many bytes of rows as its partial has, so that the
//! parent's combine stays a small part of the work, and the chunks are few enough
//! that their partials fit the scratch the pool keeps between calls
//! ([`KEPT_BYTES`]): a reduction that outgrows it maps a fresh segment in every
//! process and faults its pages in, each call.

use std::ops::Range;

use super::accumulate::{Float, Widen};
use super::bulk_builder::Bulk;
use super::chunking::{ChunkBasis, REDUCTION_CHUNKS, default_chunk_len};
use super::lanes::{greater, less};
use super::moments::{ChunkMoments, MOMENT_WORDS, centered, covered};
use super::number::Number;
use super::reduce::{fold_rows_kernels, rows_of, tree_combine};
use crate::array::SharedArray;
use crate::error::Result;
use crate::job::scratch::KEPT_BYTES;
use crate::kernel::{Grid, Kernels};
use crate::layout::JobKind;

/// The least bytes of input rows per byte of partial, for the default chunk length.
const PARTIAL_SHARE: usize = 64;

/// Every chunk's partial (`width` accumulators of `A`, starting as `identity`),
/// for the row fold kernels `k` over `x`, in chunk order. The default chunk
/// length is the engine's for rows of `x`, raised so that a chunk's rows hold at
/// least [`PARTIAL_SHARE`] times its partial's bytes, and so that the partials
/// and the identity fit in [`KEPT_BYTES`] where one partial is small enough; it
/// depends on the array and the range alone, never on the workers.
fn partials<T: Number, A: bytemuck::Pod>(
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
    k: Kernels,
    identity: &[A],
) -> Result<Vec<A>> {
    let rows = rows_of(x)?;
    let bulk = match bulk.options.chunk_len {
        Some(_) => bulk,
        None => {
            let span = match bulk.options.range {
                Some((start, end)) if start <= end && end <= rows.len => end - start,
                _ => rows.len,
            };
            let row_bytes = rows.elem_size.max(1);
            let partial_bytes = size_of_val(identity).max(1);
            let least = (PARTIAL_SHARE * partial_bytes).div_ceil(row_bytes);
            // The identity takes a slot of the scratch too.
            let fit = match KEPT_BYTES / partial_bytes {
                slots @ 2.. => span.div_ceil(slots - 1),
                _ => 1,
            };
            // A row is the element: its bytes are the traffic (the partial stays in
            // cache), and rows need no alignment step of their own.
            let basis = ChunkBasis::new(row_bytes, [], REDUCTION_CHUNKS);
            let len = default_chunk_len(span, basis, 1 << 20).max(least).max(fit);
            bulk.chunk_len(len.max(1))
        }
    };
    bulk.reduce_slots(JobKind::Reduce, k, &[rows], identity)
}

/// The sums of the columns of `x` (of `cols` columns, at least one) over the
/// rows the operation covers, each element widened by `W`: zeros for no row.
pub(super) fn column_sums<T: Number, W: Widen<T>>(
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
    cols: usize,
) -> Result<Vec<W::Acc>> {
    let k = fold_rows_kernels::<(), T, W::Acc, _>(
        #[inline(always)]
        |_: Range<usize>, acc: &mut [W::Acc], rows: Grid<T>| {
            for row in rows.as_slice().chunks_exact(rows.cols()) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = a.add(W::widen(v));
                }
            }
        },
    )
    // A streaming add of each row into the partial: bound by memory, and faster at
    // AVX2 than at AVX-512 on the Zen 4 host (1.14-1.29× against 0.96-0.98× rayon,
    // docs/BENCHMARKS.md), as the other memory-bound reductions are.
    .memory_bound();
    let zeros = vec![W::Acc::ZERO; cols];
    let mut slots = partials(bulk, x, k, &zeros)?;
    let total = tree_combine(&mut slots, cols, |l, r| {
        for (a, &b) in l.iter_mut().zip(r) {
            *a = a.add(b);
        }
    });
    Ok(total.map_or(zeros, <[W::Acc]>::to_vec))
}

/// The count of rows covered, and each column's mean and `Σ(x − mean)²`, widened
/// by `W`: the one-pass method of `src/pool/bulk/moments.rs`, column by column,
/// and numpy's second pass (down the column, in the parent) for a column where
/// it overflowed. `x` has `cols` columns, at least one.
pub(super) fn column_squares<T: Number, W: Widen<T>>(
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
    cols: usize,
) -> Result<(usize, Vec<W::Acc>)>
where
    W::Acc: Float,
{
    // Each chunk: its row count, then each column's sum, shift, Σ(x − k) and
    // Σ(x − k)², in f64 words (exact for an f32 accumulator's values).
    let k = fold_rows_kernels::<(), T, f64, _>(
        #[inline(always)]
        |_: Range<usize>, acc: &mut [f64], rows: Grid<T>| column_moments::<T, W>(acc, rows),
    );
    let width = 1 + (MOMENT_WORDS - 1) * cols;
    let slots = partials(bulk, x, k, &vec![0.0; width])?;
    let n = covered(&bulk, x.shape()[0]);
    let mut squares = Vec::with_capacity(cols);
    for c in 0..cols {
        let chunks: Vec<ChunkMoments<W::Acc>> = slots
            .chunks_exact(width)
            .map(|w| {
                let at = |field: usize| w[1 + field * cols + c];
                ChunkMoments::from_words(&[w[0], at(0), at(1), at(2), at(3)])
            })
            .collect();
        let r = centered(&chunks, n);
        squares.push(match r.squares {
            Some(m2) => m2,
            None => down_the_column::<T, W>(x, c, covered_rows(&bulk, x), r.mean),
        });
    }
    Ok((n, squares))
}

/// The rows an operation over `x` covers (it ran, so its range is valid).
fn covered_rows<T: Number>(bulk: &Bulk<'_>, x: &SharedArray<T>) -> Range<usize> {
    bulk.options
        .range
        .map_or(0..x.shape()[0], |(start, end)| start..end)
}

/// numpy's second pass down column `c` of `x` over `rows`: `Σ(x − mean)²`, row
/// after row (numpy's own order along axis 0), for the infinity or NaN it gives.
fn down_the_column<T: Number, W: Widen<T>>(
    x: &SharedArray<T>,
    c: usize,
    rows: Range<usize>,
    mean: W::Acc,
) -> W::Acc
where
    W::Acc: Float,
{
    let cols = x.shape()[1];
    rows.fold(W::Acc::ZERO, |acc, r| {
        let d = W::widen(x[r * cols + c]) - mean;
        acc + d * d
    })
}

/// A chunk's moments, column by column, into `acc` (see [`column_squares`]).
#[inline(always)]
fn column_moments<T: Number, W: Widen<T>>(acc: &mut [f64], rows: Grid<'_, T>)
where
    W::Acc: Float,
{
    let (cols, n) = (rows.cols(), rows.rows());
    let each = || rows.as_slice().chunks_exact(cols);
    let mut s = vec![W::Acc::ZERO; cols];
    for row in each() {
        for (s, &v) in s.iter_mut().zip(row) {
            *s = *s + W::widen(v);
        }
    }
    let means: Vec<W::Acc> = s
        .iter()
        .map(|&s| super::accumulate::divide_by_count(s, n))
        .collect();
    // The shift of each column: its element nearest the column's mean, the first
    // on a tie.
    let mut k: Vec<W::Acc> = rows.row(0).iter().map(|&v| W::widen(v)).collect();
    let mut dist = vec![W::Acc::INFINITY; cols];
    for row in each() {
        for (((k, dist), &m), &v) in k.iter_mut().zip(&mut dist).zip(&means).zip(row) {
            let v = W::widen(v);
            let d = (v - m).abs();
            let closer = d < *dist;
            *dist = if closer { d } else { *dist };
            *k = if closer { v } else { *k };
        }
    }
    let (mut l, mut q) = (vec![W::Acc::ZERO; cols], vec![W::Acc::ZERO; cols]);
    for row in each() {
        for (((l, q), &k), &v) in l.iter_mut().zip(&mut q).zip(&k).zip(row) {
            let d = W::widen(v) - k;
            *l = *l + d;
            *q = *q + d * d;
        }
    }
    acc[0] = n as f64;
    let fields = [&s, &k, &l, &q];
    for (field, values) in fields.into_iter().enumerate() {
        for (w, v) in acc[1 + field * cols..1 + (field + 1) * cols]
            .iter_mut()
            .zip(values)
        {
            *w = v.to_f64();
        }
    }
}

/// Each column's smallest (`MAX` false) or largest element over the rows the
/// operation covers, NaN where the column holds one (numpy's `min(axis=0)`).
/// `x` has `cols` columns and the operation covers at least one row.
pub(super) fn column_extremes<T: Number, const MAX: bool>(
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
    cols: usize,
) -> Result<Vec<T>> {
    let k = fold_rows_kernels::<(), T, T, _>(
        #[inline(always)]
        |_: Range<usize>, acc: &mut [T], rows: Grid<T>| {
            let mut each = rows.as_slice().chunks_exact(rows.cols());
            if let Some(first) = each.next() {
                acc.copy_from_slice(first);
            }
            for row in each {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = if better::<T, MAX>(v, *a) { v } else { *a };
                }
            }
        },
    );
    let start = if MAX {
        T::MAX_IDENTITY
    } else {
        T::MIN_IDENTITY
    };
    let mut slots = partials(bulk, x, k, &vec![start; cols])?;
    let best = tree_combine(&mut slots, cols, |l, r| {
        for (a, &b) in l.iter_mut().zip(r) {
            if better::<T, MAX>(b, *a) {
                *a = b;
            }
        }
    });
    Ok(best.map_or_else(|| vec![start; cols], <[T]>::to_vec))
}

/// Each column's row index of its first smallest (`MAX` false) or largest
/// element, or of its first NaN, over the rows the operation covers (indices
/// into the whole array, numpy's `argmin(axis=0)`). `x` has `cols` columns and
/// the operation covers at least one row.
pub(super) fn column_arg_extremes<T: Number, const MAX: bool>(
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
    cols: usize,
) -> Result<Vec<u64>> {
    let k = fold_rows_kernels::<(), T, u64, _>(
        #[inline(always)]
        |range: Range<usize>, acc: &mut [u64], rows: Grid<T>| {
            let mut best: Vec<T> = rows.row(0).to_vec();
            acc.fill(range.start as u64);
            let each = rows.as_slice().chunks_exact(rows.cols());
            for (r, row) in range.zip(each).skip(1) {
                for ((a, b), &v) in acc.iter_mut().zip(&mut best).zip(row) {
                    let wins = better::<T, MAX>(v, *b);
                    *b = if wins { v } else { *b };
                    *a = if wins { r as u64 } else { *a };
                }
            }
        },
    );
    let mut slots = partials(bulk, x, k, &vec![0u64; cols])?;
    let xs = x.as_slice();
    // Ties keep the left (earlier) row: the first occurrence wins.
    let best = tree_combine(&mut slots, cols, |l, r| {
        for (c, (a, &b)) in l.iter_mut().zip(r).enumerate() {
            if better::<T, MAX>(xs[b as usize * cols + c], xs[*a as usize * cols + c]) {
                *a = b;
            }
        }
    });
    Ok(best.map_or_else(|| vec![0; cols], <[u64]>::to_vec))
}

/// [`greater`] for `MAX`, else [`less`].
#[inline(always)]
fn better<T: Number, const MAX: bool>(a: T, b: T) -> bool {
    if MAX { greater(a, b) } else { less(a, b) }
}

/// The partial's words for the fields of one column, for tests.
#[cfg(test)]
fn column_words(slot: &[f64], cols: usize, c: usize) -> [f64; MOMENT_WORDS] {
    let at = |field: usize| slot[1 + field * cols + c];
    [slot[0], at(0), at(1), at(2), at(3)]
}

#[cfg(test)]
mod tests {
    use super::{column_moments, column_words};
    use crate::kernel::Grid;
    use crate::pool::bulk::accumulate::{Averaged, DefaultDtype};
    use crate::pool::bulk::moments::ChunkMoments;

    #[test]
    fn a_chunks_column_moments_are_its_columns_moments() {
        // 5 rows × 3 columns; column c of row r is r·(c + 1) + 1e6.
        let xs: Vec<f64> = (0..5)
            .flat_map(|r| (0..3).map(move |c| f64::from(r * (c + 1)) + 1e6))
            .collect();
        let mut acc = vec![0.0; 1 + 4 * 3];
        column_moments::<f64, Averaged<DefaultDtype>>(&mut acc, Grid::new(&xs, 3));
        for c in 0..3 {
            let column: Vec<f64> = (0..5).map(|r| xs[r * 3 + c]).collect();
            let want = ChunkMoments::of(&column, |v: f64| v).words();
            assert_eq!(column_words(&acc, 3, c), want, "column {c}");
        }
    }
}
