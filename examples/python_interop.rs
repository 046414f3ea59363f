//! Rust workers and numpy on the same memory: named segments Python attaches to.
//!
//! ```text
//! cargo run --release --example python_interop           # 1,000,000 elements
//! cargo run --release --example python_interop -- 1000   # any length
//! ```
//!
//! The Rust side creates two named shared-memory segments, fills the input, and has
//! the pool's workers compute `sqrt` into the output in place. Then it runs
//! `examples/python_interop.py`, which attaches to both with
//! `multiprocessing.shared_memory.SharedMemory(name)`, views them as numpy arrays
//! without copying, checks the result and negates it in place; the Rust side checks
//! Python's write. Nothing is serialized or copied between the processes. If python3
//! with numpy is not available, the example says so and skips the Python half.

use std::process::Command;

use shmpool::{Pool, SharedArray};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let len: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("length {arg:?}: {e}"))?,
        None => 1_000_000,
    };
    let pool = Pool::builder().build()?;
    let (x_name, y_name) = (
        format!("shmpool-interop-x-{}", std::process::id()),
        format!("shmpool-interop-y-{}", std::process::id()),
    );
    // SAFETY: the names are this process's own; the Python process only touches the
    // arrays while this process waits for it, holding no slices.
    // y is 2-D, (len / 2, 2) when len is even: the header carries its shape to Python.
    let y_shape: Vec<usize> = if len % 2 == 0 {
        vec![len / 2, 2]
    } else {
        vec![len]
    };
    let (mut x, mut y) = unsafe {
        (
            SharedArray::<f64>::create_named(&x_name, len)?,
            SharedArray::<f64>::create_named_shaped(&y_name, &y_shape)?,
        )
    };
    x.iter_mut().enumerate().for_each(|(i, v)| *v = i as f64);
    pool.map_into(&x, &mut y, |v: f64| v.sqrt())?;
    println!(
        "rust: {} workers wrote sqrt of {len} f64 into /dev/shm/{y_name}",
        pool.processes()
    );

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python_interop.py");
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    if !matches!(numpy, Ok(ref o) if o.status.success()) {
        println!("rust: skipping the Python half: python3 with numpy is not available");
        return Ok(());
    }
    let status = Command::new("python3")
        .args([script, &x_name, &y_name])
        .status()?;
    if !status.success() {
        return Err(format!("the Python half failed: {status}").into());
    }
    let negated = y.iter().enumerate().all(|(i, v)| *v == -(i as f64).sqrt());
    if !negated {
        return Err("Python's in-place write is not visible".into());
    }
    println!("rust: sees Python's in-place write: y[4] = {}", y[4]);
    println!("interop checked");
    Ok(())
}
