//! Running a test's body as an MPI job, shared by the `cluster_*` test
//! binaries (feature `mpi`), which include this file by path.
//!
//! MPI can be initialized only once per process, so each test is a driver: it runs
//! its own test binary under `mpirun -n 2` and then `-n 3`, filtered to that one
//! test, with `SHMPOOL_MPI_CASE` naming it. Inside `mpirun`, each rank sees the
//! variable and runs the test's body with a fresh `Cluster` instead. A rank that
//! fails an assertion panics, which aborts the whole job (MPI_Abort), and the
//! driver reports the job's output. Every job runs under a time limit, so a hang
//! fails the test instead of stalling the suite.
#![allow(dead_code)] // each test binary uses its own part

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmpool::Cluster;

pub const CASE_VAR: &str = "SHMPOOL_MPI_CASE";
pub const JOB_TIME_LIMIT: Duration = Duration::from_secs(120);

/// What an `mpirun` job did.
pub struct Job {
    pub success: bool,
    pub code: Option<i32>,
    pub output: String,
    pub elapsed: Duration,
}

/// Runs test `case` of this binary as an `n`-rank MPI job.
pub fn mpirun(case: &str, n: usize) -> Job {
    let exe = std::env::current_exe().expect("the test binary's path");
    let args = ["--exact", case, "--nocapture", "--test-threads=1"];
    mpirun_program(n, &exe, &args, Some(case))
}

/// Runs `program` with `args` as an `n`-rank MPI job, under a time limit; `case`
/// goes to every rank in [`CASE_VAR`].
pub fn mpirun_program(n: usize, program: &Path, args: &[&str], case: Option<&str>) -> Job {
    let mut command = Command::new("mpirun");
    command
        .args(["-n", &n.to_string()])
        .arg(program)
        .args(args)
        // Root in containers and CI; more ranks than cores on small machines.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(case) = case {
        command.env(CASE_VAR, case);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run mpirun (is an MPI library installed?): {e}"));
    let started = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mpirun") {
            break status;
        }
        if started.elapsed() > JOB_TIME_LIMIT {
            // SAFETY: kill takes plain integers; the group is mpirun's own (process_group(0)).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!(
                "{} with {n} ranks ran past {JOB_TIME_LIMIT:?} (a hang)\n{}{}",
                program.display(),
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Job {
        success: status.success(),
        code: status.code(),
        output: format!("{}{}", out.join().unwrap(), err.join().unwrap()),
        elapsed: started.elapsed(),
    }
}

/// In an `mpirun` job started by this test: runs `body` on this rank and returns
/// true. Otherwise (the driver): returns false.
pub fn on_rank(case: &str, body: impl FnOnce(&Cluster)) -> bool {
    if std::env::var(CASE_VAR).as_deref() != Ok(case) {
        return false;
    }
    let cluster = Cluster::init().expect("start the cluster");
    body(&cluster);
    true
}

/// The usual test: `body` must succeed on every rank, with 2 ranks and with 3.
pub fn on_every_rank(case: &str, body: impl FnOnce(&Cluster)) {
    if on_rank(case, body) {
        return;
    }
    for n in [2, 3] {
        let job = mpirun(case, n);
        assert!(
            job.success,
            "{case} failed with {n} ranks (exit {:?}):\n{}",
            job.code, job.output
        );
    }
}

/// Pids of processes whose environment holds `entry` (`NAME=value`).
pub fn processes_with_env(entry: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for dir in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = dir.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(dir.path().join("environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|e| e == entry.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}
