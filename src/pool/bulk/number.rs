//! [`Number`]: the element types the built-in reductions accept.

mod sealed {
    pub trait Sealed {
        /// Whether numpy computes in `float32` for this type where it would otherwise
        /// use `float64`: a histogram's edges (`f32` alone).
        const SINGLE: bool = false;
    }
}

/// A numeric element type: `f32`, `f64`, and the signed and unsigned integers of
/// 8 to 64 bits. Integer sums and dot products keep the element type and wrap on
/// overflow, as numpy's do with `dtype=x.dtype` (numpy's default widens small
/// integers to 64 bits first).
pub trait Number: bytemuck::Pod + PartialOrd + sealed::Sealed {
    /// Zero.
    const ZERO: Self;
    /// The identity of `min`: `+inf` for floats, the largest value for integers.
    const MIN_IDENTITY: Self;
    /// The identity of `max`: `-inf` for floats, the smallest value for integers.
    const MAX_IDENTITY: Self;
    /// `self + other` (wrapping for integers).
    fn add(self, other: Self) -> Self;
    /// `self * other` (wrapping for integers).
    fn mul(self, other: Self) -> Self;
    /// Whether the value is a NaN (never, for integers).
    fn is_nan(self) -> bool;
    /// The value as an `f64` (rounded for 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;
}

macro_rules! float {
    ($($t:ty => $single:expr),*) => {$(
        impl sealed::Sealed for $t {
            const SINGLE: bool = $single;
        }
        impl Number for $t {
            const ZERO: Self = 0.0;
            const MIN_IDENTITY: Self = <$t>::INFINITY;
            const MAX_IDENTITY: Self = <$t>::NEG_INFINITY;
            #[inline(always)]
            fn add(self, other: Self) -> Self {
                self + other
            }
            #[inline(always)]
            fn mul(self, other: Self) -> Self {
                self * other
            }
            #[inline(always)]
            #[allow(clippy::eq_op)]
            fn is_nan(self) -> bool {
                self != self
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t {
            const ZERO: Self = 0;
            const MIN_IDENTITY: Self = <$t>::MAX;
            const MAX_IDENTITY: Self = <$t>::MIN;
            #[inline(always)]
            fn add(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            #[inline(always)]
            fn mul(self, other: Self) -> Self {
                self.wrapping_mul(other)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

float!(f32 => true, f64 => false);
integer!(i8, i16, i32, i64, u8, u16, u32, u64);
