//! [`Simd`]: the instruction-set levels bulk kernels are built for, and which one
//! this CPU runs (`src/kernel/simd_dispatch.rs` instantiates the kernels per level).

use std::fmt;

/// The instruction-set level bulk kernels run at.
///
/// The default, [`Simd::Auto`], picks the highest level this CPU supports, once per
/// process, the way numpy does when it is imported, with one exception: the
/// memory-bound elementwise kernels (`map_into`, `zip_map_into`, `for_each_mut`,
/// `map_reduce`, and the built-in `sum`, `mean`, `dot`, `min`, `max`, `argmin`,
/// `argmax`, and the column sums of `sum_axis` and `mean_axis` along axis 0) run
/// at AVX2 at most, since 512-bit vectors only slow them down (by
/// 13-23% on an AMD Zen 4, measured). Forcing a level applies it to every kernel;
/// that is for reproducibility checks and benchmarks: `PoolBuilder::simd` or the
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
///
/// # Kernels with loops of their own
///
/// A kernel runs at the chosen level only where the compiler inlines it into that
/// level's entry point. It does for a small per-element kernel (`map_into`,
/// `zip_map_into`, `for_each_mut`), whose loop is shmpool's. A kernel that loops
/// itself (`map_chunks_into`, `map_rows_into`, `stencil_rows_into`,
/// `map_indexed_into`, `fold_reduce`), or a large per-element one, can be too big
/// for the compiler's taste, and then runs compiled for the baseline at every level.
/// Mark it `#[inline(always)]`: on a closure in argument position, which stable Rust
/// accepts, or on a `fn`.
///
/// ```
/// use std::ops::Range;
/// use shmpool::{Grid, GridMut, Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let x = SharedArray::from_slice(&[1.0f64; 64])?.reshape(&[8, 8])?;
/// let mut y = SharedArray::<f64>::zeroed(64)?.reshape(&[8, 8])?;
/// pool.bulk().stencil_rows_into(
///     &x,
///     &mut y,
///     #[inline(always)]
///     |rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
///         for r in rows.filter(|&r| r > 0 && r + 1 < x.rows()) {
///             let (up, mid, down) = (x.row(r - 1), x.row(r), x.row(r + 1));
///             let out = y.row_mut(r);
///             for c in 1..x.cols() - 1 {
///                 out[c] = 0.25 * (up[c] + down[c] + mid[c - 1] + mid[c + 1]);
///             }
///         }
///     },
/// )?;
/// assert_eq!(y[9], 1.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Simd {
    /// The highest level the CPU supports (AVX2 at most for memory-bound
    /// elementwise kernels).
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

    /// The lower of two levels.
    fn min(self, other: Simd) -> Simd {
        if other.rank() < self.rank() {
            other
        } else {
            self
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

/// The levels a pool runs its kernels at: the pool's level, and the one for
/// memory-bound elementwise kernels.
///
/// Elementwise maps and the built-in sums, dot products and extremes move a few
/// bytes per arithmetic operation, so memory, not the vector width, bounds them
/// at the sizes a pool is for. There 512-bit vectors gain nothing, and they lose:
/// on this project's test machine (an AMD Zen 4 VM, whose 512-bit units are two
/// 256-bit halves) `dot` and axpy ran 13-23% slower at AVX-512 than at AVX2, and
/// slower in plain threads too (`docs/BENCHMARKS.md`, "AVX-512 and
/// memory-bound kernels"), and Skylake-class Intel cores clock down under 512-bit
/// work; glibc's `memcpy` keeps to 256-bit vectors for the same reasons. So where
/// the level was left to [`Simd::Auto`], those kernels run at AVX2 at most, and
/// every other kernel (the histogram, kernels with loops of their own) at the
/// highest level. A level chosen by `PoolBuilder::simd` or `SHMPOOL_SIMD` applies
/// to every kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    /// The pool's level, resolved: what every kernel but the memory-bound ones
    /// runs at.
    pub level: Simd,
    /// What memory-bound elementwise kernels run at.
    pub memory_bound: Simd,
}

impl Levels {
    /// The levels for `chosen` (possibly `Auto`), which the CPU supports.
    pub(crate) fn new(chosen: Simd) -> Levels {
        let level = chosen.resolve();
        let memory_bound = match chosen {
            Simd::Auto => level.min(Simd::Avx2),
            _ => level,
        };
        Levels {
            level,
            memory_bound,
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
