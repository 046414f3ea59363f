//! Shared memory: owned mappings, data segments, the cache that recycles dropped
//! ones and the zeroing of what it hands back, the arenas and the windows they are
//! mapped in, the liveness table, and the registry of pools whose idle workers a
//! dropped segment wakes.

pub(crate) mod arena;
pub(crate) mod liveness;
pub(crate) mod mapping;
pub(crate) mod named;
pub(crate) mod page_kind;
pub(crate) mod pages;
pub mod recycle;
pub(crate) mod registry;
pub(crate) mod segment;
pub(crate) mod windows;
pub(crate) mod zeroing;

pub(crate) use mapping::Mapping;
pub use page_kind::PageKind;
pub use pages::{HUGE_PAGE_THRESHOLD, Pages};
pub(crate) use segment::{Contents, Segment, ShipInfo, WorkerMapping};
