//! Distributed reductions and halo exchange (`--features mpi`), on real MPI jobs:
//! each test runs its body as an `mpirun -n 2` and an `-n 3` job (`mpi_jobs`).

use std::ops::Range;

use shmpool::mpi::collective::SystemOperation;
use shmpool::mpi::traits::CommunicatorCollectives;
use shmpool::{
    Bins, Blocks, Cluster, DistArray, DistGrid, Error, Grid, GridMut, Pool, RowFrame, SharedArray,
};

#[path = "common/examples.rs"]
mod examples;
#[path = "common/mpi_jobs.rs"]
mod mpi_jobs;

use mpi_jobs::{CASE_VAR, mpirun, mpirun_program, on_every_rank, on_rank};

/// Values spread over a few orders of magnitude, with both signs: a sum whose
/// rounding depends on its order.
fn value(i: usize) -> f64 {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let unit = h as f64 / (1u64 << 53) as f64; // 0..1
    (unit - 0.5) * 10f64.powi((i % 7) as i32 - 3)
}

/// Whether every rank holds the same `bits`.
fn same_on_every_rank(cluster: &Cluster, bits: u64) -> bool {
    let (mut low, mut high) = (0u64, 0u64);
    let world = cluster.world();
    world.all_reduce_into(&bits, &mut low, SystemOperation::min());
    world.all_reduce_into(&bits, &mut high, SystemOperation::max());
    low == high
}

#[test]
fn distributed_reductions_match_a_sequential_pass_over_the_gathered_array() {
    on_every_rank(
        "distributed_reductions_match_a_sequential_pass_over_the_gathered_array",
        |cluster| {
            let bulk = || cluster.bulk();
            // Empty, fewer elements than ranks, and an uneven large array.
            for n in [0usize, 1, 2, 100_003] {
                let x = DistArray::from_fn(cluster, n, value).unwrap();
                let w = DistArray::from_fn(cluster, n, |i| value(i + 17)).unwrap();
                let sum = bulk().sum(&x).unwrap();
                let dot = bulk().dot(&x, &w).unwrap();
                let (min, max) = (bulk().min(&x).unwrap(), bulk().max(&x).unwrap());
                let (argmin, argmax) = (bulk().argmin(&x).unwrap(), bulk().argmax(&x).unwrap());
                let hist = bulk()
                    .histogram(
                        &x,
                        Bins::Uniform {
                            count: 16,
                            range: (-0.5, 0.5),
                        },
                    )
                    .unwrap()
                    .counts;
                let sum_sq = bulk()
                    .map_reduce(&x, 0.0, |v: f64| v * v, |a: f64, b: f64| a + b)
                    .unwrap();
                let positives = bulk()
                    .fold_reduce(
                        &x,
                        0u64,
                        |acc: &mut u64, xs: &[f64]| {
                            *acc += xs.iter().filter(|&&v| v > 0.0).count() as u64
                        },
                        |a, b| a + b,
                    )
                    .unwrap();
                let above = bulk()
                    .with(0.25f64)
                    .map_reduce(
                        (&x, &w),
                        0u64,
                        |t: &f64, (a, b): (f64, f64)| u64::from(a + b > *t),
                        |a: u64, b: u64| a + b,
                    )
                    .unwrap();
                // The same answer on every rank, to the bit.
                for bits in [
                    sum.to_bits(),
                    dot.to_bits(),
                    sum_sq.to_bits(),
                    positives,
                    above,
                ] {
                    assert!(same_on_every_rank(cluster, bits), "n = {n}");
                }
                assert!(same_on_every_rank(
                    cluster,
                    argmin.map_or(u64::MAX, |i| i as u64)
                ));
                // Twice in a row: the same bits.
                assert_eq!(bulk().sum(&x).unwrap().to_bits(), sum.to_bits());
                assert_eq!(bulk().dot(&x, &w).unwrap().to_bits(), dot.to_bits());

                let all = x.gather_to_root(cluster).unwrap();
                let Some(all) = all else { continue };
                let xs: Vec<f64> = all.to_vec();
                let ws: Vec<f64> = (0..n).map(|i| value(i + 17)).collect();
                let seq_sum: f64 = xs.iter().sum();
                let scale: f64 = xs.iter().map(|v| v.abs()).sum::<f64>().max(1e-300);
                assert!(
                    (sum - seq_sum).abs() <= 1e-12 * scale,
                    "n = {n}: {sum} vs {seq_sum}"
                );
                let seq_dot: f64 = xs.iter().zip(&ws).map(|(a, b)| a * b).sum();
                assert!(
                    (dot - seq_dot).abs() <= 1e-12 * scale.max(1.0),
                    "{dot} vs {seq_dot}"
                );
                let seq_sq: f64 = xs.iter().map(|v| v * v).sum();
                assert!((sum_sq - seq_sq).abs() <= 1e-12 * seq_sq.max(1e-300));
                let first_min = (0..n).reduce(|a, b| if xs[b] < xs[a] { b } else { a });
                let first_max = (0..n).reduce(|a, b| if xs[b] > xs[a] { b } else { a });
                assert_eq!(argmin, first_min, "n = {n}");
                assert_eq!(argmax, first_max, "n = {n}");
                assert_eq!(min, first_min.map(|i| xs[i]));
                assert_eq!(max, first_max.map(|i| xs[i]));
                let mut seq_hist = vec![0u64; 16];
                for &v in &xs {
                    if (-0.5..=0.5).contains(&v) {
                        seq_hist[(((v + 0.5) * 16.0) as usize).min(15)] += 1;
                    }
                }
                assert_eq!(hist, seq_hist, "n = {n}");
                assert_eq!(positives, xs.iter().filter(|&&v| v > 0.0).count() as u64);
                let seq_above = xs.iter().zip(&ws).filter(|(a, b)| *a + *b > 0.25).count();
                assert_eq!(above, seq_above as u64);
            }
        },
    );
}

#[test]
fn arg_extremes_give_the_first_global_index_across_ranks() {
    on_every_rank(
        "arg_extremes_give_the_first_global_index_across_ranks",
        |cluster| {
            let n = 1000;
            let last = Blocks::even(n, cluster.size()).range(cluster.size() - 1);
            // The minimum -5 twice: on the last rank and on rank 0; the first wins.
            let low = |i: usize| match i {
                7 => -5,
                _ if i == last.start + 3 => -5,
                _ => (i % 50) as i64,
            };
            let x = DistArray::from_fn(cluster, n, low).unwrap();
            assert_eq!(cluster.bulk().argmin(&x).unwrap(), Some(7));
            assert_eq!(cluster.bulk().min(&x).unwrap(), Some(-5));
            // The maximum only on the last rank, at a global index.
            let high = DistArray::from_fn(cluster, n, |i| if i == n - 2 { 9e9 } else { i as f64 })
                .unwrap();
            assert_eq!(cluster.bulk().argmax(&high).unwrap(), Some(n - 2));
            // A NaN on the last rank beats every number, as in numpy.
            let nan =
                DistArray::from_fn(cluster, n, |i| if i == last.start { f64::NAN } else { 1.0 })
                    .unwrap();
            assert_eq!(cluster.bulk().argmin(&nan).unwrap(), Some(last.start));
            assert!(cluster.bulk().max(&nan).unwrap().unwrap().is_nan());
        },
    );
}

/// The sums a test prints, for the driver to compare across runs.
const BITS_LINE: &str = "DIST_SUM_BITS";

#[test]
fn sums_are_bit_identical_across_runs_and_folded_in_rank_order() {
    let case = "sums_are_bit_identical_across_runs_and_folded_in_rank_order";
    if on_rank(case, |cluster| {
        let n = (1 << 20) + 3;
        let x = DistArray::from_fn(cluster, n, value).unwrap();
        let w = DistArray::from_fn(cluster, n, |i| value(3 * i)).unwrap();
        let sum = cluster.bulk().sum(&x).unwrap();
        let dot = cluster.bulk().dot(&x, &w).unwrap();
        let chunked = cluster.bulk().chunk_len(1000).sum(&x).unwrap();
        assert!(same_on_every_rank(cluster, sum.to_bits()));
        assert!(same_on_every_rank(cluster, chunked.to_bits()));
        // The promise itself: rank r's block reduced alone by a pool, the partials
        // added in rank order, gives these bits.
        if let Some(all) = x.gather_to_root(cluster).unwrap() {
            let pool = Pool::new(1).unwrap();
            let mut folded = None::<f64>;
            let mut folded_chunked = None::<f64>;
            for range in x.blocks().ranges().filter(|r| !r.is_empty()) {
                let block = SharedArray::from_slice(&all[range]).unwrap();
                let part = pool.bulk().sum(&block).unwrap();
                let part_chunked = pool.bulk().chunk_len(1000).sum(&block).unwrap();
                folded = Some(folded.map_or(part, |acc| acc + part));
                folded_chunked =
                    Some(folded_chunked.map_or(part_chunked, |acc| acc + part_chunked));
            }
            assert_eq!(folded.unwrap().to_bits(), sum.to_bits());
            assert_eq!(folded_chunked.unwrap().to_bits(), chunked.to_bits());
            println!(
                "{BITS_LINE} {:016x} {:016x} {:016x}",
                sum.to_bits(),
                dot.to_bits(),
                chunked.to_bits()
            );
        }
    }) {
        return;
    }
    for n in [2, 3] {
        let runs: Vec<String> = (0..2)
            .map(|_| {
                let job = mpirun(case, n);
                assert!(
                    job.success,
                    "{n} ranks (exit {:?}):\n{}",
                    job.code, job.output
                );
                // The line may follow the test harness's "test ... " on one line.
                let line = job
                    .output
                    .lines()
                    .find_map(|l| l.find(BITS_LINE).map(|at| &l[at..]));
                line.unwrap_or_else(|| panic!("no {BITS_LINE} line:\n{}", job.output))
                    .to_owned()
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{n} ranks: two runs gave different sums");
    }
}

/// Global row `r`, column `c` of the test grids, never zero.
fn cell(r: usize, c: usize) -> f64 {
    (r * 1000 + c) as f64 + 1.0
}

#[test]
fn halo_rows_hold_the_rows_the_other_ranks_hold() {
    on_every_rank("halo_rows_hold_the_rows_the_other_ranks_hold", |cluster| {
        // Plain neighbours; a halo of 2; fewer rows than 3 ranks (an empty rank);
        // a halo wider than the neighbours' blocks.
        for (rows, cols, halo) in [(10, 4, 1), (11, 3, 2), (2, 5, 1), (5, 2, 3), (6, 3, 0)] {
            let mut g = DistGrid::from_fn(cluster, rows, cols, halo, cell).unwrap();
            let mine = g.local_rows();
            assert_eq!(g.padded().shape(), &[mine.len() + 2 * halo, cols]);
            for _ in 0..2 {
                g.exchange_halos(cluster).unwrap();
                for k in 0..mine.len() + 2 * halo {
                    let global = (mine.start + k).checked_sub(halo).filter(|&g| g < rows);
                    let row = &g.padded()[k * cols..(k + 1) * cols];
                    for (c, &v) in row.iter().enumerate() {
                        let expected = match global {
                            // An empty rank receives nothing.
                            Some(g) if !mine.is_empty() => cell(g, c),
                            _ => 0.0, // outside the grid: never written
                        };
                        assert_eq!(
                            v,
                            expected,
                            "rank {}: {rows}x{cols}, halo {halo}, padded row {k}",
                            cluster.rank()
                        );
                    }
                }
            }
        }
    });
}

/// One Jacobi step of the 5-point Laplacian for row `out`; the grid's first and
/// last rows and columns stay as they are.
fn jacobi_row(edge: bool, up: &[f64], mid: &[f64], down: &[f64], out: &mut [f64]) {
    out.copy_from_slice(mid);
    if edge {
        return;
    }
    for c in 1..mid.len().saturating_sub(1) {
        out[c] = 0.25 * (up[c] + down[c] + mid[c - 1] + mid[c + 1]);
    }
}

#[test]
fn a_distributed_jacobi_step_equals_the_single_node_stencil_bit_for_bit() {
    on_every_rank(
        "a_distributed_jacobi_step_equals_the_single_node_stencil_bit_for_bit",
        |cluster| {
            let (rows, cols, steps) = (37, 29, 4);
            let start = |r: usize, c: usize| value(r * cols + c);
            let mut x = DistGrid::from_fn(cluster, rows, cols, 1, start).unwrap();
            let mut y = DistGrid::zeroed(cluster, rows, cols, 1).unwrap();
            for _ in 0..steps {
                x.exchange_halos(cluster).unwrap();
                cluster
                    .bulk()
                    .chunk_len(3)
                    .stencil_rows_into(
                        &x,
                        &mut y,
                        |f: &RowFrame, rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
                            for r in rows {
                                let g = f.global_row(r).unwrap();
                                let edge = g == 0 || g + 1 == f.global_rows();
                                let (up, down) = if edge {
                                    (x.row(r), x.row(r))
                                } else {
                                    (x.row(r - 1), x.row(r + 1))
                                };
                                jacobi_row(edge, up, x.row(r), down, y.row_mut(r));
                            }
                        },
                    )
                    .unwrap();
                std::mem::swap(&mut x, &mut y);
            }
            let Some(distributed) = x.gather_to_root(cluster).unwrap() else {
                return;
            };
            // The same steps on one node, over the whole grid.
            let whole: Vec<f64> = (0..rows * cols)
                .map(|i| start(i / cols, i % cols))
                .collect();
            let mut a = SharedArray::from_slice(&whole)
                .unwrap()
                .reshape(&[rows, cols])
                .unwrap();
            let mut b = SharedArray::zeroed(rows * cols)
                .unwrap()
                .reshape(&[rows, cols])
                .unwrap();
            for _ in 0..steps {
                cluster
                    .pool()
                    .bulk()
                    .stencil_rows_into(
                        &a,
                        &mut b,
                        |rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
                            for r in rows {
                                let edge = r == 0 || r + 1 == x.rows();
                                let (up, down) = if edge {
                                    (x.row(r), x.row(r))
                                } else {
                                    (x.row(r - 1), x.row(r + 1))
                                };
                                jacobi_row(edge, up, x.row(r), down, y.row_mut(r));
                            }
                        },
                    )
                    .unwrap();
                std::mem::swap(&mut a, &mut b);
            }
            assert_eq!(distributed.shape(), &[rows, cols]);
            for (i, (d, s)) in distributed.iter().zip(a.iter()).enumerate() {
                assert_eq!(
                    d.to_bits(),
                    s.to_bits(),
                    "row {}, column {}",
                    i / cols,
                    i % cols
                );
            }
        },
    );
}

/// Whether `result` is what every rank returns when rank `failing` alone failed
/// with an error matching `own`: that error there, `RankFailed` naming it elsewhere.
fn failed_together<R: std::fmt::Debug>(
    cluster: &Cluster,
    result: &shmpool::Result<R>,
    failing: usize,
    own: impl Fn(&Error) -> bool,
) -> bool {
    match result {
        Err(Error::RankFailed { rank, .. }) => cluster.rank() != failing && *rank == failing,
        Err(e) => cluster.rank() == failing && own(e),
        Ok(_) => false,
    }
}

#[test]
fn an_error_on_one_rank_fails_every_rank_and_the_next_call_works() {
    on_every_rank(
        "an_error_on_one_rank_fails_every_rank_and_the_next_call_works",
        |cluster| {
            let n = 3000;
            let last = cluster.size() - 1;
            let x = DistArray::from_fn(cluster, n, |i| i as u64).unwrap();
            // The failing rank's error names global indices (elements, rows, items),
            // as the user's distributed arrays and inputs do.
            let names = |e: &Error, at: usize| e.failed_ranges().iter().any(|r| r.contains(&at));
            let panicked = |e: &Error| matches!(e, Error::KernelPanicked { message, .. } if message.contains("poison"));
            let panicked_at = |at: usize| move |e: &Error| panicked(e) && names(e, at);
            // A kernel panic in a reduction, on the last rank only.
            let result = cluster.bulk().map_reduce(
                &x,
                0u64,
                |v: u64| {
                    if v == 2999 {
                        panic!("element 2999 is poison");
                    }
                    v
                },
                |a: u64, b: u64| a + b,
            );
            assert!(
                failed_together(cluster, &result, last, panicked_at(2999)),
                "{result:?}"
            );
            // A worker that dies in a reduction, on the last rank only: `WorkerDied`
            // naming its chunk there, `RankFailed` elsewhere; the pools replace it.
            let died = |e: &Error| matches!(e, Error::WorkerDied { .. }) && names(e, 2999);
            let result = cluster.bulk().map_reduce(
                &x,
                0u64,
                |v: u64| {
                    if v == 2999 {
                        std::process::abort();
                    }
                    v
                },
                |a: u64, b: u64| a + b,
            );
            assert!(failed_together(cluster, &result, last, died), "{result:?}");
            // ... in a map over distributed arrays ...
            let mut y = DistArray::zeroed(cluster, n).unwrap();
            let result = cluster.map_dist_into(&x, &mut y, |v: u64| {
                if v == 2999 {
                    panic!("element 2999 is poison");
                }
                v
            });
            assert!(
                failed_together(cluster, &result, last, panicked_at(2999)),
                "{result:?}"
            );
            // ... in a map of rank 0's items (item 2999 lands on the last rank) ...
            let items: Vec<u64> = if cluster.is_root() {
                (0..3000).collect()
            } else {
                Vec::new()
            };
            let result = cluster.map(
                |v: u64| {
                    if v == 2999 {
                        std::process::abort();
                    }
                    v
                },
                items,
            );
            let died_on_item = |e: &Error| matches!(e, Error::WorkerDied { work: shmpool::Work::Items(r), .. } if r.contains(&2999));
            assert!(
                failed_together(cluster, &result, last, died_on_item),
                "{result:?}"
            );
            // ... and in a stencil.
            let g = DistGrid::from_fn(cluster, 30, 4, 1, |r, _| r as f64).unwrap();
            let mut h = DistGrid::zeroed(cluster, 30, 4, 1).unwrap();
            let result = cluster.bulk().stencil_rows_into(
                &g,
                &mut h,
                |f: &RowFrame, rows: Range<usize>, _: Grid<f64>, _: GridMut<f64>| {
                    if rows.clone().any(|r| f.global_row(r) == Some(29)) {
                        panic!("row 29 is poison");
                    }
                },
            );
            assert!(
                failed_together(cluster, &result, last, panicked_at(29)),
                "{result:?}"
            );
            // This rank's arrays split differently: its own error, RankFailed elsewhere.
            let y = DistArray::from_local(
                cluster,
                SharedArray::zeroed(if cluster.rank() == last { 1 } else { 0 }).unwrap(),
            )
            .unwrap();
            let result = cluster.bulk().dot(&x, &x);
            assert_eq!(result.unwrap(), (0..3000u64).map(|v| v * v).sum::<u64>());
            let z = DistArray::from_fn(cluster, 1, |_| 0u64).unwrap();
            let mismatched = if cluster.rank() == last { &y } else { &z };
            let result = cluster.bulk().map_reduce(
                (&z, mismatched),
                0u64,
                |(a, b): (u64, u64)| a + b,
                |a: u64, b: u64| a + b,
            );
            let split = |e: &Error| matches!(e, Error::Mpi(m) if m.contains("split"));
            assert!(failed_together(cluster, &result, last, split), "{result:?}");
            // Bad arguments: the same typed error everywhere.
            match cluster.bulk().histogram(
                &x,
                Bins::Uniform {
                    count: 0,
                    range: (0.0, 1.0),
                },
            ) {
                Err(Error::InvalidArgument { name: "bins", .. }) => {}
                other => panic!("{other:?}"),
            }
            // Ranks that pass different bins disagree, before anything moves.
            match cluster.bulk().histogram(
                &x,
                Bins::Uniform {
                    count: 4 + cluster.rank(),
                    range: (0.0, 1.0),
                },
            ) {
                Err(Error::RanksDisagree {
                    what: "arguments", ..
                }) => {}
                other => panic!("{other:?}"),
            }
            // The pools and the cluster still work.
            assert_eq!(cluster.bulk().sum(&x).unwrap(), 2999 * 3000 / 2);
            assert_eq!(
                cluster
                    .bulk()
                    .histogram(
                        &x,
                        Bins::Uniform {
                            count: 3,
                            range: (0.0, 3000.0)
                        }
                    )
                    .unwrap()
                    .counts,
                vec![1000; 3]
            );
        },
    );
}

#[test]
fn the_mpi_sum_example_checks_its_sums_on_two_and_three_ranks() {
    if std::env::var_os(CASE_VAR).is_some() {
        return; // a rank of another test's job
    }
    let exe = examples::build_examples(&["mpi"]).join("mpi_sum");
    for n in [2, 3] {
        let job = mpirun_program(n, &exe, &["100003", "3"], None);
        assert!(
            job.success,
            "mpi_sum on {n} ranks failed (exit {:?}):\n{}",
            job.code, job.output
        );
        for line in [
            &*format!("mpi_sum over 100003 f64 (1 MiB) on {n} ranks"),
            "distributed: cluster.bulk().sum",
            "the sums are exact and bit-identical on every rank",
        ] {
            assert!(job.output.contains(line), "no {line:?} in\n{}", job.output);
        }
    }
}
