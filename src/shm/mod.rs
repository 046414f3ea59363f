//! Shared memory: owned mappings, data segments, the liveness table, and the registry
//! of pools whose idle workers a dropped segment wakes.

pub(crate) mod arena;
pub(crate) mod liveness;
pub(crate) mod mapping;
pub(crate) mod named;
pub(crate) mod registry;
pub(crate) mod segment;

pub(crate) use mapping::Mapping;
pub(crate) use segment::{Segment, ShipInfo, WorkerMapping};
