//! [`DistArray`]: a global array split into one block per rank, each block a
//! [`SharedArray`] that its rank's pool maps in place.

use std::ops::Range;

use bytemuck::Pod;
use mpi::traits::CommunicatorCollectives;

use super::blocks::Blocks;
use super::collective::{CallKind, Entry};
use super::rank::Cluster;
use super::transfer;
use crate::array::SharedArray;
use crate::error::Result;

/// A global array of `len` elements of which each rank holds one contiguous block,
/// in its own shared memory.
///
/// This is the main path for real jobs: the data is made (or read, for example from
/// a per-rank `.npy` file) where it will be computed on, each rank's local pool maps
/// its block in place ([`Cluster::map_dist_into`]), and nothing moves between ranks
/// unless you ask for it ([`DistArray::gather_to_root`]).
///
/// Every rank knows every block ([`DistArray::blocks`]), so any rank can tell which
/// rank holds a given global index. The constructors are collective: every rank
/// calls the same one with the same global length, and they check that it does
/// ([`crate::Error::RanksDisagree`] on every rank otherwise), so every rank's
/// `DistArray` describes the same split.
///
/// # Examples
///
/// ```no_run
/// use shmpool::{Cluster, DistArray};
///
/// let cluster = Cluster::init()?;
/// // 10 elements over 3 ranks: blocks 0..4, 4..7 and 7..10.
/// let mut xs = DistArray::from_fn(&cluster, 10, |i| i as u64)?;
/// cluster.for_each_dist_mut(&mut xs, |v: &mut u64| *v *= *v)?;
/// if let Some(all) = xs.gather_to_root(&cluster)? {
///     assert_eq!(all[9], 81);
/// }
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug)]
pub struct DistArray<T: Pod> {
    local: SharedArray<T>,
    blocks: Blocks,
    rank: usize,
}

impl<T: Pod> DistArray<T> {
    /// A distributed array of `len` zeroed elements, split [`Blocks::even`]ly; each
    /// rank allocates only its own block.
    ///
    /// # Errors
    /// On every rank: [`crate::Error::RanksDisagree`] when the ranks ask for
    /// different lengths (nothing is allocated); when any rank cannot allocate its
    /// block, [`crate::Error::Io`] on that rank and [`crate::Error::RankFailed`] on
    /// the others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let ys = DistArray::<f64>::zeroed(&cluster, 1_000_000)?;
    /// assert_eq!(ys.len(), 1_000_000);
    /// assert_eq!(ys.local().len(), ys.local_range().len()); // only this rank's block
    /// assert!(ys.local().iter().all(|&y| y == 0.0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed(cluster: &Cluster, len: usize) -> Result<Self> {
        let blocks = Blocks::even(len, cluster.size());
        cluster.enter(Entry::call(CallKind::DistZeroed).split(&blocks), Ok(()))?;
        let local = SharedArray::zeroed(blocks.range(cluster.rank()).len());
        Self::assemble(cluster, blocks, local)
    }

    /// A distributed array whose element at global index `i` is `f(i)`; each rank
    /// calls `f` for its own block only, in order.
    ///
    /// # Errors
    /// As for [`DistArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::from_fn(&cluster, 1000, |i| i as u32)?;
    /// let start = xs.local_range().start;
    /// assert!(xs.local().iter().enumerate().all(|(k, &x)| x as usize == start + k));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_fn(cluster: &Cluster, len: usize, f: impl FnMut(usize) -> T) -> Result<Self> {
        let blocks = Blocks::even(len, cluster.size());
        // Agreed before `f` runs: it is never called with another split's indices.
        cluster.enter(Entry::call(CallKind::DistFromFn).split(&blocks), Ok(()))?;
        let local = SharedArray::try_from_iter(blocks.range(cluster.rank()).map(f));
        Self::assemble(cluster, blocks, local)
    }

    /// The distributed array whose blocks are the arrays the ranks already hold, in
    /// rank order: rank 0's `local` first. Blocks may have any lengths, including
    /// zero. Collective: one small all-gather of the lengths.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray, SharedArray};
    ///
    /// let cluster = Cluster::init()?;
    /// // Rank r brings r + 1 elements, its part of the data.
    /// let mine = SharedArray::filled(cluster.rank() + 1, cluster.rank() as f32)?;
    /// let xs = DistArray::from_local(&cluster, mine)?;
    /// assert_eq!(xs.len(), cluster.size() * (cluster.size() + 1) / 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::RanksDisagree`] on every rank when some ranks are in another
    /// call.
    pub fn from_local(cluster: &Cluster, local: SharedArray<T>) -> Result<Self> {
        cluster.enter(Entry::call(CallKind::DistFromLocal), Ok(()))?;
        let mine = local.len() as u64;
        let mut lens = vec![0u64; cluster.size()];
        cluster.comm().all_gather_into(&mine, &mut lens[..]);
        let blocks = Blocks::from_lens(lens.into_iter().map(|n| n as usize));
        Ok(DistArray {
            local,
            blocks,
            rank: cluster.rank(),
        })
    }

    /// Scatters rank 0's `whole` array into a new distributed array, split
    /// [`Blocks::even`]ly (scatterv). `whole` is read only on rank 0; the other
    /// ranks may pass an empty array.
    ///
    /// # Errors
    /// [`crate::Error::Mpi`] on every rank for an array beyond MPI's `int` counts;
    /// allocation failures as for [`DistArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray, SharedArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let n = if cluster.is_root() { 1000 } else { 0 };
    /// let whole = SharedArray::try_from_iter((0..n).map(|i| i as f32))?;
    /// let xs = DistArray::scatter_from_root(&cluster, &whole)?;
    /// assert_eq!(xs.len(), 1000); // on every rank
    /// assert_eq!(xs.local()[0], xs.local_range().start as f32);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn scatter_from_root(cluster: &Cluster, whole: &SharedArray<T>) -> Result<Self> {
        let call = Entry::call(CallKind::ScatterFromRoot).root_lens(whole.len(), whole.len());
        let len = cluster.enter(call, Ok(()))?;
        // Refused before allocating: the same answer on every rank.
        Blocks::even(len, cluster.size()).mpi_counts(None)?;
        let blocks = Blocks::even(len, cluster.size());
        let local = SharedArray::zeroed(blocks.range(cluster.rank()).len());
        let mut dist = Self::assemble(cluster, blocks, local)?;
        dist.scatter(cluster, whole)?;
        Ok(dist)
    }

    /// Overwrites every block with its part of rank 0's `whole` (scatterv), in this
    /// array's memory: the way to refill a distributed array from rank 0 again
    /// and again without allocating. `whole` is read only on rank 0.
    ///
    /// # Errors
    /// On every rank: [`crate::Error::LengthMismatch`] when rank 0's `whole` is not
    /// as long as the distributed array; [`crate::Error::Mpi`] for an array beyond
    /// MPI's `int` counts.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray, SharedArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let n = 1000;
    /// let mut xs = DistArray::<u64>::zeroed(&cluster, n)?;
    /// for step in 0..3u64 {
    ///     // Rank 0 makes this step's input; the others pass an empty array.
    ///     let len = if cluster.is_root() { n } else { 0 };
    ///     let whole = SharedArray::filled(len, step)?;
    ///     xs.copy_from_root(&cluster, &whole)?; // into the same blocks each time
    ///     assert!(xs.local().iter().all(|&x| x == step));
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn copy_from_root(&mut self, cluster: &Cluster, whole: &SharedArray<T>) -> Result<()> {
        let call = Entry::call(CallKind::CopyFromRoot)
            .split(&self.blocks)
            .root_lens(whole.len(), self.len());
        cluster.enter(call, Ok(()))?;
        self.scatter(cluster, whole)
    }

    /// The scatterv itself, once every rank knows rank 0's `whole` fits this array;
    /// `whole` is read on rank 0 only.
    fn scatter(&mut self, cluster: &Cluster, whole: &SharedArray<T>) -> Result<()> {
        if cluster.is_root() {
            transfer::scatter_blocks(cluster.comm(), &self.blocks, Some(&whole[..]), &mut [])?;
            let mine = self.local_range();
            self.local.copy_from_slice(&whole[mine]);
        } else {
            transfer::scatter_blocks(cluster.comm(), &self.blocks, None, &mut self.local)?;
        }
        Ok(())
    }

    /// Gathers every block into one new array on rank 0 (gatherv), which returns
    /// it; the other ranks return `None`. The inverse of
    /// [`DistArray::scatter_from_root`]. Collective.
    ///
    /// # Errors
    /// [`crate::Error::Mpi`] on every rank for an array beyond MPI's `int` counts;
    /// on every rank when rank 0 cannot allocate the result
    /// ([`crate::Error::Io`] there, [`crate::Error::RankFailed`] elsewhere).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::from_fn(&cluster, 100, |i| i as i32)?;
    /// match xs.gather_to_root(&cluster)? {
    ///     Some(all) => assert_eq!(all.to_vec(), (0..100).collect::<Vec<i32>>()),
    ///     None => assert!(!cluster.is_root()),
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn gather_to_root(&self, cluster: &Cluster) -> Result<Option<SharedArray<T>>> {
        cluster.enter(
            Entry::call(CallKind::GatherToRoot).split(&self.blocks),
            Ok(()),
        )?;
        // Refused before allocating: the same answer on every rank.
        self.blocks.mpi_counts(None)?;
        let mut whole = cluster.agree(if cluster.is_root() {
            SharedArray::zeroed(self.len()).map(Some)
        } else {
            Ok(None)
        })?;
        self.gather_into(cluster, whole.as_mut())?;
        Ok(whole)
    }

    /// Gathers every block into rank 0's existing `whole` array (gatherv), without
    /// allocating. `whole` is written only on rank 0; the other ranks may pass an
    /// empty array. Collective.
    ///
    /// # Errors
    /// On every rank: [`crate::Error::LengthMismatch`] when rank 0's `whole` is not
    /// as long as the distributed array; [`crate::Error::Mpi`] for an array beyond
    /// MPI's `int` counts.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray, SharedArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let mut xs = DistArray::from_fn(&cluster, 100, |i| i as f64)?;
    /// let mut whole = SharedArray::zeroed(if cluster.is_root() { 100 } else { 0 })?;
    /// for _ in 0..3 {
    ///     cluster.for_each_dist_mut(&mut xs, |v: &mut f64| *v *= 2.0)?;
    ///     xs.gather_to_root_into(&cluster, &mut whole)?; // no allocation per step
    /// }
    /// if cluster.is_root() {
    ///     assert_eq!(whole[1], 8.0);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn gather_to_root_into(&self, cluster: &Cluster, whole: &mut SharedArray<T>) -> Result<()> {
        let call = Entry::call(CallKind::GatherToRootInto)
            .split(&self.blocks)
            .root_lens(self.len(), whole.len());
        cluster.enter(call, Ok(()))?;
        self.gather_into(cluster, Some(whole))
    }

    /// The gatherv itself; `whole` is used on rank 0 only.
    fn gather_into(&self, cluster: &Cluster, whole: Option<&mut SharedArray<T>>) -> Result<()> {
        match whole {
            Some(whole) if cluster.is_root() => {
                whole[self.local_range()].copy_from_slice(&self.local);
                transfer::gather_blocks(cluster.comm(), &self.blocks, &[], Some(&mut whole[..]))
            }
            _ => transfer::gather_blocks(cluster.comm(), &self.blocks, &self.local, None),
        }
    }

    /// The global length: every rank's block together.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::<u8>::zeroed(&cluster, 10)?;
    /// assert_eq!(xs.len(), 10); // the global length, on every rank
    /// assert!(xs.local().len() <= xs.len());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the global array has no elements (some blocks can be empty even when
    /// it is not).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// assert!(DistArray::<u8>::zeroed(&cluster, 0)?.is_empty());
    /// let one = DistArray::<u8>::zeroed(&cluster, 1)?;
    /// assert!(!one.is_empty()); // even on the ranks whose block is empty
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// How the global array is split over the ranks.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Blocks, Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::<f32>::zeroed(&cluster, 10)?;
    /// assert_eq!(xs.blocks(), &Blocks::even(10, cluster.size()));
    /// // Every rank knows which rank holds a global index.
    /// let holder = xs.blocks().ranges().position(|r| r.contains(&9)).unwrap();
    /// if holder == cluster.rank() {
    ///     assert_eq!(xs.local_range().end, 10);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    /// The global indices of this rank's block.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::<u64>::zeroed(&cluster, 10)?;
    /// assert_eq!(xs.local_range(), xs.blocks().range(cluster.rank()));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn local_range(&self) -> Range<usize> {
        self.blocks.range(self.rank)
    }

    /// This rank's block, as a [`SharedArray`]: `local()[i]` is global element
    /// `local_range().start + i`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::from_fn(&cluster, 10, |i| i as u64)?;
    /// let mine: u64 = xs.local().iter().sum();
    /// assert_eq!(mine, xs.local_range().map(|i| i as u64).sum::<u64>());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn local(&self) -> &SharedArray<T> {
        &self.local
    }

    /// This rank's block, writable.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let mut xs = DistArray::<u32>::zeroed(&cluster, 10)?;
    /// let rank = cluster.rank() as u32;
    /// xs.local_mut().fill(rank); // each rank writes its own block
    /// assert!(xs.local().iter().all(|&x| x == rank));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn local_mut(&mut self) -> &mut SharedArray<T> {
        &mut self.local
    }

    /// This rank's block, taking the array apart.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let xs = DistArray::from_fn(&cluster, 10, |i| i as f64)?;
    /// let range = xs.local_range();
    /// let mine = xs.into_local(); // a plain SharedArray now
    /// assert_eq!(mine.len(), range.len());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn into_local(self) -> SharedArray<T> {
        self.local
    }

    /// Agrees on the local allocation, then puts the array together.
    fn assemble(cluster: &Cluster, blocks: Blocks, local: Result<SharedArray<T>>) -> Result<Self> {
        debug_assert_eq!(blocks.ranks(), cluster.size());
        let local = cluster.agree(local)?;
        Ok(DistArray {
            local,
            blocks,
            rank: cluster.rank(),
        })
    }
}
