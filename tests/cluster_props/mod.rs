//! The generator, element types, kernels and checks of the MPI property tests
//! (`tests/cluster_properties.rs`).

use std::fmt::{Debug, Display};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};
use shmpool::mpi::traits::{Communicator, CommunicatorCollectives, Root};
use shmpool::{Blocks, Cluster, DistArray, SharedArray};

pub const SEED_VAR: &str = "SHMPOOL_PROP_SEED";
pub const LARGE_PRIME: usize = 100_003;

/// splitmix64: small, seedable, and the same on every rank.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn vec<T: Elem>(&mut self, n: usize) -> Vec<T> {
        (0..n).map(|_| T::random(self)).collect()
    }

    /// Any bit patterns at all (NaNs with payloads too): for data that only moves.
    pub fn raw_vec<T: Pod>(&mut self, n: usize) -> Vec<T> {
        let mut v = vec![T::zeroed(); n];
        for chunk in bytemuck::cast_slice_mut::<T, u8>(&mut v).chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
        v
    }
}

/// An element type under test, with the functions the kernels compute. They are
/// pure and never make a NaN (whose payload the compiler may choose), so a worker
/// and rank 0 compute the same bits.
pub trait Elem: Pod + Debug {
    /// The type that [`Elem::cross`] maps to: maps that change the element size.
    type Other: Elem;
    fn random(rng: &mut Rng) -> Self;
    fn f(self) -> Self;
    /// `self + x`, wrapping for integers.
    fn add(self, x: Self) -> Self;
    fn cross(self) -> Self::Other;
}

macro_rules! int_elem {
    ($t:ty => $o:ty, $cross:expr) => {
        impl Elem for $t {
            type Other = $o;
            fn random(rng: &mut Rng) -> Self {
                rng.next() as $t
            }
            fn f(self) -> Self {
                self.wrapping_mul(0x5bd1_e995_u32 as $t).rotate_left(3) ^ (self >> 2)
            }
            fn add(self, x: Self) -> Self {
                self.wrapping_add(x)
            }
            fn cross(self) -> $o {
                let cross: fn($t) -> $o = $cross;
                cross(self)
            }
        }
    };
}

int_elem!(u8 => u64, |v| u64::from(v).wrapping_mul(0x0101_0101_0101_0101));
int_elem!(i32 => f64, |v| f64::from(v) * 0.5);
int_elem!(u64 => u8, |v| (v >> 56) as u8 ^ v as u8);

macro_rules! float_elem {
    ($t:ty, $bits:ty => $o:ty, $cross:expr) => {
        impl Elem for $t {
            type Other = $o;
            /// Finite values: any bit pattern, special values, or plain numbers.
            fn random(rng: &mut Rng) -> Self {
                match rng.next() % 4 {
                    0 => {
                        let v = <$t>::from_bits(rng.next() as $bits);
                        if v.is_finite() { v } else { <$t>::MAX }
                    }
                    1 => {
                        let special = [0.0, -0.0, <$t>::MIN_POSITIVE, <$t>::from_bits(1)];
                        let more = [<$t>::MAX, <$t>::MIN, 1.0, -1.0];
                        let k = rng.below(8);
                        if k < 4 { special[k] } else { more[k - 4] }
                    }
                    _ => (rng.next() as i64 >> 24) as $t / 1024.0,
                }
            }
            fn f(self) -> Self {
                self * 0.5 + 1.0
            }
            fn add(self, x: Self) -> Self {
                self + x
            }
            fn cross(self) -> $o {
                let cross: fn($t) -> $o = $cross;
                cross(self)
            }
        }
    };
}

float_elem!(f32, u32 => i32, |v| v as i32);
float_elem!(f64, u64 => f32, |v| v as f32);

/// A `#[repr(C)]` struct element: 24 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Particle {
    id: u32,
    mass: f32,
    pos: [f64; 2],
}

impl Elem for Particle {
    type Other = f64;
    fn random(rng: &mut Rng) -> Self {
        Particle {
            id: rng.next() as u32,
            mass: f32::random(rng),
            pos: [f64::random(rng), f64::random(rng)],
        }
    }
    fn f(self) -> Self {
        Particle {
            id: self.id.wrapping_mul(0x5bd1_e995).rotate_left(3) ^ (self.id >> 2),
            mass: self.mass.f(),
            pos: self.pos.map(f64::f),
        }
    }
    fn add(self, x: Self) -> Self {
        Particle {
            id: self.id.wrapping_add(x.id),
            mass: self.mass + x.mass,
            pos: [self.pos[0] + x.pos[0], self.pos[1] + x.pos[1]],
        }
    }
    fn cross(self) -> f64 {
        self.pos[0] * f64::from(self.mass) + f64::from(self.id)
    }
}

// The kernels: `fn` items, which the workers can run (they capture nothing).
pub fn f_of<T: Elem>(x: T) -> T {
    x.f()
}
pub fn cross_of<T: Elem>(x: T) -> T::Other {
    x.cross()
}
pub fn set_f<T: Elem>(xs: &[T], ys: &mut [T]) {
    assert_eq!(xs.len(), ys.len(), "chunks of different lengths");
    for (y, x) in ys.iter_mut().zip(xs) {
        *y = x.f();
    }
}
pub fn set_cross<T: Elem>(xs: &[T], ys: &mut [T::Other]) {
    assert_eq!(xs.len(), ys.len(), "chunks of different lengths");
    for (y, x) in ys.iter_mut().zip(xs) {
        *y = x.cross();
    }
}
/// `y += f(x)`: reads its output.
pub fn add_f<T: Elem>(xs: &[T], ys: &mut [T]) {
    assert_eq!(xs.len(), ys.len(), "chunks of different lengths");
    for (y, x) in ys.iter_mut().zip(xs) {
        *y = y.add(x.f());
    }
}
/// `y += x`: reads its output.
pub fn add_x<T: Elem>(xs: &[T], ys: &mut [T]) {
    assert_eq!(xs.len(), ys.len(), "chunks of different lengths");
    for (y, x) in ys.iter_mut().zip(xs) {
        *y = y.add(*x);
    }
}
/// `v += f(v)`: reads and writes.
pub fn bump<T: Elem>(v: &mut T) {
    *v = v.add(v.f());
}

pub fn short_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

/// One family's run on one rank: the shared seed, its generator, and the case
/// being run, for the failure messages.
pub struct Ctx<'c> {
    pub cluster: &'c Cluster,
    pub family: &'static str,
    pub seed: u64,
    pub rng: Rng,
    pub cases: usize,
    pub ty: &'static str,
    pub n: usize,
    pub started: Instant,
}

impl<'c> Ctx<'c> {
    /// Rank 0 picks the seed and broadcasts it; collective.
    pub fn new(cluster: &'c Cluster, family: &'static str) -> Self {
        let mut seed = 0u64;
        if cluster.is_root() {
            seed = match std::env::var(SEED_VAR) {
                Ok(s) => s
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{SEED_VAR}={s:?} is not a u64")),
                Err(_) => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64,
            };
        }
        cluster.world().process_at_rank(0).broadcast_into(&mut seed);
        if cluster.is_root() {
            println!(
                "{family}: seed {seed} on {} ranks (replay: {SEED_VAR}={seed})",
                cluster.size()
            );
        }
        // Each family draws its own stream from the one seed.
        let stream = family.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
        });
        Ctx {
            cluster,
            family,
            seed,
            rng: Rng(stream),
            cases: 0,
            ty: "-",
            n: 0,
            started: Instant::now(),
        }
    }

    pub fn rank(&self) -> usize {
        self.cluster.rank()
    }

    pub fn root(&self) -> bool {
        self.cluster.is_root()
    }

    pub fn start<T>(&mut self, n: usize) {
        self.ty = short_name::<T>();
        self.n = n;
    }

    /// The sizes of one run: the edges for this many ranks, a large prime, and one
    /// random size below each of `random_below`.
    pub fn sizes(&mut self, random_below: &[usize]) -> Vec<usize> {
        let r = self.cluster.size();
        let mut sizes = vec![0, 1, r - 1, r + 1, LARGE_PRIME];
        sizes.extend(random_below.iter().map(|&m| self.rng.below(m)));
        sizes
    }

    /// `n` split into one random length per rank, in rank order.
    pub fn random_lens(&mut self, n: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = (1..self.cluster.size())
            .map(|_| self.rng.below(n + 1))
            .collect();
        cuts.sort_unstable();
        cuts.insert(0, 0);
        cuts.push(n);
        cuts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    pub fn fail(&self, op: &str, what: impl Display) -> ! {
        panic!(
            "{} with seed {} on {} ranks, rank {}: {op} <{}> n = {}: {what} \
             (replay: {SEED_VAR}={})",
            self.family,
            self.seed,
            self.cluster.size(),
            self.rank(),
            self.ty,
            self.n,
            self.seed
        )
    }

    pub fn ok<R>(&self, op: &str, result: shmpool::Result<R>) -> R {
        result.unwrap_or_else(|e| self.fail(op, format_args!("returned Err({e:?})")))
    }

    /// `got` must equal `want` byte for byte.
    pub fn check<T: Pod + Debug>(&self, op: &str, got: &[T], want: &[T]) {
        if got.len() != want.len() {
            self.fail(
                op,
                format_args!("{} elements, want {}", got.len(), want.len()),
            );
        }
        let bad = |i: &usize| bytemuck::bytes_of(&got[*i]) != bytemuck::bytes_of(&want[*i]);
        if let Some(first) = (0..got.len()).find(bad) {
            let count = (first..got.len()).filter(bad).count();
            self.fail(
                op,
                format_args!(
                    "first bad index {first} ({count} bad elements): got {:?}, want {:?}",
                    got[first], want[first]
                ),
            );
        }
    }

    /// The shape of a distributed array: `blocks`, seen from this rank.
    pub fn check_layout<T: Pod>(&self, op: &str, d: &DistArray<T>, blocks: &Blocks) {
        let range = blocks.range(self.rank());
        let seen = (
            d.len(),
            d.is_empty(),
            d.blocks(),
            d.local_range(),
            d.local().len(),
        );
        let want = (
            blocks.len(),
            blocks.is_empty(),
            blocks,
            range.clone(),
            range.len(),
        );
        if seen != want {
            self.fail(op, format_args!("layout {seen:?}, want {want:?}"));
        }
    }

    /// Gathers `d` to rank 0, which compares it with `want()`.
    pub fn check_gathered<T: Pod + Debug>(
        &self,
        op: &str,
        d: &DistArray<T>,
        want: impl FnOnce() -> Vec<T>,
    ) {
        match self.ok(op, d.gather_to_root(self.cluster)) {
            Some(all) if self.root() => self.check(op, &all, &want()),
            None if !self.root() => {}
            Some(_) => self.fail(op, "gather_to_root returned Some on a rank other than 0"),
            None => self.fail(op, "gather_to_root returned None on rank 0"),
        }
    }

    /// After each case: every rank has drawn the same numbers, so it made the same
    /// calls. Collective.
    pub fn lockstep(&mut self) {
        self.cases += 1;
        let mine = [self.rng.0, self.cases as u64];
        let mut all = vec![0u64; 2 * self.cluster.size()];
        self.cluster
            .world()
            .all_gather_into(&mine[..], &mut all[..]);
        if all.chunks(2).any(|c| c != mine) {
            self.fail("lockstep", format_args!("the ranks diverged: {all:?}"));
        }
    }

    pub fn finish(self) {
        if self.root() {
            println!(
                "{}: {} cases on {} ranks in {:.2?} (seed {})",
                self.family,
                self.cases,
                self.cluster.size(),
                self.started.elapsed(),
                self.seed
            );
        }
    }
}

/// A distributed copy of `data` (the same on every rank): [`Blocks::even`] by
/// `from_fn`, or the given lengths by `from_local`.
pub fn distribute<T: Elem>(ctx: &Ctx, data: &[T], lens: Option<&[usize]>) -> DistArray<T> {
    match lens {
        None => ctx.ok(
            "DistArray::from_fn",
            DistArray::from_fn(ctx.cluster, data.len(), |i| data[i]),
        ),
        Some(lens) => {
            let mine = Blocks::from_lens(lens.iter().copied()).range(ctx.rank());
            let local = ctx.ok(
                "SharedArray::from_slice",
                SharedArray::from_slice(&data[mine]),
            );
            ctx.ok(
                "DistArray::from_local",
                DistArray::from_local(ctx.cluster, local),
            )
        }
    }
}

/// Rank 0's `root` data, or this rank's `junk` elsewhere, as a `SharedArray`.
pub fn on_root<T: Elem>(ctx: &Ctx, root: &[T], junk: &[T]) -> SharedArray<T> {
    let data = if ctx.root() { root } else { junk };
    ctx.ok("SharedArray::from_slice", SharedArray::from_slice(data))
}
