//! numpy's ways to open a `.npy` file, and `np.save` of plain data: a read-only
//! file opens read-only (`mmap_mode="r"`) and pools read it; `load_npy` copies
//! (`np.load`, and what `mmap_mode="c"` is for); `npy::save` writes a slice with a
//! shape numpy reads; `from_slice_shaped` keeps a shape; every failure names its
//! path.

#[path = "common/numpy.rs"]
mod numpy;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use shmpool::{Error, Pool, ReadOnlyArray, SharedArray};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shmpool-npy-modes-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Makes `path` read-only for everyone.
fn read_only(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
}

/// The file the child of `a_read_only_file_opens_read_only_and_pools_read_it`
/// checks, as `nobody`.
const CHILD_FILE: &str = "SHMPOOL_NPY_MODES_READ_ONLY_FILE";

#[test]
fn a_read_only_file_opens_read_only_and_pools_read_it() {
    const TEST: &str = "a_read_only_file_opens_read_only_and_pools_read_it";
    if let Some(path) = std::env::var_os(CHILD_FILE) {
        // SAFETY: plain system calls; this child runs this one test alone.
        unsafe {
            assert_eq!(libc::setgid(65534), 0, "setgid(nobody)");
            assert_eq!(libc::setuid(65534), 0, "setuid(nobody)");
        }
        return check_read_only(Path::new(&path));
    }
    let dir = temp_dir("ro");
    let path = dir.join("x.npy");
    let values: Vec<f64> = (0..10_000).map(|i| i as f64 * 0.5).collect();
    shmpool::npy::save_shaped(&path, &values, &[100, 100]).unwrap();
    read_only(&path);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        check_read_only(&path);
    } else {
        // Root opens a 0444 file read-write regardless: re-run this test in a
        // child that drops to `nobody` first.
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_FILE, &path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "the child as nobody failed:\n{text}");
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// As a user the permissions apply to: the 0444 file at `path` refuses to open
/// read-write, opens read-only, and pools under every start method read it.
fn check_read_only(path: &Path) {
    // SAFETY: only to be refused.
    match unsafe { SharedArray::<f64>::open_npy(path) } {
        Err(e @ Error::File { .. }) => {
            let message = e.to_string();
            assert!(message.contains(path.to_str().unwrap()), "{message}");
            assert!(message.contains("Permission denied"), "{message}");
        }
        other => panic!("a read-only file opened read-write: {other:?}"),
    }
    // SAFETY: nobody writes or truncates the file while the test runs.
    let x: ReadOnlyArray<f64> = unsafe { SharedArray::open_npy_read_only(path) }.unwrap();
    assert_eq!(x.shape(), &[100, 100]);
    assert_eq!(x[9999], 4999.5);
    // Workers map it read-only and read it, for maps and reductions.
    for method in [
        shmpool::StartMethod::Fork,
        shmpool::StartMethod::ForkServer,
        shmpool::StartMethod::Spawn,
    ] {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let mut y = SharedArray::<f64>::for_overwrite(x.len()).unwrap();
        pool.bulk()
            .chunk_len(777)
            .map_into(&x, &mut y, |v: f64| v * 2.0)
            .unwrap();
        assert!(
            y.iter().enumerate().all(|(i, &v)| v == i as f64),
            "{method:?}"
        );
        assert_eq!(pool.bulk().sum(&x).unwrap(), 24_997_500.0, "{method:?}");
        assert_eq!(pool.bulk().argmax(&x).unwrap(), Some(9999), "{method:?}");
    }
    // A writable copy.
    let mut copy = x.try_clone().unwrap();
    copy[0] = -1.0;
    assert_eq!((x[0], copy.shape()), (0.0, &[100, 100][..]));
    // load_npy copies a read-only file too.
    let mut loaded = SharedArray::<f64>::load_npy(path).unwrap();
    loaded[1] = 7.0;
    assert_eq!(x[1], 0.5);
}

#[test]
fn load_npy_copies_so_changes_never_reach_the_file() {
    let dir = temp_dir("load");
    let path = dir.join("m.npy");
    shmpool::npy::save_shaped(&path, &[1i32, 2, 3, 4, 5, 6], &[3, 2]).unwrap();
    let before = std::fs::read(&path).unwrap();
    let pool = Pool::new(2).unwrap();
    let mut a = SharedArray::<i32>::load_npy(&path).unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    pool.bulk()
        .for_each_mut(&mut a, |v: &mut i32| *v *= 10)
        .unwrap();
    assert_eq!(&a[..], &[10, 20, 30, 40, 50, 60]);
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    // A later change to the file does not reach the copy either.
    shmpool::npy::save_shaped(&path, &[0i32; 6], &[3, 2]).unwrap();
    assert_eq!(a[0], 10);
    // The checks of open_npy apply: another dtype is refused, naming the file.
    match SharedArray::<f64>::load_npy(&path) {
        Err(Error::Npy { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Npy, got {other:?}"),
    }
    // Empty and 0-d arrays.
    shmpool::npy::save_shaped(&path, &[42.5f64], &[]).unwrap();
    let scalar = SharedArray::<f64>::load_npy(&path).unwrap();
    assert_eq!((scalar.shape(), &scalar[..]), (&[][..], &[42.5][..]));
    shmpool::npy::save_shaped::<u8>(&path, &[], &[0, 4]).unwrap();
    let empty = SharedArray::<u8>::load_npy(&path).unwrap();
    assert_eq!((empty.shape(), empty.len()), (&[0, 4][..], 0));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn npy_save_writes_slices_numpy_reads() {
    let dir = temp_dir("save");
    let v: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
    shmpool::npy::save(dir.join("flat.npy"), &v).unwrap();
    shmpool::npy::save_shaped(dir.join("grid.npy"), &v, &[3, 4]).unwrap();
    let i: Vec<i64> = vec![i64::MIN, -1, 0, i64::MAX];
    shmpool::npy::save_shaped(dir.join("col.npy"), &i, &[4, 1]).unwrap();
    // The same bytes as a SharedArray of the same shape saves.
    let shaped = SharedArray::from_slice_shaped(&v, &[3, 4]).unwrap();
    assert_eq!(shaped.shape(), &[3, 4]);
    shaped.save_npy(dir.join("shared.npy")).unwrap();
    assert_eq!(
        std::fs::read(dir.join("grid.npy")).unwrap(),
        std::fs::read(dir.join("shared.npy")).unwrap()
    );
    // A shape that does not hold the elements writes nothing.
    match shmpool::npy::save_shaped(dir.join("bad.npy"), &v, &[5, 5]) {
        Err(Error::ShapeMismatch { len: 12, shape }) => assert_eq!(shape, [5, 5]),
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(!dir.join("bad.npy").exists());
    assert!(matches!(
        SharedArray::from_slice_shaped(&v, &[5]),
        Err(Error::ShapeMismatch { .. })
    ));
    if let Some(np) = numpy::Numpy::get("npy_save_writes_slices_numpy_reads") {
        let out = np.run(&format!(
            r#"
d = {dir:?}
flat, grid, col = (np.load(os.path.join(d, n + '.npy')) for n in ('flat', 'grid', 'col'))
want = np.arange(12, dtype=np.float32) * np.float32(0.5) - np.float32(1.0)
assert flat.dtype == np.float32 and flat.shape == (12,) and (flat == want).all()
assert grid.shape == (3, 4) and (grid == want.reshape(3, 4)).all()
assert col.dtype == np.int64 and col.shape == (4, 1)
assert col[0, 0] == np.iinfo(np.int64).min and col[3, 0] == np.iinfo(np.int64).max
print('ok')
"#,
            dir = dir.to_str().unwrap()
        ));
        assert_eq!(out.trim(), "ok");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_file_error_names_its_path() {
    let dir = temp_dir("errors");
    let missing = dir.join("no/such/dir/x.npy");
    let name = missing.to_str().unwrap();
    let a = SharedArray::from_slice(&[1.0f64]).unwrap();
    let errors: Vec<(&str, Error)> = vec![
        // SAFETY: each opens nothing.
        (
            "open_npy",
            unsafe { SharedArray::<f64>::open_npy(&missing) }.unwrap_err(),
        ),
        (
            "open_npy_read_only",
            // SAFETY: as above.
            unsafe { SharedArray::<f64>::open_npy_read_only(&missing) }.unwrap_err(),
        ),
        (
            "load_npy",
            SharedArray::<f64>::load_npy(&missing).unwrap_err(),
        ),
        (
            "create_npy",
            // SAFETY: as above.
            unsafe { SharedArray::<f64>::create_npy(&missing, &[3]) }.unwrap_err(),
        ),
        ("save_npy", a.save_npy(&missing).unwrap_err()),
        (
            "npy::save",
            shmpool::npy::save(&missing, &[1u8]).unwrap_err(),
        ),
    ];
    for (call, e) in errors {
        assert!(matches!(e, Error::File { .. }), "{call}: {e:?}");
        let message = e.to_string();
        assert!(message.contains(name), "{call}: {message}");
        assert!(
            message.contains("No such file or directory"),
            "{call}: {message}"
        );
        assert_eq!(
            e.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound),
            "{call}"
        );
    }
    // A directory is not a .npy file.
    let e = SharedArray::<f64>::load_npy(&dir).unwrap_err();
    assert!(e.to_string().contains(dir.to_str().unwrap()), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
