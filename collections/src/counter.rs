//! `TCounter`: a sharded transactional counter whose increments never conflict.
//!
//! The count is split over shards, each a `TVar<i64>` on its own cache line
//! (`crossbeam_utils::CachePadded`). A thread always updates the same shard: the first time it
//! touches any counter it takes an index from a global round-robin ticket, so threads started one
//! after another get different shards (two share one only when their tickets are a multiple of
//! the shard count apart). Updates use the core's commutative [`TVar::add`]: they are recorded
//! without a read and applied to the latest committed value at commit, so two transactions that
//! only add never abort each other, even on the same shard. The shards only spread the
//! commit-time lock traffic over several cache lines.
//!
//! Reading the total ([`TCounter::get`]) reads every shard, so it conflicts with concurrent adds,
//! as it must: the value it returns is exact for the transaction's serial position.
//!
//! Unique ids ([`TCounter::next_id`]) are not transactional: each thread reserves a block of ids
//! from one global atomic and hands them out locally, so threads meet on that cache line once per
//! block rather than once per id.

use core::cell::Cell;
use core::fmt;

use crossbeam_utils::CachePadded;

use crate::atomic::Atomic;
use crate::debug::{self, Place, Placeholder};
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::{Inline, StmResult, TVar, Transaction, atomically};

/// How many ids a thread reserves from the global allocator at a time.
const ID_BLOCK: u64 = if cfg!(loom) { 2 } else { 1024 };

crate::sync::global! {
    /// Hands out shard indexes to threads, round robin.
    static shard_ticket: AtomicUsize = AtomicUsize::new(0);
}

crate::sync::global! {
    /// The first id of the next unreserved block (ids start at 1, so 0 is never an id).
    static next_id_block: AtomicU64 = AtomicU64::new(1);
}

crate::sync::thread_local! {
    /// This thread's shard index (reduced modulo each counter's shard count).
    static SHARD_INDEX: usize = shard_ticket().fetch_add(1, Ordering::Relaxed);
}

crate::sync::thread_local! {
    /// The ids this thread has reserved: `next..end`.
    static ID_RESERVE: Cell<(u64, u64)> = Cell::new((0, 0));
}

/// The calling thread's shard ticket (reduce it modulo a power-of-two shard count). Shared by
/// every sharded structure of the crate, so a thread uses the same shard index everywhere.
#[inline]
pub(crate) fn thread_shard_index() -> usize {
    SHARD_INDEX.with(|i| *i)
}

/// The default shard count: the available parallelism rounded up to a power of two, at least 2.
pub(crate) fn default_shards() -> usize {
    if cfg!(loom) {
        return 2;
    }
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .next_power_of_two()
        .max(2)
}

/// A transactional counter whose increments never conflict with each other.
///
/// A plain `TVar<i64>` incremented by every transaction (a request counter, a statistics total)
/// makes every pair of concurrent transactions conflict. `TCounter` records
/// [`add`](TCounter::add)s as commutative updates on per-thread shards, so transactions that only
/// add never abort each other; [`get`](TCounter::get) reads the exact total (and so conflicts with
/// concurrent adds, as any read of a changing value must).
///
/// The count is an `i64`, not a `u64` like the [`AtomicU64`](std::sync::atomic::AtomicU64) it
/// replaces, because it can go down: [`decr`](TCounter::decr) and negative
/// [`add`](TCounter::add)s make it a gauge (items in flight, open sessions), and a transaction
/// that decrements before another's increment commits may see it below zero. Overflow wraps.
/// For a count that only goes up (and stays below `i64::MAX`, 9.2 x 10^18),
/// [`load_u64`](TCounter::load_u64) reads it as a `u64`.
///
/// # Examples
///
/// ```
/// use commute::{atomically, TCounter};
/// use std::sync::Arc;
///
/// let requests = Arc::new(TCounter::new());
/// let workers: Vec<_> = (0..2)
///     .map(|_| {
///         let requests = requests.clone();
///         std::thread::spawn(move || {
///             for _ in 0..100 {
///                 atomically(|tx| {
///                     requests.incr(tx); // never aborts the other worker
///                     Ok(())
///                 });
///             }
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(requests.load(), 200);
/// ```
pub struct TCounter {
    shards: Box<[CachePadded<TVar<i64, Inline>>]>,
}

impl Drop for TCounter {
    fn drop(&mut self) {
        let shards = core::mem::take(&mut self.shards);
        if shards.is_empty() {
            return;
        }
        // An attempt (of any thread) may still hold the shards' addresses: they are freed once
        // no `atomically` call running now remains.
        // SAFETY: shards are variables of `i64`, which may be freed on any thread.
        unsafe { commute_stm::drop_after_running_transactions(Box::new(shards)) };
    }
}

impl TCounter {
    /// The most shards a counter takes ([`with_shards`](TCounter::with_shards)): each is a
    /// cache line of its own.
    pub const MAX_SHARDS: usize = 1 << 16;

    /// Creates a counter at zero, with one shard per available core (rounded up to a power of
    /// two, at least 2).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::new();
    /// assert_eq!(c.load(), 0);
    /// assert!(c.shard_count() >= 2);
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        Self::with_shards(default_shards())
    }

    /// Creates a counter at zero with `shards` shards, rounded up to a power of two.
    ///
    /// More shards than threads buys nothing; fewer shards are still conflict-free (adds commute),
    /// but threads then share the lock of a shard at commit.
    ///
    /// # Panics
    ///
    /// If `shards` is 0, or above [`MAX_SHARDS`](TCounter::MAX_SHARDS) once rounded up to a
    /// power of two.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::with_shards(3);
    /// assert_eq!(c.shard_count(), 4);
    /// ```
    #[track_caller]
    pub fn with_shards(shards: usize) -> Self {
        Self::with_value(shards, 0)
    }

    /// A counter of `shards` shards (rounded up) starting at `value`.
    #[track_caller]
    pub(crate) fn with_value(shards: usize, value: i64) -> Self {
        assert!(shards > 0, "commute: a TCounter needs at least one shard");
        // A `let else`, not a closure: `#[track_caller]` does not reach into closures.
        let Some(shards) = shards
            .checked_next_power_of_two()
            .filter(|&rounded| rounded <= Self::MAX_SHARDS)
        else {
            panic!(
                "commute: a TCounter of {shards} shards is too many (at most {})",
                Self::MAX_SHARDS
            )
        };
        let mut vars = Vec::with_capacity(shards);
        // A loop, not a closure, so that `#[track_caller]` gives every shard the user's site.
        for i in 0..shards {
            let initial = if i == 0 { value } else { 0 };
            // SAFETY: the shard goes into the boxed slice below, which never moves its items.
            vars.push(CachePadded::new(unsafe { TVar::new_inline(initial) }));
        }
        TCounter {
            shards: vars.into_boxed_slice(),
        }
    }

    /// A counter with the default shard count, starting at `value`.
    #[track_caller]
    pub(crate) fn starting_at(value: i64) -> Self {
        Self::with_value(default_shards(), value)
    }

    /// Names the counter's variables for statistics and conflict reports.
    ///
    /// # Examples
    ///
    /// ```
    /// let requests = commute::TCounter::new().with_label("requests");
    /// assert_eq!(requests.load(), 0);
    /// ```
    pub fn with_label(mut self, label: &'static str) -> Self {
        // In place: the shards never move once made (see `TVar::new_inline`).
        for shard in self.shards.iter_mut() {
            shard.set_label(label);
        }
        self
    }

    /// The number of shards.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute::TCounter::with_shards(8).shard_count(), 8);
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The calling thread's shard.
    #[inline]
    fn my_shard(&self) -> &TVar<i64, Inline> {
        let index = thread_shard_index();
        // The shard count is a power of two.
        &self.shards[index & (self.shards.len() - 1)]
    }

    /// Adds `delta` (wrapping; negative to subtract) without reading the counter: concurrent adds
    /// never conflict.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TCounter};
    ///
    /// let c = TCounter::new();
    /// atomically(|tx| {
    ///     c.add(tx, 5);
    ///     c.add(tx, -2);
    ///     Ok(())
    /// });
    /// assert_eq!(c.load(), 3);
    /// ```
    #[inline]
    pub fn add(&self, tx: &Transaction, delta: i64) {
        self.my_shard().add(tx, delta);
    }

    /// Adds one, like [`add`](TCounter::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TCounter};
    ///
    /// let c = TCounter::new();
    /// atomically(|tx| {
    ///     c.incr(tx);
    ///     Ok(())
    /// });
    /// assert_eq!(c.load(), 1);
    /// ```
    #[inline]
    pub fn incr(&self, tx: &Transaction) {
        self.add(tx, 1);
    }

    /// Subtracts one, like [`add`](TCounter::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TCounter};
    ///
    /// let c = TCounter::new();
    /// atomically(|tx| {
    ///     c.decr(tx);
    ///     Ok(())
    /// });
    /// assert_eq!(c.load(), -1);
    /// ```
    #[inline]
    pub fn decr(&self, tx: &Transaction) {
        self.add(tx, -1);
    }

    /// The exact total, inside a transaction (including this transaction's own adds).
    ///
    /// It reads every shard, so it conflicts with adds committed concurrently: call it only where
    /// the transaction really depends on the total.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TCounter};
    ///
    /// let c = TCounter::new();
    /// let seen = atomically(|tx| {
    ///     c.add(tx, 2);
    ///     c.get(tx)
    /// });
    /// assert_eq!(seen, 2);
    /// ```
    pub fn get(&self, tx: &Transaction) -> StmResult<i64> {
        let mut total = 0i64;
        for shard in self.shards.iter() {
            total = total.wrapping_add(shard.read(tx)?);
        }
        Ok(total)
    }

    /// The total, outside transactions: runs [`get`](TCounter::get) as its own transaction, so
    /// the value is one the counter really had (all shards read at one serial point).
    ///
    /// # Panics
    ///
    /// If called inside a transaction (transactions do not nest): use [`get`](TCounter::get)
    /// there.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::new();
    /// c.atomic().add(7);
    /// assert_eq!(c.load(), 7);
    /// ```
    #[track_caller]
    pub fn load(&self) -> i64 {
        atomically(|tx| self.get(tx))
    }

    /// [`load`](TCounter::load) as a `u64`, for a count that never goes below zero (what an
    /// `AtomicU64` counter held, up to `i64::MAX`).
    ///
    /// # Panics
    ///
    /// If the total is negative: more decrements than increments have committed (a bug in a
    /// count that should never go down, so it is reported rather than hidden by saturating at
    /// zero or wrapping), or the count wrapped past `i64::MAX`. Also if called inside a
    /// transaction (use [`get`](TCounter::get) there).
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = commute::TCounter::new();
    /// hits.atomic().add(3);
    /// let n: u64 = hits.load_u64();
    /// assert_eq!(n, 3);
    /// ```
    #[track_caller]
    pub fn load_u64(&self) -> u64 {
        let total = self.load();
        // A `match`, not a closure: `#[track_caller]` does not reach into closures.
        match u64::try_from(total) {
            Ok(count) => count,
            Err(_) => panic!(
                "TCounter::load_u64: the count is negative ({total}): more decrements than \
                 increments, or it wrapped past i64::MAX"
            ),
        }
    }

    /// A process-wide unique id (never 0), without conflicts and without a transaction.
    ///
    /// Each thread reserves blocks of ids from one global atomic and hands them out locally, so
    /// concurrent callers rarely touch shared memory. Ids are distinct across all threads and
    /// increase within a thread; across threads they are only roughly increasing (each thread
    /// works through its own block). Ids are not rolled back: one taken by a transaction attempt
    /// that is later re-run is skipped, never handed out again, so ids have gaps.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::TCounter;
    ///
    /// let a = TCounter::next_id();
    /// let b = TCounter::next_id();
    /// assert!(a != 0 && b > a);
    /// ```
    pub fn next_id() -> u64 {
        ID_RESERVE.with(|reserve| {
            let (next, end) = reserve.get();
            if next < end {
                reserve.set((next + 1, end));
                next
            } else {
                let start = next_id_block().fetch_add(ID_BLOCK, Ordering::Relaxed);
                reserve.set((start + 1, start + ID_BLOCK));
                start
            }
        })
    }

    /// A view whose methods each run one operation as its own transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::new();
    /// c.atomic().incr();
    /// assert_eq!(c.atomic().get(), 1);
    /// ```
    pub fn atomic(&self) -> Atomic<'_, Self> {
        Atomic(self)
    }
}

impl Atomic<'_, TCounter> {
    /// Adds `delta` in its own transaction; see [`TCounter::add`].
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::new();
    /// c.atomic().add(-4);
    /// assert_eq!(c.load(), -4);
    /// ```
    #[track_caller]
    pub fn add(self, delta: i64) {
        crate::atomic::assert_outside_transaction();
        // One shard, read and written alone: the commit of the one-variable transaction,
        // without a transaction's bookkeeping.
        self.0.my_shard().modify_alone(|v| v.wrapping_add(delta));
    }

    /// Adds one in its own transaction; see [`TCounter::incr`].
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::new();
    /// c.atomic().incr();
    /// assert_eq!(c.load(), 1);
    /// ```
    #[track_caller]
    pub fn incr(self) {
        self.add(1);
    }

    /// Subtracts one in its own transaction; see [`TCounter::decr`].
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::new();
    /// c.atomic().decr();
    /// assert_eq!(c.load(), -1);
    /// ```
    #[track_caller]
    pub fn decr(self) {
        self.add(-1);
    }

    /// The exact total, in its own transaction; the same as [`TCounter::load`].
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = commute::TCounter::new();
    /// assert_eq!(c.atomic().get(), 0);
    /// ```
    #[track_caller]
    pub fn get(self) -> i64 {
        self.0.load()
    }
}

impl Default for TCounter {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TCounter {
    /// Shows the sum of the shards' committed values (each read on its own, so under concurrent
    /// updates it may mix states; use [`TCounter::load`] for an exact total). Inside a
    /// transaction, which may not read outside itself, shows `<in a transaction>` instead;
    /// inside a [`TMap`](crate::TMap)'s `Debug` (a map of counters), the value in the map's
    /// snapshot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TCounter");
        debug::show(|place| match place {
            Place::Outside => {
                let total = self
                    .shards
                    .iter()
                    .fold(0i64, |sum, shard| sum.wrapping_add(shard.load()));
                d.field("value", &total);
            }
            // A snapshot's reads do not fail.
            Place::Snapshot(tx) => match self.get(tx) {
                Ok(total) => {
                    d.field("value", &total);
                }
                Err(_) => {
                    d.field("value", &Placeholder);
                }
            },
            Place::InTransaction => {
                d.field("value", &Placeholder);
            }
        });
        d.field("shards", &self.shards.len()).finish()
    }
}
