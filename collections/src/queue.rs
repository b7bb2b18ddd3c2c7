//! `TQueue<T>`: a transactional FIFO whose pushes never conflict.
//!
//! Layout: a singly linked list with a sentinel (Michael & Scott's shape). `head` points at the
//! sentinel, whose successor is the first item; `tail` points at the last node. Both are
//! `TVar`s holding node pointers; a node's `next` link and its `stamp` are plain atomics written
//! once, when a commit publishes the node.
//!
//! - `push` does not read the queue. It allocates a node and registers a commit-time publishing
//!   operation on `tail` ([`TVar::publish_box_on_commit_then`]: two functions and the node,
//!   nothing else allocated): at commit, with `tail` locked, the node is stamped with the commit
//!   version and becomes the tail; once the commit has unlocked `tail`, it links the node after
//!   the tail it replaced (that node's line was most likely written last by another core:
//!   fetching it while `tail` is locked made every concurrent push wait for the transfer).
//!   Pushes therefore never abort each other, and never abort pops of other items.
//! - `pop` reads `head` and follows the sentinel's `next`. If a successor exists, its stamp goes
//!   through [`Transaction::observe_version`], so the attempt's snapshot includes the push that
//!   published it (opacity); then `head` moves to it and the old sentinel is retired. Only when
//!   the sentinel has no successor does `pop` read `tail`, so that "empty" conflicts with pushes,
//!   as it must. A tail other than the sentinel means a commit has published the successor but
//!   not linked it yet: `pop` waits for the link (the committer is past every lock).
//! - A transaction's own pending pushes are kept in transaction-local keys (`pending_first`,
//!   `pending_last`) and linked privately; a pop that finds the committed queue empty continues
//!   into them, so a transaction sees its own pushes in order.
//! - `for_each` (and `iter`) walk as repeated pops would, without moving `head`; they read `tail`
//!   first and stop there before going on into the attempt's own pushes, so the walk covers one
//!   snapshot and never follows links that later commits added.
//!
//! Replaced sentinels are freed by the core's deferred reclamation ([`Transaction::pin`],
//! [`Transaction::retire_on_commit`]); nodes of rolled-back pushes are freed with the attempt.

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr;

use crossbeam_utils::CachePadded;

use crate::counter::TCounter;
use crate::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use crate::{Atomic, Inline, StmResult, TVar, Transaction, atomically};

/// The stamp of a node not yet published by a commit.
const UNPUBLISHED: u64 = u64::MAX;
/// The stamp of the queue's first sentinel, the one node without an item (commit versions are
/// never 0).
const FIRST: u64 = 0;

/// A node: no `Option` around the item, so that a node of a word-sized item takes 24 bytes
/// (one 32-byte allocator chunk instead of 48: a third less memory for a long log).
struct Node<T> {
    /// Initialised in every node but the first sentinel (stamp [`FIRST`]).
    item: MaybeUninit<T>,
    next: AtomicPtr<Node<T>>,
    /// The version of the commit that published the node.
    stamp: AtomicU64,
}

impl<T> Node<T> {
    /// A node for `item`, not yet published.
    fn alloc(item: T) -> *mut Node<T> {
        Box::into_raw(Box::new(Node {
            item: MaybeUninit::new(item),
            next: AtomicPtr::new(ptr::null_mut()),
            stamp: AtomicU64::new(UNPUBLISHED),
        }))
    }

    /// The queue's first sentinel.
    fn first() -> *mut Node<T> {
        Box::into_raw(Box::new(Node {
            item: MaybeUninit::uninit(),
            next: AtomicPtr::new(ptr::null_mut()),
            stamp: AtomicU64::new(FIRST),
        }))
    }

    /// A clone of the item.
    ///
    /// # Safety
    ///
    /// The node is not the first sentinel.
    unsafe fn clone_item(&self) -> T
    where
        T: Clone,
    {
        // SAFETY: every node but the first sentinel holds an item (caller).
        unsafe { self.item.assume_init_ref() }.clone()
    }
}

impl<T> Drop for Node<T> {
    fn drop(&mut self) {
        if self.stamp.load(Ordering::Relaxed) != FIRST {
            // SAFETY: only the first sentinel has no item, and a node is dropped once.
            unsafe { self.item.assume_init_drop() };
        }
    }
}

/// Publishes `node` at commit, with `tail` locked: stamps it with the commit version; it
/// becomes the new tail. [`link`] follows once `tail` is unlocked.
fn stamp<T>(_old_tail: *mut Node<T>, version: u64, node: *mut Node<T>) -> *mut Node<T> {
    // SAFETY: runs once, at commit; `node` is ours until the release store of the new tail (by
    // the commit, after this) or of the link (by `link`) makes it reachable, and both come
    // after these stores.
    unsafe {
        (*node).next.store(ptr::null_mut(), Ordering::Relaxed);
        (*node).stamp.store(version, Ordering::Relaxed);
    }
    node
}

/// Links `node` after `old_tail`, the tail that [`stamp`] replaced, once the commit has unlocked
/// `tail`.
fn link<T>(old_tail: *mut Node<T>, node: *mut Node<T>) {
    // SAFETY: `old_tail` is alive: a node is freed only after a pop moved `head` past it, and a
    // pop moves past a node only to its successor, which for `old_tail` is the one this store
    // sets (or, inside one transaction's pushes, already set: the same pointer again). The
    // release store makes the node's stamp and item visible to whoever follows the link.
    unsafe { (*old_tail).next.store(node, Ordering::Release) };
}

/// A transactional FIFO queue: pushes never conflict with each other, nor with pops of other
/// items.
///
/// Items pushed by one transaction appear together, in order, when it commits; an aborted
/// transaction's pushes never appear and its pops are not lost. A pop takes a clone of the item
/// (the node it leaves behind is freed once no transaction can read it).
///
/// # Examples
///
/// ```
/// use commute::{atomically, TQueue};
///
/// let log = TQueue::new();
/// atomically(|tx| {
///     log.push(tx, "started");
///     log.push(tx, "served");
///     Ok(())
/// });
/// assert_eq!(atomically(|tx| log.pop(tx)), Some("started"));
/// assert_eq!(log.atomic().pop(), Some("served"));
/// assert_eq!(log.atomic().pop(), None);
/// ```
pub struct TQueue<T: 'static> {
    // On lines of their own: pops commit to `head`, pushes to `tail`, and neither should pull
    // the other's line (or anything else) across cores.
    // Each in a padded box of its own: a running attempt refers to them by address, and the
    // queue itself may move (see `commute_stm::Inline`).
    head: Box<CachePadded<TVar<*mut Node<T>, Inline>>>,
    tail: Box<CachePadded<TVar<*mut Node<T>, Inline>>>,
    /// Transaction-local key: the first node this transaction pushed and has not popped.
    pending_first: TVar<*mut Node<T>>,
    /// Transaction-local key: the last node this transaction pushed.
    pending_last: TVar<*mut Node<T>>,
    len: TCounter,
    _owns: PhantomData<T>,
}

// SAFETY: the raw node pointers are owned by the queue; items are only cloned out (`T: Sync`)
// and dropped on whichever thread frees a node (`T: Send`).
unsafe impl<T: Send + Sync + 'static> Send for TQueue<T> {}
// SAFETY: as above; all shared mutation goes through the STM or the nodes' atomics.
unsafe impl<T: Send + Sync + 'static> Sync for TQueue<T> {}

impl<T: Clone + Send + Sync + 'static> TQueue<T> {
    /// Creates an empty queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TQueue<u32> = commute::TQueue::new();
    /// assert!(q.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        let sentinel = Node::first();
        TQueue {
            // SAFETY: the variable goes straight into a box of its own, which never moves it.
            head: Box::new(CachePadded::new(unsafe { TVar::new_inline(sentinel) })),
            // SAFETY: as for `head`.
            tail: Box::new(CachePadded::new(unsafe { TVar::new_inline(sentinel) })),
            pending_first: TVar::new(ptr::null_mut()),
            pending_last: TVar::new(ptr::null_mut()),
            len: TCounter::new(),
            _owns: PhantomData,
        }
    }

    /// Names the queue's variables in statistics and conflict reports.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TQueue<u8> = commute::TQueue::new().with_label("log");
    /// ```
    pub fn with_label(mut self, label: &'static str) -> Self {
        self.head.set_label(label);
        self.tail.set_label(label);
        self.len = core::mem::take(&mut self.len).with_label(label);
        self
    }

    /// Appends `item` at the back; it becomes visible when the transaction commits.
    ///
    /// Does not read the queue: concurrent pushes never conflict.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q = TQueue::new();
    /// atomically(|tx| {
    ///     q.push(tx, 1);
    ///     Ok(())
    /// });
    /// assert_eq!(q.atomic().len(), 1);
    /// ```
    pub fn push(&self, tx: &Transaction, item: T) {
        let node = Node::alloc(item);
        match self.pending_last.local(tx) {
            // SAFETY: `last` is this attempt's own unpublished node, owned by its publishing
            // operation in the write set; nobody else can see it yet.
            Some(last) if !last.is_null() => unsafe { (*last).next.store(node, Ordering::Relaxed) },
            _ => self.pending_first.set_local(tx, node),
        }
        self.pending_last.set_local(tx, node);
        // SAFETY: `stamp` and `link` cannot panic or block; the memory they write (the node,
        // the old tail's link) becomes reachable only through the new tail or through a link
        // whose stamp readers check with `observe_version`. The node is fresh: the write set
        // owns it until the commit hands it to `stamp` (or frees it if the push is rolled
        // back). The old tail stays alive until `link` ran (see there), and readers that see
        // the new tail before the link wait for it (`first_node`).
        unsafe {
            self.tail
                .publish_box_on_commit_then(tx, node, stamp::<T>, link::<T>)
        };
        self.len.incr(tx);
    }

    /// The successor of the sentinel `head` in this attempt's view, or null if the queue is
    /// empty. Takes the attempt's own pending pushes into account.
    fn first_node(&self, tx: &Transaction, head: *mut Node<T>) -> StmResult<*mut Node<T>> {
        // SAFETY: `head` was read from `self.head` after `tx.pin()`, so it stays alive for the
        // attempt (or it is this attempt's own pending node, owned by its publishing operation).
        let sentinel = unsafe { &*head };
        if sentinel.stamp.load(Ordering::Relaxed) == UNPUBLISHED {
            // Already inside our own pending pushes.
            let last = self.pending_last.local(tx).unwrap_or(ptr::null_mut());
            return Ok(if head == last {
                ptr::null_mut()
            } else {
                sentinel.next.load(Ordering::Relaxed)
            });
        }
        let mut next = sentinel.next.load(Ordering::Acquire);
        if next.is_null() {
            // Empty in the committed queue? Only `tail` can tell consistently.
            if self.tail.read(tx)? == head {
                return Ok(self.pending_first.local(tx).unwrap_or(ptr::null_mut()));
            }
            // In this attempt's snapshot the sentinel has a successor, so the commit that
            // published it has unlocked `tail` and links it (or has linked it since we looked):
            // wait for the link, giving way to the committer if it is slow.
            let mut waited = 0u32;
            loop {
                next = sentinel.next.load(Ordering::Acquire);
                if !next.is_null() {
                    break;
                }
                waited = waited.saturating_add(1);
                if waited < 64 {
                    crate::sync::spin_hint();
                } else {
                    crate::sync::yield_now();
                }
            }
        }
        // SAFETY: published nodes stay alive while we are pinned.
        tx.observe_version(unsafe { (*next).stamp.load(Ordering::Relaxed) })?;
        Ok(next)
    }

    /// Removes and returns the front item, or `None` if the queue is empty.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it
    /// on with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q = TQueue::new();
    /// q.atomic().push('a');
    /// assert_eq!(atomically(|tx| q.pop(tx)), Some('a'));
    /// assert_eq!(atomically(|tx| q.pop(tx)), None);
    /// ```
    pub fn pop(&self, tx: &Transaction) -> StmResult<Option<T>> {
        tx.pin();
        let head = self.head.read(tx)?;
        let first = self.first_node(tx, head)?;
        if first.is_null() {
            return Ok(None);
        }
        // SAFETY: `first` is alive (pinned, or our own pending node); only the queue's first
        // sentinel has no item.
        let item = Some(unsafe { (*first).clone_item() });
        self.head.write(tx, first);
        // SAFETY: if this attempt commits, the old sentinel is unlinked (head moved past it and
        // it is not the tail, since it has a successor) and nothing else frees it: a pending
        // node is handed to the queue when its push is published by this same commit. Tied to
        // `head`: if the queue is dropped before the commit, its `Drop` frees the old sentinel
        // (still the committed head) and the retirement is cancelled.
        unsafe { self.head.retire_on_commit(tx, head) };
        self.len.decr(tx);
        Ok(item)
    }

    /// Removes and returns the front item, blocking (through [`Transaction::retry`]) while the
    /// queue is empty.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop), plus the retry signal while empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    /// use std::sync::Arc;
    ///
    /// let q = Arc::new(TQueue::new());
    /// let consumer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || atomically(|tx| q.pop_wait(tx)))
    /// };
    /// q.atomic().push(42);
    /// assert_eq!(consumer.join().unwrap(), 42);
    /// ```
    pub fn pop_wait(&self, tx: &Transaction) -> StmResult<T> {
        match self.pop(tx)? {
            Some(item) => Ok(item),
            None => tx.retry(),
        }
    }

    /// A clone of the front item, without removing it.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q = TQueue::new();
    /// q.atomic().push(5);
    /// assert_eq!(atomically(|tx| q.peek(tx)), Some(5));
    /// assert_eq!(q.atomic().len(), 1);
    /// ```
    pub fn peek(&self, tx: &Transaction) -> StmResult<Option<T>> {
        tx.pin();
        let head = self.head.read(tx)?;
        let first = self.first_node(tx, head)?;
        if first.is_null() {
            return Ok(None);
        }
        // SAFETY: as in `pop`.
        Ok(Some(unsafe { (*first).clone_item() }))
    }

    /// True if the queue has no items. Conflicts with pushes only while it is empty.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q: TQueue<u8> = TQueue::new();
    /// assert!(atomically(|tx| q.is_empty(tx)));
    /// ```
    pub fn is_empty(&self, tx: &Transaction) -> StmResult<bool> {
        tx.pin();
        let head = self.head.read(tx)?;
        Ok(self.first_node(tx, head)?.is_null())
    }

    /// The number of items. Reads the whole count, so it conflicts with concurrent pushes and
    /// pops (as it must).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q = TQueue::new();
    /// let n = atomically(|tx| {
    ///     q.push(tx, 'x');
    ///     q.push(tx, 'y');
    ///     q.len(tx)
    /// });
    /// assert_eq!(n, 2);
    /// ```
    pub fn len(&self, tx: &Transaction) -> StmResult<usize> {
        Ok(self.len.get(tx)?.max(0) as usize)
    }

    /// Calls `f` on every item, front to back: the items of a consistent snapshot of the
    /// queue, then this transaction's own pushes (less the items it popped), as
    /// [`pop`](TQueue::pop) would return them one by one.
    ///
    /// It reads both ends of the queue, so if the transaction commits, no push or pop committed
    /// in between: a transaction that also writes conflicts with concurrent pushes and pops (as
    /// it must, having seen every item).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let log: TQueue<&str> = ["started", "served"].into_iter().collect();
    /// let mut total = 0;
    /// atomically(|tx| {
    ///     total = 0;
    ///     log.for_each(tx, |record| total += record.len())
    /// });
    /// assert_eq!(total, 13);
    /// assert_eq!(log.atomic().len(), 2, "nothing was removed");
    /// ```
    pub fn for_each<'a>(&'a self, tx: &'a Transaction, mut f: impl FnMut(&'a T)) -> StmResult<()> {
        tx.pin();
        // The last committed node of this attempt's snapshot. The walk goes from there into
        // the attempt's own pushes rather than along links that later commits have added.
        let tail = self.tail.read(tx)?;
        let mut node = self.head.read(tx)?;
        loop {
            let next = if node == tail {
                self.pending_first.local(tx).unwrap_or(ptr::null_mut())
            } else {
                self.first_node(tx, node)?
            };
            if next.is_null() {
                return Ok(());
            }
            // SAFETY: `next` follows a sentinel, so it holds an item; it is a published node
            // (alive while the attempt is pinned, and the attempt outlives `'a`: `tx` is
            // borrowed for it) or one of this attempt's pending nodes (owned by its write set
            // or its allocations until the attempt ends).
            f(unsafe { (*next).item.assume_init_ref() });
            node = next;
        }
    }

    /// Clones of every item, front to back (see [`for_each`](TQueue::for_each)).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q: TQueue<u32> = (1..=3).collect();
    /// let seen = atomically(|tx| {
    ///     q.pop(tx)?;
    ///     q.push(tx, 4);
    ///     q.iter(tx)
    /// });
    /// assert_eq!(seen, [2, 3, 4]);
    /// ```
    pub fn iter(&self, tx: &Transaction) -> StmResult<Vec<T>> {
        let mut items = Vec::new();
        self.for_each(tx, |item| items.push(item.clone()))?;
        Ok(items)
    }

    /// One-call forms: each method runs one operation as its own transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TQueue::new();
    /// q.atomic().push(1);
    /// assert_eq!(q.atomic().pop(), Some(1));
    /// ```
    pub fn atomic(&self) -> Atomic<'_, Self> {
        Atomic(self)
    }
}

impl<T: Clone + Send + Sync + 'static> Atomic<'_, TQueue<T>> {
    /// Pushes `item` in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TQueue::new();
    /// q.atomic().push("x");
    /// assert_eq!(q.atomic().len(), 1);
    /// ```
    pub fn push(self, item: T) {
        let mut item = Some(item);
        atomically(|tx| {
            // The closure has no reads, so it commits on its first attempt.
            self.0
                .push(tx, item.take().expect("a push attempt never re-runs"));
            Ok(())
        });
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
    /// let q = commute::TQueue::new();
    /// q.atomic().push(1u8);
    /// assert_eq!(q.atomic().pop(), Some(1));
    /// ```
    pub fn pop(self) -> Option<T> {
        atomically(|tx| self.0.pop(tx))
    }

    /// Pops, blocking while the queue is empty.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TQueue::new();
    /// q.atomic().push(3);
    /// assert_eq!(q.atomic().pop_wait(), 3);
    /// ```
    pub fn pop_wait(self) -> T {
        atomically(|tx| self.0.pop_wait(tx))
    }

    /// Peeks in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TQueue::new();
    /// q.atomic().push(3);
    /// assert_eq!(q.atomic().peek(), Some(3));
    /// ```
    pub fn peek(self) -> Option<T> {
        atomically(|tx| self.0.peek(tx))
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
    /// let q: commute::TQueue<u8> = commute::TQueue::new();
    /// assert_eq!(q.atomic().len(), 0);
    /// ```
    pub fn len(self) -> usize {
        atomically(|tx| self.0.len(tx))
    }

    /// True if the queue is empty.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TQueue<u8> = commute::TQueue::new();
    /// assert!(q.atomic().is_empty());
    /// ```
    pub fn is_empty(self) -> bool {
        atomically(|tx| self.0.is_empty(tx))
    }

    /// [`TQueue::iter`] in its own transaction: clones of every item, front to back.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TQueue::new();
    /// q.atomic().push('a');
    /// q.atomic().push('b');
    /// assert_eq!(q.atomic().iter(), ['a', 'b']);
    /// ```
    pub fn iter(self) -> Vec<T> {
        atomically(|tx| self.0.iter(tx))
    }
}

impl<T: Clone + Send + Sync + 'static> Default for TQueue<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Send + Sync + 'static> FromIterator<T> for TQueue<T> {
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut q = TQueue::new();
        q.extend(iter);
        q
    }
}

impl<T: Clone + Send + Sync + 'static> Extend<T> for TQueue<T> {
    /// Pushes every item, all in one transaction.
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let items: Vec<T> = iter.into_iter().collect();
        atomically(|tx| {
            for item in &items {
                self.push(tx, item.clone());
            }
            Ok(())
        });
    }
}

impl<T: Clone + Send + Sync + fmt::Debug + 'static> fmt::Debug for TQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.atomic().iter()).finish()
    }
}

impl<T: 'static> Drop for TQueue<T> {
    fn drop(&mut self) {
        // `&mut self`: no transaction is running on the queue. Free the sentinel and every item
        // node; replaced sentinels were retired to the core's reclamation already.
        let mut node = self.head.load();
        while !node.is_null() {
            // SAFETY: we own every node from the head on; each is freed once.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next.load(Ordering::Relaxed);
        }
    }
}
