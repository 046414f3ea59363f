//! The chunks of a `map`, `starmap` or `imap`: which items each holds, how their
//! outcomes are decoded, and the sink that collects a `map`'s chunks into one list.
//!
//! A chunk's task carries its index as its tag, nothing else: the sink knows the
//! chunk size, so it can tell every chunk's items, and there is no limit on the
//! number of chunks (an endless `imap` with `chunksize(1)` passes 2^32 of them
//! after a few hours).

use std::ops::Range;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::sync::lock;
use crate::task::async_result::ResultSlot;
use crate::task::codec::{self, ChunkResult};
use crate::task::sink::{Ctx, Outcome, Sink};

/// How items are split into chunks: `chunksize` each, in input order; the last
/// one holds what is left.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSizes {
    chunksize: usize,
    /// Items in all chunks together, when known (a `map`); `None` for an `imap`,
    /// whose last chunk's length is recorded when it is submitted.
    total: Option<usize>,
}

impl ChunkSizes {
    /// `total` items in chunks of `chunksize` (which must not be 0).
    pub(crate) fn new(chunksize: usize, total: usize) -> Self {
        ChunkSizes {
            chunksize,
            total: Some(total),
        }
    }

    /// Chunks of `chunksize` over an input of unknown length.
    pub(crate) fn open_ended(chunksize: usize) -> Self {
        ChunkSizes {
            chunksize,
            total: None,
        }
    }

    /// The number of chunks, for a known total.
    fn count(&self) -> usize {
        self.total.map_or(0, |t| t.div_ceil(self.chunksize))
    }

    /// The input indices of chunk `index`; `last` is the length of an open-ended
    /// input's final chunk, if it has been submitted.
    pub(crate) fn items(&self, index: u64, last: Option<(u64, usize)>) -> Range<usize> {
        let start = (index as usize).saturating_mul(self.chunksize);
        let len = match (self.total, last) {
            (Some(total), _) => self.chunksize.min(total.saturating_sub(start)),
            (None, Some((i, len))) if i == index => len,
            (None, _) => self.chunksize,
        };
        start..start.saturating_add(len)
    }
}

/// Drains an input iterator, turning a panic inside it into an error.
pub(crate) fn collect_input<I: IntoIterator>(items: I) -> Result<Vec<I::Item>> {
    let mut iter = items.into_iter();
    let mut out = Vec::with_capacity(iter.size_hint().0);
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| iter.next())) {
            Ok(Some(item)) => out.push(item),
            Ok(None) => return Ok(out),
            Err(payload) => {
                return Err(Error::InputPanicked {
                    message: crate::unwind::payload_message(&*payload),
                });
            }
        }
    }
}

#[cfg(feature = "progress")]
type Bar = crate::pool::progress_bar::Bar;
#[cfg(not(feature = "progress"))]
type Bar = ();

/// The parts of a `map`'s result received so far.
struct AggregateState<R> {
    parts: Vec<Option<Vec<R>>>,
    remaining: usize,
    done: bool,
}

/// Collects the chunk results of one `map` into the list its `AsyncResult` gets.
pub(crate) struct Aggregate<R> {
    sizes: ChunkSizes,
    state: Mutex<AggregateState<R>>,
    slot: Arc<ResultSlot<Vec<R>>>,
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    progress: Option<Bar>,
}

impl<R: Send + 'static> Aggregate<R> {
    /// An aggregate for the chunks `sizes` describes, delivering to `slot`.
    pub(crate) fn new(
        sizes: ChunkSizes,
        slot: Arc<ResultSlot<Vec<R>>>,
        progress: Option<Bar>,
    ) -> Self {
        let chunks = sizes.count();
        Aggregate {
            sizes,
            state: Mutex::new(AggregateState {
                parts: (0..chunks).map(|_| None).collect(),
                remaining: chunks,
                done: false,
            }),
            slot,
            progress,
        }
    }

    /// Delivers the empty list of a `map` over no items.
    pub(crate) fn finish_empty(&self, inner: &crate::pool::inner::PoolInner) {
        lock(&self.state).done = true;
        self.slot.deliver(Ok(Vec::new()), &inner.ctx());
    }
}

/// Each chunk of a `map` or `starmap` completes into the map's aggregate; the tag
/// is the chunk's index.
impl<R: DeserializeOwned + Send + 'static> Sink for Aggregate<R> {
    fn complete(&self, tag: u64, outcome: Outcome<'_>, ctx: &Ctx<'_>) {
        let items = self.sizes.items(tag, None);
        let (index, len) = (tag as usize, items.len());
        // The first failed item fails the whole map, as in Python; a worker's death
        // or a timeout names the chunk's items.
        let result = decode_values::<R>(outcome, len).map_err(|e| e.for_items(items));
        let agg = self;
        #[cfg(feature = "progress")]
        if let Some(bar) = &agg.progress {
            bar.inc(len as u64);
        }
        let mut state = lock(&agg.state);
        if state.done {
            return;
        }
        match result {
            Err(e) => {
                state.done = true;
                drop(state);
                agg.slot.deliver(Err(e), ctx);
            }
            Ok(values) => {
                state.parts[index] = Some(values);
                state.remaining -= 1;
                if state.remaining == 0 {
                    state.done = true;
                    let parts = std::mem::take(&mut state.parts);
                    drop(state);
                    let total = parts.iter().flatten().map(Vec::len).sum();
                    let mut all: Vec<R> = Vec::with_capacity(total);
                    for part in parts.into_iter().flatten() {
                        all.extend(part);
                    }
                    #[cfg(feature = "progress")]
                    if let Some(bar) = &agg.progress {
                        bar.finish();
                    }
                    agg.slot.deliver(Ok(all), ctx);
                }
            }
        }
    }
}

/// Turns a chunk's outcome into its values, or the error of its first failed item.
fn decode_values<R: DeserializeOwned>(outcome: Outcome<'_>, len: usize) -> Result<Vec<R>> {
    match outcome {
        Outcome::Ok(bytes) => {
            let mut chunk: ChunkResult<R> = codec::decode_chunk_result(bytes)?;
            if let Some((_, report)) = chunk.panics.drain(..).next() {
                return Err(report.into());
            }
            if chunk.values.len() != len {
                return Err(codec::result_count_mismatch::<R>(chunk.values.len(), len));
            }
            Ok(chunk.values)
        }
        Outcome::Panicked(report) => Err(report.into()),
        Outcome::Failed(e) => Err(e),
    }
}

/// Turns a chunk's outcome into one result per item.
pub(crate) fn decode_chunk<R: DeserializeOwned>(
    outcome: Outcome<'_>,
    len: usize,
) -> Result<Vec<Result<R>>> {
    match outcome {
        Outcome::Ok(bytes) => {
            let chunk: ChunkResult<R> = codec::decode_chunk_result(bytes)?;
            if chunk.values.len() + chunk.panics.len() != len {
                return Err(codec::result_count_mismatch::<R>(
                    chunk.values.len() + chunk.panics.len(),
                    len,
                ));
            }
            let mut panics = chunk.panics.into_iter().peekable();
            let mut values = chunk.values.into_iter();
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                if panics.peek().is_some_and(|(at, _)| *at as usize == i) {
                    let (_, report) = panics.next().expect("peeked");
                    out.push(Err(report.into()));
                } else {
                    out.push(Ok(values.next().expect("counted")));
                }
            }
            Ok(out)
        }
        Outcome::Panicked(report) => Err(report.into()),
        Outcome::Failed(e) => Err(e),
    }
}
