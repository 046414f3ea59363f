//! Python's `pool.starmap(divide, pairs)` in Rust: several arguments per task, and a
//! zero divisor handled two ways.
//!
//! ```text
//! cargo run --example starmap
//! ```
//!
//! * `divide` returns `Result<f64, String>`: a zero divisor is a value like any
//!   other, the `starmap` succeeds, and each pair gets its own `Ok` or `Err`.
//! * `divide_or_panic` panics on a zero divisor, as Python's `x / y` raises
//!   `ZeroDivisionError`. The worker catches the panic and lives on. `starmap` then
//!   fails as a whole with `Error::TaskPanicked`, as Python's `starmap` raises the
//!   first exception; `imap` reports the failure on that item alone.
//! * `starmap_async` returns at once; `get` waits for the list.
//!
//! Results are checked; the program exits non-zero if any is wrong.

use shmpool::{Error, Pool};

/// `x / y`, or an error for a zero divisor.
fn divide(x: f64, y: f64) -> Result<f64, String> {
    if y == 0.0 {
        Err(format!("cannot divide {x} by zero"))
    } else {
        Ok(x / y)
    }
}

/// `x / y`; panics for a zero divisor (Rust's `f64` division would give infinity).
fn divide_or_panic(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        panic!("division by zero: {x} / {y}");
    }
    x / y
}

const PAIRS: [(f64, f64); 4] = [(1.0, 2.0), (9.0, 3.0), (5.0, 0.0), (7.0, 4.0)];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(2)?;
    println!("pairs: {PAIRS:?}\n");

    // 1. The error as a value: the starmap succeeds, one Result per pair.
    let quotients = pool.starmap(divide, PAIRS)?;
    println!("starmap(divide, pairs), divide returning Result<f64, String>:");
    for ((x, y), q) in PAIRS.iter().zip(&quotients) {
        println!("  divide({x}, {y}) = {q:?}");
    }
    let expected = [
        Ok(0.5),
        Ok(3.0),
        Err("cannot divide 5 by zero".to_string()),
        Ok(1.75),
    ];
    check(quotients == expected, "starmap(divide)")?;

    // 2a. A panic fails the whole starmap, naming the panic.
    println!("\nstarmap(divide_or_panic, pairs), panicking on a zero divisor:");
    match pool.starmap(divide_or_panic, PAIRS) {
        Err(e @ Error::TaskPanicked { .. }) => println!("  Err(TaskPanicked): {e}"),
        other => return Err(format!("expected TaskPanicked, got {other:?}").into()),
    }

    // 2b. imap reports it on that item alone; the others have their values.
    println!("\nimap over the same pairs (one Result per item):");
    let items: Vec<_> = pool
        .imap(|(x, y): (f64, f64)| divide_or_panic(x, y), PAIRS)?
        .collect();
    for ((x, y), item) in PAIRS.iter().zip(&items) {
        match item {
            Ok(q) => println!("  divide_or_panic({x}, {y}) = Ok({q})"),
            Err(e) => println!("  divide_or_panic({x}, {y}) = Err({e})"),
        }
    }
    let failed: Vec<usize> = (0..items.len()).filter(|&i| items[i].is_err()).collect();
    check(failed == [2], "imap: only the zero divisor fails")?;
    check(
        matches!(&items[2], Err(Error::TaskPanicked { message, .. }) if message.contains("division by zero")),
        "imap: the failure is the task's panic",
    )?;

    // 3. starmap_async: submit now, collect later. The workers survived the panics.
    let pending = pool.starmap_async(divide_or_panic, [(1.0, 8.0), (3.0, 2.0)])?;
    println!("\nstarmap_async submitted; ready() = {}", pending.ready());
    let quotients = pending.get()?;
    println!("  get() = {quotients:?}");
    check(quotients == [0.125, 1.5], "starmap_async")?;

    println!("\nall results checked");
    Ok(())
}

/// Turns a failed check into an error that names it.
fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: wrong result"))
    }
}
