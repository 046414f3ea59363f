//! Runtime SIMD dispatch: every bulk trampoline is instantiated once per
//! instruction-set level, and the pool ships the offset of the level it chose.
//!
//! A kernel body ([`KernelBody`]) is `#[inline(always)]`, so each of the three entry
//! points below gets its own copy of the body, with the user's closure inlined into
//! it and compiled for that entry point's target features. This is numpy's dispatch
//! (a baseline build plus AVX2 and AVX-512 variants), done by monomorphization: the
//! user writes plain Rust and needs no `unsafe` and no compiler flags.
//!
//! Plain arithmetic gives the same bits at every level: Rust never contracts
//! `a * b + c` into a fused multiply-add by itself, and IEEE-754 operations are
//! exact-rounded on every level. A kernel that calls `mul_add` gets a hardware FMA at
//! x86-64-v3 and above and a correctly rounded software one at the baseline, so its
//! results agree too.

use std::fmt;

use super::{BulkKernel, ChunkCall};

/// A kernel body: what one chunk call does, independent of the instruction set.
pub(crate) trait KernelBody {
    /// Runs one chunk.
    ///
    /// # Safety
    /// See [`BulkKernel`].
    unsafe fn run(call: &ChunkCall);
}

/// The instruction-set level bulk kernels run at.
///
/// The default, [`Simd::Auto`], picks the highest level this CPU supports, once per
/// process, the way numpy does when it is imported. Forcing a level is for
/// reproducibility checks and benchmarks: `PoolBuilder::simd` or the
/// `SHMPOOL_SIMD` environment variable (`baseline`, `avx2` or `avx512`).
///
/// # Examples
///
/// ```
/// use shmpool::{Pool, Simd};
///
/// let pool = Pool::builder().processes(1).simd(Simd::Baseline).build()?;
/// assert_eq!(pool.stats().simd, Simd::Baseline);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Simd {
    /// The highest level the CPU supports.
    #[default]
    Auto,
    /// The compilation target's baseline: SSE2 on x86-64, NEON on aarch64.
    Baseline,
    /// x86-64-v3: AVX2, FMA, BMI1/2 (Haswell and later).
    Avx2,
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL (Skylake-X, Zen 4 and later).
    Avx512,
}

impl fmt::Display for Simd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Simd::Auto => "auto",
            Simd::Baseline => "baseline",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        })
    }
}

impl Simd {
    /// Parses a level as `SHMPOOL_SIMD` spells it.
    pub fn parse(s: &str) -> Option<Simd> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Some(Simd::Auto),
            "baseline" | "sse2" | "neon" | "none" => Some(Simd::Baseline),
            "avx2" | "x86-64-v3" | "v3" => Some(Simd::Avx2),
            "avx512" | "x86-64-v4" | "v4" => Some(Simd::Avx512),
            _ => None,
        }
    }

    /// The highest level this CPU supports.
    pub fn detected() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512cd")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && v3_supported()
            {
                return Simd::Avx512;
            }
            if v3_supported() {
                return Simd::Avx2;
            }
        }
        Simd::Baseline
    }

    /// Whether this CPU can run kernels built for `self`.
    pub fn is_supported(self) -> bool {
        self.rank() <= Simd::detected().rank()
    }

    /// `Auto` made concrete.
    pub(crate) fn resolve(self) -> Simd {
        match self {
            Simd::Auto => Simd::detected(),
            level => level,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Simd::Auto | Simd::Baseline => 0,
            Simd::Avx2 => 1,
            Simd::Avx512 => 2,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn v3_supported() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
        && std::arch::is_x86_feature_detected!("movbe")
        && std::arch::is_x86_feature_detected!("f16c")
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
    // SAFETY: delegated to the caller.
    unsafe { K::run(call) }
}

/// # Safety
/// See [`BulkKernel`]; in addition, the CPU supports x86-64-v3 (the pool ships this
/// entry point only when `Simd::is_supported` said so).
#[cfg(all(target_arch = "x86_64", not(shmpool_baseline_only)))]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,movbe,f16c,popcnt")]
unsafe fn avx2_entry<K: KernelBody>(call: &ChunkCall) {
    // SAFETY: delegated to the caller.
    unsafe { K::run(call) }
}

/// # Safety
/// See [`BulkKernel`]; in addition, the CPU supports x86-64-v4.
#[cfg(all(target_arch = "x86_64", not(shmpool_baseline_only)))]
#[target_feature(
    enable = "avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,movbe,f16c,popcnt"
)]
unsafe fn avx512_entry<K: KernelBody>(call: &ChunkCall) {
    // SAFETY: delegated to the caller.
    unsafe { K::run(call) }
}

#[cfg(test)]
mod tests {
    use super::Simd;

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
