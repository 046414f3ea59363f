//! Progress bars for long maps and imaps (the `progress` feature, on by default),
//! drawn by indicatif on standard error.

use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

/// A bar with a total, or a spinner when the total is unknown, that ends its line
/// when it is drawn for the last time.
///
/// indicatif leaves the cursor after a finished bar (it pads the line to the
/// terminal's width and counts on the terminal to wrap), so the next `println!`
/// lands on the bar's line wherever the terminal does not wrap there, and in a
/// captured log. [`Bar::finish`] draws the bar full and ends the line; dropped
/// unfinished (a map that failed, an imap dropped part way), it stays where it got
/// to (indicatif's default would draw it full) and ends the line too. The newline
/// goes only to a terminal the bar is drawn on: where the bar is hidden (standard
/// error is not a terminal), nothing is written.
#[derive(Debug)]
pub(crate) struct Bar {
    bar: ProgressBar,
    /// Drawn for the last time, and the line ended. Relaxed: it only makes the
    /// close happen once, and orders nothing else.
    closed: AtomicBool,
}

impl Bar {
    /// A bar of `total` steps, or a spinner.
    pub(crate) fn new(total: Option<u64>) -> Self {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}, {per_sec}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {pos} done [{elapsed_precise}, {per_sec}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        Bar {
            bar,
            closed: AtomicBool::new(false),
        }
    }

    /// Advances the bar by `n` steps.
    pub(crate) fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Draws the bar full and ends its line.
    pub(crate) fn finish(&self) {
        self.close(true);
    }

    /// The indicatif bar, for a message or a style.
    pub(crate) fn indicatif(&self) -> &ProgressBar {
        &self.bar
    }

    /// Draws the bar for the last time, full (`done`) or where it got to, and ends
    /// its line; once.
    fn close(&self, done: bool) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        if !self.bar.is_finished() {
            if done {
                self.bar.finish();
            } else {
                self.bar.abandon();
            }
        }
        if !self.bar.is_hidden() {
            eprintln!();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.close(false);
    }
}

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
