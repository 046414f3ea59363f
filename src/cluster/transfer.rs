//! Moving blocks of plain-old-data between ranks: scatterv from and gatherv to the
//! root, for any `Pod` element type.
//!
//! MPI needs a datatype for every buffer. A `Pod` type has no padding and no
//! pointers, so its value is exactly its `size_of::<T>()` bytes; every rank of a job
//! runs the same binary on the same architecture, so those bytes mean the same
//! thing everywhere. Each element therefore travels as one MPI contiguous datatype
//! of that many bytes, and counts stay in elements (not bytes, which would overflow
//! MPI's `int` counts 8 times sooner for `f64`).

use bytemuck::Pod;
use mpi::Count;
use mpi::datatype::{MutView, Partition, PartitionMut, UserDatatype, View};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Equivalence, Root};

use super::blocks::Blocks;
use crate::error::Result;

/// The rank that holds whole arrays in the root-data calls.
pub(crate) const ROOT: mpi::Rank = 0;

/// The MPI datatype of one `T`: `size_of::<T>()` contiguous bytes.
fn datatype_of<T: Pod>() -> UserDatatype {
    let size = Count::try_from(size_of::<T>()).expect("a Pod element of over 2 GiB");
    UserDatatype::contiguous(size, &u8::equivalent_datatype())
}

/// Sends block `r` of the root's `whole` to each rank `r` other than the root,
/// which keeps its own block where it is. Every other rank passes `None` and
/// receives its block into `mine`, which must have that block's length.
///
/// Collective over `world`: every rank calls it with the same `blocks`.
pub(crate) fn scatter_blocks<T: Pod>(
    world: &SimpleCommunicator,
    blocks: &Blocks,
    whole: Option<&[T]>,
    mine: &mut [T],
) -> Result<()> {
    let (counts, displs) = blocks.mpi_counts(Some(ROOT as usize))?;
    let datatype = datatype_of::<T>();
    let root = world.process_at_rank(ROOT);
    if world.rank() == ROOT {
        let whole = whole.expect("the root passes the whole array");
        debug_assert_eq!(whole.len(), blocks.len());
        let bytes: &[u8] = bytemuck::cast_slice(whole);
        // SAFETY: `datatype` is `size_of::<T>()` contiguous bytes, so `whole.len()`
        // of them cover exactly the bytes of `whole`: no padding (T is Pod), nothing
        // past its end. `mpi_counts` checked that the length fits a Count.
        let send = unsafe { View::with_count_and_datatype(bytes, whole.len() as Count, &datatype) };
        let partition = Partition::new(&send, counts, displs);
        let mut nothing: [T; 0] = [];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut nothing);
        // SAFETY: zero elements of `datatype` over an empty buffer: MPI touches
        // nothing. The root's count in `partition` is zero to match.
        let mut recv = unsafe { MutView::with_count_and_datatype(bytes, 0, &datatype) };
        root.scatter_varcount_into_root(&partition, &mut recv);
    } else {
        debug_assert_eq!(mine.len(), blocks.range(world.rank() as usize).len());
        let count = mine.len() as Count; // no larger than the whole, which fits
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(mine);
        // SAFETY: `count` elements of `datatype` are exactly the bytes of `mine`,
        // and every bit pattern is a valid T (Pod), so whatever MPI writes is a
        // valid value.
        let mut recv = unsafe { MutView::with_count_and_datatype(bytes, count, &datatype) };
        root.scatter_varcount_into(&mut recv);
    }
    Ok(())
}

/// The inverse of [`scatter_blocks`]: each rank other than the root sends `mine`
/// (its block), and the root receives them into their places in `whole`. The
/// root's own block of `whole` is left as it is (it computed it in place).
///
/// Collective over `world`: every rank calls it with the same `blocks`.
pub(crate) fn gather_blocks<T: Pod>(
    world: &SimpleCommunicator,
    blocks: &Blocks,
    mine: &[T],
    whole: Option<&mut [T]>,
) -> Result<()> {
    let (counts, displs) = blocks.mpi_counts(Some(ROOT as usize))?;
    let datatype = datatype_of::<T>();
    let root = world.process_at_rank(ROOT);
    if world.rank() == ROOT {
        let whole = whole.expect("the root passes the whole array");
        debug_assert_eq!(whole.len(), blocks.len());
        let len = whole.len() as Count; // `mpi_counts` checked that it fits
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(whole);
        // SAFETY: `len` elements of `datatype` are exactly the bytes of `whole`;
        // every bit pattern is a valid T (Pod).
        let mut recv = unsafe { MutView::with_count_and_datatype(bytes, len, &datatype) };
        let mut partition = PartitionMut::new(&mut recv, counts, displs);
        let nothing: [T; 0] = [];
        let bytes: &[u8] = bytemuck::cast_slice(&nothing);
        // SAFETY: zero elements over an empty buffer, matching the root's zero count.
        let send = unsafe { View::with_count_and_datatype(bytes, 0, &datatype) };
        root.gather_varcount_into_root(&send, &mut partition);
    } else {
        let count = mine.len() as Count; // no larger than the whole, which fits
        let bytes: &[u8] = bytemuck::cast_slice(mine);
        // SAFETY: `count` elements of `datatype` are exactly the bytes of `mine`.
        let send = unsafe { View::with_count_and_datatype(bytes, count, &datatype) };
        root.gather_varcount_into(&send);
    }
    Ok(())
}
