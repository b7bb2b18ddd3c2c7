//! commute-stm: a small, fast, word-based software transactional memory.
//!
//! Code inside [`atomically`] appears to run alone, yet transactions run in parallel. The core
//! offers:
//!
//! - [`TVar<T>`]: one machine word (`T: `[`Word`]: integers, `bool`, `char`, floats, pointers)
//!   stored inline beside its versioned lock; reads and writes never allocate.
//! - [`TBox<T>`]: a heap value of any type, borrowed by reads, with safe deferred reclamation.
//! - Commutative updates ([`TVar::add`], [`TVar::commute`]) that never conflict with each other:
//!   the primitive that commute's collections stand on.
//! - [`Transaction::retry`] (block until something read changes) and [`Transaction::or_else`].
//! - [`Transaction::on_commit`] / [`Transaction::on_abort`] hooks for effects.
//! - [`try_atomically`]: transactions that fail with an error of their own
//!   ([`Transaction::abort`]), rolling back everything they did.
//! - Progress: backoff, then an irrevocable mode after [`IRREVOCABLE_AFTER`] conflicts in a row.
//! - Always-on [statistics](stats): commits, aborts by cause, and the variable and call site of
//!   each conflict; and a [conflict profiler](conflicts) that adds the time each conflict costs
//!   and who wrote the variable (`COMMUTE_CONFLICTS=1`).
//!
//! Most programs depend on the `commute` crate, which re-exports all of this together with
//! conflict-free collections.
//!
//! # Examples
//!
//! ```
//! use commute_stm::{atomically, TVar};
//! use std::sync::Arc;
//!
//! let counter = Arc::new(TVar::new(0u64));
//! let workers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let counter = counter.clone();
//!         std::thread::spawn(move || {
//!             for _ in 0..1000 {
//!                 atomically(|tx| counter.modify(tx, |n| n + 1));
//!             }
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(counter.load(), 2000);
//! ```

#![warn(missing_docs)]

pub mod conflicts;
mod internal;
pub mod stats;
mod sync;
mod tbox;
mod tvar;
mod tx;
mod word;

pub use internal::thread::reclaim_retired;
pub use tbox::TBox;
pub use tvar::{Boxed, Home, Inline, TVar};
pub use tx::{
    IRREVOCABLE_AFTER, StmError, StmResult, Transaction, TxError, TxResult, atomically,
    in_transaction, try_atomically,
};
pub use word::{Integer, OwnedWord, Word};
