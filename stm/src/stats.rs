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
//!
//! # Why there is no `reset`
//!
//! To measure a phase, take a snapshot before it and subtract it from one taken after, as
//! above: that works for any number of measurements at once, on any thread, nested or
//! overlapping. A `reset` would break it for everyone else. Zeroing every thread's counters
//! would race with their owners (each slot has one writer, which updates it without atomic
//! read-modify-writes, so a reset could be lost or undo a concurrent count), and zeroing the
//! calling thread's only would still move [`snapshot`] backwards, so that a `later - earlier`
//! taken across it underflows (a panic in debug builds). A snapshot to subtract is the reset:
//!
//! ```
//! use commute_stm::{atomically, stats, TVar};
//!
//! let v = TVar::new(0u64);
//! let start = stats::snapshot(); // "reset" every thread's counters
//! atomically(|tx| v.modify(tx, |x| x + 1));
//! let phase = stats::snapshot() - start;
//! assert!(phase.commits >= 1); // other threads' commits count too
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
