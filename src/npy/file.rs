//! Writing whole `.npy` files from plain slices (numpy's `np.save`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use bytemuck::Pod;

use super::element::NpyElement;
use super::header::header_bytes;
use crate::error::{Error, Result};

/// Writes `values` to a new `.npy` file at `path` (created, or truncated), as a 1-D
/// array: numpy's `np.save(path, values)`, with no
/// [`SharedArray`](crate::SharedArray) to build first. numpy reads it with
/// `np.load`, shmpool with [`SharedArray::load_npy`](crate::SharedArray::load_npy)
/// or the `open_npy` forms.
///
/// # Errors
/// [`Error::File`], naming the path, when the file cannot be created or written
/// (including past the process's file-size limit, `ulimit -f`, which is refused
/// before anything is written).
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("shmpool-doc-npy-save-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("v.npy");
/// let v: Vec<f64> = (0..5).map(|i| i as f64 * 0.5).collect();
/// shmpool::npy::save(&path, &v)?;
/// let back = shmpool::SharedArray::<f64>::load_npy(&path)?;
/// assert_eq!((back.shape(), &back[..]), (&[5][..], &v[..]));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save<T: NpyElement + Pod>(path: impl AsRef<Path>, values: &[T]) -> Result<()> {
    save_shaped(path, values, &[values.len()])
}

/// Writes `values`, the elements of an array of `shape` in C order, to a new `.npy`
/// file at `path`: numpy's `np.save(path, values.reshape(shape))`.
///
/// # Errors
/// [`Error::ShapeMismatch`] unless `shape` holds exactly `values.len()` elements
/// (nothing is written then); otherwise as for [`save`].
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("shmpool-doc-npy-shaped-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("m.npy");
/// shmpool::npy::save_shaped(&path, &[1u8, 2, 3, 4, 5, 6], &[3, 2])?;
/// assert_eq!(shmpool::SharedArray::<u8>::load_npy(&path)?.shape(), &[3, 2]);
/// assert!(shmpool::npy::save_shaped(&path, &[1u8, 2, 3], &[2, 2]).is_err());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save_shaped<T: NpyElement + Pod>(
    path: impl AsRef<Path>,
    values: &[T],
    shape: &[usize],
) -> Result<()> {
    let path = path.as_ref();
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(values.len()) {
        return Err(Error::ShapeMismatch {
            len: values.len(),
            shape: shape.to_vec(),
        });
    }
    let header = header_bytes(T::DTYPE, shape);
    let data: &[u8] = bytemuck::cast_slice(values);
    let write_err = Error::file("writing the .npy file", path);
    // Past `ulimit -f`, the write would raise SIGXFSZ: refuse first.
    if let Err(e) = crate::sys::check_file_size_limit((header.len() + data.len()) as u64) {
        return Err(write_err(e));
    }
    let file = File::create(path).map_err(Error::file("creating the .npy file", path))?;
    let mut out = BufWriter::new(file);
    out.write_all(&header)
        .and_then(|()| out.write_all(data))
        .and_then(|()| out.flush())
        .map_err(write_err)
}
