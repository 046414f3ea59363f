//! The kernel bodies: what one chunk call does for each kind of bulk operation.
//!
//! Each body is a zero-sized type naming the user's kernel type `F` (a closure or
//! `fn` item with no captures), conjured inside the body and inlined into it; the
//! dispatch module instantiates every body once per SIMD level. Operand order is
//! each body's contract with the engine that builds its job (`src/pool/bulk/engine.rs`):
//!
//! | body | operands |
//! |---|---|
//! | `MapBody`, `ChunksBody` | inputs, outputs (chunked) |
//! | `ForEachBody`, `ChunkMutBody` | the array (chunked, in place) |
//! | `ReduceBody`, `FoldBody` | inputs (chunked), partials (one slot per chunk), identity |
//! | `FoldRowsBody` | input rows (chunked; an element is a row), partials, identity |
//! | `IndexedBody` | inputs (whole), outputs (chunked) |
//! | `RowsBody` | input rows, output rows (chunked; an element is a row) |
//! | `GridBody` | input rows (whole), output rows (chunked) |
//!
//! Context arrays, if any, follow (see `src/kernel/env.rs`).

use std::marker::PhantomData;
use std::ops::Range;

use bytemuck::Pod;

use super::chunk_call::ChunkCall;
use super::env::KernelEnv;
use super::grid::{Grid, GridMut};
use super::kernel_fn::KernelFn;
use super::operands::{Inputs, Outputs};
use super::simd_dispatch::KernelBody;
use super::zero_sized::conjure;
use crate::simd::Simd;

macro_rules! body {
    ($(#[$m:meta])* $name:ident<$($p:ident),*>) => {
        $(#[$m])*
        pub(crate) struct $name<$($p),*>(PhantomData<fn() -> ($($p,)*)>);
    };
}

body!(
    /// `out[i] = f(p, in[i])`, elementwise, for one to three inputs and one or two
    /// outputs.
    MapBody<E, I, O, F>
);
impl<E, I, O, F> KernelBody for MapBody<E, I, O, F>
where
    E: KernelEnv,
    I: Inputs,
    O: Outputs,
    F: KernelFn<E, (I::Item,), Output = O::Item>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let (start, n) = (call.start, call.len);
        // SAFETY: the operands are the inputs then the outputs (this body's contract),
        // valid for the chunk's range, the outputs' range ours alone (`BulkKernel`).
        let (ins, mut outs) = unsafe {
            (
                I::slices(&call.operands[..I::COUNT], start, n),
                O::slices(&call.operands[I::COUNT..], start, n),
            )
        };
        // SAFETY: F is zero-sized (checked where the job is built).
        let f: F = unsafe { conjure() };
        // SAFETY: the parameter block and context operands are valid (`BulkKernel`).
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        for i in 0..n {
            // SAFETY: every slice holds `n` elements.
            unsafe { O::put(&mut outs, i, f.call(p, (I::get(ins, i),))) };
        }
    }
}

body!(
    /// `f(p, inputs[chunk], outputs[chunk])`.
    ChunksBody<E, I, O, F>
);
impl<E, I, O, F> KernelBody for ChunksBody<E, I, O, F>
where
    E: KernelEnv,
    I: Inputs,
    O: Outputs,
    F: for<'a> KernelFn<E, (I::Slices<'a>, O::Slices<'a>), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let (start, n) = (call.start, call.len);
        // SAFETY: as in `MapBody`.
        let (ins, outs) = unsafe {
            (
                I::slices(&call.operands[..I::COUNT], start, n),
                O::slices(&call.operands[I::COUNT..], start, n),
            )
        };
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        f.call(p, (ins, outs))
    }
}

body!(
    /// `f(p, &mut x[i])` for each element of the chunk, in place.
    ForEachBody<E, T, F>
);
impl<E, T, F> KernelBody for ForEachBody<E, T, F>
where
    E: KernelEnv,
    T: Pod,
    F: for<'a> KernelFn<E, (&'a mut T,), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        // SAFETY: operand 0 is the array, its chunk range ours alone (`BulkKernel`).
        let xs = unsafe {
            std::slice::from_raw_parts_mut(
                call.operands[0].ptr.cast::<T>().add(call.start),
                call.len,
            )
        };
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        for x in xs {
            f.call(p, (x,));
        }
    }
}

body!(
    /// `f(p, &mut x[chunk])`, in place.
    ChunkMutBody<E, T, F>
);
impl<E, T, F> KernelBody for ChunkMutBody<E, T, F>
where
    E: KernelEnv,
    T: Pod,
    F: for<'a> KernelFn<E, (&'a mut [T],), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        // SAFETY: as in `ForEachBody`.
        let xs = unsafe {
            std::slice::from_raw_parts_mut(
                call.operands[0].ptr.cast::<T>().add(call.start),
                call.len,
            )
        };
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        f.call(p, (xs,))
    }
}

body!(
    /// A chunk's partial of `map_reduce`: `identity`, then `acc = combine(acc,
    /// map(p, x))` for each element in order, stored in the chunk's slot.
    ReduceBody<E, I, A, F, C>
);
impl<E, I, A, F, C> KernelBody for ReduceBody<E, I, A, F, C>
where
    E: KernelEnv,
    I: Inputs,
    A: Pod,
    F: KernelFn<E, (I::Item,), Output = A>,
    C: Fn(A, A) -> A,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let n = call.len;
        // SAFETY: the operands are the inputs, the partials (one `A` per chunk) and
        // the identity (one `A`), this body's contract; the chunk's slot is ours alone.
        let (ins, slot, identity) = unsafe {
            (
                I::slices(&call.operands[..I::COUNT], call.start, n),
                call.operands[I::COUNT].ptr.cast::<A>().add(call.chunk),
                call.operands[I::COUNT + 1].ptr.cast::<A>().read(),
            )
        };
        // SAFETY: as in `MapBody`; both kernels are zero-sized.
        let (f, combine): (F, C) = unsafe { (conjure(), conjure()) };
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        let mut acc = identity;
        for i in 0..n {
            // SAFETY: the slices hold `n` elements.
            acc = combine(acc, f.call(p, (unsafe { I::get(ins, i) },)));
        }
        // SAFETY: the slot is this chunk's alone (see above).
        unsafe { slot.write(acc) };
    }
}

body!(
    /// A chunk's partial of a fold: the slot (`width` accumulators) starts as the
    /// identity, then `f(p, global_start, slot, inputs[chunk])` folds the chunk into it.
    FoldBody<E, I, A, F>
);
impl<E, I, A, F> KernelBody for FoldBody<E, I, A, F>
where
    E: KernelEnv,
    I: Inputs,
    A: Pod,
    F: for<'a> KernelFn<E, (usize, &'a mut [A], I::Slices<'a>), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let partials = &call.operands[I::COUNT];
        let identity = &call.operands[I::COUNT + 1];
        let width = identity.extent;
        // SAFETY: the operands are the inputs, the partials (`width` accumulators per
        // chunk) and the identity (`width` accumulators); the chunk's slot is ours
        // alone, and the identity is read-only and does not overlap it.
        let (ins, slot, identity) = unsafe {
            (
                I::slices(&call.operands[..I::COUNT], call.start, call.len),
                std::slice::from_raw_parts_mut(
                    partials.ptr.cast::<A>().add(call.chunk * width),
                    width,
                ),
                std::slice::from_raw_parts(identity.ptr.cast::<A>().cast_const(), width),
            )
        };
        // A retried chunk starts over from the identity.
        slot.copy_from_slice(identity);
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        let start = call.origin + call.start;
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        f.call(p, (start, slot, ins))
    }
}

body!(
    /// A chunk's partial of a fold over the rows of a 2-D array: the slot (`width`
    /// accumulators) starts as the identity, then `f(p, rows, slot, chunk_rows)`
    /// folds the chunk's rows (`rows`, their global indices) into it.
    FoldRowsBody<E, T, A, F>
);
impl<E, T, A, F> KernelBody for FoldRowsBody<E, T, A, F>
where
    E: KernelEnv,
    T: Pod,
    A: Pod,
    F: for<'a> KernelFn<E, (Range<usize>, &'a mut [A], Grid<'a, T>), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let (x, partials, identity) = (&call.operands[0], &call.operands[1], &call.operands[2]);
        let cols = x.elem_size / size_of::<T>().max(1);
        let width = identity.extent;
        // SAFETY: operand 0 holds input rows of `cols` elements (an element is a
        // row), chunked and read-only; the partials and the identity are as in
        // `FoldBody`, the chunk's slot ours alone.
        let (xs, slot, identity) = unsafe {
            (
                std::slice::from_raw_parts(
                    x.ptr.cast::<T>().cast_const().add(call.start * cols),
                    call.len * cols,
                ),
                std::slice::from_raw_parts_mut(
                    partials.ptr.cast::<A>().add(call.chunk * width),
                    width,
                ),
                std::slice::from_raw_parts(identity.ptr.cast::<A>().cast_const(), width),
            )
        };
        // A retried chunk starts over from the identity.
        slot.copy_from_slice(identity);
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        let first = call.origin + call.start;
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        f.call(p, (first..first + call.len, slot, Grid::new(xs, cols)))
    }
}

body!(
    /// `f(p, global_range, whole_inputs, outputs[chunk])`: neighbourhood and
    /// index-aware kernels.
    IndexedBody<E, I, O, F>
);
impl<E, I, O, F> KernelBody for IndexedBody<E, I, O, F>
where
    E: KernelEnv,
    I: Inputs,
    O: Outputs,
    F: for<'a> KernelFn<E, (Range<usize>, I::Slices<'a>, O::Slices<'a>), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let whole = call.operands[0].extent;
        // SAFETY: the inputs are whole (`extent` elements from element 0, nobody
        // writes them) and the outputs chunked, this body's contract.
        let (ins, outs) = unsafe {
            (
                I::slices(&call.operands[..I::COUNT], 0, whole),
                O::slices(&call.operands[I::COUNT..], call.start, call.len),
            )
        };
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        let start = call.origin + call.start;
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        f.call(p, (start..start + call.len, ins, outs))
    }
}

body!(
    /// `f(p, &x_row, &mut y_row)` for each row of the chunk.
    RowsBody<E, T, U, F>
);
impl<E, T, U, F> KernelBody for RowsBody<E, T, U, F>
where
    E: KernelEnv,
    T: Pod,
    U: Pod,
    F: for<'a> KernelFn<E, (&'a [T], &'a mut [U]), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let (x, y) = (&call.operands[0], &call.operands[1]);
        let (in_cols, out_cols) = (
            x.elem_size / size_of::<T>().max(1),
            y.elem_size / size_of::<U>().max(1),
        );
        // SAFETY: operand 0 holds input rows and operand 1 output rows of those
        // widths (an element is a row), chunked; the output rows are ours alone.
        let (xs, ys) = unsafe {
            (
                std::slice::from_raw_parts(
                    x.ptr.cast::<T>().add(call.start * in_cols),
                    call.len * in_cols,
                ),
                std::slice::from_raw_parts_mut(
                    y.ptr.cast::<U>().add(call.start * out_cols),
                    call.len * out_cols,
                ),
            )
        };
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        if in_cols == 0 || out_cols == 0 {
            for _ in 0..call.len {
                f.call(p, (&[], &mut []));
            }
            return;
        }
        for (row_in, row_out) in xs.chunks_exact(in_cols).zip(ys.chunks_exact_mut(out_cols)) {
            f.call(p, (row_in, row_out));
        }
    }
}

body!(
    /// `f(p, rows, whole_input_grid, own_output_rows)`: row stencils.
    GridBody<E, T, U, F>
);
impl<E, T, U, F> KernelBody for GridBody<E, T, U, F>
where
    E: KernelEnv,
    T: Pod,
    U: Pod,
    F: for<'a> KernelFn<E, (Range<usize>, Grid<'a, T>, GridMut<'a, U>), Output = ()>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, _level: Simd) {
        let (x, y) = (&call.operands[0], &call.operands[1]);
        let (in_cols, out_cols) = (
            x.elem_size / size_of::<T>().max(1),
            y.elem_size / size_of::<U>().max(1),
        );
        // SAFETY: operand 0 is the whole input (`extent` rows, read-only) and operand
        // 1 the output rows, chunked and ours alone.
        let (xs, ys) = unsafe {
            (
                std::slice::from_raw_parts(x.ptr.cast::<T>().cast_const(), x.extent * in_cols),
                std::slice::from_raw_parts_mut(
                    y.ptr.cast::<U>().add(call.start * out_cols),
                    call.len * out_cols,
                ),
            )
        };
        let first = call.origin + call.start;
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        f.call(
            p,
            (
                first..first + call.len,
                Grid::new(xs, in_cols),
                GridMut::new(ys, first, out_cols),
            ),
        )
    }
}

body!(
    /// `y[i] = f(p, inputs[i])` into one output, written with non-temporal
    /// (streaming) stores: for outputs far larger than the caches, where ordinary
    /// stores would first read every output line from memory (a read for ownership)
    /// only to overwrite it. Results are those of [`MapBody`], bit for bit.
    StreamMapBody<E, I, O, F>
);
impl<E, I, O, F> KernelBody for StreamMapBody<E, I, O, F>
where
    E: KernelEnv,
    I: Inputs,
    O: Outputs,
    F: KernelFn<E, (I::Item,), Output = O::Item>,
{
    #[inline(always)]
    unsafe fn run(call: &ChunkCall, level: Simd) {
        let (start, n) = (call.start, call.len);
        // SAFETY: the operands are the inputs, then one output (the engine uses this
        // body only when `O::COUNT` is 1, whose item is the output's element type),
        // valid for the chunk, the output range ours alone.
        let (ins, out) = unsafe {
            (
                I::slices(&call.operands[..I::COUNT], start, n),
                call.operands[I::COUNT].ptr.cast::<O::Item>().add(start),
            )
        };
        // SAFETY: as in `MapBody`.
        let f: F = unsafe { conjure() };
        // SAFETY: as in `MapBody`.
        let held = unsafe { E::arg(call) };
        let p: &E::Arg = &held;
        // SAFETY: as in `MapBody`; `out` holds `n` writable elements, and every index
        // passed to the closure is below `n`, the slices' length.
        unsafe { super::stream::map_streaming(level, n, out, |i| f.call(p, (I::get(ins, i),))) }
    }
}
