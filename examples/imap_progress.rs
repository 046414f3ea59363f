//! Python's `for r in tqdm(pool.imap(f, numbers, chunksize=256), total=n)` in Rust:
//! a lazy input, results streamed in order, and a progress bar.
//!
//! ```text
//! cargo run --release --example imap_progress            # 1..=1000000
//! cargo run --release --example imap_progress -- 5000    # any count
//! ```
//!
//! Finds the number in `1..=n` with the longest Collatz chain (below a million it is
//! 837799, with 524 steps: Project Euler's problem 14). The input is a lazy
//! iterator that counts how many numbers `imap` has pulled from it: `imap` reads
//! only as far as the results consumed, plus a bounded window of chunks in flight
//! (Python's `imap` reads its whole input first). `.progress()` draws a bar on
//! standard error (hidden when it is not a terminal; feature `progress`, on by
//! default). Items travel `CHUNK` at a time, as Python's `chunksize` does, so that a
//! tiny task is not swamped by its round trip.
//!
//! Checks that every result comes back in input order and exits non-zero if not.

use std::cell::Cell;

use shmpool::Pool;

/// Numbers per task.
const CHUNK: usize = 256;
/// Chunks submitted ahead of the consumer.
const IN_FLIGHT: usize = 8;

/// The number of steps the Collatz map takes from `n` down to 1, with `n`.
fn collatz_steps(n: u64) -> (u64, u32) {
    let (mut x, mut steps) = (n, 0);
    while x > 1 {
        x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
        steps += 1;
    }
    (n, steps)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("count {arg:?}: {e}"))?,
        None => 1_000_000,
    };
    if n < 2 {
        return Err("the count must be at least 2".into());
    }
    let pool = Pool::new(2)?;

    // The lazy input: each number exists only once imap asks for it.
    let pulled = Cell::new(0u64);
    let numbers = (1..=n).inspect(|_| pulled.set(pulled.get() + 1));
    let mut results = pool
        .tasks()
        .chunksize(CHUNK)
        .max_in_flight(IN_FLIGHT)
        .imap(collatz_steps, numbers)?
        .progress();

    // Halfway through, look at how far imap has read its input.
    let half = n / 2;
    let mut tally = Tally::default();
    for item in results.by_ref().take(half as usize) {
        tally.add(item?)?;
    }
    let ahead = pulled.get() - half;
    let window = (CHUNK * (IN_FLIGHT + 1)) as u64;
    results.bar().suspend(|| {
        println!(
            "after {half} results, imap had pulled {} of {n} inputs: {ahead} ahead, within its window of {CHUNK} × ({IN_FLIGHT} + 1) = {window}",
            pulled.get()
        )
    });
    if ahead > window {
        return Err(format!("imap read {ahead} inputs ahead, beyond its window").into());
    }
    for item in results {
        tally.add(item?)?;
    }
    if tally.consumed != n {
        return Err(format!("{} results for {n} inputs", tally.consumed).into());
    }
    let (start, steps) = tally.longest;
    println!("all {n} results arrived in input order");
    println!("the longest Collatz chain from 1..={n} starts at {start}: {steps} steps");
    if collatz_steps(start) != tally.longest {
        return Err("a worker's result differs from this process's".into());
    }

    // An endless input works too: only what is consumed (plus the window) is read.
    let pulled = Cell::new(0u64);
    let endless = (1u64..).inspect(|_| pulled.set(pulled.get() + 1));
    let first: Vec<u32> = pool
        .tasks()
        .chunksize(CHUNK)
        .max_in_flight(IN_FLIGHT)
        .imap(collatz_steps, endless)?
        .take(10)
        .map(|item| item.map(|(_, steps)| steps))
        .collect::<Result<_, _>>()?;
    println!(
        "endless input 1..: the first 10 chain lengths {first:?}, after pulling {} numbers",
        pulled.get()
    );
    if first != [0, 1, 7, 2, 5, 8, 16, 3, 19, 6] {
        return Err("wrong chain lengths for 1..=10".into());
    }
    Ok(())
}

/// The running answer, and the check that results arrive in input order.
#[derive(Default)]
struct Tally {
    consumed: u64,
    longest: (u64, u32),
}

impl Tally {
    fn add(&mut self, (number, steps): (u64, u32)) -> Result<(), String> {
        self.consumed += 1;
        if number != self.consumed {
            return Err(format!(
                "result {} is for {number}: out of order",
                self.consumed
            ));
        }
        if steps > self.longest.1 {
            self.longest = (number, steps);
        }
        Ok(())
    }
}
