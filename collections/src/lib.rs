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
//! Long reads of shared state (a status page that sums a map, a report) run in [`read_only`]:
//! one consistent snapshot, one attempt, and writers never wait for it (see
//! [`TMap`'s snapshots](TMap#snapshots-reading-the-whole-map-under-updates)).
//!
//! In async code, [`atomically_async`] runs the same transactions in a future whose `retry`
//! waits on the task's waker instead of blocking the thread (any executor), and the queues have
//! waiting forms on it: `q.atomic().pop_wait_async().await`, and
//! [`push_async`](Atomic::push_async) for the bounded queue.
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
//!
//! # Swapping in a collection
//!
//! Each collection takes the place of a lock-based or atomic structure; its operations take the
//! transaction `tx` (or none, through `.atomic()`, a transaction of its own per call):
//!
//! | before | after |
//! |---|---|
//! | `Mutex<HashMap<K, V>>`: `map.lock().unwrap().insert(k, v)` | [`TMap<K, V>`](TMap): `map.insert(tx, k, v)?` |
//! | `Mutex<VecDeque<T>>`: `q.lock().unwrap().push_back(x)` | [`TQueue<T>`](TQueue): `q.push(tx, x)` |
//! | a job queue of `Box<dyn FnOnce() + Send>`: `q.lock().unwrap().pop_front()` | [`TQueue`]: `q.take(tx)?` in the transaction, then [`Taken::into_inner`] (or `q.atomic().take()`): no `Clone` needed |
//! | a map of one-shot senders (`Mutex<HashMap<K, Sender>>`): `map.lock().unwrap().remove(&k)` | [`TMap<K, Owned<Sender>>`](Owned): `map.remove(tx, &k)?` in the transaction, then [`Taken::into_inner`]: no `Clone` needed |
//! | `AtomicU64`: `n.fetch_add(1, Relaxed)` | [`TCounter`]: `n.incr(tx)` |
//! | a bounded channel: `tx.send(x)`, `rx.recv()` | [`TBoundedQueue<T>`](TBoundedQueue): `q.send(tx, x)?`, `q.recv(tx)?` (or `push`, `pop_wait` when it is never closed) |
//!
//! What changes is that several operations, on several structures, now make one atomic step:
//!
//! ```
//! use commute::{atomically, TBoundedQueue, TCounter, TMap, TQueue};
//!
//! let stock: TMap<&str, u32> = [("apple", 3)].into_iter().collect(); // Mutex<HashMap>
//! let orders = TQueue::new(); // Mutex<VecDeque>
//! let sold = TCounter::new(); // AtomicU64
//! let shipping = TBoundedQueue::with_capacity(16); // a bounded channel
//! atomically(|tx| {
//!     let left = stock.get(tx, "apple")?.unwrap_or(0);
//!     stock.insert(tx, "apple", left - 1)?;
//!     orders.push(tx, "apple");
//!     sold.incr(tx);
//!     shipping.push(tx, "apple") // blocks (retries) while full
//! });
//! assert_eq!(stock.atomic().get("apple"), Some(2));
//! assert_eq!(orders.atomic().iter(), ["apple"]);
//! assert_eq!(sold.load_u64(), 1);
//! assert_eq!(shipping.atomic().pop_wait(), "apple"); // a receiver's recv()
//! ```
//!
//! [`TQueue`], [`TMap`] and [`TSet`] implement std's `Default`, `FromIterator`, `Extend` (all
//! items in one transaction) and `IntoIterator` by value (clones taken in one transaction, then
//! the collection is dropped as usual); [`TBoundedQueue`] `Extend` and `IntoIterator` only, as
//! it needs a capacity. There is no `IntoIterator` for `&TQueue` and the like, since reading a shared
//! collection needs a transaction: call `iter(tx)` inside one, or `.atomic().iter()`.
//!
//! # Blocking: `retry`, `or_else`, `pop_wait`, `close`
//!
//! A transaction that cannot go on yet calls [`Transaction::retry`]: the attempt is rolled
//! back, and runs again once a variable it read has changed. Blocking operations are built on
//! it ([`TQueue::pop_wait`], [`TBoundedQueue::push`]), and [`Transaction::or_else`] tries an
//! alternative instead of waiting:
//!
//! ```
//! use commute::{atomically, TQueue};
//! use std::sync::Arc;
//!
//! let (urgent, normal) = (Arc::new(TQueue::new()), Arc::new(TQueue::new()));
//! let worker = {
//!     let (urgent, normal) = (urgent.clone(), normal.clone());
//!     // Waits until either queue has an item, urgent ones first.
//!     std::thread::spawn(move || {
//!         atomically(|tx| tx.or_else(|tx| urgent.pop_wait(tx), |tx| normal.pop_wait(tx)))
//!     })
//! };
//! normal.atomic().push("report");
//! assert_eq!(worker.join().unwrap(), "report");
//! ```
//!
//! As channels, both queues can be [closed](TQueue::close): sends then give the item back
//! ([`Closed`]), and [`recv`](TQueue::recv) drains the items left before it returns `None`.
//! [`Transaction::retry_until`] waits with a deadline; the queues' `recv_until` and
//! `.atomic().recv_timeout(d)` use it ([`RecvTimeoutError`]). A thread stuck in a blocking
//! call is asleep in `retry`: [`blocked_transactions`] says on what, since when (see
//! "Debugging a hang" in [`Transaction::retry`], and [`TaskPool::watcher`] for
//! a pool).
//!
//! # Errors: `try_atomically`, `TxError`, `tx.abort`
//!
//! [`atomically`]'s closure returns [`StmResult`], whose error is commute's own signal (a
//! conflict, a retry), passed on with `?`. For errors of your own, use [`try_atomically`]: its
//! closure returns [`TxResult<T, E>`](TxResult), `tx.abort(e)` (or `Err(TxError::Abort(e))`)
//! rolls the whole transaction back, and `try_atomically` returns `Err(e)`:
//!
//! ```
//! use commute::{try_atomically, TMap, TxError};
//!
//! let accounts: TMap<&str, u64> = [("ada", 50), ("bob", 0)].into_iter().collect();
//! let transfer = |from, to, amount: u64| {
//!     try_atomically(|tx| {
//!         let balance = accounts.get(tx, from)?.ok_or(TxError::Abort("no such account"))?;
//!         accounts.upsert(tx, to, || 0, |b| *b += amount)?; // rolled back by an abort below
//!         if balance < amount {
//!             return tx.abort("insufficient funds");
//!         }
//!         accounts.insert(tx, from, balance - amount)?;
//!         Ok(())
//!     })
//! };
//! assert_eq!(transfer("ada", "bob", 80), Err("insufficient funds"));
//! assert_eq!(transfer("eve", "bob", 1), Err("no such account"));
//! assert_eq!(transfer("ada", "bob", 20), Ok(()));
//! assert_eq!(accounts.atomic().get("bob"), Some(20));
//! ```
//!
//! # Where destructors run
//!
//! Never inside a transaction, so a `Drop` may itself use commute:
//!
//! - a value a commit replaced or removed (a [`TBox`]'s old value, a [`TMap`] entry, a popped
//!   [`TQueue`] item, whose pop returned a clone) is dropped by a later reclamation pass, once
//!   no running transaction can still read it;
//! - a [`TQueue`] item removed by `take` is not dropped at all: it moves out of its [`Taken`]
//!   handle after the commit (or, if the handle is dropped unused, goes as a popped item); so
//!   does an [`Owned`] map value that `remove` or `insert` hands back (or, with its handle
//!   dropped unused, it goes with the last bucket that held it);
//! - a value written by an attempt that is rolled back is dropped when the attempt ends;
//! - what the collections make and let go of inside a transaction or a one-call operation (a
//!   one-call form's copy of your value that it did not keep, the copies a panicking `Clone` or
//!   `Hash` leaves), and what an attempt that does not commit returned, are dropped once the
//!   attempt, or the one-call operation, has ended ([`drop_outside`]); a key or value that you
//!   pass to an operation in your own transaction and that it does not keep (`insert_if_absent`
//!   of a present key) is dropped there, as any argument;
//! - a variable or collection dropped while other threads are inside [`atomically`] keeps its
//!   values until those calls have returned (an attempt may still hold it), and a reclamation
//!   pass drops them; with no such call, at once.
//!
//! The details are in [`TBox`] ("Where and when a value is dropped"), [`TMap`] ("Where and
//! when keys and values are dropped") and [`TQueue`] ("When items are dropped").
//!
//! ```
//! use commute::{atomically, TBox};
//! use std::sync::Arc;
//!
//! let shared = Arc::new("config v1");
//! let current = TBox::new(shared.clone());
//! atomically(|tx| {
//!     current.write(tx, Arc::new("config v2"));
//!     Ok(())
//! });
//! // The replaced value is not dropped by the commit: a reclamation pass drops it later.
//! drop(current);
//! # while Arc::strong_count(&shared) > 1 { commute::reclaim_retired(); std::thread::yield_now(); }
//! assert_eq!(Arc::strong_count(&shared), 1);
//! ```

pub use commute_stm::*;

mod async_ops;
mod atomic;
mod blocks;
mod bounded;
mod closed;
mod counter;
mod debug;
mod map;
#[cfg(not(loom))]
mod pool;
// Under loom, of the pool only its commit order and its parking of idle workers, for the
// models of `__loom::Order` and `__loom::Sleepers`.
#[cfg(loom)]
#[allow(dead_code)]
#[path = "pool/order.rs"]
mod order;
#[cfg(loom)]
#[path = "pool/park.rs"]
mod park;
mod queue;
mod set;
mod sync;
mod unkept;

pub use atomic::Atomic;
pub use bounded::TBoundedQueue;
pub use closed::{Closed, RecvTimeoutError};
pub use counter::TCounter;
pub use map::{Change, MapValue, Owned, TMap};
#[cfg(not(loom))]
pub use pool::{PoolReport, PoolWatcher, TaskCtx, TaskId, TaskPanic, TaskPool};
pub use queue::{TQueue, Taken};
pub use set::TSet;

/// Internals that loom's models check from outside the crate (`loom-tests`); compiled under
/// `--cfg loom` only, and no API.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    /// The commit order of `TaskPool`'s ordered mode (`pool/order.rs`) without its
    /// transactions: the turn, and the handshake that parks a worker until its turn comes.
    pub struct Order(crate::order::Order);

    impl core::fmt::Debug for Order {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Order").finish_non_exhaustive()
        }
    }

    impl Order {
        /// An order whose first turn is `first`, for `workers` workers.
        pub fn new(first: u64, workers: usize) -> Self {
            Order(crate::order::Order::new(first, workers))
        }

        /// Records the calling thread as worker `worker`.
        pub fn register(&self, worker: usize) {
            self.0.register(worker);
        }

        /// Blocks worker `worker` until the turn is `seq`.
        pub fn wait_turn(&self, seq: u64, worker: usize) {
            self.0
                .wait_turn(seq, worker, None)
                .expect("outside a transaction nothing gives way");
        }

        /// Passes the turn from `seq` to `seq + 1`, waking the worker parked for it.
        pub fn advance(&self, seq: u64) {
            self.0.advance(seq);
        }
    }

    /// The parked workers of a `TaskPool` run (`pool/park.rs`), and the handshake that wakes
    /// them when tasks are pushed or the run's last task finishes.
    pub struct Sleepers(crate::park::Sleepers);

    impl core::fmt::Debug for Sleepers {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Sleepers").finish_non_exhaustive()
        }
    }

    impl Default for Sleepers {
        fn default() -> Self {
            Sleepers(crate::park::Sleepers::new())
        }
    }

    impl Sleepers {
        /// Wakes up to `tasks` parked workers, after the caller pushed that many tasks.
        pub fn wake(&self, tasks: usize) {
            self.0.wake(tasks);
        }

        /// Wakes every parked worker, after the caller finished the run's last task.
        pub fn wake_all(&self) {
            self.0.wake_all();
        }

        /// Parks the caller until `has_work()` (true) or `finished()` (false).
        pub fn park(&self, finished: impl Fn() -> bool, has_work: impl Fn() -> bool) -> bool {
            self.0.park(finished, has_work)
        }
    }

    /// A `TaskPool` worker's next task (`pool/park.rs`): the front of `queues[home]`, else
    /// half of another queue's back, waking `sleepers` for stolen tasks kept for later.
    pub fn next_task<T>(
        queues: &[crossbeam_utils::CachePadded<
            crate::sync::Mutex<std::collections::VecDeque<T>>,
        >],
        home: usize,
        sleepers: &Sleepers,
    ) -> Option<T> {
        crate::park::next_task(queues, home, &sleepers.0)
    }
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The core's handling of panic payloads that are not passed on (`drop_payload` is the
/// pool's, which is compiled out under loom).
#[cfg(not(loom))]
pub(crate) use commute_stm::__private::drop_payload;
pub(crate) use commute_stm::__private::{Payload, keep_first_panic};
