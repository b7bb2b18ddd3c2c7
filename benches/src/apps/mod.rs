//! The application suite: programs STM users know, each on a `sequential`, a `global-lock`
//! and a `commute` implementation over the same input, each with a check of its final state.
//!
//! - [`labyrinth`]: STAMP's Lee router on a 3-D grid of `TVar` cells, and a variant whose
//!   routers block in `retry` while a rip-up thread clears paths (rust-stm #17's deadlock).
//! - [`kmeans`]: STAMP's kmeans-low and kmeans-high, centres accumulated in `TVar`s,
//!   read-modify-write (`commute-naive`) or commutative adds (`commute-add`).
//! - [`btree`]: the B-tree of PyPy's multithread suite, written by hand from `TBox` nodes and
//!   `TVar` flags, run as `TaskPool` tasks.
//! - [`pypy_conflicts`]: PyPy-STM's conflict tests: thread-local work must not abort, a
//!   shared `x += 1` must.
//! - vacation, through [`crate::vacation::run_once`].
//!
//! [`suite`] runs them and prints one table; `docs/benchmarks.md`, "Application suite", says
//! what each measures.
//!
//! ```text
//! cargo run --release -p commute-benches --bin apps -- --preset default --threads 1,2
//! ```

pub mod btree;
pub mod kmeans;
pub mod labyrinth;
pub mod pypy_conflicts;
pub mod suite;

/// One run of one implementation of one benchmark: its time, its counts and its check.
#[derive(Clone, Debug)]
pub struct AppRun {
    /// The benchmark (`labyrinth`, `kmeans-low`, `btree`, ...).
    pub benchmark: String,
    /// The implementation (`sequential`, `global-lock`, `commute`, `commute-naive`, ...).
    pub implementation: &'static str,
    /// Threads it ran on.
    pub threads: usize,
    /// Measured wall time in seconds.
    pub seconds: f64,
    /// Units of work done (routes, point assignments, operations, transactions).
    pub work: u64,
    /// Committed transactions (commute implementations only).
    pub commits: Option<u64>,
    /// Attempts rolled back by conflicts (commute implementations only).
    pub aborts: Option<u64>,
    /// `Ok` with a one-line summary of the final state, or what the check found wrong.
    pub check: Result<String, String>,
}

impl AppRun {
    /// Aborts per commit, for commute implementations.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::apps::AppRun;
    ///
    /// let run = AppRun { benchmark: "btree".into(), implementation: "commute", threads: 2,
    ///     seconds: 1.0, work: 10, commits: Some(10), aborts: Some(1), check: Ok(String::new()) };
    /// assert_eq!(run.aborts_per_commit(), Some(0.1));
    /// ```
    pub fn aborts_per_commit(&self) -> Option<f64> {
        match (self.commits, self.aborts) {
            (Some(0), Some(_)) => Some(0.0),
            (Some(c), Some(a)) => Some(a as f64 / c as f64),
            _ => None,
        }
    }
}

/// Commits and aborts of the calling thread since `before` (a `commute::stats::thread()`).
pub(crate) fn counts_since(before: commute::stats::StatsSnapshot) -> (u64, u64) {
    let delta = commute::stats::thread() - before;
    (delta.commits, delta.aborts())
}

/// Sums per-thread `(commits, aborts)` pairs.
pub(crate) fn sum_counts(counts: impl IntoIterator<Item = (u64, u64)>) -> (u64, u64) {
    counts
        .into_iter()
        .fold((0, 0), |(c, a), (dc, da)| (c + dc, a + da))
}

pub(crate) use crate::vacation::run_threads;
