//! The `.npy` header reader and writer against numpy: the files in
//! `tests/fixtures/npy` (written by `make_fixtures.py` with `np.save`), and, when
//! `python3` with numpy is installed, numpy itself loading what we write.

#[path = "common/numpy.rs"]
mod numpy;

use std::fmt::{Debug, Write as _};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use shmpool::npy::{self, Bool, DType, NpyElement, NpyError, NpyHeader};

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Element types decoded from little-endian bytes, and printed as Python literals.
trait Elem: NpyElement + PartialEq + Debug {
    fn decode(bytes: &[u8]) -> Self;
    fn encode(self) -> Vec<u8>;
    fn python(self) -> String;
}

macro_rules! elem {
    ($($t:ty),* => $python:expr) => {$(
        impl Elem for $t {
            fn decode(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().unwrap())
            }
            fn encode(self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
            fn python(self) -> String {
                $python(self)
            }
        }
    )*};
}

elem!(i8, i16, i32, i64, u8, u16, u32, u64 => |v: Self| v.to_string());
// Python's float of an f32 is the f64 of the same value.
elem!(f32 => |v: Self| format!("{:?}", f64::from(v)));
elem!(f64 => |v: Self| format!("{v:?}"));

impl Elem for Bool {
    fn decode(bytes: &[u8]) -> Self {
        Bool::from_byte(bytes[0])
    }
    fn encode(self) -> Vec<u8> {
        vec![self.to_byte()]
    }
    fn python(self) -> String {
        if self.get() { "True" } else { "False" }.into()
    }
}

/// Reads a fixture's header the way a caller with a file would: a few bytes first,
/// then as many as `Truncated` asks for.
fn read_header(name: &str) -> Result<NpyHeader, NpyError> {
    let mut file = File::open(fixture_path(name)).unwrap();
    let mut buf = Vec::new();
    let mut want = 16;
    loop {
        (&mut file)
            .take(want - buf.len() as u64)
            .read_to_end(&mut buf)
            .unwrap();
        match npy::parse_header(&buf) {
            Err(NpyError::Truncated { needed, .. }) if buf.len() as u64 == want => want = needed,
            result => return result,
        }
    }
}

/// Parses a fixture that must be readable as `T` with `shape`, checks its header is
/// the one we would write, and decodes its data.
fn load<T: Elem>(name: &str, shape: &[usize]) -> Vec<T> {
    let file = fixture(name);
    let h = npy::parse_header(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read_header(name).as_ref(), Ok(&h), "{name}");
    assert_eq!((h.dtype, h.shape.as_slice()), (T::DTYPE, shape), "{name}");
    assert!(!h.fortran_order, "{name}");
    assert_eq!(h.data_offset % 64, 0, "{name}");
    if file[6] == 1 {
        assert_eq!(
            file[..h.data_offset],
            npy::header_bytes(T::DTYPE, shape),
            "{name}"
        );
    }
    npy::validate_for::<T>(&h, file.len() as u64).unwrap_or_else(|e| panic!("{name}: {e}"));
    let data = &file[h.data_offset..];
    assert_eq!(data.len(), h.data_bytes().unwrap(), "{name}");
    data.chunks_exact(T::DTYPE.size()).map(T::decode).collect()
}

#[test]
fn one_dimensional_arrays_of_every_dtype() {
    assert_eq!(load::<i8>("i8_1d.npy", &[4]), [-128, -1, 0, 127]);
    assert_eq!(load::<u8>("u8_1d.npy", &[4]), [0, 1, 200, 255]);
    assert_eq!(
        load::<i16>("i16_1d.npy", &[4]),
        [i16::MIN, -2, 300, i16::MAX]
    );
    assert_eq!(load::<u16>("u16_1d.npy", &[3]), [0, 0x1234, u16::MAX]);
    assert_eq!(
        load::<i32>("i32_1d.npy", &[4]),
        [i32::MIN, -3, 123_456_789, i32::MAX]
    );
    assert_eq!(load::<u32>("u32_1d.npy", &[3]), [0, 0xDEAD_BEEF, u32::MAX]);
    assert_eq!(
        load::<i64>("i64_1d.npy", &[5]),
        [i64::MIN, -1, 0, (1 << 62) + 12345, i64::MAX]
    );
    assert_eq!(
        load::<u64>("u64_1d.npy", &[3]),
        [0, 0xDEAD_BEEF_CAFE_BABE, u64::MAX]
    );
    assert_eq!(load::<f32>("f32_1d.npy", &[4]), [1.5, -2.25, 3.0e10, 0.1]);
    let f64s = load::<f64>("f64_1d.npy", &[5]);
    let expected = [0.1, -0.0, 1e300, std::f64::consts::PI, f64::NEG_INFINITY];
    assert_eq!(
        f64s.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.map(f64::to_bits)
    );
}

#[test]
fn bool_arrays() {
    assert_eq!(load::<Bool>("bool_1d.npy", &[3]), [true, false, true]);
    let grid: Vec<bool> = (0..12).map(|i| i % 3 == 0).collect();
    assert_eq!(load::<Bool>("bool_2d.npy", &[3, 4]), grid);
    // numpy reads any nonzero byte as True, and so do we; the bytes stay as they are.
    let odd = load::<Bool>("bool_bytes.npy", &[4]);
    assert_eq!(odd, [false, true, true, true]);
    let bytes: Vec<u8> = odd.iter().map(|b| b.to_byte()).collect();
    assert_eq!(bytes, [0, 1, 2, 255]);
    // A bool array is not a byte array: asking for u8 is a dtype mismatch.
    let file = fixture("bool_1d.npy");
    let mut h = npy::parse_header(&file).unwrap();
    assert_eq!(
        npy::validate_for::<u8>(&h, file.len() as u64),
        Err(NpyError::DTypeMismatch {
            found: DType::Bool,
            requested: DType::U8
        })
    );
    // A caller who wants the raw bytes may still relabel the header.
    h.dtype = DType::U8;
    npy::validate_for::<u8>(&h, file.len() as u64).unwrap();
    assert_eq!(file[h.data_offset..], [1, 0, 1]);
}

#[test]
fn shapes() {
    let expected: Vec<f64> = (0..12).map(|i| f64::from(i) * 1.5 + 0.25).collect();
    assert_eq!(load::<f64>("f64_2d.npy", &[3, 4]), expected);
    let expected: Vec<i32> = (0..24).map(|i| i * 7 - 50).collect();
    assert_eq!(load::<i32>("i32_3d.npy", &[2, 3, 4]), expected);
    assert_eq!(load::<f64>("scalar_f64.npy", &[]), [42.5]);
    assert_eq!(load::<f64>("empty_f64.npy", &[0]), []);
    assert_eq!(load::<f32>("empty_2x0x3_f32.npy", &[2, 0, 3]), []);
    let mut shape = vec![2];
    shape.extend([1; 35]);
    assert_eq!(load::<i32>("pad64_i32.npy", &shape), [7, -7]);
    assert_eq!(
        npy::parse_header(&fixture("pad64_i32.npy"))
            .unwrap()
            .data_offset,
        256
    );
}

#[test]
fn format_versions_2_and_3() {
    assert_eq!(fixture("v2_f64.npy")[6..8], [2, 0]);
    assert_eq!(load::<f64>("v2_f64.npy", &[3]), [1.0, 2.0, 3.0]);
    assert_eq!(fixture("v3_i16.npy")[6..8], [3, 0]);
    assert_eq!(load::<i16>("v3_i16.npy", &[2]), [-5, 6]);
}

#[test]
fn files_we_refuse() {
    // Fortran order parses, but a flat C-order read is refused.
    let file = fixture("fortran_f64_2d.npy");
    let h = npy::parse_header(&file).unwrap();
    assert_eq!(
        (h.dtype, h.shape.as_slice(), h.fortran_order),
        (DType::F64, &[2, 3][..], true)
    );
    let err = npy::validate_for::<f64>(&h, file.len() as u64).unwrap_err();
    assert_eq!(
        err,
        NpyError::FortranOrder {
            shape: "(2, 3)".into()
        }
    );
    assert!(err.to_string().contains("np.ascontiguousarray"), "{err}");
    // (Column after column: that is why.)
    let data: Vec<f64> = file[h.data_offset..]
        .chunks_exact(8)
        .map(f64::decode)
        .collect();
    assert_eq!(data, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);

    assert_eq!(
        read_header("big_endian_f8.npy"),
        Err(NpyError::BigEndian {
            descr: ">f8".into()
        })
    );
    assert_eq!(
        read_header("complex128.npy"),
        Err(NpyError::UnsupportedDType {
            descr: "'<c16'".into()
        })
    );
    assert_eq!(
        read_header("structured.npy"),
        Err(NpyError::UnsupportedDType {
            descr: "[('a', '<i4'), ('b', '<f8')]".into()
        })
    );

    let file = fixture("truncated_f64.npy");
    let h = npy::parse_header(&file).unwrap();
    assert_eq!(
        npy::validate_for::<f64>(&h, file.len() as u64),
        Err(NpyError::DataTruncated {
            needed: 168,
            have: 164
        })
    );
    // A wrong element type is named as such.
    let file = fixture("f64_1d.npy");
    let h = npy::parse_header(&file).unwrap();
    assert_eq!(
        npy::validate_for::<i64>(&h, file.len() as u64),
        Err(NpyError::DTypeMismatch {
            found: DType::F64,
            requested: DType::I64
        })
    );
    // A header cut short says how much to read.
    assert_eq!(
        npy::parse_header(&file[..50]),
        Err(NpyError::Truncated {
            needed: 128,
            have: 50
        })
    );
}

/// Whether `python3` can import numpy; if not, says the test is skipped (or, under
/// CI, fails it).
fn numpy_available(test: &str) -> bool {
    numpy::require(test)
}

fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_python(script: &str, dir: &Path) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The files of [`numpy_loads_what_we_write`], and a Python literal describing them.
#[derive(Default)]
struct Cases {
    files: Vec<(String, Vec<u8>)>,
    manifest: String,
}

impl Cases {
    fn add<T: Elem>(&mut self, name: &str, shape: &[usize], values: &[T]) {
        let mut file = npy::header_bytes(T::DTYPE, shape);
        let texts: Vec<String> = values.iter().map(|v| v.python()).collect();
        for &v in values {
            file.extend(v.encode());
        }
        let dims: Vec<String> = shape.iter().map(|d| format!("{d},")).collect();
        writeln!(
            self.manifest,
            "    ({name:?}, {:?}, ({}), [{}]),",
            T::DTYPE.descr(),
            dims.join(" "),
            texts.join(", ")
        )
        .unwrap();
        self.files.push((name.to_string(), file));
    }
}

#[test]
fn numpy_loads_what_we_write() {
    if !numpy_available("numpy_loads_what_we_write") {
        return;
    }
    let mut cases = Cases::default();
    cases.add::<i8>("i8.npy", &[4], &[i8::MIN, -1, 0, i8::MAX]);
    cases.add::<u8>("u8.npy", &[3], &[0, 7, u8::MAX]);
    cases.add::<i16>("i16.npy", &[3], &[i16::MIN, 2, i16::MAX]);
    cases.add::<u16>("u16.npy", &[2], &[1, u16::MAX]);
    cases.add::<i32>(
        "i32.npy",
        &[2, 3, 4],
        &(0..24).map(|i| i * 1001 - 9000).collect::<Vec<_>>(),
    );
    cases.add::<u32>("u32.npy", &[2], &[0xDEAD_BEEF, u32::MAX]);
    cases.add::<i64>("i64.npy", &[3], &[i64::MIN, -42, i64::MAX]);
    cases.add::<u64>("u64.npy", &[2], &[1 << 63, u64::MAX]);
    cases.add::<f32>("f32.npy", &[4], &[0.1, -1.5, 3.0e38, f32::MIN_POSITIVE]);
    cases.add::<f64>(
        "f64_2d.npy",
        &[3, 4],
        &(0..12)
            .map(|i| f64::from(i) / 3.0 - 1.0)
            .collect::<Vec<_>>(),
    );
    cases.add::<f64>("scalar.npy", &[], &[-0.5]);
    cases.add::<f64>("empty.npy", &[0], &[]);
    cases.add::<u16>("empty_3d.npy", &[2, 0, 3], &[]);
    let mut pad64 = vec![2];
    pad64.extend([1; 35]);
    cases.add::<i32>("pad64.npy", &pad64, &[7, -7]);
    cases.add::<Bool>("bool.npy", &[3], &[true, false, true].map(Bool::from));
    cases.add::<Bool>(
        "bool_2d.npy",
        &[4, 5],
        &(0..20).map(|i| Bool::from(i % 7 < 3)).collect::<Vec<_>>(),
    );

    let dir = scratch_dir("npy_numpy_loads");
    for (name, bytes) in &cases.files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(
        dir.join("manifest.txt"),
        format!("[\n{}]\n", cases.manifest),
    )
    .unwrap();
    // numpy checks each file, then saves what it loaded: that must give our bytes back.
    run_python(
        r#"
import ast, os, sys
import numpy as np
d = sys.argv[1]
with open(os.path.join(d, "manifest.txt")) as f:
    cases = ast.literal_eval(f.read())
for name, descr, shape, values in cases:
    a = np.load(os.path.join(d, name), allow_pickle=False)
    assert a.dtype.str == descr, (name, a.dtype.str, descr)
    assert (a.dtype == np.bool_) == (descr == "|b1"), (name, a.dtype)
    assert a.shape == shape, (name, a.shape, shape)
    assert a.ravel().tolist() == values, (name, a.ravel().tolist(), values)
    np.save(os.path.join(d, "resaved_" + name), a)
print("numpy", np.__version__, "loaded", len(cases), "files")
"#,
        &dir,
    );
    for (name, bytes) in &cases.files {
        let resaved = std::fs::read(dir.join(format!("resaved_{name}"))).unwrap();
        assert!(resaved == *bytes, "{name}: numpy re-saved different bytes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn header_bytes_equal_numpys_for_many_shapes() {
    if !numpy_available("header_bytes_equal_numpys_for_many_shapes") {
        return;
    }
    let mut shapes: Vec<Vec<usize>> = vec![
        vec![],
        vec![0],
        vec![usize::MAX],
        vec![usize::MAX, 0, 17],
        vec![123_456_789_012, 3],
    ];
    for n in 1..=70 {
        shapes.push(vec![1; n]);
        shapes.push((1..=n).collect());
    }
    for digits in 0..20 {
        shapes.push(vec![10usize.pow(digits), 2]);
    }
    // Around the largest header format 1.0 can hold, where numpy moves to 2.0.
    let versions: Vec<u8> = (21_700..21_900)
        .map(|n| npy::header_bytes(DType::U8, &vec![1; n])[6])
        .collect();
    let switch = 21_700
        + versions
            .iter()
            .position(|&v| v == 2)
            .expect("no switch to 2.0");
    assert!(versions[..switch - 21_700].iter().all(|&v| v == 1));
    for n in switch - 3..switch + 3 {
        shapes.push(vec![1; n]);
    }

    let dir = scratch_dir("npy_numpy_headers");
    let mut manifest = String::from("[\n");
    for (i, shape) in shapes.iter().enumerate() {
        let dtype = [DType::F64, DType::U8, DType::Bool, DType::I16][i % 4];
        let dims: Vec<String> = shape.iter().map(|d| format!("{d},")).collect();
        writeln!(
            manifest,
            "    ({i}, {:?}, ({})),",
            dtype.descr(),
            dims.join(" ")
        )
        .unwrap();
    }
    manifest.push_str("]\n");
    std::fs::write(dir.join("manifest.txt"), manifest).unwrap();
    // numpy's writers: 1.0, or 2.0 when 1.0 cannot hold the header, as np.save does.
    run_python(
        r#"
import ast, os, sys
import numpy as np
d = sys.argv[1]
with open(os.path.join(d, "manifest.txt")) as f:
    cases = ast.literal_eval(f.read())
for i, descr, shape in cases:
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    with open(os.path.join(d, "%d.bin" % i), "wb") as f:
        try:
            np.lib.format.write_array_header_1_0(f, header)
        except ValueError:
            f.seek(0)
            f.truncate()
            np.lib.format.write_array_header_2_0(f, header)
"#,
        &dir,
    );
    for (i, shape) in shapes.iter().enumerate() {
        let dtype = [DType::F64, DType::U8, DType::Bool, DType::I16][i % 4];
        let numpys = std::fs::read(dir.join(format!("{i}.bin"))).unwrap();
        let ours = npy::header_bytes(dtype, shape);
        assert!(
            ours == numpys,
            "{dtype} {} axes: ours {} bytes v{}, numpy's {} bytes v{}",
            shape.len(),
            ours.len(),
            ours[6],
            numpys.len(),
            numpys[6]
        );
        let fits = NpyHeader {
            dtype,
            shape: shape.clone(),
            fortran_order: false,
            data_offset: 0,
        }
        .data_bytes()
        .is_ok();
        match npy::parse_header(&numpys) {
            Ok(h) => assert!(fits && (h.dtype, &h.shape) == (dtype, shape)),
            Err(NpyError::ShapeOverflow { .. }) => assert!(!fits),
            Err(e) => panic!("{dtype} {shape:?}: {e}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
