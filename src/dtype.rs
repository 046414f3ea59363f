//! [`DType`]: numpy's element types, as the `.npy` format names them. A crate-wide
//! vocabulary type: the `.npy` code (`src/npy/`) reads and writes it, and the errors
//! of a `.npy` file (`src/error/npy_errors.rs`) name it.

use std::fmt;

/// The element types of the `.npy` files this module reads and writes.
///
/// These are numpy's boolean, integer and floating-point types of 1 to 8 bytes.
/// Other numpy types (half floats, complex, strings, dates, objects, structured
/// types) are refused with
/// [`NpyError::UnsupportedDType`](crate::npy::NpyError::UnsupportedDType).
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
    /// for true. Its Rust element type is [`Bool`](crate::npy::Bool).
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
