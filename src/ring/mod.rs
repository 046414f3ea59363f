//! The lock-free rings in shared memory: submissions (MPMC) and completions (SPSC,
//! one per worker). The protocol is written down in `docs/PROTOCOL.md`.

pub(crate) mod mpmc;
pub(crate) mod spsc;
