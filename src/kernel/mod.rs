//! Shipping code to another process: monomorphized trampolines named by their
//! offset from a fixed anchor function.
//!
//! Rust cannot send a closure to another process. shmpool accepts *non-capturing*
//! closures and `fn` items, whose types are zero-sized: the value carries no data,
//! only the type does. For each kernel type `F` the compiler instantiates a
//! trampoline such as [`map_kernel::<T, U, F>`], which conjures `F` from nothing
//! and runs it over a whole chunk in a tight loop, so the kernel is inlined and the
//! loop vectorizes exactly as it would in rayon.
//!
//! The trampoline's address travels as an offset from [`code_anchor`]. A forked
//! worker has the same addresses as its parent; a re-executed worker (the `Spawn`
//! start method) has the whole binary image shifted by one constant (ASLR), so the
//! offset still holds. A fingerprint (the offset of [`fingerprint_probe`]) in the
//! control segment lets a re-executed worker refuse to run if it is a different
//! binary.

use std::mem::size_of;

use crate::layout::MAX_OPERANDS;

mod bodies;
mod env;
mod grid;
mod kernel_fn;
mod operands;
mod simd_dispatch;
mod stream;

pub(crate) use bodies::{
    ChunkMutBody, ChunksBody, FoldBody, ForEachBody, GridBody, IndexedBody, MapBody, ReduceBody,
    RowsBody, StreamMapBody,
};
pub use env::{Env, KernelEnv, Params, ParamsAndArrays, type_tag};
pub use grid::{Grid, GridMut};
pub(crate) use kernel_fn::FoldOne;
pub use kernel_fn::KernelFn;
pub use operands::{ArrayArg, Inputs, Outputs};
pub(crate) use simd_dispatch::{Kernels, kernels};

/// One operand of a chunk call, resolved in the worker: the address of the
/// operand's element 0 and how many elements the job may touch from there.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct OperandPtr {
    /// Element 0 of the operand in this process.
    pub(crate) ptr: *mut u8,
    /// Elements the job may touch from `ptr`.
    pub(crate) extent: usize,
    /// Bytes per element.
    pub(crate) elem_size: usize,
    /// Element type fingerprint (context arrays), or 0.
    pub(crate) type_tag: u64,
}

impl OperandPtr {
    /// An operand that names nothing.
    pub(crate) const NONE: OperandPtr = OperandPtr {
        ptr: std::ptr::null_mut(),
        extent: 0,
        elem_size: 0,
        type_tag: 0,
    };
}

/// What a worker hands a kernel trampoline for one chunk.
#[doc(hidden)]
#[derive(Debug)]
pub struct ChunkCall {
    /// The job's parameter block, valid while the chunk is held.
    pub(crate) params: *const u8,
    /// The chunk's first element, relative to the job's element 0.
    pub(crate) start: usize,
    /// Elements in the chunk.
    pub(crate) len: usize,
    /// The chunk's index within the job.
    pub(crate) chunk: usize,
    /// The global index of the job's element 0.
    pub(crate) origin: usize,
    /// The job's operands, in the trampoline's order; unused ones are `NONE`.
    pub(crate) operands: [OperandPtr; MAX_OPERANDS],
    /// How many operands, at the end of those in use, are context arrays.
    pub(crate) context_count: usize,
    /// How many operands are in use.
    pub(crate) operand_count: usize,
}

/// A bulk kernel trampoline: runs one chunk.
///
/// # Safety
/// The caller guarantees that every operand in `call` points to `extent` valid
/// elements of the element type the trampoline was instantiated with (at the
/// positions the trampoline expects), that the chunk's output ranges are accessed by
/// no other thread or process during the call, that no other thread or process writes
/// the ranges the kernel reads, and that the parameter block holds the trampoline's
/// parameter type.
pub(crate) type BulkKernel = unsafe fn(call: &ChunkCall);

/// The fixed point code offsets are measured from.
#[inline(never)]
pub(crate) fn code_anchor() -> u64 {
    // A body that cannot be folded together with another function's.
    std::hint::black_box(0x5348_4d50_4f4f_4c21)
}

/// A second fixed function: its offset from the anchor identifies the binary.
#[inline(never)]
pub(crate) fn fingerprint_probe() -> u64 {
    std::hint::black_box(0x6669_6e67_6572_7072)
}

/// The offset of a function address from the anchor.
pub(crate) fn offset_of_fn(addr: usize) -> i64 {
    (addr as i64).wrapping_sub(code_anchor as fn() -> u64 as usize as i64)
}

/// The address a code offset names in this process.
pub(crate) fn addr_of_offset(offset: i64) -> usize {
    (code_anchor as fn() -> u64 as usize as i64).wrapping_add(offset) as usize
}

/// This binary's fingerprint.
pub(crate) fn fingerprint() -> i64 {
    offset_of_fn(fingerprint_probe as fn() -> u64 as usize)
}

/// Recovers a bulk kernel from its offset.
///
/// # Safety
/// `offset` must have been produced by [`bulk_offset`] in a process running the same
/// binary (checked through the fingerprint for re-executed workers).
pub(crate) unsafe fn bulk_from_offset(offset: i64) -> BulkKernel {
    let addr = addr_of_offset(offset);
    // SAFETY: by the caller's guarantee, `addr` is the address of a function of type
    // `BulkKernel` in this binary image.
    unsafe { std::mem::transmute::<usize, BulkKernel>(addr) }
}

/// The offset of a bulk kernel.
pub(crate) fn bulk_offset(kernel: BulkKernel) -> i64 {
    offset_of_fn(kernel as usize)
}

/// Compile-time check that a kernel is a non-capturing closure or a `fn` item.
pub(crate) struct AssertZeroSized<F>(std::marker::PhantomData<F>);

impl<F> AssertZeroSized<F> {
    /// Fails to compile (during monomorphization) when `F` captures anything.
    pub(crate) const OK: () = assert!(
        size_of::<F>() == 0,
        "shmpool kernels must be non-capturing closures or fn items: worker processes \
         cannot see captured values. Pass data through arrays or task arguments instead."
    );
}

/// Produces the (only) value of a zero-sized kernel type.
///
/// # Safety
/// `F` must be zero-sized (checked at compile time) and a closure or `fn` item type,
/// for which the sole value has no bytes and no invariants.
#[inline(always)]
pub(crate) unsafe fn conjure<F>() -> F {
    let () = AssertZeroSized::<F>::OK;
    // SAFETY: a zero-sized closure or fn item has no bytes to initialise and no
    // validity invariant beyond existing; the caller guarantees F is such a type.
    unsafe { std::mem::zeroed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_the_trampoline_runs_the_closure() {
        fn kernel_of<F: Fn(&(), f64) -> f64 + Copy>(_: F) -> BulkKernel {
            kernels::<
                MapBody<
                    Params<()>,
                    &'static crate::SharedArray<f64>,
                    &'static mut crate::SharedArray<f64>,
                    F,
                >,
            >()
            .baseline()
        }
        let kernel = kernel_of(|_: &(), v: f64| v.sqrt());
        let off = bulk_offset(kernel);
        // SAFETY: produced by bulk_offset in this very process.
        let back = unsafe { bulk_from_offset(off) };
        let xs = [4.0f64, 9.0];
        let mut ys = [0.0f64; 2];
        let mut operands = [OperandPtr::NONE; MAX_OPERANDS];
        operands[0] = OperandPtr {
            ptr: xs.as_ptr().cast_mut().cast(),
            extent: 2,
            elem_size: 8,
            type_tag: 0,
        };
        operands[1] = OperandPtr {
            ptr: ys.as_mut_ptr().cast(),
            extent: 2,
            elem_size: 8,
            type_tag: 0,
        };
        let block = crate::layout::ParamsBlock::default();
        let call = ChunkCall {
            params: block.as_ptr(),
            start: 0,
            len: 2,
            chunk: 0,
            origin: 0,
            operands,
            context_count: 0,
            operand_count: 2,
        };
        // SAFETY: valid, disjoint ranges of two elements; the block holds `()`.
        unsafe { back(&call) };
        assert_eq!(ys, [2.0, 3.0]);
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(), fingerprint());
        assert_ne!(fingerprint(), 0);
    }
}
