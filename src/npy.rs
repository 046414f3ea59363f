//! The NumPy `.npy` format: reading and writing the header.
//!
//! A `.npy` file is a magic string, a version, a little header that is a Python dict
//! literal (`{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`), padded
//! so the data starts at a multiple of 64 bytes, and then the raw array data. This
//! module parses and writes that header; `SharedArray::open_npy` and `create_npy` map
//! the data zero-copy. The parser accepts what numpy writes (versions 1.0, 2.0 and
//! 3.0, any key order, trailing commas, `()` and `(5,)` shapes) and refuses, with a
//! typed error and never a panic, what shmpool cannot map as a flat little-endian
//! C-order array.

use std::fmt;

/// Element types a `.npy` file can hold that shmpool maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// `|i1`
    I8,
    /// `<i2`
    I16,
    /// `<i4`
    I32,
    /// `<i8`
    I64,
    /// `|u1`
    U8,
    /// `<u2`
    U16,
    /// `<u4`
    U32,
    /// `<u8`
    U64,
    /// `<f4`
    F32,
    /// `<f8`
    F64,
}

impl DType {
    /// numpy's little-endian descr string, as `np.save` writes it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmpool::npy::DType::F64.descr(), "<f8");
    /// assert_eq!(shmpool::npy::DType::U8.descr(), "|u1");
    /// ```
    pub fn descr(self) -> &'static str {
        match self {
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// Parses a descr string: `<`, `=` and `|` byte orders are accepted (this is a
    /// little-endian-only library), `>` is refused with [`NpyError::BigEndian`].
    fn parse(descr: &str) -> Result<DType, NpyError> {
        let unsupported = || NpyError::UnsupportedDtype(descr.to_string());
        let (order, code) = match descr.as_bytes().first() {
            Some(b'<' | b'=' | b'|' | b'>') => (descr.as_bytes()[0], &descr[1..]),
            _ => (b'=', descr),
        };
        let dtype = match code {
            "i1" | "b" => DType::I8,
            "i2" | "h" => DType::I16,
            "i4" | "i" => DType::I32,
            "i8" | "q" | "l" => DType::I64,
            "u1" | "B" => DType::U8,
            "u2" | "H" => DType::U16,
            "u4" | "I" => DType::U32,
            "u8" | "Q" | "L" => DType::U64,
            "f4" | "f" => DType::F32,
            "f8" | "d" => DType::F64,
            _ => return Err(unsupported()),
        };
        if order == b'>' && dtype.size() > 1 {
            return Err(NpyError::BigEndian(descr.to_string()));
        }
        Ok(dtype)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.descr())
    }
}

/// Rust element types with a `.npy` dtype.
///
/// # Safety
/// `Self` must be exactly the little-endian layout of `DTYPE`: the same size, no
/// padding, every bit pattern valid (it is also `bytemuck::Pod`).
pub unsafe trait NpyElement: bytemuck::Pod {
    /// The matching dtype.
    const DTYPE: DType;
}

macro_rules! npy_element {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(
            // SAFETY: a primitive integer or float is exactly its little-endian
            // dtype on the little-endian targets this crate supports.
            unsafe impl NpyElement for $t {
                const DTYPE: DType = DType::$d;
            }
        )*
    };
}

npy_element!(
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    f32 => F32, f64 => F64,
);

/// What is wrong with a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// It does not start with `\x93NUMPY`.
    #[error("not a .npy file: it does not start with \\x93NUMPY")]
    BadMagic,
    /// A format version this reader does not know.
    #[error("unsupported .npy format version {major}.{minor}")]
    UnsupportedVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The file ends before the header or the data does.
    #[error("the file is truncated: {needed} bytes needed, {have} present")]
    Truncated {
        /// Bytes the header says there must be.
        needed: u64,
        /// Bytes there are.
        have: u64,
    },
    /// The header dict cannot be read.
    #[error("malformed .npy header: {0}")]
    MalformedHeader(String),
    /// A Fortran-order (column-major) array of more than one dimension.
    #[error("a Fortran-order array cannot be mapped as C order; save it with np.ascontiguousarray")]
    FortranOrder,
    /// An element type shmpool does not map (complex, object, structured, ...).
    #[error("unsupported dtype {0}")]
    UnsupportedDtype(String),
    /// Big-endian data.
    #[error(
        "big-endian data ({0}) is not supported; convert with arr.astype(arr.dtype.newbyteorder('<'))"
    )]
    BigEndian(String),
    /// The file holds another element type than the one asked for.
    #[error("the file holds {file} elements, not {requested}")]
    DtypeMismatch {
        /// The file's dtype.
        file: DType,
        /// The dtype asked for.
        requested: DType,
    },
    /// The shape's element count overflows.
    #[error("the shape {0:?} is too large")]
    TooLarge(Vec<usize>),
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The element type.
    pub dtype: DType,
    /// The shape; `[]` for a scalar.
    pub shape: Vec<usize>,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Where the data starts in the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// The number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data size in bytes.
    ///
    /// # Errors
    /// [`NpyError::TooLarge`] when the size overflows.
    pub fn data_bytes(&self) -> Result<usize, NpyError> {
        self.shape
            .iter()
            .try_fold(self.dtype.size(), |acc, &d| acc.checked_mul(d))
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or_else(|| NpyError::TooLarge(self.shape.clone()))
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses the header at the start of `bytes` (the first bytes of a file).
///
/// # Errors
/// A [`NpyError`] naming the problem; [`NpyError::Truncated`] when `bytes` is too
/// short to hold the whole header (read more and try again).
///
/// # Examples
///
/// ```
/// use shmpool::npy::{self, DType};
///
/// let bytes = npy::header_bytes(DType::F32, &[2, 3]);
/// let h = npy::parse_header(&bytes)?;
/// assert_eq!((h.dtype, h.shape.as_slice(), h.data_offset), (DType::F32, &[2, 3][..], 128));
/// # Ok::<(), npy::NpyError>(())
/// ```
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, NpyError> {
    let truncated = |needed: usize| NpyError::Truncated {
        needed: needed as u64,
        have: bytes.len() as u64,
    };
    if bytes.len() < MAGIC.len() {
        return if MAGIC.starts_with(bytes) {
            Err(truncated(10))
        } else {
            Err(NpyError::BadMagic)
        };
    }
    if &bytes[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    if bytes.len() < 8 {
        return Err(truncated(10));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, text_start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    if bytes.len() < text_start {
        return Err(truncated(text_start));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let end = text_start
        .checked_add(header_len)
        .ok_or_else(|| NpyError::MalformedHeader("header length overflows".into()))?;
    if bytes.len() < end {
        return Err(truncated(end));
    }
    let text = std::str::from_utf8(&bytes[text_start..end])
        .map_err(|_| NpyError::MalformedHeader("the header is not text".into()))?;
    if major == 1 && !text.is_ascii() {
        return Err(NpyError::MalformedHeader(
            "a version 1 header must be ASCII".into(),
        ));
    }
    let dict = literal::parse_dict(text)?;
    let descr = match dict.get("descr") {
        Some(literal::Value::Str(s)) => s.as_str(),
        Some(_) => return Err(NpyError::UnsupportedDtype(excerpt(text))),
        None => return Err(NpyError::MalformedHeader("no 'descr' key".into())),
    };
    let dtype = DType::parse(descr)?;
    let fortran_order = match dict.get("fortran_order") {
        Some(literal::Value::Bool(b)) => *b,
        _ => {
            return Err(NpyError::MalformedHeader(
                "no boolean 'fortran_order' key".into(),
            ));
        }
    };
    let shape = match dict.get("shape") {
        Some(literal::Value::Tuple(t)) => t.clone(),
        _ => return Err(NpyError::MalformedHeader("no tuple 'shape' key".into())),
    };
    // One dimension (or none) is the same in either order.
    if fortran_order && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(NpyError::FortranOrder);
    }
    let header = NpyHeader {
        dtype,
        shape,
        fortran_order,
        data_offset: end,
    };
    header.data_bytes()?;
    Ok(header)
}

fn excerpt(text: &str) -> String {
    let t: String = text.trim().chars().take(60).collect();
    if text.trim().chars().count() > 60 {
        format!("{t}...")
    } else {
        t
    }
}

/// Checks that a header describes `T` in a file of `file_len` bytes.
///
/// # Errors
/// [`NpyError::DtypeMismatch`] or [`NpyError::Truncated`].
pub fn validate_for<T: NpyElement>(header: &NpyHeader, file_len: u64) -> Result<(), NpyError> {
    if header.dtype != T::DTYPE {
        return Err(NpyError::DtypeMismatch {
            file: header.dtype,
            requested: T::DTYPE,
        });
    }
    let needed = header.data_offset as u64 + header.data_bytes()? as u64;
    if file_len < needed {
        return Err(NpyError::Truncated {
            needed,
            have: file_len,
        });
    }
    Ok(())
}

/// The header `np.save` writes for a C-order array of this dtype and shape: version
/// 1.0 (2.0 if the dict needs more than 65535 bytes), padded with spaces and a
/// newline so the data starts at a multiple of 64.
///
/// # Examples
///
/// ```
/// let h = shmpool::npy::header_bytes(shmpool::npy::DType::F64, &[3]);
/// assert_eq!(h.len(), 128); // the dict, padded so the data starts at a multiple of 64
/// assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
/// assert!(String::from_utf8_lossy(&h).contains("'shape': (3,)"));
/// ```
pub fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let shape_text = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.descr()
    );
    let build = |major: u8, len_bytes: usize| {
        let prefix = MAGIC.len() + 2 + len_bytes;
        let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
        let header_len = total - prefix;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[major, 0]);
        if len_bytes == 2 {
            out.extend_from_slice(&(header_len as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header_len as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.resize(total - 1, b' ');
        out.push(b'\n');
        out
    };
    let v1 = build(1, 2);
    if v1.len() - 10 <= u16::MAX as usize {
        v1
    } else {
        build(2, 4)
    }
}

/// A reader for the small subset of Python literals `.npy` headers use.
mod literal {
    use std::collections::HashMap;

    use super::NpyError;

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Value {
        Str(String),
        Bool(bool),
        Tuple(Vec<usize>),
        /// Anything else (a list, a nested dict): kept only to report it.
        Other,
    }

    struct Cursor<'a> {
        s: &'a [u8],
        i: usize,
    }

    fn bad(what: &str) -> NpyError {
        NpyError::MalformedHeader(what.to_string())
    }

    impl Cursor<'_> {
        fn skip_ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        fn peek(&mut self) -> Option<u8> {
            self.skip_ws();
            self.s.get(self.i).copied()
        }

        fn expect(&mut self, c: u8) -> Result<(), NpyError> {
            if self.peek() == Some(c) {
                self.i += 1;
                Ok(())
            } else {
                Err(bad(&format!("expected '{}'", c as char)))
            }
        }

        fn string(&mut self) -> Result<String, NpyError> {
            let quote = self
                .peek()
                .filter(|q| *q == b'\'' || *q == b'"')
                .ok_or_else(|| bad("expected a string"))?;
            self.i += 1;
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != quote {
                if self.s[self.i] == b'\\' {
                    return Err(bad("escapes in strings are not supported"));
                }
                self.i += 1;
            }
            if self.i >= self.s.len() {
                return Err(bad("unterminated string"));
            }
            let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| bad("bad text"))?;
            self.i += 1;
            Ok(text.to_string())
        }

        fn word(&mut self) -> &[u8] {
            self.skip_ws();
            let start = self.i;
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
            {
                self.i += 1;
            }
            &self.s[start..self.i]
        }

        fn tuple(&mut self) -> Result<Vec<usize>, NpyError> {
            self.expect(b'(')?;
            let mut dims = Vec::new();
            loop {
                if self.peek() == Some(b')') {
                    self.i += 1;
                    return Ok(dims);
                }
                let w = self.word();
                let w = std::str::from_utf8(w).map_err(|_| bad("bad dimension"))?;
                // numpy may write Python 2 longs: "3L".
                let w = w.strip_suffix('L').unwrap_or(w);
                dims.push(
                    w.parse()
                        .map_err(|_| bad(&format!("bad dimension {w:?}")))?,
                );
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b')') => {}
                    _ => return Err(bad("expected ',' or ')' in the shape")),
                }
            }
        }

        /// Skips a bracketed value it does not interpret (a structured descr).
        fn skip_nested(&mut self) -> Result<(), NpyError> {
            let mut depth = 0usize;
            loop {
                let c = self.peek().ok_or_else(|| bad("unterminated value"))?;
                match c {
                    b'[' | b'(' | b'{' => depth += 1,
                    b']' | b')' | b'}' => {
                        depth = depth
                            .checked_sub(1)
                            .ok_or_else(|| bad("unbalanced brackets"))?;
                        if depth == 0 {
                            self.i += 1;
                            return Ok(());
                        }
                    }
                    b'\'' | b'"' => {
                        self.string()?;
                        continue;
                    }
                    _ => {}
                }
                self.i += 1;
            }
        }

        fn value(&mut self) -> Result<Value, NpyError> {
            match self.peek() {
                Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
                Some(b'(') => {
                    let save = self.i;
                    match self.tuple() {
                        Ok(t) => Ok(Value::Tuple(t)),
                        Err(_) => {
                            self.i = save;
                            self.skip_nested()?;
                            Ok(Value::Other)
                        }
                    }
                }
                Some(b'[' | b'{') => {
                    self.skip_nested()?;
                    Ok(Value::Other)
                }
                _ => match self.word() {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    _ => Err(bad("expected a value")),
                },
            }
        }
    }

    pub(super) fn parse_dict(text: &str) -> Result<HashMap<String, Value>, NpyError> {
        let mut c = Cursor {
            s: text.as_bytes(),
            i: 0,
        };
        c.expect(b'{')?;
        let mut out = HashMap::new();
        loop {
            if c.peek() == Some(b'}') {
                c.i += 1;
                break;
            }
            let key = c.string()?;
            c.expect(b':')?;
            let value = c.value()?;
            out.insert(key, value);
            match c.peek() {
                Some(b',') => c.i += 1,
                Some(b'}') => {}
                _ => return Err(bad("expected ',' or '}' after a value")),
            }
        }
        if c.s[c.i..].iter().any(|b| !b.is_ascii_whitespace()) {
            return Err(bad("text after the closing brace"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_dict(dict: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out
    }

    #[test]
    fn round_trips_many_shapes_and_dtypes() {
        for dtype in [
            DType::I8,
            DType::I16,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::U16,
            DType::U32,
            DType::U64,
            DType::F32,
            DType::F64,
        ] {
            for shape in [
                vec![],
                vec![0],
                vec![1],
                vec![5],
                vec![3, 4],
                vec![2, 3, 4, 5],
                vec![100_000, 7],
            ] {
                let bytes = header_bytes(dtype, &shape);
                assert_eq!(bytes.len() % 64, 0);
                let h = parse_header(&bytes).unwrap();
                assert_eq!(
                    (h.dtype, &h.shape, h.fortran_order, h.data_offset),
                    (dtype, &shape, false, bytes.len())
                );
            }
        }
    }

    #[test]
    fn tolerates_numpy_variations() {
        let h = parse_header(&with_dict(
            "{'shape': (3L, 4), \"fortran_order\": False,'descr':'=f8'}\n",
        ))
        .unwrap();
        assert_eq!((h.dtype, h.shape), (DType::F64, vec![3, 4]));
        let h = parse_header(&with_dict(
            "{'descr': '|u1', 'fortran_order': True, 'shape': (7,), }",
        ))
        .unwrap();
        assert!(h.fortran_order);
        assert_eq!(h.len(), 7);
    }

    #[test]
    fn every_error_has_its_variant() {
        assert_eq!(parse_header(b"PK\x03\x04 zip"), Err(NpyError::BadMagic));
        assert!(matches!(
            parse_header(b"\x93NUMPY\x09\x00"),
            Err(NpyError::UnsupportedVersion { major: 9, .. })
        ));
        let f = with_dict("{'descr': '<f8', 'fortran_order': True, 'shape': (3, 4), }");
        assert_eq!(parse_header(&f), Err(NpyError::FortranOrder));
        let c = with_dict("{'descr': '<c16', 'fortran_order': False, 'shape': (3,), }");
        assert_eq!(
            parse_header(&c),
            Err(NpyError::UnsupportedDtype("<c16".into()))
        );
        let s = with_dict(
            "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (3,), }",
        );
        assert!(matches!(
            parse_header(&s),
            Err(NpyError::UnsupportedDtype(_))
        ));
        let o = with_dict("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }");
        assert!(matches!(
            parse_header(&o),
            Err(NpyError::UnsupportedDtype(_))
        ));
        let b = with_dict("{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }");
        assert_eq!(parse_header(&b), Err(NpyError::BigEndian(">f8".into())));
        let m = with_dict("{'descr': '<f8', 'shape': (3,) }");
        assert!(matches!(
            parse_header(&m),
            Err(NpyError::MalformedHeader(_))
        ));
        let huge = with_dict(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999), }",
        );
        assert!(matches!(parse_header(&huge), Err(NpyError::TooLarge(_))));
        let h = parse_header(&header_bytes(DType::F32, &[4])).unwrap();
        assert_eq!(h.data_offset, 128);
        assert!(matches!(
            validate_for::<f64>(&h, 1000),
            Err(NpyError::DtypeMismatch { .. })
        ));
        assert!(matches!(
            validate_for::<f32>(&h, 140),
            Err(NpyError::Truncated {
                needed: 144,
                have: 140
            })
        ));
        assert!(validate_for::<f32>(&h, 144).is_ok());
    }

    #[test]
    fn every_truncation_of_a_header_is_an_error_not_a_panic() {
        let bytes = header_bytes(DType::I64, &[10, 20]);
        for n in 0..bytes.len() {
            assert!(parse_header(&bytes[..n]).is_err(), "length {n}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                MAGIC.to_vec()
            } else {
                Vec::new()
            };
            bytes.extend_from_slice(&[1, 0, 60, 0]);
            for _ in 0..(seed % 70) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b"{}()[]':, TrueFalse<f8shape012345descr\n\"L";
                bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse_header(&bytes);
        }
    }
}
