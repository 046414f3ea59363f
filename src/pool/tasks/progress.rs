//! [`Progress`]: an imap that advances a progress bar as it is consumed (the
//! `progress` feature, on by default; the bar is `src/pool/progress_bar.rs`).

use indicatif::ProgressBar;

use crate::pool::progress_bar::Bar;

/// An iterator that advances a progress bar as it is consumed; from
/// [`crate::Imap::progress`].
///
/// When the iterator ends, the bar is drawn full and its line ended, so that what
/// is printed next starts on a line of its own. Dropped before its end, the bar
/// stays where it got to, and its line is ended too.
///
/// # Examples
///
/// ```
/// let pool = shmpool::Pool::new(2)?;
/// let mut squares = pool.imap(|x: u32| x * x, 0..10u32)?.progress();
/// assert_eq!(squares.len(), 10); // still an exact-size iterator
/// assert_eq!(squares.next().transpose()?, Some(0));
/// assert_eq!(squares.bar().position(), 1); // one step per item consumed
/// assert_eq!(squares.last().transpose()?, Some(81));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug)]
pub struct Progress<I> {
    inner: I,
    bar: Bar,
}

impl<I> Progress<I> {
    pub(crate) fn new(inner: I, total: Option<u64>) -> Self {
        Progress {
            inner,
            bar: Bar::new(total),
        }
    }

    /// The bar, for setting a message or a custom style.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let results = pool.imap(|x: u32| x + 1, 0..50u32)?.progress();
    /// results.bar().set_message("incrementing");
    /// assert_eq!(results.bar().length(), Some(50)); // the input's length
    /// let endless = pool.imap(|x: u32| x, 0u32..)?.progress();
    /// assert_eq!(endless.bar().length(), None); // a spinner
    /// assert_eq!(results.sum::<Result<u32, _>>()?, 1275);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bar(&self) -> &ProgressBar {
        self.bar.indicatif()
    }
}

impl<I: Iterator> Iterator for Progress<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next();
        match item {
            Some(_) => self.bar.inc(1),
            None => self.bar.finish(),
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I: ExactSizeIterator> ExactSizeIterator for Progress<I> {}
