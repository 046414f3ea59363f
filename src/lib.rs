//! shmpool: Python's `multiprocessing.Pool` for Rust.
