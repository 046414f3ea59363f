//! `.npy` files mapped zero-copy.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use bytemuck::Pod;

use super::SharedArray;
use crate::error::{Error, Result};
use crate::npy::{self, NpyElement, NpyError};
use crate::shm::Segment;

impl<T: NpyElement + Pod> SharedArray<T> {
    /// Maps a `.npy` file `MAP_SHARED`, read-write (numpy's `np.load(path,
    /// mmap_mode="r+")`): no data is read or copied up front, a map over it reads
    /// straight from the page cache, and writes go to the file. The array has the
    /// file's shape.
    ///
    /// # Safety
    /// The array's memory is the file's: while this array (or a pool call on it)
    /// is alive, no other process or mapping may truncate the file, and none may write
    /// it while you hold slices of the array. This is the contract of every
    /// file-backed mapping (memmap2's `MmapMut::map_mut` is `unsafe` for the same
    /// reason).
    ///
    /// # Errors
    /// [`Error::Npy`] for a file shmpool cannot map: a bad magic number, a truncated
    /// header or data, Fortran order, an unsupported or big-endian dtype, a dtype
    /// other than `T`'s, or data not aligned for `T`. [`Error::Io`] when the file cannot be opened read-write.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("shmpool-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("x.npy");
    /// use shmpool::{Pool, SharedArray};
    ///
    /// // SAFETY: nobody else touches this file while we use it.
    /// let mut x = unsafe { SharedArray::<f64>::create_npy(&path, &[2, 3])? };
    /// x.copy_from_slice(&[1.0, 4.0, 9.0, 16.0, 25.0, 36.0]);
    /// drop(x);
    ///
    /// let pool = Pool::new(2)?;
    /// // SAFETY: as above.
    /// let mut y = unsafe { SharedArray::<f64>::open_npy(&path)? };
    /// assert_eq!(y.shape(), &[2, 3]);
    /// pool.for_each_mut(&mut y, |v: &mut f64| *v = v.sqrt())?; // written to the file
    /// assert_eq!(&y[..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let npy_err = |problem: NpyError| Error::Npy {
            path: path.to_path_buf(),
            problem,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(Error::io("opening a .npy file"))?;
        let file_len = file
            .metadata()
            .map_err(Error::io("reading a .npy file's size"))?
            .len();
        // The header is small: read up to 4 KiB, more only if it says it is longer.
        let mut head = vec![0u8; 4096.min(file_len as usize)];
        file.read_exact(&mut head)
            .map_err(Error::io("reading a .npy header"))?;
        let header = match npy::parse_header(&head) {
            Err(NpyError::Truncated { needed, .. })
                if needed <= file_len && needed > head.len() as u64 =>
            {
                let mut longer = vec![0u8; needed as usize];
                longer[..head.len()].copy_from_slice(&head);
                file.read_exact(&mut longer[head.len()..])
                    .map_err(Error::io("reading a .npy header"))?;
                npy::parse_header(&longer)
            }
            other => other,
        }
        .map_err(npy_err)?;
        npy::validate_for::<T>(&header, file_len).map_err(npy_err)?;
        let data_bytes = header.data_bytes().map_err(npy_err)?;
        let len = header.len().map_err(npy_err)?;
        // SAFETY: Delegated to the caller (see the Safety section). `validate_for`
        // checked the dtype, C order, the length of the file, and that the data
        // offset is aligned for `T`, so the mapped elements form a valid `[T]`.
        let segment = unsafe { map_file(file, header.data_offset, data_bytes) }?;
        Ok(Self::from_segment(segment, len, header.shape))
    }

    /// Creates (or truncates) a `.npy` file for an array of `shape`, filled with
    /// zeros, and maps it `MAP_SHARED`: results written into it land on disk, and
    /// numpy reads the file with `np.load`.
    ///
    /// # Safety
    /// As for [`SharedArray::open_npy`]: no other process may truncate the file while
    /// the array lives, or write it while you hold slices of it.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created or sized;
    /// [`Error::Npy`] with [`NpyError::ShapeOverflow`] for an impossible shape.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("shmpool-doc-create-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("squares.npy");
    /// use shmpool::{Pool, SharedArray, npy};
    ///
    /// let pool = Pool::new(2)?;
    /// let xs = SharedArray::try_from_iter(0..4u32)?;
    /// // SAFETY: nobody else touches this file while we use it.
    /// let mut ys = unsafe { SharedArray::<u32>::create_npy(&path, &[4])? };
    /// pool.map_into(&xs, &mut ys, |v: u32| v * v)?; // the workers write the file
    /// drop(ys);
    ///
    /// let file = std::fs::read(&path)?;
    /// assert_eq!(npy::parse_header(&file)?.shape, [4]);
    /// assert_eq!(file[file.len() - 4..], 9u32.to_le_bytes());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn create_npy(path: impl AsRef<Path>, shape: &[usize]) -> Result<Self> {
        let path = path.as_ref();
        let header = npy::header_bytes(T::DTYPE, shape);
        let parsed = npy::parse_header(&header).map_err(|problem| Error::Npy {
            path: path.to_path_buf(),
            problem,
        })?;
        let npy_err = |problem| Error::Npy {
            path: path.to_path_buf(),
            problem,
        };
        let data_bytes = parsed.data_bytes().map_err(npy_err)?;
        let len = parsed.len().map_err(npy_err)?;
        // Past `ulimit -f`, set_len would raise SIGXFSZ: refuse first, before the file exists.
        crate::sys::check_file_size_limit((header.len() + data_bytes) as u64)
            .map_err(Error::io("sizing a .npy file"))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(Error::io("creating a .npy file"))?;
        file.write_all(&header)
            .map_err(Error::io("writing a .npy header"))?;
        file.set_len((header.len() + data_bytes) as u64)
            .map_err(Error::io("sizing a .npy file"))?;
        // SAFETY: Delegated to the caller (see the Safety section).
        let segment = unsafe { map_file(file, header.len(), data_bytes) }?;
        Ok(Self::from_segment(segment, len, parsed.shape))
    }

    /// Writes the array, with its shape, to a new `.npy` file (a copy; the array keeps
    /// its own memory).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("shmpool-doc-save-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("a.npy");
    /// use shmpool::SharedArray;
    ///
    /// let a = SharedArray::try_from_iter(0..6i64)?.reshape(&[2, 3])?;
    /// a.save_npy(&path)?; // numpy reads it with np.load
    /// // SAFETY: nobody else touches this file while we use it.
    /// let b = unsafe { SharedArray::<i64>::open_npy(&path)? };
    /// assert_eq!(b.shape(), &[2, 3]);
    /// assert_eq!(b, a);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        let header = npy::header_bytes(T::DTYPE, self.shape());
        // Past `ulimit -f`, the write would raise SIGXFSZ: refuse first.
        crate::sys::check_file_size_limit((header.len() + size_of_val(self.as_slice())) as u64)
            .map_err(Error::io("writing a .npy file"))?;
        let mut file = File::create(path).map_err(Error::io("creating a .npy file"))?;
        file.write_all(&header)
            .map_err(Error::io("writing a .npy file"))?;
        file.write_all(bytemuck::cast_slice(self.as_slice()))
            .map_err(Error::io("writing a .npy file"))?;
        Ok(())
    }
}

/// Maps the whole file read-write and shared, kept out of forked children.
///
/// # Safety
/// See [`SharedArray::open_npy`].
unsafe fn map_file(file: File, data_off: usize, data_bytes: usize) -> Result<Segment> {
    // SAFETY: Delegated to the caller: the file is not truncated or written by
    // others while the mapping lives.
    let map = unsafe { memmap2::MmapOptions::new().map_mut(&file) }
        .map_err(Error::io("mapping a .npy file"))?;
    // Forked workers get the array through its descriptor, like every array; the
    // mapping itself must not be inherited (DESIGN: no process keeps another's memory).
    map.advise(memmap2::Advice::DontFork)
        .map_err(Error::io("mapping a .npy file"))?;
    let fd: OwnedFd = file.into();
    Ok(Segment::from_file(fd, map, data_off, data_bytes))
}
