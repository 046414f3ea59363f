//! Arrays in shared memory: [`SharedArray`] (`src/array/shared_array.rs`), numeric
//! arrays that workers read and write in place; `.npy` files mapped or loaded as
//! arrays (`src/array/files.rs`, and [`ReadOnlyArray`], `src/array/read_only.rs`),
//! named segments other processes attach by name (`src/array/named_arrays.rs`), and
//! ndarray views (`src/array/views.rs`).

mod files;
mod named_arrays;
mod read_only;
mod shared_array;
#[cfg(feature = "ndarray")]
mod views;

pub use named_arrays::reclaim_stale_segments;
pub use read_only::ReadOnlyArray;
pub use shared_array::SharedArray;
