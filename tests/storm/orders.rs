//! Operations whose work the pool cancels (and, in `CancelMode::Kill`, kills), at
//! moments that race the end of that work: tasks cancelled from another thread
//! (each in a random mode), imaps cancelled or dropped partway, futures of tasks and
//! maps dropped before they are ready, a bulk map's future dropped partway, and short
//! bulk maps cancelled through their token from another thread. (Time limits are in
//! `timeouts.rs`.)
//!
//! Each checks that the targeted work gets exactly its own outcome (its value, or
//! `Cancelled`, as the cancel's answer says), delivered once. In a round of the
//! pool's own kills, none may see a worker's death; with the killer, a death that
//! names the work is allowed too. The bystanders (`bystanders.rs`) check the other
//! half: that these kills hit nothing else.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use shmpool::{
    AsyncResult, Callbacks, CancelMode, CancelOutcome, CancelToken, Error, ResultFuture,
    SharedArray,
};

use super::Totals;
use super::bulk::{mix, sleepy_chunk_kernel};
use super::jobs::{
    Job, JobArgs, cancelled_items, failed_items, failed_task, is_death, run_job, run_job_item,
};
use super::round::Round;
use crate::common::{Deliveries, RESULT_WAIT, ok, wait_until, within};

/// The result of `r`, waiting at most [`RESULT_WAIT`], by reference (a cancelling
/// thread holds the handle too).
fn get_shared<R: Send + 'static>(
    r: &AsyncResult<R>,
    what: impl std::fmt::Display,
) -> shmpool::Result<R> {
    match r.get_timeout(RESULT_WAIT) {
        Err(Error::WaitTimeout(d)) => panic!("{what}: no result within {d:?} (a hang)"),
        other => other,
    }
}

/// What the callbacks of a task or map were given.
enum Delivered<R> {
    Value(R),
    Cancelled,
    Error {
        message: String,
        /// A death or timeout that names the work.
        names_work: bool,
    },
}

/// Every delivery to one task's (or map's) callbacks, in order.
type Record<R> = Arc<Mutex<Vec<Delivered<R>>>>;

fn recorder<R: Clone + Send + 'static>() -> (Record<R>, Callbacks<R>) {
    let record: Record<R> = Arc::default();
    let (on_ok, on_err) = (Arc::clone(&record), Arc::clone(&record));
    let callbacks = Callbacks::new()
        .on_success(move |v: &R| on_ok.lock().unwrap().push(Delivered::Value(v.clone())))
        .on_error(move |e: &Error| {
            let d = match e {
                Error::Cancelled { .. } => Delivered::Cancelled,
                e => Delivered::Error {
                    message: format!("{e} ({e:?})"),
                    names_work: names_work(e),
                },
            };
            on_err.lock().unwrap().push(d);
        });
    (record, callbacks)
}

/// Whether `e` is a death or timeout that names a task or a map's items.
fn names_work(e: &Error) -> bool {
    failed_task(e).is_some() || failed_items(e).is_some()
}

/// Polls `future` once, with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// An element kernel that sleeps 100 µs at every 256th element, so that a map of a
/// few ten thousand elements runs for some milliseconds.
fn slow_key_kernel(v: u64) -> u64 {
    if v & 255 == 0 {
        std::thread::sleep(Duration::from_micros(100));
    }
    mix(v)
}

impl Round<'_> {
    /// A batch of `apply_async`, each cancelled from another thread after a random
    /// pause, in a random mode: before it runs, while it runs, or as it ends. Most
    /// tasks are short, and the cancels come in the order the tasks run (or in a
    /// random order), about as far apart as the tasks take, so that many race a
    /// task's end. A cancel that says `Cancelled` leaves `Cancelled`; one that says
    /// `AlreadyDone` leaves the task's own value. Each task is delivered once.
    pub(super) fn cancel_tasks(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..40) as usize;
        let mut jobs = self.jobs(n);
        let short = self.rng.chance(70);
        if short {
            for job in &mut jobs {
                job.work_us = self.rng.range(0..400);
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        if self.rng.chance(50) {
            for i in (1..n).rev() {
                order.swap(i, self.rng.below(i as u64 + 1) as usize);
            }
        }
        let max_pause = if short { 400 } else { 2000 };
        let plan: Vec<(usize, Duration, CancelMode)> = order
            .into_iter()
            .map(|i| {
                let pause = Duration::from_micros(self.rng.range(0..max_pause));
                (
                    i,
                    pause,
                    self.rng.pick(&[CancelMode::Kill, CancelMode::LetFinish]),
                )
            })
            .collect();
        let deliveries = Deliveries::new(n);
        let results: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                ok(
                    self.pool.tasks().apply_async_with(
                        run_job,
                        job.args(),
                        deliveries.callbacks(i),
                    ),
                    cx,
                )
            })
            .collect();
        let (outcomes, got) = std::thread::scope(|s| {
            let canceller = s.spawn(|| {
                let mut outcomes = vec![None; n];
                for &(i, pause, mode) in &plan {
                    std::thread::sleep(pause);
                    outcomes[i] = Some((mode, results[i].cancel_with(mode)));
                }
                outcomes
            });
            let got: Vec<_> = (results.iter().zip(&jobs))
                .map(|(r, job)| get_shared(r, format!("{cx}: job {}", job.seed)))
                .collect();
            (canceller.join().expect("the cancelling thread"), got)
        });
        for ((job, outcome), r) in jobs.iter().zip(outcomes).zip(got) {
            let (mode, outcome) = outcome.expect("every task was cancelled");
            let what = format!("job {} cancelled ({mode:?}): {outcome:?}", job.seed);
            match (outcome, r) {
                (CancelOutcome::Cancelled, Err(Error::Cancelled { .. })) => {
                    totals.tasks_cancelled += 1
                }
                (CancelOutcome::AlreadyDone, Ok(out)) => {
                    job.check(cx, &out);
                    totals.tasks_ok += 1;
                }
                (CancelOutcome::AlreadyDone, Err(e))
                    if self.outside_kills() && failed_task(&e).is_some() =>
                {
                    totals.tasks_failed += 1
                }
                (_, r) => panic!("{cx}: {what}, and the result is {:?}", r.map(|out| out.0)),
            }
        }
        if let Some((i, times)) = deliveries.first_not_once() {
            panic!("{cx}: job {} was delivered {times} times", jobs[i].seed);
        }
    }

    /// An `imap` or `imap_unordered` read partway, then cancelled (a random mode)
    /// or dropped (the pool's mode) after a random pause. Every item is answered at
    /// most once: with its own value, or (after the cancel) `Cancelled` naming its
    /// chunk; before the cancel, and after one that says `AlreadyDone`, every item is
    /// answered with its value.
    pub(super) fn cancel_imap(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(2..50) as usize;
        let chunksize = self.rng.range(1..5) as usize;
        let in_flight = self.rng.range(1..6) as usize;
        let ordered = self.rng.chance(50);
        let read = self.rng.below(n as u64) as usize;
        let pause = Duration::from_micros(self.rng.range(0..3000));
        let mode = self
            .rng
            .chance(75)
            .then(|| self.rng.pick(&[CancelMode::Kill, CancelMode::LetFinish]));
        let jobs = self.jobs(n);
        let first_seed = jobs[0].seed;
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let pool = Arc::clone(&self.pool);
        let (before, outcome, after) = within(RESULT_WAIT * 2, &format!("{cx}"), move || {
            let tasks = pool.tasks().chunksize(chunksize).max_in_flight(in_flight);
            let mut items = match ordered {
                true => ok(tasks.imap(run_job_item, args), cx),
                false => ok(tasks.imap_unordered(run_job_item, args), cx),
            };
            let before: Vec<_> = items.by_ref().take(read).collect();
            std::thread::sleep(pause);
            match mode {
                Some(mode) => {
                    let outcome = items.cancel_with(mode);
                    (before, Some(outcome), items.collect())
                }
                None => (before, None, Vec::new()),
            }
        });
        let what = format!(
            "{n} items in chunks of {chunksize}, ordered {ordered}, {read} read, then {mode:?}: \
             {outcome:?}"
        );
        check!(cx, before.len() == read, "{what}: {} read", before.len());
        let deaths = self.outside_kills();
        let mut answers = vec![0u32; n];
        let mut errors_per_chunk: HashMap<Range<usize>, usize> = HashMap::new();
        for (pos, r) in before.into_iter().chain(after).enumerate() {
            match r {
                Ok(out) => {
                    let i = match ordered {
                        true => pos,
                        false => out.0.wrapping_sub(first_seed) as usize,
                    };
                    check!(
                        cx,
                        i < n,
                        "{what}: a result of job {} is not of this call",
                        out.0
                    );
                    jobs[i].check(cx, &out);
                    answers[i] += 1;
                    totals.tasks_ok += 1;
                }
                Err(e) => {
                    let cancelled = cancelled_items(&e);
                    let allowed = match &cancelled {
                        // Items come out `Cancelled` only after a cancel that says so.
                        Some(_) => pos >= read && outcome == Some(CancelOutcome::Cancelled),
                        None => deaths && failed_items(&e).is_some() && is_death(&e),
                    };
                    check!(
                        cx,
                        allowed,
                        "{what}: item at {pos}: unexpected error {e} ({e:?})"
                    );
                    let was_cancelled = cancelled.is_some();
                    let items = cancelled.or_else(|| failed_items(&e)).unwrap();
                    let fits = !items.is_empty() && items.end <= n && items.len() <= chunksize;
                    check!(cx, fits, "{what}: item at {pos}: {e} names {items:?}");
                    if ordered {
                        check!(
                            cx,
                            items.contains(&pos),
                            "{what}: item {pos}: {e} names {items:?}"
                        );
                    }
                    *errors_per_chunk.entry(items).or_default() += 1;
                    match was_cancelled {
                        true => totals.tasks_cancelled += 1,
                        false => totals.tasks_failed += 1,
                    }
                }
            }
        }
        // A failed or cancelled chunk fails each of its items once (the items read,
        // when the imap was dropped partway through a chunk).
        for (items, count) in errors_per_chunk {
            check!(
                cx,
                count == items.len() || (mode.is_none() && count < items.len()),
                "{what}: {count} errors for the {} items {items:?}",
                items.len()
            );
            items.for_each(|i| answers[i] += 1);
        }
        let twice = answers.iter().position(|&a| a > 1);
        check!(
            cx,
            twice.is_none(),
            "{what}: item {twice:?} was answered twice"
        );
        if outcome == Some(CancelOutcome::AlreadyDone) {
            let missing = answers.iter().position(|&a| a == 0);
            check!(
                cx,
                missing.is_none(),
                "{what}: item {missing:?} was never answered"
            );
        }
    }

    /// Futures of `apply_async` tasks, or of `map_async` calls, each polled once and
    /// dropped after a random pause (which cancels as the pool's mode says). The
    /// callbacks get each one result: its own value (it was done first) or
    /// `Cancelled`.
    pub(super) fn drop_futures(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..12) as usize;
        if self.rng.chance(50) {
            let jobs = self.jobs(n);
            let pool = Arc::clone(&self.pool);
            let submit = |i: usize, callbacks| {
                pool.tasks()
                    .apply_async_with(run_job, jobs[i].args(), callbacks)
            };
            self.drop_each(n, submit, |i, out| jobs[i].check(cx, out), totals);
        } else {
            let chunksize = self.rng.range(1..4) as usize;
            let calls: Vec<Vec<Job>> = (0..n)
                .map(|_| {
                    let items = self.rng.range(1..10) as usize;
                    self.jobs(items)
                })
                .collect();
            let pool = Arc::clone(&self.pool);
            let submit = |i: usize, callbacks| {
                let args: Vec<JobArgs> = calls[i].iter().map(Job::args).collect();
                pool.tasks()
                    .chunksize(chunksize)
                    .map_async_with(run_job_item, args, callbacks)
            };
            let check = |i: usize, outs: &Vec<(u64, Vec<u8>)>| {
                let jobs = &calls[i];
                check!(
                    cx,
                    outs.len() == jobs.len(),
                    "call {i}: {} results",
                    outs.len()
                );
                jobs.iter()
                    .zip(outs)
                    .for_each(|(job, out)| job.check(cx, out));
            };
            self.drop_each(n, submit, check, totals);
        }
    }

    /// Submits `n` calls through `submit`, polls each one's future once, drops the
    /// futures in a random order after random pauses, and checks what each call's
    /// callbacks got, exactly once: a value (checked by `check`), `Cancelled`, or,
    /// with the killer, a death or timeout naming the call.
    fn drop_each<R: Clone + Send + 'static>(
        &mut self,
        n: usize,
        submit: impl Fn(usize, Callbacks<R>) -> shmpool::Result<AsyncResult<R>>,
        check: impl Fn(usize, &R),
        totals: &mut Totals,
    ) {
        let cx = self.cx;
        let mut records = Vec::with_capacity(n);
        let mut futures: Vec<Option<ResultFuture<R>>> = Vec::with_capacity(n);
        for i in 0..n {
            let (record, callbacks) = recorder();
            let mut future = ok(submit(i, callbacks), cx).into_future();
            match poll_once(&mut future) {
                // Done already: the future resolved, and dropping it cancels nothing.
                Poll::Ready(r) => {
                    match r {
                        Ok(v) => check(i, &v),
                        Err(e) => check!(
                            cx,
                            self.outside_kills() && names_work(&e),
                            "call {i}: unexpected error {e} ({e:?})"
                        ),
                    }
                    futures.push(None);
                }
                Poll::Pending => futures.push(Some(future)),
            }
            records.push(record);
        }
        while let Some(i) = (!futures.is_empty()).then(|| self.rng.below(futures.len() as u64)) {
            std::thread::sleep(Duration::from_micros(self.rng.range(0..2000)));
            if futures.swap_remove(i as usize).is_some() {
                totals.futures_dropped += 1;
            }
        }
        // The callbacks run on the collector, after the cancel or the result.
        let delivered = wait_until(RESULT_WAIT, || {
            records.iter().all(|r| !r.lock().unwrap().is_empty())
        });
        check!(cx, delivered, "a dropped future's call was never answered");
        for (i, record) in records.iter().enumerate() {
            let record = record.lock().unwrap();
            check!(
                cx,
                record.len() == 1,
                "call {i} was delivered {} times",
                record.len()
            );
            match &record[0] {
                Delivered::Value(v) => {
                    check(i, v);
                    totals.tasks_ok += 1;
                }
                Delivered::Cancelled => totals.tasks_cancelled += 1,
                Delivered::Error {
                    message,
                    names_work,
                } => {
                    check!(
                        cx,
                        *names_work && self.outside_kills(),
                        "call {i}: its callbacks got {message}"
                    );
                    totals.tasks_failed += 1;
                }
            }
        }
    }

    /// A bulk map as a future (`map_into_async`, with a kernel that takes some
    /// milliseconds): awaited to its end, every element checked; or dropped after a
    /// random pause, which cancels it as the pool's mode says and waits until no
    /// worker is inside it.
    pub(super) fn drop_bulk_future(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let len = self.rng.range(5000..60_000) as usize;
        let chunk_len = self.rng.range(128..4096) as usize;
        let nonce = self.rng.below(1 << 29);
        let awaited = self.rng.chance(40);
        let pause = Duration::from_micros(self.rng.range(0..15_000));
        let xs = ok(
            SharedArray::try_from_iter((0..len as u64).map(|i| i | (nonce << 32))),
            cx,
        );
        let ys = ok(SharedArray::<u64>::filled(len, u64::MAX), cx);
        let future = self
            .pool
            .bulk()
            .chunk_len(chunk_len)
            .map_into_async(xs, ys, slow_key_kernel);
        let what = format!("{len} elements in chunks of {chunk_len}");
        if !awaited {
            within(RESULT_WAIT, &format!("{cx}: drop"), move || {
                std::thread::sleep(pause);
                drop(future);
            });
            totals.futures_dropped += 1;
            return;
        }
        let (xs, ys, r) = within(RESULT_WAIT, &format!("{cx}: await"), move || {
            futures::executor::block_on(future)
        });
        let failed = match r {
            Ok(()) => {
                totals.bulk_ok += 1;
                Vec::new()
            }
            Err(e) => {
                let ranges = e.failed_ranges();
                check!(
                    cx,
                    self.outside_kills() && !ranges.is_empty(),
                    "{what}: unexpected error {e} ({e:?})"
                );
                totals.bulk_failed += 1;
                ranges
            }
        };
        let wrong =
            (0..len).find(|&i| !failed.iter().any(|r| r.contains(&i)) && ys[i] != mix(xs[i]));
        check!(
            cx,
            wrong.is_none(),
            "{what}: element {wrong:?} is wrong outside the failed ranges {failed:?}"
        );
    }

    /// Short bulk maps (a few ten chunks, each of 30 to 300 µs), each cancelled
    /// through its token by another thread after a random pause, most in `Kill`
    /// mode, most while their chunks run: a kill decided as a chunk ends may find its
    /// worker on its way to other work. A cancel that says `Cancelled` makes the map
    /// return `MapCancelled`; every element outside the ranges it names is right.
    pub(super) fn cancel_bulk(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        for _ in 0..self.rng.range(4..24) {
            let len = self.rng.range(8..96) as usize;
            let chunk_len = self.rng.range(1..4) as usize;
            let mode = match self.rng.chance(75) {
                true => CancelMode::Kill,
                false => CancelMode::LetFinish,
            };
            let pause = Duration::from_micros(self.rng.range(100..5000));
            let chunk_us = self.rng.range(30..300);
            let xs = ok(
                SharedArray::try_from_iter((0..len as u64).map(|i| i | (chunk_us << 32))),
                cx,
            );
            let mut ys = ok(SharedArray::<u64>::filled(len, u64::MAX), cx);
            let token = CancelToken::new();
            let (r, outcome) = std::thread::scope(|s| {
                let canceller = token.clone();
                let cancelling = s.spawn(move || {
                    std::thread::sleep(pause);
                    canceller.cancel_with(mode)
                });
                let r = self
                    .pool
                    .bulk()
                    .chunk_len(chunk_len)
                    .cancel_token(&token)
                    .map_chunks_into(&xs, &mut ys, sleepy_chunk_kernel);
                (r, cancelling.join().expect("the cancelling thread"))
            });
            let what = format!(
                "{len} elements in chunks of {chunk_len} ({chunk_us} µs), cancelled \
                 ({mode:?}) after {pause:?}: {outcome:?}"
            );
            let failed = match r {
                Ok(()) => {
                    check!(
                        cx,
                        outcome == CancelOutcome::AlreadyDone,
                        "{what}: the map succeeded"
                    );
                    totals.bulk_ok += 1;
                    Vec::new()
                }
                Err(e @ Error::MapCancelled { .. }) => {
                    check!(
                        cx,
                        outcome == CancelOutcome::Cancelled,
                        "{what}: the map returned {e}"
                    );
                    totals.bulk_cancelled += 1;
                    e.failed_ranges()
                }
                Err(e) => {
                    let ranges = e.failed_ranges();
                    check!(
                        cx,
                        self.outside_kills()
                            && !ranges.is_empty()
                            && outcome == CancelOutcome::AlreadyDone,
                        "{what}: unexpected error {e} ({e:?})"
                    );
                    totals.bulk_failed += 1;
                    ranges
                }
            };
            let wrong =
                (0..len).find(|&i| !failed.iter().any(|r| r.contains(&i)) && ys[i] != mix(xs[i]));
            check!(
                cx,
                wrong.is_none(),
                "{what}: element {wrong:?} is wrong outside the failed ranges {failed:?}"
            );
        }
    }
}
