//! Standardise a `.npy` array, numpy's `z = (x - x.mean()) / x.std()`, with
//! deterministic reductions and an in-place map.
//!
//! ```text
//! cargo run --release --example zscore                      # on a sample it writes
//! cargo run --release --example zscore -- data.npy          # writes data.zscore.npy
//! cargo run --release --example zscore -- data.npy out.npy
//! ```
//!
//! The input must be a float64 `.npy` in C order. It is mapped, not read, and
//! copied once into shared memory (it is left as it is). The mean and the standard
//! deviation (numpy's, with `ddof=0`) are `mean` and `std`, bit-identical whatever
//! the number of workers. The copy is then normalised in place by
//! `.with(moments).for_each_mut` and saved for numpy to read with `np.load`.

use std::path::{Path, PathBuf};

use shmpool::{Pod, Pool, SharedArray, Zeroable};

/// The parameters of the normalising kernel.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Moments {
    mean: f64,
    std: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let input = match args.next() {
        Some(path) => path,
        None => write_sample()?,
    };
    let output = args
        .next()
        .unwrap_or_else(|| input.with_extension("zscore.npy"));

    let pool = Pool::builder().build()?;
    // SAFETY: nothing else writes or truncates the input while it is mapped; this
    // program only reads it.
    let x = unsafe { SharedArray::<f64>::open_npy(&input)? };
    if x.is_empty() {
        return Err(format!("{}: an empty array has no mean", input.display()).into());
    }
    println!(
        "{}: shape {:?}, {} workers",
        input.display(),
        x.shape(),
        pool.processes()
    );

    // np.mean(x), np.std(x) (ddof=0): a Welford pass per chunk, chunks combined in
    // order by Chan's formula.
    let mean = pool.bulk().mean(&x)?;
    let std = pool.bulk().std(&x, 0)?;
    println!("mean {mean:.6}, std {std:.6}");
    if std == 0.0 || !std.is_finite() {
        return Err(format!("the standard deviation is {std}: nothing to normalise by").into());
    }

    // z = (x - mean) / std, in place in a copy of x (same shape).
    let mut z = x.try_clone()?;
    drop(x);
    pool.bulk()
        .with(Moments { mean, std })
        .for_each_mut(&mut z, |m: &Moments, v: &mut f64| {
            *v = (*v - m.mean) / m.std
        })?;

    // Check with the same reductions: mean 0, std 1.
    let (z_mean, z_std) = (pool.bulk().mean(&z)?, pool.bulk().std(&z, 0)?);
    println!("normalised: mean {z_mean:.1e}, std {z_std:.9}");
    if z_mean.abs() > 1e-9 || (z_std - 1.0).abs() > 1e-9 {
        return Err("the normalised array is not standard".into());
    }
    z.save_npy(&output)?;
    println!("saved {}", output.display());
    Ok(())
}

/// Writes a sample: 1000 × 500 values of mean about 42 and standard deviation about
/// 7, in a directory of its own under the temporary directory.
fn write_sample() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("shmpool-zscore-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path: &Path = &dir.join("sample.npy");
    // SAFETY: the file is new and this program's own.
    let mut x = unsafe { SharedArray::<f64>::create_npy(path, &[1000, 500])? };
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for v in x.iter_mut() {
        // The sum of four uniforms in [0, 1): mean 2, variance 1/3.
        let mut s = 0.0;
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s += (state >> 11) as f64 / (1u64 << 53) as f64;
        }
        *v = 42.0 + 7.0 * (s - 2.0) * 3f64.sqrt();
    }
    println!("wrote a sample to {}", path.display());
    Ok(path.to_path_buf())
}
