//! Helpers shared by the integration tests (`faults_*.rs` and the fault storm's
//! `storm` module, `tasks_*.rs`, `pool_*.rs`, `array_named.rs`, and more): time
//! limits, finding and signalling our own workers, payload patterns, a small PRNG,
//! markers that let a worker die only once, checking a map's output, re-running a
//! test in a child process, and a small private `/dev/shm` for such a child.
//!
//! This folder holds every helper that more than one suite uses. Besides this
//! module (`mod common;`), some suites include a file of it by path: `numpy.rs`
//! (python3 with numpy, also `common::numpy`), `array_memory.rs` (the memory behind
//! an array, also for `benches/first_touch.rs`), `examples.rs` (building the
//! examples) and `mpi_jobs.rs` (the `cluster_*` suites' MPI jobs).

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::ops::Range;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shmpool::{Error, Pool};

pub mod numpy;

/// Runs `body(method)` once per start method, each test as its own module:
/// `<test>::fork`, `<test>::fork_server` and `<test>::spawn`.
#[allow(unused_macros)] // not every binary runs its tests this way
macro_rules! per_start_method {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn fork() {
                    super::$name(shmpool::StartMethod::Fork)
                }
                #[test]
                fn fork_server() {
                    super::$name(shmpool::StartMethod::ForkServer)
                }
                #[test]
                fn spawn() {
                    super::$name(shmpool::StartMethod::Spawn)
                }
            }
        )*
    };
}

/// Runs every test named once per start method, grouped by method:
/// `fork::<test>`, `spawn::<test>` and `fork_server::<test>`.
#[allow(unused_macros)] // not every binary runs its tests this way
macro_rules! for_each_start_method {
    ($($name:ident),* $(,)?) => {
        mod fork {
            $(#[test] fn $name() { super::$name(shmpool::StartMethod::Fork) })*
        }
        mod spawn {
            $(#[test] fn $name() { super::$name(shmpool::StartMethod::Spawn) })*
        }
        mod fork_server {
            $(#[test] fn $name() { super::$name(shmpool::StartMethod::ForkServer) })*
        }
    };
}

/// A pool of two workers under start method `m`.
pub fn pool(m: shmpool::StartMethod) -> Pool {
    Pool::builder()
        .processes(2)
        .start_method(m)
        .build()
        .expect("pool")
}

/// A pool of `processes` workers under `method`, failing the test with a clear
/// message if it cannot be built.
pub fn pool_of(processes: usize, method: shmpool::StartMethod) -> Pool {
    ok(
        Pool::builder()
            .processes(processes)
            .start_method(method)
            .build(),
        format!("build a pool of {processes} ({method:?})"),
    )
}

/// Runs `f` on its own thread and returns its value; panics (failing the test
/// instead of hanging it) if `f` has not returned within `limit`. A panic inside `f`
/// is re-raised here. A thread that overran is left behind; the process ends with
/// the test run, and the pool's workers die with it (PDEATHSIG).
pub fn within<T, F>(limit: Duration, what: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(what.chars().take(60).collect())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .expect("spawn a time-limited thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            let _ = handle.join();
            v
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: did not finish within {limit:?} (a hang or a deadlock)"),
    }
}

/// Polls `cond` every few milliseconds for up to `limit`; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The fields of /proc/<pid>/stat after the command name (which may contain spaces
/// and parentheses): state, ppid, ...
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split(' ').map(str::to_string).collect())
}

/// The parent pid of `pid`, from /proc.
pub fn ppid_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
}

/// The live (non-zombie) children of `pid`.
pub fn live_children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| ppid_of(p) == Some(pid) && alive(p))
        .collect()
}

/// The pids of the pool's running workers, as `stats()` reports them.
pub fn worker_pids(pool: &Pool) -> Vec<i32> {
    pool.stats().workers.iter().filter_map(|w| w.pid).collect()
}

/// The pool's fork server: the parent of its workers (every start method starts
/// workers from the server). Waits up to 10 s for a worker to be running.
pub fn fork_server_of(pool: &Pool) -> i32 {
    let mut server = None;
    let found = wait_until(Duration::from_secs(10), || {
        server = worker_pids(pool).into_iter().find_map(ppid_of);
        server.is_some()
    });
    assert!(found, "no running worker to find the fork server by");
    let server = server.unwrap();
    assert_eq!(
        ppid_of(server),
        Some(std::process::id() as i32),
        "the fork server {server} is not our child"
    );
    server
}

/// Sends `sig` to `pid` if it is a child of our fork server `server`. The pidfd pins
/// the process between the check and the signal, so a reused pid (another test's
/// worker, say) is never hit. Returns whether the signal was sent.
pub fn signal_worker(pid: i32, server: i32, sig: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return false;
    }
    let ours = ppid_of(pid) == Some(server);
    let sent = ours && {
        // SAFETY: sends a signal through a pidfd we own; no memory is passed.
        let rc = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, sig, 0usize, 0u32) };
        rc == 0
    };
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
    sent
}

/// Sends `sig` to `pid` (a process we know is ours: the fork server).
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

/// Stops a process with SIGSTOP and continues it with SIGCONT when dropped, so a
/// failing assertion cannot leave it stopped.
pub struct Stopped(pub i32);

impl Stopped {
    pub fn new(pid: i32) -> Stopped {
        signal(pid, libc::SIGSTOP);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// Kills this process (a worker, when called from a task or kernel) with SIGKILL.
pub fn die() -> ! {
    // SAFETY: kill and getpid have no memory-safety preconditions.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL returned")
}

/// Byte `i` of the pattern for `seed`: a multiplicative hash of `seed + i`, so no
/// shift, truncation or zeroed page of a payload goes unnoticed.
pub fn pattern_byte(seed: u64, i: usize) -> u8 {
    (seed
        .wrapping_add(i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        >> 56) as u8
}

/// `len` bytes of the pattern for `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern_byte(seed, i)).collect()
}

/// The first byte of `bytes` that is not the pattern for `seed`, or the length if the
/// length differs; `None` when `bytes` is exactly `pattern(seed, len)`.
pub fn pattern_mismatch(seed: u64, len: usize, bytes: &[u8]) -> Option<String> {
    if let Some(i) = bytes
        .iter()
        .enumerate()
        .position(|(i, &b)| b != pattern_byte(seed, i))
    {
        return Some(format!(
            "byte {i} of {} is {:#04x}, expected {:#04x}",
            bytes.len(),
            bytes[i],
            pattern_byte(seed, i)
        ));
    }
    (bytes.len() != len).then(|| format!("{} bytes, expected {len}", bytes.len()))
}

/// SplitMix64: a tiny seeded generator, enough to drive a reproducible storm.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `range` (not empty).
    pub fn range(&mut self, range: Range<u64>) -> u64 {
        range.start + self.below(range.end - range.start)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The path of the marker named `tag` and `key` for the fork server `server`.
pub fn marker_path(tag: &str, server: i32, key: u64) -> PathBuf {
    std::env::temp_dir().join(format!("shmpool-{tag}-{server}-{key}"))
}

/// Called in a worker: true the first time it is called with this `tag` and `key`
/// for this pool (markers are named after the fork server, the worker's parent),
/// false ever after. The marker is created with O_EXCL, so exactly one caller wins.
pub fn first_time(tag: &str, key: u64) -> bool {
    // SAFETY: getppid has no preconditions.
    let server = unsafe { libc::getppid() };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker_path(tag, server, key))
        .is_ok()
}

/// Removes the markers `first_time(tag, key)` made for the pool of fork server
/// `server`, for each key in `keys`.
pub fn remove_markers(tag: &str, server: i32, keys: impl IntoIterator<Item = u64>) {
    for key in keys {
        let _ = std::fs::remove_file(marker_path(tag, server, key));
    }
}

/// Every element range a failed bulk map names as not computed
/// ([`Error::failed_ranges`]), or `None` for an error that names no chunk.
pub fn failed_ranges(e: &Error) -> Option<Vec<Range<usize>>> {
    let ranges = e.failed_ranges();
    (!ranges.is_empty()).then_some(ranges)
}

/// The first index at which `ys` differs from `expected(i)`, outside `skip`.
pub fn first_wrong<T: PartialEq + Copy>(
    ys: &[T],
    skip: &[Range<usize>],
    expected: impl Fn(usize) -> T,
) -> Option<usize> {
    (0..ys.len()).find(|&i| !skip.iter().any(|r| r.contains(&i)) && ys[i] != expected(i))
}

/// Runs the test `name` of this test binary in a child process, with the
/// environment variable `env` set to "1" (the test checks it to play the child's
/// part), and returns its output. Kills the child and panics after `limit`.
pub fn rerun_self(name: &str, env: &str, limit: Duration) -> Output {
    rerun_self_with(name, &[(env, "1"), ("RUST_BACKTRACE", "0")], limit)
}

/// As [`rerun_self`], with the environment variables `envs` set in the child.
pub fn rerun_self_with(name: &str, envs: &[(&str, &str)], limit: Duration) -> Output {
    let child = Command::new(std::env::current_exe().expect("this test's path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-run this test binary");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    // The output is read while the child runs, so a full pipe cannot stall it.
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("collect the child's output"),
        Err(_) => {
            // The child is not reaped until the waiting thread sees it exit, so the
            // pid is still ours.
            signal(pid, libc::SIGKILL);
            let out = rx
                .recv()
                .expect("the waiting thread")
                .expect("reap the child");
            panic!(
                "child {name} did not finish within {limit:?}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// How long a test waits for any one result before it calls the wait a hang.
pub const RESULT_WAIT: Duration = Duration::from_secs(30);

/// The result of `r`, waiting at most [`RESULT_WAIT`]; panics (naming `what`) if it
/// does not come, instead of hanging the test.
pub fn get<R: Send + 'static>(
    r: shmpool::AsyncResult<R>,
    what: impl std::fmt::Display,
) -> shmpool::Result<R> {
    match r.get_timeout(RESULT_WAIT) {
        Err(Error::WaitTimeout(d)) => panic!("{what}: no result within {d:?} (a hang)"),
        other => other,
    }
}

/// The value of an `Ok`; panics with `what` and the error otherwise.
pub fn ok<R>(r: shmpool::Result<R>, what: impl std::fmt::Display) -> R {
    r.unwrap_or_else(|e| panic!("{what}: unexpected error: {e} ({e:?})"))
}

/// Sets its flag when dropped, unwinding included: stops a helper thread (a killer)
/// that a scope would otherwise wait for forever after a failed assertion.
pub struct RaiseOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for RaiseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Counts, per task, how many times its callbacks ran: each task must be
/// delivered exactly once.
#[derive(Clone)]
pub struct Deliveries(std::sync::Arc<Vec<std::sync::atomic::AtomicU8>>);

impl Deliveries {
    pub fn new(tasks: usize) -> Deliveries {
        Deliveries(std::sync::Arc::new(
            (0..tasks)
                .map(|_| std::sync::atomic::AtomicU8::new(0))
                .collect(),
        ))
    }

    /// Callbacks that count a delivery of task `i`, success or error.
    pub fn callbacks<R: 'static>(&self, i: usize) -> shmpool::Callbacks<R> {
        let (on_ok, on_err) = (self.clone(), self.clone());
        shmpool::Callbacks::new()
            .on_success(move |_: &R| on_ok.count(i))
            .on_error(move |_: &Error| on_err.count(i))
    }

    pub fn count(&self, i: usize) {
        self.0[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The first task not delivered exactly once, and how often it was.
    pub fn first_not_once(&self) -> Option<(usize, u8)> {
        self.0
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .enumerate()
            .find(|&(_, n)| n != 1)
    }
}

/// Moves this thread into a mount namespace of its own and mounts a fresh tmpfs
/// with `options` (such as `c"size=1m"`) over `/dev/shm`, as a container has. For a
/// child process of a test: its thread that runs the test, the only one that
/// touches `/dev/shm`. `Err` with the reason when the namespace cannot be made (not
/// root); panics if a mount fails after that.
pub fn private_dev_shm(options: &std::ffi::CStr) -> Result<(), String> {
    // SAFETY: unshare has no memory-safety preconditions. CLONE_NEWNS moves this
    // thread into a mount namespace of its own.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNS) failed ({}): not root?",
            std::io::Error::last_os_error()
        ));
    }
    // Nothing mounted here may reach the machine's /dev/shm: make every mount
    // private first, and mount nothing if that fails.
    // SAFETY: plain C strings and null pointers, as mount(2) takes them.
    let private = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    assert_eq!(private, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: as above.
    let mounted = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c"/dev/shm".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    assert_eq!(mounted, 0, "{}", std::io::Error::last_os_error());
    Ok(())
}

/// Runs `body` in a child process (this test binary again, filtered to `test`), on
/// a private tmpfs of `options` over `/dev/shm` ([`private_dev_shm`]), and checks
/// that the child finished `body` and exited 0, not by a signal; prints its output.
/// Where the namespace cannot be made (not root) the test is skipped with a note,
/// except in CI, which runs as root.
pub fn with_private_dev_shm(test: &str, options: &std::ffi::CStr, body: impl FnOnce()) {
    const CHILD: &str = "SHMPOOL_SMALL_SHM_CHILD";
    if std::env::var_os(CHILD).is_some() {
        if let Err(reason) = private_dev_shm(options) {
            println!("SKIP: {reason}");
            return;
        }
        body();
        println!("CHILD-DONE");
        return;
    }
    let out = rerun_self(test, CHILD, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "child: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(reason) = stdout.lines().find(|l| l.starts_with("SKIP:")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root, so this must not be skipped there\n{report}"
        );
        eprintln!("skipping: {reason}");
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), None, "killed by a signal\n{report}");
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(stdout.contains("CHILD-DONE"), "{report}");
    print!("{stdout}");
}
