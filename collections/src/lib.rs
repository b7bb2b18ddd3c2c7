//! commute: software transactional memory whose collections conflict only where your program
//! really does.
//!
//! This crate re-exports the STM core ([`commute_stm`]): [`TVar`], [`TBox`], [`atomically`],
//! `retry`, `or_else`, commutative updates, hooks and statistics; and adds collections whose
//! common operations do not conflict with each other:
//!
//! | type | what never conflicts |
//! |---|---|
//! | [`TCounter`] | `add` vs `add` |
//! | [`TQueue`] | `push` vs `push`, `push` vs `pop` of other items |
//! | [`TMap`] / [`TSet`] | operations on different keys |
//!
//! [`TBoundedQueue`] adds a capacity to `TQueue`, and `TaskPool` runs closures as transactions
//! on worker threads (an event loop that uses all cores), whose own bookkeeping never conflicts.
//!
//! # Examples
//!
//! ```
//! use commute::{atomically, TVar};
//!
//! let v = TVar::new(1u32);
//! atomically(|tx| v.modify(tx, |x| x + 1));
//! assert_eq!(v.load(), 2);
//! ```

pub use commute_stm::*;

mod atomic;
mod bounded;
mod counter;
mod map;
#[cfg(not(loom))]
mod pool;
mod queue;
mod set;
mod sync;

pub use atomic::Atomic;
pub use bounded::TBoundedQueue;
pub use counter::TCounter;
pub use map::{Change, TMap};
#[cfg(not(loom))]
pub use pool::{PoolReport, TaskCtx, TaskId, TaskPanic, TaskPool};
pub use queue::TQueue;
pub use set::TSet;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
