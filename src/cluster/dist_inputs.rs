//! [`DistInputs`]: the distributed arrays a reduction reads, and the local blocks
//! its rank's pool reads.

use bytemuck::Pod;

use super::blocks::Blocks;
use super::dist_array::DistArray;
use super::dist_maps::same_blocks;
use crate::array::SharedArray;
use crate::error::Result;
use crate::kernel::Inputs;

mod sealed {
    pub trait Sealed {}
}

/// The input arrays of a distributed reduction: `&DistArray<A>`, or a pair or
/// triple of them split alike. Each rank's pool reads the local blocks, as
/// [`Inputs`] for the single-node reductions.
pub trait DistInputs: sealed::Sealed {
    /// The local blocks, as the pool's inputs: `&SharedArray<A>` or a tuple.
    type Local: Inputs;
    /// This rank's blocks.
    #[doc(hidden)]
    fn local(&self) -> Self::Local;
    /// The split of the first array (the others must match it).
    #[doc(hidden)]
    fn blocks(&self) -> &Blocks;
    /// Whether every array is split as the first.
    #[doc(hidden)]
    fn check(&self) -> Result<()>;
}

impl<A: Pod> sealed::Sealed for &DistArray<A> {}
impl<'x, A: Pod> DistInputs for &'x DistArray<A> {
    type Local = &'x SharedArray<A>;
    fn local(&self) -> Self::Local {
        DistArray::local(*self)
    }
    fn blocks(&self) -> &Blocks {
        DistArray::blocks(self)
    }
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

impl<A: Pod, B: Pod> sealed::Sealed for (&DistArray<A>, &DistArray<B>) {}
impl<'x, A: Pod, B: Pod> DistInputs for (&'x DistArray<A>, &'x DistArray<B>) {
    type Local = (&'x SharedArray<A>, &'x SharedArray<B>);
    fn local(&self) -> Self::Local {
        (self.0.local(), self.1.local())
    }
    fn blocks(&self) -> &Blocks {
        self.0.blocks()
    }
    fn check(&self) -> Result<()> {
        same_blocks(self.0.blocks(), self.1.blocks())
    }
}

impl<A: Pod, B: Pod, C: Pod> sealed::Sealed for (&DistArray<A>, &DistArray<B>, &DistArray<C>) {}
impl<'x, A: Pod, B: Pod, C: Pod> DistInputs
    for (&'x DistArray<A>, &'x DistArray<B>, &'x DistArray<C>)
{
    type Local = (&'x SharedArray<A>, &'x SharedArray<B>, &'x SharedArray<C>);
    fn local(&self) -> Self::Local {
        (self.0.local(), self.1.local(), self.2.local())
    }
    fn blocks(&self) -> &Blocks {
        self.0.blocks()
    }
    fn check(&self) -> Result<()> {
        same_blocks(self.0.blocks(), self.1.blocks())?;
        same_blocks(self.0.blocks(), self.2.blocks())
    }
}
