//! [`Cluster`]: this process's place in an MPI job (its rank, the communicator,
//! the calls' collective state) with its local worker pool, and
//! [`ClusterBuilder`], how it starts.

use std::cell::RefCell;
use std::sync::Arc;

use bytemuck::Pod;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::Communicator;

use super::collective::{CallKind, Collective, Entry};
use super::transfer;
#[allow(unused_imports)] // named by the docs' links
use super::{
    blocks::Blocks, collective::LEFT_EXIT_CODE, dist_array::DistArray, dist_grid::DistGrid,
};

use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::pool::{Pool, PoolBuilder};
use crate::shm::Segment;

/// The exit code a rank's panic ends the whole MPI job with (Rust's own code for a
/// panicking process is 101).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Options for [`Cluster::init`]: the local pool's settings.
///
/// # Examples
///
/// ```no_run
/// use shmpool::{Cluster, Pool};
///
/// let cluster = Cluster::builder()
///     .pool(Pool::builder().processes(8).max_tasks_per_child(1000))
///     .init()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use = "a ClusterBuilder does nothing until `init` is called"]
pub struct ClusterBuilder {
    pool: PoolBuilder,
}

impl ClusterBuilder {
    /// The settings of this rank's local pool. By default it has one worker per CPU
    /// of the rank's CPU set (`sched_getaffinity`), not of the machine: `mpirun`
    /// binds ranks to cores or sockets, and the pool fills what the rank was given.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use shmpool::{Cluster, Pool};
    ///
    /// let cluster = Cluster::builder()
    ///     .pool(Pool::builder().processes(4).task_timeout(Duration::from_secs(600)))
    ///     .init()?;
    /// assert_eq!(cluster.pool().processes(), 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn pool(mut self, pool: PoolBuilder) -> Self {
        self.pool = pool;
        self
    }

    /// Starts this rank's pool, then initializes MPI (`MPI_THREAD_FUNNELED`: only
    /// the thread that calls `init` makes MPI calls).
    ///
    /// The pool comes first so that its fork server, the parent of every worker
    /// and of every replacement, is forked before MPI starts its own threads and
    /// opens its devices: no process is ever forked from an initialized MPI rank.
    ///
    /// # Errors
    /// [`Error::Mpi`] when MPI is already initialized in this process (one
    /// `Cluster` per process) or cannot be; the errors of [`PoolBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, Error, Pool};
    ///
    /// let cluster = Cluster::builder()
    ///     .pool(Pool::builder().processes(4))
    ///     .init()?;
    /// // One Cluster per process: MPI cannot be initialized twice.
    /// assert!(matches!(Cluster::builder().init(), Err(Error::Mpi(_))));
    /// # drop(cluster);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn init(self) -> Result<Cluster> {
        if mpi::environment::is_initialized() {
            return Err(Error::Mpi(
                "MPI is already initialized in this process; make one Cluster per process".into(),
            ));
        }
        let pool = self.pool.build()?;
        let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| Error::Mpi("MPI is already initialized in this process".into()))?;
        let world = universe.world();
        let cluster = Cluster {
            rank: world.rank() as usize,
            size: world.size() as usize,
            pool,
            scratch: RefCell::default(),
            calls: Collective::new(&world),
            world,
            _universe: universe,
        };
        tracing::info!(
            rank = cluster.rank,
            size = cluster.size,
            processes = cluster.pool.processes(),
            ?threading,
            "shmpool cluster started"
        );
        Ok(cluster)
    }
}

/// This process's place in an MPI job, with its local worker pool.
///
/// Made once per process by [`Cluster::init`], which initializes MPI; dropping it
/// stops the pool and finalizes MPI. A `Cluster` is neither `Send` nor `Sync`: MPI
/// is initialized for one thread's calls (`MPI_THREAD_FUNNELED`), and every call
/// here is an MPI collective. The local [`Cluster::pool`] can be shared with other
/// threads as any pool can.
///
/// Moving a `Cluster` to another thread, or sharing it with one, does not compile:
///
/// ```compile_fail
/// let cluster = shmpool::Cluster::init().unwrap();
/// std::thread::spawn(move || cluster.rank());
/// ```
///
/// ```compile_fail
/// let cluster = shmpool::Cluster::init().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(|| cluster.rank());
/// });
/// ```
///
/// # Panics end the job
/// If a panic unwinds through the `Cluster` (out of the scope that owns it,
/// usually `main`), its `Drop` calls `MPI_Abort` with [`PANIC_EXIT_CODE`] instead of
/// finalizing: the whole job ends at once. Without this, the panicking rank would
/// finalize and exit while the others waited forever in their next collective.
///
/// # Leaving
/// Dropping a `Cluster` without a panic (at the end of `main`, or when `main`
/// returns an `Err`) tells every other rank how many calls this rank made, then
/// waits until every rank has left too, and finalizes MPI. A rank that is waiting
/// for it in a later call sees that it will never come and ends the job with
/// [`LEFT_EXIT_CODE`]: an error on one rank cannot leave the others hanging.
///
/// # Examples
///
/// ```no_run
/// use shmpool::{Cluster, DistArray};
///
/// let cluster = Cluster::init()?;
/// // Each rank allocates and fills only its own block of 10^8 elements.
/// let xs = DistArray::from_fn(&cluster, 100_000_000, |i| i as f64)?;
/// let mut ys = DistArray::zeroed(&cluster, xs.len())?;
/// cluster.map_dist_into(&xs, &mut ys, |v: f64| v.sqrt())?;
/// println!("rank {} holds {:?}", cluster.rank(), ys.local_range());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Cluster {
    rank: usize,
    size: usize,
    // Dropped in this order: the pool's workers go first, MPI is finalized last.
    pool: Pool,
    scratch: RefCell<Scratch>,
    /// The entry votes, outcome agreements and departures (`src/cluster/collective.rs`),
    /// over communicators of their own.
    calls: Collective,
    world: SimpleCommunicator,
    _universe: Universe,
}

impl Cluster {
    /// Starts this rank's pool with default settings and initializes MPI: the same
    /// as `Cluster::builder().init()`.
    ///
    /// # Errors
    /// As for [`ClusterBuilder::init`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    ///
    /// let cluster = Cluster::init()?;
    /// println!("rank {} of {}", cluster.rank(), cluster.size());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn init() -> Result<Cluster> {
        Cluster::builder().init()
    }

    /// Options for the local pool.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, Pool};
    ///
    /// let cluster = Cluster::builder()
    ///     .pool(Pool::builder().processes(2))
    ///     .init()?;
    /// assert_eq!(cluster.pool().processes(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// This process's rank in `MPI_COMM_WORLD`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    ///
    /// let cluster = Cluster::init()?;
    /// assert!(cluster.rank() < cluster.size());
    /// let part = format!("part-{:04}.npy", cluster.rank()); // a file of its own per rank
    /// println!("rank {} reads {part}", cluster.rank());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks in `MPI_COMM_WORLD`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Blocks, Cluster};
    ///
    /// let cluster = Cluster::init()?;
    /// let blocks = Blocks::even(1_000_000, cluster.size());
    /// println!("rank {} holds {:?}", cluster.rank(), blocks.range(cluster.rank()));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is rank 0, the rank that holds whole arrays in
    /// [`Cluster::map_into`] and receives the results of [`Cluster::map`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    ///
    /// let cluster = Cluster::init()?;
    /// assert_eq!(cluster.is_root(), cluster.rank() == 0);
    /// if cluster.is_root() {
    ///     println!("a job of {} ranks", cluster.size()); // printed once, not once per rank
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_root(&self) -> bool {
        self.rank == transfer::ROOT as usize
    }

    /// This rank's local worker pool.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    ///
    /// let cluster = Cluster::init()?;
    /// // Rank-local work, with no MPI traffic.
    /// let squares = cluster.pool().map(|x: u64| x * x, 0..10u64)?;
    /// assert_eq!(squares[3], 9);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `MPI_COMM_WORLD`, for MPI calls of your own (reductions, point-to-point)
    /// through the re-exported [`mpi`] crate. Make them from the thread that
    /// made the `Cluster`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    /// use shmpool::mpi::collective::SystemOperation;
    /// use shmpool::mpi::traits::CommunicatorCollectives;
    ///
    /// let cluster = Cluster::init()?;
    /// let mut total = 0u64;
    /// cluster
    ///     .world()
    ///     .all_reduce_into(&(cluster.rank() as u64), &mut total, SystemOperation::sum());
    /// assert_eq!(total as usize, cluster.size() * (cluster.size() - 1) / 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn world(&self) -> &SimpleCommunicator {
        &self.world
    }

    /// The private duplicate of `MPI_COMM_WORLD` that shmpool's calls use.
    pub(crate) fn comm(&self) -> &SimpleCommunicator {
        self.calls.comm()
    }

    /// The entry vote of a collective call ([`Collective::enter`]).
    pub(crate) fn enter(&self, entry: Entry<'_>, local: Result<()>) -> Result<usize> {
        self.calls.enter(entry, local)
    }

    /// Agreement on the outcome of a step inside a call ([`Collective::agree`]).
    pub(crate) fn agree<R>(&self, local: Result<R>) -> Result<R> {
        self.calls.agree(local)
    }

    /// [`Cluster::agree`] on the outcome of this rank's share of a call, run on a
    /// local block whose index `local` holds global index `global`: the ranges its
    /// error names are moved to global indices first (`Error::rebased`), so every
    /// error a distributed call returns names the indices of the user's arrays.
    pub(crate) fn agree_on_block<R>(
        &self,
        outcome: Result<R>,
        local: usize,
        global: usize,
    ) -> Result<R> {
        self.agree(outcome.map_err(|e| e.rebased(local, global)))
    }

    /// Waits until every rank has reached this call: a barrier, made as the
    /// entry vote of every cluster call is, so a rank that left the job is noticed
    /// here too (see [`LEFT_EXIT_CODE`]).
    ///
    /// # Errors
    /// [`Error::RanksDisagree`] on every rank when some ranks are in another
    /// cluster call instead: their programs diverged.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    ///
    /// let cluster = Cluster::init()?;
    /// let t = std::time::Instant::now();
    /// cluster.barrier()?; // every rank is here: time the next step from a common start
    /// let squares = cluster.pool().map(|x: u64| x * x, 0..1000u64)?;
    /// cluster.barrier()?;
    /// if cluster.is_root() {
    ///     println!("{} squares per rank in {:?}", squares.len(), t.elapsed());
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn barrier(&self) -> Result<()> {
        // The entry vote completes only when every rank has voted.
        self.enter(Entry::call(CallKind::Barrier), Ok(())).map(drop)
    }

    /// Ends the whole MPI job now with `code` (`MPI_Abort`); never returns.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    ///
    /// let cluster = Cluster::init()?;
    /// let input = format!("part-{:04}.npy", cluster.rank());
    /// if !std::path::Path::new(&input).exists() {
    ///     eprintln!("rank {}: {input} is missing", cluster.rank());
    ///     cluster.abort(2); // every rank ends, not only this one
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn abort(&self, code: i32) -> ! {
        self.pool.terminate();
        self.world.abort(code)
    }

    /// Frees the block buffers this rank keeps between [`Cluster::map_into`] calls.
    ///
    /// Ranks other than 0 receive their blocks into shared memory that they keep
    /// for the next call: its pages are then already mapped, which on Linux costs
    /// more than the transfer itself the first time. Call this when the job is done
    /// with root-data maps and wants the memory back. Not collective.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, SharedArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let n = if cluster.is_root() { 1 << 20 } else { 0 };
    /// let xs = SharedArray::filled(n, 2.0f64)?;
    /// let mut ys = SharedArray::zeroed(n)?;
    /// for _ in 0..10 {
    ///     cluster.map_into(&xs, &mut ys, |v: f64| v.sqrt())?; // reuses the block buffers
    /// }
    /// cluster.free_scratch(); // done with root-data maps: give the memory back
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn free_scratch(&self) {
        *self.scratch.borrow_mut() = Scratch::default();
    }

    /// Block buffers of `len` elements for a root-data map on this rank, reusing
    /// the kept ones when they are large enough.
    pub(crate) fn scratch_arrays<T: Pod, U: Pod>(
        &self,
        len: usize,
    ) -> Result<(SharedArray<T>, SharedArray<U>)> {
        let mut scratch = self.scratch.borrow_mut();
        let x = reuse(&mut scratch.input, len)?;
        let y = reuse(&mut scratch.output, len)?;
        Ok((x, y))
    }
}

/// The block buffers a rank keeps between root-data maps ([`Cluster::free_scratch`]).
#[derive(Default)]
struct Scratch {
    input: Option<Arc<Segment>>,
    output: Option<Arc<Segment>>,
}

/// An array of `len` elements over `slot`'s segment when it is large enough, else
/// over a new segment that replaces it.
fn reuse<T: Pod>(slot: &mut Option<Arc<Segment>>, len: usize) -> Result<SharedArray<T>> {
    let fits = |s: &Arc<Segment>| {
        len.checked_mul(size_of::<T>())
            .is_some_and(|bytes| bytes <= s.data_bytes())
    };
    match slot {
        Some(segment) if fits(segment) => Ok(SharedArray::over_segment(Arc::clone(segment), len)),
        _ => {
            *slot = None; // free the old buffer before making a larger one
            let array = SharedArray::<T>::zeroed(len)?;
            *slot = Some(Arc::clone(array.segment()));
            Ok(array)
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Finalizing now would leave the other ranks waiting forever in their
            // next collective: end the whole job instead.
            eprintln!(
                "shmpool: rank {} of {} panicked; aborting the MPI job (MPI_Abort, code {})",
                self.rank, self.size, PANIC_EXIT_CODE
            );
            self.abort(PANIC_EXIT_CODE);
        }
        // A normal way out (the end of `main`, or an `Err` returned from it): tell
        // the other ranks, so that one waiting for this rank in a call ends the
        // job, and wait until every rank is leaving. Then the fields drop in order:
        // the pool terminates its workers, then the universe finalizes MPI.
        self.calls.leave();
    }
}
