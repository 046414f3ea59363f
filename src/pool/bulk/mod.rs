//! numpy's vocabulary over [`SharedArray`](crate::SharedArray)s, run in place by the
//! workers, and its run loop.
//!
//! * [`bulk_builder`]: [`Bulk`], one operation's options and the environment its
//!   kernels take (nothing, parameters, context arrays), made by `pool.bulk()`;
//! * [`maps`]: the maps (`map_into`, `zip_map_into`, row and stencil kernels, the
//!   awaitable `map_into_async`), each written once for every environment;
//! * [`reduce`]: deterministic reductions (`map_reduce`, `fold_reduce`,
//!   `fold_rows`, the tree that combines their partials); [`reductions`]: numpy's
//!   (`dot`, `min`, `argmax`, ...), and [`histogram`], numpy's `np.histogram`, with
//!   the element types they take ([`number`]); [`moments`]: `sum`, `mean`, `var`,
//!   `std`; [`nan_reductions`]: `nansum`, `nanmin`, ...; [`axis`]: the same along
//!   an axis of a 2-D array ([`columns`]: axis 0); [`accumulate`]: the type they
//!   compute in (numpy's `dtype=`); [`lanes`]: their in-chunk loops;
//! * [`engine`]: plan, publish, retry, decide: what every operation comes down to;
//!   [`chunking`]: the default chunk length; [`chunk_progress`]: the bar of chunks
//!   it shows while the caller waits;
//! * [`cancel_token`] and [`bulk_future`]: stopping an operation from another
//!   thread, and awaiting a map.

mod accumulate;
mod axis;
mod bulk_builder;
mod bulk_future;
mod cancel_token;
mod chunk_progress;
mod chunking;
mod columns;
mod engine;
mod histogram;
mod lanes;
mod maps;
mod moments;
mod nan_reductions;
mod number;
mod reduce;
mod reductions;

pub use accumulate::{DefaultDtype, Dtype, Float, MeanIn, SumIn};
pub use bulk_builder::Bulk;
pub use bulk_future::BulkFuture;
pub use cancel_token::CancelToken;
pub use histogram::{BinValue, Bins, Histogram, HistogramSpec, Weighted};
pub use number::Number;
