//! Serialized arguments in, serialized results out: serde with the postcard format,
//! compact, with no size limit, and maintained (bincode is abandoned, DESIGN.md §7).
//! A chunk of `map` items travels as one payload and comes back as one
//! [`ChunkResult`], with a panic in one item reported for that item alone.
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
use crate::unwind::PanicReport;

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
#[cfg(any(test, feature = "mpi"))]
pub(crate) fn encode_items<T: Serialize>(
    items: &[T],
    role: CodecRole,
) -> Result<Vec<u8>, CodecFailure> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(items) + 16);
    encode_items_into(items, &mut out, role)?;
    Ok(out)
}

/// Splits a task's payload into what it names its environment by (its context's
/// reference, or `()`, which takes no bytes) and the encoded arguments after it.
#[inline]
pub(crate) fn take_prefix<P: DeserializeOwned>(bytes: &[u8]) -> Result<(P, &[u8]), CodecFailure> {
    postcard::take_from_bytes(bytes).map_err(|e| {
        CodecFailure::new(
            CodecDirection::Decode,
            CodecRole::Argument,
            type_name::<P>(),
            e,
        )
    })
}

/// Serializes `value` after `prefix` (a context's reference, or nothing) into a new
/// buffer.
pub(crate) fn encode_after<T: Serialize + ?Sized>(
    prefix: &[u8],
    value: &T,
    role: CodecRole,
) -> Result<Vec<u8>, CodecFailure> {
    let mut out = Vec::with_capacity(prefix.len() + std::mem::size_of_val(value) + 16);
    out.extend_from_slice(prefix);
    encode_into(value, &mut out, role)?;
    Ok(out)
}

/// Serializes a slice of items after `prefix`, sizing the buffer for them up front.
pub(crate) fn encode_items_after<T: Serialize>(
    prefix: &[u8],
    items: &[T],
    role: CodecRole,
) -> Result<Vec<u8>, CodecFailure> {
    let mut out = Vec::with_capacity(prefix.len() + std::mem::size_of_val(items) + 16);
    out.extend_from_slice(prefix);
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

/// Serializes the results of one chunk onto the end of `out`; a failure names the
/// type of one result.
pub(crate) fn encode_chunk_result<R: Serialize>(
    results: &ChunkResult<R>,
    out: &mut Vec<u8>,
) -> Result<(), CodecFailure> {
    out.reserve(std::mem::size_of_val(results.values.as_slice()) + 16);
    encode_named(results, out, CodecRole::Result, type_name::<R>())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(e.type_name, "shmpool::task::codec::tests::Unsized");
        assert_eq!(
            Error::from(e.clone()).to_string(),
            "could not encode a task argument of type `shmpool::task::codec::tests::Unsized`: \
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
}
