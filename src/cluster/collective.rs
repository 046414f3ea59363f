//! How every cluster call agrees with the other ranks, and how a rank leaves.
//!
//! **The entry vote.** Every collective call starts with one [`Collective::enter`]: a
//! small all-reduce (MIN) of a [`Ballot`] over the cluster's private communicator.
//! Each rank puts in which call it is making, the global length and split of its
//! distributed arrays, a digest of the arguments that must match (a grid's width,
//! a histogram's bins), the outcome of its local checks, and (on rank 0) the lengths
//! of rank 0's arrays. The reduced ballot holds the lowest and highest value of each
//! (the highest as the lowest complement), so every rank reaches the same verdict
//! from the same numbers: ranks in different calls, or with arrays of different
//! lengths or splits, or other arguments, all get [`Error::RanksDisagree`]; a failed local check gets
//! its rank's error there and [`Error::RankFailed`] elsewhere. No rank can fail a
//! check alone and leave the others waiting in a collective.
//!
//! **Departures.** A rank whose `Cluster` is dropped without a panic (the end of
//! `main`, or an `Err` returned from it) tells every other rank how many calls it
//! made, then waits for them all to be leaving too. A rank waiting in a call's
//! entry vote watches for those messages: a rank that left before this call can
//! never join it, so the waiting rank ends the whole job (`MPI_Abort`, exit code
//! [`LEFT_EXIT_CODE`]) instead of waiting forever. When every rank leaves, the
//! departures meet and MPI is finalized normally.
//!
//! Every wait here polls its request with a back-off instead of blocking in MPI,
//! so a rank waiting for a slow one does not spin a core its own workers need.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use mpi::collective::SystemOperation;
use mpi::point_to_point::Status;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Destination, Root, Source};

use super::blocks::Blocks;
use super::transfer::ROOT;
use crate::error::{Error, Result};

/// The exit code a job ends with when a rank waits in a call that another rank,
/// already gone, will never join (Rust's own code for `main` returning `Err`).
pub const LEFT_EXIT_CODE: i32 = 1;

/// The tag of a departure message on the departures' communicator.
const DEPARTURE_TAG: mpi::Tag = 7301;

/// The collective calls, numbered for the entry vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CallKind {
    Barrier = 1,
    DistZeroed,
    DistFromFn,
    DistFromLocal,
    ScatterFromRoot,
    CopyFromRoot,
    GatherToRoot,
    GatherToRootInto,
    MapDistInto,
    MapDistChunksInto,
    ForEachDistMut,
    MapInto,
    MapChunksInto,
    Map,
    DistSum,
    DistDot,
    DistMin,
    DistMax,
    DistArgmin,
    DistArgmax,
    DistHistogram,
    DistMapReduce,
    DistFoldReduce,
    GridZeroed,
    GridFromFn,
    GridExchangeHalos,
    GridStencilRows,
    GridGatherToRoot,
}

impl CallKind {
    const ALL: [CallKind; 28] = [
        CallKind::Barrier,
        CallKind::DistZeroed,
        CallKind::DistFromFn,
        CallKind::DistFromLocal,
        CallKind::ScatterFromRoot,
        CallKind::CopyFromRoot,
        CallKind::GatherToRoot,
        CallKind::GatherToRootInto,
        CallKind::MapDistInto,
        CallKind::MapDistChunksInto,
        CallKind::ForEachDistMut,
        CallKind::MapInto,
        CallKind::MapChunksInto,
        CallKind::Map,
        CallKind::DistSum,
        CallKind::DistDot,
        CallKind::DistMin,
        CallKind::DistMax,
        CallKind::DistArgmin,
        CallKind::DistArgmax,
        CallKind::DistHistogram,
        CallKind::DistMapReduce,
        CallKind::DistFoldReduce,
        CallKind::GridZeroed,
        CallKind::GridFromFn,
        CallKind::GridExchangeHalos,
        CallKind::GridStencilRows,
        CallKind::GridGatherToRoot,
    ];

    /// The call's name in the API.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CallKind::Barrier => "Cluster::barrier",
            CallKind::DistZeroed => "DistArray::zeroed",
            CallKind::DistFromFn => "DistArray::from_fn",
            CallKind::DistFromLocal => "DistArray::from_local",
            CallKind::ScatterFromRoot => "DistArray::scatter_from_root",
            CallKind::CopyFromRoot => "DistArray::copy_from_root",
            CallKind::GatherToRoot => "DistArray::gather_to_root",
            CallKind::GatherToRootInto => "DistArray::gather_to_root_into",
            CallKind::MapDistInto => "Cluster::map_dist_into",
            CallKind::MapDistChunksInto => "Cluster::map_dist_chunks_into",
            CallKind::ForEachDistMut => "Cluster::for_each_dist_mut",
            CallKind::MapInto => "Cluster::map_into",
            CallKind::MapChunksInto => "Cluster::map_chunks_into",
            CallKind::Map => "Cluster::map",
            CallKind::DistSum => "DistBulk::sum",
            CallKind::DistDot => "DistBulk::dot",
            CallKind::DistMin => "DistBulk::min",
            CallKind::DistMax => "DistBulk::max",
            CallKind::DistArgmin => "DistBulk::argmin",
            CallKind::DistArgmax => "DistBulk::argmax",
            CallKind::DistHistogram => "DistBulk::histogram",
            CallKind::DistMapReduce => "DistBulk::map_reduce",
            CallKind::DistFoldReduce => "DistBulk::fold_reduce",
            CallKind::GridZeroed => "DistGrid::zeroed",
            CallKind::GridFromFn => "DistGrid::from_fn",
            CallKind::GridExchangeHalos => "DistGrid::exchange_halos",
            CallKind::GridStencilRows => "DistBulk::stencil_rows_into",
            CallKind::GridGatherToRoot => "DistGrid::gather_to_root",
        }
    }

    fn decode(code: u64) -> Option<CallKind> {
        CallKind::ALL.into_iter().find(|k| *k as u64 == code)
    }
}

/// What a call puts into its entry vote besides its kind and local checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The call.
    pub kind: CallKind,
    /// How the call's distributed arrays are split: every rank must pass the same.
    pub split: Option<&'a Blocks>,
    /// Rank 0's input and output lengths, for the root-data calls (read on rank 0
    /// only): they must be equal, and every rank learns them.
    pub root_lens: Option<(usize, usize)>,
    /// A digest of the call's other arguments that every rank must pass alike (a
    /// grid's width and halo, a histogram's bins and range).
    pub args: Option<u64>,
}

impl<'a> Entry<'a> {
    /// A call with nothing to compare but its kind.
    pub(crate) fn call(kind: CallKind) -> Self {
        Entry {
            kind,
            split: None,
            root_lens: None,
            args: None,
        }
    }

    /// Every rank must split the same length the same way.
    pub(crate) fn split(mut self, blocks: &'a Blocks) -> Self {
        self.split = Some(blocks);
        self
    }

    /// Arguments every rank must pass alike, by their [`digest`].
    pub(crate) fn args(mut self, digest: u64) -> Self {
        self.args = Some(digest);
        self
    }

    /// Rank 0's arrays, whose lengths must agree.
    pub(crate) fn root_lens(mut self, input: usize, output: usize) -> Self {
        self.root_lens = Some((input, output));
        self
    }
}

/// Indices into a [`Ballot`]. A `_HIGH` field holds the complement of a value, so
/// that the MIN reduction yields the complement of the highest.
const FAILED: usize = 0;
const CALL_LOW: usize = 1;
const CALL_HIGH: usize = 2;
const LEN_LOW: usize = 3;
const LEN_HIGH: usize = 4;
const SPLIT_LOW: usize = 5;
const SPLIT_HIGH: usize = 6;
const ROOT_INPUT: usize = 7;
const ROOT_OUTPUT: usize = 8;
const ARGS_LOW: usize = 9;
const ARGS_HIGH: usize = 10;
const FIELDS: usize = 11;

/// One rank's vote, and after the reduction everybody's: MIN over every field.
/// `u64::MAX` is "no value" (the neutral element of MIN).
type Ballot = [u64; FIELDS];

/// The lowest and highest of a value every rank put in, when any rank put one in.
fn range_of(ballot: &Ballot, low: usize, high: usize) -> Option<(u64, u64)> {
    (ballot[low] != u64::MAX).then(|| (ballot[low], !ballot[high]))
}

/// A 64-bit digest of arguments (FNV-1a over each word's bytes), for
/// [`Entry::args`]: equal arguments give equal digests.
pub(crate) fn digest(words: &[u64]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for word in words {
        for byte in word.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// A rank's side of the cluster's calls: its communicators, the calls it has
/// entered, and the departures it has heard of. Owned by the `Cluster`.
pub(crate) struct Collective {
    rank: usize,
    size: usize,
    /// A duplicate of `MPI_COMM_WORLD` for the calls' collectives.
    comm: SimpleCommunicator,
    /// Another, for departures, apart from the calls.
    leave_comm: SimpleCommunicator,
    /// Collective calls this rank has entered.
    calls_entered: Cell<u64>,
    /// For each rank that has left, the calls it had made (once its message came).
    departures: RefCell<Vec<Option<u64>>>,
}

impl std::fmt::Debug for Collective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collective")
            .field("rank", &self.rank)
            .field("calls_entered", &self.calls_entered.get())
            .field("departures", &self.departures.borrow())
            .finish_non_exhaustive()
    }
}

impl Collective {
    /// The calls' state for this rank of `world` (collective: it duplicates
    /// `world` twice, so shmpool's traffic never meets the user's calls on it).
    pub(crate) fn new(world: &SimpleCommunicator) -> Self {
        let size = world.size() as usize;
        Collective {
            rank: world.rank() as usize,
            size,
            comm: world.duplicate(),
            leave_comm: world.duplicate(),
            calls_entered: Cell::new(0),
            departures: RefCell::new(vec![None; size]),
        }
    }

    /// The communicator of the calls' collectives.
    pub(crate) fn comm(&self) -> &SimpleCommunicator {
        &self.comm
    }

    fn is_root(&self) -> bool {
        self.rank == ROOT as usize
    }

    /// The entry vote of a collective call (see the module docs): every rank
    /// returns the same verdict. On success, returns rank 0's input length for a
    /// call that gave [`Entry::root_lens`] (0 otherwise).
    ///
    /// `local` is this rank's own checks; the lowest failing rank's error reaches
    /// every rank. Disagreements (different calls, lengths or splits) come first,
    /// as they mean the ranks' programs diverged.
    pub(crate) fn enter(&self, entry: Entry<'_>, local: Result<()>) -> Result<usize> {
        let call = self.calls_entered.get();
        self.calls_entered.set(call + 1);
        let mut mine: Ballot = [u64::MAX; FIELDS];
        mine[FAILED] = if local.is_ok() { self.size } else { self.rank } as u64;
        mine[CALL_LOW] = entry.kind as u64;
        mine[CALL_HIGH] = !(entry.kind as u64);
        if let Some(blocks) = entry.split {
            mine[LEN_LOW] = blocks.len() as u64;
            mine[LEN_HIGH] = !(blocks.len() as u64);
            mine[SPLIT_LOW] = blocks.digest();
            mine[SPLIT_HIGH] = !blocks.digest();
        }
        if let Some(args) = entry.args {
            mine[ARGS_LOW] = args;
            mine[ARGS_HIGH] = !args;
        }
        if let (Some((input, output)), true) = (entry.root_lens, self.is_root()) {
            mine[ROOT_INPUT] = input as u64;
            mine[ROOT_OUTPUT] = output as u64;
        }
        let mut all: Ballot = [0; FIELDS];
        mpi::request::scope(|scope| {
            let request = self.comm.immediate_all_reduce_into(
                scope,
                &mine[..],
                &mut all[..],
                SystemOperation::min(),
            );
            self.wait_polled(request, || self.check_departures(call, entry.kind));
        });

        if let Some((low, high)) = range_of(&all, CALL_LOW, CALL_HIGH) {
            if low != high {
                let name = |code| CallKind::decode(code).map_or("an unknown call", CallKind::name);
                return Err(Error::RanksDisagree {
                    what: "call",
                    detail: format!(
                        "some ranks called {} while others called {}",
                        name(low),
                        name(high)
                    ),
                });
            }
        }
        if let Some((low, high)) = range_of(&all, LEN_LOW, LEN_HIGH) {
            if low != high {
                return Err(Error::RanksDisagree {
                    what: "length",
                    detail: format!(
                        "{}: the global lengths range from {low} to {high} over the ranks \
                         (this rank: {})",
                        entry.kind.name(),
                        mine[LEN_LOW]
                    ),
                });
            }
        }
        if let Some((low, high)) = range_of(&all, SPLIT_LOW, SPLIT_HIGH) {
            if low != high {
                return Err(Error::RanksDisagree {
                    what: "split",
                    detail: format!(
                        "{}: the ranks split {} elements differently (this rank: {:?})",
                        entry.kind.name(),
                        mine[LEN_LOW],
                        entry.split.map(|b| b.ranges().collect::<Vec<_>>()),
                    ),
                });
            }
        }
        if let Some((low, high)) = range_of(&all, ARGS_LOW, ARGS_HIGH) {
            if low != high {
                return Err(Error::RanksDisagree {
                    what: "arguments",
                    detail: format!(
                        "{}: the ranks passed different arguments (a grid's width or halo, \
                         a histogram's bins or range, or the accumulator's size)",
                        entry.kind.name(),
                    ),
                });
            }
        }
        if all[FAILED] != self.size as u64 {
            return Err(self.spread_failure(all[FAILED] as usize, local.err()));
        }
        if entry.root_lens.is_some() {
            let (input, output) = (all[ROOT_INPUT] as usize, all[ROOT_OUTPUT] as usize);
            if input != output {
                return Err(Error::LengthMismatch { input, output });
            }
            return Ok(input);
        }
        Ok(0)
    }

    /// Makes every rank return an error if any rank's `local` is one: the lowest
    /// failing rank's error there, [`Error::RankFailed`] with its message on the
    /// others. On success every rank keeps its own value. For the steps inside a
    /// call, after its entry vote: every rank is known to be in the same call.
    pub(crate) fn agree<R>(&self, local: Result<R>) -> Result<R> {
        let mine = if local.is_ok() { self.size } else { self.rank } as u64;
        let mut first = 0u64;
        mpi::request::scope(|scope| {
            let request = self.comm.immediate_all_reduce_into(
                scope,
                &mine,
                &mut first,
                SystemOperation::min(),
            );
            self.wait_polled(request, || {});
        });
        if first == self.size as u64 {
            return local;
        }
        Err(self.spread_failure(first as usize, local.err()))
    }

    /// Once every rank knows that rank `first` failed: it broadcasts its error's
    /// message; it and every other failing rank return their own error (`local`),
    /// the rest [`Error::RankFailed`].
    fn spread_failure(&self, first: usize, local: Option<Error>) -> Error {
        let root = self.comm.process_at_rank(first as mpi::Rank);
        let mut message = match &local {
            Some(e) if self.rank == first => e.to_string().into_bytes(),
            _ => Vec::new(),
        };
        let mut len = message.len() as u64;
        root.broadcast_into(&mut len);
        message.resize(len as usize, 0);
        root.broadcast_into(&mut message[..]);
        local.unwrap_or_else(|| Error::RankFailed {
            rank: first,
            message: String::from_utf8_lossy(&message).into_owned(),
        })
    }

    /// Waits for `request` by testing it, with a back-off from spinning to 1 ms
    /// sleeps, calling `idle` between tests.
    fn wait_polled<'a, D: ?Sized, S: Scope<'a>>(
        &self,
        mut request: Request<'a, D, S>,
        mut idle: impl FnMut(),
    ) -> Status {
        let mut rounds = 0u32;
        loop {
            match request.test() {
                Ok(status) => return status,
                Err(pending) => request = pending,
            }
            idle();
            rounds = rounds.saturating_add(1);
            match rounds {
                0..64 => std::hint::spin_loop(),
                64..256 => std::thread::yield_now(),
                _ => {
                    let micros = 20u64 << ((rounds - 256) / 64).min(6);
                    std::thread::sleep(Duration::from_micros(micros.min(1000)));
                }
            }
        }
    }

    /// Receives departure messages that have arrived; ends the job when a rank
    /// left before call number `call` (which it therefore never joins).
    fn check_departures(&self, call: u64, kind: CallKind) {
        let mut departures = self.departures.borrow_mut();
        while let Some((message, status)) = self
            .leave_comm
            .any_process()
            .immediate_matched_probe_with_tag(DEPARTURE_TAG)
        {
            let (calls_made, _) = message.matched_receive::<u64>();
            departures[status.source_rank() as usize] = Some(calls_made);
        }
        let gone = departures
            .iter()
            .enumerate()
            .find(|(_, made)| made.is_some_and(|made| made <= call));
        if let Some((rank, made)) = gone {
            eprintln!(
                "shmpool: rank {rank} left the MPI job after {} collective calls, but rank {} \
                 waits for it in call {} ({}); aborting the MPI job (MPI_Abort, code {})",
                made.unwrap_or(0),
                self.rank,
                call + 1,
                kind.name(),
                LEFT_EXIT_CODE
            );
            // The pool's workers die with this process (PDEATHSIG).
            self.comm.abort(LEFT_EXIT_CODE);
        }
    }

    /// A rank's normal way out: tells every other rank how many calls this one
    /// made, waits until every rank is leaving (a barrier), and takes in the other
    /// ranks' departure messages. Both go over a communicator of their own: the
    /// barrier must never match another rank's entry vote, as a collective on the
    /// calls' communicator would (MPI matches collectives by order, not by kind). MPI can
    /// then be finalized without any rank waiting for another.
    pub(crate) fn leave(&self) {
        let calls_made = self.calls_entered.get();
        let others: Vec<mpi::Rank> = (0..self.size as mpi::Rank)
            .filter(|&r| r != self.rank as mpi::Rank)
            .collect();
        mpi::request::scope(|scope| {
            let sends: Vec<_> = others
                .iter()
                .map(|&r| {
                    self.leave_comm.process_at_rank(r).immediate_send_with_tag(
                        scope,
                        &calls_made,
                        DEPARTURE_TAG,
                    )
                })
                .collect();
            self.wait_polled(self.leave_comm.immediate_barrier(), || {});
            // Every rank sent its departure before entering the barrier, so the
            // ones not yet received are there to be taken.
            let mut departures = self.departures.borrow_mut();
            for &r in &others {
                if departures[r as usize].is_none() {
                    let (made, _) = self
                        .leave_comm
                        .process_at_rank(r)
                        .receive_with_tag::<u64>(DEPARTURE_TAG);
                    departures[r as usize] = Some(made);
                }
            }
            for send in sends {
                self.wait_polled(send, || {});
            }
        });
    }
}
