//! Named shared-memory segments: created, opened by name, mapped by workers,
//! attached from Python, unlinked on drop, and reclaimed after a crashed owner.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmpool::npy::Bool;
use shmpool::{Error, Pool, SharedArray};

mod common;

use common::numpy;

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
        pool.bulk()
            .for_each_mut(&mut a, |v: &mut f64| *v += 0.5)
            .unwrap();
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
        // Each names the segment's path.
        match SharedArray::<u32>::open_named(&name) {
            Err(e @ Error::File { .. }) => {
                assert!(e.to_string().contains(&format!("/dev/shm/{name}")), "{e}");
                assert_eq!(
                    e.io_error().map(std::io::Error::kind),
                    Some(std::io::ErrorKind::NotFound)
                );
            }
            other => panic!("expected File, got {other:?}"),
        }
        match SharedArray::<u32>::create_named("a/b", 1) {
            Err(e @ Error::File { .. }) => assert!(e.to_string().contains("/dev/shm/a/b"), "{e}"),
            other => panic!("expected File, got {other:?}"),
        }
        assert!(matches!(
            SharedArray::<u32>::create_named("", 1),
            Err(Error::File { .. })
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
    if !numpy::require("python_attaches_by_name_and_reads_what_workers_wrote") {
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
    assert_eq!(run_python(&script), "<f8 5000");
    assert_eq!(ys[0], -1.0);
    assert!(exists(&name), "Python did not unlink our segment");
}

/// What Python sees in segment `name`, reading nothing but its header: the shape
/// and the elements, as numpy prints them (`(2, 3) [[0.0, 1.0, ...], ...]`).
fn python_view(name: &str) -> String {
    let script = format!(
        r#"
from multiprocessing import shared_memory, resource_tracker
import numpy as np, struct
shm = shared_memory.SharedMemory({name:?})
resource_tracker.unregister(shm._name, "shared_memory")  # the Rust side owns it
n, descr = struct.unpack_from("<Q16s", shm.buf, 24)
ndim, = struct.unpack_from("<I", shm.buf, 48)
shape = struct.unpack_from(f"<{{ndim}}Q", shm.buf, 64)
a = np.ndarray(shape, dtype=descr.rstrip(b"\0").decode(), buffer=shm.buf, offset=128)
assert a.size == n, (a.size, n)
print(a.shape, a.tolist())
del a
shm.close()
"#
    );
    run_python(&script)
}

/// Runs `script` with `python3 -c`; returns its trimmed stdout, failing the test
/// with its stderr if it fails.
fn run_python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_header_keeps_the_owners_shape_for_python_and_rust() {
    let with_numpy = numpy::require("the_header_keeps_the_owners_shape_for_python_and_rust");
    let name = unique("shape");
    // SAFETY: the name is ours alone; readers only read while we wait for them.
    let mut a = unsafe { SharedArray::<f64>::create_named_shaped(&name, &[2, 3]) }.unwrap();
    a.iter_mut().enumerate().for_each(|(i, v)| *v = i as f64);
    assert_eq!(a.shape(), &[2, 3]);
    // SAFETY: as above.
    let opened = unsafe { SharedArray::<f64>::open_named(&name) }.unwrap();
    assert_eq!(opened.shape(), &[2, 3]);
    assert_eq!(opened.to_vec(), a.to_vec());
    if with_numpy {
        assert_eq!(
            python_view(&name),
            "(2, 3) [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]"
        );
    }

    // The owner reshapes: the header follows.
    let a = a.reshape(&[3, 2]).unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    // SAFETY: as above.
    let reopened = unsafe { SharedArray::<f64>::open_named(&name) }.unwrap();
    assert_eq!(reopened.shape(), &[3, 2]);
    if with_numpy {
        assert_eq!(
            python_view(&name),
            "(3, 2) [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]"
        );
    }

    // A reader's reshape is its own view: the header stays the owner's.
    let flat = opened.reshape(&[6]).unwrap();
    assert_eq!(flat.shape(), &[6]);
    let local = reopened.reshape(&[1, 1, 1, 1, 1, 1, 1, 1, 6]);
    assert!(
        matches!(local, Ok(ref l) if l.shape().len() == 9),
        "a reader's view is not limited by the header: {local:?}"
    );
    // SAFETY: as above.
    let again = unsafe { SharedArray::<f64>::open_named(&name) }.unwrap();
    assert_eq!(again.shape(), &[3, 2]);
    if with_numpy {
        assert!(python_view(&name).starts_with("(3, 2) "));
    }

    // Back to 1-D.
    let a = a.reshape(&[6]).unwrap();
    // SAFETY: as above.
    assert_eq!(
        unsafe { SharedArray::<f64>::open_named(&name) }
            .unwrap()
            .shape(),
        &[6]
    );
    if with_numpy {
        assert_eq!(python_view(&name), "(6,) [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]");
    }
    drop((a, flat, again, local));
    assert!(!exists(&name));

    // An empty shape is one element, numpy's 0-d array.
    let scalar_name = unique("scalar");
    // SAFETY: the name is ours alone.
    let mut s = unsafe { SharedArray::<i32>::create_named_shaped(&scalar_name, &[]) }.unwrap();
    s[0] = 42;
    // SAFETY: as above.
    let s2 = unsafe { SharedArray::<i32>::open_named(&scalar_name) }.unwrap();
    assert_eq!((s2.shape(), s2.len(), s2[0]), (&[][..], 1, 42));
    if with_numpy {
        assert_eq!(python_view(&scalar_name), "() 42");
    }
}

#[test]
fn shapes_a_header_cannot_record_are_refused() {
    let name = unique("badshape");
    // SAFETY: the name is ours alone; each call is refused before creating it.
    unsafe {
        match SharedArray::<u8>::create_named_shaped(&name, &[1; 9]) {
            Err(Error::UnsupportedShape { shape, reason }) => {
                assert_eq!(shape, [1; 9]);
                assert!(
                    reason.contains("9 axes") && reason.contains("at most 8"),
                    "{reason}"
                );
            }
            other => panic!("expected UnsupportedShape, got {other:?}"),
        }
        for huge in [&[usize::MAX, 2][..], &[1 << 40, 1 << 40], &[usize::MAX / 4]] {
            let r = SharedArray::<f64>::create_named_shaped(&name, huge);
            match r {
                Err(Error::UnsupportedShape { ref shape, .. }) if shape == huge => {}
                other => panic!("expected UnsupportedShape for {huge:?}, got {other:?}"),
            }
            assert!(!r.unwrap_err().to_string().is_empty());
        }
        let r = SharedArray::<f64>::create_named(&name, usize::MAX / 4);
        assert!(matches!(r, Err(Error::UnsupportedShape { .. })), "{r:?}");
    }
    assert!(!exists(&name), "nothing was created");

    // SAFETY: the name is ours alone.
    let a = unsafe { SharedArray::<u8>::create_named_shaped(&name, &[2, 3]) }.unwrap();
    let mismatch = a
        .try_clone()
        .unwrap()
        .reshape(&[usize::MAX, 2])
        .unwrap_err();
    assert!(matches!(mismatch, Error::ShapeMismatch { .. }));
    assert!(
        mismatch.to_string().contains("the array has 6"),
        "{mismatch}"
    );
    // Nine axes fit a memfd array's shape, not a named segment's header.
    assert!(
        a.try_clone()
            .unwrap()
            .reshape(&[1, 1, 1, 1, 1, 1, 1, 2, 3])
            .is_ok()
    );
    let r = a.reshape(&[1, 1, 1, 1, 1, 1, 1, 2, 3]);
    assert!(matches!(r, Err(Error::UnsupportedShape { .. })), "{r:?}");
    // reshape consumes the array, as it always has: the owner is gone, and so is
    // its segment.
    assert!(!exists(&name));
}

/// Free and total bytes of the filesystem at `path` (`statvfs`).
fn fs_space(path: &str) -> (u64, u64) {
    let st = rustix::fs::statvfs(path).unwrap();
    (st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)
}

/// The child of `a_small_dev_shm_gives_no_space_not_sigbus`: in a mount namespace
/// of its own, with a 1 MiB tmpfs over /dev/shm, as in a container.
fn small_dev_shm_child() {
    let (free, total) = fs_space("/dev/shm");
    assert_eq!((free, total), (1 << 20, 1 << 20), "a fresh 1 MiB tmpfs");

    // 8 MiB in 1 MiB: a typed error, and nothing left behind.
    let big = unique("big");
    // SAFETY: the name is ours alone (and so is this /dev/shm).
    match unsafe { SharedArray::<u8>::create_named(&big, 8 << 20) } {
        Err(e @ Error::NoSpace { .. }) => {
            let Error::NoSpace {
                bytes,
                ref filesystem,
                free,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(bytes, (8 << 20) + 128, "the elements and the header");
            assert_eq!(filesystem, Path::new("/dev/shm"));
            assert_eq!(free, Some(1 << 20), "the failed reservation was undone");
            let message = e.to_string();
            for part in ["8.0 MiB", "/dev/shm", "1.0 MiB free", "--shm-size"] {
                assert!(message.contains(part), "{part:?} not in {message:?}");
            }
            println!("the error reads: {message}");
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(!exists(&big));
    assert_eq!(std::fs::read_dir("/dev/shm").unwrap().count(), 0);
    assert_eq!(fs_space("/dev/shm").0, 1 << 20);

    // 512 KiB fits, is reserved at once, and every byte of it can be written.
    let small = unique("small");
    // SAFETY: as above.
    let mut a = unsafe { SharedArray::<u8>::create_named(&small, 512 << 10) }.unwrap();
    let (free, _) = fs_space("/dev/shm");
    assert!(
        free <= (1 << 20) - (512 << 10),
        "reserved before any write: {free} free"
    );
    a.fill(0xab);
    assert!(a.iter().all(|&b| b == 0xab));
    assert_eq!(fs_space("/dev/shm").0, free, "writing took no more space");
    // A second one does not fit beside it: refused, not a signal later.
    // SAFETY: as above.
    let second = unsafe { SharedArray::<u8>::create_named(&unique("second"), 512 << 10) };
    assert!(matches!(second, Err(Error::NoSpace { .. })), "{second:?}");

    // memfd arrays do not live in /dev/shm: 8 MiB, written entirely, is fine.
    let mut m = SharedArray::<u8>::zeroed(8 << 20).unwrap();
    m.fill(1);
    assert_eq!(m.iter().map(|&b| u64::from(b)).sum::<u64>(), 8 << 20);
    assert_eq!(
        fs_space("/dev/shm").0,
        free,
        "memfds took nothing from /dev/shm"
    );

    drop((a, m));
    assert_eq!(std::fs::read_dir("/dev/shm").unwrap().count(), 0);
}

#[test]
fn a_small_dev_shm_gives_no_space_not_sigbus() {
    common::with_private_dev_shm(
        "a_small_dev_shm_gives_no_space_not_sigbus",
        c"size=1m",
        small_dev_shm_child,
    );
}
