//! `.npy` files as shared arrays: mapped in place, read-write or read-only (numpy's
//! `np.load(path, mmap_mode="r+")` and `mmap_mode="r"`), read into shared memory
//! (`np.load(path)`, and what `mmap_mode="c"` is for), created, and saved.
//!
//! # Why opening a mapping is `unsafe`
//!
//! A mapped file is memory that other processes can change: anyone may write the
//! file, or truncate it, while the array lives. Rust promises that the elements
//! behind a `&[T]` do not change while it is borrowed, and that a `&mut [T]` is the
//! only way to them; a write by another process breaks that promise (undefined
//! behaviour), and a truncation turns the next access into a `SIGBUS`. Linux offers
//! no lock that stops either, so the promise that nobody does it is the caller's:
//! that is what the `unsafe` of [`SharedArray::open_npy`],
//! [`SharedArray::open_npy_read_only`] and [`SharedArray::create_npy`] stands for,
//! the same contract as memmap2's `Mmap::map`. Everything else about a mapped
//! array is safe, and [`SharedArray::load_npy`] and [`SharedArray::save_npy`], which
//! copy, are safe outright.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytemuck::Pod;

use super::read_only::ReadOnlyArray;
use super::shared_array::SharedArray;
use crate::error::{Error, Result};
use crate::npy::{self, NpyElement, NpyError, NpyHeader};
use crate::shm::Segment;

impl<T: NpyElement + Pod> SharedArray<T> {
    /// Maps a `.npy` file `MAP_SHARED`, read-write (numpy's `np.load(path,
    /// mmap_mode="r+")`): no data is read or copied up front, a map over it reads
    /// straight from the page cache, and writes go to the file. The array has the
    /// file's shape.
    ///
    /// For a file that must not change, or that you may not write, use
    /// [`SharedArray::open_npy_read_only`] (`mmap_mode="r"`); to change the data
    /// without changing the file, [`SharedArray::load_npy`] (what `mmap_mode="c"`
    /// is for).
    ///
    /// # Safety
    /// The array's memory is the file's: while this array (or a pool call on it)
    /// is alive, no other process or mapping may truncate the file, and none may write
    /// it while you hold slices of the array.
    ///
    /// Why the caller must promise it: Rust assumes the elements behind a `&[T]` do
    /// not change while it is borrowed, and that a `&mut [T]` is the only way to
    /// them. Another writer of the file breaks that (undefined behaviour), and a
    /// truncation turns the next access into a `SIGBUS`. Linux has no lock that
    /// stops either, so shmpool cannot check it: this is the contract of every
    /// file-backed mapping (memmap2's `MmapMut::map_mut` is `unsafe` for the same
    /// reason). Everything else about the array is safe, and
    /// [`SharedArray::load_npy`], which copies, needs no promise.
    ///
    /// # Errors
    /// [`Error::Npy`] for a file shmpool cannot map: a bad magic number, a truncated
    /// header or data, Fortran order, an unsupported or big-endian dtype, a dtype
    /// other than `T`'s, or data not aligned for `T`. [`Error::File`], naming the
    /// path, when the file cannot be opened read-write, read or mapped.
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
    /// pool.bulk().for_each_mut(&mut y, |v: &mut f64| *v = v.sqrt())?; // written to the file
    /// assert_eq!(&y[..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (file, header, len) = open_checked::<T>(path, Access::ReadWrite)?;
        // The caller promised (see the Safety section) that nobody truncates or
        // writes the file behind the array's back. `open_checked` checked the dtype,
        // C order, the length of the file, and that the data offset is aligned for
        // `T`, so the mapped elements form a valid `[T]`.
        let segment = map_file(file, path, &header, len, Access::ReadWrite)?;
        Ok(Self::from_segment(segment, len, header.shape))
    }

    /// Maps a `.npy` file `MAP_SHARED`, read-only (numpy's `np.load(path,
    /// mmap_mode="r")`): a file you may not write opens, and nothing can write it
    /// through the array. As with [`SharedArray::open_npy`], nothing is read up
    /// front and maps over it read straight from the page cache.
    ///
    /// The [`ReadOnlyArray`] is a `SharedArray` without `&mut` access: pass it (as
    /// `&a`) wherever a pool reads an array, as the input of a map or a reduction,
    /// and copy it with [`SharedArray::try_clone`] for an array you can write. The
    /// workers map the file read-only too.
    ///
    /// # Safety
    /// As for [`SharedArray::open_npy`]: while the array (or a pool call on it) is
    /// alive, no other process may truncate the file or write it.
    ///
    /// # Errors
    /// As for [`SharedArray::open_npy`], except that the file needs only to be
    /// readable.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("shmpool-doc-ro-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("x.npy");
    /// use std::os::unix::fs::PermissionsExt;
    /// use shmpool::{Pool, SharedArray};
    ///
    /// shmpool::npy::save(&path, &[1.0f64, 2.0, 3.0])?;
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
    ///
    /// let pool = Pool::new(2)?;
    /// // SAFETY: nobody writes or truncates this file while we use it.
    /// let x = unsafe { SharedArray::<f64>::open_npy_read_only(&path)? };
    /// let mut y = SharedArray::for_overwrite(x.len())?;
    /// pool.map_into(&x, &mut y, |v: f64| v * 10.0)?; // the workers read the file
    /// assert_eq!(&y[..], &[10.0, 20.0, 30.0]);
    /// assert_eq!(pool.bulk().sum(&x)?, 6.0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It cannot be written, in this process or as a pool's output:
    ///
    /// ```compile_fail
    /// # fn f(x: shmpool::ReadOnlyArray<f64>) {
    /// let mut x = x;
    /// x[0] = 1.0;
    /// # }
    /// ```
    pub unsafe fn open_npy_read_only(path: impl AsRef<Path>) -> Result<ReadOnlyArray<T>> {
        let path = path.as_ref();
        let (file, header, len) = open_checked::<T>(path, Access::ReadOnly)?;
        // As in `open_npy`: the caller's promise, and the contents checked. The
        // mapping is read-only, and `ReadOnlyArray` hands out no `&mut` to it, nor
        // the array as an output.
        let segment = map_file(file, path, &header, len, Access::ReadOnly)?;
        Ok(ReadOnlyArray::new(Self::from_segment(
            segment,
            len,
            header.shape,
        )))
    }

    /// Reads a `.npy` file into a new array in shared memory (numpy's
    /// `np.load(path)`), with the file's shape. The array is a copy: change it
    /// freely, the file stays as it was, and later changes to the file do not
    /// reach the array. The file needs only to be readable.
    ///
    /// This is what numpy's copy-on-write `mmap_mode="c"` is for. A copy-on-write
    /// mapping is private to the process that makes it, so the workers could not see
    /// its changes nor write its outputs; shmpool reads the data once instead, into
    /// memory every process shares. Being a copy, it needs no `unsafe`.
    ///
    /// # Errors
    /// [`Error::Npy`] as for [`SharedArray::open_npy`]; [`Error::File`], naming
    /// the path, when the file cannot be opened or read; as for
    /// [`SharedArray::zeroed`] when the shared memory cannot be had.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("shmpool-doc-load-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("x.npy");
    /// use shmpool::SharedArray;
    ///
    /// shmpool::npy::save_shaped(&path, &[1i32, 2, 3, 4, 5, 6], &[2, 3])?;
    /// let mut x = SharedArray::<i32>::load_npy(&path)?;
    /// assert_eq!(x.shape(), &[2, 3]);
    /// x[0] = 100; // the file still holds 1
    /// assert_eq!(SharedArray::<i32>::load_npy(&path)?[0], 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (file, header, len) = open_checked::<T>(path, Access::ReadOnly)?;
        let mut array = Self::for_overwrite(len)?;
        file.read_exact_at(
            bytemuck::cast_slice_mut(array.as_mut_slice()),
            header.data_offset as u64,
        )
        .map_err(Error::file("reading the .npy file", path))?;
        array.shape = header.shape.into();
        Ok(array)
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
    /// [`Error::File`], naming the path, when the file cannot be created or sized;
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
        let npy_err = |problem| Error::Npy {
            path: path.to_path_buf(),
            problem,
        };
        let header = npy::header_bytes(T::DTYPE, shape);
        let parsed = npy::parse_header(&header).map_err(npy_err)?;
        let len = parsed.len().map_err(npy_err)?;
        let data_bytes = parsed.data_bytes().map_err(npy_err)?;
        // Past `ulimit -f`, set_len would raise SIGXFSZ: refuse first, before the file exists.
        crate::sys::check_file_size_limit((header.len() + data_bytes) as u64)
            .map_err(Error::file("sizing the .npy file", path))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(Error::file("creating the .npy file", path))?;
        file.write_all(&header)
            .map_err(Error::file("writing the .npy file", path))?;
        file.set_len((header.len() + data_bytes) as u64)
            .map_err(Error::file("sizing the .npy file", path))?;
        // The caller's promise (see the Safety section); the file holds the header
        // and `len` zeroed elements after it, at an offset numpy's 64-byte
        // alignment makes right for `T`.
        let segment = map_file(file, path, &parsed, len, Access::ReadWrite)?;
        Ok(Self::from_segment(segment, len, parsed.shape))
    }

    /// Writes the array, with its shape, to a new `.npy` file (a copy; the array keeps
    /// its own memory). [`npy::save`](crate::npy::save) saves a plain slice.
    ///
    /// # Errors
    /// [`Error::File`], naming the path, when the file cannot be written.
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
    /// let b = SharedArray::<i64>::load_npy(&path)?;
    /// assert_eq!(b.shape(), &[2, 3]);
    /// assert_eq!(b, a);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        npy::save_shaped(path, self.as_slice(), self.shape())
    }
}

/// How a `.npy` file is opened and mapped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

/// Opens `path`, reads its header and checks that its data is a C-order array of
/// `T` the file holds whole, at an offset aligned for `T`; returns the file, the
/// header and the number of elements.
fn open_checked<T: NpyElement>(path: &Path, access: Access) -> Result<(File, NpyHeader, usize)> {
    let npy_err = |problem: NpyError| Error::Npy {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(access == Access::ReadWrite)
        .open(path)
        .map_err(Error::file("opening the .npy file", path))?;
    let file_len = file
        .metadata()
        .map_err(Error::file("reading the size of the .npy file", path))?
        .len();
    // The header is small: read up to 4 KiB, more only if it says it is longer.
    let mut head = vec![0u8; 4096.min(file_len as usize)];
    file.read_exact(&mut head)
        .map_err(Error::file("reading the header of the .npy file", path))?;
    let header = match npy::parse_header(&head) {
        Err(NpyError::Truncated { needed, .. })
            if needed <= file_len && needed > head.len() as u64 =>
        {
            let mut longer = vec![0u8; needed as usize];
            longer[..head.len()].copy_from_slice(&head);
            file.read_exact(&mut longer[head.len()..])
                .map_err(Error::file("reading the header of the .npy file", path))?;
            npy::parse_header(&longer)
        }
        other => other,
    }
    .map_err(npy_err)?;
    npy::validate_for::<T>(&header, file_len).map_err(npy_err)?;
    let len = header.len().map_err(npy_err)?;
    Ok((file, header, len))
}

/// Maps the whole file shared, as `access` says, kept out of forked children, as a
/// segment of `len` elements after the header. The mapping is raw: the `&[T]` an
/// array makes of it are sound only under [`SharedArray::open_npy`]'s contract,
/// which the caller of a public open took on.
fn map_file(
    file: File,
    path: &Path,
    header: &NpyHeader,
    len: usize,
    access: Access,
) -> Result<Segment> {
    let options = memmap2::MmapOptions::new();
    let map = match access {
        Access::ReadOnly => options.map_raw_read_only(&file),
        Access::ReadWrite => options.map_raw(&file),
    }
    .map_err(Error::file("mapping the .npy file", path))?;
    // Forked workers get the array through its descriptor, like every array; the
    // mapping itself must not be inherited (DESIGN: no process keeps another's memory).
    map.advise(memmap2::Advice::DontFork)
        .map_err(Error::file("mapping the .npy file", path))?;
    let data_bytes = len * header.dtype.size();
    let fd: OwnedFd = file.into();
    Ok(Segment::from_file(fd, map, header.data_offset, data_bytes))
}
