//! Python's `multiprocessing.Pool` tutorial in Rust: `apply`, `map`, `apply_async`,
//! `map_async`, `imap` and `imap_unordered` side by side, and `get` with a timeout.
//!
//! ```text
//! cargo run --example apply_async
//! ```
//!
//! Every task is `nap(ms)`: it sleeps `ms` milliseconds in a worker and returns
//! `ms`. The naps are submitted longest first (400, 300, 200, 100 ms) to a pool of
//! four workers, so all four run at once and finish in the reverse order. The
//! program shows that:
//!
//! * `apply` blocks and returns the result, computed in another process;
//! * `map`, `map_async` and `imap` give results in input order, whatever the
//!   completion order;
//! * `apply_async` returns at once; its callbacks run as results arrive, in
//!   completion order; `get` on each handle gives that task's own result;
//! * `imap_unordered` yields results in completion order;
//! * `get_timeout` gives up on a slow task (Python's `TimeoutError`), and dropping the
//!   pool terminates it, as leaving Python's `with Pool() as pool:` block does.
//!
//! Results are checked; the program exits non-zero if any is wrong. Completion order
//! is printed, not checked: it depends on timing.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use shmpool::{AsyncResult, Callbacks, Error, Pool};

/// Sleeps `ms` milliseconds, then returns `ms`: a task whose length we choose.
fn nap(ms: u64) -> u64 {
    thread::sleep(Duration::from_millis(ms));
    ms
}

/// Submitted longest first, so they finish in the reverse order.
const NAPS: [u64; 4] = [400, 300, 200, 100];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(NAPS.len())?;
    println!(
        "a pool of {} worker processes; every task is nap(ms), submitted as {NAPS:?}\n",
        pool.processes()
    );

    // apply: blocks until the worker has the result.
    let worker = pool.apply(std::process::id, ())?;
    let square = pool.apply(|x: u64| x * x, (12,))?;
    println!(
        "apply           12 * 12 = {square}, computed by worker pid {worker} (this process is pid {})",
        std::process::id()
    );
    check(square == 144 && worker != std::process::id(), "apply")?;

    // map: results in input order, although the last nap finishes first.
    let t = Instant::now();
    let mapped = pool.map(nap, NAPS)?;
    println!(
        "map             {mapped:?} in input order, after {} ms",
        t.elapsed().as_millis()
    );
    check(mapped == NAPS, "map")?;

    // apply_async: one handle per task; a callback records the completion order.
    let completed = Arc::new(Mutex::new(Vec::new()));
    let t = Instant::now();
    let handles = NAPS
        .iter()
        .map(|&ms| {
            let log = Arc::clone(&completed);
            let on_done = move |v: &u64| log.lock().unwrap().push((*v, t.elapsed()));
            pool.tasks()
                .apply_async_with(nap, (ms,), Callbacks::new().on_success(on_done))
        })
        .collect::<Result<Vec<AsyncResult<u64>>, Error>>()?;
    println!(
        "apply_async     4 tasks submitted in {} µs; nothing waited yet",
        t.elapsed().as_micros()
    );
    // `get` takes `&self`: a loop over borrowed handles works.
    let got = handles
        .iter()
        .map(AsyncResult::get)
        .collect::<Result<Vec<u64>, Error>>()?;
    let completed = completed.lock().unwrap().clone();
    for (ms, at) in &completed {
        println!(
            "                callback: the {ms} ms nap finished at {:>3} ms",
            at.as_millis()
        );
    }
    let order: Vec<u64> = completed.iter().map(|(ms, _)| *ms).collect();
    println!("                completion order {order:?}, submission order {NAPS:?}");
    println!("                get() on each handle, in submission order: {got:?}");
    check(got == NAPS, "apply_async")?;
    let mut sorted = order.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    check(sorted == NAPS, "apply_async: each callback ran once")?;

    // map_async: returns at once; `get` waits for the whole list.
    let t = Instant::now();
    let pending = pool.map_async(nap, NAPS)?;
    println!(
        "map_async       returned after {} µs with ready() = {}",
        t.elapsed().as_micros(),
        pending.ready()
    );
    let mapped = pending.get()?;
    println!(
        "                get() = {mapped:?} in input order, after {} ms",
        t.elapsed().as_millis()
    );
    check(mapped == NAPS, "map_async")?;

    // imap yields in input order, imap_unordered as results complete.
    let ordered = pool.imap(nap, NAPS)?.collect::<Result<Vec<u64>, Error>>()?;
    println!("imap            {ordered:?} in input order");
    check(ordered == NAPS, "imap")?;
    let unordered = pool
        .imap_unordered(nap, NAPS)?
        .collect::<Result<Vec<u64>, Error>>()?;
    println!("imap_unordered  {unordered:?} in completion order");
    let mut sorted = unordered.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    check(sorted == NAPS, "imap_unordered: each result once")?;

    // get with a timeout: the task keeps running, the caller stops waiting.
    let slow = pool.apply_async(nap, (10_000,))?;
    match slow.get_timeout(Duration::from_millis(200)) {
        Err(Error::WaitTimeout(limit)) => println!(
            "get_timeout     no result within {} ms: we lacked patience (the task runs on)",
            limit.as_millis()
        ),
        other => return Err(format!("expected a WaitTimeout, got {other:?}").into()),
    }
    let t = Instant::now();
    drop(pool);
    let dropped = t.elapsed();
    let after = slow.get_timeout(Duration::from_secs(1));
    println!(
        "drop(pool)      took {} ms and ended the 10 s nap: {}",
        dropped.as_millis(),
        after
            .as_ref()
            .map_or_else(|e| e.to_string(), |v| v.to_string())
    );
    check(matches!(after, Err(Error::PoolTerminated)), "drop(pool)")?;
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
