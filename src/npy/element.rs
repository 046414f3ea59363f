//! [`NpyElement`]: the Rust types whose values are `.npy` data as they lie in memory.

#[allow(unused_imports)] // named by the docs' links
use crate::dtype::DType;

/// A Rust type whose values can be read from and written to `.npy` data as they lie
/// in memory.
///
/// It is implemented for `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `u64`, `f32`
/// and `f64` on little-endian targets, and for [`Bool`](super::Bool), numpy's `bool`. It is not
/// implemented for Rust's `bool`: a `bool` must be 0 or 1, and nothing stops a
/// `'|b1'` file, or another process writing the mapped file, from holding a 2.
/// [`Bool`](super::Bool) is a byte for which every value is valid, nonzero meaning `true`.
///
/// # Safety
///
/// Implementing this trait promises that the bytes of a `.npy` file of type
/// [`Self::DTYPE`] may be reinterpreted as values of `Self`, which callers do to map
/// files without copying:
///
/// * `size_of::<Self>() == Self::DTYPE.size()`, and `Self` has no padding;
/// * the bytes of a `Self` value are exactly the little-endian encoding numpy uses for
///   that dtype (so implementations exist only on little-endian targets);
/// * every bit pattern of that size is a valid `Self`.
///
/// A `#[repr(transparent)]` newtype over one of the implementing primitives
/// satisfies all three.
///
/// # Examples
///
/// ```
/// use shmpool::npy::{DType, NpyElement};
///
/// fn dtype_of<T: NpyElement>() -> DType {
///     T::DTYPE
/// }
/// assert_eq!(dtype_of::<f32>(), DType::F32);
/// ```
pub unsafe trait NpyElement: Copy + 'static {
    /// The dtype of `.npy` data holding values of this type.
    const DTYPE: DType;
}

macro_rules! npy_element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        // SAFETY: a primitive integer or float of the dtype's size, little-endian on
        // this target, without padding, valid for every bit pattern.
        #[cfg(target_endian = "little")]
        unsafe impl NpyElement for $t {
            const DTYPE: DType = DType::$d;
        }
        #[cfg(target_endian = "little")]
        const _: () = assert!(size_of::<$t>() == DType::$d.size());
    )*};
}

npy_element!(
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    f32 => F32, f64 => F64,
);
