//! Generic tasks over ranks: rank 0's items spread over every rank's pool, results
//! gathered back in input order.

use std::ops::Range;

use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::blocks::Blocks;
use super::collective::{CallKind, Entry};
use super::rank::Cluster;
use super::transfer::{self, ROOT};
use crate::error::{CodecRole, Error, Result};
use crate::pool::collect_input;
use crate::task::codec;

impl Cluster {
    /// Python's `Pool.map` over the whole job: rank 0's `items` are split into
    /// [`Blocks::even`] blocks, one per rank; each rank runs `f` over its block with
    /// its local pool ([`crate::Pool::map`], Python's chunksize rule); rank 0
    /// receives every result, in input order, and returns `Some(results)`. The other
    /// ranks return `None`.
    ///
    /// `items` is read only on rank 0; the other ranks may pass an empty
    /// collection. Items and results travel serialized (postcard), through one
    /// scatterv and one gatherv of bytes.
    ///
    /// # Errors
    /// On every rank: when a rank's local map fails (a task panicked, a worker
    /// died, ...), that rank's error there and [`Error::RankFailed`] elsewhere;
    /// [`Error::InputPanicked`] on rank 0 if the input iterator panics;
    /// [`Error::Mpi`] when the serialized items or results exceed MPI's `int`
    /// counts (2 GiB).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::Cluster;
    ///
    /// let cluster = Cluster::init()?;
    /// let items: Vec<u64> = if cluster.is_root() { (0..10_000).collect() } else { vec![] };
    /// if let Some(squares) = cluster.map(|n: u64| n * n, items)? {
    ///     assert_eq!(squares[99], 9801);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map<A, R, F, I>(&self, f: F, items: I) -> Result<Option<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        let _span = tracing::debug_span!("shmpool.cluster.map").entered();
        self.enter(Entry::call(CallKind::Map), Ok(()))?;
        // Rank 0 reads the items and encodes one postcard `Vec<A>` per rank.
        let encoded = self.agree(if self.is_root() {
            collect_input(items).and_then(|items| encode_blocks(&items, self.size()).map(Some))
        } else {
            Ok(None)
        })?;
        let (items, first): (Vec<A>, usize) = self.agree(self.scatter_bytes(encoded).and_then(
            |(bytes, mine, first)| {
                let items = codec::decode_items(&bytes[mine], CodecRole::Argument)?;
                Ok((items, first))
            },
        ))?;
        // A failed chunk names its items by their index in rank 0's input.
        let results = self.agree_on_block(
            self.pool().map(f, items).and_then(|results| {
                codec::encode_items(&results, CodecRole::Result).map_err(Error::from)
            }),
            0,
            first,
        )?;
        let gathered = self.gather_bytes(results)?;
        // Rank 0 decodes; the others hear whether it could, so every rank returns
        // the same verdict.
        self.agree(gathered.map_or(Ok(None), |(bytes, blocks)| {
            let mut all = Vec::new();
            for range in blocks.ranges() {
                all.extend(codec::decode_items::<R>(&bytes[range], CodecRole::Result)?);
            }
            Ok(Some(all))
        }))
    }

    /// Sends each rank its block of rank 0's `encoded` bytes (made by
    /// `encode_blocks`). Returns a buffer, where this rank's block lies in it, and
    /// the index in rank 0's input of the block's first item: rank 0 keeps its whole
    /// buffer (its own block is not copied), the others receive exactly their block.
    fn scatter_bytes(
        &self,
        encoded: Option<(Vec<u8>, Blocks, usize)>,
    ) -> Result<(Vec<u8>, Range<usize>, usize)> {
        // Each rank's byte length, then the number of items.
        let mut lens = vec![0u64; self.size() + 1];
        if let Some((_, blocks, items)) = &encoded {
            for (n, range) in lens.iter_mut().zip(blocks.ranges()) {
                *n = range.len() as u64;
            }
            lens[self.size()] = *items as u64;
        }
        self.comm()
            .process_at_rank(ROOT)
            .broadcast_into(&mut lens[..]);
        let items = lens.pop().unwrap_or(0) as usize;
        let first = Blocks::even(items, self.size()).range(self.rank()).start;
        let blocks = Blocks::from_lens(lens.iter().map(|&n| n as usize));
        // Before allocating; the same answer on every rank.
        blocks.mpi_counts(None)?;
        let range = blocks.range(self.rank());
        match encoded {
            Some((whole, _, _)) => {
                transfer::scatter_blocks(self.comm(), &blocks, Some(&whole[..]), &mut [])?;
                Ok((whole, range, first))
            }
            None => {
                let mut mine = vec![0u8; range.len()];
                transfer::scatter_blocks(self.comm(), &blocks, None, &mut mine)?;
                let all = 0..mine.len();
                Ok((mine, all, first))
            }
        }
    }

    /// Gathers every rank's encoded results on rank 0, which gets them with their
    /// byte blocks; the other ranks get `None`.
    fn gather_bytes(&self, mine: Vec<u8>) -> Result<Option<(Vec<u8>, Blocks)>> {
        let mut lens = vec![0u64; self.size()];
        self.comm()
            .all_gather_into(&(mine.len() as u64), &mut lens[..]);
        let blocks = Blocks::from_lens(lens.iter().map(|&n| n as usize));
        blocks.mpi_counts(None)?; // the same answer on every rank
        if self.is_root() {
            let mut whole = vec![0u8; blocks.len()];
            whole[blocks.range(self.rank())].copy_from_slice(&mine);
            transfer::gather_blocks(self.comm(), &blocks, &[], Some(&mut whole[..]))?;
            Ok(Some((whole, blocks)))
        } else {
            transfer::gather_blocks(self.comm(), &blocks, &mine, None)?;
            Ok(None)
        }
    }
}

/// Splits `items` into even blocks over `ranks` and encodes each block as one
/// postcard `Vec<A>`, back to back; returns the bytes and their blocks.
fn encode_blocks<A: Serialize>(items: &[A], ranks: usize) -> Result<(Vec<u8>, Blocks, usize)> {
    let mut bytes = Vec::new();
    let mut lens = Vec::with_capacity(ranks);
    for range in Blocks::even(items.len(), ranks).ranges() {
        let start = bytes.len();
        codec::encode_items_into(&items[range], &mut bytes, CodecRole::Argument)?;
        lens.push(bytes.len() - start);
    }
    Ok((bytes, Blocks::from_lens(lens), items.len()))
}
