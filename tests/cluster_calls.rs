//! The MPI layer (`--features mpi`), on real MPI jobs: each test runs its body as
//! an `mpirun -n 2` and an `-n 3` job (`mpi_jobs`).

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use shmpool::mpi::collective::SystemOperation;
use shmpool::mpi::traits::CommunicatorCollectives;
use shmpool::{Blocks, Cluster, DistArray, Error, SharedArray};

#[path = "common/examples.rs"]
mod examples;
#[path = "common/mpi_jobs.rs"]
mod mpi_jobs;

use mpi_jobs::{CASE_VAR, mpirun, mpirun_program, on_every_rank, on_rank, processes_with_env};

/// The sum of `x` over every rank.
fn sum_over_ranks(cluster: &Cluster, x: u64) -> u64 {
    let mut total = 0u64;
    cluster
        .world()
        .all_reduce_into(&x, &mut total, SystemOperation::sum());
    total
}

#[test]
fn distributed_arrays_are_mapped_in_place_block_by_block() {
    on_every_rank(
        "distributed_arrays_are_mapped_in_place_block_by_block",
        |cluster| {
            let n = 1_000_003; // divides evenly by neither 2 nor 3
            let xs = DistArray::from_fn(cluster, n, |i| i as f64 * 0.5).unwrap();
            let mut ys = DistArray::zeroed(cluster, n).unwrap();
            assert_eq!(xs.blocks(), &Blocks::even(n, cluster.size()));
            let range = xs.local_range();
            assert_eq!(xs.local().len(), range.len());

            let before = cluster.pool().stats().bytes_submitted;
            cluster
                .map_dist_into(&xs, &mut ys, |v: f64| v.sqrt())
                .unwrap();
            for (k, y) in ys.local().iter().enumerate() {
                let i = range.start + k;
                assert_eq!(
                    y.to_bits(),
                    (i as f64 * 0.5).sqrt().to_bits(),
                    "element {i}"
                );
            }
            // Zero copy: a few fixed-size ring records moved, not the block's 4 MB.
            let moved = cluster.pool().stats().bytes_submitted - before;
            assert!(moved < 4096, "{moved} bytes went through the rings");
            // The blocks tile the whole array.
            assert_eq!(sum_over_ranks(cluster, range.len() as u64), n as u64);

            let mut copy = DistArray::<f64>::zeroed(cluster, n).unwrap();
            cluster
                .map_dist_chunks_into(&ys, &mut copy, |a: &[f64], b: &mut [f64]| {
                    b.copy_from_slice(a)
                })
                .unwrap();
            assert_eq!(&copy.local()[..], &ys.local()[..]);
            let mut counts = DistArray::<u32>::zeroed(cluster, 10).unwrap();
            cluster
                .for_each_dist_mut(&mut counts, |c: &mut u32| *c += 7)
                .unwrap();
            assert!(counts.local().iter().all(|&c| c == 7));
        },
    );
}

#[test]
fn rank_zero_arrays_are_scattered_mapped_and_gathered() {
    on_every_rank(
        "rank_zero_arrays_are_scattered_mapped_and_gathered",
        |cluster| {
            // 0 and 1 element, fewer elements than ranks, and an uneven large array.
            for n in [0usize, 1, 2, 1_000_003] {
                let len = if cluster.is_root() { n } else { 0 };
                let xs = SharedArray::try_from_iter((0..len).map(|i| i as f64 + 0.25)).unwrap();
                let mut ys = SharedArray::filled(len, f64::NAN).unwrap();
                cluster.map_into(&xs, &mut ys, |v: f64| v.sqrt()).unwrap();
                let mut zs = SharedArray::filled(len, -1i64).unwrap();
                cluster
                    .map_chunks_into(&xs, &mut zs, |a: &[f64], b: &mut [i64]| {
                        for (z, x) in b.iter_mut().zip(a) {
                            *z = (x * 4.0) as i64;
                        }
                    })
                    .unwrap();
                if cluster.is_root() {
                    for i in 0..n {
                        let x = i as f64 + 0.25;
                        assert_eq!(ys[i].to_bits(), x.sqrt().to_bits(), "n = {n}, element {i}");
                        assert_eq!(zs[i], (x * 4.0) as i64, "n = {n}, element {i}");
                    }
                }
            }
            // Arrays on the other ranks are not read and not written.
            let len = if cluster.is_root() { 10 } else { 3 };
            let xs = SharedArray::filled(len, 4.0f32).unwrap();
            let mut ys = SharedArray::filled(len, 9.0f32).unwrap();
            cluster.map_into(&xs, &mut ys, |v: f32| v * 2.0).unwrap();
            let expected = if cluster.is_root() { 8.0 } else { 9.0 };
            assert!(ys.iter().all(|&y| y == expected));
        },
    );
}

#[test]
fn misuse_gives_the_same_typed_error_on_every_rank() {
    on_every_rank(
        "misuse_gives_the_same_typed_error_on_every_rank",
        |cluster| {
            // Rank 0's arrays differ in length: every rank hears of it.
            let (a, b) = if cluster.is_root() { (5, 6) } else { (0, 0) };
            let xs = SharedArray::<f64>::zeroed(a).unwrap();
            let mut ys = SharedArray::<f64>::zeroed(b).unwrap();
            match cluster.map_into(&xs, &mut ys, |v: f64| v + 1.0) {
                Err(Error::LengthMismatch {
                    input: 5,
                    output: 6,
                }) => {}
                other => panic!(
                    "rank {}: expected LengthMismatch, got {other:?}",
                    cluster.rank()
                ),
            }

            // Distributed arrays of different lengths, or split differently.
            let xs = DistArray::<f64>::zeroed(cluster, 10).unwrap();
            let mut ys = DistArray::<f64>::zeroed(cluster, 11).unwrap();
            assert!(matches!(
                cluster.map_dist_into(&xs, &mut ys, |v: f64| v),
                Err(Error::LengthMismatch {
                    input: 10,
                    output: 11
                })
            ));
            let lopsided = if cluster.is_root() { 10 } else { 0 };
            let mut zs =
                DistArray::from_local(cluster, SharedArray::<f64>::zeroed(lopsided).unwrap())
                    .unwrap();
            assert_eq!(zs.len(), 10);
            match cluster.map_dist_into(&xs, &mut zs, |v: f64| v) {
                Err(Error::Mpi(m)) => assert!(m.contains("differently"), "{m}"),
                other => panic!("expected Error::Mpi, got {other:?}"),
            }

            // Nothing is left half-done: the next collective call works.
            let len = if cluster.is_root() { 1000 } else { 0 };
            let xs = SharedArray::filled(len, 3u64).unwrap();
            let mut ys = SharedArray::zeroed(len).unwrap();
            cluster.map_into(&xs, &mut ys, |v: u64| v * v).unwrap();
            assert!(ys.iter().all(|&y| y == 9));
        },
    );
}

#[test]
fn a_kernel_panic_on_one_rank_fails_the_call_on_every_rank() {
    on_every_rank(
        "a_kernel_panic_on_one_rank_fails_the_call_on_every_rank",
        |cluster| {
            let n = 3000;
            let xs = DistArray::from_fn(cluster, n, |i| i as u64).unwrap();
            let mut ys = DistArray::<u64>::zeroed(cluster, n).unwrap();
            // Element n - 1 lives on the last rank.
            let last = cluster.size() - 1;
            let result = cluster.map_dist_into(&xs, &mut ys, |v: u64| {
                if v == 2999 {
                    panic!("element 2999 is poison");
                }
                v
            });
            match result {
                Err(Error::KernelPanicked { message, .. }) if cluster.rank() == last => {
                    assert!(message.contains("poison"), "{message}");
                }
                Err(Error::RankFailed { rank, message }) if cluster.rank() != last => {
                    assert_eq!(rank, last);
                    assert!(message.contains("poison"), "{message}");
                }
                other => panic!("rank {}: unexpected {other:?}", cluster.rank()),
            }
            // The same through the scatter path, then the pools are still usable.
            let len = if cluster.is_root() { n } else { 0 };
            let xs = SharedArray::try_from_iter(0..len as u64).unwrap();
            let mut ys = SharedArray::<u64>::zeroed(len).unwrap();
            let err = cluster
                .map_into(&xs, &mut ys, |v: u64| {
                    if v == 2999 {
                        panic!("element 2999 is poison");
                    }
                    v
                })
                .unwrap_err();
            assert!(err.to_string().contains("poison"), "{err}");
            cluster.map_into(&xs, &mut ys, |v: u64| v + 1).unwrap();
            if cluster.is_root() {
                assert!(ys.iter().enumerate().all(|(i, &y)| y == i as u64 + 1));
            }
        },
    );
}

#[test]
fn generic_maps_spread_items_over_ranks_and_keep_input_order() {
    on_every_rank(
        "generic_maps_spread_items_over_ranks_and_keep_input_order",
        |cluster| {
            for n in [0u64, 1, 2, 10_007] {
                let items: Vec<u64> = if cluster.is_root() {
                    (0..n).collect()
                } else {
                    vec![]
                };
                let out = cluster
                    .map(|i: u64| (i, format!("item {i}"), std::process::id()), items)
                    .unwrap();
                match out {
                    Some(results) => {
                        assert!(cluster.is_root());
                        assert_eq!(results.len(), n as usize);
                        for (i, (k, s, _)) in results.iter().enumerate() {
                            assert_eq!((*k, s.as_str()), (i as u64, format!("item {i}").as_str()));
                        }
                        // Every rank's workers took part when there was enough work.
                        if n >= cluster.size() as u64 {
                            let mut pids: Vec<u32> = results.iter().map(|r| r.2).collect();
                            pids.sort_unstable();
                            pids.dedup();
                            assert!(pids.len() >= cluster.size(), "only workers {pids:?} ran");
                        }
                    }
                    None => assert!(!cluster.is_root()),
                }
            }
            // A panicking task fails the map on every rank, with its message.
            let items: Vec<u32> = if cluster.is_root() {
                (0..100).collect()
            } else {
                vec![]
            };
            let err = cluster
                .map(
                    |i: u32| {
                        assert!(i != 99, "task 99 fails");
                        i
                    },
                    items,
                )
                .unwrap_err();
            assert!(err.to_string().contains("task 99 fails"), "{err}");
            // A panicking input iterator on rank 0 too.
            let err = cluster
                .map(
                    |i: u32| i,
                    (0..10u32).inspect(|&i| assert!(i < 5, "input ran dry")),
                )
                .unwrap_err();
            if cluster.is_root() {
                assert!(matches!(err, Error::InputPanicked { .. }), "{err:?}");
            } else {
                assert!(matches!(err, Error::RankFailed { rank: 0, .. }), "{err:?}");
            }
        },
    );
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Cell {
    id: u32,
    mass: f32,
    pos: [f64; 2],
}

#[test]
fn blocks_made_on_each_rank_scatter_and_gather_round_trip() {
    on_every_rank(
        "blocks_made_on_each_rank_scatter_and_gather_round_trip",
        |cluster| {
            // Rank r brings r + 2 cells of its own data.
            let r = cluster.rank();
            let mine: Vec<Cell> = (0..r + 2)
                .map(|k| Cell {
                    id: (100 * r + k) as u32,
                    mass: k as f32,
                    pos: [r as f64, k as f64],
                })
                .collect();
            let xs =
                DistArray::from_local(cluster, SharedArray::from_slice(&mine).unwrap()).unwrap();
            let size = cluster.size();
            assert_eq!(xs.len(), (0..size).map(|r| r + 2).sum::<usize>());
            assert_eq!(xs.local_range().len(), r + 2);
            let gathered = xs.gather_to_root(cluster).unwrap();
            assert_eq!(gathered.is_some(), cluster.is_root());
            if let Some(all) = &gathered {
                let expected: Vec<u32> = (0..size)
                    .flat_map(|r| (0..r + 2).map(move |k| (100 * r + k) as u32))
                    .collect();
                assert_eq!(all.iter().map(|c| c.id).collect::<Vec<_>>(), expected);
            }
            // Scatter rank 0's copy back out, evenly this time.
            let whole = gathered.unwrap_or_else(|| SharedArray::zeroed(0).unwrap());
            let ys = DistArray::scatter_from_root(cluster, &whole).unwrap();
            assert_eq!(ys.blocks(), &Blocks::even(xs.len(), size));
            let ids = (0..size).flat_map(|r| (0..r + 2).map(move |k| (100 * r + k) as u32));
            let expected: Vec<u32> = ids
                .skip(ys.local_range().start)
                .take(ys.local().len())
                .collect();
            assert_eq!(
                ys.local().iter().map(|c| c.id).collect::<Vec<_>>(),
                expected
            );
        },
    );
}

/// The CPUs this process may run on, from /proc.
fn cpus_allowed() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    list.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn each_rank_sizes_its_pool_from_its_own_cpu_set() {
    on_every_rank("each_rank_sizes_its_pool_from_its_own_cpu_set", |cluster| {
        assert_eq!(cluster.pool().processes(), cpus_allowed());
    });
}

#[test]
fn a_panicking_rank_aborts_the_whole_job_promptly() {
    let case = "a_panicking_rank_aborts_the_whole_job_promptly";
    if on_rank(case, |cluster| {
        // Give the pool work, so that worker processes exist when the job dies.
        cluster.map(|i: u32| i, 0..100u32).unwrap();
        if cluster.rank() == 1 {
            panic!("rank 1 fails on purpose");
        }
        // The other ranks wait in a collective that rank 1 never reaches.
        let _ = cluster.barrier();
        unreachable!("the barrier cannot complete without rank 1");
    }) {
        return;
    }
    for n in [2, 3] {
        let job = mpirun(case, n);
        assert!(!job.success, "the job succeeded:\n{}", job.output);
        assert!(
            job.elapsed < Duration::from_secs(30),
            "it took {:?}",
            job.elapsed
        );
        assert!(
            job.output.contains("rank 1 fails on purpose"),
            "{}",
            job.output
        );
        assert!(
            job.output.contains("aborting the MPI job"),
            "{}",
            job.output
        );
        // No rank and no worker outlives the job.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_with_env(&format!("{CASE_VAR}={case}"));
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "processes {left:?} outlived the job"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_mpi_sqrt_example_checks_its_results_on_two_and_three_ranks() {
    if std::env::var_os(CASE_VAR).is_some() {
        return; // a rank of another test's job
    }
    let exe = examples::build_examples(&["mpi"]).join("mpi_sqrt");
    for n in [2, 3] {
        let job = mpirun_program(n, &exe, &["100003", "3"], None);
        assert!(
            job.success,
            "mpi_sqrt on {n} ranks failed (exit {:?}):\n{}",
            job.code, job.output
        );
        for line in [
            &*format!("mpi_sqrt over 100003 f64 (1 MiB in, the same out) on {n} ranks"),
            "distributed: map_dist_into",
            "from rank 0: map_into (scatter, map, gather)",
            "all results agree bit for bit with a sequential sqrt, on every rank",
        ] {
            assert!(job.output.contains(line), "no {line:?} in\n{}", job.output);
        }
    }
}

/// Whether `result` is the error every rank must return when `failing` alone
/// failed a check with `own`: its own error there, `RankFailed` naming it elsewhere.
fn failed_together(cluster: &Cluster, result: &shmpool::Result<()>, failing: usize) -> bool {
    match result {
        Err(Error::LengthMismatch { .. }) => cluster.rank() == failing,
        Err(Error::RankFailed { rank, .. }) => cluster.rank() != failing && *rank == failing,
        _ => false,
    }
}

#[test]
fn a_length_mismatch_on_one_rank_fails_the_call_on_every_rank() {
    on_every_rank(
        "a_length_mismatch_on_one_rank_fails_the_call_on_every_rank",
        |cluster| {
            let xs = DistArray::<f64>::zeroed(cluster, 10).unwrap();
            let mut ten = DistArray::<f64>::zeroed(cluster, 10).unwrap();
            let mut eleven = DistArray::<f64>::zeroed(cluster, 11).unwrap();
            // One rank at a time passes a y of the wrong length; the others do not.
            for failing in [0, cluster.size() - 1] {
                let ys = if cluster.rank() == failing {
                    &mut eleven
                } else {
                    &mut ten
                };
                let r = cluster.map_dist_into(&xs, ys, |v: f64| v + 1.0);
                assert!(
                    failed_together(cluster, &r, failing),
                    "rank {}: {r:?}",
                    cluster.rank()
                );
                let r = cluster
                    .map_dist_chunks_into(&xs, ys, |a: &[f64], b: &mut [f64]| b.copy_from_slice(a));
                assert!(
                    failed_together(cluster, &r, failing),
                    "rank {}: {r:?}",
                    cluster.rank()
                );
                // Nobody is left waiting in a collective: the barrier completes.
                cluster.barrier().unwrap();
            }
            // The ranks pass x and y of one length each, but not the same one.
            let xs11 = DistArray::<f64>::zeroed(cluster, 11).unwrap();
            let (x, y) = if cluster.is_root() {
                (&xs11, &mut eleven)
            } else {
                (&xs, &mut ten)
            };
            match cluster.map_dist_into(x, y, |v: f64| v) {
                Err(Error::RanksDisagree {
                    what: "length",
                    detail,
                }) => {
                    assert!(detail.contains("from 10 to 11"), "{detail}")
                }
                other => panic!("rank {}: {other:?}", cluster.rank()),
            }
            // And the arrays still work.
            cluster
                .map_dist_into(&xs, &mut ten, |v: f64| v + 2.0)
                .unwrap();
            assert!(ten.local().iter().all(|&v| v == 2.0));
        },
    );
}

#[test]
fn constructors_agree_on_the_global_length_or_fail_on_every_rank() {
    on_every_rank(
        "constructors_agree_on_the_global_length_or_fail_on_every_rank",
        |cluster| {
            let len = 10 + cluster.rank();
            match DistArray::<u64>::zeroed(cluster, len) {
                Err(Error::RanksDisagree { what: "length", .. }) => {}
                other => panic!("rank {}: zeroed gave {other:?}", cluster.rank()),
            }
            let calls = std::cell::Cell::new(0);
            match DistArray::from_fn(cluster, len, |i| {
                calls.set(calls.get() + 1);
                i as u64
            }) {
                Err(Error::RanksDisagree { what: "length", .. }) => {}
                other => panic!("rank {}: from_fn gave {other:?}", cluster.rank()),
            }
            assert_eq!(
                calls.get(),
                0,
                "f ran for a split the ranks never agreed on"
            );
            // Ranks in different calls: every one of them hears of it.
            let xs = DistArray::from_fn(cluster, 10, |i| i as u64).unwrap();
            let r = if cluster.is_root() {
                xs.gather_to_root(cluster).map(drop)
            } else {
                cluster.barrier()
            };
            match r {
                Err(Error::RanksDisagree {
                    what: "call",
                    detail,
                }) => {
                    assert!(detail.contains("gather_to_root"), "{detail}");
                    assert!(detail.contains("barrier"), "{detail}");
                }
                other => panic!("rank {}: {other:?}", cluster.rank()),
            }
            // The gather is right once the ranks agree.
            let all = xs.gather_to_root(cluster).unwrap();
            if let Some(all) = all {
                assert_eq!(all.to_vec(), (0..10).collect::<Vec<u64>>());
            }
        },
    );
}

#[test]
fn a_chunk_kernel_on_rank_zero_arrays_reads_rank_zero_output() {
    on_every_rank(
        "a_chunk_kernel_on_rank_zero_arrays_reads_rank_zero_output",
        |cluster| {
            let n = if cluster.is_root() { 100_003 } else { 0 };
            let xs = SharedArray::try_from_iter((0..n).map(|i| i as u64)).unwrap();
            // A first call leaves the other ranks' block buffers full of 777s.
            let mut ys = SharedArray::zeroed(n).unwrap();
            cluster.map_into(&xs, &mut ys, |_: u64| 777u64).unwrap();
            // y += x over rank 0's y = 1: every rank's kernel must see those 1s.
            let mut ys = SharedArray::filled(n, 1u64).unwrap();
            cluster
                .map_chunks_into(&xs, &mut ys, |a: &[u64], b: &mut [u64]| {
                    for (y, x) in b.iter_mut().zip(a) {
                        *y += x;
                    }
                })
                .unwrap();
            if cluster.is_root() {
                let wrong = (0..n).filter(|&i| ys[i] != i as u64 + 1).count();
                assert_eq!(
                    wrong, 0,
                    "{wrong} of {n} elements wrong; y[50002] = {}",
                    ys[50002]
                );
            }
        },
    );
}

/// Milliseconds since the Unix epoch, comparable between processes.
fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// A rank's `main`, which fails on rank 1 after one call.
fn rank_main(cluster: &Cluster) -> shmpool::Result<()> {
    let mut xs = DistArray::from_fn(cluster, 1000, |i| i as u32)?;
    cluster.for_each_dist_mut(&mut xs, |v: &mut u32| *v += 1)?;
    if cluster.rank() == 1 {
        // An error of this rank's own, returned with `?` from main.
        std::fs::read("/nonexistent/input.npy").map_err(|e| shmpool::Error::Io {
            context: "read the input",
            source: std::sync::Arc::new(e),
        })?;
    }
    // The other ranks go on into a call that rank 1 never makes.
    cluster.for_each_dist_mut(&mut xs, |v: &mut u32| *v += 1)?;
    cluster.barrier()
}

#[test]
fn an_err_from_main_on_one_rank_ends_the_job_promptly() {
    let case = "an_err_from_main_on_one_rank_ends_the_job_promptly";
    if std::env::var(CASE_VAR).as_deref() == Ok(case) {
        // As `fn main() -> Result<..>` does: the Cluster drops, then the error is
        // printed and the process exits with 1.
        let result = {
            let cluster = Cluster::init().expect("start the cluster");
            let result = rank_main(&cluster);
            if result.is_err() {
                println!("rank {} returns Err at {} ms", cluster.rank(), epoch_ms());
            }
            result
        };
        if let Err(e) = result {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
        return;
    }
    for n in [2, 3] {
        let job = mpirun(case, n);
        let ended = epoch_ms();
        assert!(!job.success, "the job succeeded:\n{}", job.output);
        let returned: u128 = job
            .output
            .lines()
            .find_map(|l| l.split_once("rank 1 returns Err at ").map(|(_, t)| t))
            .and_then(|t| t.strip_suffix(" ms"))
            .unwrap_or_else(|| panic!("rank 1 never returned Err:\n{}", job.output))
            .parse()
            .unwrap();
        assert!(
            ended - returned < 2000,
            "the job ended {} ms after rank 1's Err:\n{}",
            ended - returned,
            job.output
        );
        assert!(
            job.output.contains("rank 1 left the MPI job"),
            "{}",
            job.output
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_with_env(&format!("{CASE_VAR}={case}")).is_empty() {
            assert!(Instant::now() < deadline, "processes outlived the job");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn ranks_that_finish_at_different_times_end_the_job_normally() {
    on_every_rank(
        "ranks_that_finish_at_different_times_end_the_job_normally",
        |cluster| {
            let mut xs = DistArray::from_fn(cluster, 100, |i| i as u32).unwrap();
            cluster
                .for_each_dist_mut(&mut xs, |v: &mut u32| *v *= 2)
                .unwrap();
            // Rank 0 leaves at once; the others do a second of local work first.
            // Nobody waits in a call, so nobody may end the job.
            if !cluster.is_root() {
                std::thread::sleep(Duration::from_millis(1000));
                let local = cluster.pool().map(|x: u32| x + 1, 0..100u32).unwrap();
                assert_eq!(local[99], 100);
            }
        },
    );
}

#[test]
fn a_worker_death_stops_a_long_distributed_map_promptly() {
    on_every_rank(
        "a_worker_death_stops_a_long_distributed_map_promptly",
        |cluster| {
            // About 2 s of work per rank; on every rank, the element 0.1 s into its
            // first chunk kills its worker.
            let per_rank = 20_000;
            let n = per_rank * cluster.size();
            let xs = DistArray::from_fn(cluster, n, |i| (i % per_rank) as u64).unwrap();
            let mut ys = DistArray::<u64>::zeroed(cluster, n).unwrap();
            cluster.barrier().unwrap();
            let started = Instant::now();
            let r = cluster.map_dist_into(&xs, &mut ys, |v: u64| {
                if v == 1000 {
                    // SAFETY: kill and getpid have no memory-safety preconditions.
                    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_micros(100));
                v
            });
            let took = started.elapsed();
            let err = r.unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::WorkerDied { .. } | Error::ChunksLost { .. } | Error::RankFailed { .. }
                ),
                "rank {}: {err:?}",
                cluster.rank()
            );
            assert!(
                took < Duration::from_millis(1500),
                "the map took {took:?}: {err}"
            );
            // The pool replaced its worker and maps again.
            cluster.map_dist_into(&xs, &mut ys, |v: u64| v + 1).unwrap();
            assert!(
                ys.local()
                    .iter()
                    .zip(xs.local().iter())
                    .all(|(y, x)| *y == x + 1)
            );
        },
    );
}

#[test]
fn mpi_runs_funneled_and_the_pool_is_free_to_share() {
    on_every_rank(
        "mpi_runs_funneled_and_the_pool_is_free_to_share",
        |cluster| {
            use shmpool::mpi::Threading;
            // MPI was initialized for one thread's calls; `shmpool::mpi` offers no way
            // to make a communicator on another (the compile-fail doctest on
            // `shmpool::mpi` proves that part).
            let level = shmpool::mpi::environment::threading_support();
            assert!(
                matches!(
                    level,
                    Threading::Funneled | Threading::Serialized | Threading::Multiple
                ),
                "{level:?}"
            );
            // The pool itself is not MPI: other threads use it while this one makes
            // the cluster's calls.
            let pool = cluster.pool();
            std::thread::scope(|s| {
                let helper = s.spawn(|| pool.map(|x: u64| x * 3, 0..1000u64).unwrap());
                let mut xs = DistArray::from_fn(cluster, 1000, |i| i as u64).unwrap();
                cluster
                    .for_each_dist_mut(&mut xs, |v: &mut u64| *v += 1)
                    .unwrap();
                assert_eq!(helper.join().unwrap()[999], 2997);
            });
        },
    );
}
