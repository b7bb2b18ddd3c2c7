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
//! - [`atomically_async`] / [`try_atomically_async`]: the same transactions as futures, whose
//!   `retry` waits on the task's waker instead of blocking the thread (any executor).
//! - [`Transaction::on_commit`] / [`Transaction::on_abort`] hooks for effects.
//! - [`read_only`]: read-only transactions on a snapshot, which never abort because of writers
//!   and never make them wait (old versions kept while they run).
//! - [`try_atomically`]: transactions that fail with an error of their own
//!   ([`Transaction::abort`]), rolling back everything they did.
//! - Progress: backoff, then an irrevocable mode after [`IRREVOCABLE_AFTER`] conflicts of one call.
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

mod blocked;
pub mod conflicts;
mod internal;
pub mod stats;
mod sync;
mod tbox;
mod tvar;
mod tx;
mod word;

pub use internal::reclaim::reclaim_retired;

/// Low-level, for collections that keep transactional variables in memory of their own
/// ([`TVar::new_inline`]): drops `value` (which owns such memory) once every
/// [`atomically`] call running now, on any thread, this one included, has returned; at once if
/// none runs.
///
/// A running attempt holds the addresses of the variables it used until it ends, and one of
/// another thread may have reached a collection through a handle it has let go of, while this
/// thread drops the last one. A collection's `Drop` hands its memory over here instead of
/// freeing it (a commit that still lands in it is then freed with it). Deferred values are
/// dropped by later reclamation passes, outside any transaction.
///
/// # Safety
///
/// `value` may be dropped on any thread (it is `Send`, or the caller vouches that dropping it
/// elsewhere is sound), and, at that point, nothing may use what it owns but its `Drop`.
///
/// # Examples
///
/// ```
/// let shards: Box<Vec<u64>> = Box::new(vec![1, 2, 3]);
/// // SAFETY: a `Vec<u64>` may be dropped on any thread.
/// unsafe { commute_stm::drop_after_running_transactions(shards) };
/// ```
pub unsafe fn drop_after_running_transactions<T>(value: Box<T>) {
    let bits = Box::into_raw(value) as usize as u64;
    // SAFETY: `drop_boxed::<T>` drops the box once; the caller vouches for the thread.
    unsafe { internal::reclaim::drop_after_all_running_attempts(bits, tx::write_drop_boxed::<T>) }
}
/// Low-level: drops `value` where commute drops values, so that its `Drop` may use commute (run
/// transactions, wait for readers): at once outside transactions and pins; inside a
/// transaction, once the running attempt has ended (committed or rolled back), outside it;
/// inside a pin ([`pinned`], [`TBox::load_with`]'s closure), once the outermost pin has ended
/// (if that pin ends in a panic, by the thread's next pin, reclamation pass or [`atomically`]
/// call; if the thread exits first, kept undropped for the process's life, as its `Drop` could
/// not use commute then).
///
/// For a collection's code that lets go of a value of its user's inside a transaction or a
/// pin: a copy it made and no longer needs, an argument it did not keep, the copies a panic
/// leaves. Free for a type without drop glue; a box when the drop waits.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, drop_outside, in_transaction};
///
/// struct Checks;
/// impl Drop for Checks {
///     fn drop(&mut self) {
///         assert!(!in_transaction());
///     }
/// }
///
/// atomically(|_| {
///     drop_outside(Checks); // dropped once the attempt has ended
///     Ok(())
/// });
/// ```
#[inline]
pub fn drop_outside<T: 'static>(value: T) {
    internal::thread::drop_outside(value);
}

/// Low-level, outside transactions: runs `f` with the thread pinned, so that heap values that
/// commits replace from now on (a `TBox`'s, a collection's nodes retired by
/// [`TVar::commit_owned_alone`] or [`TVar::write_owned`]) stay alive until `f` returns: `f` may
/// follow pointers it reads with [`TVar::load_seen`]. Nests. `f` may run transactions, but not
/// wait for readers ([`wait_for_readers`] panics inside a pin), nor block in
/// [`retry`](Transaction::retry) without a deadline: `atomically` (or a transaction future
/// polled there) panics too, rather than wait with the pin held (other threads' waits for
/// readers would wait for it, and the values the attempt wrote, dropped once the pin ends,
/// could own every variable it read). [`retry_until`](Transaction::retry_until) waits out its
/// deadline.
///
/// # Panics
///
/// If called inside a transaction (which pins with [`Transaction::pin`]).
///
/// # Examples
///
/// ```
/// let v = commute_stm::TVar::new(4u32);
/// assert_eq!(commute_stm::pinned(|| v.load_seen().0), 4);
/// ```
#[inline]
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    assert!(
        !internal::thread::in_tx(),
        "commute: pinned() called inside a transaction; use Transaction::pin"
    );
    tx::alone::pinned(f)
}
pub use blocked::{BlockedTx, BlockedVar, blocked_transactions};

/// Low-level: waits until no transaction of another thread that may still read memory unlinked
/// by the commit at `version` is running.
///
/// That is the grace period after which reclamation frees a value retired at `version`
/// ([`Transaction::retire_on_commit`]): every other thread is then outside any pinned attempt
/// (or [`TBox::load_with`]) or in one that began after the commit. A collection that hands an
/// unlinked item to its owner by moving it out, instead of dropping it, waits for this first,
/// so that no attempt still borrows the item when it moves. Threads asleep in
/// [`retry`](Transaction::retry) or between transactions are not waited for.
///
/// It blocks only while attempts that began before the commit run: attempts beginning later
/// pin above `version`. It also waits for every [`read_only`] transaction running when it is
/// called (one that began before the commit may read the value in its snapshot; see
/// [`wait_for_readers_up_to`] to wait only for those).
///
/// # Panics
///
/// If called inside a transaction (an attempt must not wait for others), or inside a pin
/// ([`pinned`], [`TBox::load_with`]'s closure): the pin holds back the very reclamation it
/// would wait for, and two pinned threads waiting so would wait for each other for ever. If
/// `version` is above 2^60, which no commit hands out.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, TVar};
///
/// let last_commit = TVar::new(0u64);
/// atomically(|tx| {
///     // SAFETY: the operation neither panics nor touches other memory.
///     unsafe { last_commit.publish_on_commit(tx, |_, version| version) };
///     Ok(())
/// });
/// // No other thread runs a transaction here: this returns at once.
/// commute_stm::wait_for_readers(last_commit.load());
/// ```
pub fn wait_for_readers(version: u64) {
    assert!(
        !in_transaction(),
        "commute: wait_for_readers called inside a transaction; call it after the transaction"
    );
    wait_for_readers_up_to(version, internal::history::mark());
}

/// Low-level: a version above the read version of every attempt running now, for
/// [`wait_for_readers_up_to`] where the version of the commit to wait for is not at hand (a
/// [`Transaction::on_commit`] hook runs after the commit, outside it): taken after the commit,
/// it covers every attempt that began before it, and a few that began after.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, snapshot_mark, version_bound, wait_for_readers_up_to};
///
/// let rv = atomically(|tx| Ok(tx.read_version()));
/// let bound = version_bound();
/// assert!(bound > rv);
/// // Nothing runs elsewhere: returns at once.
/// wait_for_readers_up_to(bound, snapshot_mark());
/// ```
pub fn version_bound() -> u64 {
    internal::clock::begin() + 1
}

/// Low-level: the mark of the [`read_only`] transactions registered so far, for
/// [`wait_for_readers_up_to`]. Taken while a commit runs (in a publishing operation, which
/// [`TVar::publish_on_commit`] runs with the commit's locks held), it covers every
/// `read_only` transaction that may still see what the commit unlinked.
///
/// # Examples
///
/// ```
/// let before = commute_stm::snapshot_mark();
/// commute_stm::read_only(|_| Ok(()));
/// assert!(commute_stm::snapshot_mark() > before);
/// ```
pub fn snapshot_mark() -> u64 {
    internal::history::mark()
}

/// Low-level: [`wait_for_readers`], waiting only for the [`read_only`] transactions registered
/// up to `mark` ([`snapshot_mark`], taken during the commit) instead of every one running now:
/// those registered after the commit cannot see what it unlinked, so a long snapshot that
/// began later does not hold the caller up.
///
/// # Panics
///
/// If called inside a transaction or inside a pin, or with a `version` above 2^60, as
/// [`wait_for_readers`].
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, snapshot_mark, wait_for_readers_up_to, TVar};
///
/// let (version, mark) = (TVar::new(0u64), TVar::new(0u64));
/// atomically(|tx| {
///     // SAFETY: the operations neither panic nor touch other memory.
///     unsafe {
///         version.publish_on_commit(tx, |_, v| v);
///         mark.publish_on_commit(tx, |_, _| snapshot_mark());
///     }
///     Ok(())
/// });
/// // Nothing runs elsewhere: returns at once.
/// wait_for_readers_up_to(version.load(), mark.load());
/// ```
pub fn wait_for_readers_up_to(version: u64, mark: u64) {
    assert!(
        !in_transaction(),
        "commute: wait_for_readers called inside a transaction; call it after the transaction"
    );
    assert!(
        !internal::thread::in_load_pin(),
        "commute: waiting for readers (wait_for_readers, Taken::into_inner) inside a pin \
         (pinned, TBox::load_with's closure); two pinned threads waiting so would wait for each \
         other for ever: wait once the pin has ended"
    );
    if version > internal::clock::MAX_OUTSIDE_VERSION {
        internal::clock::not_a_version("wait_for_readers", version);
    }
    internal::reclaim::wait_for_pins_below(version);
    // Snapshot readers do not pin: those registered before the commit may read what it
    // unlinked (through the old values kept for them) until they end.
    internal::history::wait_for_readers_up_to(mark);
}

pub use tbox::TBox;
pub use tvar::{Boxed, Home, Inline, Seen, TVar};
#[doc(hidden)]
pub use tx::{__block_on, pending_async_registrations};

/// Helpers the collections crate (`commute`) shares with the core; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::internal::{Payload, drop_payload, keep_first_panic};

    /// True if the calling thread is inside a pin outside transactions
    /// ([`pinned`](crate::pinned), [`TBox::load_with`](crate::TBox::load_with)'s closure), where
    /// waiting for readers panics.
    #[inline]
    pub fn in_pin() -> bool {
        crate::internal::thread::in_load_pin()
    }
}
pub use tx::{
    Atomically, IRREVOCABLE_AFTER, StmError, StmResult, Transaction, TryAtomically, TxError,
    TxResult, atomically, atomically_async, in_transaction, read_only, try_atomically,
    try_atomically_async,
};
pub use word::{Integer, OwnedWord, Word};
