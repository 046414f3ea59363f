//! Block decomposition: which contiguous range of a global array each rank holds.

use std::ops::Range;

use mpi::Count;

use crate::error::{Error, Result};

/// How `len` elements are split over the ranks of a [`crate::Cluster`]: one
/// contiguous block per rank, in rank order, covering `0..len` with no gap and no
/// overlap.
///
/// [`Blocks::even`] is the split every shmpool call makes unless told otherwise:
/// each rank gets `len / ranks` elements and the first `len % ranks` ranks one more,
/// so block lengths differ by at most one. [`Blocks::from_lens`] describes any other
/// split, such as the blocks of a [`crate::DistArray`] made from data the ranks
/// already held.
///
/// # Examples
///
/// ```
/// use shmpool::Blocks;
///
/// let blocks = Blocks::even(10, 3);
/// assert_eq!(blocks.range(0), 0..4);
/// assert_eq!(blocks.range(1), 4..7);
/// assert_eq!(blocks.range(2), 7..10);
/// assert_eq!(blocks.len(), 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocks {
    /// `ranks + 1` offsets: block `r` is `starts[r]..starts[r + 1]`.
    starts: Vec<usize>,
}

impl Blocks {
    /// `len` elements over `ranks` ranks, block lengths differing by at most one.
    ///
    /// # Panics
    /// If `ranks` is zero (an MPI communicator always has at least one rank).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::Blocks;
    ///
    /// let blocks = Blocks::even(11, 4);
    /// let lens: Vec<usize> = blocks.ranges().map(|r| r.len()).collect();
    /// assert_eq!(lens, [3, 3, 3, 2]); // the first 11 % 4 ranks get one more
    /// ```
    pub fn even(len: usize, ranks: usize) -> Blocks {
        assert!(ranks > 0, "a split needs at least one rank");
        let (base, extra) = (len / ranks, len % ranks);
        Blocks::from_lens((0..ranks).map(|r| base + usize::from(r < extra)))
    }

    /// Blocks of the given lengths, in rank order.
    ///
    /// # Panics
    /// If the lengths add up to more than `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::Blocks;
    ///
    /// let blocks = Blocks::from_lens([3, 0, 5]);
    /// assert_eq!(blocks.range(1), 3..3); // rank 1 holds nothing
    /// assert_eq!(blocks.range(2), 3..8);
    /// ```
    pub fn from_lens(lens: impl IntoIterator<Item = usize>) -> Blocks {
        let mut starts = vec![0];
        let mut end = 0usize;
        for len in lens {
            end = end.checked_add(len).expect("block lengths overflow usize");
            starts.push(end);
        }
        Blocks { starts }
    }

    /// The number of elements in all blocks together.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmpool::Blocks::from_lens([3, 0, 5]).len(), 8);
    /// ```
    pub fn len(&self) -> usize {
        *self.starts.last().expect("starts is never empty")
    }

    /// Whether there are no elements at all.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::Blocks;
    ///
    /// assert!(Blocks::even(0, 4).is_empty());
    /// assert!(!Blocks::from_lens([0, 1]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of ranks (blocks).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmpool::Blocks::even(2, 5).ranks(), 5); // some blocks may be empty
    /// ```
    pub fn ranks(&self) -> usize {
        self.starts.len() - 1
    }

    /// The global index range that `rank` holds.
    ///
    /// # Panics
    /// If `rank` is not below [`Blocks::ranks`].
    ///
    /// # Examples
    ///
    /// ```
    /// let blocks = shmpool::Blocks::even(10, 3);
    /// assert_eq!(blocks.range(1), 4..7);
    /// // Which rank holds global index 8?
    /// assert_eq!((0..blocks.ranks()).find(|&r| blocks.range(r).contains(&8)), Some(2));
    /// ```
    pub fn range(&self, rank: usize) -> Range<usize> {
        self.starts[rank]..self.starts[rank + 1]
    }

    /// The ranges of all ranks, in rank order.
    ///
    /// # Examples
    ///
    /// ```
    /// let blocks = shmpool::Blocks::even(10, 3);
    /// assert_eq!(blocks.ranges().collect::<Vec<_>>(), [0..4, 4..7, 7..10]);
    /// ```
    pub fn ranges(&self) -> impl ExactSizeIterator<Item = Range<usize>> + '_ {
        self.starts.windows(2).map(|w| w[0]..w[1])
    }

    /// A 64-bit fingerprint of the split (FNV-1a over the block boundaries), for
    /// the ranks to compare in one reduction: equal splits give equal digests.
    pub(crate) fn digest(&self) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for &start in &self.starts {
            for byte in (start as u64).to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        hash
    }

    /// MPI's counts and displacements for these blocks, in elements. When
    /// `except` names a rank, its count is zero: that rank (the root) keeps its
    /// own block where it is, so scatterv and gatherv do not copy it.
    ///
    /// # Errors
    /// [`Error::Mpi`] when the total exceeds MPI's `int` counts (2^31 - 1
    /// elements): scatterv and gatherv cannot describe such an array.
    pub(crate) fn mpi_counts(&self, except: Option<usize>) -> Result<(Vec<Count>, Vec<Count>)> {
        let to_count = |n: usize| {
            Count::try_from(n).map_err(|_| {
                Error::Mpi(format!(
                    "an array of {} elements is beyond MPI's int counts (at most {}): \
                     scatter or gather it in parts, or keep it distributed (DistArray)",
                    self.len(),
                    Count::MAX
                ))
            })
        };
        to_count(self.len())?;
        let counts = self
            .ranges()
            .enumerate()
            .map(|(r, range)| to_count(if Some(r) == except { 0 } else { range.len() }))
            .collect::<Result<_>>()?;
        let displs = self.starts[..self.ranks()]
            .iter()
            .map(|&s| to_count(s))
            .collect::<Result<_>>()?;
        Ok((counts, displs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_tell_splits_apart() {
        let a = Blocks::even(10, 3);
        assert_eq!(a.digest(), Blocks::from_lens([4, 3, 3]).digest());
        assert_ne!(a.digest(), Blocks::from_lens([3, 4, 3]).digest());
        assert_ne!(a.digest(), Blocks::even(10, 2).digest());
        assert_ne!(a.digest(), Blocks::even(11, 3).digest());
    }

    #[test]
    fn even_blocks_tile_the_range_and_differ_by_at_most_one() {
        for len in [0, 1, 2, 3, 7, 10, 1000, 1_000_003] {
            for ranks in 1..=9 {
                let b = Blocks::even(len, ranks);
                assert_eq!((b.len(), b.ranks()), (len, ranks));
                let ranges: Vec<_> = b.ranges().collect();
                assert_eq!(ranges.first().unwrap().start, 0);
                assert_eq!(ranges.last().unwrap().end, len);
                assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
                let lens: Vec<_> = ranges.iter().map(|r| r.len()).collect();
                let (lo, hi) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
                assert!(hi - lo <= 1, "{len} over {ranks}: {lens:?}");
                // Longer blocks come first.
                assert!(lens.windows(2).all(|w| w[0] >= w[1]));
            }
        }
    }

    #[test]
    fn fewer_elements_than_ranks_leaves_later_ranks_empty() {
        let b = Blocks::even(2, 5);
        let lens: Vec<_> = b.ranges().map(|r| r.len()).collect();
        assert_eq!(lens, [1, 1, 0, 0, 0]);
        assert_eq!(b.range(4), 2..2);
    }

    #[test]
    fn from_lens_keeps_the_given_split() {
        let b = Blocks::from_lens([3, 0, 5]);
        assert_eq!(b.ranges().collect::<Vec<_>>(), [0..3, 3..3, 3..8]);
        assert!(!b.is_empty());
        assert!(Blocks::from_lens([0, 0]).is_empty());
    }

    #[test]
    fn mpi_counts_skip_the_root_and_refuse_what_int_cannot_count() {
        let b = Blocks::even(10, 3);
        assert_eq!(b.mpi_counts(None).unwrap(), (vec![4, 3, 3], vec![0, 4, 7]));
        assert_eq!(
            b.mpi_counts(Some(0)).unwrap(),
            (vec![0, 3, 3], vec![0, 4, 7])
        );
        let huge = Blocks::even(Count::MAX as usize + 1, 4);
        match huge.mpi_counts(None) {
            Err(Error::Mpi(m)) => assert!(m.contains("beyond MPI's int counts"), "{m}"),
            other => panic!("expected Error::Mpi, got {other:?}"),
        }
        assert!(
            Blocks::even(Count::MAX as usize, 4)
                .mpi_counts(None)
                .is_ok()
        );
    }
}
