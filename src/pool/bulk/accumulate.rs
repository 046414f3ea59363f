//! numpy's `dtype=` for reductions: the type a sum, mean or variance is computed
//! in and returned as, chosen once on the builder (`pool.bulk().dtype::<f64>()`)
//! and written into the type of every form that honours it.
//!
//! One generic parameter carries the choice: `Bulk<'p, (), D>`, where `D` is
//! [`DefaultDtype`] (numpy's defaults) or the accumulator itself (`f64`, `f32`,
//! `i64`, `u64`). [`SumIn<T>`] and [`MeanIn<T>`] say, for each `D` and element
//! type `T`, what `sum` and `mean` (`var`, `std`) compute in, and how an element is
//! widened into it; a form names them in its bounds, so an accumulator that cannot
//! hold the data (an `f32` sum of `f64`, an `i64` mean) does not compile.

use std::marker::PhantomData;
use std::ops::{Add, Div, Mul, Neg, Sub};

use super::bulk_builder::Bulk;
use super::number::Number;

mod sealed {
    pub trait Sealed {}
}

/// numpy's default accumulators, the `D` of a plain `pool.bulk()`: `sum` adds in
/// the element type (wrapping for integers, as `np.sum(x, dtype=x.dtype)`; numpy's
/// own default widens small integers to 64 bits, `.dtype::<i64>()` here), while
/// `mean`, `var` and `std` compute in the element type for floats and in `f64` for
/// integers, as numpy does.
///
/// # Examples
///
/// ```
/// let pool = shmpool::Pool::new(2)?;
/// let x = shmpool::SharedArray::from_slice(&[1u8, 2, 255])?;
/// assert_eq!(pool.bulk().sum(&x)?, 2u8); // wraps, in u8
/// assert_eq!(pool.bulk().mean(&x)?, 86.0f64); // in f64, as numpy
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultDtype;

/// An accumulator a reduction can be told to compute in with
/// [`Bulk::dtype`]: [`DefaultDtype`] (numpy's defaults), `f64`, `f32`, `i64` or
/// `u64`. Sealed.
pub trait Dtype: Copy + sealed::Sealed + 'static {}

/// A floating-point accumulator: `f32` or `f64`. What `mean`, `var` and `std`
/// compute in and return. Sealed.
pub trait Float:
    Number
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// Not a number.
    const NAN: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// `v`, rounded to this type (exact for a value of this type widened to `f64`).
    fn from_f64(v: f64) -> Self;
    /// The absolute value.
    fn abs(self) -> Self;
    /// The square root, correctly rounded.
    fn sqrt(self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Whether the value is an infinity.
    fn is_infinite(self) -> bool;
}

/// What a sum of elements of type `T` is computed in and returned as, for the
/// accumulator `Self` (the builder's `D`): `T` itself for [`DefaultDtype`], else
/// `Self`. Implemented where `Self` holds every `T`: `f64` for every element type,
/// `f32` for `f32` and the integers, `i64` for the signed integers and the
/// unsigned ones of up to 32 bits, `u64` for the unsigned integers.
pub trait SumIn<T: Number>: Dtype {
    /// The accumulator and result type.
    type Acc: Number;
    /// An element, widened into the accumulator.
    fn widen(t: T) -> Self::Acc;
}

/// What a mean or a variance of elements of type `T` is computed in and returned
/// as, for the accumulator `Self`: for [`DefaultDtype`], `T` for floats and `f64`
/// for integers (numpy's rule); else `Self`, which is `f32` or `f64`.
pub trait MeanIn<T: Number>: Dtype {
    /// The accumulator and result type.
    type Acc: Float;
    /// An element, widened into the accumulator.
    fn widen(t: T) -> Self::Acc;
}

impl sealed::Sealed for DefaultDtype {}
impl Dtype for DefaultDtype {}

impl<T: Number> SumIn<T> for DefaultDtype {
    type Acc = T;
    #[inline(always)]
    fn widen(t: T) -> T {
        t
    }
}

macro_rules! float {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Dtype for $t {}
        impl Float for $t {
            const NAN: Self = <$t>::NAN;
            const INFINITY: Self = <$t>::INFINITY;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn is_infinite(self) -> bool {
                <$t>::is_infinite(self)
            }
        }
    )*};
}
float!(f32, f64);

impl sealed::Sealed for i64 {}
impl Dtype for i64 {}
impl sealed::Sealed for u64 {}
impl Dtype for u64 {}

/// `impl SumIn<T> for A` and, where `A` is a float, `impl MeanIn<T> for A`, with
/// `widen` an `as` conversion (exact but for 64-bit integers beyond the float's
/// mantissa, rounded as numpy rounds them).
macro_rules! accumulates {
    (sum $a:ty: $($t:ty),*) => {$(
        impl SumIn<$t> for $a {
            type Acc = $a;
            #[inline(always)]
            fn widen(t: $t) -> $a {
                t as $a
            }
        }
    )*};
    (mean $a:ty: $($t:ty),*) => {$(
        accumulates!(sum $a: $t);
        impl MeanIn<$t> for $a {
            type Acc = $a;
            #[inline(always)]
            fn widen(t: $t) -> $a {
                t as $a
            }
        }
    )*};
    (default mean $f:ty: $($t:ty),*) => {$(
        impl MeanIn<$t> for DefaultDtype {
            type Acc = $f;
            #[inline(always)]
            fn widen(t: $t) -> $f {
                t as $f
            }
        }
    )*};
}
accumulates!(mean f64: f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
accumulates!(mean f32: f32, i8, i16, i32, i64, u8, u16, u32, u64);
accumulates!(sum i64: i8, i16, i32, i64, u8, u16, u32);
accumulates!(sum u64: u8, u16, u32, u64);
accumulates!(default mean f32: f32);
accumulates!(default mean f64: f64, i8, i16, i32, i64, u8, u16, u32, u64);

/// How a kernel widens an element of type `T` into its accumulator, named by a
/// type so that the kernel carries no value: [`Summed<D>`] for a sum under the
/// builder's `D`, [`Averaged<D>`] for a mean or a variance.
pub(super) trait Widen<T>: 'static {
    /// The accumulator.
    type Acc: Number;
    /// An element, widened.
    fn widen(t: T) -> Self::Acc;
}

/// Elements widened as `D` sums them ([`SumIn`]).
pub(super) struct Summed<D>(PhantomData<D>);

/// Elements widened as `D` averages them ([`MeanIn`]).
pub(super) struct Averaged<D>(PhantomData<D>);

impl<T: Number, D: SumIn<T>> Widen<T> for Summed<D> {
    type Acc = D::Acc;
    #[inline(always)]
    fn widen(t: T) -> D::Acc {
        D::widen(t)
    }
}

impl<T: Number, D: MeanIn<T>> Widen<T> for Averaged<D> {
    type Acc = D::Acc;
    #[inline(always)]
    fn widen(t: T) -> D::Acc {
        D::widen(t)
    }
}

/// `total / count`, as numpy divides a sum by its count: in `f64`, the quotient
/// rounded to the accumulator (`np.float32(s / n)`). A count of 0 gives NaN or an
/// infinity, as numpy's division does.
#[inline(always)]
pub(super) fn divide_by_count<A: Float>(total: A, count: usize) -> A {
    A::from_f64(total.to_f64() / count as f64)
}

impl<'p> Bulk<'p> {
    /// Computes the sums, means and variances of the reductions that follow in
    /// `A` (numpy's `dtype=`): `f64` or `f32` for every form, `i64` or `u64` for
    /// `sum`, `nansum` and `sum_axis`. `pool.bulk().dtype::<f64>().sum(&x)` is
    /// `np.sum(x, dtype=np.float64)`: each element is widened to `A` before it is
    /// added, and the result is an `A`. Without it, numpy's defaults hold (see
    /// [`DefaultDtype`]). An accumulator that cannot hold every element (an `f32`
    /// for `f64` data, `u64` for signed data) or a mean in an integer does not
    /// compile. `min`, `max` and the index forms take no `dtype`, as in numpy.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter((0..10_000_000).map(|_| 0.1f32))?;
    /// let in_f32: f32 = pool.bulk().sum(&x)?;
    /// let in_f64: f64 = pool.bulk().dtype::<f64>().sum(&x)?;
    /// assert!((in_f64 - 1_000_000.0149).abs() < 1e-3); // 0.1f32 is 0.100000001490116...
    /// assert!((in_f32 as f64 - in_f64).abs() < 100.0);
    /// let small = shmpool::SharedArray::from_slice(&[200u8, 100])?;
    /// assert_eq!(pool.bulk().dtype::<u64>().sum(&small)?, 300);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn dtype<A: Dtype>(self) -> Bulk<'p, (), A> {
        self.with_dtype()
    }
}

#[cfg(test)]
mod tests {
    use super::{DefaultDtype, MeanIn, SumIn, divide_by_count};

    #[test]
    fn accumulators_widen_as_numpy_casts() {
        assert_eq!(<DefaultDtype as SumIn<u8>>::widen(200), 200u8);
        assert_eq!(<DefaultDtype as MeanIn<i64>>::widen(-3), -3.0f64);
        assert_eq!(<DefaultDtype as MeanIn<f32>>::widen(0.5), 0.5f32);
        assert_eq!(<i64 as SumIn<u32>>::widen(u32::MAX), 4_294_967_295i64);
        // Beyond 2^53, rounded to nearest even, as numpy's cast.
        assert_eq!(
            <f64 as SumIn<i64>>::widen((1 << 53) + 1),
            9_007_199_254_740_992.0
        );
    }

    #[test]
    fn counts_divide_in_f64_then_round() {
        assert_eq!(divide_by_count(1.0f32, 3), (1.0f64 / 3.0) as f32);
        assert!(divide_by_count(0.0f64, 0).is_nan());
        assert_eq!(divide_by_count(2.0f64, 0), f64::INFINITY);
    }
}
