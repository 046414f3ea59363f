//! Scaling out over MPI: one rank per node (or per socket), each running its own
//! shmpool [`Pool`], with MPI moving data between ranks. Behind the `mpi` feature.
//!
//! ```text
//!  mpirun -n 2 ./job
//!  ┌─────────── rank 0 (node A) ───────────┐   ┌─────────── rank 1 (node B) ───────────┐
//!  │ Cluster: MPI_COMM_WORLD + a local Pool│   │ Cluster: MPI_COMM_WORLD + a local Pool│
//!  │   worker processes, one per CPU of    │◄─►│   worker processes, one per CPU of    │
//!  │   the rank's CPU set, over shared mem │MPI│   the rank's CPU set, over shared mem │
//!  │ DistArray block 0..n/2 (SharedArray)  │   │ DistArray block n/2..n (SharedArray)  │
//!  └───────────────────────────────────────┘   └───────────────────────────────────────┘
//! ```
//!
//! Two ways to run an array map over ranks:
//!
//! * **Data already distributed** (the main path for real jobs): a [`DistArray`]
//!   holds one block per rank; [`Cluster::map_dist_into`] maps each block in place
//!   with the rank's local pool. No data moves between ranks.
//! * **Data on rank 0**: [`Cluster::map_into`] scatters uneven blocks of rank 0's
//!   array (scatterv), each rank maps its block with its local pool, and the results
//!   are gathered (gatherv) into rank 0's output. Rank 0 maps its own block where it
//!   lies, without copying it.
//!
//! [`Cluster::map`] spreads generic serializable items over the ranks the same way.
//!
//! Every call here is **collective**: every rank makes the same calls in the same
//! order, as with any MPI collective. Every call also **agrees on its outcome**:
//! when any rank fails, every rank returns an error (the failing rank its own, the
//! others [`Error::RankFailed`] naming it), so no rank goes on into a collective that
//! the others have left. The fault model is in `docs/SCALE_OUT.md`.

mod blocks;
mod collective;
mod dist_array;
mod dist_bulk;
mod dist_grid;
mod dist_inputs;
mod dist_maps;
mod dist_reductions;
mod dist_tasks;
mod halo;
mod rank;
mod transfer;

pub use blocks::Blocks;
pub use collective::LEFT_EXIT_CODE;
pub use dist_array::DistArray;
pub use dist_bulk::DistBulk;
pub use dist_grid::{DistGrid, RowFrame};
pub use dist_inputs::DistInputs;
pub use dist_reductions::DistHistogramSpec;
pub use rank::{Cluster, ClusterBuilder, PANIC_EXIT_CODE};
