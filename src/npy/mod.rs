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
mod element;
mod file;
mod header;
#[cfg(test)]
mod npy_tests;
mod parse;

pub use crate::dtype::DType;
pub use crate::error::npy_errors::NpyError;
pub use boolean::Bool;
pub use element::NpyElement;
pub use file::{save, save_shaped};
pub use header::{NpyHeader, header_bytes, validate_for};
pub use parse::parse_header;
