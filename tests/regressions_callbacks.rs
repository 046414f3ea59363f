//! Regression tests for the bug of issue 10 in callbacks: bug 4 (a blocking call
//! inside a callback deadlocked). The other bugs are tested by the other
//! `regressions_*.rs` files, one per family (`bugN_` names throughout).
//!
//! Each fails on code that has its bug, and none can hang: every test body runs
//! under a time limit (`common::within`) and every result is waited for with
//! `get_timeout` (`common::get`).

mod common;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{get, ok, within};
use shmpool::{Callbacks, Error, Pool};

/// The time limit of one test's body.
const LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------
// Bug 4: a blocking call inside a callback deadlocks (callbacks run on the result
// thread, which the blocking call waits for).
// ---------------------------------------------------------------------------------

/// How long the test waits for the nested call's answer.
const NESTED_WAIT: Duration = Duration::from_secs(20);

#[test]
fn bug4_apply_inside_on_success_returns() {
    within(LIMIT, "bug4 apply", || {
        let pool = Arc::new(ok(Pool::new(2), "Pool::new(2)"));
        let (tx, rx) = mpsc::channel();
        let nested = Arc::clone(&pool);
        let outer = pool.tasks().apply_async_with(
            |x: u64| x + 1,
            (1,),
            Callbacks::new().on_success(move |v: &u64| {
                let r = nested.apply(|x: u64| x * 10, (*v,));
                let _ = tx.send(r.map_err(|e| e.to_string()));
            }),
        );
        let outer = ok(outer, "submit");
        let answer = rx
            .recv_timeout(NESTED_WAIT)
            .expect("pool.apply inside on_success did not return (deadlock)");
        assert_eq!(answer, Ok(20));
        // (The callback, and its Arc of the pool, are gone once the result is ready.)
        assert_eq!(ok(get(outer, "outer"), "outer"), 2);
    });
}

#[test]
fn bug4_map_inside_on_error_returns() {
    within(LIMIT, "bug4 map", || {
        let pool = Arc::new(ok(Pool::new(2), "Pool::new(2)"));
        let (tx, rx) = mpsc::channel();
        let nested = Arc::clone(&pool);
        let outer = pool.tasks().apply_async_with(
            || -> u64 { panic!("boom") },
            (),
            Callbacks::new().on_error(move |e: &Error| {
                let r = nested.map(|x: u64| x * 7, 0..100u64);
                let _ = tx.send((e.to_string(), r.map_err(|e| e.to_string())));
            }),
        );
        let outer = ok(outer, "submit");
        let (error, answer) = rx
            .recv_timeout(NESTED_WAIT)
            .expect("pool.map inside on_error did not return (deadlock)");
        assert!(error.contains("boom"), "{error}");
        assert_eq!(answer, Ok((0..100).map(|x| x * 7).collect()));
        assert!(matches!(
            get(outer, "outer"),
            Err(Error::TaskPanicked { .. })
        ));
    });
}
