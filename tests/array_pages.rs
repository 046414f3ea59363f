//! Pages behind arrays: huge pages where the system offers them, base pages
//! otherwise, and first touch by the workers.
//!
//! What backs a mapping is read from `/proc/PID/smaps` (`KernelPageSize`,
//! `Shared_Hugetlb`, `ShmemPmdMapped`, `Rss`), never assumed. One test,
//! `huge_pages_where_the_system_allows`, changes the system's huge-page settings
//! (as root) and restores them when it ends, however it ends; every other test in
//! this binary asks for base pages explicitly, so it does not care which settings
//! it runs under.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::worker_pids;
use shmpool::{Error, PageKind, Pages, Pool, SharedArray, StartMethod};

const HUGE: u64 = 2 << 20;
const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::ForkServer,
    StartMethod::Spawn,
];

// ───────────────────────────── /proc/PID/smaps ─────────────────────────────

/// One mapping of `/proc/PID/smaps`.
#[derive(Debug)]
struct Smap {
    start: usize,
    end: usize,
    /// The path column: `/memfd:shmpool-array-17 (deleted)` for an array.
    name: String,
    /// The `Key: N kB` fields, in bytes.
    bytes: HashMap<String, u64>,
}

impl Smap {
    fn get(&self, key: &str) -> u64 {
        self.bytes.get(key).copied().unwrap_or(0)
    }
}

/// Turns the array cache off for this binary: its tests are about the pages of
/// fresh memory, and a reused array has the pages its first tenant was given.
fn only_fresh_memory() {
    shmpool::array_cache::set_limit(0);
}

fn smaps(pid: i32) -> Vec<Smap> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read smaps");
    let mut maps: Vec<Smap> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            maps.push(Smap {
                start,
                end,
                name: words.skip(4).collect::<Vec<_>>().join(" "),
                bytes: HashMap::new(),
            });
        } else if let (Some(key), Some(n), Some("kB")) =
            (first.strip_suffix(':'), words.next(), words.next())
            && let (Some(map), Ok(n)) = (maps.last_mut(), n.parse::<u64>())
        {
            map.bytes.insert(key.to_string(), n * 1024);
        }
    }
    maps
}

/// This process's mapping of `array`.
fn own_mapping<T: bytemuck::Pod>(array: &SharedArray<T>) -> Smap {
    let at = array.as_ptr() as usize;
    smaps(std::process::id() as i32)
        .into_iter()
        .find(|m| (m.start..m.end).contains(&at))
        .expect("the array's mapping")
}

/// Each worker's mapping of the segment this process maps as `parent` (the same
/// memfd name), if it has one.
fn worker_mappings(pool: &Pool, parent: &Smap) -> Vec<Smap> {
    assert!(parent.name.contains("shmpool-array-"), "{}", parent.name);
    worker_pids(pool)
        .into_iter()
        .filter_map(|pid| smaps(pid).into_iter().find(|m| m.name == parent.name))
        .collect()
}

fn sqrt_inputs(len: usize, pages: Pages) -> SharedArray<f64> {
    let mut xs = SharedArray::zeroed_with_pages(len, pages).expect("input");
    for (i, x) in xs.iter_mut().enumerate() {
        *x = i as f64;
    }
    xs
}

fn check_sqrt(xs: &SharedArray<f64>, ys: &SharedArray<f64>) {
    let wrong = xs
        .iter()
        .zip(ys.iter())
        .position(|(x, y)| x.sqrt().to_bits() != y.to_bits());
    assert_eq!(wrong, None, "first wrong element");
}

// ───────────────────────────── first touch ─────────────────────────────

/// `zeroed` touches only the header's page, and a map writes the rest from the
/// workers: after `map_into`, the parent has one page of the output mapped and the
/// workers between them have all of it.
fn a_fresh_output_is_faulted_in_by_the_workers_not_the_parent(method: StartMethod) {
    only_fresh_memory();
    let pool = common::pool(method);
    let len = 1 << 19; // 4 MiB of f64
    let data = (len * 8) as u64;
    let page = 4096;
    let xs = sqrt_inputs(len, Pages::Base);
    let mut ys = SharedArray::<f64>::zeroed_with_pages(len, Pages::Base).expect("output");
    assert_eq!((ys.page_kind(), ys.page_size()), (PageKind::Base, 4096));
    assert!(
        own_mapping(&ys).get("Rss") <= page,
        "zeroed wrote the array"
    );

    let chunk_len = 1 << 14; // 32 chunks of 128 KiB
    let chunks = (len / chunk_len) as u64;
    pool.bulk()
        .chunk_len(chunk_len)
        .map_into(&xs, &mut ys, |v: f64| v.sqrt())
        .expect("map");
    let parent = own_mapping(&ys);
    assert!(
        parent.get("Rss") <= page,
        "the parent touched the output: {parent:?}"
    );
    let workers = worker_mappings(&pool, &parent);
    let resident: u64 = workers.iter().map(|m| m.get("Rss")).sum();
    // Every data page is written by a worker, and few by both: elements start 128
    // bytes into the segment, so a chunk boundary falls inside a page that both
    // neighbours' workers map, and a read fault (the header's check, when a worker
    // maps the segment) maps up to 16 neighbouring pages already in memory
    // (fault-around).
    assert!(
        (data..=data + (2 * chunks + 16) * page).contains(&resident),
        "workers hold {resident} bytes of a {data}-byte output: {workers:?}"
    );
    check_sqrt(&xs, &ys);
}

per_start_method!(a_fresh_output_is_faulted_in_by_the_workers_not_the_parent);

/// Small arrays and explicit base pages never get huge pages, and the answer is
/// visible on the array and in the pool's stats.
#[test]
fn base_pages_are_reported_as_such() {
    let pool = Pool::new(2).expect("pool");
    let xs = sqrt_inputs(1 << 10, Pages::Auto);
    assert_eq!(xs.page_kind(), PageKind::Base, "a small array");
    let mut ys = SharedArray::<f64>::zeroed_with_pages(1 << 10, Pages::Base).expect("ys");
    pool.map_into(&xs, &mut ys, |v: f64| v.sqrt()).expect("map");
    let stats = pool.stats();
    assert_eq!(stats.array_pages.base_bytes, 2 * (8 << 10));
    assert_eq!(stats.array_pages.huge_bytes(), 0);
    check_sqrt(&xs, &ys);
}

// ───────────────────────────── the system's settings ─────────────────────────────

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const SHMEM_THP: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/// Held by whichever test is changing the system's huge-page settings.
static CHANGING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The huge-page settings as found; restored on drop, also after a failed assertion.
/// One test at a time holds them.
struct Settings {
    nr_hugepages: String,
    shmem_thp: String,
    _changing: std::sync::MutexGuard<'static, ()>,
}

impl Settings {
    /// Saves the settings and checks that this process may change them: `Err`
    /// says why not.
    fn take() -> Result<Settings, String> {
        let changing = CHANGING.lock().unwrap_or_else(|e| e.into_inner());
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
        let nr_hugepages = read(NR_HUGEPAGES)?.trim().to_string();
        let thp = read(SHMEM_THP)?;
        let shmem_thp = thp
            .split_whitespace()
            .find(|w| w.starts_with('['))
            .ok_or(format!("{SHMEM_THP}: no mode chosen in {thp:?}"))?
            .trim_matches(['[', ']'])
            .to_string();
        let settings = Settings {
            nr_hugepages,
            shmem_thp,
            _changing: changing,
        };
        // Writing back what is there proves the permission and changes nothing.
        settings.write(NR_HUGEPAGES, &settings.nr_hugepages)?;
        settings.write(SHMEM_THP, &settings.shmem_thp)?;
        Ok(settings)
    }

    fn write(&self, path: &str, value: &str) -> Result<(), String> {
        std::fs::write(path, value).map_err(|e| format!("cannot write {value:?} to {path}: {e}"))
    }

    fn set(&self, path: &str, value: &str) {
        self.write(path, value).unwrap_or_else(|e| panic!("{e}"));
    }

    /// hugetlbfs pages of 2 MiB free for a new mapping.
    fn free_huge_pages() -> u64 {
        let read = |name: &str| -> u64 {
            std::fs::read_to_string(format!("/sys/kernel/mm/hugepages/hugepages-2048kB/{name}"))
                .map_or(0, |s| s.trim().parse().unwrap_or(0))
        };
        read("free_hugepages").saturating_sub(read("resv_hugepages"))
    }
}

impl Drop for Settings {
    fn drop(&mut self) {
        for (path, value) in [
            (SHMEM_THP, &self.shmem_thp),
            (NR_HUGEPAGES, &self.nr_hugepages),
        ] {
            if let Err(e) = self.write(path, value) {
                eprintln!("huge_pages: could not restore {path}: {e}");
            }
        }
    }
}

/// Maps `xs` into a fresh `pages` array under every start method and returns the
/// workers' mappings of the output (the arrays are checked).
fn map_in_every_start_method(xs: &SharedArray<f64>, pages: Pages, expect: PageKind) {
    for method in METHODS {
        let pool = common::pool(method);
        let mut ys = SharedArray::<f64>::zeroed_with_pages(xs.len(), pages).expect("output");
        assert_eq!(ys.page_kind(), expect, "{method:?}");
        assert_eq!(ys.page_size() as u64, HUGE);
        pool.map_into(xs, &mut ys, |v: f64| v.sqrt()).expect("map");
        let parent = own_mapping(&ys);
        let workers = worker_mappings(&pool, &parent);
        assert!(!workers.is_empty(), "{method:?}: no worker maps the output");
        let data = (ys.len() * 8) as u64;
        match expect {
            PageKind::HugeTlb => {
                assert_eq!(parent.get("KernelPageSize"), HUGE, "{parent:?}");
                for w in &workers {
                    assert_eq!(w.get("KernelPageSize"), HUGE, "{method:?}: {w:?}");
                }
                let held: u64 = workers
                    .iter()
                    .map(|w| w.get("Shared_Hugetlb") + w.get("Private_Hugetlb"))
                    .sum();
                assert!(held >= data, "{method:?}: workers map {held} hugetlb bytes");
            }
            PageKind::TransparentHuge => {
                // The kernel falls back to base pages where it finds no huge one,
                // so not every 2 MiB must be huge, but on a machine with free
                // memory the workers' faults get huge pages.
                let huge: u64 = workers.iter().map(|w| w.get("ShmemPmdMapped")).sum();
                assert!(
                    huge > 0,
                    "{method:?}: no huge page in the workers: {workers:?}"
                );
                println!("{method:?}: workers map {huge} of {data} bytes with huge pages");
            }
            other => panic!("not a huge-page kind: {other:?}"),
        }
        let stats = pool.stats();
        let counted = match expect {
            PageKind::HugeTlb => stats.array_pages.hugetlb_bytes,
            _ => stats.array_pages.transparent_huge_bytes,
        };
        assert!(counted >= data, "{method:?}: {:?}", stats.array_pages);
        check_sqrt(xs, &ys);
    }
}

/// Huge pages end to end, in each start method: hugetlbfs pages when reserved,
/// transparent huge pages where shmem THP allows, base pages otherwise, with the
/// array and `stats()` saying which; a refused explicit request is a typed error,
/// and an exhausted pool a fallback, never a signal. Needs root (it reserves 16
/// hugetlbfs pages and switches shmem THP), and skips with the reason otherwise.
#[test]
fn huge_pages_where_the_system_allows() {
    only_fresh_memory();
    let settings = match Settings::take() {
        Ok(s) => s,
        Err(why) => {
            println!("SKIPPED huge_pages_where_the_system_allows: {why}");
            return;
        }
    };
    let len = 1 << 20; // 8 MiB of f64: exactly the threshold, 5 huge pages with the header
    let base_xs = sqrt_inputs(len, Pages::Base);

    // hugetlbfs: 16 more pages reserved than there were.
    settings.set(SHMEM_THP, "never");
    let before: u64 = settings.nr_hugepages.parse().expect("nr_hugepages");
    settings.set(NR_HUGEPAGES, &(before + 16).to_string());
    if Settings::free_huge_pages() < 16 {
        println!(
            "SKIPPED the hugetlbfs part: only {} pages free after asking for 16 more",
            Settings::free_huge_pages()
        );
    } else {
        let xs = sqrt_inputs(len, Pages::Auto);
        assert_eq!(xs.page_kind(), PageKind::HugeTlb);
        assert_eq!(own_mapping(&xs).get("KernelPageSize"), HUGE);
        map_in_every_start_method(&xs, Pages::Auto, PageKind::HugeTlb);
        // 5 pages held by `xs`, 11 free: 32 MiB (17 pages) cannot be had.
        match SharedArray::<f64>::zeroed_with_pages(4 * len, Pages::HugeTlb) {
            Err(Error::HugePagesUnavailable { kind, reason }) => {
                assert_eq!(kind, PageKind::HugeTlb);
                assert!(reason.contains("17 hugetlbfs pages"), "{reason}");
            }
            other => panic!("expected HugePagesUnavailable, got {other:?}"),
        }
        let fallback = SharedArray::<f64>::zeroed(4 * len).expect("fall back");
        assert_eq!(fallback.page_kind(), PageKind::Base);
        assert_eq!(
            Pool::new(1).expect("pool").stats().large_array_pages,
            PageKind::HugeTlb
        );

        // The opt-out, in a child process (the environment is process-wide).
        let out = common::rerun_self_with(
            "report_the_page_kind_of_a_large_array",
            &[("SHMPOOL_HUGE_PAGES", "0"), ("HUGE_PAGES_CHILD", "1")],
            Duration::from_secs(60),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("page kind: Base"), "{stdout}");
        drop(xs);
        drop(fallback);
    }
    settings.set(NR_HUGEPAGES, &before.to_string());

    // Transparent huge pages, `advise` and `within_size`.
    for mode in ["advise", "within_size"] {
        settings.set(SHMEM_THP, mode);
        let expect_auto = if Settings::free_huge_pages() >= 5 {
            PageKind::HugeTlb // pages reserved before this test began
        } else {
            PageKind::TransparentHuge
        };
        assert_eq!(
            SharedArray::<f64>::zeroed(len).expect("auto").page_kind(),
            expect_auto
        );
        map_in_every_start_method(&base_xs, Pages::TransparentHuge, PageKind::TransparentHuge);
    }

    // Nothing offered: base pages, and stats() says so.
    settings.set(SHMEM_THP, "never");
    match SharedArray::<f64>::zeroed_with_pages(len, Pages::TransparentHuge) {
        Err(Error::HugePagesUnavailable { kind, reason }) => {
            assert_eq!(kind, PageKind::TransparentHuge);
            assert!(reason.contains("`never`"), "{reason}");
        }
        other => panic!("expected HugePagesUnavailable, got {other:?}"),
    }
    if Settings::free_huge_pages() < 5 {
        let ys = SharedArray::<f64>::zeroed(len).expect("auto");
        assert_eq!(ys.page_kind(), PageKind::Base);
        let pool = Pool::new(1).expect("pool");
        assert_eq!(pool.stats().large_array_pages, PageKind::Base);
    }
    drop(settings);
}

/// Run by `huge_pages_where_the_system_allows` in a child process with
/// `SHMPOOL_HUGE_PAGES=0`; does nothing when run directly.
#[test]
fn report_the_page_kind_of_a_large_array() {
    if std::env::var("HUGE_PAGES_CHILD").as_deref() != Ok("1") {
        return;
    }
    let ys = SharedArray::<f64>::zeroed(1 << 20).expect("array");
    let pool = Pool::new(1).expect("pool");
    println!(
        "page kind: {:?}, stats: {:?}",
        ys.page_kind(),
        pool.stats().large_array_pages
    );
}

/// Issue 24, defect 2: with 140 hugetlbfs pages free, where one 256 MiB array
/// needs 129 (its data and header, in whole 2 MiB pages), a loop that makes a new
/// 256 MiB array each step (and maps it in a pool) gets hugetlbfs pages on every
/// step; so does a 200 MiB array after it, which needs 101 of the pages the cache
/// holds in the last 256 MiB segment. Before, the dropped array's segment sat in the
/// array cache with its 129 pages while each new array fell back to base pages:
/// `HugeTlb Base Base Base`. The array cache is on in the child (this binary turns
/// it off for its other tests). Needs root, and skips with the reason otherwise or
/// when the kernel does not give the pages.
#[test]
fn a_loop_of_new_arrays_stays_on_hugetlbfs_pages_while_enough_are_reserved() {
    let settings = match Settings::take() {
        Ok(s) => s,
        Err(why) => {
            println!("SKIPPED a_loop_of_new_arrays_stays_on_hugetlbfs_pages: {why}");
            return;
        }
    };
    settings.set(SHMEM_THP, "never");
    let before: i64 = settings.nr_hugepages.parse().expect("nr_hugepages");
    let free = Settings::free_huge_pages() as i64;
    settings.set(NR_HUGEPAGES, &(before + 140 - free).max(0).to_string());
    let free = Settings::free_huge_pages();
    if !(129..258).contains(&free) {
        println!(
            "SKIPPED a_loop_of_new_arrays_stays_on_hugetlbfs_pages: asked for 140 free \
             hugetlbfs pages and the kernel gave {free}"
        );
        return;
    }
    let out = common::rerun_self_with(
        "report_the_page_kinds_of_a_loop_of_new_arrays",
        &[("HUGE_PAGES_CHILD", "loop")],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kinds = stdout
        .lines()
        .find_map(|l| Some(l.split_once("page kinds: ")?.1))
        .unwrap_or_else(|| panic!("no report: {stdout}"));
    println!("child: {kinds}");
    assert_eq!(kinds, "HugeTlb HugeTlb HugeTlb HugeTlb HugeTlb", "{stdout}");
    // The 256 MiB arrays took the one before them over; the 200 MiB one had the
    // cache give its pages back.
    let stats = stdout
        .lines()
        .find_map(|l| Some(l.split_once("cache: ")?.1))
        .unwrap_or_else(|| panic!("no cache report: {stdout}"));
    println!("child's array cache: {stats}");
    assert!(stats.contains("reused: 3,"), "{stats}");
    assert!(stats.contains("released: 1 "), "{stats}");
    drop(settings);
}

/// Run by `a_loop_of_new_arrays_stays_on_hugetlbfs_pages_while_enough_are_reserved`
/// in a child process; does nothing when run directly.
#[test]
fn report_the_page_kinds_of_a_loop_of_new_arrays() {
    if std::env::var("HUGE_PAGES_CHILD").as_deref() != Ok("loop") {
        return;
    }
    let pool = Pool::new(2).expect("pool");
    let mut kinds = Vec::new();
    for mib in [256usize, 256, 256, 256, 200] {
        let len = mib << 20;
        let mut ys = SharedArray::<u8>::zeroed(len).expect("array");
        kinds.push(format!("{:?}", ys.page_kind()));
        assert!(ys[..1 << 20].iter().all(|&y| y == 0), "not zeroed");
        pool.bulk()
            .for_each_mut(&mut ys, |y: &mut u8| *y = 3)
            .expect("map");
        assert!(ys.iter().all(|&y| y == 3));
    }
    println!("page kinds: {}", kinds.join(" "));
    println!("cache: {:?}", shmpool::array_cache::stats());
}
