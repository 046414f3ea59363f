//! The arrays of a bulk operation: one to three inputs, one or two outputs.
//!
//! A bulk map takes its inputs as `&x` or a tuple `(&a, &b)` / `(&a, &b, &c)` of
//! [`SharedArray`]s, possibly of different element types, and its outputs as
//! `&mut y` or `(&mut y, &mut z)`. The kernel sees an element of each input as
//! [`Inputs::Item`] (`T`, `(A, B)` or `(A, B, C)`) and returns [`Outputs::Item`]
//! (`U` or `(U, V)`); chunk kernels see the matching tuples of slices.

use std::sync::Arc;

use bytemuck::Pod;

use super::chunk_call::OperandPtr;
use crate::array::SharedArray;
use crate::shm::Segment;

mod sealed {
    pub trait Sealed {}
}

/// One array of an operation, as the engine ships it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct ArrayArg<'a> {
    pub(crate) segment: &'a Arc<Segment>,
    pub(crate) elem_size: usize,
    pub(crate) len: usize,
    pub(crate) shape: &'a [usize],
}

impl<'a> ArrayArg<'a> {
    pub(crate) fn of<T: Pod>(a: &'a SharedArray<T>) -> Self {
        ArrayArg {
            segment: a.segment(),
            elem_size: std::mem::size_of::<T>(),
            len: a.len(),
            shape: a.shape(),
        }
    }
}

/// The input arrays of a bulk operation: `&SharedArray<A>`, `(&SharedArray<A>,
/// &SharedArray<B>)` or a triple. Implemented for those types only.
pub trait Inputs: sealed::Sealed {
    /// What an elementwise kernel receives: `A`, `(A, B)` or `(A, B, C)`.
    type Item: Copy;
    /// What a chunk kernel receives: `&[A]`, `(&[A], &[B])` or a triple of slices.
    type Slices<'a>: Copy;
    /// How many arrays.
    #[doc(hidden)]
    const COUNT: usize;
    /// The arrays, in order.
    #[doc(hidden)]
    fn arrays(&self) -> Vec<ArrayArg<'_>>;
    /// The slices `start..start + len` of the operands.
    ///
    /// # Safety
    /// `ops` holds `COUNT` operands of this type's element types, each valid for
    /// reads of `start + len` elements that nobody writes during `'a`.
    #[doc(hidden)]
    unsafe fn slices<'a>(ops: &[OperandPtr], start: usize, len: usize) -> Self::Slices<'a>;
    /// Element `i` of every slice.
    ///
    /// # Safety
    /// `i` is below the length of every slice.
    #[doc(hidden)]
    unsafe fn get(s: Self::Slices<'_>, i: usize) -> Self::Item;
}

/// The output arrays of a bulk operation: `&mut SharedArray<U>` or `(&mut
/// SharedArray<U>, &mut SharedArray<V>)`.
pub trait Outputs: sealed::Sealed {
    /// What an elementwise kernel returns: `U` or `(U, V)`.
    type Item: Copy;
    /// What a chunk kernel receives: `&mut [U]` or `(&mut [U], &mut [V])`.
    type Slices<'a>;
    /// How many arrays.
    #[doc(hidden)]
    const COUNT: usize;
    /// The arrays, in order.
    #[doc(hidden)]
    fn arrays(&self) -> Vec<ArrayArg<'_>>;
    /// The slices `start..start + len` of the operands, writable.
    ///
    /// # Safety
    /// `ops` holds `COUNT` operands of this type's element types, each valid for
    /// writes of `start + len` elements, of which `start..start + len` nobody else
    /// accesses during `'a`.
    #[doc(hidden)]
    unsafe fn slices<'a>(ops: &[OperandPtr], start: usize, len: usize) -> Self::Slices<'a>;
    /// Stores `v` at element `i`.
    ///
    /// # Safety
    /// `i` is below the length of every slice.
    #[doc(hidden)]
    unsafe fn put(s: &mut Self::Slices<'_>, i: usize, v: Self::Item);
}

/// # Safety
/// `op` holds elements of `T`, valid for `start + len` of them.
#[inline(always)]
unsafe fn slice<'a, T>(op: &OperandPtr, start: usize, len: usize) -> &'a [T] {
    // SAFETY: delegated to the caller.
    unsafe { std::slice::from_raw_parts(op.ptr.cast::<T>().add(start), len) }
}

/// # Safety
/// As for [`slice`], and the range is the caller's alone.
#[inline(always)]
unsafe fn slice_mut<'a, T>(op: &OperandPtr, start: usize, len: usize) -> &'a mut [T] {
    // SAFETY: delegated to the caller.
    unsafe { std::slice::from_raw_parts_mut(op.ptr.cast::<T>().add(start), len) }
}

impl<A: Pod> sealed::Sealed for &SharedArray<A> {}
impl<A: Pod> Inputs for &SharedArray<A> {
    type Item = A;
    type Slices<'a> = &'a [A];
    const COUNT: usize = 1;
    fn arrays(&self) -> Vec<ArrayArg<'_>> {
        vec![ArrayArg::of(self)]
    }
    #[inline(always)]
    unsafe fn slices<'a>(ops: &[OperandPtr], start: usize, len: usize) -> &'a [A] {
        // SAFETY: delegated to the caller.
        unsafe { slice(&ops[0], start, len) }
    }
    #[inline(always)]
    unsafe fn get(s: &[A], i: usize) -> A {
        // SAFETY: delegated to the caller.
        unsafe { *s.get_unchecked(i) }
    }
}

impl<A: Pod, B: Pod> sealed::Sealed for (&SharedArray<A>, &SharedArray<B>) {}
impl<A: Pod, B: Pod> Inputs for (&SharedArray<A>, &SharedArray<B>) {
    type Item = (A, B);
    type Slices<'a> = (&'a [A], &'a [B]);
    const COUNT: usize = 2;
    fn arrays(&self) -> Vec<ArrayArg<'_>> {
        vec![ArrayArg::of(self.0), ArrayArg::of(self.1)]
    }
    #[inline(always)]
    unsafe fn slices<'a>(ops: &[OperandPtr], start: usize, len: usize) -> Self::Slices<'a> {
        // SAFETY: delegated to the caller.
        unsafe { (slice(&ops[0], start, len), slice(&ops[1], start, len)) }
    }
    #[inline(always)]
    unsafe fn get(s: Self::Slices<'_>, i: usize) -> (A, B) {
        // SAFETY: delegated to the caller.
        unsafe { (*s.0.get_unchecked(i), *s.1.get_unchecked(i)) }
    }
}

impl<A: Pod, B: Pod, C: Pod> sealed::Sealed
    for (&SharedArray<A>, &SharedArray<B>, &SharedArray<C>)
{
}
impl<A: Pod, B: Pod, C: Pod> Inputs for (&SharedArray<A>, &SharedArray<B>, &SharedArray<C>) {
    type Item = (A, B, C);
    type Slices<'a> = (&'a [A], &'a [B], &'a [C]);
    const COUNT: usize = 3;
    fn arrays(&self) -> Vec<ArrayArg<'_>> {
        vec![
            ArrayArg::of(self.0),
            ArrayArg::of(self.1),
            ArrayArg::of(self.2),
        ]
    }
    #[inline(always)]
    unsafe fn slices<'a>(ops: &[OperandPtr], start: usize, len: usize) -> Self::Slices<'a> {
        // SAFETY: delegated to the caller.
        unsafe {
            (
                slice(&ops[0], start, len),
                slice(&ops[1], start, len),
                slice(&ops[2], start, len),
            )
        }
    }
    #[inline(always)]
    unsafe fn get(s: Self::Slices<'_>, i: usize) -> (A, B, C) {
        // SAFETY: delegated to the caller.
        unsafe {
            (
                *s.0.get_unchecked(i),
                *s.1.get_unchecked(i),
                *s.2.get_unchecked(i),
            )
        }
    }
}

impl<U: Pod> sealed::Sealed for &mut SharedArray<U> {}
impl<U: Pod> Outputs for &mut SharedArray<U> {
    type Item = U;
    type Slices<'a> = &'a mut [U];
    const COUNT: usize = 1;
    fn arrays(&self) -> Vec<ArrayArg<'_>> {
        vec![ArrayArg::of(self)]
    }
    #[inline(always)]
    unsafe fn slices<'a>(ops: &[OperandPtr], start: usize, len: usize) -> &'a mut [U] {
        // SAFETY: delegated to the caller.
        unsafe { slice_mut(&ops[0], start, len) }
    }
    #[inline(always)]
    unsafe fn put(s: &mut &mut [U], i: usize, v: U) {
        // SAFETY: delegated to the caller.
        unsafe { *s.get_unchecked_mut(i) = v }
    }
}

impl<U: Pod, V: Pod> sealed::Sealed for (&mut SharedArray<U>, &mut SharedArray<V>) {}
impl<U: Pod, V: Pod> Outputs for (&mut SharedArray<U>, &mut SharedArray<V>) {
    type Item = (U, V);
    type Slices<'a> = (&'a mut [U], &'a mut [V]);
    const COUNT: usize = 2;
    fn arrays(&self) -> Vec<ArrayArg<'_>> {
        vec![ArrayArg::of(self.0), ArrayArg::of(self.1)]
    }
    #[inline(always)]
    unsafe fn slices<'a>(ops: &[OperandPtr], start: usize, len: usize) -> Self::Slices<'a> {
        // SAFETY: delegated to the caller.
        unsafe {
            (
                slice_mut(&ops[0], start, len),
                slice_mut(&ops[1], start, len),
            )
        }
    }
    #[inline(always)]
    unsafe fn put(s: &mut Self::Slices<'_>, i: usize, v: (U, V)) {
        // SAFETY: delegated to the caller.
        unsafe {
            *s.0.get_unchecked_mut(i) = v.0;
            *s.1.get_unchecked_mut(i) = v.1;
        }
    }
}
