//! Stress: many tasks and bulk maps while a thread SIGKILLs random workers.
//! Every task ends exactly once, as Ok (with the right value) or WorkerDied.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shmpool::{Callbacks, Error, Pool, SharedArray, Work};

/// The parent pid of `pid`, from /proc.
fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// SIGKILLs `pid` if it is one of our pool's workers: its parent (the fork server)
/// must be our child. The pidfd pins the process, so a reused pid is never hit.
fn kill_worker(pid: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return false;
    }
    let ours = ppid_of(pid).and_then(ppid_of) == Some(std::process::id() as i32);
    if ours {
        // SAFETY: sends a signal through a pidfd we own; no memory is involved.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, 0usize, 0u32) };
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    ours
}

/// A thread that kills a random worker every `every` until `stop`.
fn killer(pool: &Pool, stop: &AtomicBool, every: Duration) -> usize {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut kills = 0;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(every);
        let pids: Vec<i32> = pool.stats().workers.iter().filter_map(|w| w.pid).collect();
        if pids.is_empty() {
            continue;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if kill_worker(pids[(seed % pids.len() as u64) as usize]) {
            kills += 1;
        }
    }
    kills
}

#[test]
fn two_hundred_thousand_tasks_while_workers_are_killed() {
    const TASKS: usize = 200_000;
    let started = Instant::now();
    let pool = Pool::new(2).unwrap();
    let deliveries: Arc<Vec<AtomicU8>> = Arc::new((0..TASKS).map(|_| AtomicU8::new(0)).collect());
    let stop = AtomicBool::new(false);
    let (ok, died, kills) = std::thread::scope(|s| {
        let killer = s.spawn(|| killer(&pool, &stop, Duration::from_millis(3)));
        let results: Vec<_> = (0..TASKS as u64)
            .map(|i| {
                let count = Arc::clone(&deliveries);
                let counted = Arc::clone(&deliveries);
                pool.tasks()
                    .apply_async_with(
                        |x: u64| x.wrapping_mul(2_654_435_761) ^ 0x5555,
                        (i,),
                        Callbacks::new()
                            .on_success(move |_: &u64| {
                                count[i as usize].fetch_add(1, Ordering::Relaxed);
                            })
                            .on_error(move |_: &Error| {
                                counted[i as usize].fetch_add(1, Ordering::Relaxed);
                            }),
                    )
                    .unwrap()
            })
            .collect();
        let (mut ok, mut died) = (0usize, 0usize);
        for (i, r) in results.into_iter().enumerate() {
            match r.get() {
                Ok(v) => {
                    assert_eq!(
                        v,
                        (i as u64).wrapping_mul(2_654_435_761) ^ 0x5555,
                        "task {i}"
                    );
                    ok += 1;
                }
                Err(Error::WorkerDied {
                    work: Work::Task(_),
                    ..
                }) => died += 1,
                Err(e) => panic!("task {i}: unexpected {e}"),
            }
        }
        stop.store(true, Ordering::Release);
        (ok, died, killer.join().unwrap())
    });
    assert_eq!(ok + died, TASKS);
    // Each task's callback ran exactly once: nothing lost, nothing duplicated.
    let counts: Vec<u8> = deliveries
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    assert!(
        counts.iter().all(|&c| c == 1),
        "some task was delivered 0 or 2+ times"
    );
    assert!(kills > 0, "the killer never struck");
    assert!(died <= kills, "{died} tasks died with only {kills} kills");
    eprintln!(
        "{TASKS} tasks: {ok} ok, {died} died; {kills} workers killed; {} respawns; {:?}",
        pool.stats().respawns,
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // The pool is still healthy.
    assert_eq!(pool.map(|x: u32| x + 1, 0..1000u32).unwrap().len(), 1000);
}

/// Whether `e` is what a bulk map returns when killed workers lost chunks: a death
/// on a chunk, or several chunks each lost to a death or skipped after one.
fn lost_to_deaths(e: &Error) -> bool {
    match e {
        Error::WorkerDied {
            work: Work::Chunk(_),
            ..
        } => true,
        Error::ChunksLost { errors } => errors.iter().all(|e| {
            matches!(
                e,
                Error::WorkerDied {
                    work: Work::Chunk(_),
                    ..
                } | Error::ChunkSkipped { .. }
            )
        }),
        _ => false,
    }
}

#[test]
fn bulk_maps_while_workers_are_killed() {
    let pool = Pool::new(2).unwrap();
    let xs = SharedArray::try_from_iter(0..200_000u64).unwrap();
    let mut ys = SharedArray::zeroed(xs.len()).unwrap();
    let stop = AtomicBool::new(false);
    let (completed, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let kills = std::thread::scope(|s| {
        let killer = s.spawn(|| killer(&pool, &stop, Duration::from_millis(5)));
        for round in 0..150u64 {
            ys.fill(0);
            let r = pool
                .bulk()
                .chunk_len(2048)
                .retries(3)
                .map_into(&xs, &mut ys, |v: u64| v * 3 + 1);
            match r {
                Ok(()) => {
                    assert!(
                        ys.iter().enumerate().all(|(i, y)| *y == i as u64 * 3 + 1),
                        "round {round}"
                    );
                    completed.fetch_add(1, Ordering::Relaxed);
                }
                // Retries ran out. The last round's death stopped the map, so besides
                // its chunk the error may name chunks skipped after it, and ranges
                // that round did not get to (`ChunksLost`).
                Err(e) if lost_to_deaths(&e) => {
                    let lost = e.failed_ranges();
                    // Every chunk outside the lost ones is correct.
                    assert!(
                        ys.iter()
                            .enumerate()
                            .filter(|(i, _)| !lost.iter().any(|r| r.contains(i)))
                            .all(|(i, y)| *y == i as u64 * 3 + 1 || *y == 0),
                        "round {round}: {e}"
                    );
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => panic!("round {round}: unexpected {e}"),
            }
        }
        stop.store(true, Ordering::Release);
        killer.join().unwrap()
    });
    let (completed, failed) = (completed.into_inner(), failed.into_inner());
    eprintln!("150 bulk maps: {completed} complete, {failed} failed after retries; {kills} kills");
    assert_eq!(completed + failed, 150);
    assert!(completed > 0);
    pool.map_into(&xs, &mut ys, |v: u64| v).unwrap();
    assert!(ys.iter().enumerate().all(|(i, y)| *y == i as u64));
}
