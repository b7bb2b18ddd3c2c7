//! commute: software transactional memory whose collections conflict only where your program
//! really does.
//!
//! This crate re-exports the STM core ([`commute_stm`]): [`TVar`], [`TBox`], [`atomically`],
//! `retry`, `or_else`, commutative updates, hooks and statistics.
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
