//! Streaming (non-temporal) stores for maps whose output is far larger than the
//! caches.
//!
//! An ordinary store to a line that is not cached first reads the line from memory
//! (a read for ownership), so a map that writes `y` moves `y` across the memory bus
//! twice. A non-temporal store writes whole lines without reading them, as a large
//! `memcpy` does. The kernel computes a block of results into a small buffer (in
//! L1), then streams the block to the output; `sfence` at the end orders the
//! streamed stores before the chunk's completion is published (its `done` bit and
//! count, SYNC B4), so the caller sees them as it sees ordinary stores.

use crate::simd::Simd;

/// Bytes computed per block before they are streamed out.
const BLOCK_BYTES: usize = 4096;

#[repr(C, align(64))]
struct Block([std::mem::MaybeUninit<u8>; BLOCK_BYTES]);

/// `out[i] = g(i)` for `i` in `0..n`, the output written with streaming stores
/// where the element size allows (it divides 16), plain stores elsewhere. At
/// [`Simd::Avx2`] and above the stores are 32 bytes wide: on this machine's 2
/// threads over 128 MiB, 256-bit streaming stores of a staged block took 11.7-13.3
/// ms against 14.7-17.9 ms for 128-bit ones (a C model of this loop, `-O3`).
///
/// # Safety
/// `out` is valid for writes of `n` elements that nobody else accesses during the
/// call, and the CPU supports `level`.
#[inline(always)]
pub(crate) unsafe fn map_streaming<U: Copy>(
    level: Simd,
    n: usize,
    out: *mut U,
    g: impl Fn(usize) -> U,
) {
    let size = size_of::<U>();
    #[cfg(target_arch = "x86_64")]
    if size > 0 && 16 % size == 0 {
        use std::arch::x86_64::_mm_sfence;
        let wide = level != Simd::Baseline;
        let align = if wide { 32 } else { 16 };
        let mut i = 0;
        // Plain stores up to the first aligned address of the output.
        while i < n && (out.wrapping_add(i) as usize) % align != 0 {
            // SAFETY: `i < n`, within the caller's range.
            unsafe { out.add(i).write(g(i)) };
            i += 1;
        }
        let per_block = BLOCK_BYTES / size;
        let mut block = Block([std::mem::MaybeUninit::uninit(); BLOCK_BYTES]);
        while i + per_block <= n {
            let staged = block.0.as_mut_ptr().cast::<U>();
            for j in 0..per_block {
                // SAFETY: `j < per_block`, inside the block (`per_block * size` bytes).
                unsafe { staged.add(j).write(g(i + j)) };
            }
            // SAFETY: `out + i` is aligned to `align` (the loop above, and every block
            // is a multiple of 32 bytes), and the block's `BLOCK_BYTES` lie within the
            // caller's range (`i + per_block <= n`); the block is 64-byte aligned and
            // fully written just above. The wide copy needs AVX, which every level
            // above the baseline has (the caller's guarantee).
            unsafe {
                let to = out.add(i).cast::<u8>();
                if wide {
                    stream_block_32(to, block.0.as_ptr().cast());
                } else {
                    stream_block_16(to, block.0.as_ptr().cast());
                }
            }
            i += per_block;
        }
        while i < n {
            // SAFETY: `i < n`, within the caller's range.
            unsafe { out.add(i).write(g(i)) };
            i += 1;
        }
        // SAFETY: SSE2 is part of the x86-64 baseline. Orders the streamed stores
        // before the stores that publish the chunk's completion.
        unsafe { _mm_sfence() };
        return;
    }
    let _ = level;
    for i in 0..n {
        // SAFETY: `i < n`, within the caller's range.
        unsafe { out.add(i).write(g(i)) };
    }
}

/// Streams `BLOCK_BYTES` from `from` to `to` in 16-byte stores.
///
/// # Safety
/// `to` is 16-byte aligned and valid for `BLOCK_BYTES` of writes; `from` is 16-byte
/// aligned and valid for as many reads.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn stream_block_16(to: *mut u8, from: *const u8) {
    use std::arch::x86_64::{__m128i, _mm_load_si128, _mm_stream_si128};
    for k in 0..BLOCK_BYTES / 16 {
        // SAFETY: the caller's alignment and extent; SSE2 is part of the baseline.
        unsafe {
            _mm_stream_si128(
                to.cast::<__m128i>().add(k),
                _mm_load_si128(from.cast::<__m128i>().add(k)),
            )
        };
    }
}

/// Streams `BLOCK_BYTES` from `from` to `to` in 32-byte stores.
///
/// # Safety
/// `to` is 32-byte aligned and valid for `BLOCK_BYTES` of writes; `from` is 32-byte
/// aligned and valid for as many reads; the CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx")]
unsafe fn stream_block_32(to: *mut u8, from: *const u8) {
    use std::arch::x86_64::{__m256i, _mm256_load_si256, _mm256_stream_si256};
    for k in 0..BLOCK_BYTES / 32 {
        // SAFETY: the caller's alignment, extent and CPU.
        unsafe {
            _mm256_stream_si256(
                to.cast::<__m256i>().add(k),
                _mm256_load_si256(from.cast::<__m256i>().add(k)),
            )
        };
    }
}
