//! Row views of 2-D arrays, for row stencils: a kernel reads any row of its whole
//! input and writes the rows of its own chunk.

use std::ops::Range;

/// A read-only 2-D view of a whole row-major array: `rows() × cols()` elements.
#[derive(Debug, Clone, Copy)]
pub struct Grid<'a, T> {
    data: &'a [T],
    cols: usize,
}

impl<'a, T> Grid<'a, T> {
    /// A view of `data` as rows of `cols` elements (a trailing partial row is not
    /// part of it). Kernels receive their views from the pool; this is for running
    /// a kernel sequentially, as a reference.
    pub fn new(data: &'a [T], cols: usize) -> Self {
        Grid { data, cols }
    }

    /// Rows in the array.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.cols).unwrap_or(0)
    }

    /// Elements per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r`.
    ///
    /// # Panics
    /// If `r >= rows()`.
    pub fn row(&self, r: usize) -> &'a [T] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The element at row `r`, column `c`.
    ///
    /// # Panics
    /// If either index is out of range.
    pub fn get(&self, r: usize, c: usize) -> &'a T {
        assert!(c < self.cols, "column {c} of {}", self.cols);
        &self.data[r * self.cols + c]
    }

    /// The whole array, row after row.
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }
}

/// The rows of a chunk of a row-major output, addressed by their global row index.
#[derive(Debug)]
pub struct GridMut<'a, U> {
    data: &'a mut [U],
    first_row: usize,
    cols: usize,
}

impl<'a, U> GridMut<'a, U> {
    /// A view of `data` as the rows `first_row..` of `cols` elements each. Kernels
    /// receive their views from the pool; this is for running a kernel
    /// sequentially, as a reference.
    pub fn new(data: &'a mut [U], first_row: usize, cols: usize) -> Self {
        GridMut {
            data,
            first_row,
            cols,
        }
    }

    /// The global indices of the rows this chunk writes.
    pub fn rows(&self) -> Range<usize> {
        let n = self.data.len().checked_div(self.cols).unwrap_or(0);
        self.first_row..self.first_row + n
    }

    /// Elements per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r` (a global row index within [`GridMut::rows`]), writable.
    ///
    /// # Panics
    /// If `r` is not one of this chunk's rows.
    pub fn row_mut(&mut self, r: usize) -> &mut [U] {
        let rows = self.rows();
        assert!(
            rows.contains(&r),
            "row {r} is not in this chunk's rows {rows:?}"
        );
        let at = (r - self.first_row) * self.cols;
        &mut self.data[at..at + self.cols]
    }

    /// The chunk's rows, row after row.
    pub fn as_mut_slice(&mut self) -> &mut [U] {
        self.data
    }
}
