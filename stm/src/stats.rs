//! Statistics: commits, aborts by cause, and which variable and transaction each abort was on.
//!
//! Every thread counts into its own registry slot (single-writer relaxed counters: no shared
//! cache line is written on the commit path). Aborts, the slow path, also record which variable
//! caused them (its label, or its creation site) and the call site of the aborted
//! [`atomically`](crate::atomically). The counters are always on.
//!
//! ```
//! use commute_stm::{atomically, stats, TVar};
//!
//! let before = stats::thread();
//! let v = TVar::new(0u64);
//! atomically(|tx| v.modify(tx, |x| x + 1));
//! let delta = stats::thread() - before;
//! assert_eq!(delta.commits, 1);
//! assert_eq!(delta.aborts(), 0);
//! ```

pub use crate::internal::counters::{AbortCause, ConflictSite, StatsSnapshot};

/// The statistics of every thread since the program started (threads that exited included).
///
/// # Examples
///
/// ```
/// let s = commute_stm::stats::snapshot();
/// assert!(s.commits >= s.irrevocable_commits);
/// ```
pub fn snapshot() -> StatsSnapshot {
    crate::internal::thread::global_stats()
}

/// The statistics of the calling thread.
///
/// Exact for this thread; what tests use to count one thread's aborts while other tests run.
///
/// # Examples
///
/// ```
/// let s = commute_stm::stats::thread();
/// assert_eq!(s.aborts(), s.aborts_read_validation + s.aborts_lock_busy);
/// ```
pub fn thread() -> StatsSnapshot {
    crate::internal::thread::with_ctx(|ctx| ctx.slot.stats.snapshot())
}
