//! shmpool: Python's `multiprocessing.Pool` for Rust, on prespawned worker processes
//! that share lock-free rings and zero-copy arrays in shared memory.
//!
//! ```
//! use shmpool::{Pool, SharedArray};
//!
//! // numpy's classic: sqrt over a big float64 array, split across a pool.
//! let pool = Pool::new(2)?;
//! let xs = SharedArray::try_from_iter((0..1_000_000).map(|i| i as f64))?;
//! let mut ys = SharedArray::zeroed(xs.len())?;
//! pool.map_into(&xs, &mut ys, |v: f64| v.sqrt())?; // workers write ys in place
//! assert_eq!(ys[144], 12.0);
//! # Ok::<(), shmpool::Error>(())
//! ```
//!
//! * Workers are processes, started once: a crashing task kills only its worker,
//!   and the pool replaces it.
//! * Arrays live in shared memory ([`SharedArray`]); a map hands workers chunk
//!   ranges, never copies, and each worker writes its results in place.
//! * Kernels are non-capturing closures (or `fn` items): the compiler instantiates a
//!   trampoline per kernel, and workers run the same vectorized loop rayon would.
//!
//! # Three ways in
//!
//! - **[`Pool`]** is Python's pool: [`Pool::apply`], [`Pool::map`],
//!   [`Pool::starmap`], [`Pool::imap`] and their `_async` forms, over any
//!   `Serialize + DeserializeOwned` arguments, with [`AsyncResult`]s that are
//!   futures and [`Imap`]s that are streams; and [`Pool::map_into`], which maps a
//!   [`SharedArray`] in place.
//! - **[`Pool::tasks`]** ([`Tasks`]) has every form of Python's vocabulary
//!   (`try_` forms that never wait for room, `_async_with` forms with callbacks),
//!   with the options of one call: chunk size, a time limit that kills, how many
//!   chunks an `imap` keeps in flight, a progress bar, and a context every task sees
//!   (`functools.partial`): `pool.tasks().chunksize(100).timeout(limit).imap(f,
//!   items)?`, `pool.tasks().with(&table).map(f, keys)?`.
//! - **[`Pool::bulk`]** ([`Bulk`]) is numpy's vocabulary over [`SharedArray`]s:
//!   maps in place with parameters (`pool.bulk().with(p)`), several arrays in and
//!   out, context arrays, index-aware, stencil and row kernels, deterministic
//!   reductions (`sum`, `dot`, `min`, `argmax`, `histogram`, `map_reduce`, ...), a
//!   chunk length, a range, a cancel token: `pool.bulk().with(a).zip_map_into((&x,
//!   &y), &mut out, |a: &f64, (x, y): (f64, f64)| a * x + y)?`.
//!
//! # The user guide
//!
//! The [`guide`] (`docs/USER_GUIDE.md`) goes from Python's `multiprocessing.Pool` and
//! numpy to shmpool idiom by idiom: tasks, cancelling, async code, logs, memory
//! limits, `.npy` files and named segments, ufuncs, reductions and stencils. The
//! design is in `docs/ARCHITECTURE.md`, the shared-memory protocol in
//! `docs/PROTOCOL.md`, what happens under faults in `docs/FAULTS.md`, speed in
//! `docs/BENCHMARKS.md`, and scaling out over MPI in `docs/SCALE_OUT.md`.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `progress` | on | progress bars on standard error (indicatif): [`Imap::progress`], `tasks().progress(true)`, `bulk().progress(true)` |
//! | `ndarray` | on | ndarray views of shared arrays (`SharedArray::as_array` and its kin) and `SharedArray::from_array` |
//! | `mpi` | off | `Cluster`, `DistArray` and their kin: a pool per MPI rank, arrays split over ranks. Needs an MPI library (Open MPI or MPICH) and libclang at build time |
//!
//! # Platform
//!
//! Linux only: shmpool is built on `memfd_create`, futexes, pidfds and `fork`, and
//! other targets fail to compile with a message saying so.

#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]
// The loom models (`--cfg loom`) build the protocol modules without the rest of the
// crate, which uses the parts of them the models do not: under loom those parts are
// unused, not dead. Every other build checks them.
#![cfg_attr(loom, allow(dead_code, unused_imports))]
// docs.rs (`--cfg docsrs`, nightly): mark each item with the feature it needs
// (not with `not(loom)`, which gates nearly everything for the loom models).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(docsrs, doc(auto_cfg(hide(loom))))]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmpool supports Linux only: it is built on memfd_create, futexes, pidfds and fork"
);

/// The user guide: from Python's `multiprocessing.Pool` and numpy to shmpool, idiom
/// by idiom (`docs/USER_GUIDE.md`, shown here for docs.rs). Its code blocks are
/// sketches, not doctests; the runnable examples are in `examples/`.
#[cfg(all(doc, not(doctest)))]
pub mod guide {
    #![doc = include_str!("../docs/USER_GUIDE.md")]
}

/// Declares its items for every build but the loom models' (`--cfg loom`, which
/// builds only the protocol the models check, `src/loom_tests.rs`): one block in
/// place of an attribute per item, in the style of tokio's `cfg_*` macros. As with
/// tokio's, `cargo fmt` does not see the modules declared inside it: format with
/// `rustfmt --edition 2024 $(git ls-files '*.rs')`, which `.ci/run` checks.
macro_rules! cfg_not_loom {
    ($($item:item)*) => {
        $(
            #[cfg(not(loom))]
            $item
        )*
    };
}

// The protocol the loom models check, built under loom too.
mod job;
mod layout;
#[cfg(all(test, loom))]
mod loom_tests;
mod ring;
mod slot;
mod sync;
mod wake;

/// Under loom, only the liveness table's protocol, for `loom_tests`.
#[cfg(loom)]
mod shm {
    pub(crate) mod liveness {
        mod table;
        pub(crate) use table::Table;
    }
}
/// Under loom, only the idle worker's wait, for `loom_tests`.
#[cfg(loom)]
mod worker {
    pub(crate) mod idle;
}

cfg_not_loom! {
    mod array;
    #[cfg(feature = "mpi")]
    mod cluster;
    mod dtype;
    mod error;
    mod kernel;
    pub mod npy;
    mod pool;
    mod shm;
    mod simd;
    mod sys;
    mod task;
    mod unwind;
    mod worker;

    pub use array::{ReadOnlyArray, SharedArray, reclaim_stale_segments};
    #[cfg(feature = "mpi")]
    pub use cluster::{
        Blocks, Cluster, ClusterBuilder, DistArray, DistBulk, DistGrid, DistHistogramSpec,
        DistInputs, LEFT_EXIT_CODE, PANIC_EXIT_CODE, RowFrame,
    };
    pub use error::{CodecDirection, CodecRole, DeathCause, Error, PoolKill, Result, Work};
    pub use bytemuck::{Pod, Zeroable};
    pub use kernel::{
        Env, Grid, GridMut, Inputs, KernelEnv, KernelFn, Outputs, Params, ParamsAndArrays,
    };
    #[cfg(feature = "progress")]
    pub use pool::Progress;
    pub use pool::{
        ArrayPages, BinValue, Bins, Bulk, BulkFuture, CancelToken, DefaultDtype, Dtype, Float,
        Histogram, HistogramSpec, Imap, ImapStream, MeanIn, Number, Pool, PoolBuilder, StartMethod,
        Stats, SumIn, Tasks, Weighted, WorkerStats,
    };
    pub use shm::recycle as array_cache;
    pub use shm::{HUGE_PAGE_THRESHOLD, PageKind, Pages};
    pub use simd::Simd;
    pub use task::async_result::{AsyncResult, Callbacks};
    pub use task::cancel::{CancelMode, CancelOutcome};
    pub use task::result_future::ResultFuture;
    pub use task::star_fn::{Context, StarFn, TaskEnv};

    /// The parts of the MPI bindings (rsmpi) that your own MPI calls on
    /// [`Cluster::world`] need, from the version shmpool is built on.
    ///
    /// A `Cluster` initializes MPI for calls from one thread (`MPI_THREAD_FUNNELED`),
    /// and the compiler holds you to it: a `Cluster` and the communicator that
    /// [`Cluster::world`] lends cannot leave their thread. This module re-exports the
    /// traits, operations, datatypes and requests, but not what would make a
    /// communicator out of nothing (`SimpleCommunicator::world()`, the `topology`
    /// module, the raw `ffi`): those could be called on any thread. A program that
    /// depends on the `mpi` crate directly can still reach them, and then keeps to
    /// one MPI thread itself.
    ///
    /// ```compile_fail
    /// // No communicator can be made on another thread through shmpool.
    /// std::thread::spawn(|| {
    ///     let _world = shmpool::mpi::topology::SimpleCommunicator::world();
    /// });
    /// ```
    #[cfg(feature = "mpi")]
    pub mod mpi {
        pub use ::mpi::{Count, Rank, Tag, Threading};
        pub use ::mpi::{collective, datatype, point_to_point, request, traits};

        /// Facts about the MPI library and this process.
        pub mod environment {
            pub use ::mpi::environment::{
                is_finalized, is_initialized, library_version, processor_name, threading_support,
                time, time_resolution, version,
            };
        }
    }

    /// The README's examples, compiled and run as doctests so they cannot rot.
    #[cfg(doctest)]
    #[doc = include_str!("../README.md")]
    struct ReadmeDoctests;
}

/// The bytemuck crate shmpool is built on, for the derives' `crate` attribute:
/// `#[bytemuck(crate = "shmpool::bytemuck")]` lets a crate derive [`Pod`] and
/// [`Zeroable`] with no dependency of its own on bytemuck.
#[doc(hidden)]
pub use bytemuck;
