//! Time limits close to how long the work takes, so that the pool's timeout kills
//! race the end of their work: tasks and maps with a `timeout`, and bulk maps with a
//! `chunk_timeout` whose chunks sleep about as long. A task is answered with its own
//! value or with `Timeout` naming it; a bulk map's every element outside the ranges
//! its error names is right. In a round of the pool's own kills, no death (other
//! than a timeout) may be reported.

use std::time::Duration;

use shmpool::{Error, SharedArray};

use super::Totals;
use super::bulk::{death_ranges, mix, sleepy_chunk_kernel};
use super::jobs::{Job, JobArgs, failed_task, is_death, run_job, run_job_item};
use super::ops::check_map;
use super::round::Round;
use crate::common::{Deliveries, get, ok};

impl Round<'_> {
    /// A batch of `apply_async`, or one `map_async`, with a time limit of 5 to 40 ms
    /// and work that takes from nothing to twice as long.
    pub(super) fn timeouts(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let limit = Duration::from_millis(self.rng.range(5..40));
        let limit_us = limit.as_micros() as u64;
        if self.rng.chance(50) {
            let chunksize = self.rng.range(1..4) as usize;
            let n = self.rng.range(1..30) as usize;
            let mut jobs = self.jobs(n);
            for job in &mut jobs {
                job.work_us = self.rng.range(0..2 * limit_us / chunksize as u64);
            }
            let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
            let pending = self
                .pool
                .tasks()
                .timeout(limit)
                .chunksize(chunksize)
                .map_async(run_job_item, args);
            let result = get(ok(pending, cx), cx);
            if matches!(result, Err(Error::Timeout { .. })) {
                totals.tasks_timed_out += 1;
            }
            let deaths = self.outside_kills();
            check_map(cx, &jobs, chunksize, None, deaths, result, totals);
            return;
        }
        let n = self.rng.range(1..16) as usize;
        let mut jobs = self.jobs(n);
        for job in &mut jobs {
            job.work_us = self.rng.range(0..2 * limit_us);
        }
        let deliveries = Deliveries::new(n);
        let results: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                ok(
                    self.pool.tasks().timeout(limit).apply_async_with(
                        run_job,
                        job.args(),
                        deliveries.callbacks(i),
                    ),
                    cx,
                )
            })
            .collect();
        for (job, r) in jobs.iter().zip(results) {
            match get(r, format!("{cx}: job {}", job.seed)) {
                Ok(out) => {
                    job.check(cx, &out);
                    totals.tasks_ok += 1;
                }
                Err(e @ Error::Timeout { .. }) if failed_task(&e).is_some() => {
                    totals.tasks_timed_out += 1
                }
                Err(e) => {
                    check!(
                        cx,
                        self.outside_kills() && failed_task(&e).is_some() && is_death(&e),
                        "job {} (limit {limit:?}): unexpected error {e} ({e:?})",
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

    /// A bulk map with a chunk time limit of 5 to 40 ms, whose chunks sleep from
    /// nothing to twice as long, some retried: on success every element is right; on
    /// failure every element outside the ranges the error names is, and (in a round
    /// of the pool's own kills) the error reports no death, only timeouts and the
    /// chunks they made the map skip.
    pub(super) fn chunk_timeouts(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let limit = Duration::from_millis(self.rng.range(5..40));
        let limit_us = limit.as_micros() as u64;
        let len = self.rng.range(1000..40_000) as usize;
        let chunks = self.rng.range(2..16) as usize;
        let chunk_len = len.div_ceil(chunks);
        let retries = self.rng.pick(&[0u32, 0, 1]);
        let sleeps: Vec<u64> = (0..chunks)
            .map(|_| match self.rng.chance(70) {
                true => self.rng.range(0..limit_us / 2),
                false => self.rng.range(limit_us / 2..2 * limit_us),
            })
            .collect();
        let xs = ok(
            SharedArray::try_from_iter((0..len).map(|i| i as u64 | (sleeps[i / chunk_len] << 32))),
            cx,
        );
        let mut ys = ok(SharedArray::<u64>::filled(len, u64::MAX), cx);
        let r = self
            .pool
            .bulk()
            .chunk_len(chunk_len)
            .chunk_timeout(limit)
            .retries(retries)
            .map_chunks_into(&xs, &mut ys, sleepy_chunk_kernel);
        let what = format!(
            "{len} elements in chunks of {chunk_len}, limit {limit:?}, retries {retries}, \
             sleeps {sleeps:?} µs"
        );
        let failed = match r {
            Ok(()) => {
                totals.bulk_ok += 1;
                Vec::new()
            }
            Err(e) => {
                let ranges = e.failed_ranges();
                check!(
                    cx,
                    !ranges.is_empty() && !matches!(e, Error::MapCancelled { .. }),
                    "{what}: unexpected error {e} ({e:?})"
                );
                check!(
                    cx,
                    self.outside_kills() || death_ranges(&e).is_empty(),
                    "{what}: a death was reported: {e} ({e:?})"
                );
                totals.chunk_timeouts += timeouts_in(&e);
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

/// The chunk timeouts a bulk map's error reports.
fn timeouts_in(e: &Error) -> usize {
    match e {
        Error::Timeout { .. } => 1,
        Error::ChunksLost { errors } => errors.iter().map(timeouts_in).sum(),
        _ => 0,
    }
}
