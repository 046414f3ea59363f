//! Why a `.npy` header or file cannot be read.

use crate::dtype::DType;

/// Why a `.npy` header cannot be parsed, or its array cannot be read as asked.
///
/// Each variant is one thing the caller can do something about: read more bytes
/// ([`Truncated`](Self::Truncated)), convert the array in numpy before saving it
/// ([`BigEndian`](Self::BigEndian), [`FortranOrder`](Self::FortranOrder),
/// [`UnsupportedDType`](Self::UnsupportedDType)), ask for the right element type
/// ([`DTypeMismatch`](Self::DTypeMismatch)), or give up on a damaged file.
///
/// # Examples
///
/// ```
/// use shmpool::npy::{parse_header, NpyError};
///
/// let err = parse_header(b"PK\x03\x04 a zip file").unwrap_err();
/// assert!(matches!(err, NpyError::BadMagic { .. }));
/// assert!(err.to_string().starts_with("not a .npy file"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// The bytes do not start with `\x93NUMPY`: this is not a `.npy` file. (A `.npz`
    /// file is a zip archive of `.npy` files and starts with `PK`.)
    #[error("not a .npy file: it starts with b\"{}\", not the magic b\"\\x93NUMPY\"", .found.escape_ascii())]
    BadMagic {
        /// The first bytes found, at most six.
        found: Vec<u8>,
    },

    /// The format version is not 1.0, 2.0 or 3.0, the only ones numpy defines.
    #[error("unsupported .npy format version {major}.{minor}; only 1.0, 2.0 and 3.0 exist")]
    UnsupportedVersion {
        /// The major version byte.
        major: u8,
        /// The minor version byte.
        minor: u8,
    },

    /// The bytes end before the header does. Call again with at least `needed` bytes.
    ///
    /// `needed` comes from the file itself, so a damaged file can claim up to 4 GiB:
    /// never read more than the file holds. Before the header length has been read,
    /// `needed` counts only the bytes up to it, and a later call may ask for more.
    #[error(".npy header is truncated: it needs {needed} bytes, only {have} are available")]
    Truncated {
        /// How many bytes from the start of the file are needed.
        needed: u64,
        /// How many bytes were given.
        have: u64,
    },

    /// The file ends before the array data does: it was cut short, or its header lies.
    #[error(
        ".npy data is truncated: the header describes a file of {needed} bytes, but it has {have}"
    )]
    DataTruncated {
        /// Header plus data length, in bytes.
        needed: u64,
        /// The file's length, in bytes.
        have: u64,
    },

    /// The header is not the dict numpy writes: not a dict literal, a key missing,
    /// repeated or unknown, or a value of the wrong kind.
    #[error("malformed .npy header: {reason}, at `{excerpt}`")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
        /// The header text around the problem, non-ASCII bytes escaped.
        excerpt: String,
    },

    /// The array is stored in Fortran (column-major) order, which is not the C order
    /// the caller can read as a flat slice.
    #[error(
        "Fortran-order array of shape {shape} is unsupported; save np.ascontiguousarray(a) instead"
    )]
    FortranOrder {
        /// The shape, as a Python tuple.
        shape: String,
    },

    /// The element type is not one of the [`DType`]s: complex, half-precision, string,
    /// datetime, object (`'|O'`), structured, or any other numpy type.
    #[error(
        "unsupported dtype {descr}: only bool, int8 to int64, uint8 to uint64, float32 and float64 are supported"
    )]
    UnsupportedDType {
        /// The header's `descr` value as written there, a Python literal: `'<c16'`,
        /// `'|O'`, or a list such as `[('a', '<i4'), ('b', '<f8')]` for a structured
        /// type (long ones cut short).
        descr: String,
    },

    /// The data is big-endian.
    #[error(
        "big-endian dtype '{descr}' is unsupported; save a.astype(a.dtype.newbyteorder('<')) instead"
    )]
    BigEndian {
        /// The type string, as `>f8`.
        descr: String,
    },

    /// The file holds another element type than the caller asked for.
    #[error("dtype mismatch: the file holds {found}, the caller asked for {requested}")]
    DTypeMismatch {
        /// The file's dtype.
        found: DType,
        /// The dtype of the requested element type.
        requested: DType,
    },

    /// The array's size in bytes does not fit in `isize::MAX`, the most a Rust slice
    /// can hold, or an axis length does not fit in `usize`.
    #[error("array of shape {shape} is too large for this machine's address space")]
    ShapeOverflow {
        /// The shape, as a Python tuple, as written in the header.
        shape: String,
    },

    /// The data does not start at a multiple of the element type's alignment, so it
    /// cannot be used in place as a slice of that type.
    #[error(
        ".npy data starts at byte {offset}, not a multiple of the element alignment {align}; save the file again with numpy"
    )]
    Misaligned {
        /// The data offset.
        offset: usize,
        /// The alignment the element type requires.
        align: usize,
    },
}
