//! No leaks: file descriptors, threads, child processes and memory stay flat across
//! cycles of creating, using and dropping a pool. (One test in its own binary, so
//! no other test's threads or descriptors disturb the counts.)

use std::time::Duration;

use shmpool::{Pool, SharedArray};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Our child processes, zombies included.
fn children() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        if fields.get(1) == Some(&me.as_str()) {
            out.push(format!("{name} ({})", fields[0]));
        }
    }
    out
}

/// Builds a pool, uses every path that allocates shared memory, drops it.
fn cycle() {
    let pool = Pool::new(2).unwrap();
    let xs = SharedArray::filled(1 << 18, 2.0f64).unwrap();
    let mut ys = SharedArray::zeroed(1 << 18).unwrap();
    pool.map_into(&xs, &mut ys, |v: f64| v * v).unwrap();
    assert_eq!(ys[7], 4.0);
    let big = pool.apply(|n: usize| vec![1u8; n], (4 << 20,)).unwrap();
    assert_eq!(big.len(), 4 << 20);
    let args: Vec<u64> = (0..100_000).collect();
    assert_eq!(pool.apply(|v: Vec<u64>| v.len(), (args,)).unwrap(), 100_000);
    let n = pool.imap(|x: u32| x + 1, 0..1000u32).unwrap().count();
    assert_eq!(n, 1000);
    let _ = pool.apply(|| -> u8 { panic!("a panicking task") }, ());
    drop(pool);
}

/// Gives freed heap memory back to the system, so RSS shows what is still held.
fn trim() {
    // SAFETY: malloc_trim only releases free memory; no pointer is invalidated.
    unsafe { libc::malloc_trim(0) };
}

#[test]
fn ten_cycles_of_create_and_drop_leak_nothing() {
    // Large blocks always come from mmap and go back on free; otherwise glibc
    // raises its mmap threshold after the first big free and keeps later big blocks
    // on the heap, which looks like growth but is only caching.
    // SAFETY: mallopt only tunes the allocator; called before any thread of ours.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10) };
    // Warm up: one-time allocations (the liveness table, malloc arenas, lazy statics).
    for _ in 0..3 {
        cycle();
    }
    std::thread::sleep(Duration::from_millis(50));
    trim();
    let (fds, tasks, rss) = (open_fds(), threads(), rss_kib());
    assert!(
        children().is_empty(),
        "children after warm-up: {:?}",
        children()
    );

    for _ in 0..10 {
        cycle();
    }
    std::thread::sleep(Duration::from_millis(50));
    trim();
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    assert_eq!(threads(), tasks, "threads leaked");
    assert!(
        children().is_empty(),
        "child processes left: {:?}",
        children()
    );
    let grown = rss_kib().saturating_sub(rss);
    eprintln!(
        "RSS {rss} KiB before, grew by {grown} KiB over 10 cycles; {fds} fds, {tasks} threads"
    );
    // Each cycle moves about 10 MiB through shared memory and the heap; a leak of
    // any of it would show as megabytes here.
    assert!(
        grown < 1024,
        "resident memory grew by {grown} KiB over 10 cycles"
    );
}
