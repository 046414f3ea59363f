//! How long an operation's chunks are when the caller does not say
//! ([`Bulk::chunk_len`](super::Bulk::chunk_len)): about 2 MiB of traffic per chunk,
//! every chunk starting 4 KiB-aligned in every chunked array, and enough chunks to
//! balance the workers.
//!
//! **Why 2 MiB.** Workers claim chunks one at a time from a shared cursor, so two
//! workers take turns through the arrays: each chunk a worker claims starts where
//! its last one did not end. Every such jump restarts the hardware's streams (its
//! prefetchers and the open DRAM rows) in each array the chunk touches, which costs
//! a worker about 1-2 µs per chunk on this project's 2-core test machine, far more
//! than the claim itself (one compare-and-swap, about 0.1 µs). With 256 KiB of
//! traffic per chunk (the old default) that was 4-8% of a memory-bound map: axpy
//! over 2^24 f64 in 1,537 chunks took 15% longer than in 64 (at AVX-512; 5% at
//! AVX2), and 7% longer in a threads-only model of the same access pattern.
//! Beyond 1-2 MiB the gain levels off (`docs/BENCHMARKS.md`, "Chunk length").
//!
//! **Why aligned.** Element 0 of every shared array lies on a 64-byte line, so a
//! chunk that starts a multiple of 4 KiB from element 0 starts on a line of its own
//! in every array: no line is written by two workers, and a streaming map's 4 KiB
//! blocks (`src/kernel/stream.rs`) tile the chunk with no ordinary-store tail.
//!
//! **Balance.** A map takes at least [`CHUNKS_PER_WORKER`] chunks per worker when
//! the array allows, so that a worker that starts late, or runs slower, evens out,
//! and the last chunks leave little idle (sqrt over 2^20 f64, a job of 0.35 ms,
//! took 3% longer in 16 chunks than in 64); a reduction, whose result depends on
//! its chunk length and must not depend on the pool's size, takes at least
//! [`REDUCTION_CHUNKS`]. No chunk is shorter than 16 KiB of traffic.

/// Bytes of traffic (every chunked input and output) per chunk, by default.
const TARGET_BYTES: usize = 2 << 20;

/// The least traffic per chunk: splitting smaller arrays finer costs more in
/// dispatch than it gains in balance.
const FLOOR_BYTES: usize = 16 << 10;

/// A map's chunks per worker, at least, when the array is long enough.
pub(crate) const CHUNKS_PER_WORKER: usize = 16;

/// A reduction's chunks, at least, when the array is long enough: 8 per worker
/// of a 16-worker pool.
pub(crate) const REDUCTION_CHUNKS: usize = 128;

/// Chunk starts are this many bytes apart, or a multiple, in every chunked array.
const ALIGN_BYTES: usize = 4096;

/// What the default chunk length depends on, besides the length of the range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkBasis {
    /// Bytes of traffic per element, over every chunked array.
    pub bytes_per_elem: usize,
    /// Elements per aligned step: a chunk length that is a multiple of it starts
    /// every chunk [`ALIGN_BYTES`]-aligned (relative to element 0) in every chunked
    /// array.
    pub align: usize,
    /// The fewest chunks wanted, where the array is long enough.
    pub chunks: usize,
}

impl ChunkBasis {
    /// The basis of an operation whose chunked arrays have elements of
    /// `elem_sizes` bytes, `bytes_per_elem` of traffic per element in all, split in
    /// at least `chunks` chunks where it is long enough.
    pub(crate) fn new(
        bytes_per_elem: usize,
        elem_sizes: impl IntoIterator<Item = usize>,
        chunks: usize,
    ) -> Self {
        let align = elem_sizes
            .into_iter()
            .map(|s| ALIGN_BYTES / gcd(ALIGN_BYTES, s))
            .fold(1, lcm);
        ChunkBasis {
            bytes_per_elem,
            align,
            chunks,
        }
    }
}

/// The default chunk length for `len` elements (see the module docs), at most
/// `max_chunks` chunks.
pub(crate) fn default_chunk_len(len: usize, basis: ChunkBasis, max_chunks: usize) -> usize {
    let bytes = basis.bytes_per_elem.max(1);
    let by_bytes = (TARGET_BYTES / bytes).max(1);
    let balanced = len.div_ceil(basis.chunks.max(1)).max(1);
    let floor = (FLOOR_BYTES / bytes).max(1);
    let mut n = by_bytes.min(balanced).max(floor);
    // Round down to the aligned step where a step is not too long for a chunk (it
    // is for elements of odd sizes: 4096 elements of 4097 bytes).
    let step = basis.align;
    if step > 1 && step.saturating_mul(bytes) <= TARGET_BYTES {
        n = (n / step).max(1) * step;
    }
    n.max(len.div_ceil(max_chunks.max(1)))
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    /// The basis of a map over `workers` workers.
    fn basis(sizes: &[usize], workers: usize) -> ChunkBasis {
        ChunkBasis::new(
            sizes.iter().sum(),
            sizes.iter().copied(),
            workers * CHUNKS_PER_WORKER,
        )
    }

    #[test]
    fn chunks_carry_about_two_mib_and_start_aligned() {
        // axpy over 2^24 f64: 24 bytes per element, 2 MiB is 87,381 elements,
        // rounded down to 512 (4 KiB of f64): 87,040, 193 chunks.
        let n = default_chunk_len(1 << 24, basis(&[8, 8, 8], 2), MAX);
        assert_eq!(n, 87_040);
        assert_eq!(n * 8 % 4096, 0);
        // An f64 input and an f32 output: 4 KiB steps are 1024 elements.
        let n = default_chunk_len(1 << 24, basis(&[8, 4], 2), MAX);
        assert_eq!(n % 1024, 0);
        assert!((n * 12).abs_diff(2 << 20) < 1024 * 12, "{n}");
    }

    #[test]
    fn every_worker_gets_sixteen_chunks_when_the_array_allows() {
        // 2^20 f64 in and out (16 MiB) over 2 workers: 32 chunks, not 8 of 2 MiB.
        assert_eq!(default_chunk_len(1 << 20, basis(&[8, 8], 2), MAX), 1 << 15);
        // A reduction takes 128 chunks at least, whatever the pool: 2^24 f64
        // summed in 128 of 1 MiB, a dot product of two in 128 of 2 MiB.
        let sum = ChunkBasis::new(8, [8], REDUCTION_CHUNKS);
        assert_eq!(default_chunk_len(1 << 24, sum, MAX), 1 << 17);
        let dot = ChunkBasis::new(16, [8, 8], REDUCTION_CHUNKS);
        assert_eq!(default_chunk_len(1 << 24, dot, MAX), 1 << 17);
        assert_eq!(default_chunk_len(1 << 21, sum, MAX), 1 << 14);
    }

    #[test]
    fn small_arrays_are_not_split_below_16_kib() {
        assert_eq!(default_chunk_len(1000, basis(&[8, 8], 2), MAX), 1024);
        assert_eq!(default_chunk_len(0, basis(&[8, 8], 2), MAX), 1024);
        assert_eq!(default_chunk_len(1000, basis(&[1], 2), MAX), 16 << 10);
    }

    #[test]
    fn odd_element_sizes_and_rows_need_no_alignment_they_cannot_have() {
        // 12-byte elements: a 4 KiB step is 1024 of them.
        assert_eq!(basis(&[12], 1).align, 1024);
        // 4097-byte elements: a step of 4096 elements is far too long; 511 of them
        // make 2 MiB.
        assert_eq!(default_chunk_len(1 << 20, basis(&[4097], 1), MAX), 511);
        // Rows of 4096 f64 in and out (64 KiB a row): 32 rows a chunk.
        assert_eq!(basis(&[32768, 32768], 2).align, 1);
        assert_eq!(default_chunk_len(4096, basis(&[32768, 32768], 2), MAX), 32);
        // Zero-sized elements.
        assert_eq!(default_chunk_len(1 << 30, basis(&[0], 2), MAX), 1 << 21);
    }

    #[test]
    fn never_more_chunks_than_a_job_tracks() {
        let n = default_chunk_len(1 << 40, basis(&[1, 1], 2), MAX);
        assert!((1usize << 40).div_ceil(n) <= MAX, "{n}");
    }
}
