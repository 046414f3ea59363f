//! Bad input and misuse: each gets a clear, typed error, never a panic or a hang,
//! and the pool stays usable.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shmpool::{CodecDirection, CodecRole, Error, Pool, SharedArray};

fn pool() -> Pool {
    Pool::new(2).expect("pool")
}

#[test]
fn zero_processes_is_refused() {
    assert!(matches!(Pool::new(0), Err(Error::ZeroProcesses)));
    assert!(matches!(
        Pool::builder().processes(0).build(),
        Err(Error::ZeroProcesses)
    ));
}

#[test]
fn more_processes_than_a_pool_can_have_is_refused_as_such() {
    for result in [
        Pool::new(100_000),
        Pool::builder().processes(100_000).build(),
    ] {
        match result {
            Err(e @ Error::TooManyProcesses { requested, max }) => {
                assert_eq!(requested, 100_000);
                assert!((1..100_000).contains(&max), "{max}");
                assert_eq!(
                    e.to_string(),
                    format!(
                        "100000 worker processes were asked for; a pool can have at most {max}"
                    )
                );
            }
            Err(other) => panic!("expected TooManyProcesses, got {other:?}"),
            Ok(_) => panic!("a pool of 100000 processes started"),
        }
    }
}

#[test]
fn a_zero_chunk_length_is_refused_everywhere() {
    let pool = pool();
    let xs = SharedArray::<f64>::zeroed(10).unwrap();
    let mut ys = SharedArray::<f64>::zeroed(10).unwrap();
    let empty = SharedArray::<f64>::zeroed(0).unwrap();
    let mut empty_out = SharedArray::<f64>::zeroed(0).unwrap();
    let zero = || pool.bulk().chunk_len(0);
    assert!(matches!(
        zero().map_into(&xs, &mut ys, |v: f64| v),
        Err(Error::ZeroChunkLen)
    ));
    // Even for an empty array: the argument is wrong whatever the data.
    assert!(matches!(
        zero().map_into(&empty, &mut empty_out, |v: f64| v),
        Err(Error::ZeroChunkLen)
    ));
    assert!(matches!(
        zero().for_each_mut(&mut ys, |v: &mut f64| *v += 1.0),
        Err(Error::ZeroChunkLen)
    ));
    let tasks = || pool.tasks().chunksize(0);
    assert!(matches!(
        tasks().map(|x: u8| x, vec![1u8]),
        Err(Error::ZeroChunkLen)
    ));
    assert!(matches!(
        tasks().starmap(|a: u8, b: u8| a + b, vec![(1u8, 2u8)]),
        Err(Error::ZeroChunkLen)
    ));
    assert!(matches!(
        tasks().imap(|x: u8| x, vec![1u8]),
        Err(Error::ZeroChunkLen)
    ));
    assert!(matches!(
        tasks().imap_unordered(|x: u8| x, vec![1u8]),
        Err(Error::ZeroChunkLen)
    ));
    // Empty inputs too.
    assert!(matches!(
        tasks().map(|x: u8| x, Vec::<u8>::new()),
        Err(Error::ZeroChunkLen)
    ));
    assert!(matches!(
        tasks().starmap(|a: u8, b: u8| a + b, Vec::<(u8, u8)>::new()),
        Err(Error::ZeroChunkLen)
    ));
    assert!(matches!(
        tasks().imap(|x: u8| x, Vec::<u8>::new()),
        Err(Error::ZeroChunkLen)
    ));
    assert!(matches!(
        tasks().imap_unordered(|x: u8| x, Vec::<u8>::new()),
        Err(Error::ZeroChunkLen)
    ));
}

#[test]
fn mismatched_lengths_are_refused_and_nothing_is_written() {
    let pool = pool();
    let xs = SharedArray::filled(10, 1.0f64).unwrap();
    let mut ys = SharedArray::filled(11, 5.0f64).unwrap();
    match pool.map_into(&xs, &mut ys, |v: f64| v * 2.0) {
        Err(Error::LengthMismatch {
            input: 10,
            output: 11,
        }) => {}
        other => panic!("expected LengthMismatch, got {other:?}"),
    }
    assert!(ys.iter().all(|v| *v == 5.0));
    assert!(matches!(
        pool.bulk()
            .map_chunks_into(&xs, &mut ys, |a: &[f64], b: &mut [f64]| b
                .copy_from_slice(a)),
        Err(Error::LengthMismatch { .. })
    ));
}

#[test]
fn more_chunks_than_a_job_can_track_is_refused() {
    let pool = pool();
    let xs = SharedArray::<u8>::zeroed((1 << 20) + 1).unwrap();
    let mut ys = SharedArray::<u8>::zeroed((1 << 20) + 1).unwrap();
    match pool.bulk().chunk_len(1).map_into(&xs, &mut ys, |v: u8| v) {
        Err(Error::TooManyChunks { chunks, max }) => {
            assert_eq!(chunks, (1 << 20) + 1);
            assert_eq!(max, 1 << 20);
        }
        other => panic!("expected TooManyChunks, got {other:?}"),
    }
    // The default chunk length never hits the limit.
    pool.map_into(&xs, &mut ys, |v: u8| v + 1).unwrap();
    assert!(ys.iter().all(|v| *v == 1));
}

/// Serializes fine, but refuses to deserialize values above 10.
#[derive(Debug, Serialize)]
struct Picky(u32);

impl<'de> Deserialize<'de> for Picky {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v > 10 {
            return Err(D::Error::custom(format!("{v} is too big for Picky")));
        }
        Ok(Picky(v))
    }
}

/// The reason postcard gives when a `Deserialize` impl fails, hint included.
const DE_CUSTOM: &str = "postcard: Serde Deserialization Error (a `Deserialize` impl in the type \
                         rejected the bytes, such as a custom check or an unknown enum variant; \
                         postcard does not keep its message)";

/// The reason postcard gives when a `Serialize` impl fails, hint included.
const SER_CUSTOM: &str = "postcard: Serde Serialization Error (a `Serialize` impl in the value \
                          returned an error, such as a custom one, a non-UTF-8 path or a \
                          poisoned mutex; postcard does not keep its message)";

/// Asserts that `result` is a codec error with exactly these parts and message.
#[track_caller]
fn assert_codec<T: std::fmt::Debug>(
    result: &Result<T, Error>,
    direction: CodecDirection,
    role: CodecRole,
    type_name: &str,
    reason: &str,
) {
    match result {
        Err(
            e @ Error::Codec {
                direction: d,
                role: r,
                type_name: t,
                reason: why,
            },
        ) => {
            assert_eq!(
                (*d, *r, t.as_str(), why.as_str()),
                (direction, role, type_name, reason)
            );
            assert_eq!(
                e.to_string(),
                format!("could not {direction} {role} of type `{type_name}`: {reason}")
            );
        }
        other => panic!("expected a Codec error, got {other:?}"),
    }
}

#[test]
fn results_and_arguments_that_fail_to_deserialize_are_codec_errors() {
    use CodecDirection::Decode;
    use CodecRole::Argument;
    let pool = pool();
    // Decoded in the parent: the task's result.
    let r = pool.apply(Picky, (20,));
    assert_codec(
        &r,
        Decode,
        CodecRole::Result,
        "pool_bad_input::Picky",
        DE_CUSTOM,
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        format!("could not decode a task result of type `pool_bad_input::Picky`: {DE_CUSTOM}")
    );
    // Decoded in the worker: the task's arguments, reported back by the worker.
    let r = pool.apply(|p: Picky| p.0, (Picky(20),));
    assert_codec(&r, Decode, Argument, "(pool_bad_input::Picky,)", DE_CUSTOM);
    // A map item, in the worker.
    let r = pool.map(|p: Picky| p.0, (0..20u32).map(Picky));
    assert_codec(&r, Decode, Argument, "pool_bad_input::Picky", DE_CUSTOM);
    // A map with one undecodable result fails as a whole; an imap fails that chunk.
    let r = pool.map(Picky, 0..20u32);
    assert_codec(
        &r,
        Decode,
        CodecRole::Result,
        "pool_bad_input::Picky",
        DE_CUSTOM,
    );
    let items: Vec<_> = pool.imap(Picky, 5..15u32).unwrap().collect();
    assert!(items[..6].iter().all(Result::is_ok));
    for r in &items[6..] {
        assert_codec(
            r,
            Decode,
            CodecRole::Result,
            "pool_bad_input::Picky",
            DE_CUSTOM,
        );
    }
    // Nothing broke.
    assert_eq!(pool.apply(|x: u32| Picky(x), (3,)).unwrap().0, 3);
}

/// Deserializes fine, but cannot be serialized: Python's unpicklable value.
#[derive(Debug, Deserialize)]
struct Unsendable;

impl Serialize for Unsendable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("boom"))
    }
}

/// Serializes a map of unknown length, which postcard cannot write.
#[derive(Debug, Serialize, Deserialize)]
struct Flattened {
    #[serde(flatten)]
    inner: Point,
}

#[derive(Debug, Serialize, Deserialize)]
struct Point {
    x: u32,
}

#[test]
fn values_that_fail_to_serialize_name_their_type_role_and_reason() {
    use CodecDirection::Encode;
    use CodecRole::Argument;
    let pool = pool();
    // Encoded in the parent: arguments and map items. Nothing is submitted.
    let r = pool.apply(|_: Unsendable| 1u8, (Unsendable,));
    assert_codec(
        &r,
        Encode,
        Argument,
        "(pool_bad_input::Unsendable,)",
        SER_CUSTOM,
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        format!(
            "could not encode a task argument of type `(pool_bad_input::Unsendable,)`: {SER_CUSTOM}"
        )
    );
    let r = pool.map(|_: Unsendable| 1u8, vec![Unsendable, Unsendable]);
    assert_codec(
        &r,
        Encode,
        Argument,
        "pool_bad_input::Unsendable",
        SER_CUSTOM,
    );
    let r = pool
        .imap(|_: Unsendable| 1u8, vec![Unsendable])
        .unwrap()
        .next();
    assert_codec(
        &r.expect("one item"),
        Encode,
        Argument,
        "pool_bad_input::Unsendable",
        SER_CUSTOM,
    );
    // Encoded in the worker: results, reported back by the worker.
    let r = pool.apply(|| Unsendable, ());
    assert_codec(
        &r,
        Encode,
        CodecRole::Result,
        "pool_bad_input::Unsendable",
        SER_CUSTOM,
    );
    let r = pool.map(|_: u8| Unsendable, 0..5u8);
    assert_codec(
        &r,
        Encode,
        CodecRole::Result,
        "pool_bad_input::Unsendable",
        SER_CUSTOM,
    );
    // Postcard's reason, whatever it is, is carried with a hint at its cause.
    let r = pool.apply(|x: u32| Flattened { inner: Point { x } }, (1,));
    assert_codec(
        &r,
        Encode,
        CodecRole::Result,
        "pool_bad_input::Flattened",
        "postcard: The length of a sequence must be known (postcard writes the length of each \
         sequence and map first, so it cannot encode one of unknown length, such as a \
         `#[serde(flatten)]` struct or a `collect_seq` over an iterator of inexact size)",
    );
    // Nothing broke.
    assert_eq!(pool.apply(|x: u32| x + 1, (1,)).unwrap(), 2);
}

/// A task context that cannot be encoded fails every form of the call in the
/// parent with a codec error naming it, and submits nothing; one that cannot be
/// decoded in the worker fails the call with a codec error naming it too.
#[test]
fn task_contexts_that_fail_to_encode_or_decode_are_named() {
    use CodecDirection::Encode;
    use CodecRole::Argument;
    let pool = pool();
    let ty = "pool_bad_input::Unsendable";
    let first = |c: &Unsendable, x: u8| {
        let _ = c;
        x
    };
    assert_codec(
        &pool.tasks().with(&Unsendable).apply(first, (1,)),
        Encode,
        Argument,
        ty,
        SER_CUSTOM,
    );
    assert_codec(
        &pool.tasks().with(&Unsendable).map(first, [1, 2]),
        Encode,
        Argument,
        ty,
        SER_CUSTOM,
    );
    assert_codec(
        &pool.tasks().with(&Unsendable).map_async(first, [1, 2]),
        Encode,
        Argument,
        ty,
        SER_CUSTOM,
    );
    assert_codec(
        &pool.tasks().with(&Unsendable).apply_async(first, (1,)),
        Encode,
        Argument,
        ty,
        SER_CUSTOM,
    );
    assert_codec(
        &pool.tasks().with(&Unsendable).imap(first, [1]),
        Encode,
        Argument,
        ty,
        SER_CUSTOM,
    );
    // Encodes, but the worker cannot decode it: a codec error naming the context's
    // type, as for an argument the worker cannot decode.
    let picky = |p: &Picky, x: u32| p.0 + x;
    let ty = "pool_bad_input::Picky";
    use CodecDirection::Decode;
    assert_codec(
        &pool.tasks().with(&Picky(20)).map(picky, [1, 2, 3]),
        Decode,
        Argument,
        ty,
        DE_CUSTOM,
    );
    assert_codec(
        &pool.tasks().with(&Picky(20)).apply(picky, (1,)),
        Decode,
        Argument,
        ty,
        DE_CUSTOM,
    );
    let r = pool
        .tasks()
        .with(&Picky(20))
        .map_async(picky, [1, 2])
        .unwrap()
        .get();
    assert_codec(&r, Decode, Argument, ty, DE_CUSTOM);
    let items: Vec<_> = pool
        .tasks()
        .chunksize(2)
        .with(&Picky(20))
        .imap(picky, [1, 2, 3])
        .unwrap()
        .collect();
    assert_eq!(items.len(), 3);
    for r in &items {
        assert_codec(r, Decode, Argument, ty, DE_CUSTOM);
    }
    // Nothing broke, and a good context works.
    assert_eq!(
        pool.tasks()
            .with(&Picky(2))
            .map(|p: &Picky, x: u32| p.0 + x, [1, 2])
            .unwrap(),
        [3, 4]
    );
}

#[test]
fn join_before_close_and_work_after_close_or_terminate() {
    let pool = pool();
    assert!(matches!(pool.join(), Err(Error::JoinBeforeClose)));
    let xs = SharedArray::filled(100, 1u32).unwrap();
    let mut ys = SharedArray::zeroed(100).unwrap();
    pool.close();
    pool.close(); // idempotent
    assert!(matches!(pool.apply(|| 1, ()), Err(Error::PoolClosed)));
    assert!(matches!(pool.apply_async(|| 1, ()), Err(Error::PoolClosed)));
    assert!(matches!(
        pool.imap(|x: u8| x, vec![1u8]),
        Err(Error::PoolClosed)
    ));
    assert!(matches!(
        pool.map_into(&xs, &mut ys, |v: u32| v),
        Err(Error::PoolClosed)
    ));
    pool.join().unwrap();
    pool.join().unwrap(); // idempotent

    let pool = Pool::new(1).unwrap();
    pool.terminate();
    pool.terminate(); // idempotent
    assert!(matches!(pool.apply(|| 1, ()), Err(Error::PoolTerminated)));
    assert!(matches!(
        pool.map_into(&xs, &mut ys, |v: u32| v),
        Err(Error::PoolTerminated)
    ));
    pool.join().unwrap();
}

#[test]
fn a_map_into_in_flight_when_the_pool_is_terminated_fails_cleanly() {
    let pool = Pool::new(2).unwrap();
    let xs = SharedArray::filled(64, 1u64).unwrap();
    let mut ys = SharedArray::zeroed(64).unwrap();
    std::thread::scope(|s| {
        let job = s.spawn(|| {
            pool.bulk().chunk_len(1).map_into(&xs, &mut ys, |v: u64| {
                std::thread::sleep(Duration::from_millis(200));
                v
            })
        });
        std::thread::sleep(Duration::from_millis(100));
        pool.terminate();
        assert!(matches!(job.join().unwrap(), Err(Error::PoolTerminated)));
    });
}

#[test]
fn getting_a_result_twice_or_too_early() {
    let pool = pool();
    let r = pool
        .apply_async(
            || {
                std::thread::sleep(Duration::from_millis(100));
                9
            },
            (),
        )
        .unwrap();
    assert!(matches!(r.successful(), Err(Error::NotReady)));
    assert_eq!(r.get_timeout(Duration::from_secs(10)).unwrap(), 9);
    assert!(matches!(
        r.get_timeout(Duration::from_secs(1)),
        Err(Error::AlreadyTaken)
    ));
}

/// Submissions racing `terminate()` from other threads, with and without
/// callbacks: every one ends (Ok, or PoolTerminated/PoolClosed at submit or at
/// get), none is left waiting forever, and each callback runs at most once.
#[test]
fn work_submitted_while_the_pool_terminates_always_ends() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    for round in 0..20 {
        let pool = Arc::new(pool());
        let calls = Arc::new(AtomicUsize::new(0));
        let submitters: Vec<_> = (0..3)
            .map(|t| {
                let (pool, calls) = (Arc::clone(&pool), Arc::clone(&calls));
                std::thread::spawn(move || {
                    let mut handles = Vec::new();
                    for i in 0..200u64 {
                        let counted = Arc::clone(&calls);
                        let counted2 = Arc::clone(&calls);
                        let callbacks = shmpool::Callbacks::new()
                            .on_success(move |_: &u64| {
                                counted.fetch_add(1, Ordering::Relaxed);
                            })
                            .on_error(move |_: &Error| {
                                counted2.fetch_add(1, Ordering::Relaxed);
                            });
                        match pool
                            .tasks()
                            .apply_async_with(|x: u64| x * 2, (i + t,), callbacks)
                        {
                            Ok(h) => handles.push((i + t, h)),
                            Err(Error::PoolTerminated | Error::PoolClosed) => break,
                            Err(e) => panic!("submit: {e}"),
                        }
                    }
                    for (x, h) in handles {
                        match h.get_timeout(Duration::from_secs(10)) {
                            Ok(v) => assert_eq!(v, x * 2),
                            Err(Error::PoolTerminated) => {}
                            Err(e) => panic!("round {round}: a task ended with {e}"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_micros(300 * (round % 5)));
        pool.terminate();
        for s in submitters {
            s.join().unwrap();
        }
        assert!(calls.load(Ordering::Relaxed) <= 600);
    }
}
