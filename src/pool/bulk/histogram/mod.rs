//! numpy's `np.histogram` over a `SharedArray`:
//!
//! * [`spec`]: what is asked and returned: [`Bins`], [`Weighted`], [`Histogram`]
//!   (with numpy's `density`);
//! * [`form`]: `Bulk::histogram`, one form for every spec ([`HistogramSpec`]);
//! * [`uniform`]: numpy's equal-width bins and the edges it computes for them;
//!   [`edges`]: explicit edges;
//! * [`tally`]: counting or weighing a chunk into its bins.

mod edges;
mod form;
mod spec;
mod tally;
mod uniform;

pub use form::HistogramSpec;
pub use spec::{BinValue, Bins, Histogram, Weighted};
