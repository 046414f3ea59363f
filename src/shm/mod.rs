//! Shared memory: owned mappings, data segments, and the liveness table.

pub(crate) mod arena;
pub(crate) mod liveness;
pub(crate) mod mapping;
pub(crate) mod named;
pub(crate) mod segment;

pub(crate) use mapping::Mapping;
pub(crate) use segment::{Segment, ShipInfo, WorkerMapping};
