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

/// Bytes computed per block before they are streamed out.
const BLOCK_BYTES: usize = 4096;

#[repr(C, align(64))]
struct Block([std::mem::MaybeUninit<u8>; BLOCK_BYTES]);

/// `out[i] = g(i)` for `i` in `0..n`, the output written with streaming stores
/// where the element size allows (it divides 16), plain stores elsewhere.
///
/// # Safety
/// `out` is valid for writes of `n` elements that nobody else accesses during the
/// call.
#[inline(always)]
pub(crate) unsafe fn map_streaming<U: Copy>(n: usize, out: *mut U, g: impl Fn(usize) -> U) {
    let size = size_of::<U>();
    #[cfg(target_arch = "x86_64")]
    if size > 0 && 16 % size == 0 {
        use std::arch::x86_64::{__m128i, _mm_load_si128, _mm_sfence, _mm_stream_si128};
        let mut i = 0;
        // Plain stores up to the first 16-byte boundary of the output.
        while i < n && (out.wrapping_add(i) as usize) % 16 != 0 {
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
            let from = block.0.as_ptr().cast::<__m128i>();
            // SAFETY: `out + i` is 16-byte aligned (the loop above, and every block is
            // a multiple of 16 bytes), and the block's `BLOCK_BYTES` lie within the
            // caller's range (`i + per_block <= n`); the block is 64-byte aligned and
            // fully written just above. SSE2 is part of the x86-64 baseline.
            unsafe {
                let to = out.add(i).cast::<__m128i>();
                for k in 0..BLOCK_BYTES / 16 {
                    _mm_stream_si128(to.add(k), _mm_load_si128(from.add(k)));
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
    for i in 0..n {
        // SAFETY: `i < n`, within the caller's range.
        unsafe { out.add(i).write(g(i)) };
    }
}
