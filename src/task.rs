//! Generic tasks: serialized arguments in, serialized results out, run by
//! monomorphized trampolines (see `kernel.rs` for how code travels).
//!
//! Arguments and results use serde with the postcard format: compact, no size limit,
//! maintained (bincode is abandoned, DESIGN.md §7). A chunk of `map` items travels as
//! one payload and comes back as one [`ChunkResult`], with a panic in one item
//! reported for that item alone.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::kernel::conjure;
use crate::unwind::{self, PanicReport};

/// A task trampoline: decodes `args`, runs the task, appends the encoded result to
/// `out`. `Err` carries a codec failure; panics propagate to the caller.
///
/// # Safety
/// Must be called in a process running the same binary that produced its code
/// offset; the trampoline conjures its zero-sized function type.
pub(crate) type TaskFn = unsafe fn(args: &[u8], out: &mut Vec<u8>) -> Result<(), String>;

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

/// The results of one chunk of items: the values of the items that returned, in
/// order, and the panics of those that did not, by index within the chunk.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChunkResult<R> {
    /// Values of the successful items, in item order.
    pub values: Vec<R>,
    /// (index in chunk, report) of each item that panicked.
    pub panics: Vec<(u32, PanicReport)>,
}

/// Serializes `value` onto the end of `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let taken = std::mem::take(out);
    match postcard::to_extend(value, taken) {
        Ok(v) => {
            *out = v;
            Ok(())
        }
        Err(e) => Err(format!("encode a value: {e}")),
    }
}

/// Serializes `value` into a new buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(value) + 16);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Serializes a slice of items, sizing the buffer for them up front.
pub(crate) fn encode_items<T: Serialize>(items: &[T]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(items) + 16);
    encode_into(items, &mut out)?;
    Ok(out)
}

/// Deserializes a value. The error names the Rust type, because postcard's own
/// message for a failing `Deserialize` impl is generic.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    postcard::from_bytes(bytes)
        .map_err(|e| format!("decode {what} as {}: {e}", std::any::type_name::<T>()))
}

/// Runs `f(*args)` for one task.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn apply_trampoline<Args, F>(args: &[u8], out: &mut Vec<u8>) -> Result<(), String>
where
    Args: DeserializeOwned,
    F: StarFn<Args>,
    F::Output: Serialize,
{
    let args: Args = decode(args, "the task's arguments")?;
    // SAFETY: F is zero-sized (checked where the trampoline is instantiated).
    let f: F = unsafe { conjure() };
    encode_into(&f.call_star(args), out)
}

/// Runs `f(x)` for each item of a chunk.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn map_trampoline<A, R, F>(args: &[u8], out: &mut Vec<u8>) -> Result<(), String>
where
    A: DeserializeOwned,
    R: Serialize,
    F: Fn(A) -> R,
{
    let items: Vec<A> = decode(args, "the chunk's items")?;
    // SAFETY: as above.
    let f: F = unsafe { conjure() };
    let results = run_items(items, f);
    out.reserve(std::mem::size_of_val(results.values.as_slice()) + 16);
    encode_into(&results, out)
}

/// Runs `f(*args)` for each argument tuple of a chunk.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn starmap_trampoline<Args, F>(
    args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String>
where
    Args: DeserializeOwned,
    F: StarFn<Args>,
    F::Output: Serialize,
{
    let items: Vec<Args> = decode(args, "the chunk's argument tuples")?;
    // SAFETY: as above.
    let f: F = unsafe { conjure() };
    let results = run_items(items, |a| f.call_star(a));
    out.reserve(std::mem::size_of_val(results.values.as_slice()) + 16);
    encode_into(&results, out)
}

/// Runs `f` over the items; a panic fails only its item, and the loop resumes with
/// the next one. One `catch_unwind` covers the whole run between panics, so the
/// common, panic-free case costs nothing per item.
fn run_items<T, R>(items: Vec<T>, f: impl Fn(T) -> R) -> ChunkResult<R> {
    let mut values = Vec::with_capacity(items.len());
    let mut panics = Vec::new();
    let mut items = items.into_iter();
    let mut index = 0u32;
    loop {
        let run = unwind::catch(|| {
            for item in &mut items {
                values.push(f(item));
                index += 1;
            }
        });
        match run {
            Ok(()) => return ChunkResult { values, panics },
            Err(report) => {
                panics.push((index, report));
                index += 1;
            }
        }
    }
}

/// The offset of a task trampoline.
pub(crate) fn task_offset(f: TaskFn) -> i64 {
    crate::kernel::offset_of_fn(f as usize)
}

/// Recovers a task trampoline from its offset.
///
/// # Safety
/// `offset` must come from [`task_offset`] in a process running the same binary.
pub(crate) unsafe fn task_from_offset(offset: i64) -> TaskFn {
    let addr = crate::kernel::addr_of_offset(offset);
    // SAFETY: by the caller's guarantee, `addr` is a TaskFn in this binary image.
    unsafe { std::mem::transmute::<usize, TaskFn>(addr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_of<Args, F>(_: F) -> TaskFn
    where
        Args: DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize,
    {
        apply_trampoline::<Args, F>
    }

    #[test]
    fn trampolines_unpack_arguments_and_encode_results() {
        let t = apply_of(|a: u32, b: String| format!("{b}{a}"));
        let args = encode(&(7u32, "x".to_string())).unwrap();
        let mut out = Vec::new();
        // SAFETY: the trampoline was instantiated in this process.
        unsafe { t(&args, &mut out) }.unwrap();
        assert_eq!(decode::<String>(&out, "r").unwrap(), "x7");
        // Bad arguments are a codec error, not a panic.
        // SAFETY: as above.
        let e = unsafe { t(&[0xff], &mut out) }.unwrap_err();
        assert!(e.starts_with("decode the task's arguments"), "{e}");
    }

    #[test]
    fn a_panicking_item_fails_alone() {
        let r = run_items(vec![1, 2, 3], |x: i32| {
            if x == 2 {
                panic!("two");
            }
            x * 10
        });
        assert_eq!(r.values, vec![10, 30]);
        assert_eq!(r.panics.len(), 1);
        assert_eq!(r.panics[0].0, 1);
        assert_eq!(r.panics[0].1.message, "two");
    }
}
