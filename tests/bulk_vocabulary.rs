//! The compute vocabulary of issue 13, used as a user would, under every start
//! method: kernel parameters (`with`), context arrays (`context`), several inputs and
//! outputs, index-aware, stencil and row kernels, the `Simd` levels, and the
//! deterministic reductions. Every result is checked against a sequential
//! computation. The tests live in `tests/vocab/`, one module per capability; each
//! runs as `vocab::<capability>::<test>::{fork, fork_server, spawn}`.
//!
//! The random data come from a fixed seed, printed in every failure message;
//! `VOCAB_SEED=<n>` runs the tests on other data.

#[macro_use]
mod common;
mod vocab;
