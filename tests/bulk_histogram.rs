//! `Bulk::histogram` against `np.histogram` itself (through `tests/common/numpy.rs`):
//! explicit edges, the edges returned, weights and density, on adversarial data,
//! and the determinism of weighted sums.
//!
//! - **Counts** (uniform bins and explicit edges, f64, f32, integers) must equal
//!   numpy's, the **edges** must be numpy's to the bit (`float32` values for `f32`
//!   data over uniform bins), and the **density** of counts must be numpy's bits.
//!   Where numpy raises, shmpool must return `InvalidArgument`.
//! - **Weighted sums** agree within rounding: each bin within `2·n·ε·Σ|w|` of
//!   numpy's sum of the same bin's `n` weights (`assert_sum_close`), taken from
//!   `np.bincount` over numpy's own bins (`np.digitize` with numpy's edges), which
//!   is how `np.histogram` sums uniform bins. A NaN or infinite weight must give
//!   the same NaN or infinity in its bin. With explicit edges `np.histogram` finds
//!   the sums as differences of a running total, so there it is compared within
//!   the running total's bound, and only where every weight is finite (a NaN
//!   weight makes numpy's every later bin NaN: documented, not copied).
//! - **Weighted density** within the bound those two errors give.
//! - **Determinism**: weighted sums have the same bits for 1 to 4 workers, every
//!   start method and every SIMD level, given the chunk length.
//!
//! The data: values on every edge and one unit in the last place either side,
//! ±0, ±inf, NaN, values outside; weights negative, zero, -0, NaN and infinite;
//! empty and one-element arrays; lengths that are not a multiple of the chunk
//! (every case runs with the default chunks, `chunk_len(7)` and `chunk_len(333)`).
//! `HIST_SEED=<n>` runs on other data; the seed is in every failure message.

#[macro_use]
mod common;

use shmpool::npy::NpyElement;
use shmpool::{Bins, Error, Number, Pod, Pool, SharedArray, Simd, StartMethod};

use common::numpy::{Numpy, assert_sum_close, same_value};
use common::{Rng, pool_of};

fn seed() -> u64 {
    std::env::var("HIST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0025)
}

/// Uniform in [-1, 1).
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        x
    } else if x == 0.0 {
        f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() + 1)
    } else {
        f64::from_bits(x.to_bits() - 1)
    }
}

fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

/// The bins of a case, owned.
#[derive(Clone, Debug)]
enum OwnedBins {
    Uniform(usize, (f64, f64)),
    Edges(Vec<f64>),
}

impl OwnedBins {
    fn bins(&self) -> Bins<'_> {
        match self {
            OwnedBins::Uniform(count, range) => Bins::Uniform {
                count: *count,
                range: *range,
            },
            OwnedBins::Edges(e) => Bins::Edges(e),
        }
    }
}

/// One histogram to compute: data, bins, and maybe weights.
struct Case<T> {
    x: Vec<T>,
    bins: OwnedBins,
    weights: Option<Vec<f64>>,
}

/// What numpy computed for a case, or the error it raised.
#[derive(Debug)]
struct Answer {
    /// `np.histogram`'s values: counts, or sums of weights (as f64).
    hist: Vec<f64>,
    counts: Vec<u64>,
    edges: Vec<f64>,
    density: Vec<f64>,
    /// With weights: per bin, numpy's sum of the bin's weights in element order
    /// (`np.bincount`), the sum of their magnitudes, and how many.
    sums: Vec<f64>,
    magnitudes: Vec<f64>,
    members: Vec<u64>,
}

/// numpy's answers for `cases`, or `None` without numpy (not under CI).
fn numpy_answers<T: NpyElement + Pod>(
    test: &str,
    cases: &[Case<T>],
) -> Option<Vec<Result<Answer, String>>> {
    let np = Numpy::get(test)?;
    let mut meta = Vec::new();
    for (k, c) in cases.iter().enumerate() {
        np.save(&format!("x{k}"), &c.x);
        let (kind, n, lo, hi) = match &c.bins {
            OwnedBins::Uniform(n, (lo, hi)) => (0.0, *n as f64, *lo, *hi),
            OwnedBins::Edges(e) => {
                np.save(&format!("b{k}"), e);
                (1.0, 0.0, 0.0, 0.0)
            }
        };
        if let Some(w) = &c.weights {
            np.save(&format!("w{k}"), w);
        }
        meta.extend([kind, f64::from(u8::from(c.weights.is_some())), n, lo, hi]);
    }
    np.save("meta", &meta);
    let errors = np.run(
        r#"
import warnings
warnings.simplefilter('ignore')
for k, (kind, weighted, n, lo, hi) in enumerate(load('meta').reshape(-1, 5)):
    x = load(f'x{k}')
    bins = load(f'b{k}') if kind == 1 else int(n)
    rng = None if kind == 1 else (float(lo), float(hi))
    w = load(f'w{k}') if weighted else None
    try:
        h, e = np.histogram(x, bins, range=rng, weights=w)
        d, _ = np.histogram(x, bins, range=rng, weights=w, density=True)
    except Exception as ex:
        print(k, type(ex).__name__, str(ex).replace('\n', ' '))
        continue
    save(f'h{k}', h.astype(np.float64))
    save(f'e{k}', e.astype(np.float64))
    save(f'd{k}', d.astype(np.float64))
    nb = len(e) - 1
    if nb < 1:
        idx = np.zeros(len(x), np.int64)
        keep = np.zeros(len(x), bool)
    else:
        # numpy's own bin rule over its own edges: edges[i] <= v < edges[i + 1],
        # the last bin closed; NaN and values outside in no bin.
        idx = np.digitize(x, e) - 1
        idx[x == e[-1]] = nb - 1
        keep = (idx >= 0) & (idx < nb)
    ww = w if weighted else np.ones(len(x))
    save(f's{k}', np.bincount(idx[keep], weights=ww[keep], minlength=max(nb, 0)).astype(np.float64))
    save(f'm{k}', np.bincount(idx[keep], weights=np.abs(ww[keep]), minlength=max(nb, 0)).astype(np.float64))
    save(f'c{k}', np.bincount(idx[keep], minlength=max(nb, 0)).astype(np.uint64))
"#,
    );
    let mut raised: Vec<Option<String>> = (0..cases.len()).map(|_| None).collect();
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
                None => {
                    let hist: Vec<f64> = np.load(&format!("h{k}"));
                    Ok(Answer {
                        counts: hist.iter().map(|&v| v as u64).collect(),
                        hist,
                        edges: np.load(&format!("e{k}")),
                        density: np.load(&format!("d{k}")),
                        sums: np.load(&format!("s{k}")),
                        magnitudes: np.load(&format!("m{k}")),
                        members: np.load(&format!("c{k}")),
                    })
                }
            })
            .collect(),
    )
}

const EPS: f64 = f64::EPSILON / 2.0;

/// Asserts our histogram of case `c` against numpy's answer.
fn check_case<T: Number + std::fmt::Debug>(
    pool: &Pool,
    c: &Case<T>,
    want: &Result<Answer, String>,
    what: &str,
) {
    let x = SharedArray::from_slice(&c.x).unwrap();
    let weights = c
        .weights
        .as_ref()
        .map(|w| SharedArray::from_slice(w).unwrap());
    for (chunks, bulk) in [
        ("default chunks", pool.bulk()),
        ("chunk_len(7)", pool.bulk().chunk_len(7)),
        ("chunk_len(333)", pool.bulk().chunk_len(333)),
    ] {
        let case = format!(
            "{what}: {:?}, {} values, weighted {}, {chunks} (seed {})",
            c.bins,
            c.x.len(),
            weights.is_some(),
            seed()
        );
        let want = match (want, &weights) {
            (Err(message), None) => {
                match bulk.histogram(&x, c.bins.bins()) {
                    Err(Error::InvalidArgument { .. }) => {}
                    other => panic!("{case}: numpy raised {message}, shmpool gave {other:?}"),
                }
                continue;
            }
            (Err(message), Some(w)) => {
                match bulk.histogram(&x, c.bins.bins().weights(w)) {
                    Err(Error::InvalidArgument { .. }) => {}
                    other => panic!("{case}: numpy raised {message}, shmpool gave {other:?}"),
                }
                continue;
            }
            (Ok(want), _) => want,
        };
        // The reference itself: numpy's bins by `np.digitize` count what
        // `np.histogram` counts.
        if weights.is_none() {
            assert_eq!(want.members, want.counts, "{case}: numpy's two bin rules");
        }
        match &weights {
            None => {
                let h = bulk
                    .histogram(&x, c.bins.bins())
                    .unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_bits(&h.edges, &want.edges, &format!("{case}: edges"));
                if let Some(b) =
                    (0..want.counts.len()).find(|&b| h.counts.get(b) != Some(&want.counts[b]))
                {
                    panic!(
                        "{case}: bin {b} counts {:?}, numpy's {}",
                        h.counts.get(b),
                        want.counts[b]
                    );
                }
                assert_eq!(h.counts.len(), want.counts.len(), "{case}");
                assert_bits(&h.density(), &want.density, &format!("{case}: density"));
            }
            Some(w) => {
                let h = bulk
                    .histogram(&x, c.bins.bins().weights(w))
                    .unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_bits(&h.edges, &want.edges, &format!("{case}: edges"));
                check_weighted(&h.counts, &h.density(), c, want, &case);
            }
        }
    }
}

/// Weighted sums and density against numpy's (see the module docs).
fn check_weighted<T>(got: &[f64], density: &[f64], c: &Case<T>, want: &Answer, case: &str) {
    assert_eq!(got.len(), want.sums.len(), "{case}: bins");
    for (b, &g) in got.iter().enumerate() {
        let n = want.members[b] as usize;
        let what = format!("{case}: bin {b}");
        assert_sum_close(g, want.sums[b], n, want.magnitudes[b], EPS, &what);
    }
    let w = c.weights.as_ref().unwrap();
    if !w.iter().all(|v| v.is_finite()) {
        return;
    }
    // Every weight in a bin (the others are not summed at all).
    let n: usize = want.members.iter().map(|&m| m as usize).sum();
    let total_magnitude: f64 = want.magnitudes.iter().sum();
    let explicit = matches!(c.bins, OwnedBins::Edges(_));
    for (b, &g) in got.iter().enumerate() {
        let what = format!("{case}: bin {b} against np.histogram");
        if explicit {
            // Differences of a running total over the sorted data (below the first
            // edge too): each end within that total's bound.
            let bound = 2.0 * w.len() as f64 * EPS * w.iter().map(|v| v.abs()).sum::<f64>();
            let slack = 2.0 * want.members[b] as f64 * EPS * want.magnitudes[b];
            assert!(
                (g - want.hist[b]).abs() <= 2.0 * bound + slack,
                "{what}: {g}, numpy's {}",
                want.hist[b]
            );
        } else {
            assert_sum_close(
                g,
                want.hist[b],
                want.members[b] as usize,
                want.magnitudes[b],
                EPS,
                &what,
            );
        }
    }
    // density = n / width / total: the error of n, and of the total, carried.
    let total: f64 = want.sums.iter().sum();
    if total == 0.0 || !total.is_finite() {
        return;
    }
    let total_bound = 2.0 * n as f64 * EPS * total_magnitude;
    for (b, (&d, &wd)) in density.iter().zip(&want.density).enumerate() {
        let width = want.edges[b + 1] - want.edges[b];
        let bin_bound = if explicit {
            4.0 * w.len() as f64 * EPS * w.iter().map(|v| v.abs()).sum::<f64>()
        } else {
            2.0 * want.members[b] as f64 * EPS * want.magnitudes[b]
        };
        let bound = bin_bound / width.abs() / total.abs()
            + wd.abs() * 2.0 * total_bound / total.abs()
            + 8.0 * EPS * wd.abs()
            // Where `n / width` or the density is subnormal, its rounding is absolute.
            + f64::from_bits(1) * (1.0 + 1.0 / total.abs());
        assert!(
            same_value(d, wd) || (d - wd).abs() <= bound,
            "{case}: density of bin {b} {d}, numpy's {wd}, bound {bound:e}"
        );
    }
}

/// `got` and `want` the same floats, bit for bit (NaN for NaN).
fn assert_bits(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{what}: element {i} is {g:e}, numpy's {w:e}"
        );
    }
}

/// Explicit edges: uneven, with equal neighbours, infinite, tiny, many (past the
/// 256-bin path), one or none.
fn edge_sets(rng: &mut Rng) -> Vec<Vec<f64>> {
    let mut sorted = |n: usize, scale: f64| {
        let mut e: Vec<f64> = (0..n).map(|_| unit(rng) * scale).collect();
        e.sort_by(f64::total_cmp);
        e
    };
    vec![
        vec![0.0, 0.1, 0.3, 0.7, 1.0],
        vec![-1.0, 0.0, 0.1 + 0.2, 1.0],
        vec![0.0, 1.0, 1.0, 2.0, 2.0],
        vec![0.0, 1.0, 1.0],
        vec![3.0, 3.0],
        vec![f64::NEG_INFINITY, -1.0, 0.0, 1.0, f64::INFINITY],
        vec![-0.0, 0.0, 1e-300, 2e-300],
        vec![-f64::MAX, 0.0, f64::MAX],
        sorted(300, 1.0),
        sorted(1000, 1e6),
        sorted(3, 10.0),
        vec![0.5],
        vec![],
    ]
}

/// Values on, and one unit in the last place either side of, every edge; the
/// specials; random values over and around the edges.
fn values_around(rng: &mut Rng, edges: &[f64]) -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MAX,
        f64::MIN,
        1e-17,
        -1e-17,
    ];
    for &e in edges.iter().step_by(1 + edges.len() / 200) {
        v.extend([e, next_up(e), next_down(e)]);
    }
    let (lo, hi) = match (edges.first(), edges.last()) {
        (Some(&lo), Some(&hi)) if lo.is_finite() && hi.is_finite() => (lo, hi),
        _ => (-2.0, 2.0),
    };
    let spread = (hi - lo).max(1.0);
    v.extend((0..257).map(|_| lo + (unit(rng) * 0.6 + 0.5) * spread));
    v
}

/// Weights: random of both signs and magnitudes, with zeros and -0; in some cases
/// NaN and infinite ones too.
fn weights_for(rng: &mut Rng, n: usize, specials: bool) -> Vec<f64> {
    (0..n)
        .map(|i| match (specials, rng.below(16)) {
            (_, 0) => 0.0,
            (_, 1) => -0.0,
            (true, 2) if i % 3 == 0 => f64::NAN,
            (true, 3) if i % 5 == 0 => f64::INFINITY,
            _ => unit(rng) * 10f64.powi(rng.below(7) as i32 - 3),
        })
        .collect()
}

/// The f64 cases: explicit edges, uniform bins (to check the edges returned and
/// the weights there), each unweighted, weighted, and weighted with specials;
/// empty and one-element arrays.
fn f64_cases(rng: &mut Rng) -> Vec<Case<f64>> {
    let mut cases = Vec::new();
    let mut add = |rng: &mut Rng, x: Vec<f64>, bins: OwnedBins| {
        let n = x.len();
        cases.push(Case {
            x: x.clone(),
            bins: bins.clone(),
            weights: None,
        });
        cases.push(Case {
            x: x.clone(),
            bins: bins.clone(),
            weights: Some(weights_for(rng, n, false)),
        });
        cases.push(Case {
            x,
            bins,
            weights: Some(weights_for(rng, n, true)),
        });
    };
    for e in edge_sets(rng) {
        let x = values_around(rng, &e);
        add(rng, x, OwnedBins::Edges(e));
    }
    for (count, range) in [
        (10, (0.0, 1.0)),
        (7, (-10.0, 35.5)),
        (256, (-1.0, 1.0)),
        (300, (0.1, 0.7)),
        (64, (1e15, 1e15 + 12.8)),
    ] {
        let edges: Vec<f64> = (0..=count)
            .map(|i| range.0 + (range.1 - range.0) * i as f64 / count as f64)
            .collect();
        let x = values_around(rng, &edges);
        add(rng, x, OwnedBins::Uniform(count, range));
    }
    for x in [vec![], vec![0.3], vec![f64::NAN], vec![1.0]] {
        add(rng, x.clone(), OwnedBins::Edges(vec![0.0, 0.3, 1.0]));
        add(rng, x, OwnedBins::Uniform(10, (0.0, 1.0)));
    }
    // Refused by numpy: decreasing edges, a range whose width overflows.
    add(rng, vec![0.5, 1.5], OwnedBins::Edges(vec![0.0, 2.0, 1.0]));
    add(rng, vec![0.5, 1.5], OwnedBins::Uniform(4, (-1e308, 1e308)));
    cases
}

/// The pools every case runs on: 2 workers at the best level, and each level
/// the CPU supports.
fn pools(m: StartMethod) -> Vec<(String, Pool)> {
    let mut pools = vec![("2 workers".to_string(), pool_of(2, m))];
    for level in [Simd::Baseline, Simd::Avx2, Simd::Avx512] {
        if level.is_supported() {
            let pool = Pool::builder()
                .processes(2)
                .start_method(m)
                .simd(level)
                .build()
                .unwrap();
            pools.push((format!("2 workers at {level}"), pool));
        }
    }
    pools
}

fn run_cases<T: Number + NpyElement + Pod + std::fmt::Debug>(
    m: StartMethod,
    what: &str,
    cases: &[Case<T>],
) {
    let Some(answers) = numpy_answers(&format!("bulk_histogram {what}"), cases) else {
        return;
    };
    for (name, pool) in pools(m) {
        for (c, want) in cases.iter().zip(&answers) {
            check_case(&pool, c, want, &format!("{what}, {name}"));
        }
    }
}

/// f64 data: explicit and uniform bins, counts, edges, weights and density.
fn f64_histograms_match_numpy(m: StartMethod) {
    let mut rng = Rng::new(seed());
    run_cases(m, "f64", &f64_cases(&mut rng));
}

/// f32 data: numpy's float32 edges for uniform bins (returned, and their widths
/// in float32 for the density); explicit float64 edges compared in float64.
fn f32_histograms_match_numpy(m: StartMethod) {
    let mut rng = Rng::new(seed() ^ 32);
    let cases: Vec<Case<f32>> = f64_cases(&mut rng)
        .into_iter()
        .map(|c| Case {
            x: c.x.iter().map(|&v| v as f32).collect(),
            bins: c.bins,
            weights: c.weights,
        })
        .collect();
    run_cases(m, "f32", &cases);
}

/// Integer data against float edges: between integers, on them, and past 2^53,
/// where numpy rounds to float64 to compare, as shmpool does.
fn integer_histograms_match_numpy(m: StartMethod) {
    let mut rng = Rng::new(seed() ^ 64);
    let big = 9_007_199_254_740_992.0f64; // 2^53
    let edge_sets = [
        vec![-3.5, -1.0, 0.0, 0.5, 2.0, 7.25, 100.0],
        vec![big, big + 2.0, big + 4.0, big + 64.0],
        vec![-9.3e18, -1.0, 0.0, 9.3e18],
        vec![0.0, 1.0, 1.0, 255.0],
    ];
    let mut i64s = Vec::new();
    let mut u8s = Vec::new();
    for e in edge_sets {
        let mut x: Vec<i64> = (-20..300).collect();
        x.extend([
            i64::MIN,
            i64::MAX,
            (1 << 53) + 1,
            (1 << 53) + 3,
            (1 << 53) + 63,
        ]);
        x.extend((0..200).map(|_| rng.next_u64() as i64 >> rng.below(60)));
        let n = x.len();
        let w = weights_for(&mut rng, n, false);
        i64s.push(Case {
            x: x.clone(),
            bins: OwnedBins::Edges(e.clone()),
            weights: None,
        });
        i64s.push(Case {
            x: x.clone(),
            bins: OwnedBins::Edges(e.clone()),
            weights: Some(w.clone()),
        });
        let small: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        u8s.push(Case {
            x: small.clone(),
            bins: OwnedBins::Edges(e.clone()),
            weights: None,
        });
        u8s.push(Case {
            x: small,
            bins: OwnedBins::Edges(e),
            weights: Some(w),
        });
    }
    let x: Vec<i64> = (-20..300).collect();
    i64s.push(Case {
        x,
        bins: OwnedBins::Uniform(9, (-3.5, 40.25)),
        weights: Some(vec![0.5; 320]),
    });
    run_cases(m, "i64", &i64s);
    run_cases(m, "u8", &u8s);
}

per_start_method!(
    f64_histograms_match_numpy,
    f32_histograms_match_numpy,
    integer_histograms_match_numpy,
);

/// The bits of every weighted histogram below (sums, then counts).
fn fingerprint(
    pool: &Pool,
    x: &SharedArray<f64>,
    x32: &SharedArray<f32>,
    w: &SharedArray<f64>,
    edges: &[f64],
) -> Vec<u64> {
    let mut out = Vec::new();
    let few = &edges[..40];
    for chunk in [None, Some(1000)] {
        let bulk = || match chunk {
            Some(n) => pool.bulk().chunk_len(n),
            None => pool.bulk(),
        };
        for bins in [
            Bins::Uniform {
                count: 100,
                range: (-0.9, 0.9),
            },
            Bins::Uniform {
                count: 5000,
                range: (-1.0, 1.0),
            },
            Bins::Edges(few),
            Bins::Edges(edges),
        ] {
            let h = bulk().histogram(x, bins.weights(w)).unwrap();
            out.extend(h.counts.iter().map(|v| v.to_bits()));
            let h = bulk().histogram(x32, bins.weights(w)).unwrap();
            out.extend(h.counts.iter().map(|v| v.to_bits()));
            out.extend(bulk().histogram(x, bins).unwrap().counts);
        }
    }
    out
}

/// Weighted sums have the same bits for 1 to 4 workers and at every SIMD level,
/// under each start method, given the chunk length.
fn weighted_histograms_are_deterministic(m: StartMethod) {
    let mut rng = Rng::new(seed() ^ 7);
    let n = 300_001;
    let x = SharedArray::try_from_iter((0..n).map(|_| unit(&mut rng))).unwrap();
    let x32 = SharedArray::try_from_iter(x.iter().map(|&v| v as f32)).unwrap();
    let w = SharedArray::try_from_iter((0..n).map(|_| unit(&mut rng) * 1e3)).unwrap();
    let mut edges: Vec<f64> = (0..700).map(|_| unit(&mut rng)).collect();
    edges.sort_by(f64::total_cmp);
    let reference = fingerprint(&pool_of(1, m), &x, &x32, &w, &edges);
    for workers in 2..=4 {
        let got = fingerprint(&pool_of(workers, m), &x, &x32, &w, &edges);
        assert!(got == reference, "{workers} workers (seed {})", seed());
    }
    for level in [Simd::Baseline, Simd::Avx2, Simd::Avx512] {
        if level.is_supported() {
            let pool = Pool::builder()
                .processes(3)
                .start_method(m)
                .simd(level)
                .build()
                .unwrap();
            let got = fingerprint(&pool, &x, &x32, &w, &edges);
            assert!(got == reference, "3 workers at {level} (seed {})", seed());
        }
    }
}

per_start_method!(weighted_histograms_are_deterministic);

/// What numpy takes but shmpool refuses, and the weights' own errors.
#[test]
fn bad_bins_and_weights_are_typed_errors() {
    let pool = pool_of(2, StartMethod::Fork);
    let x = SharedArray::from_slice(&[0.5f64, 1.5]).unwrap();
    // A NaN edge: numpy bins with it (wrongly); shmpool refuses it.
    match pool
        .bulk()
        .histogram(&x, Bins::Edges(&[0.0, f64::NAN, 2.0]))
    {
        Err(Error::InvalidArgument {
            name: "bins",
            reason,
        }) => {
            assert!(reason.contains("NaN"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match pool.bulk().histogram(&x, Bins::Edges(&[0.0, 2.0, 1.0])) {
        Err(Error::InvalidArgument {
            name: "bins",
            reason,
        }) => {
            assert!(reason.contains("increase monotonically"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let too_many = vec![0.0; (1 << 20) + 2];
    assert!(matches!(
        pool.bulk().histogram(&x, Bins::Edges(&too_many)),
        Err(Error::InvalidArgument { name: "bins", .. })
    ));
    let short = SharedArray::from_slice(&[1.0f64]).unwrap();
    let bins = Bins::Uniform {
        count: 2,
        range: (0.0, 2.0),
    };
    match pool.bulk().histogram(&x, bins.weights(&short)) {
        Err(Error::OperandLength {
            what,
            len: 1,
            expected: 2,
        }) => {
            assert!(what.contains("weights"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    // The pool still works, over a range of the data too.
    let h = pool.bulk().range(1..2).histogram(&x, bins).unwrap();
    assert_eq!(h.counts, [0, 1]);
    let w = SharedArray::from_slice(&[2.0f64, 3.0]).unwrap();
    let h = pool
        .bulk()
        .range(1..2)
        .histogram(&x, bins.weights(&w))
        .unwrap();
    assert_eq!(h.counts, [0.0, 3.0]);
    // Weights of other types are summed in f64.
    let wi = SharedArray::from_slice(&[-7i32, 9]).unwrap();
    assert_eq!(
        pool.bulk().histogram(&x, bins.weights(&wi)).unwrap().counts,
        [-7.0, 9.0]
    );
}
