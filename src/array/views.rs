//! ndarray views of shared arrays (feature `ndarray`, on by default).

use bytemuck::Pod;
use ndarray::{ArrayBase, ArrayViewD, ArrayViewMutD, Data, Dimension, IxDyn};

use super::SharedArray;
use crate::error::Result;

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
    /// let y: SharedArray<f64> = pool.map_array(&x, |v: f64| v * 10.0)?; // keeps the shape
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
    pub fn as_array_mut(&mut self) -> ArrayViewMutD<'_, T> {
        let shape = IxDyn(self.shape());
        ArrayViewMutD::from_shape(shape, self.as_mut_slice())
            .expect("the shape always holds exactly len() elements")
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
