//! [`Bool`]: numpy's `bool` as a byte that shared memory may hold.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Not;

use super::element::NpyElement;
use crate::dtype::DType;

/// numpy's `bool` (`'|b1'`): one byte, read as `false` when it is 0 and `true`
/// otherwise.
///
/// `SharedArray<Bool>` is how shmpool holds boolean arrays: it maps `'|b1'` `.npy`
/// files, the `.npy` files it writes load in numpy as `dtype=bool`, and its named
/// segments record the dtype `'|b1'`.
///
/// Why not `bool`: a Rust `bool` must be 0 or 1, and anything else is undefined
/// behaviour. Shared memory and mapped files can hold any byte (a `'|b1'` file
/// written by another tool, or a byte another process writes while the array is
/// mapped), and checking every byte when a file is opened would neither be
/// zero-copy nor stop a later write. So `Bool` is a byte for which every value is
/// valid ([`bytemuck::Pod`]), and its truth is defined for every byte, as numpy
/// defines it: 0 is `false`, anything else (1, 2, 255) is `true`.
///
/// * [`Bool::get`] and `bool::from` read the truth; [`Bool::new`] and
///   `Bool::from(bool)` write 0 or 1, which is what numpy writes.
/// * Comparison and hashing go by truth: `Bool::from_byte(2) == Bool::TRUE`.
/// * [`Bool::to_byte`] reads the raw byte, for the rare caller who must tell a 2
///   from a 1; a byte is only ever changed by writing a new `Bool`.
/// * It serializes as a `bool`, so it can also be a task argument or result.
///
/// # Examples
///
/// ```
/// use shmpool::npy::Bool;
/// use shmpool::{Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let xs = SharedArray::try_from_iter([1.0f64, -2.0, 3.0, -4.0])?;
/// let positive = pool.bulk().map_array(&xs, |v: f64| Bool::from(v > 0.0))?;
/// assert_eq!(&positive[..], &[true, false, true, false]);
/// assert_eq!(positive.iter().filter(|b| b.get()).count(), 2);
///
/// // Any nonzero byte is true, as in numpy.
/// assert!(Bool::from_byte(2).get());
/// assert_eq!(Bool::from_byte(2), Bool::TRUE);
/// assert_eq!(Bool::from_byte(2).to_byte(), 2);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(transparent)]
pub struct Bool(u8);

// SAFETY: one byte, so no padding and no byte order; every byte is a valid `Bool`
// (its truth is defined for all 256 values); numpy's `'|b1'` stores one byte per
// element, 0 for false and nonzero (1 when numpy writes it) for true.
unsafe impl NpyElement for Bool {
    const DTYPE: DType = DType::Bool;
}

const _: () = assert!(size_of::<Bool>() == DType::Bool.size());

impl Bool {
    /// `false`, the byte 0.
    pub const FALSE: Bool = Bool(0);
    /// `true`, the byte 1.
    pub const TRUE: Bool = Bool(1);

    /// The `Bool` of `value`: byte 1 for `true`, 0 for `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::Bool;
    ///
    /// assert_eq!(Bool::new(true).to_byte(), 1);
    /// ```
    pub const fn new(value: bool) -> Bool {
        Bool(value as u8)
    }

    /// Whether the byte is nonzero.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::Bool;
    ///
    /// assert!(!Bool::FALSE.get());
    /// assert!(Bool::from_byte(255).get());
    /// ```
    pub const fn get(self) -> bool {
        self.0 != 0
    }

    /// The `Bool` held in `byte`, as found in a `'|b1'` array: any byte, nonzero
    /// meaning `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::Bool;
    ///
    /// assert_eq!(Bool::from_byte(0), Bool::FALSE);
    /// assert_eq!(Bool::from_byte(7), Bool::TRUE);
    /// ```
    pub const fn from_byte(byte: u8) -> Bool {
        Bool(byte)
    }

    /// The raw byte, unnormalized: 0 or 1 for a `Bool` made from a `bool`, any value
    /// for one read from elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::npy::Bool;
    ///
    /// assert_eq!(Bool::from_byte(2).to_byte(), 2);
    /// assert_eq!(Bool::TRUE.to_byte(), 1);
    /// ```
    pub const fn to_byte(self) -> u8 {
        self.0
    }
}

impl From<bool> for Bool {
    fn from(value: bool) -> Bool {
        Bool::new(value)
    }
}

impl From<Bool> for bool {
    fn from(value: Bool) -> bool {
        value.get()
    }
}

impl Not for Bool {
    type Output = Bool;

    fn not(self) -> Bool {
        Bool::new(!self.get())
    }
}

impl PartialEq for Bool {
    fn eq(&self, other: &Bool) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Bool {}

impl PartialEq<bool> for Bool {
    fn eq(&self, other: &bool) -> bool {
        self.get() == *other
    }
}

impl PartialEq<Bool> for bool {
    fn eq(&self, other: &Bool) -> bool {
        *self == other.get()
    }
}

impl Hash for Bool {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.get().hash(state);
    }
}

/// Shows `true` or `false`, as for a `bool`.
impl fmt::Debug for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

/// Shows `true` or `false`, as for a `bool`.
impl fmt::Display for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

impl serde::Serialize for Bool {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(self.get())
    }
}

impl<'de> serde::Deserialize<'de> for Bool {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Bool, D::Error> {
        bool::deserialize(deserializer).map(Bool::new)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::{header_bytes, parse_header, validate_for};
    use super::*;

    #[test]
    fn every_byte_has_numpys_truth() {
        for byte in 0..=u8::MAX {
            let b = Bool::from_byte(byte);
            assert_eq!(b.get(), byte != 0, "{byte}");
            assert_eq!(bool::from(b), byte != 0);
            assert_eq!(b.to_byte(), byte, "the byte is kept as it is");
            assert_eq!(b, Bool::new(byte != 0), "equality goes by truth");
            assert_eq!(b, byte != 0);
            assert_eq!(byte != 0, b);
            assert_eq!((!b).to_byte(), u8::from(byte == 0));
            assert_eq!(format!("{b} {b:?}"), format!("{0} {0:?}", byte != 0));
        }
        assert_eq!(Bool::default(), Bool::FALSE);
        assert_eq!((Bool::FALSE.to_byte(), Bool::TRUE.to_byte()), (0, 1));
        assert_eq!(Bool::from(true).to_byte(), 1);
        // Hash agrees with Eq: 1, 2 and 255 are one key.
        let set: HashSet<Bool> = [1, 2, 255, 0, 0].map(Bool::from_byte).into();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn slices_cast_to_bytes_and_back() {
        let bytes = [0u8, 1, 2, 255];
        let bools: &[Bool] = bytemuck::cast_slice(&bytes);
        assert_eq!(bools, [false, true, true, true]);
        let written = [true, false].map(Bool::from);
        assert_eq!(bytemuck::cast_slice::<Bool, u8>(&written), [1, 0]);
    }

    #[test]
    fn bool_headers_validate_for_bool_only() {
        let mut file = header_bytes(Bool::DTYPE, &[4]);
        assert!(file.starts_with(b"\x93NUMPY\x01\x00v\x00{'descr': '|b1',"));
        file.extend_from_slice(&[0, 1, 2, 255]);
        let h = parse_header(&file).unwrap();
        assert_eq!(h.dtype, DType::Bool);
        assert_eq!(validate_for::<Bool>(&h, file.len() as u64), Ok(()));
        assert_eq!(
            validate_for::<u8>(&h, file.len() as u64),
            Err(super::super::NpyError::DTypeMismatch {
                found: DType::Bool,
                requested: DType::U8,
            })
        );
        let u8s = parse_header(&header_bytes(DType::U8, &[4])).unwrap();
        assert!(validate_for::<Bool>(&u8s, u64::MAX).is_err());
    }

    #[test]
    fn serializes_as_a_bool() {
        let bytes = postcard::to_stdvec(&Bool::from_byte(7)).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&true).unwrap());
        let back: Bool = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_byte(), 1);
    }
}
