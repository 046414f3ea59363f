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
use crate::simd::{Levels, Simd};

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
    /// An elementwise kernel bounded by memory (see [`Levels`]).
    memory_bound: bool,
}

impl Kernels {
    /// These entry points, for an elementwise kernel that memory bounds: a map or
    /// a built-in reduction, which runs at [`Levels::memory_bound`].
    pub(crate) fn memory_bound(self) -> Kernels {
        Kernels {
            memory_bound: true,
            ..self
        }
    }

    /// The entry point a pool running at `levels` uses.
    pub(crate) fn for_pool(&self, levels: Levels) -> BulkKernel {
        self.at(if self.memory_bound {
            levels.memory_bound
        } else {
            levels.level
        })
    }

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
        memory_bound: false,
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
        memory_bound: false,
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
    use super::{KernelBody, kernels};
    use crate::kernel::chunk_call::ChunkCall;
    use crate::simd::{Levels, Simd};

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

    #[test]
    fn auto_runs_memory_bound_kernels_at_avx2_at_most_and_a_forced_level_everywhere() {
        let auto = Levels::new(Simd::Auto);
        assert_eq!(auto.level, Simd::detected());
        let expected = if Simd::detected() == Simd::Avx512 {
            Simd::Avx2
        } else {
            Simd::detected()
        };
        assert_eq!(auto.memory_bound, expected);
        for forced in [Simd::Baseline, Simd::Avx2, Simd::Avx512] {
            if forced.is_supported() {
                let levels = Levels::new(forced);
                assert_eq!((levels.level, levels.memory_bound), (forced, forced));
            }
        }
    }

    /// A body that records the level of the entry point it runs in.
    struct Records;
    std::thread_local! {
        static RAN_AT: std::cell::Cell<Option<Simd>> = const { std::cell::Cell::new(None) };
    }
    impl KernelBody for Records {
        unsafe fn run(_: &ChunkCall, level: Simd) {
            RAN_AT.with(|r| r.set(Some(level)));
        }
    }

    /// The level `kernel`'s entry point runs its body at.
    fn ran_at(kernel: super::BulkKernel) -> Option<Simd> {
        let call = ChunkCall {
            params: std::ptr::null(),
            start: 0,
            len: 0,
            chunk: 0,
            origin: 0,
            operands: [crate::kernel::chunk_call::OperandPtr::NONE; crate::layout::MAX_OPERANDS],
            context_count: 0,
            operand_count: 0,
        };
        RAN_AT.with(|r| r.set(None));
        // SAFETY: the body touches no operand; the test below runs only the
        // entry points of levels this CPU supports.
        unsafe { kernel(&call) };
        RAN_AT.with(|r| r.get())
    }

    #[test]
    #[cfg(not(shmpool_baseline_only))]
    fn a_memory_bound_kernel_runs_at_the_memory_bound_level() {
        let k = kernels::<Records>();
        let levels = Levels::new(Simd::Auto);
        assert_eq!(ran_at(k.for_pool(levels)), Some(levels.level));
        assert_eq!(
            ran_at(k.memory_bound().for_pool(levels)),
            Some(levels.memory_bound)
        );
        let forced = Levels::new(Simd::Baseline);
        assert_eq!(
            ran_at(k.memory_bound().for_pool(forced)),
            Some(Simd::Baseline)
        );
    }
}
