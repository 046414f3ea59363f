//! A `.npy` header: what it says ([`NpyHeader`]), how to write one
//! ([`header_bytes`]), and whether its array can be read as a given type
//! ([`validate_for`]). Parsing is in `src/npy/parse.rs`.

use super::element::NpyElement;
#[allow(unused_imports)] // named by the docs' links
use crate::dtype::DType;
use crate::error::npy_errors::NpyError;

/// The magic string every `.npy` file starts with.
pub(super) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// numpy aligns the data of the files it writes to this many bytes (`ARRAY_ALIGN`).
pub(super) const ALIGN: usize = 64;

/// Spaces numpy leaves after the dict for the first axis to grow in place: it pads to
/// this many characters minus the digits of `shape[0]` (`GROWTH_AXIS_MAX_DIGITS`).
pub(super) const GROWTH_DIGITS: usize = 21;

/// What a `.npy` header says about the array that follows it.
///
/// [`parse_header`](super::parse_header) returns one; its [`len`](Self::len) and
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
    /// most any Rust slice can hold (impossible for a header from [`parse_header`](super::parse_header)).
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
    /// header from [`parse_header`](super::parse_header)).
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
pub(super) fn checked_len(dtype: DType, shape: &[usize]) -> Option<usize> {
    let len = if shape.contains(&0) {
        0
    } else {
        shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?
    };
    let bytes = len.checked_mul(dtype.size())?;
    (bytes <= isize::MAX as usize).then_some(len)
}

/// The shape as Python writes a tuple: `()`, `(5,)`, `(3, 4)`.
pub(super) fn shape_repr(shape: &[usize]) -> String {
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
