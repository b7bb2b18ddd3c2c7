//! Benchmarks of commute: the `conflicts` runner (conflict rates, throughput, scaling, plots),
//! the `vacation` port of STAMP's vacation (what a whole transaction costs against sequential
//! code and a global lock), the `apps` suite (STAMP's labyrinth and kmeans, PyPy's B-tree and
//! conflict tests, and vacation, in one table; its programs are in the `apps` module), the
//! `instructions` counter (instructions per operation under valgrind's callgrind; its cases are
//! in the `instructions` module), the `memory` binary (heap bytes per entry of a `TMap` beside
//! a `HashMap`; the `memory` module) and the criterion benches of the core
//! (`benches/core.rs`).
//!
//! The runner measures, for each workload of an event-driven server (a request counter, a log,
//! a session map, a queue, an event handler, and bank transfers as a control), how commute's
//! collections, naive TVar-only structures, lock-based structures and peer STM crates do:
//! operations per second and aborts per commit, over several thread counts; and, for a long
//! read of a whole map beside writers (`long-read`), the reader's attempts and the writers'
//! throughput with and without it. See `docs/benchmarks.md` for how to read its tables.
//!
//! ```text
//! cargo run --release -p commute-benches --bin conflicts -- --help
//! ```

#[cfg(feature = "collections")]
pub mod apps;
pub mod args;
#[cfg(feature = "collections")]
pub mod instructions;
mod long_read;
#[cfg(feature = "collections")]
pub mod memory;
mod naive;
mod peer;
pub mod plot;
#[cfg(feature = "collections")]
mod pool_event;
pub mod probe;
pub mod report;
pub mod rng;
mod runner;
#[cfg(feature = "collections")]
pub mod soak;
pub mod suite;
#[cfg(feature = "collections")]
mod tl2_floor;
#[cfg(feature = "collections")]
pub mod vacation;
mod workloads;
pub mod zipf;
