//! Property tests of every `Cluster` and `DistArray` operation (`--features mpi`),
//! each test an `mpirun -n 2` and an `-n 3` job (`mpi_jobs`).
//!
//! Every case draws an uneven size (0, 1, ranks - 1, ranks + 1, a large prime and
//! a few random ones), runs over several `Pod` types, fills the arrays with random
//! data, and compares the result gathered on rank 0 bit for bit with a sequential
//! computation of the same function there.
//!
//! Rank 0 takes the seed from `SHMPOOL_PROP_SEED`, or else from the clock, and
//! broadcasts it, so every rank draws the same cases in the same order and makes
//! the same collective calls; after each case the ranks check that they still
//! agree. Each job prints its seed, and every failure names it: replay one with
//! `SHMPOOL_PROP_SEED=<seed> cargo test --features mpi --test cluster_properties`.
//!
//! `root_data_chunk_kernels_read_rank_0s_y` holds issue 11's third defect down: on
//! the root-data path, a chunk kernel that reads its output (`y += x`) sees rank
//! 0's `y` for its block (rank 0 scatters `y` too). Ranks other than 0 once handed
//! it their scratch buffer instead, zeroed when new, else the previous call's values.

use std::fmt::Debug;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shmpool::mpi::traits::{Communicator, CommunicatorCollectives, Root};
use shmpool::{Blocks, DistArray};

mod cluster_props;
#[path = "common/mpi_jobs.rs"]
mod mpi_jobs;

use cluster_props::{
    Ctx, Elem, Particle, Rng, SEED_VAR, add_f, add_x, bump, cross_of, distribute, f_of, on_root,
    set_cross, set_f,
};
use mpi_jobs::on_every_rank;

/// The random sizes of the array properties are drawn below these.
const ARRAY_SIZES: &[usize] = &[64, 1_000, 5_000, 50_000, 300_000];

/// Runs `$case::<T>(args...)` for every element type under test.
macro_rules! each_type {
    ($case:ident($($arg:expr),*)) => {{
        $case::<u8>($($arg),*);
        $case::<i32>($($arg),*);
        $case::<u64>($($arg),*);
        $case::<f32>($($arg),*);
        $case::<f64>($($arg),*);
        $case::<Particle>($($arg),*);
    }};
}

fn constructors_and_transfers<T: Elem>(ctx: &mut Ctx, n: usize) {
    ctx.start::<T>(n);
    let (cluster, rank) = (ctx.cluster, ctx.rank());
    let data: Vec<T> = ctx.rng.raw_vec(n);
    let other: Vec<T> = ctx.rng.raw_vec(n);
    let lens = ctx.random_lens(n);
    // What ranks other than 0 pass for root-only arguments: never read.
    let junk_len = ctx.rng.below(8);
    let junk: Vec<T> = ctx.rng.raw_vec(junk_len);
    let even = Blocks::even(n, cluster.size());
    let uneven = Blocks::from_lens(lens.iter().copied());

    let mut zeroed = ctx.ok("DistArray::zeroed", DistArray::<T>::zeroed(cluster, n));
    ctx.check_layout("zeroed", &zeroed, &even);
    let zeros = vec![T::zeroed(); even.range(rank).len()];
    ctx.check("zeroed: local", zeroed.local(), &zeros);

    let mut calls = Vec::new();
    let from_fn = DistArray::from_fn(cluster, n, |i| {
        calls.push(i);
        data[i]
    });
    let from_fn = ctx.ok("DistArray::from_fn", from_fn);
    if calls != even.range(rank).collect::<Vec<_>>() {
        ctx.fail("from_fn", format_args!("f was called for {calls:?}"));
    }
    ctx.check_layout("from_fn", &from_fn, &even);
    ctx.check("from_fn: local", from_fn.local(), &data[even.range(rank)]);

    let mut from_local = distribute(ctx, &data, Some(&lens));
    ctx.check_layout("from_local", &from_local, &uneven);
    ctx.check(
        "from_local: local",
        from_local.local(),
        &data[uneven.range(rank)],
    );

    ctx.check_gathered("gather_to_root (even)", &from_fn, || data.clone());
    ctx.check_gathered("gather_to_root (from_local)", &from_local, || data.clone());

    // Rank 0's `whole` starts as other data; the other ranks' is not written.
    let mut whole = on_root(ctx, &other, &junk);
    let gathered = from_local.gather_to_root_into(cluster, &mut whole);
    ctx.ok("gather_to_root_into", gathered);
    let want = if ctx.root() { &data } else { &junk };
    ctx.check("gather_to_root_into", &whole, want);

    let source = on_root(ctx, &data, &junk);
    let scattered = ctx.ok(
        "DistArray::scatter_from_root",
        DistArray::scatter_from_root(cluster, &source),
    );
    ctx.check_layout("scatter_from_root", &scattered, &even);
    let want = &data[even.range(rank)];
    ctx.check("scatter_from_root: local", scattered.local(), want);

    // Refill arrays of both layouts from rank 0, in place.
    let source = on_root(ctx, &other, &junk);
    let copied = from_local.copy_from_root(cluster, &source);
    ctx.ok("copy_from_root (from_local)", copied);
    ctx.check_layout("copy_from_root (from_local)", &from_local, &uneven);
    let want = &other[uneven.range(rank)];
    ctx.check(
        "copy_from_root (from_local): local",
        from_local.local(),
        want,
    );
    ctx.ok(
        "copy_from_root (zeroed)",
        zeroed.copy_from_root(cluster, &source),
    );
    let want = &other[even.range(rank)];
    ctx.check("copy_from_root (zeroed): local", zeroed.local(), want);
    ctx.check_gathered("gather_to_root after copy_from_root", &from_local, || {
        other.clone()
    });

    let range = scattered.local_range();
    let local = scattered.into_local();
    ctx.check("into_local", &local, &data[range]);
    ctx.lockstep();
}

#[test]
fn dist_array_constructors_and_transfers_keep_every_bit() {
    let case = "dist_array_constructors_and_transfers_keep_every_bit";
    on_every_rank(case, |cluster| {
        let mut ctx = Ctx::new(cluster, case);
        for n in ctx.sizes(ARRAY_SIZES) {
            each_type!(constructors_and_transfers(&mut ctx, n));
        }
        ctx.finish();
    });
}

fn distributed_maps<T: Elem>(ctx: &mut Ctx, n: usize) {
    ctx.start::<T>(n);
    let cluster = ctx.cluster;
    let x: Vec<T> = ctx.rng.vec(n);
    let y0: Vec<T> = ctx.rng.vec(n);
    let z0: Vec<T::Other> = ctx.rng.vec(n);
    // Half the cases split evenly (from_fn), half at random (from_local).
    let lens = (ctx.rng.below(2) == 1).then(|| ctx.random_lens(n));
    let xs = distribute(ctx, &x, lens.as_deref());
    let mut ys = distribute(ctx, &y0, lens.as_deref());
    let mut zs = distribute(ctx, &z0, lens.as_deref());
    let mine = xs.local_range();

    ctx.ok(
        "map_dist_into",
        cluster.map_dist_into(&xs, &mut ys, f_of::<T>),
    );
    ctx.check_gathered("map_dist_into", &ys, || x.iter().map(|v| v.f()).collect());

    ctx.ok(
        "map_dist_into (other type)",
        cluster.map_dist_into(&xs, &mut zs, cross_of::<T>),
    );
    ctx.check_gathered("map_dist_into (other type)", &zs, || {
        x.iter().map(|v| v.cross()).collect()
    });

    ys.local_mut().copy_from_slice(&y0[mine.clone()]);
    ctx.ok(
        "map_dist_chunks_into (y += f(x))",
        cluster.map_dist_chunks_into(&xs, &mut ys, add_f::<T>),
    );
    ctx.check_gathered("map_dist_chunks_into (y += f(x))", &ys, || {
        y0.iter().zip(&x).map(|(y, x)| y.add(x.f())).collect()
    });

    zs.local_mut().copy_from_slice(&z0[mine.clone()]);
    ctx.ok(
        "map_dist_chunks_into (other type)",
        cluster.map_dist_chunks_into(&xs, &mut zs, set_cross::<T>),
    );
    ctx.check_gathered("map_dist_chunks_into (other type)", &zs, || {
        x.iter().map(|v| v.cross()).collect()
    });

    ys.local_mut().copy_from_slice(&y0[mine.clone()]);
    ctx.ok(
        "for_each_dist_mut (v += f(v))",
        cluster.for_each_dist_mut(&mut ys, bump::<T>),
    );
    ctx.check_gathered("for_each_dist_mut (v += f(v))", &ys, || {
        y0.iter().map(|y| y.add(y.f())).collect()
    });
    // The input was only read.
    ctx.check("map_dist_*: x afterwards", xs.local(), &x[mine]);
    ctx.lockstep();
}

#[test]
fn distributed_maps_match_a_sequential_map_bit_for_bit() {
    let case = "distributed_maps_match_a_sequential_map_bit_for_bit";
    on_every_rank(case, |cluster| {
        let mut ctx = Ctx::new(cluster, case);
        for n in ctx.sizes(ARRAY_SIZES) {
            each_type!(distributed_maps(&mut ctx, n));
        }
        ctx.finish();
    });
}

fn root_data_maps<T: Elem>(ctx: &mut Ctx, n: usize) {
    ctx.start::<T>(n);
    let cluster = ctx.cluster;
    let x: Vec<T> = ctx.rng.vec(n);
    let y0: Vec<T> = ctx.rng.vec(n);
    let z0: Vec<T::Other> = ctx.rng.vec(n);
    // The other ranks pass arrays of their own lengths: neither read nor written.
    let lens = [ctx.rng.below(8), ctx.rng.below(8), ctx.rng.below(8)];
    let (jx, jy, jz) = (
        ctx.rng.vec(lens[0]),
        ctx.rng.vec(lens[1]),
        ctx.rng.vec(lens[2]),
    );
    let xs = on_root(ctx, &x, &jx);
    let mut ys = on_root(ctx, &y0, &jy);
    let mut zs = on_root(ctx, &z0, &jz);
    let (fx, cx): (Vec<T>, Vec<T::Other>) = if ctx.root() {
        (
            x.iter().map(|v| v.f()).collect(),
            x.iter().map(|v| v.cross()).collect(),
        )
    } else {
        (jy.clone(), jz.clone())
    };

    ctx.ok("map_into", cluster.map_into(&xs, &mut ys, f_of::<T>));
    ctx.check("map_into", &ys, &fx);

    ys.copy_from_slice(if ctx.root() { &y0 } else { &jy });
    ctx.ok(
        "map_chunks_into (y = f(x))",
        cluster.map_chunks_into(&xs, &mut ys, set_f::<T>),
    );
    ctx.check("map_chunks_into (y = f(x))", &ys, &fx);

    ctx.ok(
        "map_into (other type)",
        cluster.map_into(&xs, &mut zs, cross_of::<T>),
    );
    ctx.check("map_into (other type)", &zs, &cx);

    zs.copy_from_slice(if ctx.root() { &z0 } else { &jz });
    ctx.ok(
        "map_chunks_into (other type)",
        cluster.map_chunks_into(&xs, &mut zs, set_cross::<T>),
    );
    ctx.check("map_chunks_into (other type)", &zs, &cx);
    ctx.check(
        "map_into: x afterwards",
        &xs,
        if ctx.root() { &x } else { &jx },
    );
    ctx.lockstep();
}

#[test]
fn root_data_maps_match_a_sequential_map_bit_for_bit() {
    let case = "root_data_maps_match_a_sequential_map_bit_for_bit";
    on_every_rank(case, |cluster| {
        let mut ctx = Ctx::new(cluster, case);
        for n in ctx.sizes(ARRAY_SIZES) {
            each_type!(root_data_maps(&mut ctx, n));
        }
        ctx.finish();
    });
}

/// `y += x` on the root-data path: the kernel must see rank 0's `y` for its block.
/// Records a line per failing case instead of stopping at the first, so that the
/// job's output shows the pattern.
fn root_chunks_read_y<T: Elem>(ctx: &mut Ctx, n: usize, failures: &mut Vec<String>) {
    ctx.start::<T>(n);
    let x: Vec<T> = ctx.rng.vec(n);
    let y0: Vec<T> = ctx.rng.vec(n);
    let xs = on_root(ctx, &x, &[]);
    let mut ys = on_root(ctx, &y0, &[]);
    let op = "map_chunks_into (y += x, root data)";
    ctx.ok(op, ctx.cluster.map_chunks_into(&xs, &mut ys, add_x::<T>));
    if ctx.root() {
        let blocks = Blocks::even(n, ctx.cluster.size());
        let mut per_rank = Vec::new();
        let mut first = None;
        for (r, range) in blocks.ranges().enumerate() {
            let (mut bad, mut zero_y) = (0, 0);
            for i in range.clone() {
                let want = y0[i].add(x[i]);
                if bytemuck::bytes_of(&ys[i]) != bytemuck::bytes_of(&want) {
                    first.get_or_insert((i, ys[i], want));
                    bad += 1;
                    let from_zero = T::zeroed().add(x[i]);
                    zero_y +=
                        usize::from(bytemuck::bytes_of(&ys[i]) == bytemuck::bytes_of(&from_zero));
                }
            }
            if bad > 0 {
                per_rank.push(format!(
                    "rank {r}'s block {range:?}: {bad} of {} bad, {zero_y} of them 0 + x \
                     (the kernel saw a zeroed y)",
                    range.len()
                ));
            }
        }
        if let Some((i, got, want)) = first {
            failures.push(format!(
                "{op} <{}> n = {n}: first bad index {i}: got {got:?}, want {want:?}; {}",
                ctx.ty,
                per_rank.join("; ")
            ));
        }
    }
    ctx.lockstep();
}

#[test]
fn root_data_chunk_kernels_read_rank_0s_y() {
    let case = "root_data_chunk_kernels_read_rank_0s_y";
    on_every_rank(case, |cluster| {
        let mut ctx = Ctx::new(cluster, case);
        let mut failures = Vec::new();
        for n in ctx.sizes(ARRAY_SIZES) {
            each_type!(root_chunks_read_y(&mut ctx, n, &mut failures));
        }
        // Every rank learns the outcome and fails with the seed.
        let mut failed = failures.len() as u64;
        cluster
            .world()
            .process_at_rank(0)
            .broadcast_into(&mut failed);
        if failed > 0 {
            let report = if ctx.root() {
                failures.join("\n  ")
            } else {
                "(rank 0 lists them)".to_owned()
            };
            panic!(
                "{case} with seed {} on {} ranks, rank {}: {failed} of {} cases failed:\n  \
                 {report}\n(replay: {SEED_VAR}={})",
                ctx.seed,
                cluster.size(),
                cluster.rank(),
                ctx.cases,
                ctx.seed
            );
        }
        ctx.finish();
    });
}

/// `items` on rank 0 (`junk` elsewhere, never read) through `Cluster::map`, whose
/// results must be `f` of each, in order, on rank 0 only.
fn check_map<A, R, F>(ctx: &Ctx, op: &str, f: F, items: Vec<A>, junk: Vec<A>)
where
    A: Serialize + DeserializeOwned + Clone,
    R: Serialize + DeserializeOwned + Send + PartialEq + Debug + 'static,
    F: Fn(A) -> R + Copy,
{
    let want: Vec<R> = if ctx.root() {
        items.iter().cloned().map(f).collect()
    } else {
        Vec::new()
    };
    let input = if ctx.root() { items } else { junk };
    match ctx.ok(op, ctx.cluster.map(f, input)) {
        Some(got) if ctx.root() => {
            if got.len() != want.len() {
                ctx.fail(
                    op,
                    format_args!("{} results, want {}", got.len(), want.len()),
                );
            }
            if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
                let bad = (i..got.len()).filter(|&k| got[k] != want[k]).count();
                ctx.fail(
                    op,
                    format_args!(
                        "first bad index {i} ({bad} bad): got {:?}, want {:?}",
                        got[i], want[i]
                    ),
                );
            }
        }
        None if !ctx.root() => {}
        other => ctx.fail(op, format_args!("returned {:?}", other.map(|v| v.len()))),
    }
}

fn describe(v: u64) -> (u64, String) {
    (v.f(), format!("item {v:x}"))
}
fn shout(s: String) -> (usize, String) {
    (s.chars().count(), s.to_uppercase())
}
fn reversed(mut v: Vec<u8>) -> Vec<u8> {
    v.reverse();
    v
}
/// Floats travel serialized: the result keeps the bits.
fn float_bits((a, b): (f64, f32)) -> (u64, u32) {
    (a.f().to_bits(), b.f().to_bits())
}

fn random_string(rng: &mut Rng) -> String {
    let len = rng.below(12);
    (0..len)
        .map(|_| char::from_u32(rng.below(0x800) as u32 + 0x20).unwrap())
        .collect()
}

fn generic_maps(ctx: &mut Ctx, n: usize) {
    ctx.ty = "items";
    ctx.n = n;
    let junk_len = ctx.rng.below(4);
    let nums: Vec<u64> = ctx.rng.vec(n);
    let junk: Vec<u64> = ctx.rng.vec(junk_len);
    check_map(ctx, "map u64 -> (u64, String)", describe, nums, junk);

    let strings: Vec<String> = (0..n).map(|_| random_string(&mut ctx.rng)).collect();
    let junk = vec![random_string(&mut ctx.rng); junk_len];
    check_map(ctx, "map String -> (usize, String)", shout, strings, junk);

    let bytes: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let len = ctx.rng.below(16);
            ctx.rng.vec(len)
        })
        .collect();
    check_map(
        ctx,
        "map Vec<u8> -> Vec<u8>",
        reversed,
        bytes,
        vec![vec![7]; junk_len],
    );

    let floats: Vec<(f64, f32)> = (0..n)
        .map(|_| (f64::random(&mut ctx.rng), f32::random(&mut ctx.rng)))
        .collect();
    check_map(
        ctx,
        "map (f64, f32) -> bits",
        float_bits,
        floats,
        vec![(1.0, 2.0); junk_len],
    );
    ctx.lockstep();
}

/// A monotonic clock that every process on the machine shares, in nanoseconds.
fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Each rank arrives after a random delay; none may leave `barrier` before the
/// last has arrived.
fn barrier_round(ctx: &mut Ctx) {
    ctx.ty = "-";
    let delays: Vec<usize> = (0..ctx.cluster.size()).map(|_| ctx.rng.below(25)).collect();
    std::thread::sleep(Duration::from_millis(delays[ctx.rank()] as u64));
    let arrived = now_ns();
    ctx.cluster.barrier().unwrap();
    let left = now_ns();
    let mut all = vec![0u64; ctx.cluster.size()];
    ctx.cluster.world().all_gather_into(&arrived, &mut all[..]);
    let last = *all.iter().max().unwrap();
    if left < last {
        ctx.fail(
            "barrier",
            format_args!(
                "left at {left} ns, before the last rank arrived ({last} ns); delays {delays:?} ms"
            ),
        );
    }
    ctx.lockstep();
}

#[test]
fn generic_maps_and_barriers_keep_order_and_lockstep() {
    let case = "generic_maps_and_barriers_keep_order_and_lockstep";
    on_every_rank(case, |cluster| {
        let mut ctx = Ctx::new(cluster, case);
        for n in ctx.sizes(&[64, 1_000, 10_000]) {
            generic_maps(&mut ctx, n);
            barrier_round(&mut ctx);
        }
        ctx.finish();
    });
}
