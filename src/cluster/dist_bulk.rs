//! Deterministic reductions over distributed arrays: each rank reduces its own
//! block with its pool (bit-identical for a given block and chunk length, see
//! `src/pool/reduce.rs`), then every rank gathers every rank's partial
//! (all-gather) and folds them **in rank order**, 0, 1, 2, ... The result is
//! therefore bit-identical for a given split, whatever MPI does inside its own
//! reductions, and the same on every rank.
//!
//! `MPI_Allreduce` with `MPI_SUM` would be shorter, but MPI leaves the order of a
//! floating-point sum to the implementation (and to the network's topology): it
//! can differ between runs, libraries and rank placements. The partials are a
//! few bytes per rank, so gathering them all costs no more than a small
//! all-reduce.

use std::marker::PhantomData;
use std::time::Duration;

use bytemuck::Pod;
use mpi::Count;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

use super::blocks::Blocks;
use super::collective::{CallKind, Entry, digest};
use super::dist_inputs::DistInputs;
use super::rank::Cluster;
use crate::error::{Error, Result};
use crate::kernel::{Inputs, KernelEnv, KernelFn, Params};
use crate::pool::Bulk;

/// Reductions (and stencils) over distributed arrays, made by [`Cluster::bulk`]:
/// the distributed counterpart of [`Bulk`], with the same options and the same
/// kernel environments (`E = ()`, or [`Params<P>`] after [`DistBulk::with`]). Every
/// call is collective.
///
/// **Determinism.** Each rank reduces its block with its pool, which is
/// bit-identical for a given block and chunk length (the default chunk length
/// depends only on the block's length). The ranks' partials are then combined in
/// rank order on every rank. So a result is bit-identical from run to run **for a
/// given split** (the same global length over the same number of ranks, and the
/// same chunk length), whatever the number of workers per rank, and it is the same
/// on every rank. Another number of ranks splits the array differently, and a
/// floating-point sum may then differ in its last bits.
///
/// # Examples
///
/// ```no_run
/// use shmpool::{Cluster, DistArray};
///
/// let cluster = Cluster::init()?;
/// let x = DistArray::from_fn(&cluster, 1 << 20, |i| i as f64)?;
/// let total = cluster.bulk().sum(&x)?; // the same bits on every rank
/// assert_eq!(total, ((1u64 << 20) * ((1 << 20) - 1) / 2) as f64);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[must_use = "a DistBulk does nothing until one of its operations is called"]
pub struct DistBulk<'c, E: KernelEnv = ()> {
    pub(super) cluster: &'c Cluster,
    chunk_len: Option<usize>,
    chunk_timeout: Option<Duration>,
    retries: u32,
    /// The kernels' parameters, handed to each rank's local operation.
    params: E::Params,
    _env: PhantomData<E>,
}

// `Copy`, as `Bulk` is: one can run several operations with the same options.
impl<E: KernelEnv> Clone for DistBulk<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: KernelEnv> Copy for DistBulk<'_, E> {}

impl<E: KernelEnv> std::fmt::Debug for DistBulk<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistBulk")
            .field("chunk_len", &self.chunk_len)
            .field("chunk_timeout", &self.chunk_timeout)
            .field("retries", &self.retries)
            .field("params_bytes", &size_of::<E::Params>())
            .finish()
    }
}

impl Cluster {
    /// Bulk operations over distributed arrays: reductions ([`DistBulk::sum`],
    /// [`DistBulk::map_reduce`], ...) and row stencils
    /// ([`DistBulk::stencil_rows_into`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 1000, |i| (i as f64).sin())?;
    /// let hottest = cluster.bulk().argmax(&x)?; // a global index, on every rank
    /// assert!(hottest.is_some_and(|i| i < 1000));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bulk(&self) -> DistBulk<'_> {
        DistBulk {
            cluster: self,
            chunk_len: None,
            chunk_timeout: None,
            retries: 0,
            params: (),
            _env: PhantomData,
        }
    }
}

impl<'c> DistBulk<'c> {
    /// Hands `params` to every kernel call by reference, as [`Bulk::with`]: the
    /// kernels of [`DistBulk::map_reduce`] and [`DistBulk::fold_reduce`] then take
    /// `&P` first.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 100, |i| i as f64)?;
    /// let mean = cluster.bulk().sum(&x)? / x.len() as f64;
    /// let ss = cluster.bulk().with(mean).map_reduce(
    ///     &x,
    ///     0.0,
    ///     |m: &f64, v: f64| (v - m) * (v - m),
    ///     |a: f64, b: f64| a + b,
    /// )?;
    /// assert_eq!(ss, 83_325.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with<P: Pod>(self, params: P) -> DistBulk<'c, Params<P>> {
        DistBulk {
            cluster: self.cluster,
            chunk_len: self.chunk_len,
            chunk_timeout: self.chunk_timeout,
            retries: self.retries,
            params,
            _env: PhantomData,
        }
    }
}

impl<'c, E: KernelEnv> DistBulk<'c, E> {
    /// Elements per chunk of each rank's local reduction ([`Bulk::chunk_len`]).
    /// A reduction's result depends on it: every rank must pass the same.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 1 << 20, |i| 1.0 / (i + 1) as f64)?;
    /// let a = cluster.bulk().chunk_len(4096).sum(&x)?;
    /// let b = cluster.bulk().chunk_len(4096).sum(&x)?;
    /// assert_eq!(a.to_bits(), b.to_bits());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn chunk_len(mut self, n: usize) -> Self {
        self.chunk_len = Some(n);
        self
    }

    /// Kill a worker whose chunk runs longer than `d` ([`Bulk::chunk_timeout`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 1000, |i| i as u64)?;
    /// let total = cluster.bulk().chunk_timeout(Duration::from_secs(60)).sum(&x)?;
    /// assert_eq!(total, 999 * 1000 / 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn chunk_timeout(mut self, d: Duration) -> Self {
        self.chunk_timeout = Some(d);
        self
    }

    /// Re-run a chunk whose worker died up to `n` times ([`Bulk::retries`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 1000, |i| i as u64)?;
    /// assert_eq!(cluster.bulk().retries(2).max(&x)?, Some(999));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// The local pool's bulk operations, with these options and parameters.
    pub(super) fn local(&self) -> Bulk<'c, E> {
        let mut bulk = self.cluster.pool().bulk().retries(self.retries);
        if let Some(n) = self.chunk_len {
            bulk = bulk.chunk_len(n);
        }
        if let Some(d) = self.chunk_timeout {
            bulk = bulk.chunk_timeout(d);
        }
        bulk.in_env(self.params)
    }

    /// `combine` over `map(x)` (with parameters, `map(p, x)`) of every element of
    /// distributed arrays, starting from `identity`: [`Bulk::map_reduce`] on each
    /// rank's block, then the ranks' partials combined in rank order (ranks with
    /// empty blocks left out). `inputs` is `&x` or a tuple of up to three
    /// distributed arrays split alike. `identity` must be an identity of `combine`.
    ///
    /// # Errors
    /// On every rank: [`Error::RanksDisagree`] when the ranks are in different calls
    /// or pass arrays of different lengths or splits; when this rank's input arrays
    /// are split differently, [`Error::LengthMismatch`] or [`Error::Mpi`] here and
    /// [`Error::RankFailed`] on the others; when a rank's local reduction fails (a
    /// kernel panic, a worker's death), its error there and
    /// [`Error::RankFailed`] on the others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let a = DistArray::from_fn(&cluster, 1000, |i| i as f64)?;
    /// let b = DistArray::from_fn(&cluster, 1000, |_| 2.0f64)?;
    /// // The largest |a - b|.
    /// let worst = cluster.bulk().map_reduce(
    ///     (&a, &b),
    ///     0.0,
    ///     |(a, b): (f64, f64)| (a - b).abs(),
    ///     f64::max,
    /// )?;
    /// assert_eq!(worst, 997.0);
    /// // With a parameter: how many elements lie above a threshold.
    /// let above = cluster.bulk().with(4.5f64).map_reduce(
    ///     &a,
    ///     0u64,
    ///     |t: &f64, v: f64| u64::from(v > *t),
    ///     |x: u64, y: u64| x + y,
    /// )?;
    /// assert_eq!(above, 995);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_reduce<I, A, F, C>(self, inputs: I, identity: A, map: F, combine: C) -> Result<A>
    where
        I: DistInputs,
        A: Pod,
        F: KernelFn<E, (<I::Local as Inputs>::Item,), Output = A>,
        C: Fn(A, A) -> A + Copy,
    {
        let local = inputs.local();
        let total = self.reduce(
            Entry::call(CallKind::DistMapReduce).args(digest(&[size_of::<A>() as u64])),
            inputs.blocks(),
            inputs.check(),
            1,
            |bulk| Ok(vec![bulk.map_reduce(local, identity, map, combine)?]),
            |l, r| l[0] = combine(l[0], r[0]),
        )?;
        Ok(total.map_or(identity, |t| t[0]))
    }

    /// A reduction whose kernel folds a whole chunk at a time into an accumulator
    /// ([`Bulk::fold_reduce`] on each rank's block), the partials combined by
    /// `combine` in chunk order within a rank and then in rank order. `combine`
    /// runs only in the ranks' own processes, so it may capture.
    ///
    /// # Errors
    /// As for [`DistBulk::map_reduce`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 700, |i| (i % 7) as u32)?;
    /// let counts = cluster.bulk().fold_reduce(
    ///     &x,
    ///     [0u64; 7],
    ///     |acc: &mut [u64; 7], xs: &[u32]| xs.iter().for_each(|&v| acc[v as usize] += 1),
    ///     |mut a, b| {
    ///         a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    ///         a
    ///     },
    /// )?;
    /// assert_eq!(counts, [100; 7]);
    /// // How many elements are multiples of a step known at run time.
    /// let multiples = cluster.bulk().with(7u32).fold_reduce(
    ///     &x,
    ///     0u64,
    ///     |k: &u32, acc: &mut u64, xs: &[u32]| *acc += xs.iter().filter(|&&v| v % k == 0).count() as u64,
    ///     |a, b| a + b,
    /// )?;
    /// assert_eq!(multiples, 100);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn fold_reduce<I, A, F, C>(
        self,
        inputs: I,
        identity: A,
        fold: F,
        mut combine: C,
    ) -> Result<A>
    where
        I: DistInputs,
        A: Pod,
        F: for<'a> KernelFn<E, (&'a mut A, <I::Local as Inputs>::Slices<'a>), Output = ()>,
        C: FnMut(A, A) -> A,
    {
        let local = inputs.local();
        let parts = self.partials(
            Entry::call(CallKind::DistFoldReduce).args(digest(&[size_of::<A>() as u64])),
            inputs.blocks(),
            inputs.check(),
            1,
            |bulk| {
                Ok(vec![bulk.fold_reduce(
                    local,
                    identity,
                    fold,
                    &mut combine,
                )?])
            },
        )?;
        Ok(fold_in_rank_order(parts, identity, combine))
    }

    /// The steps of every distributed reduction: the entry vote (with `check`,
    /// this rank's own checks), the local reduction of this rank's block into
    /// `width` accumulators (skipped for an empty block), agreement on its
    /// outcome, an all-gather of every rank's partial, and a fold of the partials
    /// of the ranks with non-empty blocks in rank order. Returns the folded
    /// accumulators, or `None` when every block is empty.
    pub(super) fn reduce<A: Pod>(
        &self,
        entry: Entry<'_>,
        blocks: &Blocks,
        check: Result<()>,
        width: usize,
        local: impl FnOnce(Bulk<'c, E>) -> Result<Vec<A>>,
        mut combine: impl FnMut(&mut [A], &[A]),
    ) -> Result<Option<Vec<A>>> {
        let parts = self.partials(entry, blocks, check, width, local)?;
        let mut parts = parts.into_iter();
        let Some(mut acc) = parts.next() else {
            return Ok(None);
        };
        for part in parts {
            combine(&mut acc, &part);
        }
        Ok(Some(acc))
    }

    /// Every non-empty rank's partial (`width` accumulators), in rank order, on
    /// every rank: the steps of [`DistBulk::reduce`] before the fold.
    pub(super) fn partials<A: Pod>(
        &self,
        entry: Entry<'_>,
        blocks: &Blocks,
        check: Result<()>,
        width: usize,
        local: impl FnOnce(Bulk<'c, E>) -> Result<Vec<A>>,
    ) -> Result<Vec<Vec<A>>> {
        debug_assert!(width > 0);
        let cluster = self.cluster;
        let kind = entry.kind;
        cluster.enter(entry.split(blocks), check)?;
        let _span = tracing::debug_span!(
            "shmpool.cluster.reduce",
            call = kind.name(),
            len = blocks.len()
        )
        .entered();
        let block = blocks.range(cluster.rank());
        let mine = if block.is_empty() {
            Ok(vec![A::zeroed(); width])
        } else {
            local(self.local())
        };
        let mine = cluster.agree_on_block(mine, 0, block.start)?;
        debug_assert_eq!(mine.len(), width);
        let all = all_gather(cluster.comm(), &mine)?;
        Ok(all
            .chunks_exact(width)
            .zip(blocks.ranges())
            .filter(|(_, range)| !range.is_empty())
            .map(|(part, _)| part.to_vec())
            .collect())
    }
}

/// The single accumulators of the ranks' partials folded by `combine` in rank
/// order; `identity` when there are none.
fn fold_in_rank_order<A: Pod>(
    parts: Vec<Vec<A>>,
    identity: A,
    combine: impl FnMut(A, A) -> A,
) -> A {
    parts
        .into_iter()
        .map(|p| p[0])
        .reduce(combine)
        .unwrap_or(identity)
}

/// Every rank's `mine` (the same length on every rank), in rank order, on every
/// rank: one all-gather of its bytes over the calls' communicator.
///
/// # Errors
/// [`Error::Mpi`] when the gathered bytes exceed MPI's `int` counts; the same on
/// every rank, as every rank gathers the same number of bytes.
fn all_gather<A: Pod>(comm: &SimpleCommunicator, mine: &[A]) -> Result<Vec<A>> {
    let ranks = comm.size() as usize;
    let mut all = vec![A::zeroed(); mine.len() * ranks];
    if size_of::<A>() == 0 || mine.is_empty() {
        return Ok(all); // nothing to move
    }
    let total = size_of_val(mine) * ranks;
    if Count::try_from(total).is_err() {
        return Err(Error::Mpi(format!(
            "gathering {total} bytes of partial results is beyond MPI's int counts"
        )));
    }
    comm.all_gather_into(
        bytemuck::cast_slice::<A, u8>(mine),
        bytemuck::cast_slice_mut::<A, u8>(&mut all[..]),
    );
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::fold_in_rank_order;

    #[test]
    fn partials_fold_left_to_right_in_rank_order() {
        // (((a b) c) d): a left fold, not a tree.
        let parts = vec![vec![1.0f64], vec![1e100], vec![-1e100], vec![3.0]];
        assert_eq!(fold_in_rank_order(parts, 0.0, |a, b| a + b), 3.0);
        assert_eq!(fold_in_rank_order(Vec::new(), 7u32, |a, b| a + b), 7);
    }
}
