//! Every program in `examples/` runs here, as its users would run it, so none can rot.
//!
//! The examples are built once per test run, by `cargo build --examples` in this test
//! binary's own profile, then each runs as a subprocess with small arguments (one
//! test each, so they run in parallel) and must exit 0 and print its key lines.

#[path = "common/numpy.rs"]
mod numpy;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "common/examples.rs"]
mod examples;

/// An example, the arguments the tests give it, and lines its output must contain.
struct Example {
    name: &'static str,
    args: &'static [&'static str],
    expect: &'static [&'static str],
}

const EXAMPLES: &[Example] = &[
    Example {
        name: "sqrt",
        args: &["100000"],
        expect: &["sqrt over 100000 f64", "all three agree bit for bit"],
    },
    Example {
        name: "scaling",
        args: &["16", "2"],
        expect: &[
            "scaling over 2^16 f64",
            "map_into (sqrt)           1",
            "apply round trip          2",
            "all results checked",
        ],
    },
    Example {
        name: "apply_async",
        args: &[],
        expect: &[
            "map             [400, 300, 200, 100] in input order",
            "get() on each handle, in submission order: [400, 300, 200, 100]",
            "imap_unordered",
            "we lacked patience",
            "the pool was terminated before this work finished",
            "all results checked",
        ],
    },
    Example {
        name: "starmap",
        args: &[],
        expect: &[
            r#"divide(5, 0) = Err("cannot divide 5 by zero")"#,
            "Err(TaskPanicked): the task panicked at examples/starmap.rs",
            "get() = [0.125, 1.5]",
            "all results checked",
        ],
    },
    Example {
        name: "imap_progress",
        args: &["5000"],
        expect: &[
            "within its window",
            "all 5000 results arrived in input order",
            "the longest Collatz chain from 1..=5000 starts at 3711: 237 steps",
        ],
    },
    Example {
        name: "async_pipeline",
        args: &["5000"],
        expect: &[
            "progress: 5000/5000 items (100%)",
            "stream: all 5000 results arrived in input order; the longest chain from \
             1..=5000 starts at 3711: 237 steps",
            "timeout: gave up on the slow task after 200 ms",
            "cancel: stopped an endless stream after 10 items (Cancelled)",
            "the pool still answers: 6 * 7 = 42",
            "a fork-server pool built inside the runtime answers 40 + 2 = 42",
            "all results checked",
        ],
    },
    Example {
        name: "python_interop",
        args: &["10000"],
        // The Python half runs when python3 with numpy is installed (CI installs
        // it); without it the example says it skipped, and only the Rust half runs.
        expect: &["workers wrote sqrt of 10000 f64"],
    },
    Example {
        name: "zscore",
        // No path: the example writes a sample .npy into a directory of its own.
        args: &[],
        expect: &[
            "wrote a sample to",
            "shape [1000, 500]",
            "normalised: mean",
            "std 1.000000000",
            "saved ",
        ],
    },
    Example {
        name: "heat",
        args: &["256", "200", "20"],
        expect: &[
            "heat 256×256, 200 steps",
            "step 20: max |Δ| = ",
            "step 200: max |Δ| = ",
            "residual fell from",
            "matches a sequential run bit for bit",
        ],
    },
];

/// Examples that need more than a plain run, and the tests that run them.
const RUN_ELSEWHERE: [&str; 2] = [
    "mpi_sqrt", // tests/cluster_calls.rs, under `mpirun -n 2` and `-n 3` (feature `mpi`)
    "mpi_sum",  // tests/cluster_bulk.rs, under `mpirun -n 2` and `-n 3` (feature `mpi`)
];

/// How long one example may run (a debug build, on a busy machine).
const TIME_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn sqrt() {
    run("sqrt");
}

#[test]
fn apply_async() {
    run("apply_async");
}

#[test]
fn starmap() {
    run("starmap");
}

#[test]
fn imap_progress() {
    run("imap_progress");
}

/// On a terminal the bar is drawn, and when it is done its line is ended: the
/// example's next line starts a line of its own, not the bar's (issue 25). The
/// terminal is `script`'s pseudo-terminal (util-linux); without `script` the test
/// says so and passes.
#[test]
fn imap_progress_ends_the_bar_line_on_a_terminal() {
    let exe = examples_dir().join(format!("imap_progress{}", std::env::consts::EXE_SUFFIX));
    let command = format!("{} 3000", exe.display());
    let out = match Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: no `script` to give the example a terminal: {e}");
            return;
        }
    };
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let bar = text.rfind("3000/3000").expect("the full bar was drawn");
    let next = text
        .find("all 3000 results arrived in input order")
        .expect("the next line");
    assert!(bar < next, "{text}");
    let between = &text[bar..next];
    assert!(
        between.ends_with('\n'),
        "the line after the finished bar starts on the bar's line: {between:?}"
    );
}

#[test]
fn async_pipeline() {
    run("async_pipeline");
}

#[test]
fn python_interop() {
    let stdout = run("python_interop");
    if numpy::require("python_interop") {
        // With numpy present, the Python half must have run, not been skipped.
        for line in [
            "python: y == sqrt(x) computed by the Rust workers, max error 0.0",
            "y has shape (",
            "rust: sees Python's in-place write",
            "interop checked",
        ] {
            assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
        }
    }
}

#[test]
fn zscore() {
    let stdout = run("zscore");
    let saved = stdout
        .lines()
        .find_map(|l| l.strip_prefix("saved "))
        .unwrap_or_else(|| panic!("no saved path in:\n{stdout}"));
    let saved = Path::new(saved.trim());
    let dir = saved
        .parent()
        .expect("the sample's directory")
        .to_path_buf();
    assert!(
        dir.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("shmpool-zscore-")),
        "the sample is not in a directory of its own: {}",
        saved.display()
    );
    let checked = if numpy::require("zscore") {
        // numpy reads the result and finds it standardised, with the sample's shape.
        let script = "import sys, numpy as np\n\
                      z = np.load(sys.argv[1])\n\
                      assert z.dtype == np.float64 and z.shape == (1000, 500), (z.dtype, z.shape)\n\
                      assert abs(z.mean()) < 1e-9 and abs(z.std() - 1.0) < 1e-9, (z.mean(), z.std())\n\
                      print('numpy: mean %.1e std %.12f' % (z.mean(), z.std()))";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(saved)
            .output()
            .expect("run python3");
        Some(out)
    } else {
        None
    };
    fs::remove_dir_all(&dir).expect("remove the sample's directory");
    if let Some(out) = checked {
        assert!(
            out.status.success(),
            "numpy's check failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("numpy: mean"));
    }
}

#[test]
fn heat() {
    run("heat");
}

#[test]
fn every_example_is_run_by_these_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut found: Vec<String> = fs::read_dir(&dir)
        .expect("list examples/")
        .map(|entry| entry.expect("examples/ entry").path())
        .filter_map(|path| {
            let single = path.extension().is_some_and(|e| e == "rs");
            let multi = path.join("main.rs").is_file();
            (single || multi).then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = EXAMPLES
        .iter()
        .map(|e| e.name)
        .chain(RUN_ELSEWHERE)
        .map(str::to_string)
        .collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "examples/ and this file's EXAMPLES differ: give each example a test here"
    );
}

/// Runs an example from [`EXAMPLES`], checks its exit status and output, and
/// returns its standard output.
fn run(name: &str) -> String {
    let example = EXAMPLES
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} is not in EXAMPLES"));
    let exe = examples_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(exe.is_file(), "{} was not built", exe.display());

    // Output goes to files, not pipes: no reader threads, and the child can be
    // killed at the time limit without anything blocking.
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples");
    fs::create_dir_all(&out_dir).expect("create the output directory");
    let stdout_path = out_dir.join(format!("{name}.stdout"));
    let stderr_path = out_dir.join(format!("{name}.stderr"));
    let mut child = Command::new(&exe)
        .args(example.args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("create the stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("create the stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break Some(status);
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    let shown = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    let args = example.args.join(" ");
    match status {
        None => panic!("example {name} {args} ran past {TIME_LIMIT:?}\n{shown}"),
        Some(s) if !s.success() => panic!("example {name} {args} failed: {s}\n{shown}"),
        Some(_) => {}
    }
    for line in example.expect {
        assert!(
            stdout.contains(line),
            "example {name} {args} did not print {line:?}\n{shown}"
        );
    }
    stdout
}

/// The directory of the example binaries, built on first use in this test binary's
/// profile.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| examples::build_examples(&[]))
}
