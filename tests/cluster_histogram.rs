//! `DistBulk::histogram` (`--features mpi`) on real MPI jobs of 2 and 3 ranks
//! (`mpi_jobs`): uniform bins and explicit edges, counts and weights, against the
//! rank's own pool over the whole array (whose histogram `tests/bulk_histogram.rs`
//! checks against numpy).

use shmpool::mpi::collective::SystemOperation;
use shmpool::mpi::traits::CommunicatorCollectives;
use shmpool::{Bins, Cluster, DistArray, Error, SharedArray};

#[path = "common/mpi_jobs.rs"]
mod mpi_jobs;

use mpi_jobs::on_every_rank;

/// Values over a few orders of magnitude, both signs, some on the edges below.
fn value(i: usize) -> f64 {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let unit = h as f64 / (1u64 << 53) as f64;
    match i % 11 {
        0 => 0.05,
        1 => -0.5,
        2 => f64::NAN,
        _ => (unit - 0.5) * 10f64.powi((i % 5) as i32 - 2),
    }
}

fn weight(i: usize) -> f64 {
    value(i * 7 + 3) * 100.0
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
fn distributed_histograms_match_the_pools_over_the_whole_array() {
    on_every_rank(
        "distributed_histograms_match_the_pools_over_the_whole_array",
        |cluster| {
            let mut many: Vec<f64> = (0..600).map(|i| value(i * 13 + 5)).collect();
            many.retain(|v| !v.is_nan());
            many.sort_by(f64::total_cmp);
            let edges = [-0.5, -0.1, 0.0, 0.05, 0.05, 0.5];
            let bin_sets = [
                Bins::Uniform {
                    count: 16,
                    range: (-0.5, 0.5),
                },
                Bins::Uniform {
                    count: 1000,
                    range: (-5.0, 5.0),
                },
                Bins::Edges(&edges),
                Bins::Edges(&many),
                Bins::Edges(&[1.0]),
            ];
            for n in [0usize, 1, 2, 100_003] {
                let x = DistArray::from_fn(cluster, n, value).unwrap();
                let w = DistArray::from_fn(cluster, n, weight).unwrap();
                let whole = SharedArray::try_from_iter((0..n).map(value)).unwrap();
                let whole_w = SharedArray::try_from_iter((0..n).map(weight)).unwrap();
                let pool = cluster.pool();
                for bins in bin_sets {
                    let what = format!("{bins:?} over {n} values on {} ranks", cluster.size());
                    // Counts: exactly the whole array's, and the same edges.
                    let h = cluster.bulk().histogram(&x, bins).unwrap();
                    let want = pool.bulk().histogram(&whole, bins).unwrap();
                    assert_eq!(h, want, "{what}");
                    // Weights: each rank's block summed by its pool, the blocks
                    // added in rank order; the same bits on every rank.
                    let hw = cluster.bulk().histogram(&x, bins.weights(&w)).unwrap();
                    let mut by_rank = vec![0.0f64; h.counts.len()];
                    for range in x.blocks().ranges().filter(|r| !r.is_empty()) {
                        let part = pool
                            .bulk()
                            .range(range)
                            .histogram(&whole, bins.weights(&whole_w))
                            .unwrap();
                        for (a, b) in by_rank.iter_mut().zip(&part.counts) {
                            *a += b;
                        }
                    }
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&hw.counts), bits(&by_rank), "{what}");
                    assert_eq!(hw.edges, want.edges, "{what}");
                    for s in &hw.counts {
                        assert!(same_on_every_rank(cluster, s.to_bits()), "{what}");
                    }
                    let d = hw.density();
                    for v in &d {
                        assert!(same_on_every_rank(cluster, v.to_bits()), "{what}");
                    }
                }
            }
        },
    );
}

#[test]
fn bad_distributed_histograms_fail_on_every_rank() {
    on_every_rank("bad_distributed_histograms_fail_on_every_rank", |cluster| {
        let n = 3000;
        let x = DistArray::from_fn(cluster, n, |i| i as f64).unwrap();
        let w = DistArray::from_fn(cluster, n, |_| 1.0f64).unwrap();
        // Edges numpy refuses, and a NaN edge: the same typed error everywhere.
        for edges in [&[0.0, 2.0, 1.0][..], &[0.0, f64::NAN]] {
            match cluster.bulk().histogram(&x, Bins::Edges(edges)) {
                Err(Error::InvalidArgument { name: "bins", .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        // Ranks that pass different edges, or weights on some ranks only, disagree
        // before anything moves.
        let mine = [0.0, 1.0 + cluster.rank() as f64, 5000.0];
        match cluster.bulk().histogram(&x, Bins::Edges(&mine)) {
            Err(Error::RanksDisagree {
                what: "arguments", ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let bins = Bins::Edges(&[0.0, 1000.0, 3000.0]);
        let result = if cluster.rank() == 0 {
            cluster
                .bulk()
                .histogram(&x, bins.weights(&w))
                .map(|h| h.counts.len())
        } else {
            cluster.bulk().histogram(&x, bins).map(|h| h.counts.len())
        };
        match result {
            Err(Error::RanksDisagree {
                what: "arguments", ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // The cluster still works.
        let h = cluster.bulk().histogram(&x, bins.weights(&w)).unwrap();
        assert_eq!(h.counts, [1000.0, 2000.0]);
        assert_eq!(
            cluster.bulk().histogram(&x, bins).unwrap().counts,
            [1000, 2000]
        );
    });
}
