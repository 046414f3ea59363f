//! How a task's function takes its arguments: [`StarFn`], called with a tuple of
//! arguments, unpacked, as Python's `f(*args)`; and [`TaskEnv`], what it receives
//! first: nothing (`()`), or a task context (`Context<C>`: `&C`, Python's
//! `functools.partial(f, context)`).
//!
//! Every form of `Tasks` (`src/pool/tasks/`) is written once, generic over the
//! environment, and names its function as `F: StarFn<Args, E>`; the impls below
//! are the one place where the two conventions differ.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec;
use super::context::{self, ContextRef};
use crate::error::{CodecRole, Error};

mod sealed {
    pub trait Sealed {}
}

/// What a task's function receives by reference before its arguments: nothing, for
/// `()` (the functions of `pool.tasks()`), or a task context, for [`Context<C>`]
/// (after [`Tasks::with`](crate::Tasks::with)).
pub trait TaskEnv: sealed::Sealed + 'static {
    /// What the function receives a reference to: `()` (which it does not take) or
    /// the context.
    type Value;
    /// What a `Tasks` holds until its call: nothing, or the context, borrowed.
    #[doc(hidden)]
    type Borrowed<'a>: Copy;
    /// What each task's arguments name the context by: nothing, or the segment it
    /// was shipped in.
    #[doc(hidden)]
    type Ref: Serialize + DeserializeOwned + Copy + 'static;
    /// The context, encoded for shipping; `None` when there is none.
    #[doc(hidden)]
    fn encode(borrowed: Self::Borrowed<'_>) -> Option<Result<Vec<u8>, Error>>;
    /// Runs `f` with the value `r` names, in a worker (decoding a context on the
    /// worker's first use of it).
    #[doc(hidden)]
    fn enter<R>(r: Self::Ref, f: impl FnOnce(&Self::Value) -> R) -> R;
}

/// The functions of `pool.tasks()` take their arguments alone.
impl sealed::Sealed for () {}
impl TaskEnv for () {
    type Value = ();
    type Borrowed<'a> = ();
    type Ref = ();
    #[inline(always)]
    fn encode((): ()) -> Option<Result<Vec<u8>, Error>> {
        None
    }
    #[inline(always)]
    fn enter<R>((): (), f: impl FnOnce(&()) -> R) -> R {
        f(&())
    }
}

/// The environment of tasks whose function takes a context `&C` first: made by
/// [`Tasks::with`](crate::Tasks::with).
#[derive(Debug)]
pub struct Context<C>(PhantomData<fn() -> C>);

impl<C: Serialize + DeserializeOwned + 'static> sealed::Sealed for Context<C> {}
impl<C: Serialize + DeserializeOwned + 'static> TaskEnv for Context<C> {
    type Value = C;
    type Borrowed<'a> = &'a C;
    type Ref = ContextRef;
    fn encode(context: &C) -> Option<Result<Vec<u8>, Error>> {
        Some(codec::encode(context, CodecRole::Argument).map_err(Error::from))
    }
    #[inline(always)]
    fn enter<R>(r: ContextRef, f: impl FnOnce(&C) -> R) -> R {
        context::with(r, f)
    }
}

/// A function that takes its arguments as a tuple, unpacked: Python's `f(*args)`;
/// with a task context (`E = Context<C>`), `f(&context, *args)`.
///
/// Implemented for every `Fn` of zero to eight arguments (after the context, if
/// any), so [`crate::Pool::apply`] and [`crate::Pool::starmap`] accept plain
/// closures and `fn` items:
///
/// ```
/// fn divide(x: f64, y: f64) -> f64 {
///     x / y
/// }
/// let pool = shmpool::Pool::new(1)?;
/// assert_eq!(pool.apply(divide, (1.0, 4.0))?, 0.25);
/// assert_eq!(pool.apply(|| 7, ())?, 7);
/// assert_eq!(pool.apply(|x: u32| x + 1, (41,))?, 42);
/// // With a context, the function takes it by reference first.
/// let offset = 100u32;
/// assert_eq!(pool.tasks().with(&offset).apply(|o: &u32, x: u32| o + x, (1,))?, 101);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be called with the arguments `{Args}` here",
    label = "not a function of these arguments",
    note = "a task's arguments are a tuple, spread into the function's parameters: \
            `(x,)` for one, `()` for none; after `.with(&context)` the function takes \
            `&context` first; and it captures nothing"
)]
pub trait StarFn<Args, E: TaskEnv = ()>: Copy {
    /// The return type.
    type Output;
    /// Calls the function with `env` (unless `E` is `()`) and the tuple's elements
    /// as its arguments.
    fn call_star(&self, env: &E::Value, args: Args) -> Self::Output;
}

macro_rules! star_fn {
    ($($a:ident),*) => {
        impl<Func, Ret, $($a),*> StarFn<($($a,)*)> for Func
        where
            Func: Fn($($a),*) -> Ret + Copy,
        {
            type Output = Ret;
            #[inline(always)]
            #[allow(non_snake_case)]
            fn call_star(&self, _: &(), ($($a,)*): ($($a,)*)) -> Ret {
                self($($a),*)
            }
        }

        impl<Func, Ret, Cx, $($a),*> StarFn<($($a,)*), Context<Cx>> for Func
        where
            Func: Fn(&Cx, $($a),*) -> Ret + Copy,
            Cx: Serialize + DeserializeOwned + 'static,
        {
            type Output = Ret;
            #[inline(always)]
            #[allow(non_snake_case)]
            fn call_star(&self, context: &Cx, ($($a,)*): ($($a,)*)) -> Ret {
                self(context, $($a),*)
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
