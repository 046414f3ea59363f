//! Building the examples, for the suites that run them (`tests/examples.rs`, and
//! `tests/cluster_calls.rs` and `tests/cluster_bulk.rs` under `mpirun`), which
//! include this file by path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the examples with `cargo build --examples` (plus `features`) in this
/// test binary's own profile, and returns the directory they land in.
pub fn build_examples(features: &[&str]) -> PathBuf {
    // This binary is <target>/<profile dir>/deps/<test>-<hash>; the examples land in
    // <target>/<profile dir>/examples.
    let exe = std::env::current_exe().expect("this test's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in <profile dir>/deps");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--examples"]);
    if !features.is_empty() {
        cargo.args(["--features", &features.join(",")]);
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        // `cargo test` builds the examples with the test profile, whose output
        // is this directory too: ask for that profile, so this build finds them
        // built (the dev profile would compile the crate once more).
        Some("debug") => {
            cargo.args(["--profile", "test"]);
        }
        Some("release") => {
            cargo.arg("--release");
        }
        Some(custom) => {
            cargo.args(["--profile", custom]);
        }
        None => panic!("no profile directory in {}", exe.display()),
    }
    let out = cargo.output().expect("run cargo build --examples");
    assert!(
        out.status.success(),
        "cargo build --examples failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("examples")
}
