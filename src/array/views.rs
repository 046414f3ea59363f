//! ndarray views of shared arrays (feature `ndarray`, on by default).

use bytemuck::Pod;
use ndarray::{
    ArrayBase, ArrayView, ArrayView1, ArrayViewD, ArrayViewMut, ArrayViewMut1, ArrayViewMutD, Data,
    Dimension, IxDyn,
};

use super::shared_array::SharedArray;
use crate::error::{Error, Result};

impl<T: Pod> SharedArray<T> {
    /// The elements as an n-dimensional ndarray view with the array's
    /// [`shape`](SharedArray::shape), zero-copy.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::try_from_iter((0..24).map(|i| i as f64))?.reshape(&[2, 3, 4])?;
    /// let y: SharedArray<f64> = pool.bulk().map_array(&x, |v: f64| v * 10.0)?; // keeps the shape
    /// let view = y.as_array();
    /// assert_eq!(view.shape(), &[2, 3, 4]);
    /// assert_eq!(view[[1, 2, 3]], 230.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_array(&self) -> ArrayViewD<'_, T> {
        ArrayViewD::from_shape(IxDyn(self.shape()), self.as_slice())
            .expect("the shape always holds exactly len() elements")
    }

    /// The elements as a mutable n-dimensional ndarray view, zero-copy.
    ///
    /// # Examples
    ///
    /// ```
    /// use ndarray::Axis;
    ///
    /// let mut x = shmpool::SharedArray::<i32>::zeroed(6)?.reshape(&[2, 3])?;
    /// x.as_array_mut().index_axis_mut(Axis(0), 1).fill(7);
    /// assert_eq!(&x[..], &[0, 0, 0, 7, 7, 7]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_array_mut(&mut self) -> ArrayViewMutD<'_, T> {
        let shape = IxDyn(self.shape());
        ArrayViewMutD::from_shape(shape, self.as_mut_slice())
            .expect("the shape always holds exactly len() elements")
    }

    /// The elements as a view with a fixed number of axes, `D` (`Ix1`, `Ix2`, ...,
    /// or `IxDyn`), zero-copy: for code that wants `ArrayView2<T>` and not a
    /// dynamic-dimension view.
    ///
    /// # Errors
    /// [`Error::Dimensionality`] when the array's shape has another number of axes.
    ///
    /// # Examples
    ///
    /// ```
    /// use ndarray::Ix2;
    ///
    /// let x = shmpool::SharedArray::try_from_iter(0..6u8)?.reshape(&[2, 3])?;
    /// let m = x.as_array_dim::<Ix2>()?;
    /// assert_eq!(m.dim(), (2, 3));
    /// assert_eq!(m[(1, 0)], 3);
    /// assert!(x.as_array_dim::<ndarray::Ix3>().is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_array_dim<D: Dimension>(&self) -> Result<ArrayView<'_, T, D>> {
        let shape = self.shape().to_vec();
        self.as_array()
            .into_dimensionality::<D>()
            .map_err(|_| dimensionality::<D>(shape))
    }

    /// The mutable counterpart of [`SharedArray::as_array_dim`].
    ///
    /// # Errors
    /// As for [`SharedArray::as_array_dim`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut x = shmpool::SharedArray::<f32>::zeroed(4)?.reshape(&[2, 2])?;
    /// x.as_array_dim_mut::<ndarray::Ix2>()?.diag_mut().fill(1.0);
    /// assert_eq!(&x[..], &[1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_array_dim_mut<D: Dimension>(&mut self) -> Result<ArrayViewMut<'_, T, D>> {
        let shape = self.shape().to_vec();
        self.as_array_mut()
            .into_dimensionality::<D>()
            .map_err(|_| dimensionality::<D>(shape))
    }

    /// Every element as a flat 1-D view, whatever the shape (`ArrayView1`),
    /// zero-copy.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = shmpool::SharedArray::try_from_iter((1..=6).map(f64::from))?.reshape(&[3, 2])?;
    /// assert_eq!(x.as_array1().sum(), 21.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_array1(&self) -> ArrayView1<'_, T> {
        ArrayView1::from(self.as_slice())
    }

    /// Every element as a flat, mutable 1-D view (`ArrayViewMut1`), zero-copy.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut x = shmpool::SharedArray::<u64>::zeroed(5)?;
    /// x.as_array1_mut().slice_mut(ndarray::s![1..;2]).fill(9);
    /// assert_eq!(&x[..], &[0, 9, 0, 9, 0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn as_array1_mut(&mut self) -> ArrayViewMut1<'_, T> {
        ArrayViewMut1::from(self.as_mut_slice())
    }

    /// A shared array holding a copy of an ndarray array, in logical (C) order, with
    /// its shape.
    ///
    /// # Errors
    /// As for [`SharedArray::zeroed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ndarray::Array2::from_shape_fn((3, 2), |(i, j)| (i * 10 + j) as u32);
    /// let s = shmpool::SharedArray::from_array(&a.t())?; // a transposed view, copied in C order
    /// assert_eq!(s.shape(), &[2, 3]);
    /// assert_eq!(&s[..], &[0, 10, 20, 1, 11, 21]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_array<S, D>(array: &ArrayBase<S, D>) -> Result<Self>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        Self::try_from_iter(array.iter().copied())?.reshape(array.shape())
    }
}

/// The error for a view of `D` axes over an array of `shape`.
fn dimensionality<D: Dimension>(shape: Vec<usize>) -> Error {
    Error::Dimensionality {
        shape,
        axes: D::NDIM.unwrap_or(0),
    }
}
