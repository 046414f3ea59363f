//! Task trampolines: monomorphized functions that decode a task's arguments, run
//! the user's function (conjured from its zero-sized type) and encode its result.
//! A task of a call with a context carries the context's reference (`ContextRef`,
//! `src/task/context.rs`) before its arguments; a task without one carries nothing
//! more than its arguments.
//! Code travels as a trampoline's offset from the code anchor, as bulk kernels do
//! (`src/kernel/mod.rs`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{
    ChunkResult, CodecFailure, decode, decode_items, encode_chunk_result, encode_into,
    take_context_failure, take_prefix,
};
use super::star_fn::{StarFn, TaskEnv};
use crate::error::CodecRole;
use crate::kernel::conjure;
use crate::unwind;

/// A task trampoline: decodes `args`, runs the task, appends the encoded result to
/// `out`. `Err` carries a codec failure; panics propagate to the caller.
///
/// # Safety
/// Must be called in a process running the same binary that produced its code
/// offset; the trampoline conjures its zero-sized function type.
pub(crate) type TaskFn = unsafe fn(args: &[u8], out: &mut Vec<u8>) -> Result<(), CodecFailure>;

/// Runs `f(*args)` (with a context, `f(&context, *args)`) for one task.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn apply_trampoline<E, Args, F>(
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure>
where
    E: TaskEnv,
    Args: DeserializeOwned,
    F: StarFn<Args, E>,
    F::Output: Serialize,
{
    let (env, args) = take_prefix::<E::Ref>(bytes)?;
    let args: Args = decode(args, CodecRole::Argument)?;
    // SAFETY: F is zero-sized (checked where the trampoline is instantiated).
    let f: F = unsafe { conjure() };
    encode_into(
        &E::enter(env, |v| f.call_star(v, args)),
        out,
        CodecRole::Result,
    )
}

/// Runs `f(x)` (with a context, `f(&context, x)`) for each item of a chunk.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn map_trampoline<E, A, R, F>(
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure>
where
    E: TaskEnv,
    A: DeserializeOwned,
    R: Serialize,
    F: StarFn<(A,), E, Output = R>,
{
    let (env, items) = take_prefix::<E::Ref>(bytes)?;
    let items: Vec<A> = decode_items(items, CodecRole::Argument)?;
    // SAFETY: as above.
    let f: F = unsafe { conjure() };
    let results = run_items(items, |a| E::enter(env, |v| f.call_star(v, (a,))));
    // A context that cannot be decoded fails the chunk as its arguments would.
    if let Some(failure) = take_context_failure() {
        return Err(failure);
    }
    encode_chunk_result(&results, out)
}

/// Runs `f(*args)` (with a context, `f(&context, *args)`) for each argument tuple of
/// a chunk.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn starmap_trampoline<E, Args, F>(
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure>
where
    E: TaskEnv,
    Args: DeserializeOwned,
    F: StarFn<Args, E>,
    F::Output: Serialize,
{
    let (env, items) = take_prefix::<E::Ref>(bytes)?;
    let items: Vec<Args> = decode_items(items, CodecRole::Argument)?;
    // SAFETY: as above.
    let f: F = unsafe { conjure() };
    let results = run_items(items, |a| E::enter(env, |v| f.call_star(v, a)));
    if let Some(failure) = take_context_failure() {
        return Err(failure);
    }
    encode_chunk_result(&results, out)
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
    use super::super::codec::encode;
    use super::*;
    use crate::error::CodecDirection;

    fn apply_of<Args, F>(_: F) -> TaskFn
    where
        Args: DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize,
    {
        apply_trampoline::<(), Args, F>
    }

    #[test]
    fn trampolines_unpack_arguments_and_encode_results() {
        let t = apply_of(|a: u32, b: String| format!("{b}{a}"));
        let args = encode(&(7u32, "x".to_string()), CodecRole::Argument).unwrap();
        let mut out = Vec::new();
        // SAFETY: the trampoline was instantiated in this process.
        unsafe { t(&args, &mut out) }.unwrap();
        assert_eq!(decode::<String>(&out, CodecRole::Result).unwrap(), "x7");
        // Bad arguments are a codec error, not a panic, and name their type.
        // SAFETY: as above.
        let e = unsafe { t(&[0xff], &mut out) }.unwrap_err();
        assert_eq!(
            e,
            CodecFailure {
                direction: CodecDirection::Decode,
                role: CodecRole::Argument,
                type_name: "(u32, alloc::string::String)".into(),
                reason: "postcard: Hit the end of buffer, expected more data (the bytes do not \
                         fit the type: its `Serialize` and `Deserialize` impls may disagree, as \
                         they do under postcard with `#[serde(skip_serializing_if)]`)"
                    .into(),
            }
        );
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
