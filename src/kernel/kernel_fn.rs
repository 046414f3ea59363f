//! [`KernelFn`]: how a bulk kernel takes its arguments, for each kind of kernel
//! environment, written once.
//!
//! A kernel of `pool.bulk()` takes its elements (or slices, or rows) alone; after
//! `.with(p)` it takes `&P` first; after `.context(array)` an `&Env<P>`. Every form
//! of `Bulk` is written once, generic over the environment `E`, and names its kernel
//! as `F: KernelFn<E, Args>`: the impls below are the one place where the three
//! conventions differ. The kernel bodies (`src/kernel/bodies.rs`) call
//! [`KernelFn::call`], which is `#[inline(always)]`, so the user's kernel is still
//! inlined into every SIMD entry point (`src/kernel/simd_dispatch.rs`) with nothing
//! of shmpool's between them.

use std::ops::Range;

use super::env::{Env, KernelEnv, Params, ParamsAndArrays};
use super::grid::Grid;

/// A bulk kernel for the environment `E`, called with the arguments `Args` (a
/// tuple: an element, or a chunk's slices, or a row and its output).
///
/// Implemented for every non-capturing closure and `fn` item of the matching
/// signature:
///
/// | `E` (made by) | a kernel of `Args = (A, B)` is |
/// |---|---|
/// | `()` (`pool.bulk()`) | `Fn(A, B) -> R` |
/// | [`Params<P>`] (`.with(p)`) | `Fn(&P, A, B) -> R` |
/// | [`ParamsAndArrays<P>`] (`.context(array)`) | `Fn(&Env<P>, A, B) -> R` |
///
/// # Examples
///
/// ```
/// use shmpool::{Env, Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let x = SharedArray::from_slice(&[1.0f64, 4.0, 9.0])?;
/// let mut y = SharedArray::zeroed(3)?;
/// pool.bulk().map_into(&x, &mut y, |v: f64| v.sqrt())?;
/// pool.bulk().with(10.0).map_into(&x, &mut y, |k: &f64, v: f64| k * v)?;
/// assert_eq!(&y[..], &[10.0, 40.0, 90.0]);
/// let table = SharedArray::from_slice(&[0.5f64])?;
/// pool.bulk()
///     .context(&table)
///     .map_into(&x, &mut y, |env: &Env<()>, v: f64| v * env.array::<f64>(0)[0])?;
/// assert_eq!(&y[..], &[0.5, 2.0, 4.5]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a kernel of these arguments for `{E}`",
    label = "not a kernel of this shape",
    note = "a kernel of `bulk()` takes the elements alone (`|v: f64| ...`); after \
            `.with(p)` it takes `&P` first (`|p: &P, v: f64| ...`); after `.context(array)` \
            an `&Env<P>` first; and it captures nothing"
)]
pub trait KernelFn<E: KernelEnv, Args>: Copy {
    /// What the kernel returns.
    type Output;
    /// Calls the kernel with the environment's argument (nothing for `E = ()`) and
    /// `args`, unpacked.
    fn call(&self, env: &E::Arg, args: Args) -> Self::Output;
}

macro_rules! kernel_fn {
    ($($a:ident),+) => {
        impl<Func, Ret, $($a),+> KernelFn<(), ($($a,)+)> for Func
        where
            Func: Fn($($a),+) -> Ret + Copy,
        {
            type Output = Ret;
            #[inline(always)]
            #[allow(non_snake_case)]
            fn call(&self, _: &(), ($($a,)+): ($($a,)+)) -> Ret {
                self($($a),+)
            }
        }

        impl<Func, Ret, P: bytemuck::Pod, $($a),+> KernelFn<Params<P>, ($($a,)+)> for Func
        where
            Func: Fn(&P, $($a),+) -> Ret + Copy,
        {
            type Output = Ret;
            #[inline(always)]
            #[allow(non_snake_case)]
            fn call(&self, p: &P, ($($a,)+): ($($a,)+)) -> Ret {
                self(p, $($a),+)
            }
        }

        impl<Func, Ret, P: bytemuck::Pod, $($a),+> KernelFn<ParamsAndArrays<P>, ($($a,)+)>
            for Func
        where
            Func: Fn(&Env<P>, $($a),+) -> Ret + Copy,
        {
            type Output = Ret;
            #[inline(always)]
            #[allow(non_snake_case)]
            fn call(&self, env: &Env<P>, ($($a,)+): ($($a,)+)) -> Ret {
                self(env, $($a),+)
            }
        }
    };
}

kernel_fn!(A);
kernel_fn!(A, B);
kernel_fn!(A, B, C);
kernel_fn!(A, B, C, D);

/// A fold kernel of one accumulator (`fold_reduce`'s, `f(&mut acc, slices)`) as the
/// fold body calls it: `(global start, the chunk's slot of accumulators, slices)`,
/// folding into the slot's first. As zero-sized as the kernel it wraps.
#[derive(Clone, Copy)]
pub(crate) struct FoldOne<F>(pub F);

impl<'a, E, A: 'a, S, F> KernelFn<E, (usize, &'a mut [A], S)> for FoldOne<F>
where
    E: KernelEnv,
    F: KernelFn<E, (&'a mut A, S), Output = ()>,
{
    type Output = ();
    #[inline(always)]
    fn call(&self, env: &E::Arg, (_, slot, xs): (usize, &'a mut [A], S)) {
        self.0.call(env, (&mut slot[0], xs))
    }
}

/// A fold kernel of one accumulator over rows (`fold_rows`'s, `f(&mut acc, row)`)
/// as the row fold body calls it: `(global rows, the chunk's slot of accumulators,
/// the chunk's rows)`, each row folded in order into the slot's first. As
/// zero-sized as the kernel it wraps.
#[derive(Clone, Copy)]
pub(crate) struct FoldEachRow<F>(pub F);

impl<'a, E, A: 'a, T: 'a, F> KernelFn<E, (Range<usize>, &'a mut [A], Grid<'a, T>)>
    for FoldEachRow<F>
where
    E: KernelEnv,
    F: for<'b> KernelFn<E, (&'b mut A, &'b [T]), Output = ()>,
{
    type Output = ();
    #[inline(always)]
    fn call(&self, env: &E::Arg, (rows, slot, grid): (Range<usize>, &'a mut [A], Grid<'a, T>)) {
        let acc = &mut slot[0];
        match grid.cols() {
            // Rows of no element: one call each all the same, as `map_rows_into`.
            0 => rows.for_each(|_| self.0.call(env, (&mut *acc, &[]))),
            cols => {
                for row in grid.as_slice().chunks_exact(cols) {
                    self.0.call(env, (&mut *acc, row));
                }
            }
        }
    }
}
