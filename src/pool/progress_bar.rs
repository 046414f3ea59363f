//! [`Bar`]: the progress bar of long maps, imaps and bulk operations (the
//! `progress` feature, on by default), drawn by indicatif on standard error.

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
        Self::counting(total, "")
    }

    /// A bar of `total` chunks of a bulk operation.
    pub(crate) fn chunks(total: u64) -> Self {
        Self::counting(Some(total), " chunks")
    }

    /// A bar of `total` steps, each a `unit` (a word after a space, or nothing),
    /// or a spinner.
    fn counting(total: Option<u64>, unit: &str) -> Self {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:40}} {{pos}}/{{len}}{unit} [{{elapsed_precise}} < {{eta_precise}}, \
                     {{per_sec}}]"
                ))
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

    /// Moves the bar to step `n`.
    pub(crate) fn set(&self, n: u64) {
        self.bar.set_position(n);
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
