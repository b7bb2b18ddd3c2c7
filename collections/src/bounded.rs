//! `TBoundedQueue<T>`: a `TQueue` with a capacity, whose accounting does not make every producer
//! conflict with every consumer.
//!
//! Free capacity is kept as *credits* spread over shards (`CachePadded<TVar<i64>>`, one per
//! thread shard, as in `TCounter`). A push takes a credit from its own thread's shard (a read and
//! a write of that shard only); when that shard is empty it borrows from the others, and when all
//! are empty it blocks through `retry`. A pop gives the credit back, as a commutative add, to the
//! shard of the thread that pushed the item (each item remembers it). So producers never conflict
//! with each other on the accounting, and a producer can only conflict with a consumer that is
//! returning that producer's own credit at the same moment — not with every consumer.

use core::fmt;
use core::ptr;

use crossbeam_utils::CachePadded;

use crate::atomic::Atomic;
use crate::closed::{
    Closed, RecvTimeoutError, pop_wait_on_closed, push_on_closed, take_wait_on_closed,
};
use crate::counter::thread_shard_index;
use crate::debug::{self, Place, Placeholder};
use crate::queue::{TQueue, Taken, assert_can_take_alone};
use crate::unkept::Unkept;
use crate::{Inline, StmResult, TVar, Transaction, atomically, try_atomically};
use std::time::{Duration, Instant};

/// A transactional FIFO queue with a fixed capacity: [`push`](TBoundedQueue::push) blocks while
/// it is full.
///
/// Pushes and pops keep [`TQueue`]'s conflict profile; the capacity accounting is sharded (see
/// the module notes in the source), so it does not make every producer conflict with every
/// consumer.
///
/// Items are dropped as in a [`TQueue`] (see [when items are
/// dropped](TQueue#when-items-are-dropped)): a pop returns a clone, and the queue's copy is
/// dropped by the popping thread's next reclamation pass once no transaction that began before
/// the pop committed can still read it, without waiting for another pop; a pop that is rolled
/// back drops nothing but its clone; items left in the queue are dropped with it (see
/// [`TQueue`] for when); the item of a rolled-back push is dropped when its attempt ends. An
/// item removed by [`take`](TBoundedQueue::take) moves out through its [`Taken`] handle
/// instead, or is dropped as a popped one if the handle is dropped unused.
///
/// # Examples
///
/// ```
/// use commute::{atomically, TBoundedQueue};
///
/// let q = TBoundedQueue::with_capacity(2);
/// assert_eq!(q.atomic().try_push('a'), Ok(()));
/// assert_eq!(q.atomic().try_push('b'), Ok(()));
/// assert_eq!(q.atomic().try_push('c'), Err('c')); // full
/// assert_eq!(atomically(|tx| q.pop(tx)), Some('a'));
/// assert_eq!(q.atomic().try_push('c'), Ok(()));
/// ```
pub struct TBoundedQueue<T: 'static> {
    queue: TQueue<(T, u32)>,
    credits: Box<[CachePadded<TVar<i64, Inline>>]>,
    capacity: usize,
}

impl<T: 'static> Drop for TBoundedQueue<T> {
    fn drop(&mut self) {
        let credits = core::mem::take(&mut self.credits);
        // An attempt (of any thread) may still hold the credit shards' addresses: they are
        // freed once no `atomically` call running now remains. (The queue frees its own.)
        // SAFETY: shards are variables of `i64`, which may be freed on any thread.
        unsafe { commute_stm::drop_after_running_transactions(Box::new(credits)) };
    }
}

impl<T: Send + 'static> TBoundedQueue<T> {
    /// Creates an empty queue that holds at most `capacity` items.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TBoundedQueue<u8> = commute::TBoundedQueue::with_capacity(16);
    /// assert_eq!(q.capacity(), 16);
    /// ```
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "TBoundedQueue::with_capacity: the capacity must be at least 1"
        );
        let shards = crate::counter::default_shards();
        let mut credits = Vec::with_capacity(shards);
        // A loop, not a closure, so that `#[track_caller]` gives every shard the user's site.
        for i in 0..shards {
            let share = capacity / shards + usize::from(i < capacity % shards);
            // SAFETY: the shards live in the boxed slice made below, which never moves them.
            credits.push(CachePadded::new(unsafe { TVar::new_inline(share as i64) }));
        }
        TBoundedQueue {
            queue: TQueue::new(),
            credits: credits.into_boxed_slice(),
            capacity,
        }
    }

    /// The most items the queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute::TBoundedQueue::<u8>::with_capacity(3).capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn shard(&self) -> usize {
        thread_shard_index() & (self.credits.len() - 1)
    }

    /// Takes one credit, own shard first; the caller's own shard (where the pop of the item
    /// gives the credit back, whichever shard it came from), or `None` if the queue is full.
    fn take_credit(&self, tx: &Transaction) -> StmResult<Option<usize>> {
        let n = self.credits.len();
        let own = self.shard();
        for k in 0..n {
            let i = (own + k) & (n - 1);
            let credit = self.credits[i].read(tx)?;
            if credit > 0 {
                self.credits[i].write(tx, credit - 1);
                return Ok(Some(own));
            }
        }
        Ok(None)
    }

    /// Appends `item`, or gives it back if the queue is full or [closed](TBoundedQueue::close)
    /// ([`is_closed`](TBoundedQueue::is_closed) tells which).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TBoundedQueue};
    ///
    /// let q = TBoundedQueue::with_capacity(1);
    /// assert_eq!(atomically(|tx| q.try_push(tx, 1)), Ok(()));
    /// assert_eq!(atomically(|tx| q.try_push(tx, 2)), Err(2));
    /// ```
    pub fn try_push(&self, tx: &Transaction, item: T) -> StmResult<Result<(), T>> {
        let item = Unkept::new(item);
        if self.queue.is_closed(tx)? {
            return Ok(Err(item.take()));
        }
        Ok(self.push_open(tx, item)?.map_err(Unkept::take))
    }

    /// Appends `item` if there is room, without looking at `closed` (the caller has).
    ///
    /// The item is let go of outside the transaction ([`Unkept`]) if a conflict stops this
    /// attempt, or if the caller does not keep it when it is given back (a push that waits for
    /// room): it may be a one-call form's copy, whose `Drop` is the user's.
    fn push_open(&self, tx: &Transaction, item: Unkept<T>) -> StmResult<Result<(), Unkept<T>>> {
        match self.take_credit(tx)? {
            Some(shard) => {
                self.queue.push_open(tx, (item.take(), shard as u32));
                Ok(Ok(()))
            }
            None => Ok(Err(item)),
        }
    }

    /// Appends `item`, blocking (through [`Transaction::retry`]) while the queue is full.
    ///
    /// # Errors
    ///
    /// As for [`try_push`](TBoundedQueue::try_push), plus the retry signal while full.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TBoundedQueue};
    /// use std::sync::Arc;
    ///
    /// let q = Arc::new(TBoundedQueue::with_capacity(1));
    /// q.atomic().push(1);
    /// let producer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || q.atomic().push(2)) // blocks until there is room
    /// };
    /// assert_eq!(q.atomic().pop_wait(), 1);
    /// producer.join().unwrap();
    /// assert_eq!(q.atomic().pop_wait(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If the queue is [closed](TBoundedQueue::close), also while this push waits for room:
    /// on a queue that may be closed, use [`send`](TBoundedQueue::send), which gives the item
    /// back instead.
    #[track_caller]
    pub fn push(&self, tx: &Transaction, item: T) -> StmResult<()> {
        let item = Unkept::new(item);
        if self.queue.is_closed(tx)? {
            push_on_closed("TBoundedQueue");
        }
        match self.push_open(tx, item)? {
            Ok(()) => Ok(()),
            Err(_) => tx.retry(),
        }
    }

    /// Appends `item`, blocking while the queue is full and open; gives it back once the
    /// queue is [closed](TBoundedQueue::close) (a send blocked on a full queue wakes up).
    ///
    /// # Errors
    ///
    /// As for [`try_push`](TBoundedQueue::try_push), plus the retry signal while full and
    /// open; `Ok(Err(Closed(item)))` if the queue is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, Closed, TBoundedQueue};
    /// use std::sync::Arc;
    ///
    /// let q = Arc::new(TBoundedQueue::with_capacity(1));
    /// q.atomic().push(1);
    /// let producer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || atomically(|tx| q.send(tx, 2))) // full: blocks
    /// };
    /// q.atomic().close(); // wakes it
    /// assert_eq!(producer.join().unwrap(), Err(Closed(2)));
    /// assert_eq!(q.atomic().recv(), Some(1));
    /// assert_eq!(q.atomic().recv(), None);
    /// ```
    pub fn send(&self, tx: &Transaction, item: T) -> StmResult<Result<(), Closed<T>>> {
        let item = Unkept::new(item);
        if self.queue.is_closed(tx)? {
            return Ok(Err(Closed(item.take())));
        }
        match self.push_open(tx, item)? {
            Ok(()) => Ok(Ok(())),
            Err(_) => tx.retry(),
        }
    }

    /// Closes the queue, as [`TQueue::close`]: from its commit on, sends give items back,
    /// pushes panic, and receivers drain the items left, then [`recv`](TBoundedQueue::recv)
    /// returns `None`. Wakes every transaction blocked in `send` or `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TBoundedQueue};
    ///
    /// let q = TBoundedQueue::with_capacity(2);
    /// q.atomic().push(1);
    /// atomically(|tx| Ok(q.close(tx)));
    /// assert_eq!(q.atomic().recv(), Some(1));
    /// assert_eq!(q.atomic().recv(), None);
    /// ```
    pub fn close(&self, tx: &Transaction) {
        self.queue.close(tx);
    }

    /// True if the queue is [closed](TBoundedQueue::close).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TBoundedQueue<u8> = commute::TBoundedQueue::with_capacity(1);
    /// assert!(!commute::atomically(|tx| q.is_closed(tx)));
    /// ```
    pub fn is_closed(&self, tx: &Transaction) -> StmResult<bool> {
        self.queue.is_closed(tx)
    }

    /// True if the queue holds [`capacity`](TBoundedQueue::capacity) items: a
    /// [`push`](TBoundedQueue::push) would block. Reads the free capacity of every shard, so
    /// it conflicts with concurrent pushes and pops.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// assert!(!commute::atomically(|tx| q.is_full(tx)));
    /// q.atomic().push('x');
    /// assert!(commute::atomically(|tx| q.is_full(tx)));
    /// ```
    pub fn is_full(&self, tx: &Transaction) -> StmResult<bool> {
        for credit in self.credits.iter() {
            if credit.read(tx)? > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes the front item, or returns `None` if the queue is empty, without cloning it, as
    /// [`TQueue::take`] does: the item moves out through the [`Taken`] handle once the
    /// transaction has committed ([`Taken::into_inner`]). The credit goes back with the commit.
    ///
    /// # Errors
    ///
    /// As for [`try_push`](TBoundedQueue::try_push).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TBoundedQueue};
    ///
    /// let q = TBoundedQueue::with_capacity(1);
    /// q.atomic().push(Box::new(7));
    /// let taken = atomically(|tx| q.take(tx)).unwrap();
    /// assert_eq!(q.atomic().try_push(Box::new(8)), Ok(()), "the credit is back");
    /// assert_eq!(taken.into_inner(), Box::new(7));
    /// ```
    pub fn take(&self, tx: &Transaction) -> StmResult<Option<Taken<T>>> {
        let mut shard = 0u32;
        let taken = self.queue.take_map(tx, |stored: *mut (T, u32)| {
            // SAFETY: `take_map` hands over a pointer to a live stored item; the shard is a
            // `u32`, read without forming a reference to the item (which may not be `Sync`).
            unsafe {
                shard = ptr::read(&raw const (*stored).1);
                &raw mut (*stored).0
            }
        })?;
        if taken.is_some() {
            // Give the credit back to the producer's shard, without reading it.
            self.credits[shard as usize].add(tx, 1);
        }
        Ok(taken)
    }

    /// Removes the front item as [`take`](TBoundedQueue::take) does, blocking while the queue
    /// is empty.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop), plus the retry signal while empty.
    ///
    /// # Panics
    ///
    /// If the queue is [closed](TBoundedQueue::close) and empty (it would block forever): a
    /// consumer of a queue that may be closed uses [`take`](TBoundedQueue::take) and
    /// [`is_closed`](TBoundedQueue::is_closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(4);
    /// q.atomic().push(String::from("x"));
    /// assert_eq!(commute::atomically(|tx| q.take_wait(tx)).into_inner(), "x");
    /// ```
    #[track_caller]
    pub fn take_wait(&self, tx: &Transaction) -> StmResult<Taken<T>> {
        match self.take_unless_closed(tx)? {
            Some(taken) => Ok(taken),
            None => take_wait_on_closed("TBoundedQueue"),
        }
    }

    /// [`take_wait`](TBoundedQueue::take_wait), with `None` for a closed and empty queue: the
    /// one-call form panics outside its transaction, where `#[track_caller]` names its caller.
    fn take_unless_closed(&self, tx: &Transaction) -> StmResult<Option<Taken<T>>> {
        match self.take(tx)? {
            Some(taken) => Ok(Some(taken)),
            None if self.queue.is_closed(tx)? => Ok(None),
            None => tx.retry(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> TBoundedQueue<T> {
    /// Removes and returns the front item, or `None` if the queue is empty.
    ///
    /// As [`TQueue::pop`]: the item returned is a clone, and the queue's copy is dropped after
    /// the pop commits, by the popping thread's next reclamation pass once no transaction that
    /// began before the commit can still read it. The credit goes back with the commit.
    ///
    /// # Errors
    ///
    /// As for [`try_push`](TBoundedQueue::try_push).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(4);
    /// q.atomic().push(7);
    /// assert_eq!(q.atomic().pop(), Some(7));
    /// assert_eq!(q.atomic().pop(), None);
    /// ```
    pub fn pop(&self, tx: &Transaction) -> StmResult<Option<T>> {
        Ok(self.queue.pop(tx)?.map(|(item, shard)| {
            // Give the credit back to the producer's shard, without reading it.
            self.credits[shard as usize].add(tx, 1);
            item
        }))
    }

    /// Removes and returns the front item, blocking while the queue is empty.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop), plus the retry signal while empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(4);
    /// q.atomic().push(7);
    /// assert_eq!(commute::atomically(|tx| q.pop_wait(tx)), 7);
    /// ```
    ///
    /// # Panics
    ///
    /// If the queue is [closed](TBoundedQueue::close) and empty (it would block forever): a
    /// consumer of a queue that may be closed uses [`recv`](TBoundedQueue::recv).
    #[track_caller]
    pub fn pop_wait(&self, tx: &Transaction) -> StmResult<T> {
        match self.recv(tx)? {
            Some(item) => Ok(item),
            None => pop_wait_on_closed("TBoundedQueue"),
        }
    }

    /// Removes and returns the front item, blocking while the queue is empty and open;
    /// `None` once it is [closed](TBoundedQueue::close) and empty.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop), plus the retry signal while empty and open.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TBoundedQueue};
    ///
    /// let q = TBoundedQueue::with_capacity(2);
    /// q.atomic().push(5);
    /// q.atomic().close();
    /// assert_eq!(atomically(|tx| q.recv(tx)), Some(5));
    /// assert_eq!(atomically(|tx| q.recv(tx)), None);
    /// ```
    pub fn recv(&self, tx: &Transaction) -> StmResult<Option<T>> {
        match self.pop(tx)? {
            Some(item) => Ok(Some(item)),
            None if self.queue.is_closed(tx)? => Ok(None),
            None => tx.retry(),
        }
    }

    /// [`recv`](TBoundedQueue::recv) with a deadline, as [`TQueue::recv_until`].
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop), plus the retry signal while empty and open before
    /// the deadline; `Ok(Err(RecvTimeoutError::Timeout))` once it has passed,
    /// `Ok(Err(RecvTimeoutError::Closed))` if the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, RecvTimeoutError, TBoundedQueue};
    /// use std::time::{Duration, Instant};
    ///
    /// let q: TBoundedQueue<u8> = TBoundedQueue::with_capacity(1);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(atomically(|tx| q.recv_until(tx, deadline)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_until(
        &self,
        tx: &Transaction,
        deadline: Instant,
    ) -> StmResult<Result<T, RecvTimeoutError>> {
        match self.pop(tx)? {
            Some(item) => Ok(Ok(item)),
            None if self.queue.is_closed(tx)? => Ok(Err(RecvTimeoutError::Closed)),
            None => {
                tx.retry_until(deadline)?;
                Ok(Err(RecvTimeoutError::Timeout))
            }
        }
    }

    /// Removes every item, front to back, in this transaction (repeated
    /// [`pop`](TBoundedQueue::pop)s: the credits go back with the commit).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut q = commute::TBoundedQueue::with_capacity(4);
    /// q.extend([1, 2, 3]);
    /// assert_eq!(commute::atomically(|tx| q.drain(tx)), [1, 2, 3]);
    /// assert_eq!(q.atomic().len(), 0);
    /// ```
    pub fn drain(&self, tx: &Transaction) -> StmResult<Vec<T>> {
        let drained = self.queue.drain(tx)?;
        Ok(drained
            .into_iter()
            .map(|(item, shard)| {
                // As in `pop`: each item's credit goes back to its producer's shard.
                self.credits[shard as usize].add(tx, 1);
                item
            })
            .collect())
    }

    /// A clone of the front item, without removing it.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(4);
    /// q.atomic().push(7);
    /// assert_eq!(q.atomic().peek(), Some(7));
    /// ```
    pub fn peek(&self, tx: &Transaction) -> StmResult<Option<T>> {
        Ok(self.queue.peek(tx)?.map(|(item, _)| item))
    }
}

impl<T: Send + Sync + 'static> TBoundedQueue<T> {
    /// Calls `f` on every item, front to back, as [`TQueue::for_each`] does.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TBoundedQueue};
    ///
    /// let q = TBoundedQueue::with_capacity(4);
    /// q.atomic().push(2);
    /// q.atomic().push(3);
    /// let mut product = 1;
    /// atomically(|tx| {
    ///     product = 1;
    ///     q.for_each(tx, |n| product *= n)
    /// });
    /// assert_eq!(product, 6);
    /// ```
    pub fn for_each<'a>(&'a self, tx: &'a Transaction, mut f: impl FnMut(&'a T)) -> StmResult<()> {
        self.queue.for_each(tx, |(item, _)| f(item))
    }
}

impl<T: Clone + Send + Sync + 'static> TBoundedQueue<T> {
    /// Clones of every item, front to back (see [`TQueue::for_each`]).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TBoundedQueue};
    ///
    /// let q = TBoundedQueue::with_capacity(4);
    /// q.atomic().push('x');
    /// assert_eq!(atomically(|tx| q.iter(tx)), ['x']);
    /// ```
    pub fn iter(&self, tx: &Transaction) -> StmResult<Vec<T>> {
        // Copies: let go of outside the transaction if a conflict stops the walk.
        let mut items = Unkept::new(Vec::new());
        self.for_each(tx, |item| items.push(item.clone()))?;
        Ok(items.take())
    }
}

impl<T: Send + 'static> TBoundedQueue<T> {
    /// The number of items (conflicts with concurrent pushes and pops).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(4);
    /// q.atomic().push(7);
    /// assert_eq!(commute::atomically(|tx| q.len(tx)), 1);
    /// ```
    pub fn len(&self, tx: &Transaction) -> StmResult<usize> {
        self.queue.len(tx)
    }

    /// True if the queue has no items.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TBoundedQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TBoundedQueue<u8> = commute::TBoundedQueue::with_capacity(4);
    /// assert!(commute::atomically(|tx| q.is_empty(tx)));
    /// ```
    pub fn is_empty(&self, tx: &Transaction) -> StmResult<bool> {
        self.queue.is_empty(tx)
    }

    /// One-call forms: each method runs one operation as its own transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(1);
    /// assert_eq!(q.atomic().pop(), Some(1));
    /// ```
    pub fn atomic(&self) -> Atomic<'_, Self> {
        Atomic(self)
    }
}

impl<T: Send + 'static> Atomic<'_, TBoundedQueue<T>> {
    /// [`TBoundedQueue::take`] in a transaction of its own, and the item moved out
    /// ([`Taken::into_inner`]).
    ///
    /// # Panics
    ///
    /// If called inside a transaction, or inside a pin ([`commute_stm::pinned`],
    /// [`TBox::load_with`](crate::TBox::load_with)'s closure), before taking anything.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(Box::new(5));
    /// assert_eq!(q.atomic().take(), Some(Box::new(5)));
    /// ```
    #[track_caller]
    pub fn take(self) -> Option<T> {
        assert_can_take_alone();
        atomically(|tx| self.0.take(tx)).map(Taken::into_inner)
    }

    /// [`TBoundedQueue::take_wait`] in a transaction of its own, and the item moved out:
    /// blocks while the queue is empty.
    ///
    /// # Panics
    ///
    /// If called inside a transaction or inside a pin (before taking anything, as
    /// [`take`](Atomic::take)), or if the queue is closed and empty (as
    /// [`TBoundedQueue::take_wait`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(Box::new(5));
    /// assert_eq!(q.atomic().take_wait(), Box::new(5));
    /// ```
    #[track_caller]
    pub fn take_wait(self) -> T {
        assert_can_take_alone();
        match atomically(|tx| self.0.take_unless_closed(tx)) {
            Some(taken) => taken.into_inner(),
            None => take_wait_on_closed("TBoundedQueue"),
        }
    }

    /// The number of items.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::<u8>::with_capacity(1);
    /// assert_eq!(q.atomic().len(), 0);
    /// ```
    #[track_caller]
    pub fn len(self) -> usize {
        atomically(|tx| self.0.len(tx))
    }

    /// True if the queue has no items.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::<u8>::with_capacity(1);
    /// assert!(q.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn is_empty(self) -> bool {
        atomically(|tx| self.0.is_empty(tx))
    }

    /// [`TBoundedQueue::close`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::<u8>::with_capacity(1);
    /// q.atomic().close();
    /// assert!(q.atomic().is_closed());
    /// ```
    #[track_caller]
    pub fn close(self) {
        atomically(|tx| {
            self.0.close(tx);
            Ok(())
        });
    }

    /// [`TBoundedQueue::is_closed`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::<u8>::with_capacity(1);
    /// assert!(!q.atomic().is_closed());
    /// ```
    #[track_caller]
    pub fn is_closed(self) -> bool {
        atomically(|tx| self.0.is_closed(tx))
    }

    /// [`TBoundedQueue::is_full`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(1);
    /// assert!(q.atomic().is_full());
    /// ```
    #[track_caller]
    pub fn is_full(self) -> bool {
        atomically(|tx| self.0.is_full(tx))
    }
}

impl<T: Clone + Send + Sync + 'static> Atomic<'_, TBoundedQueue<T>> {
    /// Pushes, blocking while full, in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction. Also if the queue is [closed](TBoundedQueue::close),
    /// before or while this push waits for room: on a queue that may be closed, use
    /// [`send`](Atomic::send), which gives the item back instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(1);
    /// ```
    #[track_caller]
    pub fn push(self, item: T) {
        if atomically(|tx| self.0.send(tx, item.clone())).is_err() {
            push_on_closed("TBoundedQueue");
        }
    }

    /// Pushes if there is room, in a transaction of its own; gives the item back if full.
    ///
    /// # Errors
    ///
    /// `Err(item)` when the queue is full.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// assert_eq!(q.atomic().try_push(1), Ok(()));
    /// assert_eq!(q.atomic().try_push(2), Err(2));
    /// ```
    #[track_caller]
    pub fn try_push(self, item: T) -> Result<(), T> {
        atomically(|tx| self.0.try_push(tx, item.clone()))
    }

    /// Pops in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::<u8>::with_capacity(1);
    /// assert_eq!(q.atomic().pop(), None);
    /// ```
    #[track_caller]
    pub fn pop(self) -> Option<T> {
        atomically(|tx| self.0.pop(tx))
    }

    /// Pops, blocking while empty, in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(5);
    /// assert_eq!(q.atomic().pop_wait(), 5);
    /// ```
    ///
    /// # Panics
    ///
    /// Also if the queue is closed and empty (see [`TBoundedQueue::pop_wait`]).
    #[track_caller]
    pub fn pop_wait(self) -> T {
        match atomically(|tx| self.0.recv(tx)) {
            Some(item) => item,
            None => pop_wait_on_closed("TBoundedQueue"),
        }
    }

    /// [`TBoundedQueue::send`] in a transaction of its own: blocks while full and open.
    ///
    /// # Errors
    ///
    /// `Err(Closed(item))` if the queue is closed.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// assert_eq!(q.atomic().send(1), Ok(()));
    /// q.atomic().close();
    /// assert_eq!(q.atomic().send(2), Err(commute::Closed(2)));
    /// ```
    #[track_caller]
    pub fn send(self, item: T) -> Result<(), Closed<T>> {
        atomically(|tx| self.0.send(tx, item.clone()))
    }

    /// [`TBoundedQueue::recv`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(1);
    /// q.atomic().close();
    /// assert_eq!(q.atomic().recv(), Some(1));
    /// assert_eq!(q.atomic().recv(), None);
    /// ```
    #[track_caller]
    pub fn recv(self) -> Option<T> {
        atomically(|tx| self.0.recv(tx))
    }

    /// [`TBoundedQueue::recv_until`] in a transaction of its own, with the deadline `timeout`
    /// from now (a timeout too long for an `Instant`, such as `Duration::MAX`, sets none:
    /// [`recv`](TBoundedQueue::recv)).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if the queue stayed empty for `timeout`,
    /// [`RecvTimeoutError::Closed`] if it is closed and empty.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = commute::TBoundedQueue::<u8>::with_capacity(1);
    /// assert_eq!(
    ///     q.atomic().recv_timeout(Duration::from_millis(1)),
    ///     Err(commute::RecvTimeoutError::Timeout)
    /// );
    /// ```
    #[track_caller]
    pub fn recv_timeout(self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            // Too long for an `Instant` (`Duration::MAX`): no deadline, as std's channels take it.
            return atomically(|tx| self.0.recv(tx)).ok_or(RecvTimeoutError::Closed);
        };
        atomically(|tx| self.0.recv_until(tx, deadline))
    }

    /// [`TBoundedQueue::drain`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(2);
    /// q.atomic().push(1);
    /// assert_eq!(q.atomic().drain(), [1]);
    /// assert!(!q.atomic().is_full());
    /// ```
    #[track_caller]
    pub fn drain(self) -> Vec<T> {
        atomically(|tx| self.0.drain(tx))
    }

    /// A clone of the front item.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(1);
    /// q.atomic().push(5);
    /// assert_eq!(q.atomic().peek(), Some(5));
    /// ```
    #[track_caller]
    pub fn peek(self) -> Option<T> {
        atomically(|tx| self.0.peek(tx))
    }

    /// [`TBoundedQueue::iter`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TBoundedQueue::with_capacity(2);
    /// q.atomic().push(1u8);
    /// assert_eq!(q.atomic().iter(), [1]);
    /// ```
    #[track_caller]
    pub fn iter(self) -> Vec<T> {
        atomically(|tx| self.0.iter(tx))
    }
}

/// Why [`TBoundedQueue`]'s `extend` pushed nothing.
enum Full {
    Closed,
    NoRoom,
}

impl<T: Clone + Send + Sync + 'static> Extend<T> for TBoundedQueue<T> {
    /// Pushes every item in one transaction, all or none: they appear together, in order. The
    /// iterator is drained first, outside the transaction (an attempt may run more than once).
    ///
    /// `TBoundedQueue` has no `Default` and no `FromIterator`, on purpose: a bounded queue
    /// needs a capacity, and neither has a place to say it (taking the number of items would
    /// make a queue that is full from the start, and an empty one impossible). Create it with
    /// [`with_capacity`](TBoundedQueue::with_capacity), then `extend` it.
    ///
    /// # Panics
    ///
    /// If the items do not all fit in the free capacity, or the queue is closed; then none is
    /// pushed. `extend` takes `&mut self`, so no other thread can pop while it runs: waiting
    /// for room, as [`push`](TBoundedQueue::push) does, would never end. Also inside a
    /// transaction (transactions do not nest): there, call [`push`](TBoundedQueue::push) in a
    /// loop.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut q = commute::TBoundedQueue::with_capacity(4);
    /// q.extend(['a', 'b', 'c']);
    /// assert_eq!(q.atomic().iter(), ['a', 'b', 'c']);
    /// ```
    #[track_caller]
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let items: Vec<T> = iter.into_iter().collect();
        let q = &*self;
        // The error says why: closed (a panic with no items too, as `TQueue::extend`'s) or full.
        let pushed = try_atomically(|tx| {
            if q.is_closed(tx)? {
                return tx.abort(Full::Closed);
            }
            for item in &items {
                if let Err(item) = q.try_push(tx, item.clone())? {
                    // A copy, dropped outside the transaction; the abort rolls back the pushes
                    // of this attempt.
                    crate::drop_outside(item);
                    return tx.abort(Full::NoRoom);
                }
            }
            Ok(())
        });
        match pushed {
            Ok(()) => {}
            Err(Full::Closed) => {
                panic!(
                    "TBoundedQueue::extend on a closed queue ({} items)",
                    items.len()
                )
            }
            Err(Full::NoRoom) => panic!(
                "TBoundedQueue::extend: {} items do not fit (capacity {}, {} queued)",
                items.len(),
                q.capacity,
                q.atomic().len()
            ),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> IntoIterator for TBoundedQueue<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    /// Consumes the queue: its items, front to back, as [`TQueue`]'s `into_iter` (clones taken
    /// in one transaction, then the queue is dropped as usual).
    ///
    /// # Panics
    ///
    /// If called inside a transaction (transactions do not nest).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut q = commute::TBoundedQueue::with_capacity(2);
    /// q.extend([1, 2]);
    /// assert_eq!(q.into_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.atomic().iter().into_iter()
    }
}

impl<T: Clone + Send + Sync + fmt::Debug + 'static> fmt::Debug for TBoundedQueue<T> {
    /// Shows the capacity and the items of a snapshot taken in its own transaction, front
    /// first (inside a [`TMap`](crate::TMap)'s `Debug`, the map's snapshot). Inside a
    /// transaction, which may not start another, shows `<in a transaction>` for the items:
    /// there, format `queue.iter(tx)?`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TBoundedQueue");
        d.field("capacity", &self.capacity);
        debug::show(|place| match place {
            Place::Outside => {
                d.field("items", &self.atomic().iter());
                Ok(())
            }
            // A snapshot's reads do not fail.
            Place::Snapshot(tx) => {
                d.field("items", &self.iter(tx).map_err(|_| fmt::Error)?);
                Ok(())
            }
            Place::InTransaction => {
                d.field("items", &Placeholder);
                Ok(())
            }
        })?;
        d.finish()
    }
}
