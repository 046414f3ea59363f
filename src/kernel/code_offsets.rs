//! Code travels as offsets: a trampoline's address less a fixed anchor function's,
//! the same in every process of one binary image (see `src/kernel/mod.rs`), and a
//! fingerprint that tells a re-executed worker it runs the parent's binary.

use super::chunk_call::BulkKernel;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::SharedArray;
    use crate::kernel::bodies::MapBody;
    use crate::kernel::chunk_call::{ChunkCall, OperandPtr};
    use crate::kernel::env::Params;
    use crate::kernel::simd_dispatch::kernels;
    use crate::layout::MAX_OPERANDS;

    #[test]
    fn offsets_round_trip_and_the_trampoline_runs_the_closure() {
        fn kernel_of<F: Fn(&(), f64) -> f64 + Copy>(_: F) -> BulkKernel {
            kernels::<
                MapBody<Params<()>, &'static SharedArray<f64>, &'static mut SharedArray<f64>, F>,
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
