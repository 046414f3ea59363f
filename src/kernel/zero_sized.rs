//! Kernels and task functions are zero-sized: non-capturing closures and `fn` items,
//! whose value carries no data, so a worker can conjure it from its type alone.

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
