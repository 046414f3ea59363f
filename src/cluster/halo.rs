//! Halo exchange: each rank receives the `halo` rows just above and just below its
//! block of a row-split grid from the ranks that hold them, by MPI point-to-point
//! messages, as mpi4py programs do by hand with `Sendrecv`.
//!
//! Usually a rank's halo rows come from its two neighbours, one message each way.
//! The plan here is general: every rank knows every block, so each computes the
//! same list of messages, and a halo wider than a neighbour's block (or a
//! neighbour with no rows) is filled from the next ranks on. A rank with no rows
//! receives nothing: it has no stencil to compute. Rows outside the grid (above row
//! 0, below the last) are never written: the grid is not periodic.
//!
//! All messages of one exchange are posted at once (nonblocking receives and
//! sends) and then waited for, so no ordering of the ranks can deadlock. Between
//! a pair of ranks there is at most one message per exchange (a block lies wholly
//! above or wholly below another), and MPI keeps messages between a pair in order,
//! so one tag serves every exchange.

use std::ops::Range;

use bytemuck::Pod;
use mpi::Count;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Destination, Source};

use super::blocks::Blocks;
use crate::error::{Error, Result};

/// The tag of halo messages on the calls' communicator.
const HALO_TAG: mpi::Tag = 7302;

/// One message of an exchange: global rows `rows` go to (or come from) `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    pub peer: usize,
    pub rows: Range<usize>,
}

/// The rows `rank` needs from others: up to `halo` rows above its block and below
/// it, within the grid; none for an empty block.
fn wanted(blocks: &Blocks, halo: usize, rank: usize) -> [Range<usize>; 2] {
    let mine = blocks.range(rank);
    if mine.is_empty() {
        return [0..0, 0..0];
    }
    let below_end = mine.end.saturating_add(halo).min(blocks.len());
    [
        mine.start.saturating_sub(halo)..mine.start,
        mine.end..below_end,
    ]
}

fn overlap(a: &Range<usize>, b: &Range<usize>) -> Option<Range<usize>> {
    let r = a.start.max(b.start)..a.end.min(b.end);
    (!r.is_empty()).then_some(r)
}

/// The messages `rank` sends and receives in an exchange of `halo` rows, each in
/// rank order (which is row order). Every rank computes the same plan, so each
/// send has its matching receive.
pub(super) fn plan(blocks: &Blocks, halo: usize, rank: usize) -> (Vec<Message>, Vec<Message>) {
    let mine = blocks.range(rank);
    let wants = wanted(blocks, halo, rank);
    let mut sends = Vec::new();
    let mut receives = Vec::new();
    for (peer, theirs) in blocks.ranges().enumerate().filter(|&(p, _)| p != rank) {
        for want in &wanted(blocks, halo, peer) {
            if let Some(rows) = overlap(want, &mine) {
                sends.push(Message { peer, rows });
            }
        }
        for want in &wants {
            if let Some(rows) = overlap(want, &theirs) {
                receives.push(Message { peer, rows });
            }
        }
    }
    (sends, receives)
}

/// Exchanges the halo rows of `padded`: this rank's block of a grid of `cols`
/// columns, with `halo` rows above and below it, row-major. Collective over
/// `comm` (after the call's entry vote: every rank passes the same `blocks`,
/// `halo` and `cols`).
///
/// # Errors
/// [`Error::Mpi`] when a message of `halo` rows exceeds MPI's `int` counts; the
/// same on every rank, before anything is sent.
pub(super) fn exchange<T: Pod>(
    comm: &SimpleCommunicator,
    blocks: &Blocks,
    halo: usize,
    cols: usize,
    padded: &mut [T],
) -> Result<()> {
    let row_bytes = cols * size_of::<T>();
    if row_bytes == 0 || halo == 0 {
        return Ok(()); // nothing to move
    }
    // No message is longer than `halo` rows: the same check on every rank.
    if halo
        .checked_mul(row_bytes)
        .is_none_or(|b| Count::try_from(b).is_err())
    {
        return Err(Error::Mpi(format!(
            "a halo of {halo} rows of {row_bytes} bytes is beyond MPI's int counts"
        )));
    }
    let rank = comm.rank() as usize;
    let mine = blocks.range(rank);
    let (sends, receives) = plan(blocks, halo, rank);
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(padded);
    debug_assert_eq!(bytes.len(), (mine.len() + 2 * halo) * row_bytes);
    let (above, rest) = bytes.split_at_mut(halo * row_bytes);
    let (interior, below) = rest.split_at_mut(mine.len() * row_bytes);
    let interior: &[u8] = interior;

    // Each receive's place: rows above the block land in `above`, whose first row
    // is global row `mine.start - halo`; rows below in `below`, from `mine.end`.
    let (up, down): (Vec<_>, Vec<_>) = receives.iter().partition(|m| m.rows.start < mine.start);
    let mut slots = carve(above, mine.start as isize - halo as isize, &up, row_bytes);
    slots.extend(carve(below, mine.end as isize, &down, row_bytes));

    mpi::request::scope(|scope| {
        let mut requests = Vec::with_capacity(slots.len() + sends.len());
        for (peer, slot) in slots {
            let from = comm.process_at_rank(peer as mpi::Rank);
            requests.push(from.immediate_receive_into_with_tag(scope, slot, HALO_TAG));
        }
        for m in &sends {
            let rows =
                (m.rows.start - mine.start) * row_bytes..(m.rows.end - mine.start) * row_bytes;
            let to = comm.process_at_rank(m.peer as mpi::Rank);
            requests.push(to.immediate_send_with_tag(scope, &interior[rows], HALO_TAG));
        }
        for request in requests {
            request.wait();
        }
    });
    Ok(())
}

/// Splits `region` (rows of `row_bytes`, its first row global row `first`) into
/// the buffers of `messages`, which lie inside it in ascending order.
fn carve<'b>(
    mut region: &'b mut [u8],
    first: isize,
    messages: &[&Message],
    row_bytes: usize,
) -> Vec<(usize, &'b mut [u8])> {
    let mut at = first;
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let skip = (m.rows.start as isize - at) as usize * row_bytes;
        let (_, rest) = std::mem::take(&mut region).split_at_mut(skip);
        let (slot, rest) = rest.split_at_mut(m.rows.len() * row_bytes);
        out.push((m.peer, slot));
        region = rest;
        at = m.rows.end as isize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(peer: usize, rows: Range<usize>) -> Message {
        Message { peer, rows }
    }

    #[test]
    fn neighbours_swap_their_boundary_rows() {
        let blocks = Blocks::even(10, 3); // 0..4, 4..7, 7..10
        assert_eq!(
            plan(&blocks, 1, 0),
            (vec![msg(1, 3..4)], vec![msg(1, 4..5)])
        );
        assert_eq!(
            plan(&blocks, 1, 1),
            (
                vec![msg(0, 4..5), msg(2, 6..7)],
                vec![msg(0, 3..4), msg(2, 7..8)]
            )
        );
        assert_eq!(
            plan(&blocks, 2, 2),
            (vec![msg(1, 7..9)], vec![msg(1, 5..7)])
        );
    }

    #[test]
    fn wide_halos_and_empty_ranks_reach_past_the_neighbours() {
        // Rank 1 holds one row, rank 2 none: rank 0's halo of 2 rows below comes
        // from ranks 1 and 3.
        let blocks = Blocks::from_lens([3, 1, 0, 4]);
        let (sends, receives) = plan(&blocks, 2, 0);
        assert_eq!(receives, vec![msg(1, 3..4), msg(3, 4..5)]);
        assert_eq!(sends, vec![msg(1, 1..3), msg(3, 2..3)]);
        // The empty rank sends and receives nothing.
        assert_eq!(plan(&blocks, 2, 2), (vec![], vec![]));
        // Every send is some rank's receive, and the other way round.
        let mut sent = Vec::new();
        let mut received = Vec::new();
        for rank in 0..blocks.ranks() {
            let (s, r) = plan(&blocks, 2, rank);
            sent.extend(s.into_iter().map(|m| (rank, m.peer, m.rows)));
            received.extend(r.into_iter().map(|m| (m.peer, rank, m.rows)));
        }
        sent.sort_by_key(|(a, b, r)| (*a, *b, r.start));
        received.sort_by_key(|(a, b, r)| (*a, *b, r.start));
        assert_eq!(sent, received);
    }

    #[test]
    fn buffers_are_carved_at_their_rows() {
        let mut region = [0u8; 6]; // 3 rows of 2 bytes, global rows 5..8
        let (a, b) = (msg(1, 5..6), msg(2, 7..8));
        let slots = carve(&mut region, 5, &[&a, &b], 2);
        let spans: Vec<_> = slots.iter().map(|(p, s)| (*p, s.len())).collect();
        assert_eq!(spans, [(1, 2), (2, 2)]);
        for (peer, slot) in slots {
            slot.fill(peer as u8);
        }
        assert_eq!(region, [1, 1, 0, 0, 2, 2]);
    }
}
