//! Bulk array maps over ranks: over a [`DistArray`] in place, or over rank 0's
//! arrays by scatterv, local maps, and gatherv.

use bytemuck::Pod;

use super::blocks::Blocks;
use super::collective::{CallKind, Entry};
use super::dist_array::DistArray;
use super::rank::Cluster;
use super::transfer;
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::pool::Bulk;

impl Cluster {
    /// `y[i] = f(x[i])` over arrays that live on rank 0: rank 0 scatters uneven
    /// blocks of `x` (scatterv), every rank maps its block with its local pool, and
    /// the results are gathered (gatherv) into rank 0's `y`. Rank 0 maps its own
    /// block in place in `x` and `y`, without copying it.
    ///
    /// `x` and `y` are read only on rank 0, as MPI's send buffers are; the other
    /// ranks may pass empty arrays, and theirs are left untouched. The blocks are
    /// [`Blocks::even`] over the ranks. `f` follows the rules of
    /// [`crate::Pool::map_into`]: a non-capturing closure or `fn` item.
    ///
    /// Moving the data costs more than a memory-bound kernel such as `sqrt` does:
    /// this path pays off for kernels that compute for longer than the copy takes.
    /// Data that stays distributed between steps belongs in a [`DistArray`]. The
    /// other ranks keep their block buffers for the next call
    /// ([`Cluster::free_scratch`]).
    ///
    /// # Errors
    /// On every rank: [`Error::LengthMismatch`] when rank 0's arrays differ in
    /// length; [`Error::RanksDisagree`] when other ranks are in another call; [`Error::Mpi`] for an array beyond MPI's `int` counts (2^31 - 1
    /// elements); when a rank's local map fails, that rank's error there and
    /// [`Error::RankFailed`] on the others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, SharedArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let n = if cluster.is_root() { 1_000_003 } else { 0 };
    /// let xs = SharedArray::try_from_iter((0..n).map(|i| i as f64))?;
    /// let mut ys = SharedArray::zeroed(n)?;
    /// cluster.map_into(&xs, &mut ys, |v: f64| v.sqrt())?;
    /// if cluster.is_root() {
    ///     assert_eq!(ys[144], 12.0);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_into<T, U, F>(&self, x: &SharedArray<T>, y: &mut SharedArray<U>, f: F) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(T) -> U + Copy,
    {
        let call = Entry::call(CallKind::MapInto).root_lens(x.len(), y.len());
        self.scatter_map_gather(call, x, y, |bulk, x, y| bulk.map_into(x, y, f))
    }

    /// [`Cluster::map_into`] with a chunk kernel: `f(&x[chunk], &mut y[chunk])`, as
    /// in [`crate::Bulk::map_chunks_into`].
    ///
    /// The kernel may read its output: rank 0 scatters its `y` as well as its `x`,
    /// so every rank's kernel sees rank 0's values of `y` for its block, as a local
    /// map over rank 0's arrays would. That is one more scatterv than
    /// [`Cluster::map_into`] makes, whose elementwise kernel cannot read `y`.
    ///
    /// # Errors
    /// As for [`Cluster::map_into`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, SharedArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let n = if cluster.is_root() { 1000 } else { 0 };
    /// // y += x, on rank 0's y: the kernel reads its output.
    /// let xs = SharedArray::filled(n, 1.0f64)?;
    /// let mut ys = SharedArray::try_from_iter((0..n).map(|i| i as f64))?;
    /// cluster.map_chunks_into(&xs, &mut ys, |xs: &[f64], ys: &mut [f64]| {
    ///     for (y, x) in ys.iter_mut().zip(xs) {
    ///         *y += x;
    ///     }
    /// })?;
    /// if cluster.is_root() {
    ///     assert_eq!(ys[999], 1000.0);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_chunks_into<T, U, F>(
        &self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(&[T], &mut [U]) + Copy,
    {
        let call = Entry::call(CallKind::MapChunksInto).root_lens(x.len(), y.len());
        self.scatter_map_gather(call, x, y, |bulk, x, y| bulk.map_chunks_into(x, y, f))
    }

    /// `y[i] = f(x[i])` over distributed arrays: each rank maps its own block with
    /// its local pool, in place. No data moves between ranks; the only MPI traffic is
    /// one small reduction that agrees on the outcome.
    ///
    /// # Errors
    /// On every rank:
    /// * when this rank's `x` and `y` differ, [`Error::LengthMismatch`] (their
    ///   global lengths differ) or [`Error::Mpi`] (they are split differently)
    ///   there, and [`Error::RankFailed`] on the others;
    /// * [`Error::RanksDisagree`] when the ranks pass arrays of different global
    ///   lengths or splits, or are in different calls;
    /// * when a rank's map fails, that rank's error there and
    ///   [`Error::RankFailed`] on the others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::from_fn(&cluster, 1 << 26, |i| i as f64)?;
    /// let mut ys = DistArray::zeroed(&cluster, xs.len())?;
    /// cluster.map_dist_into(&xs, &mut ys, |v: f64| v.sqrt())?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_dist_into<T, U, F>(&self, x: &DistArray<T>, y: &mut DistArray<U>, f: F) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(T) -> U + Copy,
    {
        let call = Entry::call(CallKind::MapDistInto).split(x.blocks());
        self.enter(call, same_blocks(x.blocks(), y.blocks()))?;
        let _span = tracing::debug_span!("shmpool.cluster.map_dist", len = x.len()).entered();
        let start = x.local_range().start;
        self.agree_on_block(self.pool().map_into(x.local(), y.local_mut(), f), 0, start)
    }

    /// [`Cluster::map_dist_into`] with a chunk kernel, as in
    /// [`crate::Bulk::map_chunks_into`].
    ///
    /// # Errors
    /// As for [`Cluster::map_dist_into`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::from_fn(&cluster, 1 << 20, |i| i as f32)?;
    /// let mut ys = DistArray::zeroed(&cluster, xs.len())?;
    /// cluster.map_dist_chunks_into(&xs, &mut ys, |xs: &[f32], ys: &mut [f32]| {
    ///     for (y, x) in ys.iter_mut().zip(xs) {
    ///         *y = x * 0.5;
    ///     }
    /// })?;
    /// assert_eq!(ys.local()[0], xs.local()[0] * 0.5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_dist_chunks_into<T, U, F>(
        &self,
        x: &DistArray<T>,
        y: &mut DistArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(&[T], &mut [U]) + Copy,
    {
        let call = Entry::call(CallKind::MapDistChunksInto).split(x.blocks());
        self.enter(call, same_blocks(x.blocks(), y.blocks()))?;
        let _span = tracing::debug_span!("shmpool.cluster.map_dist", len = x.len()).entered();
        let start = x.local_range().start;
        self.agree_on_block(
            self.pool()
                .bulk()
                .map_chunks_into(x.local(), y.local_mut(), f),
            0,
            start,
        )
    }

    /// `f(&mut x[i])` for every element of a distributed array, each rank on its own
    /// block, in place.
    ///
    /// # Errors
    /// On every rank: [`Error::RanksDisagree`] when the ranks pass arrays of
    /// different global lengths or splits, or are in different calls; when a
    /// rank's map fails, that rank's error there and [`Error::RankFailed`] on the
    /// others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let mut xs = DistArray::from_fn(&cluster, 1000, |i| i as u64)?;
    /// cluster.for_each_dist_mut(&mut xs, |v: &mut u64| *v += 1)?;
    /// assert_eq!(xs.local()[0], xs.local_range().start as u64 + 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_dist_mut<T, F>(&self, x: &mut DistArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: Fn(&mut T) + Copy,
    {
        self.enter(
            Entry::call(CallKind::ForEachDistMut).split(x.blocks()),
            Ok(()),
        )?;
        let _span = tracing::debug_span!("shmpool.cluster.for_each_dist", len = x.len()).entered();
        let start = x.local_range().start;
        self.agree_on_block(self.pool().bulk().for_each_mut(x.local_mut(), f), 0, start)
    }

    /// The root-data path shared by `map_into` and `map_chunks_into`: the entry
    /// vote (which also tells every rank rank 0's length), scatter, map locally,
    /// agree on the outcome, gather. A chunk kernel may read its output, so for
    /// [`CallKind::MapChunksInto`] rank 0's `y` is scattered too: every rank's
    /// kernel sees rank 0's values, as a local map would.
    fn scatter_map_gather<T: Pod, U: Pod>(
        &self,
        call: Entry<'_>,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        map: impl Fn(Bulk<'_>, &SharedArray<T>, &mut SharedArray<U>) -> Result<()>,
    ) -> Result<()> {
        let reads_output = call.kind == CallKind::MapChunksInto;
        let len = self.enter(call, Ok(()))?;
        let blocks = Blocks::even(len, self.size());
        let _span = tracing::debug_span!("shmpool.cluster.map_into", len).entered();
        blocks.mpi_counts(None)?; // the same answer on every rank
        let mine = blocks.range(self.rank());
        // Every rank makes the same collective calls in the same order: agree on
        // the allocations, scatter, agree on the maps, gather.
        let local = self.agree(if self.is_root() {
            Ok(None)
        } else {
            self.scratch_arrays::<T, U>(mine.len()).map(Some)
        })?;
        let comm = self.comm();
        match local {
            None => {
                transfer::scatter_blocks::<T>(comm, &blocks, Some(&x[..]), &mut [])?;
                if reads_output {
                    transfer::scatter_blocks::<U>(comm, &blocks, Some(&y[..]), &mut [])?;
                }
                self.agree(map(self.pool().bulk().range(mine), x, y))?;
                transfer::gather_blocks::<U>(comm, &blocks, &[], Some(&mut y[..]))
            }
            Some((mut local_x, mut local_y)) => {
                transfer::scatter_blocks(comm, &blocks, None, &mut local_x)?;
                if reads_output {
                    transfer::scatter_blocks(comm, &blocks, None, &mut local_y)?;
                }
                let outcome = map(self.pool().bulk(), &local_x, &mut local_y);
                self.agree_on_block(outcome, 0, mine.start)?;
                transfer::gather_blocks(comm, &blocks, &local_y, None)
            }
        }
    }
}

/// Two distributed arrays must split the same length the same way.
pub(super) fn same_blocks(x: &Blocks, y: &Blocks) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::LengthMismatch {
            input: x.len(),
            output: y.len(),
        });
    }
    if x != y {
        return Err(Error::Mpi(format!(
            "the arrays split {} elements differently over the ranks: {:?} and {:?}",
            x.len(),
            x.ranges().collect::<Vec<_>>(),
            y.ranges().collect::<Vec<_>>(),
        )));
    }
    Ok(())
}
