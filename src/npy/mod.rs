//! The NumPy `.npy` file format: reading and writing its header.
//!
//! A `.npy` file is, in order:
//!
//! | bytes            | content                                                      |
//! |------------------|--------------------------------------------------------------|
//! | 6                | the magic string `\x93NUMPY`                                 |
//! | 2                | the format version: major, minor (1.0, 2.0 or 3.0)           |
//! | 2 (v1) or 4      | `HEADER_LEN`, little-endian: the length of the dict below    |
//! | `HEADER_LEN`     | a Python dict literal, padded with spaces, ending in `\n`    |
//! | the rest         | the array data, raw                                          |
//!
//! The dict reads `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`:
//! the element type as a numpy type string, the memory order, and the shape as a
//! tuple. Version 2.0 only widens `HEADER_LEN` to 32 bits; version 3.0 also allows
//! UTF-8 in the dict (numpy uses it for non-Latin-1 field names of structured types,
//! which this module does not support anyway).
//!
//! This module parses and writes that header, and [`save`] and [`save_shaped`] write
//! whole files from plain slices (`SharedArray::save_npy` from a shared array; the
//! `SharedArray::open_npy` family and `SharedArray::load_npy` read them). It accepts what numpy
//! and other writers produce (any key order, whitespace, trailing commas, `()` and
//! `(5,)` shapes, Python 2's `3L` integers, the 16-byte alignment of numpy before
//! 1.14) and refuses, with a typed [`NpyError`] and never a panic, anything it cannot
//! describe as a flat little-endian array of one of the [`DType`]s.
//!
//! # Boolean arrays
//!
//! numpy's `bool` (`'|b1'`) is one byte an element, and its Rust element type is
//! [`Bool`], not `bool`. A Rust `bool` may only be 0 or 1, while a mapped file or
//! shared segment can hold any byte, at any time (another writer, or a file from a
//! tool that stores 2 or 255 for true), so reading such memory as `bool` would be
//! undefined behaviour, and checking every byte when opening a file would cost a full
//! read and still not stop a later write. A [`Bool`] is valid for every byte, and its
//! meaning is numpy's: 0 is false, any other byte is true. Bytes are never rewritten
//! behind the caller's back; a `Bool` made from a `bool` is written as 0 or 1, as numpy
//! writes them.
//!
//! # Examples
//!
//! Write an array and read it back:
//!
//! ```
//! use shmpool::npy::{self, DType};
//!
//! let values = [1.5f64, -2.0, 3.25, 0.0, 8.0, 1e300];
//! let mut file = npy::header_bytes(DType::F64, &[2, 3]);
//! for v in values {
//!     file.extend_from_slice(&v.to_le_bytes());
//! }
//!
//! let header = npy::parse_header(&file)?;
//! assert_eq!(header.shape, [2, 3]);
//! npy::validate_for::<f64>(&header, file.len() as u64)?;
//! let data = &file[header.data_offset..header.data_offset + header.data_bytes()?];
//! let back: Vec<f64> = data
//!     .chunks_exact(8)
//!     .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
//!     .collect();
//! assert_eq!(back, values);
//! # Ok::<(), npy::NpyError>(())
//! ```

mod boolean;
mod error;
mod file;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

pub use boolean::Bool;
pub use error::NpyError;
pub use file::{save, save_shaped};
pub use parse::parse_header;

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// numpy aligns the data of the files it writes to this many bytes (`ARRAY_ALIGN`).
const ALIGN: usize = 64;

/// Spaces numpy leaves after the dict for the first axis to grow in place: it pads to
/// this many characters minus the digits of `shape[0]` (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_DIGITS: usize = 21;

/// The element types of the `.npy` files this module reads and writes.
///
/// These are numpy's boolean, integer and floating-point types of 1 to 8 bytes.
/// Other numpy types (half floats, complex, strings, dates, objects, structured
/// types) are refused with [`NpyError::UnsupportedDType`].
///
/// # Examples
///
/// ```
/// use shmpool::npy::{self, DType};
///
/// let header = npy::parse_header(&npy::header_bytes(DType::I32, &[4]))?;
/// assert_eq!(header.dtype, DType::I32);
/// assert_eq!(header.dtype.to_string(), "int32 ('<i4')");
/// # Ok::<(), npy::NpyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// numpy `bool`, `'|b1'`: one byte, 0 for false, nonzero (1 as numpy writes it)
    /// for true. Its Rust element type is [`Bool`].
    Bool,
    /// numpy `int8`, `'|i1'`.
    I8,
    /// numpy `int16`, `'<i2'`.
    I16,
    /// numpy `int32`, `'<i4'`.
    I32,
    /// numpy `int64`, `'<i8'`.
    I64,
    /// numpy `uint8`, `'|u1'`.
    U8,
    /// numpy `uint16`, `'<u2'`.
    U16,
    /// numpy `uint32`, `'<u4'`.
    U32,
    /// numpy `uint64`, `'<u8'`.
    U64,
    /// numpy `float32`, `'<f4'`.
    F32,
    /// numpy `float64`, `'<f8'`.
    F64,
}

impl DType {
    /// Every variant, for tests.
    #[cfg(test)]
    pub(crate) const ALL: [DType; 11] = [
        DType::Bool,
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
    ];

    /// The type string numpy writes for this type in a header (`dtype.str`):
    /// little-endian `<`, or `|` for one-byte types, where byte order is moot.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::DType;
    ///
    /// assert_eq!(DType::F64.descr(), "<f8");
    /// assert_eq!(DType::U8.descr(), "|u1");
    /// assert_eq!(DType::Bool.descr(), "|b1");
    /// ```
    pub const fn descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
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

    /// The size of one element, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::DType;
    ///
    /// assert_eq!(DType::F32.size(), 4);
    /// assert_eq!(DType::Bool.size(), 1);
    /// ```
    pub const fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// numpy's name for the type, as in `np.float64`.
    const fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

/// Shows numpy's name for the type and its type string, as in `float64 ('<f8')`.
impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ('{}')", self.name(), self.descr())
    }
}

/// A Rust type whose values can be read from and written to `.npy` data as they lie
/// in memory.
///
/// It is implemented for `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `u64`, `f32`
/// and `f64` on little-endian targets, and for [`Bool`], numpy's `bool`. It is not
/// implemented for Rust's `bool`: a `bool` must be 0 or 1, and nothing stops a
/// `'|b1'` file, or another process writing the mapped file, from holding a 2.
/// [`Bool`] is a byte for which every value is valid, nonzero meaning `true`.
///
/// # Safety
///
/// Implementing this trait promises that the bytes of a `.npy` file of type
/// [`Self::DTYPE`] may be reinterpreted as values of `Self`, which callers do to map
/// files without copying:
///
/// * `size_of::<Self>() == Self::DTYPE.size()`, and `Self` has no padding;
/// * the bytes of a `Self` value are exactly the little-endian encoding numpy uses for
///   that dtype (so implementations exist only on little-endian targets);
/// * every bit pattern of that size is a valid `Self`.
///
/// A `#[repr(transparent)]` newtype over one of the implementing primitives
/// satisfies all three.
///
/// # Examples
///
/// ```
/// use shmpool::npy::{DType, NpyElement};
///
/// fn dtype_of<T: NpyElement>() -> DType {
///     T::DTYPE
/// }
/// assert_eq!(dtype_of::<f32>(), DType::F32);
/// ```
pub unsafe trait NpyElement: Copy + 'static {
    /// The dtype of `.npy` data holding values of this type.
    const DTYPE: DType;
}

macro_rules! npy_element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        // SAFETY: a primitive integer or float of the dtype's size, little-endian on
        // this target, without padding, valid for every bit pattern.
        #[cfg(target_endian = "little")]
        unsafe impl NpyElement for $t {
            const DTYPE: DType = DType::$d;
        }
        #[cfg(target_endian = "little")]
        const _: () = assert!(size_of::<$t>() == DType::$d.size());
    )*};
}

npy_element!(
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    f32 => F32, f64 => F64,
);

/// What a `.npy` header says about the array that follows it.
///
/// [`parse_header`] returns one; its [`len`](Self::len) and
/// [`data_bytes`](Self::data_bytes) are then known not to overflow.
///
/// # Examples
///
/// ```
/// use shmpool::npy::{DType, NpyHeader};
///
/// let h = NpyHeader { dtype: DType::F32, shape: vec![3, 4], fortran_order: false, data_offset: 128 };
/// assert_eq!(h.len()?, 12);
/// assert_eq!(h.data_bytes()?, 48);
/// # Ok::<(), shmpool::npy::NpyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NpyHeader {
    /// The element type.
    pub dtype: DType,
    /// The length of each axis; empty for a 0-d array (a scalar of one element).
    pub shape: Vec<usize>,
    /// Whether the data is stored in Fortran (column-major) order rather than C
    /// (row-major) order.
    pub fortran_order: bool,
    /// Where the data starts: the length of the whole header, in bytes.
    pub data_offset: usize,
}

impl NpyHeader {
    /// The number of elements: the product of the shape, 1 for a scalar (`shape`
    /// `[]`), 0 if any axis is 0.
    ///
    /// # Errors
    ///
    /// [`NpyError::ShapeOverflow`] if the data would exceed `isize::MAX` bytes, the
    /// most any Rust slice can hold (impossible for a header from [`parse_header`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::{DType, NpyHeader};
    ///
    /// let scalar = NpyHeader { dtype: DType::I64, shape: vec![], fortran_order: false, data_offset: 128 };
    /// assert_eq!(scalar.len()?, 1);
    /// # Ok::<(), shmpool::npy::NpyError>(())
    /// ```
    pub fn len(&self) -> Result<usize, NpyError> {
        checked_len(self.dtype, &self.shape).ok_or_else(|| self.overflow())
    }

    /// Whether the array has no elements, that is, some axis is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::{DType, NpyHeader};
    ///
    /// let h = NpyHeader { dtype: DType::U8, shape: vec![4, 0], fortran_order: false, data_offset: 128 };
    /// assert!(h.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shape.contains(&0)
    }

    /// The size of the array data in bytes: [`len`](Self::len) times the element size.
    ///
    /// # Errors
    ///
    /// [`NpyError::ShapeOverflow`] if that exceeds `isize::MAX` (impossible for a
    /// header from [`parse_header`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::{DType, NpyError, NpyHeader};
    ///
    /// let h = NpyHeader { dtype: DType::F64, shape: vec![1 << 40, 1 << 30], fortran_order: false, data_offset: 128 };
    /// assert!(matches!(h.data_bytes(), Err(NpyError::ShapeOverflow { .. })));
    /// ```
    pub fn data_bytes(&self) -> Result<usize, NpyError> {
        self.len().map(|n| n * self.dtype.size())
    }

    fn overflow(&self) -> NpyError {
        NpyError::ShapeOverflow {
            shape: shape_repr(&self.shape),
        }
    }

    /// Whether Fortran order lays the data out as C order would: when at most one axis
    /// is longer than 1 (scalars, 1-D arrays, shapes like `(1, 5)`), or the array is
    /// empty, both orders visit the elements in the same sequence.
    fn layout_is_c(&self) -> bool {
        !self.fortran_order || self.is_empty() || self.shape.iter().filter(|&&d| d > 1).count() <= 1
    }
}

/// The number of elements of an array of `shape`, if its data fits in `isize::MAX`
/// bytes.
fn checked_len(dtype: DType, shape: &[usize]) -> Option<usize> {
    let len = if shape.contains(&0) {
        0
    } else {
        shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?
    };
    let bytes = len.checked_mul(dtype.size())?;
    (bytes <= isize::MAX as usize).then_some(len)
}

/// The shape as Python writes a tuple: `()`, `(5,)`, `(3, 4)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// The header `np.save` writes for a C-order array of `dtype` and `shape`: the bytes
/// that precede the data, byte for byte as numpy 2 writes them.
///
/// That is format version 1.0, or 2.0 if the dict is too long for 1.0's 16-bit length
/// (which takes over 21,000 axes of length 1). The dict is followed by the spaces numpy
/// reserves for the first axis to grow, then padded with spaces and a final `\n` so
/// that the data starts at a multiple of 64 bytes. The result's length is the data
/// offset; the data itself, `shape`'s product of little-endian elements in C order,
/// goes right after it.
///
/// # Panics
///
/// If the header would exceed 4 GiB, which only a shape of over a billion axes makes
/// possible. (numpy itself refuses arrays of more than 64 axes.)
///
/// # Examples
///
/// ```
/// use shmpool::npy::{header_bytes, parse_header, DType};
///
/// let header = header_bytes(DType::I32, &[5]);
/// assert!(header.starts_with(b"\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }"));
/// assert_eq!(header.len(), 128);
/// assert_eq!(header.last(), Some(&b'\n'));
/// assert_eq!(parse_header(&header)?.shape, [5]);
/// # Ok::<(), shmpool::npy::NpyError>(())
/// ```
pub fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_repr(shape)
    );
    if let Some(first) = shape.first() {
        // usize has at most 20 digits, so this leaves at least one space.
        let digits = first.to_string().len();
        dict.extend(std::iter::repeat_n(
            ' ',
            GROWTH_DIGITS.saturating_sub(digits),
        ));
    }
    // numpy's `_wrap_header`: pad with 1 to 64 spaces (64, not 0, when the dict
    // already ends on the boundary), then `\n`.
    for (major, len_field, max) in [(1u8, 2, u64::from(u16::MAX)), (2, 4, u64::from(u32::MAX))] {
        let unpadded = MAGIC.len() + 2 + len_field + dict.len() + 1;
        let pad = ALIGN - unpadded % ALIGN;
        let header_len = dict.len() + pad + 1;
        if header_len as u64 > max {
            continue;
        }
        let mut out = Vec::with_capacity(unpadded + pad);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[major, 0]);
        out.extend_from_slice(&(header_len as u32).to_le_bytes()[..len_field]);
        out.extend_from_slice(dict.as_bytes());
        out.resize(out.len() + pad, b' ');
        out.push(b'\n');
        return out;
    }
    panic!(
        "a .npy header for {} axes exceeds the format's 4 GiB limit",
        shape.len()
    )
}

/// Checks that the array a header describes can be read as a flat slice of `T` from a
/// file of `file_len` bytes.
///
/// That is: the dtype is `T`'s; the data is in C order (Fortran order is accepted when
/// it lays the data out identically, see below); the data offset suits `T`'s
/// alignment, so the data can be mapped in place; and the file holds all the data.
/// Bytes after the data are allowed, as numpy allows them.
///
/// `fortran_order: True` is accepted for scalars, 1-D arrays, empty arrays, and any
/// shape with at most one axis longer than 1, since for those the two orders store the
/// same bytes. numpy writes `False` for these, but other writers may not.
///
/// # Errors
///
/// * [`NpyError::DTypeMismatch`] if the file's dtype is not `T::DTYPE`;
/// * [`NpyError::FortranOrder`] for a Fortran-order array that C order would lay out
///   differently;
/// * [`NpyError::ShapeOverflow`] if the data size overflows;
/// * [`NpyError::Misaligned`] if `data_offset` is not a multiple of `T`'s alignment
///   (numpy aligns to 64 bytes, or 16 before numpy 1.14);
/// * [`NpyError::DataTruncated`] if `file_len` is less than `data_offset` plus the
///   data size.
///
/// # Examples
///
/// ```
/// use shmpool::npy::{header_bytes, parse_header, validate_for, DType, NpyError};
///
/// let mut file = header_bytes(DType::F32, &[2]);
/// file.extend_from_slice(&[0; 8]);
/// let h = parse_header(&file)?;
/// assert!(validate_for::<f32>(&h, file.len() as u64).is_ok());
/// assert!(matches!(validate_for::<i32>(&h, file.len() as u64), Err(NpyError::DTypeMismatch { .. })));
/// assert!(matches!(validate_for::<f32>(&h, file.len() as u64 - 1), Err(NpyError::DataTruncated { .. })));
/// # Ok::<(), NpyError>(())
/// ```
pub fn validate_for<T: NpyElement>(h: &NpyHeader, file_len: u64) -> Result<(), NpyError> {
    if h.dtype != T::DTYPE {
        return Err(NpyError::DTypeMismatch {
            found: h.dtype,
            requested: T::DTYPE,
        });
    }
    if !h.layout_is_c() {
        return Err(NpyError::FortranOrder {
            shape: shape_repr(&h.shape),
        });
    }
    let data = h.data_bytes()?;
    let align = align_of::<T>();
    if h.data_offset % align != 0 {
        return Err(NpyError::Misaligned {
            offset: h.data_offset,
            align,
        });
    }
    let needed = (h.data_offset as u64)
        .checked_add(data as u64)
        .ok_or_else(|| h.overflow())?;
    if file_len < needed {
        return Err(NpyError::DataTruncated {
            needed,
            have: file_len,
        });
    }
    Ok(())
}
