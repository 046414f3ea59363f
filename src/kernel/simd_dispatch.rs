//! Runtime SIMD dispatch: every bulk trampoline is instantiated once per
//! instruction-set level, and the pool ships the offset of the level it chose.
//!
//! A kernel body ([`KernelBody`]) is `#[inline(always)]`, so each of the three entry
//! points below gets its own copy of the body, with the user's closure inlined into
//! it and compiled for that entry point's target features. This is numpy's dispatch
//! (a baseline build plus AVX2 and AVX-512 variants), done by monomorphization: the
//! user writes plain Rust and needs no `unsafe` and no compiler flags.
//!
//! Whatever is not inlined is one function shared by the three entry points and
//! compiled once, for the baseline. So nothing of shmpool's stands between an entry
//! point and the user's kernel as a function of its own: the bodies take their
//! argument from `KernelEnv::arg` rather than through a closure, and every kernel
//! shmpool builds (the forms without parameters, which wrap the user's kernel, and
//! the built-in reductions) is an `#[inline(always)]` closure. The compiler inlines
//! the user's kernel itself when it is small, as a per-element kernel usually is; a
//! kernel with loops of its own needs `#[inline(always)]` (see [`Simd`]).
//!
//! Plain arithmetic gives the same bits at every level: Rust never contracts
//! `a * b + c` into a fused multiply-add by itself, and IEEE-754 operations are
//! exact-rounded on every level. A kernel that calls `mul_add` gets a hardware FMA at
//! x86-64-v3 and above and a correctly rounded software one at the baseline, so its
//! results agree too.

use super::chunk_call::{BulkKernel, ChunkCall};
use crate::simd::Simd;

/// A kernel body: what one chunk call does, independent of the instruction set.
pub(crate) trait KernelBody {
    /// Runs one chunk, in the entry point of `level` (a constant there, since the
    /// body is inlined into it: a branch on it costs nothing).
    ///
    /// # Safety
    /// See [`BulkKernel`]; the CPU supports `level`.
    unsafe fn run(call: &ChunkCall, level: Simd);
}

/// A kernel's entry points, one per level.
#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    baseline: BulkKernel,
    #[cfg(target_arch = "x86_64")]
    avx2: BulkKernel,
    #[cfg(target_arch = "x86_64")]
    avx512: BulkKernel,
}

impl Kernels {
    /// The entry point for `level` (already resolved and checked to be supported).
    pub(crate) fn at(&self, level: Simd) -> BulkKernel {
        match level {
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => self.avx2,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => self.avx512,
            _ => self.baseline,
        }
    }

    /// The baseline entry point.
    #[cfg(test)]
    pub(crate) fn baseline(&self) -> BulkKernel {
        self.baseline
    }
}

/// The entry points of kernel body `K`.
///
/// Built with `--cfg shmpool_baseline_only`, every level runs the baseline entry
/// point and the others are never instantiated: that build exists to measure what
/// dispatch costs in build time and binary size (docs/BENCHMARKS.md).
#[cfg(shmpool_baseline_only)]
pub(crate) fn kernels<K: KernelBody>() -> Kernels {
    Kernels {
        baseline: baseline_entry::<K>,
        #[cfg(target_arch = "x86_64")]
        avx2: baseline_entry::<K>,
        #[cfg(target_arch = "x86_64")]
        avx512: baseline_entry::<K>,
    }
}

/// The entry points of kernel body `K`.
#[cfg(not(shmpool_baseline_only))]
pub(crate) fn kernels<K: KernelBody>() -> Kernels {
    Kernels {
        baseline: baseline_entry::<K>,
        #[cfg(target_arch = "x86_64")]
        avx2: avx2_entry::<K>,
        #[cfg(target_arch = "x86_64")]
        avx512: avx512_entry::<K>,
    }
}

/// # Safety
/// See [`BulkKernel`].
unsafe fn baseline_entry<K: KernelBody>(call: &ChunkCall) {
    // SAFETY: delegated to the caller; every CPU has the baseline.
    unsafe { K::run(call, Simd::Baseline) }
}

/// # Safety
/// See [`BulkKernel`]; in addition, the CPU supports x86-64-v3 (the pool ships this
/// entry point only when `Simd::is_supported` said so).
#[cfg(all(target_arch = "x86_64", not(shmpool_baseline_only)))]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,movbe,f16c,popcnt")]
unsafe fn avx2_entry<K: KernelBody>(call: &ChunkCall) {
    // SAFETY: delegated to the caller, who checked the level.
    unsafe { K::run(call, Simd::Avx2) }
}

/// # Safety
/// See [`BulkKernel`]; in addition, the CPU supports x86-64-v4.
#[cfg(all(target_arch = "x86_64", not(shmpool_baseline_only)))]
#[target_feature(
    enable = "avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,movbe,f16c,popcnt"
)]
unsafe fn avx512_entry<K: KernelBody>(call: &ChunkCall) {
    // SAFETY: delegated to the caller, who checked the level.
    unsafe { K::run(call, Simd::Avx512) }
}

#[cfg(test)]
mod tests {
    use crate::simd::Simd;

    #[test]
    fn levels_parse_and_resolve() {
        assert_eq!(Simd::parse("AVX2"), Some(Simd::Avx2));
        assert_eq!(Simd::parse("baseline"), Some(Simd::Baseline));
        assert_eq!(Simd::parse("x86-64-v4"), Some(Simd::Avx512));
        assert_eq!(Simd::parse("sse9"), None);
        assert_ne!(Simd::Auto.resolve(), Simd::Auto);
        assert!(Simd::Baseline.is_supported());
        assert!(Simd::detected().is_supported());
    }
}
