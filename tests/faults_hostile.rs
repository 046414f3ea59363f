//! Hostile environments: closed standard streams, file-size limits, descriptor
//! limits, dropped arrays on a pool that is never idle, huge zeroed arrays. Each case
//! that changes the process (closes descriptors, lowers a limit) runs in a child:
//! this test binary again, filtered to the case, with `SHMPOOL_HOSTILE_CASE` naming
//! it. A child reports a failure on the descriptor named by `SHMPOOL_HOSTILE_REPORT`
//! (its stdout may be closed) and exits 1; the test asserts that it exited 0 and not
//! by a signal. Issue 10's bug 7 (one EMFILE while building a pool), at the end,
//! runs its child through `common::rerun_self` instead.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, SharedArray, StartMethod};

mod common;

const CASE_VAR: &str = "SHMPOOL_HOSTILE_CASE";
const REPORT_FD: i32 = 9;

/// In the child of `case`: runs `body` and exits (0, or 1 with its error written to
/// the report descriptor). Otherwise: runs the child and checks how it ended.
fn in_child(case: &str, body: impl FnOnce() -> Result<(), String>) {
    if std::env::var(CASE_VAR).as_deref() == Ok(case) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
            .unwrap_or_else(|p| Err(format!("panicked: {p:?}")));
        if let Err(message) = outcome {
            // SAFETY: the parent opened REPORT_FD for us (a pipe); nothing else owns it.
            let mut report = unsafe { std::fs::File::from_raw_fd(REPORT_FD) };
            let _ = writeln!(report, "{message}");
            std::process::exit(1);
        }
        std::process::exit(0);
    }
    let mut ends = [0i32; 2];
    // SAFETY: pipe2 writes two new descriptors into `ends`, which we then own.
    assert_eq!(
        unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) },
        0
    );
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (mut read, write) = unsafe {
        (
            std::fs::File::from_raw_fd(ends[0]),
            std::fs::File::from_raw_fd(ends[1]),
        )
    };
    let write_fd = ends[1];
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", case, "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: dup2 in the child before exec only copies a descriptor number.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            if libc::dup2(write_fd, REPORT_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(write);
    let mut report = String::new();
    std::io::Read::read_to_string(&mut read, &mut report).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.signal().is_none(),
        "{case}: the child was killed by signal {:?}\n{report}",
        status.signal()
    );
    assert!(status.success(), "{case}: {report}");
}

/// Closes descriptor `fd` in this process.
fn close(fd: i32) {
    // SAFETY: closing a standard stream number this test process owns.
    unsafe { libc::close(fd) };
}

/// A pool under `method` computes with tasks that print, and a bulk map.
fn pool_works(method: StartMethod) -> Result<(), String> {
    let pool = Pool::builder()
        .processes(2)
        .start_method(method)
        .build()
        .map_err(|e| format!("{method:?}: Pool::build: {e}"))?;
    let squares = pool
        .map(
            |x: u64| {
                println!("task {x} prints to stdout");
                eprintln!("and to stderr");
                x * x
            },
            0..200u64,
        )
        .map_err(|e| format!("{method:?}: map: {e}"))?;
    if squares
        .iter()
        .enumerate()
        .any(|(i, &s)| s != (i * i) as u64)
    {
        return Err(format!("{method:?}: wrong squares"));
    }
    let xs = SharedArray::filled(1 << 16, 3.0f64).map_err(|e| e.to_string())?;
    let mut ys = SharedArray::zeroed(1 << 16).map_err(|e| e.to_string())?;
    pool.map_into(&xs, &mut ys, |v: f64| {
        println!("{v}");
        v * 2.0
    })
    .map_err(|e| format!("{method:?}: map_into: {e}"))?;
    if ys.iter().any(|&y| y != 6.0) {
        return Err(format!("{method:?}: wrong map_into results"));
    }
    Ok(())
}

#[test]
fn pools_work_with_standard_streams_closed() {
    in_child("pools_work_with_standard_streams_closed", || {
        // A daemon's stdin is closed: the control memfd would take descriptor 0.
        close(0);
        for method in [
            StartMethod::Fork,
            StartMethod::ForkServer,
            StartMethod::Spawn,
        ] {
            pool_works(method)?;
        }
        // Then stdout and stderr too: workers must not print into shared memory.
        close(1);
        close(2);
        for method in [
            StartMethod::Fork,
            StartMethod::ForkServer,
            StartMethod::Spawn,
        ] {
            pool_works(method)?;
        }
        Ok(())
    });
}

/// Lowers this process's file-size limit (`ulimit -f`) to `bytes`.
fn limit_file_size(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct passed by reference.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
}

/// Whether `e` is the file-size limit's typed error.
fn is_too_large(e: &Error) -> bool {
    e.io_error()
        .is_some_and(|source| source.kind() == std::io::ErrorKind::FileTooLarge)
}

#[test]
fn a_file_size_limit_gives_typed_errors_not_sigxfsz() {
    in_child("a_file_size_limit_gives_typed_errors_not_sigxfsz", || {
        // An array made before the limit, to save after it.
        let big = SharedArray::<f64>::zeroed(1 << 18).map_err(|e| e.to_string())?;
        // `ulimit -f 1024`: 1 MiB. The pool's 4 MiB control segment is beyond it.
        limit_file_size(1 << 20);
        match Pool::new(2) {
            Err(e) if is_too_large(&e) => {
                if !e.to_string().contains("RLIMIT_FSIZE") {
                    return Err(format!("the error does not name the limit: {e}"));
                }
            }
            other => return Err(format!("Pool::new gave {other:?}")),
        }
        match SharedArray::<u8>::zeroed(2 << 20) {
            Err(e) if is_too_large(&e) => {}
            other => return Err(format!("zeroed(2 MiB) gave {other:?}")),
        }
        let small = SharedArray::<u8>::filled(100 << 10, 7).map_err(|e| e.to_string())?;
        if small.iter().any(|&b| b != 7) {
            return Err("the small array is wrong".into());
        }
        let dir = std::env::temp_dir().join(format!("shmpool-fsize-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("big.npy");
        // SAFETY: a new file of our own.
        let created = unsafe { SharedArray::<f64>::create_npy(&path, &[1 << 18]) };
        let saved = big.save_npy(dir.join("saved.npy"));
        let _ = std::fs::remove_dir_all(&dir);
        match created {
            Err(e) if is_too_large(&e) => {}
            other => return Err(format!("create_npy(2 MiB) gave {other:?}")),
        }
        match saved {
            Err(e) if is_too_large(&e) => Ok(()),
            other => Err(format!("save_npy(2 MiB) gave {other:?}")),
        }
    });
}

/// Issue 22, defect 6: a task's result larger than the workers' file-size limit
/// fails with `Error::Transfer` whose reason is whole. It used to be cut at 72
/// bytes, mid-word ("... file-size limit o"), to fit in the completion record.
#[test]
fn a_result_over_the_file_size_limit_fails_with_its_whole_reason() {
    in_child(
        "a_result_over_the_file_size_limit_fails_with_its_whole_reason",
        || {
            // 12 MiB: the pool's own files fit (the liveness table is 8 MiB, the
            // control segment about 4 MiB, a result arena starts at a page); a 16 MiB
            // result does not.
            const LIMIT: u64 = 12 << 20;
            limit_file_size(LIMIT);
            let pool = Pool::new(1).map_err(|e| e.to_string())?;
            let big = pool.apply(|n: usize| vec![1u8; n], (16usize << 20,));
            let reason = match &big {
                Err(Error::Transfer { reason }) => reason.clone(),
                other => return Err(format!("a 16 MiB result gave {other:?}")),
            };
            let limit = format!(
                "exceed this process's file-size limit of {LIMIT} bytes (RLIMIT_FSIZE, \
                 `ulimit -f`), which shared memory files count against (EFBIG)"
            );
            for part in [
                "the worker could not store the task's result (",
                " bytes) in its result arena: ",
                limit.as_str(),
            ] {
                if !reason.contains(part) {
                    return Err(format!("{part:?} is not in the reason {reason:?}"));
                }
            }
            if !reason.ends_with("(EFBIG)") {
                return Err(format!("the reason does not end whole: {reason:?}"));
            }
            // The worker carries on: a small result arrives.
            match pool.apply(|n: usize| vec![2u8; n], (1000usize,)) {
                Ok(v) if v == vec![2u8; 1000] => Ok(()),
                other => Err(format!("a small result after it gave {other:?}")),
            }
        },
    );
}

#[test]
fn dropped_arrays_are_unmapped_while_the_pool_stays_busy() {
    const ARRAY: usize = 16 << 20;
    // About dropped arrays that are released: the array cache, which keeps
    // them mapped for reuse, is off in this binary from here on.
    shmpool::array_cache::set_limit(0);
    let pool = Pool::new(2).unwrap();
    // A steady stream of short tasks, always hundreds queued, so that no worker
    // ever finds the ring empty and goes idle.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let batch = || {
                pool.map_async(
                    |_: u32| std::thread::sleep(Duration::from_micros(100)),
                    0..400u32,
                )
                .unwrap()
            };
            let mut queued = std::collections::VecDeque::from([batch(), batch()]);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                queued.pop_front().unwrap().get().unwrap();
                queued.push_back(batch());
            }
            for pending in queued {
                pending.get().unwrap();
            }
        });
        for round in 0..16 {
            let xs = SharedArray::filled(ARRAY, round as u8).unwrap();
            let mut ys = SharedArray::<u8>::zeroed(ARRAY).unwrap();
            pool.map_into(&xs, &mut ys, |v: u8| v.wrapping_add(1))
                .unwrap();
            assert!(ys.iter().all(|&y| y == (round as u8).wrapping_add(1)));
        }
        // 16 rounds of 32 MiB were made and dropped while the tasks ran. A worker
        // that kept its mappings would hold what it touched of every round, up to
        // 512 MiB; one that sees the drops between tasks holds at most a round's.
        let resident = || -> u64 { common::worker_pids(&pool).into_iter().map(rss_shmem).sum() };
        let settled =
            common::wait_until(Duration::from_secs(5), || resident() < 2 * 2 * ARRAY as u64);
        let held = resident();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            settled,
            "the busy workers hold {} MiB of shared memory",
            held >> 20
        );
    });
}

/// The resident shared memory (`RssShmem`) of process `pid`, in bytes.
fn rss_shmem(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssShmem:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[test]
fn a_range_map_over_a_huge_zeroed_array_touches_only_its_range() {
    let pool = Pool::new(2).unwrap();
    let mut xs = SharedArray::<u8>::zeroed(1 << 30).unwrap();
    let started = Instant::now();
    pool.bulk()
        .range(0..65536)
        .for_each_mut(&mut xs, |v: &mut u8| *v = 1)
        .unwrap();
    assert!(xs[..65536].iter().all(|&v| v == 1));
    assert_eq!(xs[65536], 0);
    for pid in common::worker_pids(&pool) {
        let resident = rss_shmem(pid);
        // The range's pages, the control segment's, an arena's: a few MiB, not 1 GiB.
        assert!(
            resident < 32 << 20,
            "worker {pid} has {} MiB of shared memory resident",
            resident >> 20
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Sets this process's soft limit of `resource` to `bytes`, keeping the hard limit.
fn set_soft_limit(resource: libc::__rlimit_resource_t, value: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct passed by reference.
    unsafe {
        assert_eq!(libc::getrlimit(resource, &mut limit), 0);
        limit.rlim_cur = value.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(resource, &limit), 0);
    }
}

/// Opens `/dev/null` until the descriptor limit refuses, so that no descriptor
/// number below the limit is free; returns what it opened.
fn use_up_descriptors() -> Vec<std::fs::File> {
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return held,
            Err(e) => panic!("open /dev/null: {e}"),
        }
    }
}

/// Issue 24, defect 3: the array cache holds a descriptor per kept array. With
/// every descriptor number below `RLIMIT_NOFILE` in use and 16 arrays kept, a new
/// array (and a map into it) still succeeds: the cache gives its descriptors back
/// and the creation is tried again. With nothing cached to give back, the same
/// creation is a typed `Io` error (`EMFILE`). Before, the new array failed with
/// `EMFILE` while the cache held 16 descriptors.
#[test]
fn a_low_descriptor_limit_gets_arrays_while_the_cache_holds_descriptors() {
    in_child(
        "a_low_descriptor_limit_gets_arrays_while_the_cache_holds_descriptors",
        || {
            let pool = Pool::new(2).map_err(|e| e.to_string())?;
            let xs = SharedArray::filled(1 << 16, 2.0f64).map_err(|e| e.to_string())?;
            let mut warm = SharedArray::<f64>::zeroed(1 << 16).map_err(|e| e.to_string())?;
            pool.map_into(&xs, &mut warm, |v: f64| v + 1.0)
                .map_err(|e| e.to_string())?;
            for i in 0..shmpool::array_cache::MAX_SEGMENTS {
                drop(SharedArray::<u8>::filled(4096 * (i + 1), 1).map_err(|e| e.to_string())?);
            }
            let kept = shmpool::array_cache::stats();
            if kept.segments != shmpool::array_cache::MAX_SEGMENTS {
                return Err(format!("the cache did not keep the arrays: {kept:?}"));
            }
            // The limit: one above the highest descriptor open, every number below it
            // in use.
            let highest = std::fs::read_dir("/proc/self/fd")
                .map_err(|e| e.to_string())?
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .unwrap_or(2);
            set_soft_limit(libc::RLIMIT_NOFILE, highest + 1);
            let held = use_up_descriptors();
            let mut ys = SharedArray::<f64>::zeroed(1 << 16)
                .map_err(|e| format!("zeroed with 16 descriptors in the cache: {e}"))?;
            pool.map_into(&xs, &mut ys, |v: f64| v * 3.0)
                .map_err(|e| format!("map_into the new array: {e}"))?;
            if ys.iter().any(|&y| y != 6.0) {
                return Err("wrong values in the new array".into());
            }
            let after = shmpool::array_cache::stats();
            if after.segments != 0 || after.released < kept.released + 16 {
                return Err(format!("the cache kept its descriptors: {after:?}"));
            }
            // A named segment, likewise, with two arrays kept.
            drop(held);
            drop(SharedArray::<u8>::filled(3000, 1).map_err(|e| e.to_string())?);
            drop(SharedArray::<u8>::filled(5000, 1).map_err(|e| e.to_string())?);
            let mut held = use_up_descriptors();
            let name = format!("shmpool-test-nofile-{}", std::process::id());
            // SAFETY: a new name of this test's own, which nothing else maps.
            let named = unsafe { SharedArray::<u32>::create_named(&name, 1000) }
                .map_err(|e| format!("create_named with 2 descriptors in the cache: {e}"))?;
            if named.iter().any(|&v| v != 0) {
                return Err("the named segment is not zero".into());
            }
            drop(named);
            // Nothing left to give back: a typed error, not a panic.
            held.extend(use_up_descriptors());
            let refused = SharedArray::<u8>::zeroed(123_456);
            drop(held);
            match refused {
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EMFILE) => {
                    Ok(())
                }
                other => Err(format!("with no descriptor free: {other:?}")),
            }
        },
    );
}

/// Under `ulimit -v` of `gib` GiB (`RLIMIT_AS`), in a child: a pool of two builds
/// under every start method, carries 4 MiB arguments and results through its
/// arenas, and maps an input and an output of a quarter of the limit each (half
/// the limit in arrays, mapped by the parent and by each worker); then one array
/// of half the limit is made and written.
fn pools_and_arrays_fit_under_an_address_space_limit(case: &str, gib: u64) {
    in_child(case, || {
        let limit = gib << 30;
        set_soft_limit(libc::RLIMIT_AS, limit);
        let quarter = (limit / 4) as usize / 8;
        for method in [
            StartMethod::Fork,
            StartMethod::ForkServer,
            StartMethod::Spawn,
        ] {
            let pool = Pool::builder()
                .processes(2)
                .start_method(method)
                .build()
                .map_err(|e| format!("{method:?}: build under {gib} GiB: {e}"))?;
            let echoed = pool
                .map(|v: Vec<u8>| v.iter().rev().copied().collect::<Vec<u8>>(), {
                    (0..4u8).map(|i| vec![i; 4 << 20])
                })
                .map_err(|e| format!("{method:?}: 4 MiB payloads: {e}"))?;
            if echoed
                .iter()
                .enumerate()
                .any(|(i, v)| v.len() != 4 << 20 || v[0] != i as u8)
            {
                return Err(format!("{method:?}: wrong payloads"));
            }
            let xs = SharedArray::<f64>::filled(quarter, 4.0)
                .map_err(|e| format!("{method:?}: an input of {} MiB: {e}", quarter >> 17))?;
            let mut ys = SharedArray::<f64>::for_overwrite(quarter)
                .map_err(|e| format!("{method:?}: an output of {} MiB: {e}", quarter >> 17))?;
            pool.map_into(&xs, &mut ys, |v: f64| v.sqrt())
                .map_err(|e| format!("{method:?}: map_into: {e}"))?;
            if ys.iter().any(|&y| y != 2.0) {
                return Err(format!("{method:?}: wrong sqrt"));
            }
        }
        let half = SharedArray::<u8>::filled((limit / 2) as usize, 9)
            .map_err(|e| format!("an array of half the limit: {e}"))?;
        if half.iter().any(|&v| v != 9) {
            return Err("the half-limit array is wrong".into());
        }
        Ok(())
    });
}

/// Issue 24, defect 4, at 1 GiB: before, `build` failed (the arenas' reservations
/// alone did not fit).
#[test]
fn pools_and_arrays_fit_under_an_address_space_limit_of_1_gib() {
    pools_and_arrays_fit_under_an_address_space_limit(
        "pools_and_arrays_fit_under_an_address_space_limit_of_1_gib",
        1,
    );
}

/// Issue 24, defect 4, at 2 GiB: before, the arenas left under 256 MiB for arrays.
#[test]
fn pools_and_arrays_fit_under_an_address_space_limit_of_2_gib() {
    pools_and_arrays_fit_under_an_address_space_limit(
        "pools_and_arrays_fit_under_an_address_space_limit_of_2_gib",
        2,
    );
}

// ---------------------------------------------------------------------------------
// Issue 10, bug 7: one EMFILE while creating a pool breaks pool creation for the
// rest of the process (the liveness table is process-global, so the test runs in a
// child: this binary again, through `common::rerun_self`). The test failed on code
// with the bug.
// ---------------------------------------------------------------------------------

const EMFILE_CHILD: &str = "SHMPOOL_HOSTILE_EMFILE_CHILD";

#[test]
fn bug7_one_emfile_does_not_break_later_pools() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        emfile_child();
        return;
    }
    let out = common::rerun_self(
        "bug7_one_emfile_does_not_break_later_pools",
        EMFILE_CHILD,
        Duration::from_secs(60),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("EMFILE CHILD DONE"),
        "the child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit");
    limit
}

fn set_nofile_limit(limit: libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit through a valid pointer.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit");
}

/// In the child: build pools under small descriptor limits (which must fail with an
/// error, not a panic, when they are too small), and after each, with the limit
/// restored, a pool must build and work.
fn emfile_child() {
    let original = nofile_limit();
    for soft in [5, 6, 8, 10, 12, 16, 24, 32] {
        set_nofile_limit(libc::rlimit {
            rlim_cur: soft,
            ..original
        });
        let attempt = std::panic::catch_unwind(|| Pool::new(1));
        set_nofile_limit(original);
        match attempt {
            Err(_) => panic!("Pool::new(1) panicked under RLIMIT_NOFILE = {soft}"),
            Ok(Err(e)) => eprintln!("RLIMIT_NOFILE = {soft}: Pool::new(1) failed: {e}"),
            Ok(Ok(pool)) => {
                assert!(soft > 5, "Pool::new(1) succeeded with only 5 descriptors");
                eprintln!("RLIMIT_NOFILE = {soft}: Pool::new(1) succeeded");
                drop(pool);
            }
        }
        let pool = common::ok(
            Pool::new(1),
            format!("Pool::new(1) after an attempt under RLIMIT_NOFILE = {soft}"),
        );
        assert_eq!(common::ok(pool.apply(|x: u32| x * 2, (21,)), "apply"), 42);
    }
    println!("EMFILE CHILD DONE");
}
