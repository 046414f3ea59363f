//! The compute vocabulary of issue 13, by capability: kernel parameters
//! (`params`), context arrays (`context`), several inputs and outputs
//! (`operands`), index-aware, stencil and row kernels (`neighbourhood`), SIMD
//! levels (`simd`), the reductions (`reductions`, `reduction_edges`), their
//! determinism (`determinism`), and panics, deaths and retries in reductions
//! (`faults`); `numpy_reference` checks the reductions against numpy itself. This
//! file holds what they share: seeded data, sequential references, numpy's
//! histograms, and readers of errors.

use std::ops::Range;

use shmpool::npy::NpyElement;
use shmpool::{Bulk, DeathCause, Error, Grid, GridMut, Pod, Pool, SharedArray, Work};

use crate::common::Rng;
use crate::common::numpy::Numpy;

mod context;
mod determinism;
mod faults;
mod neighbourhood;
mod numpy_reference;
mod operands;
mod params;
mod reduction_edges;
mod reductions;
mod simd;

/// The seed of this run's data: `VOCAB_SEED`, or a fixed one.
pub(super) fn seed() -> u64 {
    std::env::var("VOCAB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0013)
}

pub(super) fn rng() -> Rng {
    Rng::new(seed())
}

/// Uniform in [-1, 1).
pub(super) fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

pub(super) fn randoms(rng: &mut Rng, n: usize) -> SharedArray<f64> {
    SharedArray::try_from_iter((0..n).map(|_| unit(rng))).expect("random array")
}

/// The first index where `got` and `want` differ (bit for bit, for floats through
/// `PartialEq` on their bits via the caller's choice of type).
pub(super) fn first_diff<T: PartialEq + Copy>(got: &[T], want: &[T]) -> Option<usize> {
    assert_eq!(got.len(), want.len(), "lengths (seed {})", seed());
    (0..got.len()).find(|&i| got[i] != want[i])
}

pub(super) fn assert_same<T: PartialEq + Copy + std::fmt::Debug>(
    got: &[T],
    want: &[T],
    what: &str,
) {
    if let Some(i) = first_diff(got, want) {
        panic!(
            "{what}: element {i} is {:?}, expected {:?} (seed {})",
            got[i],
            want[i],
            seed()
        );
    }
}

pub(super) fn bits(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|v| v.to_bits()).collect()
}

/// Values whose magnitudes span 10^-8 to 10^8, of either sign, with full
/// mantissas: a sum of them depends on the order of the additions, down to how
/// the partial sums of chunks are combined.
pub(super) fn wide(rng: &mut Rng) -> f64 {
    let e = rng.range(0..17) as i32 - 8;
    unit(rng) * 10f64.powi(e)
}

/// A compensated (Neumaier) sum: the reference floating-point sums are compared to.
pub(super) fn neumaier(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for x in xs {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

pub(super) fn close(got: f64, want: f64, scale: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * scale,
        "{what}: {got} vs sequential {want} (scale {scale}, seed {})",
        seed()
    );
}

/// The bulk options to try: the default chunk length and a few fixed ones.
pub(super) fn chunkings(pool: &Pool) -> Vec<(String, Bulk<'_>)> {
    vec![
        ("default chunks".into(), pool.bulk()),
        ("chunk_len(333)".into(), pool.bulk().chunk_len(333)),
        ("chunk_len(1)".into(), pool.bulk().chunk_len(1)),
    ]
}

/// A histogram to ask numpy for: the data, the bins and the range.
pub(super) type HistCase<'a, T> = (&'a [T], usize, (f64, f64));

/// numpy's `np.histogram(x, bins, range=(lo, hi))[0]` for each case (`lo` and `hi`
/// Python floats, as shmpool's `f64` arguments are), or the error numpy raised
/// (type and message). `None` when numpy is not installed and this is not CI.
pub(super) fn numpy_histograms<T: NpyElement + Pod>(
    test: &str,
    cases: &[HistCase<'_, T>],
) -> Option<Vec<Result<Vec<u64>, String>>> {
    let np = Numpy::get(test)?;
    let mut args = Vec::with_capacity(cases.len() * 3);
    for (k, &(x, bins, (lo, hi))) in cases.iter().enumerate() {
        np.save(&format!("x{k}"), x);
        args.extend([bins as f64, lo, hi]);
    }
    np.save("cases", &args);
    let errors = np.run(
        r#"
import warnings
warnings.simplefilter('ignore')
for k, (bins, lo, hi) in enumerate(load('cases').reshape(-1, 3)):
    try:
        h = np.histogram(load(f'x{k}'), int(bins), range=(float(lo), float(hi)))[0]
        save(f'h{k}', h.astype(np.uint64))
    except Exception as e:
        print(k, type(e).__name__, str(e).replace('\n', ' '))
"#,
    );
    let mut raised: Vec<Option<String>> = vec![None; cases.len()];
    for line in errors.lines() {
        let (k, message) = line.split_once(' ').expect("`k type message` lines");
        raised[k.parse::<usize>().expect("a case number")] = Some(message.to_string());
    }
    Some(
        raised
            .into_iter()
            .enumerate()
            .map(|(k, raised)| match raised {
                Some(message) => Err(message),
                None => Ok(np.load(&format!("h{k}"))),
            })
            .collect(),
    )
}

/// The first index of the smallest (or, `max`, largest) value.
pub(super) fn arg_seq<T: PartialOrd + Copy>(xs: &[T], max: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in xs.iter().enumerate() {
        let better = match best {
            None => true,
            Some(b) if max => v > xs[b],
            Some(b) => v < xs[b],
        };
        if better {
            best = Some(i);
        }
    }
    best
}

/// The single death of a failed reduction: the chunk and the cause.
pub(super) fn death_of(err: &Error) -> (Range<usize>, DeathCause) {
    let errors = match err {
        Error::ChunksLost { errors } => errors.as_slice(),
        one => std::slice::from_ref(one),
    };
    let mut found = None;
    for e in errors {
        match e {
            Error::WorkerDied {
                cause,
                work: Work::Chunk(r),
                ..
            } => {
                assert!(found.is_none(), "two deaths in {err}");
                found = Some((r.clone(), *cause));
            }
            Error::ChunkSkipped { .. } => {}
            other => panic!("unexpected {other} in {err}"),
        }
    }
    found.unwrap_or_else(|| panic!("no WorkerDied in {err} ({err:?})"))
}

/// The single kernel panic a failed operation reports (alone or among the errors
/// of `ChunksLost`, the rest being chunks skipped after it).
pub(super) fn kernel_panic_of(err: &Error) -> (Range<usize>, String) {
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
        .unwrap_or_else(|| panic!("no KernelPanicked in {err} ({err:?})"));
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

/// Which length error an operation gave, as `(variant, what, len, expected)`.
pub(super) fn length_error(r: shmpool::Result<impl Sized>) -> (String, String, usize, usize) {
    match r.err() {
        Some(Error::LengthMismatch { input, output }) => {
            ("LengthMismatch".into(), String::new(), output, input)
        }
        Some(Error::OperandLength {
            what,
            len,
            expected,
        }) => ("OperandLength".into(), what, len, expected),
        other => panic!("expected a length error, got {other:?}"),
    }
}

/// The sequential 5-point Laplacian of the interior, `h2inv · (…)`; the boundary
/// keeps `edge`.
pub(super) fn laplacian(x: &[f64], rows: usize, cols: usize, h2inv: f64, edge: f64) -> Vec<f64> {
    (0..rows * cols)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            if r == 0 || c == 0 || r + 1 == rows || c + 1 == cols {
                edge
            } else {
                h2inv * (x[i - cols] + x[i + cols] + x[i - 1] + x[i + 1] - 4.0 * x[i])
            }
        })
        .collect()
}

pub(super) fn laplacian_kernel(h2inv: &f64, rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>) {
    let cols = x.cols();
    for r in rows.filter(|&r| r > 0 && r + 1 < x.rows()) {
        let (up, mid, down) = (x.row(r - 1), x.row(r), x.row(r + 1));
        let out = y.row_mut(r);
        for c in 1..cols - 1 {
            out[c] = h2inv * (up[c] + down[c] + mid[c - 1] + mid[c + 1] - 4.0 * mid[c]);
        }
    }
}
