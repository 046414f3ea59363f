//! Shared memory: owned mappings, data segments and the policy of their pages, named
//! segments, the cache that recycles dropped segments and the zeroing of what it
//! hands back, the arenas and the windows they are mapped in, the liveness table,
//! and the registry of pools whose idle workers a dropped segment wakes.

pub(crate) mod arena;
pub(crate) mod liveness;
pub(crate) mod mapping;
pub(crate) mod named_segment;
pub(crate) mod page_policy;
pub mod recycle;
pub(crate) mod registry;
pub(crate) mod segment;
pub(crate) mod windows;
pub(crate) mod zeroing;

pub use crate::sys::page_kind::PageKind;
pub(crate) use mapping::Mapping;
pub use page_policy::{HUGE_PAGE_THRESHOLD, Pages};
pub(crate) use segment::{Contents, Segment, SegmentError, ShipInfo, WorkerMapping};
