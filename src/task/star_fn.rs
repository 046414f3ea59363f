//! [`StarFn`]: a function called with a tuple of arguments, unpacked, as Python's
//! `f(*args)`.

/// A function that takes its arguments as a tuple, unpacked: Python's `f(*args)`.
///
/// Implemented for every `Fn` of zero to eight arguments, so [`crate::Pool::apply`]
/// and [`crate::Pool::starmap`] accept plain closures and `fn` items:
///
/// ```
/// fn divide(x: f64, y: f64) -> f64 {
///     x / y
/// }
/// let pool = shmpool::Pool::new(1)?;
/// assert_eq!(pool.apply(divide, (1.0, 4.0))?, 0.25);
/// assert_eq!(pool.apply(|| 7, ())?, 7);
/// assert_eq!(pool.apply(|x: u32| x + 1, (41,))?, 42);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub trait StarFn<Args>: Copy {
    /// The return type.
    type Output;
    /// Calls the function with the tuple's elements as its arguments.
    fn call_star(&self, args: Args) -> Self::Output;
}

macro_rules! star_fn {
    ($($a:ident),*) => {
        impl<Func, Ret, $($a),*> StarFn<($($a,)*)> for Func
        where
            Func: Fn($($a),*) -> Ret + Copy,
        {
            type Output = Ret;
            #[allow(non_snake_case)]
            fn call_star(&self, ($($a,)*): ($($a,)*)) -> Ret {
                self($($a),*)
            }
        }
    };
}

star_fn!();
star_fn!(A);
star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, G);
star_fn!(A, B, C, D, E, G, H);
star_fn!(A, B, C, D, E, G, H, I);
