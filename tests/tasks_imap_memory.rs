//! Memory stays flat while an endless `imap` input is consumed for a long time. In
//! its own binary, with one test, so that no other test's allocations show in this
//! process's resident memory.

use shmpool::{Pool, StartMethod};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// imap reads its input lazily and keeps only a bounded window of results, so
/// 100,000 results of 1 KiB each (100 MiB, if anything kept them) leave resident
/// memory where it was. Once per start method, one after the other.
#[test]
fn imap_over_an_endless_input_keeps_memory_flat() {
    for method in [
        StartMethod::Fork,
        StartMethod::ForkServer,
        StartMethod::Spawn,
    ] {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let mut results = pool
            .tasks()
            .chunksize(64)
            .imap(|i: u64| "x".repeat(1024 + (i % 7) as usize), 0u64..)
            .unwrap();
        // Warm up: buffers, arenas and the window reach their working size.
        for r in results.by_ref().take(20_000) {
            assert!(r.unwrap().len() >= 1024);
        }
        let before = rss_kib();
        for (k, r) in results.by_ref().take(100_000).enumerate() {
            let i = 20_000 + k as u64;
            assert_eq!(r.unwrap().len(), 1024 + (i % 7) as usize, "item {i}");
        }
        let grown = rss_kib().saturating_sub(before);
        assert!(
            grown < 16 * 1024,
            "{method:?}: resident memory grew by {grown} KiB"
        );
    }
}
