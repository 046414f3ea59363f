//! The task operations of a round: a batch of apply_async, map and starmap (some
//! with a task context), imap and imap_unordered, a cancelled map_async, and an
//! apply made inside a success callback. Each checks that
//! every task is answered exactly once, with its own value or an error naming it.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use shmpool::{Callbacks, CancelMode, CancelOutcome, Error};

use super::jobs::{
    Context, Job, JobArgs, context, context_job, failed_items, failed_task, is_death, run_job,
    run_job_item,
};
use super::round::{Op, Round};
use super::{Cx, Totals};
use crate::common::{Deliveries, RESULT_WAIT, get, ok, within};

impl Round<'_> {
    /// A batch of apply_async, some with a time limit of their own; each task's
    /// callbacks count its deliveries.
    pub(super) fn apply(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..30) as usize;
        let jobs = self.jobs(n);
        let deliveries = Deliveries::new(n);
        let results: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let mut tasks = self.pool.tasks();
                if self.rng.chance(20) {
                    tasks = tasks.timeout(Duration::from_millis(self.rng.range(300..2000)));
                }
                if self.rng.chance(30) {
                    tasks = tasks.retries(self.rng.pick(&[1u32, 2, 5]));
                }
                ok(
                    tasks.apply_async_with(run_job, job.args(), deliveries.callbacks(i)),
                    cx,
                )
            })
            .collect();
        let mut named = HashSet::new();
        for (job, r) in jobs.iter().zip(results) {
            match get(r, format!("{cx}: job {}", job.seed)) {
                Ok(out) => {
                    job.check(cx, &out);
                    totals.tasks_ok += 1;
                }
                Err(e) => {
                    let id = failed_task(&e);
                    check!(
                        cx,
                        id.is_some() && (self.outside_kills() || !is_death(&e)),
                        "job {}: unexpected error {e} ({e:?})",
                        job.seed
                    );
                    check!(
                        cx,
                        named.insert(id),
                        "job {}: {e} names a task twice",
                        job.seed
                    );
                    totals.tasks_failed += 1;
                }
            }
        }
        if let Some((i, times)) = deliveries.first_not_once() {
            panic!("{cx}: job {} was delivered {times} times", jobs[i].seed);
        }
    }

    /// One `map` or `starmap` (async, waited for with a limit), a third of them with
    /// a task context: all right values (from the call's own context), or the error
    /// of a chunk that names items of this call.
    pub(super) fn map(&mut self, kind: Op, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..60) as usize;
        let chunksize = self.rng.range(1..9) as usize;
        let jobs = self.jobs(n);
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let retries = self.rng.pick(&[0u32, 0, 1, 3]);
        let context = self.rng.chance(33).then(|| context(self.rng));
        let tasks = self.pool.tasks().chunksize(chunksize).retries(retries);
        let pending = match (&context, kind) {
            (Some(c), _) => tasks.with(c).map_async(context_job, args),
            (None, Op::Map) => tasks.map_async(run_job_item, args),
            (None, _) => tasks.starmap_async(run_job, args),
        };
        let result = get(ok(pending, cx), cx);
        let deaths = self.outside_kills();
        check_map(
            cx,
            &jobs,
            chunksize,
            context.as_ref(),
            deaths,
            result,
            totals,
        );
    }

    /// A `map_async` (half of them with a task context) cancelled after a random
    /// pause, killing its running tasks or letting them finish. A cancel that says
    /// it cancelled leaves `Cancelled` as the result; one that came too late leaves
    /// the call's own result, checked as for `map`.
    pub(super) fn cancel(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..40) as usize;
        let chunksize = self.rng.range(1..5) as usize;
        let jobs = self.jobs(n);
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let mode = self.rng.pick(&[CancelMode::Kill, CancelMode::LetFinish]);
        let pause = Duration::from_millis(self.rng.range(0..30));
        let context = self.rng.chance(50).then(|| context(self.rng));
        let tasks = self
            .pool
            .tasks()
            .chunksize(chunksize)
            .retries(self.rng.pick(&[0u32, 1]));
        let pending = ok(
            match &context {
                Some(c) => tasks.with(c).map_async(context_job, args),
                None => tasks.map_async(run_job_item, args),
            },
            cx,
        );
        std::thread::sleep(pause);
        let outcome = pending.cancel_with(mode);
        let result = get(pending, cx);
        match outcome {
            CancelOutcome::Cancelled => {
                check!(
                    cx,
                    matches!(result, Err(Error::Cancelled { .. })),
                    "{n} items, {mode:?}: the cancel said it cancelled, and the result is {:?}",
                    result.map(|outs| outs.len())
                );
                totals.tasks_cancelled += n;
            }
            CancelOutcome::AlreadyDone => {
                let deaths = self.outside_kills();
                check_map(
                    cx,
                    &jobs,
                    chunksize,
                    context.as_ref(),
                    deaths,
                    result,
                    totals,
                )
            }
            other => panic!("{cx}: an unknown cancel outcome {other:?}"),
        }
    }

    /// One `imap` or `imap_unordered`: every item answered exactly once, with its
    /// own value or an error naming its chunk.
    pub(super) fn imap(&mut self, kind: Op, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..60) as usize;
        let chunksize = self.rng.range(1..9) as usize;
        let jobs = self.jobs(n);
        let first_seed = jobs[0].seed;
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let in_flight = self.rng.range(1..6) as usize;
        let deaths = self.outside_kills();
        let pool = Arc::clone(&self.pool);
        // The iterator blocks: consume it under a time limit of its own.
        let results = within(RESULT_WAIT * 2, &format!("{cx}"), move || {
            let tasks = pool.tasks().chunksize(chunksize).max_in_flight(in_flight);
            let results: Vec<_> = match kind {
                Op::Imap => ok(tasks.imap(run_job_item, args), cx).collect(),
                _ => ok(tasks.imap_unordered(run_job_item, args), cx).collect(),
            };
            results
        });
        check!(
            cx,
            results.len() == n,
            "{} results for {n} items",
            results.len()
        );
        let mut answers = vec![0u32; n];
        let mut errors_per_chunk: HashMap<Range<usize>, usize> = HashMap::new();
        for (pos, r) in results.into_iter().enumerate() {
            match r {
                Ok(out) => {
                    // In order, position `pos` is item `pos`; unordered, the seed says.
                    let i = match kind {
                        Op::Imap => pos,
                        _ => out.0.wrapping_sub(first_seed) as usize,
                    };
                    check!(cx, i < n, "a result of job {} is not of this call", out.0);
                    jobs[i].check(cx, &out);
                    answers[i] += 1;
                    totals.tasks_ok += 1;
                }
                Err(e) => {
                    let items = failed_items(&e);
                    let fits =
                        |r: &Range<usize>| !r.is_empty() && r.end <= n && r.len() <= chunksize;
                    check!(
                        cx,
                        items.as_ref().is_some_and(fits) && (deaths || !is_death(&e)),
                        "item at {pos}: unexpected error {e} ({e:?})"
                    );
                    let items = items.unwrap();
                    if matches!(kind, Op::Imap) {
                        check!(cx, items.contains(&pos), "item {pos}: {e} names {items:?}");
                    }
                    *errors_per_chunk.entry(items).or_default() += 1;
                    totals.tasks_failed += 1;
                }
            }
        }
        // A failed chunk fails each of its items once.
        for (items, count) in errors_per_chunk {
            check!(
                cx,
                count == items.len(),
                "{count} errors for the {} items {items:?}",
                items.len()
            );
            items.for_each(|i| answers[i] += 1);
        }
        let wrong = answers.iter().position(|&a| a != 1);
        check!(
            cx,
            wrong.is_none(),
            "item {wrong:?} was answered {:?} times",
            wrong.map(|i| answers[i])
        );
    }

    /// `apply_async` whose success callback makes a blocking `apply` on the same pool.
    pub(super) fn nested(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let (outer, inner) = (self.job(), self.job());
        let (tx, rx) = mpsc::channel();
        let pool = Arc::clone(&self.pool);
        let callbacks = Callbacks::new().on_success(move |_: &(u64, Vec<u8>)| {
            let _ = tx.send(pool.apply(run_job, inner.args()));
        });
        let r = ok(
            self.pool
                .tasks()
                .apply_async_with(run_job, outer.args(), callbacks),
            cx,
        );
        // The callback runs only if the outer task succeeds; otherwise it is dropped,
        // and with it the sender.
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(out)) => {
                inner.check(cx, &out);
                totals.tasks_ok += 1;
            }
            Ok(Err(e)) => {
                check!(
                    cx,
                    failed_task(&e).is_some() && (self.outside_kills() || !is_death(&e)),
                    "nested apply: unexpected error {e} ({e:?})"
                );
                totals.tasks_failed += 1;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{cx}: an apply inside a success callback did not return in 30 s (deadlock)")
            }
        }
        match get(r, cx) {
            Ok(out) => outer.check(cx, &out),
            Err(e) => check!(
                cx,
                failed_task(&e).is_some() && (self.outside_kills() || !is_death(&e)),
                "outer task: unexpected error {e} ({e:?})"
            ),
        }
    }
}

/// A whole map's result: every job's own value (the seed unsalted by the call's
/// context, if it had one), or the error of one chunk naming items of this call: a
/// timeout, or (only if `deaths`, in a round with the killer) a death.
pub(super) fn check_map(
    cx: Cx,
    jobs: &[Job],
    chunksize: usize,
    context: Option<&Context>,
    deaths: bool,
    result: shmpool::Result<Vec<(u64, Vec<u8>)>>,
    totals: &mut Totals,
) {
    let n = jobs.len();
    let salt = context.map_or(0, |c| c.0);
    match result {
        Ok(outs) => {
            check!(cx, outs.len() == n, "{} results for {n} items", outs.len());
            for (job, (seed, out)) in jobs.iter().zip(outs) {
                job.check(cx, &(seed ^ salt, out));
            }
            totals.tasks_ok += n;
        }
        Err(e) => {
            let items = failed_items(&e);
            check!(
                cx,
                items
                    .as_ref()
                    .is_some_and(|r| !r.is_empty() && r.end <= n && r.len() <= chunksize)
                    && (deaths || !is_death(&e)),
                "{n} items in chunks of {chunksize}: unexpected error {e} ({e:?})"
            );
            totals.tasks_failed += n;
        }
    }
}
