//! Per-call latencies recorded inside a bench's timing loop, and their
//! percentiles: criterion reports means and medians, and these benches need the
//! tail (p99, p99.9, the maximum) of every single call. Shared by the benches
//! that `#[path]`-include it.

use std::time::Duration;

/// The latency of every timed call of one entry.
pub struct Latencies {
    /// The entry's name, as criterion shows it.
    pub name: &'static str,
    nanos: Vec<u64>,
}

impl Latencies {
    pub fn new(name: &'static str) -> Self {
        Latencies {
            name,
            nanos: Vec::new(),
        }
    }

    /// Makes room for `n` more samples: call before a timed loop, so that no
    /// allocation falls between two clock reads.
    pub fn reserve(&mut self, n: usize) {
        self.nanos.reserve(n);
    }

    /// Records one call's latency.
    pub fn record(&mut self, took: Duration) {
        self.nanos.push(took.as_nanos() as u64);
    }

    /// Prints p50, p90, p99, p99.9 and the maximum to standard error as
    /// `group/name  n what: ...`, when there are enough samples to make them mean
    /// something.
    pub fn report(mut self, group: &str, what: &str) {
        let n = self.nanos.len();
        if n < 1000 {
            return;
        }
        self.nanos.sort_unstable();
        // Nearest rank: the smallest value with at least p of the samples at or below it.
        let at = |p: f64| {
            let rank = ((p / 100.0) * n as f64).ceil() as usize;
            Duration::from_nanos(self.nanos[rank.clamp(1, n) - 1])
        };
        eprintln!(
            "{group}/{:<14} {n:>9} {what}: p50 {:>9.2?}  p90 {:>9.2?}  p99 {:>9.2?}  p99.9 {:>9.2?}  max {:>9.2?}",
            self.name,
            at(50.0),
            at(90.0),
            at(99.0),
            at(99.9),
            at(100.0),
        );
    }
}
