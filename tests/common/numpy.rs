//! numpy as the reference for numeric results: a test writes its data to `.npy`
//! files, a short Python script computes numpy's answers and saves them as `.npy`
//! files, and the test compares: exactly for counts, extremes and indices, within a
//! stated bound for floating-point sums.
//!
//! ```ignore
//! let Some(np) = Numpy::get("my_test") else { return };   // skipped (not under CI)
//! np.save("x", &xs);
//! np.run("save('s', np.sum(load('x')))");
//! let want: Vec<f64> = np.load("s");
//! ```
//!
//! The script sees `np`, `D` (the directory), `load(name)` and `save(name, a)`.
//! Without python3 and numpy, [`Numpy::get`] returns `None` and the test skips with
//! a line on stderr, except under CI (`CI=true`), where a missing numpy fails the
//! test: CI installs numpy, and a broken install must not pass unseen.
//!
//! Binaries that use nothing else of `common` include this file alone:
//! `#[path = "common/numpy.rs"] mod numpy;`.

#![allow(dead_code)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use shmpool::Pod;
use shmpool::npy::NpyElement;

/// What every script starts with.
const PRELUDE: &str = "\
import os, sys, math
import numpy as np
D = sys.argv[1]
def load(name):
    return np.load(os.path.join(D, name + '.npy'))
def save(name, a):
    np.save(os.path.join(D, name + '.npy'), np.asarray(a))
";

/// Whether this run is under CI, where a test that needs numpy must fail without
/// it: the environment has `CI` set to `true` or `1` (as GitHub Actions, GitLab and
/// most CI systems set it, and `.ci/run` exports it).
pub fn under_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

/// Whether python3 can import numpy here (asked once per test binary).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import numpy"])
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

/// Whether `test` can use numpy: `true` if it is installed; otherwise `false`
/// after a line on stderr, or a panic under CI.
pub fn require(test: &str) -> bool {
    if available() {
        return true;
    }
    assert!(
        !under_ci(),
        "{test}: python3 with numpy is required under CI (CI=true) and is not available"
    );
    eprintln!("SKIPPED {test}: python3 with numpy is not available");
    false
}

/// A scratch directory that numpy and the test exchange `.npy` files through,
/// removed on drop.
#[derive(Debug)]
pub struct Numpy {
    dir: PathBuf,
    test: String,
}

impl Numpy {
    /// numpy for `test`, or `None` when it is not installed (see [`require`]).
    pub fn get(test: &str) -> Option<Numpy> {
        if !require(test) {
            return None;
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shmpool-numpy-{}-{}-{}",
            std::process::id(),
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Some(Numpy {
            dir,
            test: test.into(),
        })
    }

    /// The directory the files are in (`D` in the script).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the array `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.npy"))
    }

    /// Saves `values` as the 1-D array `name`, for the script's `load(name)`.
    pub fn save<T: NpyElement + Pod>(&self, name: &str, values: &[T]) {
        shmpool::npy::save(self.path(name), values)
            .unwrap_or_else(|e| panic!("{}: saving {name}: {e}", self.test));
    }

    /// Saves `values` as the array `name` of `shape`.
    pub fn save_shaped<T: NpyElement + Pod>(&self, name: &str, values: &[T], shape: &[usize]) {
        shmpool::npy::save_shaped(self.path(name), values, shape)
            .unwrap_or_else(|e| panic!("{}: saving {name}: {e}", self.test));
    }

    /// Runs `script` after the prelude, and returns its standard output. A script
    /// that fails fails the test, with its standard error.
    pub fn run(&self, script: &str) -> String {
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!("{PRELUDE}{script}"))
            .arg(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("{}: running python3: {e}", self.test));
        assert!(
            out.status.success(),
            "{}: the numpy script failed:\n{script}\n{}",
            self.test,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The array `name` the script saved, as a flat vector.
    pub fn load<T: NpyElement + Pod>(&self, name: &str) -> Vec<T> {
        self.load_shaped(name).0
    }

    /// The array `name` the script saved, and its shape.
    pub fn load_shaped<T: NpyElement + Pod>(&self, name: &str) -> (Vec<T>, Vec<usize>) {
        let a = shmpool::SharedArray::<T>::load_npy(self.path(name))
            .unwrap_or_else(|e| panic!("{}: loading numpy's {name}: {e}", self.test));
        (a.to_vec(), a.shape().to_vec())
    }
}

impl Drop for Numpy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts `got == want` element by element, naming the first difference.
pub fn assert_exact<T: PartialEq + Debug>(got: &[T], want: &[T], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: element {i} is {:?}, numpy's is {:?}",
            got[i], want[i]
        );
    }
}

/// Whether two floats are the same number for an exact comparison of extremes:
/// equal, or both NaN. The sign of a zero is not compared: numpy's own
/// `np.min([0.0, -0.0])` depends on the SIMD path it takes.
pub fn same_value(got: f64, want: f64) -> bool {
    got == want || (got.is_nan() && want.is_nan())
}

/// Asserts that the floating-point sum `got` of `n` terms whose magnitudes add up
/// to `magnitude` is within the stated bound of numpy's `want`.
///
/// The bound: any order of adding `n` terms, each rounded with unit roundoff `eps`,
/// lies within `(n − 1)·eps·Σ|tᵢ|` of the exact sum (Higham, *Accuracy and
/// Stability of Numerical Algorithms*, §4.2), so two such sums lie within twice
/// that of each other, whatever order either used. A dot product's terms are
/// rounded products: one more rounding each, `n·eps`. A non-finite `want` must be
/// matched exactly (the same infinity, or NaN).
pub fn assert_sum_close(got: f64, want: f64, n: usize, magnitude: f64, eps: f64, what: &str) {
    if !want.is_finite() {
        assert!(same_value(got, want), "{what}: {got}, numpy's is {want}");
        return;
    }
    let bound = 2.0 * n as f64 * eps * magnitude;
    assert!(
        (got - want).abs() <= bound,
        "{what}: {got}, numpy's is {want}: off by {:e}, more than the bound {bound:e} \
         (2·n·eps·Σ|t|, n = {n})",
        (got - want).abs()
    );
}
