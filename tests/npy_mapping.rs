//! `.npy` files as shared arrays: shmpool maps what numpy's `np.save` wrote
//! (fixtures made by `tests/fixtures/npy/make_fixtures.py`), maps run over files
//! zero-copy and in place, numpy reads what shmpool writes, and bad files get clear
//! errors. The header format itself is tested in `tests/npy_format.rs`.

#[path = "common/numpy.rs"]
mod numpy;

use std::path::{Path, PathBuf};
use std::process::Command;

use shmpool::npy::{self, Bool, DType, NpyError};
use shmpool::{Error, Pool, SharedArray};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name)
}

/// A private copy of a fixture (files are mapped read-write).
fn copy_of(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(fixture(name), &to).unwrap();
    to
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shmpool-npy-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs python3 with numpy, or says why it cannot (and fails, under CI).
fn python(script: &str) -> Option<String> {
    if !numpy::require("the numpy side of this test") {
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn open_npy_maps_the_data_numpy_wrote() {
    let dir = temp_dir("open");
    // SAFETY: each file is a private copy nobody else touches.
    unsafe {
        let f32s = SharedArray::<f32>::open_npy(copy_of("f32_1d.npy", &dir)).unwrap();
        assert_eq!(&f32s[..], &[1.5, -2.25, 3.0e10, 0.1]);
        let f64s = SharedArray::<f64>::open_npy(copy_of("f64_1d.npy", &dir)).unwrap();
        assert_eq!(f64s.len(), 5);
        assert_eq!(
            (f64s[0], f64s[2], f64s[3], f64s[4]),
            (0.1, 1e300, std::f64::consts::PI, f64::NEG_INFINITY)
        );
        assert!(f64s[1] == 0.0 && f64s[1].is_sign_negative());
        let i64s = SharedArray::<i64>::open_npy(copy_of("i64_1d.npy", &dir)).unwrap();
        assert_eq!(&i64s[..], &[i64::MIN, -1, 0, (1 << 62) + 12345, i64::MAX]);
        let grid = SharedArray::<f64>::open_npy(copy_of("f64_2d.npy", &dir)).unwrap();
        assert_eq!(grid.shape(), &[3, 4]);
        assert_eq!(grid[5], 5.0 * 1.5 + 0.25);
        let cube = SharedArray::<i32>::open_npy(copy_of("i32_3d.npy", &dir)).unwrap();
        assert_eq!((cube.shape(), cube[23]), (&[2, 3, 4][..], 23 * 7 - 50));
        let empty = SharedArray::<f64>::open_npy(copy_of("empty_f64.npy", &dir)).unwrap();
        assert!(empty.is_empty());
        let scalar = SharedArray::<f64>::open_npy(copy_of("scalar_f64.npy", &dir)).unwrap();
        assert_eq!((scalar.shape(), &scalar[..]), (&[][..], &[42.5][..]));
        let v2 = SharedArray::<f64>::open_npy(copy_of("v2_f64.npy", &dir)).unwrap();
        assert_eq!(&v2[..], &[1.0, 2.0, 3.0]);
        let v3 = SharedArray::<i16>::open_npy(copy_of("v3_i16.npy", &dir)).unwrap();
        assert_eq!(&v3[..], &[-5, 6]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pool_maps_a_file_in_place_and_numpy_reads_the_result() {
    let dir = temp_dir("inplace");
    let path = copy_of("f64_2d.npy", &dir);
    let pool = Pool::new(2).unwrap();
    {
        // SAFETY: a private copy.
        let mut grid = unsafe { SharedArray::<f64>::open_npy(&path) }.unwrap();
        pool.bulk()
            .chunk_len(5)
            .for_each_mut(&mut grid, |v: &mut f64| *v = *v * *v + 1.0)
            .unwrap();
    }
    let expected: Vec<f64> = (0..12)
        .map(|i| (i as f64 * 1.5 + 0.25).powi(2) + 1.0)
        .collect();
    // SAFETY: as above.
    let back = unsafe { SharedArray::<f64>::open_npy(&path) }.unwrap();
    assert_eq!(&back[..], &expected[..]);
    let script = format!(
        "import numpy as np; a = np.load({:?}); assert a.shape == (3, 4), a.shape; \
         assert (a.ravel() == np.array({expected:?})).all(); print('ok')",
        path.to_str().unwrap()
    );
    if let Some(out) = python(&script) {
        assert_eq!(out, "ok");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn numpy_reads_files_shmpool_creates() {
    let dir = temp_dir("create");
    let pool = Pool::new(2).unwrap();
    let xs = SharedArray::try_from_iter((0..1000).map(|i| i as f64)).unwrap();
    let f64_path = dir.join("out_f64.npy");
    let f32_path = dir.join("out_f32.npy");
    let i64_path = dir.join("out_i64.npy");
    {
        // SAFETY: new private files.
        let mut a = unsafe { SharedArray::<f64>::create_npy(&f64_path, &[10, 100]) }.unwrap();
        pool.map_into(&xs, &mut a, |v: f64| v.sqrt()).unwrap();
        // SAFETY: as above.
        let mut b = unsafe { SharedArray::<f32>::create_npy(&f32_path, &[1000]) }.unwrap();
        pool.map_into(&xs, &mut b, |v: f64| (v * 0.25) as f32)
            .unwrap();
        // SAFETY: as above.
        let mut c = unsafe { SharedArray::<i64>::create_npy(&i64_path, &[1000]) }.unwrap();
        pool.map_into(&xs, &mut c, |v: f64| -(v as i64) * 3)
            .unwrap();
    }
    let script = format!(
        "import numpy as np\n\
         a = np.load({:?}); b = np.load({:?}); c = np.load({:?})\n\
         assert a.dtype == np.float64 and a.shape == (10, 100)\n\
         assert (a.ravel() == np.sqrt(np.arange(1000.0))).all()\n\
         assert b.dtype == np.float32 and (b == (np.arange(1000.0) * 0.25).astype(np.float32)).all()\n\
         assert c.dtype == np.int64 and (c == -np.arange(1000) * 3).all()\n\
         print('ok')",
        f64_path.to_str().unwrap(),
        f32_path.to_str().unwrap(),
        i64_path.to_str().unwrap()
    );
    if let Some(out) = python(&script) {
        assert_eq!(out, "ok");
    }
    // And shmpool reads its own files back.
    // SAFETY: private files, not otherwise in use.
    let a = unsafe { SharedArray::<f64>::open_npy(&f64_path) }.unwrap();
    assert_eq!((a.shape(), a[144]), (&[10, 100][..], 12.0));
    // save_npy writes a copy numpy can read too.
    let copy = dir.join("copy.npy");
    a.save_npy(&copy).unwrap();
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&f64_path).unwrap()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bool_arrays_map_both_ways() {
    let dir = temp_dir("bool");
    // SAFETY: private copies and new private files, nobody else touches them.
    unsafe {
        let flags = SharedArray::<Bool>::open_npy(copy_of("bool_1d.npy", &dir)).unwrap();
        assert_eq!(&flags[..], &[true, false, true]);
        let grid = SharedArray::<Bool>::open_npy(copy_of("bool_2d.npy", &dir)).unwrap();
        assert_eq!(grid.shape(), &[3, 4]);
        assert!(
            grid.iter()
                .enumerate()
                .all(|(i, b)| b.get() == (i % 3 == 0))
        );
        // Bytes other than 0 and 1 are true, as numpy reads them, and are kept.
        let odd = SharedArray::<Bool>::open_npy(copy_of("bool_bytes.npy", &dir)).unwrap();
        assert_eq!(&odd[..], &[false, true, true, true]);
        assert_eq!(
            odd.iter().map(|b| b.to_byte()).collect::<Vec<_>>(),
            [0, 1, 2, 255]
        );
        // A bool file is not a byte file, and the reverse.
        match SharedArray::<u8>::open_npy(copy_of("bool_1d.npy", &dir)) {
            Err(Error::Npy {
                problem:
                    NpyError::DTypeMismatch {
                        found: DType::Bool,
                        requested: DType::U8,
                    },
                ..
            }) => {}
            other => panic!("expected a dtype mismatch, got {other:?}"),
        }
        assert!(SharedArray::<Bool>::open_npy(copy_of("u8_1d.npy", &dir)).is_err());
    }

    // A pool writes a bool file, and numpy loads it as dtype bool.
    let pool = Pool::new(2).unwrap();
    let xs = SharedArray::try_from_iter((0..1000).map(|i| i as f64)).unwrap();
    let created = dir.join("created.npy");
    let saved = dir.join("saved.npy");
    {
        // SAFETY: a new private file.
        let mut ys = unsafe { SharedArray::<Bool>::create_npy(&created, &[10, 100]) }.unwrap();
        pool.map_into(&xs, &mut ys, |v: f64| Bool::from(v % 3.0 == 0.0))
            .unwrap();
        ys.save_npy(&saved).unwrap();
    }
    let numpy_wrote = dir.join("numpy_wrote.npy");
    let script = format!(
        "import numpy as np\n\
         expected = (np.arange(1000) % 3 == 0).reshape(10, 100)\n\
         a, b = np.load({:?}), np.load({:?})\n\
         assert a.dtype == b.dtype == np.bool_, (a.dtype, b.dtype)\n\
         assert a.shape == b.shape == (10, 100), (a.shape, b.shape)\n\
         assert (a == expected).all() and (b == expected).all()\n\
         np.save({:?}, (np.arange(24) % 5 == 1).reshape(2, 3, 4))\n\
         print('ok')",
        created.to_str().unwrap(),
        saved.to_str().unwrap(),
        numpy_wrote.to_str().unwrap()
    );
    let Some(out) = python(&script) else {
        std::fs::remove_dir_all(dir).unwrap();
        return;
    };
    assert_eq!(out, "ok");

    // numpy's own bool file: shmpool maps it, a pool flips it in place, numpy reads
    // the result.
    {
        // SAFETY: a private file numpy has finished writing.
        let mut a = unsafe { SharedArray::<Bool>::open_npy(&numpy_wrote) }.unwrap();
        assert_eq!(a.shape(), &[2, 3, 4]);
        assert!(a.iter().enumerate().all(|(i, b)| b.get() == (i % 5 == 1)));
        pool.bulk()
            .for_each_mut(&mut a, |b: &mut Bool| *b = !*b)
            .unwrap();
    }
    let script = format!(
        "import numpy as np\n\
         a = np.load({:?})\n\
         assert a.dtype == np.bool_ and a.shape == (2, 3, 4)\n\
         assert (a.ravel() == (np.arange(24) % 5 != 1)).all()\n\
         assert set(a.view(np.uint8).ravel().tolist()) == {{0, 1}}\n\
         print('ok')",
        numpy_wrote.to_str().unwrap()
    );
    assert_eq!(python(&script).as_deref(), Some("ok"));
    std::fs::remove_dir_all(dir).unwrap();
}

fn open_error(name: &str) -> NpyError {
    let dir = temp_dir(&format!("bad-{name}"));
    // SAFETY: a private copy.
    let result = unsafe { SharedArray::<f64>::open_npy(copy_of(name, &dir)) };
    std::fs::remove_dir_all(dir).unwrap();
    match result {
        Err(Error::Npy { path, problem }) => {
            assert!(path.ends_with(name));
            problem
        }
        Err(other) => panic!("{name}: expected Error::Npy, got {other:?}"),
        Ok(_) => panic!("{name}: opened a file that should be refused"),
    }
}

#[test]
fn bad_files_get_clear_errors() {
    assert!(matches!(
        open_error("truncated_f64.npy"),
        NpyError::DataTruncated { .. }
    ));
    assert!(matches!(
        open_error("fortran_f64_2d.npy"),
        NpyError::FortranOrder { .. }
    ));
    assert!(matches!(
        open_error("big_endian_f8.npy"),
        NpyError::BigEndian { .. }
    ));
    assert!(matches!(
        open_error("complex128.npy"),
        NpyError::UnsupportedDType { .. }
    ));
    assert!(matches!(
        open_error("structured.npy"),
        NpyError::UnsupportedDType { .. }
    ));
    assert!(matches!(
        open_error("v3_i16.npy"),
        NpyError::DTypeMismatch {
            found: DType::I16,
            requested: DType::F64
        }
    ));
    let dir = temp_dir("msg");
    // A zip file is not a .npy file.
    let zip = dir.join("archive.npy");
    std::fs::write(
        &zip,
        b"PK\x03\x04 not numpy at all, but long enough to read",
    )
    .unwrap();
    // SAFETY: a private file.
    match unsafe { SharedArray::<f64>::open_npy(&zip) } {
        Err(Error::Npy {
            problem: NpyError::BadMagic { .. },
            ..
        }) => {}
        other => panic!("expected BadMagic, got {other:?}"),
    }
    // Data at an offset that is not aligned for the element type: refused, never
    // mapped as a misaligned slice.
    let mut skewed = npy::header_bytes(DType::F64, &[2]);
    let header_len = u16::from_le_bytes([skewed[8], skewed[9]]) + 4;
    skewed[8..10].copy_from_slice(&header_len.to_le_bytes());
    let newline = skewed.pop().unwrap();
    skewed.extend_from_slice(b"    ");
    skewed.push(newline);
    skewed.extend_from_slice(&[0u8; 16]);
    let path = dir.join("skewed.npy");
    std::fs::write(&path, &skewed).unwrap();
    // SAFETY: a private file.
    match unsafe { SharedArray::<f64>::open_npy(&path) } {
        Err(Error::Npy {
            problem: NpyError::Misaligned { .. },
            ..
        }) => {}
        other => panic!("expected Misaligned, got {other:?}"),
    }
    // The message names the file and the problem.
    // SAFETY: a private copy.
    let err =
        unsafe { SharedArray::<f64>::open_npy(copy_of("fortran_f64_2d.npy", &dir)) }.unwrap_err();
    assert!(
        err.to_string().contains("fortran_f64_2d.npy") && err.to_string().contains("Fortran"),
        "{err}"
    );
    // A file that does not exist is a File error that names it.
    // SAFETY: opening nothing.
    let missing = unsafe { SharedArray::<f64>::open_npy(dir.join("missing.npy")) };
    match missing {
        Err(e @ Error::File { .. }) => {
            let message = e.to_string();
            assert!(message.starts_with("opening the .npy file /"), "{message}");
            assert!(message.contains("missing.npy: No such file"), "{message}");
        }
        other => panic!("expected File, got {other:?}"),
    }
    std::fs::remove_dir_all(dir).unwrap();
}
