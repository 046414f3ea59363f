//! What a kernel receives besides its arrays: parameters, and context arrays.
//!
//! A kernel of `pool.bulk()` receives its arguments alone.
//! `pool.bulk().with(params)` hands every kernel call `&P`, a reference into the job
//! entry in shared memory: the parameters are copied there once per job, not per
//! chunk. `.context(&table)` adds read-only arrays that every chunk reads whole; the
//! kernel then receives an [`Env`], which dereferences to the parameters and looks
//! the arrays up by position.

use std::any::TypeId;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;

use bytemuck::Pod;

use super::chunk_call::{ChunkCall, OperandPtr};
use crate::layout::MAX_OPERANDS;

mod sealed {
    pub trait Sealed {}
}

/// What a kernel receives besides its arguments: nothing (`()`, the kernels of
/// `pool.bulk()`), `&P` ([`Params`], after [`Bulk::with`](crate::Bulk::with)) or
/// `&Env<P>` ([`ParamsAndArrays`], after [`Bulk::context`](crate::Bulk::context)).
/// [`KernelFn`](crate::KernelFn) says what a kernel of each looks like.
pub trait KernelEnv: sealed::Sealed + 'static {
    /// The parameters' type.
    type Params: Pod;
    /// What the kernel receives a reference to.
    type Arg;
    /// What holds the chunk's argument during the call.
    #[doc(hidden)]
    type Held<'c>: Deref<Target = Self::Arg>;
    /// The chunk's argument.
    ///
    /// Returned, not handed to a closure: a kernel body runs inside three entry
    /// points (one per SIMD level), and a closure of the body's would be one function
    /// shared by all three, compiled once at the baseline whenever it is too big to
    /// inline into them, and the user's kernel with it (`src/kernel/simd_dispatch.rs`).
    ///
    /// # Safety
    /// `call.params` points to a `Self::Params` aligned for it, valid during the
    /// call, and the context operands are what `Env` says (see `BulkKernel`).
    #[doc(hidden)]
    unsafe fn arg(call: &ChunkCall) -> Self::Held<'_>;
}

/// Kernels receive `&P`.
#[derive(Debug)]
pub struct Params<P>(PhantomData<P>);

/// Kernels receive `&Env<P>`: the parameters and the context arrays.
#[derive(Debug)]
pub struct ParamsAndArrays<P>(PhantomData<P>);

impl sealed::Sealed for () {}
impl KernelEnv for () {
    type Params = ();
    type Arg = ();
    type Held<'c> = &'c ();
    #[inline(always)]
    unsafe fn arg(_: &ChunkCall) -> &() {
        &()
    }
}

impl<P: Pod> sealed::Sealed for Params<P> {}
impl<P: Pod> KernelEnv for Params<P> {
    type Params = P;
    type Arg = P;
    type Held<'c> = &'c P;
    #[inline(always)]
    unsafe fn arg(call: &ChunkCall) -> &P {
        // SAFETY: by the caller's guarantee the block holds an aligned `P`, and the
        // parent does not rewrite it while a chunk is held.
        unsafe { &*call.params.cast::<P>() }
    }
}

impl<P: Pod> sealed::Sealed for ParamsAndArrays<P> {}
impl<P: Pod> KernelEnv for ParamsAndArrays<P> {
    type Params = P;
    type Arg = Env<P>;
    type Held<'c> = Holding<Env<P>>;
    #[inline(always)]
    unsafe fn arg(call: &ChunkCall) -> Holding<Env<P>> {
        let first = call.operand_count - call.context_count;
        Holding(Env {
            params: call.params.cast::<P>(),
            arrays: call.operands,
            first,
            count: call.context_count,
        })
    }
}

/// An argument held by value for a chunk call (see [`KernelEnv::arg`]).
#[doc(hidden)]
#[derive(Debug)]
pub struct Holding<T>(T);

impl<T> Deref for Holding<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A kernel's parameters and context arrays.
///
/// It dereferences to the parameters, so `env.scale` reads the field `scale` of
/// `P`. [`Env::array`] returns context array `k` (in the order `context` added
/// them) as a slice.
#[derive(Debug)]
pub struct Env<P> {
    params: *const P,
    arrays: [OperandPtr; MAX_OPERANDS],
    first: usize,
    count: usize,
}

impl<P> Env<P> {
    /// The parameters.
    pub fn params(&self) -> &P {
        // SAFETY: `params` points into the job entry's parameter block, which holds an
        // aligned `P` (checked by the parent) and is not rewritten while the worker
        // holds a chunk, which outlives `self`.
        unsafe { &*self.params }
    }

    /// How many context arrays the job has.
    pub fn arrays(&self) -> usize {
        self.count
    }

    /// Context array `k`, whole.
    ///
    /// # Panics
    /// If `k` is out of range, or array `k` does not hold `T`s; the map then fails
    /// with `Error::KernelPanicked` naming the chunk, like any kernel panic.
    pub fn array<T: Pod>(&self, k: usize) -> &[T] {
        assert!(
            k < self.count,
            "context array {k} asked for, but the job has {}",
            self.count
        );
        let op = &self.arrays[self.first + k];
        assert!(
            op.type_tag == type_tag::<T>(),
            "context array {k} does not hold {}",
            std::any::type_name::<T>()
        );
        // SAFETY: the worker resolved the operand to `extent` readable elements, the
        // parent tagged it with T's fingerprint (checked just above), and the parent
        // holds a shared borrow of the array until the job finishes, so nobody writes it.
        unsafe { std::slice::from_raw_parts(op.ptr.cast::<T>(), op.extent) }
    }
}

impl<P> Deref for Env<P> {
    type Target = P;
    fn deref(&self) -> &P {
        self.params()
    }
}

/// A fingerprint of a `Pod` type, the same in every process of one binary; never 0.
#[doc(hidden)]
pub fn type_tag<T: 'static>() -> u64 {
    let mut h = DefaultHasher::new();
    TypeId::of::<T>().hash(&mut h);
    h.finish() | 1
}
