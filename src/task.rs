//! Generic tasks: serialized arguments in, serialized results out, run by
//! monomorphized trampolines (see `kernel.rs` for how code travels).
//!
//! Arguments and results use serde with the postcard format: compact, no size limit,
//! maintained (bincode is abandoned, DESIGN.md §7). A chunk of `map` items travels as
//! one payload and comes back as one [`ChunkResult`], with a panic in one item
//! reported for that item alone.
//!
//! A value that fails to encode or decode is a [`CodecFailure`], which names the
//! value's type and role and postcard's reason. The parent turns it into
//! [`Error::Codec`]; a worker sends it to the parent as the payload of an
//! `OutcomeCode::Codec` completion ([`CodecFailure::into_bytes`], read back by
//! [`worker_failure`]).

use std::any::type_name;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{CodecDirection, CodecRole, Error};
use crate::kernel::conjure;
use crate::unwind::{self, PanicReport};

/// A task trampoline: decodes `args`, runs the task, appends the encoded result to
/// `out`. `Err` carries a codec failure; panics propagate to the caller.
///
/// # Safety
/// Must be called in a process running the same binary that produced its code
/// offset; the trampoline conjures its zero-sized function type.
pub(crate) type TaskFn = unsafe fn(args: &[u8], out: &mut Vec<u8>) -> Result<(), CodecFailure>;

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

/// A value that could not be serialized or deserialized: the fields of
/// [`Error::Codec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecFailure {
    pub direction: CodecDirection,
    pub role: CodecRole,
    pub type_name: String,
    pub reason: String,
}

impl From<CodecFailure> for Error {
    fn from(f: CodecFailure) -> Self {
        Error::Codec {
            direction: f.direction,
            role: f.role,
            type_name: f.type_name,
            reason: f.reason,
        }
    }
}

impl std::fmt::Display for CodecFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Error::from(self.clone()).fmt(f)
    }
}

thread_local! {
    /// A task context that a task of this (worker) thread could not decode. The
    /// decode happens inside the user's function (`task_context::with`), which can
    /// only panic; the trampoline, or the worker for `apply`, then reports this
    /// failure instead of the panic, so the call fails with `Error::Codec`.
    static CONTEXT_FAILURE: std::cell::RefCell<Option<CodecFailure>> =
        const { std::cell::RefCell::new(None) };
}

/// Records that this thread's task could not decode its context; the caller panics
/// next.
pub(crate) fn record_context_failure(failure: CodecFailure) {
    CONTEXT_FAILURE.with(|c| *c.borrow_mut() = Some(failure));
}

/// The context failure recorded since the last call, if any.
pub(crate) fn take_context_failure() -> Option<CodecFailure> {
    CONTEXT_FAILURE.with(|c| c.borrow_mut().take())
}

/// The first byte of a worker's structured codec failure. The other payloads of a
/// CODEC completion are UTF-8 text ([`worker_failure`]), which never starts with a
/// NUL byte.
const STRUCTURED: u8 = 0;

/// A [`CodecFailure`] as it travels: direction, role, type name, reason.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    encode: bool,
    role: u8,
    type_name: &'a str,
    reason: &'a str,
}

impl CodecFailure {
    fn new(
        direction: CodecDirection,
        role: CodecRole,
        type_name: &str,
        e: postcard::Error,
    ) -> Self {
        CodecFailure {
            direction,
            role,
            type_name: type_name.to_string(),
            reason: reason(&e),
        }
    }

    /// This failure as the payload of a worker's `OutcomeCode::Codec` completion, which
    /// [`worker_failure`] reads back in the parent.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        let wire = Wire {
            encode: self.direction == CodecDirection::Encode,
            role: match self.role {
                CodecRole::Argument => 0,
                CodecRole::Result => 1,
                CodecRole::PanicReport => 2,
            },
            type_name: &self.type_name,
            reason: &self.reason,
        };
        // Strings and small integers always serialize.
        postcard::to_extend(&wire, vec![STRUCTURED]).unwrap_or_else(|_| {
            // Unreachable; keep the message if it ever happens.
            self.to_string().into_bytes()
        })
    }

    fn from_bytes(payload: &[u8]) -> Option<Self> {
        let (&STRUCTURED, rest) = payload.split_first()? else {
            return None;
        };
        let wire: Wire<'_> = postcard::from_bytes(rest).ok()?;
        Some(CodecFailure {
            direction: if wire.encode {
                CodecDirection::Encode
            } else {
                CodecDirection::Decode
            },
            role: match wire.role {
                0 => CodecRole::Argument,
                1 => CodecRole::Result,
                2 => CodecRole::PanicReport,
                _ => return None,
            },
            type_name: wire.type_name.to_string(),
            reason: wire.reason.to_string(),
        })
    }
}

/// The error of a worker's `OutcomeCode::Codec` completion: a value that failed to
/// encode or decode in the worker ([`CodecFailure::into_bytes`]), or, as UTF-8
/// text, a payload the worker could not read or store.
pub(crate) fn worker_failure(payload: &[u8]) -> Error {
    match CodecFailure::from_bytes(payload) {
        Some(f) => f.into(),
        None => Error::Transfer {
            reason: String::from_utf8_lossy(payload).into_owned(),
        },
    }
}

/// Postcard's reason for a failure, with a hint at its usual cause: postcard's own
/// messages are terse, and it drops the message of a failing `Serialize` or
/// `Deserialize` impl.
fn reason(e: &postcard::Error) -> String {
    use postcard::Error as P;
    let hint = match e {
        P::SerdeSerCustom => {
            "a `Serialize` impl in the value returned an error, such as a custom one, a \
             non-UTF-8 path or a poisoned mutex; postcard does not keep its message"
        }
        P::SerdeDeCustom => {
            "a `Deserialize` impl in the type rejected the bytes, such as a custom check or an \
             unknown enum variant; postcard does not keep its message"
        }
        P::SerializeSeqLengthUnknown => {
            "postcard writes the length of each sequence and map first, so it cannot encode \
             one of unknown length, such as a `#[serde(flatten)]` struct or a `collect_seq` \
             over an iterator of inexact size"
        }
        P::WontImplement => {
            "postcard is not self-describing, so it cannot decode types that need \
             `deserialize_any`, such as `#[serde(untagged)]`, internally tagged or \
             `#[serde(flatten)]` types, or `serde_json::Value`"
        }
        P::DeserializeUnexpectedEnd
        | P::DeserializeBadVarint
        | P::DeserializeBadBool
        | P::DeserializeBadChar
        | P::DeserializeBadUtf8
        | P::DeserializeBadOption
        | P::DeserializeBadEnum
        | P::DeserializeBadEncoding => {
            "the bytes do not fit the type: its `Serialize` and `Deserialize` impls may \
             disagree, as they do under postcard with `#[serde(skip_serializing_if)]`"
        }
        _ => return format!("postcard: {e}"),
    };
    format!("postcard: {e} ({hint})")
}

/// Serializes `value`, a `type_name` in the role `role`, onto the end of `out`.
fn encode_named<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    role: CodecRole,
    type_name: &str,
) -> Result<(), CodecFailure> {
    let taken = std::mem::take(out);
    match postcard::to_extend(value, taken) {
        Ok(v) => {
            *out = v;
            Ok(())
        }
        Err(e) => Err(CodecFailure::new(
            CodecDirection::Encode,
            role,
            type_name,
            e,
        )),
    }
}

/// Deserializes a value, a `type_name` in the role `role`.
fn decode_named<T: DeserializeOwned>(
    bytes: &[u8],
    role: CodecRole,
    type_name: &str,
) -> Result<T, CodecFailure> {
    postcard::from_bytes(bytes)
        .map_err(|e| CodecFailure::new(CodecDirection::Decode, role, type_name, e))
}

/// Serializes `value` onto the end of `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    role: CodecRole,
) -> Result<(), CodecFailure> {
    encode_named(value, out, role, type_name::<T>())
}

/// Serializes `value` into a new buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    role: CodecRole,
) -> Result<Vec<u8>, CodecFailure> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(value) + 16);
    encode_into(value, &mut out, role)?;
    Ok(out)
}

/// Serializes a slice of items (or results) onto the end of `out`; a failure names
/// the type of one item.
pub(crate) fn encode_items_into<T: Serialize>(
    items: &[T],
    out: &mut Vec<u8>,
    role: CodecRole,
) -> Result<(), CodecFailure> {
    encode_named(items, out, role, type_name::<T>())
}

/// Serializes a slice of items (or results), sizing the buffer for them up front.
pub(crate) fn encode_items<T: Serialize>(
    items: &[T],
    role: CodecRole,
) -> Result<Vec<u8>, CodecFailure> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(items) + 16);
    encode_items_into(items, &mut out, role)?;
    Ok(out)
}

/// Deserializes a value.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    role: CodecRole,
) -> Result<T, CodecFailure> {
    decode_named(bytes, role, type_name::<T>())
}

/// Deserializes a sequence of items (or results); a failure names the type of one
/// item.
pub(crate) fn decode_items<T: DeserializeOwned>(
    bytes: &[u8],
    role: CodecRole,
) -> Result<Vec<T>, CodecFailure> {
    decode_named(bytes, role, type_name::<T>())
}

/// Deserializes the results of one chunk of a `map`; a failure names the type of
/// one result.
pub(crate) fn decode_chunk_result<R: DeserializeOwned>(
    bytes: &[u8],
) -> Result<ChunkResult<R>, CodecFailure> {
    decode_named(bytes, CodecRole::Result, type_name::<R>())
}

/// Serializes the report of a task's panic.
pub(crate) fn encode_report(report: &PanicReport) -> Result<Vec<u8>, CodecFailure> {
    encode(report, CodecRole::PanicReport)
}

/// Deserializes the report of a task's panic.
pub(crate) fn decode_report(bytes: &[u8]) -> Result<PanicReport, CodecFailure> {
    decode(bytes, CodecRole::PanicReport)
}

/// A chunk's results that do not match its items in number.
pub(crate) fn result_count_mismatch<R>(results: usize, items: usize) -> Error {
    Error::Codec {
        direction: CodecDirection::Decode,
        role: CodecRole::Result,
        type_name: type_name::<R>().to_string(),
        reason: format!("the worker sent {results} results for a chunk of {items} items"),
    }
}

/// Runs `f(*args)` for one task.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn apply_trampoline<Args, F>(
    args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure>
where
    Args: DeserializeOwned,
    F: StarFn<Args>,
    F::Output: Serialize,
{
    let args: Args = decode(args, CodecRole::Argument)?;
    // SAFETY: F is zero-sized (checked where the trampoline is instantiated).
    let f: F = unsafe { conjure() };
    encode_into(&f.call_star(args), out, CodecRole::Result)
}

/// Runs `f(x)` for each item of a chunk.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn map_trampoline<A, R, F>(
    args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure>
where
    A: DeserializeOwned,
    R: Serialize,
    F: Fn(A) -> R,
{
    let items: Vec<A> = decode_items(args, CodecRole::Argument)?;
    // SAFETY: as above.
    let f: F = unsafe { conjure() };
    let results = run_items(items, f);
    // A context that cannot be decoded fails the chunk as its arguments would.
    if let Some(failure) = take_context_failure() {
        return Err(failure);
    }
    encode_chunk_result(&results, out)
}

/// Runs `f(*args)` for each argument tuple of a chunk.
///
/// # Safety
/// See [`TaskFn`].
pub(crate) unsafe fn starmap_trampoline<Args, F>(
    args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure>
where
    Args: DeserializeOwned,
    F: StarFn<Args>,
    F::Output: Serialize,
{
    let items: Vec<Args> = decode_items(args, CodecRole::Argument)?;
    // SAFETY: as above.
    let f: F = unsafe { conjure() };
    let results = run_items(items, |a| f.call_star(a));
    if let Some(failure) = take_context_failure() {
        return Err(failure);
    }
    encode_chunk_result(&results, out)
}

/// Serializes the results of one chunk onto the end of `out`; a failure names the
/// type of one result.
fn encode_chunk_result<R: Serialize>(
    results: &ChunkResult<R>,
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure> {
    out.reserve(std::mem::size_of_val(results.values.as_slice()) + 16);
    encode_named(results, out, CodecRole::Result, type_name::<R>())
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

    /// Serializes as a sequence of unknown length, which postcard cannot encode.
    struct Unsized;

    impl Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            s.serialize_seq(None)?.end()
        }
    }

    #[test]
    fn a_failure_names_the_item_type_and_travels_from_a_worker_intact() {
        let e = encode_items(&[Unsized, Unsized], CodecRole::Argument).unwrap_err();
        assert_eq!(e.type_name, "shmpool::task::tests::Unsized");
        assert_eq!(
            Error::from(e.clone()).to_string(),
            "could not encode a task argument of type `shmpool::task::tests::Unsized`: \
             postcard: The length of a sequence must be known (postcard writes the length of \
             each sequence and map first, so it cannot encode one of unknown length, such as \
             a `#[serde(flatten)]` struct or a `collect_seq` over an iterator of inexact size)"
        );
        // A worker sends it as a CODEC payload; the parent reads back the same error.
        match worker_failure(&e.clone().into_bytes()) {
            Error::Codec {
                direction,
                role,
                type_name,
                reason,
            } => assert_eq!(
                CodecFailure {
                    direction,
                    role,
                    type_name,
                    reason
                },
                e
            ),
            other => panic!("expected Codec, got {other:?}"),
        }
        // A worker's text is a transfer failure, not a codec one.
        match worker_failure(b"store the result: too big") {
            Error::Transfer { reason } => assert_eq!(reason, "store the result: too big"),
            other => panic!("expected Transfer, got {other:?}"),
        }
    }

    #[test]
    fn a_chunk_result_names_the_result_type() {
        let e = decode_chunk_result::<u64>(&[]).unwrap_err();
        assert_eq!(
            (e.direction, e.role),
            (CodecDirection::Decode, CodecRole::Result)
        );
        assert_eq!(e.type_name, "u64");
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
