//! Named shared-memory segments: created, opened by name, mapped by workers,
//! attached from Python, unlinked on drop, and reclaimed after a crashed owner.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmpool::npy::Bool;
use shmpool::{Error, Pool, SharedArray};

fn unique(tag: &str) -> String {
    format!("shmpool-test-{tag}-{}", std::process::id())
}

fn exists(name: &str) -> bool {
    Path::new(&format!("/dev/shm/{name}")).exists()
}

#[test]
fn create_open_map_and_unlink() {
    let name = unique("basic");
    let pool = Pool::new(2).unwrap();
    {
        // SAFETY: the name is ours alone.
        let mut a = unsafe { SharedArray::<f64>::create_named(&name, 10_000) }.unwrap();
        assert!(exists(&name));
        a.iter_mut().enumerate().for_each(|(i, v)| *v = i as f64);
        // Another handle on the same memory, as another process would have.
        // SAFETY: we do not hold slices of `a` while `b` is written.
        let b = unsafe { SharedArray::<f64>::open_named(&name) }.unwrap();
        assert_eq!((b.len(), b[9_999]), (10_000, 9_999.0));
        let mut out = SharedArray::zeroed(10_000).unwrap();
        pool.map_into(&b, &mut out, |v: f64| v * 2.0).unwrap();
        assert_eq!(out[123], 246.0);
        // Workers write into a named segment in place.
        pool.for_each_mut(&mut a, |v: &mut f64| *v += 0.5).unwrap();
        assert_eq!(b[7], 7.5);
        drop(b); // not the owner: the segment stays
        assert!(exists(&name));
    }
    assert!(!exists(&name), "the owner unlinks on drop");
}

#[test]
fn misuse_gets_typed_errors() {
    let name = unique("errors");
    // SAFETY: the name is ours alone.
    let a = unsafe { SharedArray::<u32>::create_named(&name, 4) }.unwrap();
    // SAFETY: as above.
    match unsafe { SharedArray::<u32>::create_named(&name, 4) } {
        Err(Error::SegmentExists { name: n }) => assert_eq!(n, name),
        other => panic!("expected SegmentExists, got {other:?}"),
    }
    // SAFETY: as above.
    match unsafe { SharedArray::<f64>::open_named(&name) } {
        Err(Error::ForeignSegment { reason, .. }) => assert!(reason.contains("<u4"), "{reason}"),
        other => panic!("expected ForeignSegment, got {other:?}"),
    }
    drop(a);
    // SAFETY: opening names that are not ours, only to be refused.
    unsafe {
        assert!(matches!(
            SharedArray::<u32>::open_named(&name),
            Err(Error::Io { .. })
        ));
        assert!(matches!(
            SharedArray::<u32>::create_named("a/b", 1),
            Err(Error::Io { .. })
        ));
        assert!(matches!(
            SharedArray::<u32>::create_named("", 1),
            Err(Error::Io { .. })
        ));
    }
    // A segment that is not ours.
    let foreign = unique("foreign");
    std::fs::write(format!("/dev/shm/{foreign}"), vec![7u8; 4096]).unwrap();
    // SAFETY: only to be refused.
    let r = unsafe { SharedArray::<u32>::open_named(&foreign) };
    assert!(matches!(r, Err(Error::ForeignSegment { .. })), "{r:?}");
    std::fs::remove_file(format!("/dev/shm/{foreign}")).unwrap();
}

#[test]
fn a_segment_left_by_a_killed_owner_is_reclaimed() {
    let name = unique("stale");
    if let Ok(child_name) = std::env::var("SHMPOOL_STALE_CHILD") {
        // The child: create the segment, then wait to be killed.
        // SAFETY: the name is ours alone.
        let _a = unsafe { SharedArray::<f64>::create_named(&child_name, 100) }.unwrap();
        println!("READY");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_segment_left_by_a_killed_owner_is_reclaimed",
            "--nocapture",
        ])
        .env("SHMPOOL_STALE_CHILD", &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0);
    }
    // While the owner lives, the name is taken and nothing is reclaimed.
    // SAFETY: only to be refused.
    assert!(matches!(
        unsafe { SharedArray::<f64>::create_named(&name, 1) },
        Err(Error::SegmentExists { .. })
    ));
    assert!(!shmpool::reclaim_stale_segments().unwrap().contains(&name));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(exists(&name), "a SIGKILLed owner cannot unlink");
    let reclaimed = shmpool::reclaim_stale_segments().unwrap();
    assert!(reclaimed.contains(&name), "{reclaimed:?}");
    assert!(!exists(&name));
    // Creating a name whose owner died also reclaims it.
    let t = Instant::now();
    // SAFETY: the name is ours alone.
    let again = unsafe { SharedArray::<f64>::create_named(&name, 3) }.unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(again.len(), 3);
}

#[test]
fn bool_segments_record_numpys_bool_dtype() {
    let name = unique("bool");
    // SAFETY: the name is ours alone.
    let mut a = unsafe { SharedArray::<Bool>::create_named(&name, 5) }.unwrap();
    a.copy_from_slice(&[true, false, false, true, true].map(Bool::from));
    // The dtype string Python passes to np.ndarray, at bytes 32..48.
    let raw = std::fs::read(format!("/dev/shm/{name}")).unwrap();
    assert_eq!(&raw[32..36], b"|b1\0");
    assert_eq!(raw[128..133], [1, 0, 0, 1, 1]);
    // SAFETY: we do not hold slices of `a` while `b` is alive.
    let b = unsafe { SharedArray::<Bool>::open_named(&name) }.unwrap();
    assert_eq!(&b[..], &[true, false, false, true, true]);
}

#[test]
fn python_attaches_by_name_and_reads_what_workers_wrote() {
    let ok = Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    if !matches!(ok, Ok(o) if o.status.success()) {
        eprintln!("skipping: python3 with numpy is not available");
        return;
    }
    let name = unique("python");
    let pool = Pool::new(2).unwrap();
    let xs = SharedArray::try_from_iter((0..5000).map(|i| i as f64)).unwrap();
    // SAFETY: the name is ours alone; Python only reads while we wait for it.
    let mut ys = unsafe { SharedArray::<f64>::create_named(&name, 5000) }.unwrap();
    pool.map_into(&xs, &mut ys, |v: f64| v.sqrt()).unwrap();
    let script = format!(
        r#"
from multiprocessing import shared_memory, resource_tracker
import numpy as np, struct
shm = shared_memory.SharedMemory({name:?})
resource_tracker.unregister(shm._name, "shared_memory")  # the Rust side owns it
magic, version, offset, size, pid, n, descr = struct.unpack_from("<8sIIIIQ16s", shm.buf, 0)
assert magic == b"SHMPNAMD" and offset == 128 and size == 8, (magic, offset, size)
descr = descr.rstrip(b"\0").decode()
a = np.ndarray((n,), dtype=descr, buffer=shm.buf, offset=offset)
assert (a == np.sqrt(np.arange(5000.0))).all()
a[0] = -1.0   # Python writes; Rust sees it
print(descr, n)
del a
shm.close()
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "<f8 5000");
    assert_eq!(ys[0], -1.0);
    assert!(exists(&name), "Python did not unlink our segment");
}
