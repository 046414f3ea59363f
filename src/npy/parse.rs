//! Parsing the header: the preamble, then the Python dict literal.

use super::header::{MAGIC, NpyHeader, checked_len};
use crate::dtype::DType;
use crate::error::npy_errors::NpyError;

/// The longest excerpt of header text an error quotes.
const EXCERPT: usize = 48;

/// Parses the header at the start of a `.npy` file.
///
/// `bytes` need only hold the header, not the data. It reads the magic string, the
/// version (1.0, 2.0 or 3.0), the header length, and the dict. The dict may have its
/// keys in any order, any whitespace between tokens, a trailing comma or none, single
/// or double quotes, and shapes written `()`, `(5,)` or `(3, 4)`, with or without
/// Python 2's `L` suffix.
///
/// The type string may start with `<` (little-endian), `|` (not applicable), `=`
/// (native) or nothing (also native), all of which mean little-endian on the
/// little-endian targets shmpool runs on; for one-byte types, `>` is accepted too.
///
/// The header's `fortran_order` is returned as is; [`validate_for`](super::validate_for)
/// decides whether the caller can read it. The header's own alignment is not checked
/// (numpy used 16 bytes before 1.14, 64 since).
///
/// # Errors
///
/// * [`NpyError::Truncated`] if `bytes` ends before the header does; it says how many
///   bytes are needed;
/// * [`NpyError::BadMagic`] if `bytes` does not start with `\x93NUMPY`;
/// * [`NpyError::UnsupportedVersion`] for a version other than 1.0, 2.0 and 3.0;
/// * [`NpyError::Malformed`] if the dict is not what numpy writes;
/// * [`NpyError::BigEndian`] for a big-endian type string such as `'>f8'`;
/// * [`NpyError::UnsupportedDType`] for any element type that is not a [`DType`];
/// * [`NpyError::ShapeOverflow`] if the array would hold more than `isize::MAX` bytes.
///
/// # Examples
///
/// ```
/// use shmpool::npy::{parse_header, DType, NpyError};
///
/// let mut file = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }".to_vec();
/// file.resize(127, b' ');
/// file.push(b'\n');
///
/// let h = parse_header(&file)?;
/// assert_eq!((h.dtype, h.shape.as_slice(), h.fortran_order, h.data_offset), (DType::F64, &[3, 4][..], false, 128));
///
/// // A short read: the error says how much to read.
/// assert_eq!(parse_header(&file[..64]), Err(NpyError::Truncated { needed: 128, have: 64 }));
/// # Ok::<(), NpyError>(())
/// ```
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, NpyError> {
    let have = bytes.len() as u64;
    let start = &bytes[..bytes.len().min(MAGIC.len())];
    if *start != MAGIC[..start.len()] {
        return Err(NpyError::BadMagic {
            found: start.to_vec(),
        });
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => return Err(NpyError::Truncated { needed: 10, have }),
    };
    let len_field = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let prefix = 8 + len_field;
    let Some(len_bytes) = bytes.get(8..prefix) else {
        return Err(NpyError::Truncated {
            needed: prefix as u64,
            have,
        });
    };
    let mut le = [0u8; 4];
    le[..len_field].copy_from_slice(len_bytes);
    let end = prefix as u64 + u64::from(u32::from_le_bytes(le));
    if end > have {
        return Err(NpyError::Truncated { needed: end, have });
    }
    // `end <= bytes.len()`, so it fits in usize.
    let data_offset = end as usize;
    let dict = parse_dict(&bytes[prefix..data_offset])?;

    let dtype = match dict.descr {
        Descr::Str(s) => dtype_from_descr(s)?,
        Descr::Other(raw) => {
            return Err(NpyError::UnsupportedDType {
                descr: excerpt(raw, 0, 2 * EXCERPT),
            });
        }
    };
    let shape = dict.shape;
    let overflow = || NpyError::ShapeOverflow {
        shape: excerpt(shape.text, 0, 2 * EXCERPT),
    };
    let dims = shape.dims.ok_or_else(overflow)?;
    checked_len(dtype, &dims).ok_or_else(overflow)?;
    Ok(NpyHeader {
        dtype,
        shape: dims,
        fortran_order: dict.fortran_order,
        data_offset,
    })
}

/// Reads a type string such as `<f8`.
fn dtype_from_descr(s: &[u8]) -> Result<DType, NpyError> {
    let (order, code) = match s {
        [o @ (b'<' | b'>' | b'=' | b'|'), code @ ..] => (Some(*o), code),
        _ => (None, s),
    };
    let dtype = match code {
        b"b1" => DType::Bool,
        b"i1" => DType::I8,
        b"i2" => DType::I16,
        b"i4" => DType::I32,
        b"i8" => DType::I64,
        b"u1" => DType::U8,
        b"u2" => DType::U16,
        b"u4" => DType::U32,
        b"u8" => DType::U64,
        b"f4" => DType::F32,
        b"f8" => DType::F64,
        _ => {
            return Err(NpyError::UnsupportedDType {
                descr: format!("'{}'", excerpt(s, 0, EXCERPT)),
            });
        }
    };
    let big = match order {
        Some(b'>') => true,
        Some(b'<') => false,
        // `=`, `|` and no prefix all mean native order to numpy.
        _ => cfg!(target_endian = "big"),
    };
    if big && dtype.size() > 1 {
        return Err(NpyError::BigEndian {
            descr: String::from_utf8_lossy(s).into_owned(),
        });
    }
    Ok(dtype)
}

/// The dict's values, before they are checked.
struct Dict<'a> {
    descr: Descr<'a>,
    fortran_order: bool,
    shape: Shape<'a>,
}

/// The `descr` value.
enum Descr<'a> {
    /// A string, the contents between the quotes.
    Str(&'a [u8]),
    /// A list (a structured type) or other literal, its text.
    Other(&'a [u8]),
}

/// The `shape` value.
struct Shape<'a> {
    /// The axis lengths, `None` if one does not fit in usize.
    dims: Option<Vec<usize>>,
    /// The tuple's text, for errors.
    text: &'a [u8],
}

/// Parses the header dict, `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`
/// followed by padding.
fn parse_dict(s: &[u8]) -> Result<Dict<'_>, NpyError> {
    let mut p = Parser { s, pos: 0 };
    p.skip_ws();
    p.expect(b'{', "the header is not a dict literal starting with '{'")?;
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key_at = p.pos;
        let key = p.string("expected a quoted key or '}'")?;
        p.skip_ws();
        p.expect(b':', "expected ':' after a key")?;
        p.skip_ws();
        let fresh = match key {
            b"descr" => descr.replace(p.descr()?).is_none(),
            b"fortran_order" => fortran_order.replace(p.boolean()?).is_none(),
            b"shape" => shape.replace(p.shape()?).is_none(),
            _ => return Err(p.error_at(key_at, "unknown key")),
        };
        if !fresh {
            return Err(p.error_at(key_at, "repeated key"));
        }
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        p.expect(b',', "expected ',' or '}' after a value")?;
    }
    p.skip_ws();
    if p.pos != s.len() {
        return Err(p.error("unexpected text after the dict"));
    }
    let missing = |key| p.error_at(0, key);
    Ok(Dict {
        descr: descr.ok_or_else(|| missing("the 'descr' key is missing"))?,
        fortran_order: fortran_order
            .ok_or_else(|| missing("the 'fortran_order' key is missing"))?,
        shape: shape.ok_or_else(|| missing("the 'shape' key is missing"))?,
    })
}

/// A cursor over the header text. It never indexes out of bounds, and it does not
/// recurse, so no input can make it panic or overflow the stack.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips Python whitespace.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        let next = self.peek() == Some(c);
        if next {
            self.pos += 1;
        }
        next
    }

    fn expect(&mut self, c: u8, reason: &'static str) -> Result<(), NpyError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn error(&self, reason: &'static str) -> NpyError {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, at: usize, reason: &'static str) -> NpyError {
        NpyError::Malformed {
            reason,
            excerpt: excerpt(self.s, at.saturating_sub(EXCERPT / 3), EXCERPT),
        }
    }

    /// A string literal, optionally `u`-prefixed; returns what is between the quotes.
    fn string(&mut self, reason: &'static str) -> Result<&'a [u8], NpyError> {
        if matches!(self.peek(), Some(b'u' | b'U'))
            && matches!(self.s.get(self.pos + 1), Some(b'\'' | b'"'))
        {
            self.pos += 1;
        }
        let Some(quote @ (b'\'' | b'"')) = self.peek() else {
            return Err(self.error(reason));
        };
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match self.s.get(i) {
                Some(&c) if c == quote => break,
                Some(b'\\') => i += 2,
                Some(b'\n') | None => return Err(self.error("unterminated string")),
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(&self.s[start..i])
    }

    /// The `descr` value: a string, or a list or other literal we only delimit.
    fn descr(&mut self) -> Result<Descr<'a>, NpyError> {
        if matches!(self.peek(), Some(b'\'' | b'"' | b'u' | b'U')) {
            return self.string("expected a type string").map(Descr::Str);
        }
        // Up to the ',' or '}' that ends the value, skipping nested brackets and
        // strings, which may contain either.
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated 'descr' value")),
                Some(b'\'' | b'"') => {
                    self.string("")?;
                    continue;
                }
                Some(b'(' | b'[' | b'{') => depth += 1,
                Some(b')' | b']' | b'}') if depth > 0 => depth -= 1,
                Some(b',' | b'}') if depth == 0 => break,
                Some(b')' | b']') => return Err(self.error("unbalanced brackets")),
                Some(_) => {}
            }
            self.pos += 1;
        }
        let text = self.s[start..self.pos].trim_ascii_end();
        if text.is_empty() {
            return Err(self.error("expected a value for 'descr'"));
        }
        Ok(Descr::Other(text))
    }

    /// `True` or `False`.
    fn boolean(&mut self) -> Result<bool, NpyError> {
        let rest = &self.s[self.pos..];
        for (word, value) in [(&b"True"[..], true), (b"False", false)] {
            if rest.starts_with(word) && !rest.get(word.len()).is_some_and(|c| is_ident(*c)) {
                self.pos += word.len();
                return Ok(value);
            }
        }
        Err(self.error("'fortran_order' must be True or False"))
    }

    /// A tuple of non-negative integers: `()`, `(5,)`, `(3, 4)`, `(3, 4,)`.
    fn shape(&mut self) -> Result<Shape<'a>, NpyError> {
        let start = self.pos;
        self.expect(b'(', "'shape' must be a tuple")?;
        let mut dims = Some(Vec::new());
        let mut count = 0usize;
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.eat(b')') {
                break;
            }
            let digits_at = self.pos;
            let mut dim = Some(0usize);
            while let Some(c @ b'0'..=b'9') = self.peek() {
                dim = dim
                    .and_then(|d| d.checked_mul(10))
                    .and_then(|d| d.checked_add(usize::from(c - b'0')));
                self.pos += 1;
            }
            if self.pos == digits_at {
                return Err(self.error("'shape' must hold non-negative integers"));
            }
            // Python 2 wrote long integers as `3L`.
            if !self.eat(b'L') {
                self.eat(b'l');
            }
            count += 1;
            dims = dims.zip(dim).map(|(mut dims, dim)| {
                dims.push(dim);
                dims
            });
            self.skip_ws();
            trailing_comma = self.eat(b',');
            if !trailing_comma {
                self.expect(b')', "expected ',' or ')' in 'shape'")?;
                break;
            }
        }
        if count == 1 && !trailing_comma {
            return Err(self.error("a 1-tuple needs a trailing comma, as in (5,)"));
        }
        Ok(Shape {
            dims,
            text: &self.s[start..self.pos],
        })
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Up to `max` bytes of `s` from `at`, with `...` if cut short. Printable ASCII is
/// kept as is, other bytes are escaped (`\n`, `\xff`).
fn excerpt(s: &[u8], at: usize, max: usize) -> String {
    let at = at.min(s.len());
    let end = s.len().min(at.saturating_add(max));
    let mut text = String::new();
    for &c in &s[at..end] {
        if c == b' ' || c.is_ascii_graphic() {
            text.push(char::from(c));
        } else {
            text.extend(c.escape_ascii().map(char::from));
        }
    }
    if end < s.len() {
        text.push_str("...");
    }
    text
}
