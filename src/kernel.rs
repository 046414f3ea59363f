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

/// A bulk kernel: runs over `n` elements at `input` and `output`.
///
/// # Safety
/// The caller guarantees that `input` points to `n` valid, readable elements of the
/// kernel's input type, `output` to `n` writable elements of its output type (they
/// may be the same for in-place kernels, which then ignore `input`), that no other
/// thread or process accesses the output range during the call, and that no other
/// thread or process writes the input range during the call.
pub(crate) type BulkKernel = unsafe fn(input: *const u8, output: *mut u8, n: usize);

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

/// `out[i] = f(in[i])` over a chunk.
///
/// # Safety
/// See [`BulkKernel`]; `F` must satisfy [`conjure`]'s contract.
pub(crate) unsafe fn map_kernel<T: Copy, U, F: Fn(T) -> U>(
    input: *const u8,
    output: *mut u8,
    n: usize,
) {
    // SAFETY: Delegated to the caller (see `BulkKernel`): the ranges are valid, the
    // output range is this worker's alone and nobody writes the input.
    let (xs, ys) = unsafe {
        (
            std::slice::from_raw_parts(input.cast::<T>(), n),
            std::slice::from_raw_parts_mut(output.cast::<U>(), n),
        )
    };
    // SAFETY: F is zero-sized, checked at compile time by the caller's instantiation.
    let f: F = unsafe { conjure() };
    for (y, x) in ys.iter_mut().zip(xs) {
        *y = f(*x);
    }
}

/// `f(&in[chunk], &mut out[chunk])`.
///
/// # Safety
/// See [`map_kernel`].
pub(crate) unsafe fn chunk_kernel<T, U, F: Fn(&[T], &mut [U])>(
    input: *const u8,
    output: *mut u8,
    n: usize,
) {
    // SAFETY: as in `map_kernel`.
    let (xs, ys) = unsafe {
        (
            std::slice::from_raw_parts(input.cast::<T>(), n),
            std::slice::from_raw_parts_mut(output.cast::<U>(), n),
        )
    };
    // SAFETY: as in `map_kernel`.
    let f: F = unsafe { conjure() };
    f(xs, ys);
}

/// `f(&mut x)` for each element of a chunk, in place.
///
/// # Safety
/// See [`map_kernel`]; only `output` is used.
pub(crate) unsafe fn for_each_kernel<T, F: Fn(&mut T)>(
    _input: *const u8,
    output: *mut u8,
    n: usize,
) {
    // SAFETY: as in `map_kernel`; the range is this worker's alone.
    let xs = unsafe { std::slice::from_raw_parts_mut(output.cast::<T>(), n) };
    // SAFETY: as in `map_kernel`.
    let f: F = unsafe { conjure() };
    for x in xs {
        f(x);
    }
}

/// `f(&mut data[chunk])`, in place.
///
/// # Safety
/// See [`map_kernel`]; only `output` is used.
pub(crate) unsafe fn chunk_mut_kernel<T, F: Fn(&mut [T])>(
    _input: *const u8,
    output: *mut u8,
    n: usize,
) {
    // SAFETY: as in `for_each_kernel`.
    let xs = unsafe { std::slice::from_raw_parts_mut(output.cast::<T>(), n) };
    // SAFETY: as in `map_kernel`.
    let f: F = unsafe { conjure() };
    f(xs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_trampoline<F: Fn(f64) -> f64>(_: F) -> BulkKernel {
        map_kernel::<f64, f64, F>
    }

    #[test]
    fn offsets_round_trip_and_the_trampoline_runs_the_closure() {
        let kernel = map_trampoline(|v: f64| v.sqrt());
        let off = bulk_offset(kernel);
        // SAFETY: produced by bulk_offset in this very process.
        let back = unsafe { bulk_from_offset(off) };
        let xs = [4.0f64, 9.0];
        let mut ys = [0.0f64; 2];
        // SAFETY: valid, disjoint ranges of two elements.
        unsafe { back(xs.as_ptr().cast(), ys.as_mut_ptr().cast(), 2) };
        assert_eq!(ys, [2.0, 3.0]);
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(), fingerprint());
        assert_ne!(fingerprint(), 0);
    }
}
