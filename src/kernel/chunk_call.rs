//! What a kernel trampoline is handed for one chunk ([`ChunkCall`], its operands
//! resolved in the worker as [`OperandPtr`]s), and its type ([`BulkKernel`]).

use crate::layout::MAX_OPERANDS;

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
