//! Bulk array maps: element types, lengths, chunking, concurrency, panics, and the
//! zero-copy guarantee.

use bytemuck::{Pod, Zeroable};
use shmpool::{Error, Pool, SharedArray};

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Particle {
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
}

fn step(p: Particle) -> Particle {
    Particle {
        x: p.x + p.vx,
        y: p.y + p.vy,
        ..p
    }
}

fn pool() -> Pool {
    Pool::new(2).expect("pool")
}

#[test]
fn elementwise_maps_over_f64_f32_u64_and_a_repr_c_struct() {
    let pool = pool();
    let n = 100_003;

    let x64 = SharedArray::try_from_iter((0..n).map(|i| i as f64)).unwrap();
    let mut y64 = SharedArray::zeroed(n).unwrap();
    pool.map_into(&x64, &mut y64, |v: f64| v.sqrt()).unwrap();
    assert!(
        y64.iter()
            .zip(x64.iter())
            .all(|(y, x)| y.to_bits() == x.sqrt().to_bits())
    );

    let x32 = SharedArray::try_from_iter((0..n).map(|i| i as f32 * 0.25)).unwrap();
    let mut y32 = SharedArray::zeroed(n).unwrap();
    pool.map_into(&x32, &mut y32, |v: f32| v.mul_add(2.0, 1.0))
        .unwrap();
    assert!(
        y32.iter()
            .zip(x32.iter())
            .all(|(y, x)| *y == x.mul_add(2.0, 1.0))
    );

    let xu = SharedArray::try_from_iter(0..n as u64).unwrap();
    let mut yu = SharedArray::zeroed(n).unwrap();
    pool.map_into(&xu, &mut yu, |v: u64| {
        v.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (v >> 3)
    })
    .unwrap();
    assert!(
        yu.iter()
            .zip(xu.iter())
            .all(|(y, x)| *y == x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 3))
    );

    let ps = SharedArray::try_from_iter((0..n).map(|i| Particle {
        x: i as f32,
        y: -(i as f32),
        vx: 1.0,
        vy: 0.5,
    }))
    .unwrap();
    let mut next = SharedArray::zeroed(n).unwrap();
    pool.map_into(&ps, &mut next, step).unwrap();
    assert!(next.iter().zip(ps.iter()).all(|(a, b)| *a == step(*b)));

    // Mixed input and output types.
    let mut as_f32 = SharedArray::zeroed(n).unwrap();
    pool.map_into(&xu, &mut as_f32, |v: u64| v as f32).unwrap();
    assert_eq!(as_f32[n - 1], (n - 1) as f32);
}

#[test]
fn chunk_maps_over_every_type() {
    let pool = pool();
    let n = 50_001;
    let x64 = SharedArray::try_from_iter((0..n).map(|i| i as f64)).unwrap();
    let mut y64 = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .chunk_len(777)
        .map_chunks_into(&x64, &mut y64, |xs: &[f64], ys: &mut [f64]| {
            for (y, x) in ys.iter_mut().zip(xs) {
                *y = x * 3.0;
            }
        })
        .unwrap();
    assert!(y64.iter().enumerate().all(|(i, y)| *y == i as f64 * 3.0));

    let x32 = SharedArray::filled(n, 2.0f32).unwrap();
    let mut y32 = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .map_chunks_into(&x32, &mut y32, |xs: &[f32], ys: &mut [f32]| {
            ys.copy_from_slice(xs);
            ys.iter_mut().for_each(|y| *y *= *y);
        })
        .unwrap();
    assert!(y32.iter().all(|y| *y == 4.0));

    let mut xu = SharedArray::try_from_iter(0..n as u64).unwrap();
    pool.bulk()
        .for_each_chunk_mut(&mut xu, |xs: &mut [u64]| {
            xs.iter_mut().for_each(|v| *v += 1)
        })
        .unwrap();
    assert!(xu.iter().enumerate().all(|(i, v)| *v == i as u64 + 1));

    let mut ps = SharedArray::filled(
        n,
        Particle {
            x: 0.0,
            y: 0.0,
            vx: 2.0,
            vy: 3.0,
        },
    )
    .unwrap();
    pool.bulk()
        .for_each_mut(&mut ps, |p: &mut Particle| *p = step(*p))
        .unwrap();
    assert!(ps.iter().all(|p| p.x == 2.0 && p.y == 3.0));
}

#[test]
fn lengths_around_the_chunk_length_including_zero_and_one() {
    let pool = pool();
    let chunk = 1000;
    for len in [
        0,
        1,
        2,
        chunk - 1,
        chunk,
        chunk + 1,
        2 * chunk,
        3 * chunk + 7,
    ] {
        let xs = SharedArray::try_from_iter((0..len).map(|i| i as u64)).unwrap();
        let mut ys = SharedArray::filled(len, u64::MAX).unwrap();
        pool.bulk()
            .chunk_len(chunk)
            .map_into(&xs, &mut ys, |v: u64| v * 2)
            .unwrap();
        assert!(
            ys.iter().enumerate().all(|(i, y)| *y == 2 * i as u64),
            "length {len}"
        );
    }
}

#[test]
fn a_very_large_number_of_chunks() {
    let pool = pool();
    let n = 1 << 20; // one element per chunk: 1,048,576 chunks
    let xs = SharedArray::try_from_iter((0..n).map(|i| i as u32)).unwrap();
    let mut ys = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .chunk_len(1)
        .map_into(&xs, &mut ys, |v: u32| v ^ 0xffff_ffff)
        .unwrap();
    assert!(
        ys.iter()
            .enumerate()
            .all(|(i, y)| *y == (i as u32) ^ 0xffff_ffff)
    );
    let chunks: u64 = pool.stats().workers.iter().map(|w| w.chunks_done).sum();
    assert_eq!(chunks, n as u64);
}

#[test]
fn map_array_allocates_the_output() {
    let pool = pool();
    let xs = SharedArray::try_from_iter((0..1000).map(|i| i as f64)).unwrap();
    let ys: SharedArray<f32> = pool
        .bulk()
        .map_array(&xs, |v: f64| (v * 0.5) as f32)
        .unwrap();
    assert_eq!(ys.len(), 1000);
    assert_eq!(ys[999], 499.5);
}

#[test]
fn arrays_created_before_and_after_the_pool() {
    let before = SharedArray::try_from_iter((0..10_000).map(|i| i as f64)).unwrap();
    let pool = pool();
    let mut out = SharedArray::zeroed(10_000).unwrap();
    pool.map_into(&before, &mut out, |v: f64| v + 1.0).unwrap();
    assert_eq!(out[9_999], 10_000.0);
    for round in 0..20 {
        let after = SharedArray::filled(5_000 + round, round as f64).unwrap();
        let mut out = SharedArray::zeroed(after.len()).unwrap();
        pool.map_into(&after, &mut out, |v: f64| v * 2.0).unwrap();
        assert!(
            out.iter().all(|v| *v == 2.0 * round as f64),
            "round {round}"
        );
    }
}

#[test]
fn two_pools_at_once_over_the_same_input() {
    let a = pool();
    let b = pool();
    let xs = SharedArray::try_from_iter((0..200_000).map(|i| i as f64)).unwrap();
    let (mut ya, mut yb) = (
        SharedArray::zeroed(xs.len()).unwrap(),
        SharedArray::zeroed(xs.len()).unwrap(),
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..10 {
                a.map_into(&xs, &mut ya, |v: f64| v * 2.0).unwrap();
            }
        });
        s.spawn(|| {
            for _ in 0..10 {
                b.map_into(&xs, &mut yb, |v: f64| v * 3.0).unwrap();
            }
        });
    });
    assert!(ya.iter().enumerate().all(|(i, v)| *v == 2.0 * i as f64));
    assert!(yb.iter().enumerate().all(|(i, v)| *v == 3.0 * i as f64));
}

#[test]
fn one_pool_used_from_several_threads_at_once() {
    let pool = pool();
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let pool = &pool;
            s.spawn(move || {
                for round in 0..15u64 {
                    let n = 10_000 + (t * 1000 + round) as usize;
                    let xs = SharedArray::try_from_iter(0..n as u64).unwrap();
                    let mut ys = SharedArray::zeroed(n).unwrap();
                    pool.bulk()
                        .chunk_len(512)
                        .map_into(&xs, &mut ys, |v: u64| v + 7)
                        .unwrap();
                    assert!(ys.iter().enumerate().all(|(i, y)| *y == i as u64 + 7));
                }
            });
        }
    });
}

#[test]
fn a_panicking_kernel_names_its_chunk_and_the_pool_stays_usable() {
    let pool = pool();
    let xs = SharedArray::try_from_iter((0..10_000).map(|i| i as f64)).unwrap();
    let mut ys = SharedArray::zeroed(10_000).unwrap();
    let err = pool
        .bulk()
        .chunk_len(1000)
        .map_into(&xs, &mut ys, |v: f64| {
            if v == 4321.0 {
                panic!("bad value {v}");
            }
            v
        })
        .unwrap_err();
    let (chunk, message) = kernel_panic_of(&err);
    assert_eq!(chunk, 4000..5000);
    assert!(message.contains("bad value 4321"), "{message}");
    assert!(
        message.contains("bulk_map.rs"),
        "location missing: {message}"
    );
    assert!(err.to_string().contains("chunk 4000..5000"), "{err}");
    // Every element the error does not name was computed.
    let failed = err.failed_ranges();
    for i in (0..10_000).filter(|i| !failed.iter().any(|r| r.contains(i))) {
        assert_eq!(ys[i], i as f64, "element {i} is outside {failed:?}");
    }
    // The pool carries on, with the same workers.
    let pids: Vec<_> = pool.stats().workers.iter().map(|w| w.pid).collect();
    pool.map_into(&xs, &mut ys, |v: f64| v * 2.0).unwrap();
    assert_eq!(ys[4321], 8642.0);
    let after: Vec<_> = pool.stats().workers.iter().map(|w| w.pid).collect();
    assert_eq!(pids, after);
}

#[test]
fn zero_copy_results_land_in_the_callers_memory_and_ring_traffic_does_not_grow() {
    let pool = pool();
    let mut traffic = Vec::new();
    for n in [1 << 16, 1 << 22] {
        let xs = SharedArray::filled(n, 4.0f64).unwrap();
        let mut ys = SharedArray::<f64>::zeroed(n).unwrap();
        let where_before = ys.as_ptr();
        let before = pool.stats();
        pool.map_into(&xs, &mut ys, |v: f64| v.sqrt()).unwrap();
        let after = pool.stats();
        // The results are in the caller's memory: the same addresses, no copy-back.
        assert_eq!(ys.as_ptr(), where_before);
        // SAFETY: reading n initialised f64 from the array's own buffer.
        let raw = unsafe { std::slice::from_raw_parts(where_before, n) };
        assert!(raw.iter().all(|v| *v == 2.0));
        let submitted = after.bytes_submitted - before.bytes_submitted;
        let completed = after.bytes_completed - before.bytes_completed;
        traffic.push(submitted + completed);
        // Shipping gives workers the arrays by descriptor: counted as mapped bytes.
        assert!(after.bytes_mapped - before.bytes_mapped >= (2 * n * 8) as u64);
    }
    // 64x more data, the same few records through the rings.
    assert_eq!(traffic[0], traffic[1]);
    assert!(traffic[1] < 4096, "{} bytes through the rings", traffic[1]);
}

#[test]
fn workers_unmap_an_array_soon_after_it_is_dropped() {
    let pool = pool();
    let count_mappings = |pid: i32| -> usize {
        std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map(|m| m.lines().filter(|l| l.contains("shmpool-array")).count())
            .unwrap_or(0)
    };
    let pids: Vec<i32> = pool.stats().workers.iter().filter_map(|w| w.pid).collect();
    let baseline: usize = pids.iter().map(|&p| count_mappings(p)).sum();
    {
        // A length no other test here uses, so no other test takes its memory
        // over from the array cache.
        let n = (1 << 20) + 3;
        let xs = SharedArray::filled(n, 1.0f64).unwrap();
        let mut ys = SharedArray::<f64>::zeroed(n).unwrap();
        pool.map_into(&xs, &mut ys, |v: f64| v).unwrap();
        let mapped: usize = pids.iter().map(|&p| count_mappings(p)).sum();
        assert!(mapped > baseline, "workers should have mapped the arrays");
    }
    // The array cache keeps dropped arrays' memory (still mapped) until it lets
    // it go; then it is released like any dropped array's.
    shmpool::array_cache::trim();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mapped: usize = pids.iter().map(|&p| count_mappings(p)).sum();
        if mapped == baseline {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "workers still map {mapped} arrays"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_range_maps_only_its_elements_and_errors_name_chunks_by_array_index() {
    let pool = pool();
    let n = 50_000;
    let xs = SharedArray::try_from_iter((0..n).map(|i| i as f64)).unwrap();
    let mut ys = SharedArray::filled(n, -1.0).unwrap();
    pool.bulk()
        .chunk_len(1000)
        .range(12_345..40_001)
        .map_into(&xs, &mut ys, |v: f64| v * 2.0)
        .unwrap();
    for (i, y) in ys.iter().enumerate() {
        let expected = if (12_345..40_001).contains(&i) {
            i as f64 * 2.0
        } else {
            -1.0
        };
        assert_eq!(*y, expected, "element {i}");
    }

    // The chunk kernel sees slices of the range; the in-place kernel too.
    pool.bulk()
        .range(0..7)
        .map_chunks_into(&xs, &mut ys, |xs: &[f64], ys: &mut [f64]| {
            for (y, x) in ys.iter_mut().zip(xs) {
                *y = x + 0.5;
            }
        })
        .unwrap();
    assert_eq!(&ys[..8], &[0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, -1.0]);
    let mut counts = SharedArray::<u32>::zeroed(10).unwrap();
    pool.bulk()
        .range(9..10)
        .for_each_mut(&mut counts, |c: &mut u32| *c += 1)
        .unwrap();
    assert_eq!(&counts[..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    // An empty range is a no-op, even at the very end.
    pool.bulk()
        .range(10..10)
        .for_each_mut(&mut counts, |c: &mut u32| *c += 1)
        .unwrap();
    assert_eq!(counts.iter().sum::<u32>(), 1);

    // Chunks start at the range's start, and a panic names its chunk by its place
    // in the whole array.
    let err = pool
        .bulk()
        .chunk_len(100)
        .range(1050..2000)
        .map_into(&xs, &mut ys, |v: f64| {
            if v == 1234.0 {
                panic!("bad value");
            }
            v
        })
        .unwrap_err();
    let (chunk, message) = kernel_panic_of(&err);
    assert_eq!(chunk, 1150..1250);
    assert!(message.starts_with("bad value"), "{message}");
    // Nothing outside the range is named; what is named past the panic is skipped.
    for r in err.failed_ranges() {
        assert!(r.start >= 1050 && r.end <= 2000, "{r:?} outside the range");
    }
}

/// Issue 22, defect 6: a kernel's panic message longer than a bulk job keeps
/// arrives as a complete text: the start of the message, a note of how many bytes
/// are left out, and the location whole (it used to be cut at 480 bytes, location
/// and all, wherever that fell).
#[test]
fn a_long_kernel_panic_message_arrives_complete() {
    let pool = pool();
    let xs = SharedArray::try_from_iter((0..4000).map(|i| i as u64)).unwrap();
    let mut ys = SharedArray::<u64>::zeroed(4000).unwrap();
    let err = pool
        .bulk()
        .chunk_len(1000)
        .map_into(&xs, &mut ys, |v: u64| {
            if v == 2500 {
                let words: Vec<String> = (0..300).map(|i| format!("value{i:04}")).collect();
                panic!("{}", words.join(" "));
            }
            v
        })
        .unwrap_err();
    let (chunk, message) = kernel_panic_of(&err);
    assert_eq!(chunk, 2000..3000);
    let words: Vec<String> = (0..300).map(|i| format!("value{i:04}")).collect();
    let full = words.join(" ");
    let (head, rest) = message
        .split_once(" [... ")
        .expect("a note of what is left out");
    assert!(
        full.starts_with(head) && full[head.len()..].starts_with(' '),
        "{message}"
    );
    let left: usize = rest.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(head.len() + left, full.len(), "{message}");
    assert!(
        rest.contains("more bytes of the panic message not shown")
            && rest.contains(&format!("(at {}:", file!())),
        "{message}"
    );
    assert!(rest.ends_with(')'), "{message}");
}

/// The panic a failed bulk map reports: the error itself, or the one among the
/// errors of `ChunksLost`; every other range there must be a chunk skipped after it
/// (no worker died in these tests).
fn kernel_panic_of(err: &Error) -> (std::ops::Range<usize>, String) {
    let errors = match err {
        Error::ChunksLost { errors } => errors.as_slice(),
        one => std::slice::from_ref(one),
    };
    let mut panics = errors.iter().filter_map(|e| match e {
        Error::KernelPanicked { chunk, message } => Some((chunk.clone(), message.clone())),
        _ => None,
    });
    let panic = panics
        .next()
        .unwrap_or_else(|| panic!("no KernelPanicked in {err}"));
    assert!(panics.next().is_none(), "two panics in {err}");
    for e in errors {
        match e {
            Error::KernelPanicked { .. } => {}
            Error::ChunkSkipped { after, .. } => assert_eq!(*after, panic.0, "{err}"),
            other => panic!("unexpected {other} in {err}"),
        }
    }
    panic
}

#[test]
fn a_range_outside_the_arrays_is_refused_and_nothing_is_written() {
    let pool = pool();
    let xs = SharedArray::<u64>::filled(100, 7).unwrap();
    let mut ys = SharedArray::<u64>::zeroed(100).unwrap();
    #[allow(clippy::reversed_empty_ranges)]
    for range in [0..101, 100..101, 50..40] {
        let err = pool
            .bulk()
            .range(range.clone())
            .map_into(&xs, &mut ys, |v: u64| v + 1)
            .unwrap_err();
        match err {
            Error::RangeOutOfBounds { range: r, len } => {
                assert_eq!((r, len), (range.clone(), 100));
            }
            other => panic!("{range:?}: expected RangeOutOfBounds, got {other}"),
        }
    }
    assert!(ys.iter().all(|&y| y == 0));
}
