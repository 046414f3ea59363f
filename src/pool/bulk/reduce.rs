//! Deterministic reductions: each chunk folds its elements in order into one
//! partial, in a worker; the parent combines the partials in a fixed binary tree, in
//! chunk order. The result depends on the chunk length (and the range), never on
//! the number of workers, the start method, the SIMD level or the scheduling, so a
//! floating-point sum is bit-identical from run to run. Reductions therefore choose
//! their default chunk length from the array alone.

use bytemuck::Pod;

use std::ops::Range;

use super::bulk_builder::{Bulk, check_lengths, chunked, traffic};
use super::engine::{self, OperandSpec, Role};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::{
    ArrayArg, AssertZeroSized, FoldBody, FoldEachRow, FoldOne, FoldRowsBody, Grid, Inputs,
    KernelEnv, KernelFn, Kernels, ReduceBody, kernels,
};
use crate::layout::JobKind;

impl<E: KernelEnv> Bulk<'_, E> {
    /// `combine` over `map(x)` of every element (with parameters, `map(p, x)`),
    /// starting from `identity`: numpy's `np.add.reduce(f(x))`, deterministic. Each
    /// chunk computes `combine(…combine(combine(identity, map(x0)), map(x1))…)` in
    /// order; the parent combines the chunks' partials pairwise in a fixed tree, in
    /// chunk order. `identity` must be an identity of `combine` (0 for a sum, `-inf`
    /// for a max), since every chunk starts from it. `inputs` is `&x` or a tuple of
    /// arrays, as for maps.
    ///
    /// The result is bit-identical for any number of workers, start method, SIMD
    /// level and scheduling, given the same chunk length (the default depends only
    /// on the array's length and element sizes).
    ///
    /// # Errors
    /// As for [`Pool::map_into`](crate::Pool::map_into): a kernel panic or a worker
    /// death fails the reduction (or is retried, see [`Bulk::retries`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::from_slice(&[1.0f64, 2.0, 3.0])?;
    /// let b = shmpool::SharedArray::from_slice(&[4.0f64, 5.0, 6.0])?;
    /// let dot = pool.bulk().map_reduce((&a, &b), 0.0, |(a, b): (f64, f64)| a * b, |x, y| x + y)?;
    /// assert_eq!(dot, 32.0);
    /// let x = shmpool::SharedArray::try_from_iter((1..=100).map(f64::from))?;
    /// let shift = 1.0;
    /// // The sum of squares of x - shift.
    /// let ss = pool.bulk().with(shift).map_reduce(
    ///     &x,
    ///     0.0,
    ///     |s: &f64, v: f64| (v - s) * (v - s),
    ///     |a: f64, b: f64| a + b,
    /// )?;
    /// assert_eq!(ss, 328_350.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_reduce<I, A, F, C>(self, inputs: I, identity: A, map: F, combine: C) -> Result<A>
    where
        I: Inputs,
        A: Pod,
        F: KernelFn<E, (I::Item,), Output = A>,
        C: Fn(A, A) -> A + Copy,
    {
        let ((), ()) = (AssertZeroSized::<F>::OK, AssertZeroSized::<C>::OK);
        let _ = map; // only its type travels: the worker conjures the value
        // Elementwise, as a map: memory-bound (`crate::simd::Levels`).
        let k = kernels::<ReduceBody<E, I, A, F, C>>().memory_bound();
        let ins = inputs.arrays();
        let mut slots = self.reduce_slots(JobKind::Reduce, k, &ins, &[identity])?;
        Ok(
            tree_combine(&mut slots, 1, |l, r| l[0] = combine(l[0], r[0]))
                .map_or(identity, |s| s[0]),
        )
    }

    /// A reduction whose kernel folds a whole chunk at a time into an accumulator:
    /// `fold(&mut acc, inputs[chunk])` (with parameters, `fold(p, &mut acc, ...)`),
    /// with `acc` starting as `identity` in each chunk. The partials are combined by
    /// `combine` in the parent, in a fixed tree in chunk order, as for
    /// [`Bulk::map_reduce`]. `combine` runs only in the parent, so it may capture. A
    /// histogram is a fold whose accumulator is an array of bins.
    ///
    /// A chunk is a run of elements whose length is the chunk length's, wherever
    /// rows begin and end, so the inputs must be 1-D: a fold over the rows of a 2-D
    /// array is [`Bulk::fold_rows`], and its sums, means, extremes along an axis
    /// are [`Bulk::sum_axis`] and its siblings. (A kernel that took its slice for a
    /// row would see only as many rows as there are chunks, a number that changes
    /// with the chunk length, and no error.)
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an input has more than one axis (reshape it to
    /// 1-D to fold its elements, in chunks that ignore its rows); as for
    /// [`Bulk::map_reduce`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter((0..1000u32).map(|i| i % 7))?;
    /// // Counts of each residue: an accumulator of seven bins.
    /// let counts = pool.bulk().fold_reduce(
    ///     &x,
    ///     [0u64; 7],
    ///     |acc: &mut [u64; 7], xs: &[u32]| {
    ///         for &v in xs {
    ///             acc[v as usize] += 1;
    ///         }
    ///     },
    ///     |mut a, b| {
    ///         for (a, b) in a.iter_mut().zip(b) {
    ///             *a += b;
    ///         }
    ///         a
    ///     },
    /// )?;
    /// assert_eq!(counts, [143, 143, 143, 143, 143, 143, 142]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn fold_reduce<I, A, F, C>(
        self,
        inputs: I,
        identity: A,
        fold: F,
        mut combine: C,
    ) -> Result<A>
    where
        I: Inputs,
        A: Pod,
        F: for<'a> KernelFn<E, (&'a mut A, I::Slices<'a>), Output = ()>,
        C: FnMut(A, A) -> A,
    {
        let () = AssertZeroSized::<F>::OK;
        let ins = inputs.arrays();
        if let Some(a) = ins.iter().find(|a| a.shape.len() > 1) {
            return Err(Error::InvalidArgument {
                name: "fold_reduce input",
                reason: format!(
                    "its chunks run across the rows of an array of shape {:?}: fold rows \
                     with `fold_rows`, reduce along an axis with `sum_axis` and the like, \
                     or reshape the array to 1-D to fold its elements",
                    a.shape
                ),
            });
        }
        let k = fold_kernels::<E, I, A, _>(FoldOne(fold));
        let mut slots = self.reduce_slots(JobKind::Reduce, k, &ins, &[identity])?;
        Ok(
            tree_combine(&mut slots, 1, |l, r| l[0] = combine(l[0], r[0]))
                .map_or(identity, |s| s[0]),
        )
    }

    /// A reduction over the rows of a 2-D array: `fold(&mut acc, row)` (with
    /// parameters, `fold(p, &mut acc, row)`) for every row in order, `acc` starting
    /// as `identity` in each chunk of rows; the partials are combined by `combine`
    /// in the parent, in a fixed tree in chunk order, as for [`Bulk::fold_reduce`].
    /// Whatever the chunk length, the kernel sees whole rows, one call each: the
    /// form for a custom reduction of columns (column sums are
    /// [`Bulk::sum_axis`]). Chunks, `.range(a..b)` and the chunk ranges in errors
    /// count rows, as for [`Bulk::map_rows_into`]. Deterministic, given the chunk
    /// length.
    ///
    /// # Errors
    /// [`Error::Dimensionality`] if `x` is not 2-D; as for [`Bulk::map_reduce`]
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// const COLS: usize = 512;
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::<f64>::filled(6144 * COLS, 1.0)?.reshape(&[6144, COLS])?;
    /// // Column sums with a custom accumulator: one row per call, at any chunk length.
    /// let sums = pool.bulk().fold_rows(
    ///     &x,
    ///     [0.0; COLS],
    ///     |acc: &mut [f64; COLS], row: &[f64]| {
    ///         for (a, v) in acc.iter_mut().zip(row) {
    ///             *a += v;
    ///         }
    ///     },
    ///     |mut a, b| {
    ///         a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    ///         a
    ///     },
    /// )?;
    /// assert!(sums.iter().all(|&s| s == 6144.0));
    /// // With a parameter: how many rows start above a threshold.
    /// let rows = pool.bulk().with(0.5f64).fold_rows(
    ///     &x,
    ///     0u64,
    ///     |t: &f64, n: &mut u64, row: &[f64]| *n += u64::from(row[0] > *t),
    ///     |a, b| a + b,
    /// )?;
    /// assert_eq!(rows, 6144);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn fold_rows<T, A, F, C>(
        self,
        x: &SharedArray<T>,
        identity: A,
        fold: F,
        mut combine: C,
    ) -> Result<A>
    where
        T: Pod,
        A: Pod,
        F: for<'a> KernelFn<E, (&'a mut A, &'a [T]), Output = ()>,
        C: FnMut(A, A) -> A,
    {
        let () = AssertZeroSized::<F>::OK;
        let k = fold_rows_kernels::<E, T, A, _>(FoldEachRow(fold));
        let mut slots = self.reduce_slots(JobKind::Reduce, k, &[rows_of(x)?], &[identity])?;
        Ok(
            tree_combine(&mut slots, 1, |l, r| l[0] = combine(l[0], r[0]))
                .map_or(identity, |s| s[0]),
        )
    }

    /// Runs a reduction kernel and returns every chunk's partial (`identity.len()`
    /// accumulators each), in chunk order. Operands: the inputs, the partials and
    /// the identity, as the reduction bodies expect.
    pub(super) fn reduce_slots<A: Pod>(
        &self,
        kind: JobKind,
        kernels: Kernels,
        ins: &[ArrayArg<'_>],
        identity: &[A],
    ) -> Result<Vec<A>> {
        let len = check_lengths(ins, &[])?;
        let width = identity.len();
        let slot_bytes = size_of_val(identity).max(1);
        let inner = self.inner();
        // A dry plan (no partials yet) to learn the chunking.
        let dry = self.operation(
            kind,
            kernels,
            chunked(ins).collect(),
            len,
            traffic(ins, &[]),
            false,
        )?;
        let dry_plan = engine::plan(inner, &dry)?;
        // Wide accumulators (a histogram of many bins) take fewer, longer default
        // chunks, so that the partials stay within MAX_PARTIAL_BYTES. The chunk
        // length still depends on the arrays and the accumulator alone.
        let chunk_len = match dry.options.chunk_len {
            Some(n) => n,
            None => {
                let most = (MAX_PARTIAL_BYTES / slot_bytes).saturating_sub(1).max(1);
                dry_plan.chunk_len.max(dry_plan.range.len().div_ceil(most))
            }
        };
        let chunks = dry_plan.range.len().div_ceil(chunk_len.max(1));
        // The identity first, then one slot of `width` accumulators per chunk.
        let bytes = (chunks + 1) * slot_bytes;
        let mut scratch = inner.scratch.take(bytes)?;
        let identity_bytes: &[u8] = bytemuck::cast_slice(identity);
        scratch[..identity_bytes.len()].copy_from_slice(identity_bytes);
        let mut operands: Vec<OperandSpec<'_>> = chunked(ins).collect();
        operands.push(OperandSpec {
            segment: scratch.segment(),
            elem_size: slot_bytes,
            role: Role::PerChunk { base: slot_bytes },
            type_tag: 0,
        });
        operands.push(OperandSpec {
            segment: scratch.segment(),
            elem_size: size_of::<A>(),
            role: Role::Whole { extent: width },
            type_tag: 0,
        });
        let mut op = self.operation(kind, kernels, operands, len, traffic(ins, &[]), false)?;
        op.options.chunk_len = Some(chunk_len);
        let ran = self.plan_and_run(&op);
        drop(op);
        let partials = ran.map(|_| match size_of::<A>() {
            0 => vec![A::zeroed(); chunks * width],
            n => scratch[slot_bytes..bytes]
                .chunks_exact(n)
                .map(bytemuck::pod_read_unaligned::<A>)
                .collect(),
        });
        inner.scratch.give_back(scratch);
        partials
    }
}

/// The most bytes of partials a reduction's default chunking makes.
const MAX_PARTIAL_BYTES: usize = 64 << 20;

/// The entry points of the fold body for kernel `G`, named by its value (for
/// closures, whose types cannot be written).
pub(super) fn fold_kernels<E, I, A, G>(_: G) -> Kernels
where
    E: KernelEnv,
    I: Inputs,
    A: Pod,
    G: for<'a> KernelFn<E, (usize, &'a mut [A], I::Slices<'a>), Output = ()>,
{
    let () = AssertZeroSized::<G>::OK;
    kernels::<FoldBody<E, I, A, G>>()
}

/// The entry points of the row fold body for kernel `G` (see [`fold_kernels`]).
pub(super) fn fold_rows_kernels<E, T, A, G>(_: G) -> Kernels
where
    E: KernelEnv,
    T: Pod,
    A: Pod,
    G: for<'a> KernelFn<E, (Range<usize>, &'a mut [A], Grid<'a, T>), Output = ()>,
{
    let () = AssertZeroSized::<G>::OK;
    kernels::<FoldRowsBody<E, T, A, G>>()
}

/// A 2-D array as an array of rows: an element is a row, `len` counts rows.
///
/// # Errors
/// [`Error::Dimensionality`] if the array is not 2-D.
pub(super) fn rows_of<T: Pod>(x: &SharedArray<T>) -> Result<ArrayArg<'_>> {
    let a = ArrayArg::of(x);
    match *a.shape {
        [rows, cols] => Ok(ArrayArg {
            len: rows,
            elem_size: cols * size_of::<T>(),
            ..a
        }),
        _ => Err(Error::Dimensionality {
            shape: a.shape.to_vec(),
            axes: 2,
        }),
    }
}

/// Combines `slots` (each `width` accumulators) pairwise in a fixed tree, in
/// order: `((s0 s1)(s2 s3))…`, the result in the first slot. `None` if there is no
/// slot.
pub(super) fn tree_combine<A: Copy>(
    slots: &mut [A],
    width: usize,
    mut combine: impl FnMut(&mut [A], &[A]),
) -> Option<&[A]> {
    let n = slots.len() / width.max(1);
    if n == 0 {
        return None;
    }
    let mut step = 1;
    while step < n {
        let mut i = 0;
        while i + step < n {
            let (left, right) = slots.split_at_mut((i + step) * width);
            combine(&mut left[i * width..(i + 1) * width], &right[..width]);
            i += 2 * step;
        }
        step *= 2;
    }
    Some(&slots[..width])
}

#[cfg(test)]
mod tests {
    use super::tree_combine;

    #[test]
    fn the_tree_pairs_neighbours_in_order() {
        // Strings show the shape: ((ab)(cd))e.
        let mut slots: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let mut out = String::new();
        let mut names: Vec<usize> = (0..5).collect();
        tree_combine(&mut names, 1, |l, r| {
            let (a, b) = (slots[l[0]].clone(), slots[r[0]].clone());
            slots[l[0]] = format!("({a}{b})");
        });
        out.push_str(&slots[0]);
        assert_eq!(out, "(((ab)(cd))e)");
        let mut none: [u8; 0] = [];
        assert!(tree_combine(&mut none, 1, |_, _| ()).is_none());
    }
}
