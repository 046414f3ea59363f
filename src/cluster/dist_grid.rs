//! [`DistGrid`]: a 2-D row-major grid split by rows over the ranks, each rank's
//! rows stored with `halo` extra rows above and below for stencils, and
//! [`DistBulk::stencil_rows_into`] over it.

use std::ops::Range;

use bytemuck::{Pod, Zeroable};

use super::blocks::Blocks;
use super::collective::{CallKind, Entry, digest};
use super::dist_bulk::DistBulk;
use super::halo;
use super::rank::Cluster;
use super::transfer;
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::{Grid, GridMut};

/// A `rows × cols` grid (row-major) of which each rank holds a contiguous block of
/// rows ([`Blocks::even`] over the rows), stored with `halo` rows above and
/// below it: the rows its stencil reads from its neighbours.
///
/// The local storage, [`DistGrid::padded`], is one 2-D [`SharedArray`] of
/// `local_rows().len() + 2 * halo` rows: padded row `k` is global row
/// `local_rows().start + k - halo`. [`DistGrid::exchange_halos`] fills the halo rows
/// from the ranks that hold them; [`DistBulk::stencil_rows_into`] runs a row
/// stencil over each rank's own rows, reading its halo.
///
/// **Boundaries are not periodic.** Halo rows outside the grid (above row 0, below
/// the last row) are never written by an exchange: they keep what the program put
/// there (zeros at first), which a kernel may read as a fixed boundary value or
/// skip. A rank with no rows (more ranks than rows) holds only its halo rows and
/// takes part in every call with nothing to do.
///
/// # Examples
///
/// ```no_run
/// use shmpool::{Cluster, DistGrid};
///
/// let cluster = Cluster::init()?;
/// let mut g = DistGrid::from_fn(&cluster, 6, 4, 1, |r, c| (10 * r + c) as f64)?;
/// g.exchange_halos(&cluster)?;
/// let mine = g.local_rows();
/// if mine.start > 0 && !mine.is_empty() {
///     // The padded row above the block now holds the row above it, from another rank.
///     assert_eq!(g.padded()[0], (10 * (mine.start - 1)) as f64);
/// }
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug)]
pub struct DistGrid<T: Pod> {
    padded: SharedArray<T>,
    blocks: Blocks,
    cols: usize,
    halo: usize,
    rank: usize,
}

/// Where a rank's padded block lies in the global grid: the parameters that
/// [`DistBulk::stencil_rows_into`] hands its kernel, which sees padded row
/// indices.
///
/// # Examples
///
/// ```no_run
/// use shmpool::{Cluster, DistGrid};
///
/// let cluster = Cluster::init()?;
/// let g = DistGrid::<f32>::zeroed(&cluster, 8, 8, 1)?;
/// let frame = g.frame();
/// if !g.local_rows().is_empty() {
///     // Padded row `halo` is the block's first row.
///     assert_eq!(frame.global_row(1), Some(g.local_rows().start));
/// }
/// assert_eq!(frame.global_rows(), 8);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct RowFrame {
    /// The global row of the block's first row (padded row `halo`).
    first_row: u64,
    /// Halo rows above and below the block.
    halo: u64,
    /// Rows in the whole grid.
    rows: u64,
}

impl RowFrame {
    /// The global row of padded row `r`, or `None` for a halo row outside the
    /// grid (above row 0 or below the last row).
    pub fn global_row(&self, r: usize) -> Option<usize> {
        let g = (self.first_row + r as u64).checked_sub(self.halo)?;
        (g < self.rows).then_some(g as usize)
    }

    /// Rows in the whole grid.
    pub fn global_rows(&self) -> usize {
        self.rows as usize
    }

    /// Halo rows above and below each block.
    pub fn halo(&self) -> usize {
        self.halo as usize
    }
}

impl<T: Pod> DistGrid<T> {
    /// A zeroed `rows × cols` grid with `halo` rows above and below each rank's
    /// block; each rank allocates only its own rows and halos.
    ///
    /// # Errors
    /// On every rank: [`Error::RanksDisagree`] when the ranks pass different
    /// shapes or halos (nothing is allocated); when a rank cannot allocate its
    /// block, [`Error::Io`] (or [`Error::InvalidArgument`] for a size beyond
    /// `usize`) on that rank and [`Error::RankFailed`] on the others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistGrid};
    ///
    /// let cluster = Cluster::init()?;
    /// let g = DistGrid::<f64>::zeroed(&cluster, 1000, 1000, 1)?;
    /// assert_eq!(g.padded().shape(), &[g.local_rows().len() + 2, 1000]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed(cluster: &Cluster, rows: usize, cols: usize, halo: usize) -> Result<Self> {
        Self::make(cluster, CallKind::GridZeroed, rows, cols, halo)
    }

    /// A grid whose element at global row `r`, column `c` is `f(r, c)`; each rank
    /// calls `f` for its own rows only, in order. The halo rows start zeroed.
    ///
    /// # Errors
    /// As for [`DistGrid::zeroed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistGrid};
    ///
    /// let cluster = Cluster::init()?;
    /// let g = DistGrid::from_fn(&cluster, 10, 3, 1, |r, c| (r * 3 + c) as u32)?;
    /// let first = g.local_rows().start;
    /// assert!(g.interior().iter().enumerate().all(|(i, &v)| v as usize == first * 3 + i));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_fn(
        cluster: &Cluster,
        rows: usize,
        cols: usize,
        halo: usize,
        mut f: impl FnMut(usize, usize) -> T,
    ) -> Result<Self> {
        let mut grid = Self::make(cluster, CallKind::GridFromFn, rows, cols, halo)?;
        let first = grid.local_rows().start;
        if cols > 0 {
            for (k, row) in grid.interior_mut().chunks_exact_mut(cols).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = f(first + k, c);
                }
            }
        }
        Ok(grid)
    }

    /// The entry vote (agreeing on the shape before anything is allocated), the
    /// allocation, and agreement on it.
    fn make(
        cluster: &Cluster,
        kind: CallKind,
        rows: usize,
        cols: usize,
        halo: usize,
    ) -> Result<Self> {
        let blocks = Blocks::even(rows, cluster.size());
        let entry = Entry::call(kind).split(&blocks).args(shape(cols, halo));
        cluster.enter(entry, Ok(()))?;
        let mine = blocks.range(cluster.rank()).len();
        let padded_rows = halo.checked_mul(2).and_then(|h| h.checked_add(mine));
        let padded = match padded_rows.and_then(|r| Some((r, r.checked_mul(cols)?))) {
            Some((rows, len)) => SharedArray::zeroed(len).and_then(|a| a.reshape(&[rows, cols])),
            None => Err(Error::InvalidArgument {
                name: "halo",
                reason: format!(
                    "{mine} rows with {halo} halo rows above and below, of {cols} columns, \
                     overflow usize"
                ),
            }),
        };
        let padded = cluster.agree(padded)?;
        Ok(DistGrid {
            padded,
            blocks,
            cols,
            halo,
            rank: cluster.rank(),
        })
    }

    /// Fills every rank's halo rows with the rows the other ranks hold: the
    /// `halo` rows just above and just below its block, within the grid (see the
    /// type's docs: not periodic). Collective; point-to-point messages between the
    /// ranks that hold the rows, usually the two neighbours. Rows outside the grid
    /// are left as they are.
    ///
    /// # Errors
    /// On every rank: [`Error::RanksDisagree`] when the ranks pass grids of
    /// different shapes, splits or halos, or are in different calls;
    /// [`Error::Mpi`] when `halo` rows are beyond MPI's `int` counts in bytes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistGrid};
    ///
    /// let cluster = Cluster::init()?;
    /// let mut g = DistGrid::from_fn(&cluster, 100, 10, 1, |r, _| r as f64)?;
    /// g.exchange_halos(&cluster)?;
    /// let mine = g.local_rows();
    /// if !mine.is_empty() && mine.end < 100 {
    ///     // The last padded row is the first row of the next block.
    ///     let below = g.padded().shape()[0] - 1;
    ///     assert_eq!(g.padded()[below * 10], mine.end as f64);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn exchange_halos(&mut self, cluster: &Cluster) -> Result<()> {
        let entry = Entry::call(CallKind::GridExchangeHalos)
            .split(&self.blocks)
            .args(shape(self.cols, self.halo));
        cluster.enter(entry, Ok(()))?;
        let _span =
            tracing::debug_span!("shmpool.cluster.exchange_halos", halo = self.halo).entered();
        halo::exchange(
            cluster.comm(),
            &self.blocks,
            self.halo,
            self.cols,
            &mut self.padded,
        )
    }

    /// Gathers every rank's rows (not the halos) into one new `rows × cols` array
    /// on rank 0 (gatherv), which returns it; the other ranks return `None`.
    ///
    /// # Errors
    /// On every rank: [`Error::Mpi`] for a grid beyond MPI's `int` counts; when
    /// rank 0 cannot allocate the result, [`Error::Io`] there and
    /// [`Error::RankFailed`] elsewhere; [`Error::RanksDisagree`] as for
    /// [`DistGrid::exchange_halos`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistGrid};
    ///
    /// let cluster = Cluster::init()?;
    /// let g = DistGrid::from_fn(&cluster, 4, 3, 1, |r, c| (r * 3 + c) as i32)?;
    /// if let Some(all) = g.gather_to_root(&cluster)? {
    ///     assert_eq!(all.shape(), &[4, 3]);
    ///     assert_eq!(all.to_vec(), (0..12).collect::<Vec<i32>>());
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn gather_to_root(&self, cluster: &Cluster) -> Result<Option<SharedArray<T>>> {
        let entry = Entry::call(CallKind::GridGatherToRoot)
            .split(&self.blocks)
            .args(shape(self.cols, self.halo));
        cluster.enter(entry, Ok(()))?;
        if self.blocks.len().checked_mul(self.cols).is_none() {
            return Err(Error::Mpi(format!(
                "a grid of {} rows of {} columns is beyond MPI's int counts",
                self.blocks.len(),
                self.cols
            )));
        }
        // Every block was allocated, so its element count fits.
        let elems = Blocks::from_lens(self.blocks.ranges().map(|r| r.len() * self.cols));
        elems.mpi_counts(None)?; // the same answer on every rank
        let mut whole = cluster.agree(if cluster.is_root() {
            SharedArray::zeroed(elems.len())
                .and_then(|a| a.reshape(&[self.blocks.len(), self.cols]))
                .map(Some)
        } else {
            Ok(None)
        })?;
        match whole.as_mut() {
            Some(whole) => {
                whole[elems.range(self.rank)].copy_from_slice(self.interior());
                transfer::gather_blocks(cluster.comm(), &elems, &[], Some(&mut whole[..]))?;
            }
            None => transfer::gather_blocks(cluster.comm(), &elems, self.interior(), None)?,
        }
        Ok(whole)
    }

    /// Rows in the whole grid.
    pub fn rows(&self) -> usize {
        self.blocks.len()
    }

    /// Elements per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Halo rows above and below each rank's block.
    pub fn halo(&self) -> usize {
        self.halo
    }

    /// How the rows are split over the ranks.
    pub fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    /// The global rows this rank holds.
    pub fn local_rows(&self) -> Range<usize> {
        self.blocks.range(self.rank)
    }

    /// Where this rank's padded block lies in the grid (see [`RowFrame`]).
    pub fn frame(&self) -> RowFrame {
        RowFrame {
            first_row: self.local_rows().start as u64,
            halo: self.halo as u64,
            rows: self.rows() as u64,
        }
    }

    /// This rank's rows with their halos: a 2-D array of
    /// `local_rows().len() + 2 * halo()` rows of `cols()` elements.
    pub fn padded(&self) -> &SharedArray<T> {
        &self.padded
    }

    /// This rank's rows with their halos, writable (to set boundary values in the
    /// halo rows outside the grid, say).
    pub fn padded_mut(&mut self) -> &mut SharedArray<T> {
        &mut self.padded
    }

    /// This rank's own rows, without the halos, row after row.
    pub fn interior(&self) -> &[T] {
        &self.padded[self.interior_span()]
    }

    /// This rank's own rows, writable.
    pub fn interior_mut(&mut self) -> &mut [T] {
        let span = self.interior_span();
        &mut self.padded[span]
    }

    fn interior_span(&self) -> Range<usize> {
        let start = self.halo * self.cols;
        start..start + self.local_rows().len() * self.cols
    }
}

/// The arguments every rank must pass alike for a grid: its width and halo.
fn shape(cols: usize, halo: usize) -> u64 {
    digest(&[cols as u64, halo as u64])
}

impl DistBulk<'_> {
    /// `f(frame, rows, x, y_rows)` over each rank's own rows of distributed grids:
    /// [`crate::Bulk::stencil_rows_into`] on each rank's padded block,
    /// restricted to its own rows. The kernel reads any padded row of `x` (its
    /// block and halos, so exchange the halos first) and writes the rows `rows` of
    /// `y`; `rows` are padded row indices, and `frame.global_row(r)` tells which
    /// global row one is. `y`'s halo rows are not written.
    ///
    /// A kernel that computes each output row from the rows around it computes
    /// the same values as [`crate::Bulk::stencil_rows_into`] over the whole
    /// gathered grid, bit for bit, once the halos are exchanged.
    ///
    /// # Errors
    /// On every rank: [`Error::RanksDisagree`] when the ranks pass grids of
    /// different shapes, splits or halos, or are in different calls; when this
    /// rank's `x` and `y` differ in rows, split or halo, [`Error::Mpi`] here and
    /// [`Error::RankFailed`] on the others; when a rank's stencil fails (a kernel
    /// panic, a worker's death), its error there and [`Error::RankFailed`] on the
    /// others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::ops::Range;
    /// use shmpool::{Cluster, DistGrid, Grid, GridMut, RowFrame};
    ///
    /// let cluster = Cluster::init()?;
    /// let (n, m) = (64, 64);
    /// let mut x = DistGrid::from_fn(&cluster, n, m, 1, |r, c| (r * c) as f64)?;
    /// let mut y = DistGrid::zeroed(&cluster, n, m, 1)?;
    /// // One Jacobi step of the 5-point Laplacian; the grid's edges stay as they are.
    /// x.exchange_halos(&cluster)?;
    /// cluster.bulk().stencil_rows_into(&x, &mut y, |f: &RowFrame, rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
    ///     for r in rows {
    ///         let g = f.global_row(r).unwrap();
    ///         let out = y.row_mut(r);
    ///         if g == 0 || g + 1 == f.global_rows() {
    ///             out.copy_from_slice(x.row(r));
    ///             continue;
    ///         }
    ///         let (up, mid, down) = (x.row(r - 1), x.row(r), x.row(r + 1));
    ///         out[0] = mid[0];
    ///         out[x.cols() - 1] = mid[x.cols() - 1];
    ///         for c in 1..x.cols() - 1 {
    ///             out[c] = 0.25 * (up[c] + down[c] + mid[c - 1] + mid[c + 1]);
    ///         }
    ///     }
    /// })?;
    /// std::mem::swap(&mut x, &mut y);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn stencil_rows_into<T, U, F>(
        self,
        x: &DistGrid<T>,
        y: &mut DistGrid<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: for<'a> Fn(&RowFrame, Range<usize>, Grid<'a, T>, GridMut<'a, U>) + Copy,
    {
        let check = if x.blocks != y.blocks || x.halo != y.halo {
            Err(Error::Mpi(format!(
                "the grids are split differently: {} rows over {:?} with {} halo rows, \
                 and {} rows over {:?} with {} halo rows",
                x.rows(),
                x.blocks.ranges().map(|r| r.len()).collect::<Vec<_>>(),
                x.halo,
                y.rows(),
                y.blocks.ranges().map(|r| r.len()).collect::<Vec<_>>(),
                y.halo
            )))
        } else {
            Ok(())
        };
        let args = digest(&[x.cols as u64, x.halo as u64, y.cols as u64]);
        let entry = Entry::call(CallKind::GridStencilRows)
            .split(&x.blocks)
            .args(args);
        self.cluster.enter(entry, check)?;
        let _span = tracing::debug_span!("shmpool.cluster.stencil_rows", rows = x.rows()).entered();
        let own = x.local_rows().len();
        let local = if own == 0 {
            Ok(())
        } else {
            self.local()
                .range(x.halo..x.halo + own)
                .with(x.frame())
                .stencil_rows_into(&x.padded, &mut y.padded, f)
        };
        // Padded row `halo` is global row `local_rows().start`.
        self.cluster
            .agree_on_block(local, x.halo, x.local_rows().start)
    }
}

#[cfg(test)]
mod tests {
    use super::RowFrame;

    #[test]
    fn frames_map_padded_rows_to_global_rows() {
        let f = RowFrame {
            first_row: 0,
            halo: 2,
            rows: 5,
        };
        assert_eq!(f.global_row(0), None); // above row 0
        assert_eq!(f.global_row(2), Some(0));
        let g = RowFrame {
            first_row: 3,
            halo: 1,
            rows: 5,
        };
        assert_eq!(g.global_row(0), Some(2));
        assert_eq!(g.global_row(3), None); // below the last row
    }
}
