//! Shipping code to another process: monomorphized trampolines named by their
//! offset from a fixed anchor function.
//!
//! Rust cannot send a closure to another process. shmpool accepts *non-capturing*
//! closures and `fn` items, whose types are zero-sized: the value carries no data,
//! only the type does. For each kernel type `F` the compiler instantiates the entry
//! points of a kernel body such as [`MapBody<E, I, O, F>`](MapBody) (one per SIMD
//! level, `src/kernel/simd_dispatch.rs`), which conjure `F` from nothing
//! (`src/kernel/zero_sized.rs`) and run it over a whole chunk in a tight loop, so
//! the kernel is inlined and the loop vectorizes exactly as it would in rayon.
//! [`KernelFn`] says how a kernel takes its arguments; [`ChunkCall`] is what an
//! entry point is handed.
//!
//! The entry point's address travels as an offset from a fixed anchor function
//! (`src/kernel/code_offsets.rs`). A forked worker has the same addresses as its
//! parent; a re-executed worker (the `Spawn` start method) has the whole binary
//! image shifted by one constant (ASLR), so the offset still holds. A fingerprint
//! (the offset of a second fixed function) in the control segment lets a
//! re-executed worker refuse to run if it is a different binary.

mod bodies;
mod chunk_call;
mod code_offsets;
mod env;
mod grid;
mod kernel_fn;
mod operands;
mod simd_dispatch;
mod stream;
mod zero_sized;

pub(crate) use bodies::{
    ChunkMutBody, ChunksBody, FoldBody, FoldRowsBody, ForEachBody, GridBody, IndexedBody, MapBody,
    ReduceBody, RowsBody, StreamMapBody,
};
#[doc(hidden)]
pub use chunk_call::{ChunkCall, OperandPtr};
pub(crate) use code_offsets::{
    addr_of_offset, bulk_from_offset, bulk_offset, fingerprint, offset_of_fn,
};
pub use env::{Env, KernelEnv, Params, ParamsAndArrays, type_tag};
pub use grid::{Grid, GridMut};
pub use kernel_fn::KernelFn;
pub(crate) use kernel_fn::{FoldEachRow, FoldOne};
pub use operands::{ArrayArg, Inputs, Outputs};
pub(crate) use simd_dispatch::{Kernels, kernels};
pub(crate) use zero_sized::{AssertZeroSized, conjure};
