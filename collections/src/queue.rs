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
//! - `close` writes `closed`, a variable that only the channel operations read (`send`, `recv`,
//!   `recv_until`, and `pop_wait` once the queue is empty), so pushes and pops stay as above
//!   and a send conflicts only with a close. `push`, which reads nothing, checks a plain flag
//!   that close's commit hook sets: a push that begins after a close panics; one racing with
//!   it is not caught (`send` is the push that is exact about close).
//!
//! Memory goes through the core's deferred reclamation ([`Transaction::pin`],
//! [`Transaction::retire_on_commit`]). A pop returns a clone of the item; the queue's own copy
//! stays in its node, which becomes the sentinel, because transactions that began before the
//! pop may still be cloning it. The pop's commit retires a `Popped` marker for the sentinel it
//! replaced: once no transaction that could read either node is running, reclaiming the marker
//! drops the popped item in place and lets go of both nodes. A node thus has two owners after it
//! becomes the sentinel, its item's drop (retired by the pop that made it the sentinel) and its
//! unlinking (retired by the pop that replaces it, or done by the queue's drop), which retired
//! values of different threads meet in any order: each sets a bit in the node's stamp
//! ([`Node::release`]) and the second frees the node. A marker is zero-sized, so neither a pop
//! nor its reclamation allocates. Nodes of rolled-back pushes are freed, with their items, with
//! the attempt.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr;

use crossbeam_utils::CachePadded;

use std::time::{Duration, Instant};

use crate::closed::{Closed, RecvTimeoutError};
use crate::counter::TCounter;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use crate::{Atomic, Inline, StmResult, TVar, Transaction, atomically};

/// The stamp of a node not yet published by a commit.
const UNPUBLISHED: u64 = u64::MAX;
/// Set in a published node's stamp by the first of its two owners to let go of it (see
/// [`Node::release`]). Commit versions take 61 bits, so the bit is free in every stamp of a
/// published node, and `version | LET_GO` is never [`UNPUBLISHED`].
const LET_GO: u64 = 1 << 62;
/// The stamp of the queue's first sentinel, the one node without an item: version 0 (commit
/// versions are never 0), and as it has no item to drop, only its unlinking still owns it.
const FIRST: u64 = LET_GO;

/// A node: no `Option` around the item, so that a node of a word-sized item takes 24 bytes
/// (one 32-byte allocator chunk instead of 48: a third less memory for a long log).
struct Node<T> {
    /// Initialised in every node but the first sentinel (stamp [`FIRST`]), until the pop that
    /// makes the node the sentinel has its item dropped (see [`Popped`]).
    item: MaybeUninit<T>,
    next: AtomicPtr<Node<T>>,
    /// The version of the commit that published the node ([`UNPUBLISHED`] before), plus
    /// [`LET_GO`] once one of its two owners has let go of it.
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

impl<T> Node<T> {
    /// Lets go of `node` for one of its two owners once a pop has made it the sentinel: the
    /// pop's [`Popped`] marker, when it has dropped the item, and the pop that replaces the
    /// sentinel (its marker again) or the queue's drop. The second to let go frees the node.
    ///
    /// # Safety
    ///
    /// `node` is a published node that has been the sentinel, and the caller is one of its two
    /// owners, letting go once and not touching the node afterwards. The first sentinel has
    /// one owner only (it has no item): its stamp [`FIRST`] already says that the other let go.
    unsafe fn release(node: *mut Self) {
        // AcqRel: whichever comes second frees the node after everything the first did with it
        // (the item's drop, the unlinking owner's last read of `next`).
        // SAFETY: the node is alive until its second owner lets go, and we are one of them.
        let before = unsafe { (*node).stamp.fetch_or(LET_GO, Ordering::AcqRel) };
        if before & LET_GO != 0 {
            // SAFETY: both owners have let go, so nothing else can reach the node; its item is
            // dropped (or it never had one), and `Drop` leaves it alone (the node is published).
            drop(unsafe { Box::from_raw(node) });
        }
    }
}

impl<T> Drop for Node<T> {
    fn drop(&mut self) {
        // A node dropped unpublished is the node of a rolled-back push, freed by the core with
        // the attempt: its item goes with it. The items of published nodes are dropped
        // explicitly (by `Popped`, or by the queue's drop) before their nodes are freed.
        if self.stamp.load(Ordering::Relaxed) == UNPUBLISHED {
            // SAFETY: an unpublished node holds its item, and a node is dropped once.
            unsafe { self.item.assume_init_drop() };
        }
    }
}

/// What a pop's commit retires: a zero-sized marker at the address of the sentinel the pop
/// replaced.
///
/// The core frees a retired value as a `Box` of its type once no running transaction can read
/// it. A `Box` of a zero-sized type owns no memory, so reclaiming the marker only runs its
/// drop, which drops the popped item (in the node that became the sentinel) and lets go of both
/// nodes ([`Node::release`]). By then no transaction pinned before the pop's commit, which could
/// still clone the item or read the old sentinel, is running; transactions that began later see
/// the new sentinel, and never read a sentinel's item.
struct Popped<T>(PhantomData<T>);

impl<T> Popped<T> {
    /// The marker to retire for `old`, the sentinel a pop replaces.
    ///
    /// A marker is only an address: the node's provenance is exposed here and taken up again
    /// by [`Popped::drop`] from the address alone.
    fn of(old: *mut Node<T>) -> *mut Popped<T> {
        ptr::without_provenance_mut(old.expose_provenance())
    }
}

impl<T> Drop for Popped<T> {
    fn drop(&mut self) {
        /// Lets go of the new sentinel even if the item's drop panics.
        struct Release<T>(*mut Node<T>);
        impl<T> Drop for Release<T> {
            fn drop(&mut self) {
                // SAFETY: see below: the pop's marker owns the new sentinel for its item.
                unsafe { Node::release(self.0) }
            }
        }
        let old: *mut Node<T> = ptr::with_exposed_provenance_mut(ptr::from_mut(self).addr());
        // SAFETY: `old` is the sentinel the pop replaced (`Popped::of`, provenance exposed
        // there), and this marker is the owner that unlinked it, so it is alive until we let go.
        // Its `next` is the node the pop made the sentinel: a pop moves `head` to the
        // sentinel's successor only, linked before the pop's commit retired the marker (the pop
        // followed the link, or, for a pending node of the popping transaction, the commit's
        // `link` step stored it before the commit handed its retirements to reclamation). This
        // marker owns that node's item drop, so the node is alive too, and the item (of which
        // the pop returned a clone) is dropped exactly once, here, with no transaction left
        // that could read it (the marker is reclaimed only then).
        unsafe {
            let new = (*old).next.load(Ordering::Acquire);
            Node::release(old);
            let _release = Release(new);
            (*new).item.assume_init_drop();
        }
    }
}

/// One end of a queue (`head` or `tail`): a variable on a cache line of its own, in a box of
/// its own (a running attempt refers to it by address, and the queue itself may move).
type End<T> = CachePadded<TVar<*mut Node<T>, Inline>>;

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
/// transaction's pushes never appear and its pops are not lost. A pop returns a clone of the
/// item.
///
/// # When items are dropped
///
/// - **Popped.** The queue's own copy of a popped item cannot be dropped by the pop: a
///   transaction that began before the pop committed may still be cloning it (or borrowing it
///   in [`for_each`](TQueue::for_each)). The pop's commit retires it to the core's deferred
///   reclamation, and it is dropped, in place, by the first reclamation pass that runs once
///   every transaction that began before that commit and reads heap memory (any queue
///   operation but [`push`](TQueue::push)) has finished. That pass runs on the popping thread,
///   which reclaims in batches (after every 16 or so values it retires: each pop retires one,
///   as does each replaced [`TBox`](crate::TBox) value) and when it exits; what is still read
///   then is left to whichever thread reclaims next. No later pop is needed: once the caller
///   has dropped the clone, an `Arc` popped from the queue goes back to the count it had
///   before the push within a reclamation batch.
/// - **Rolled back.** A pop in an attempt that is rolled back (a conflict, a
///   [`retry`](Transaction::retry), an [`or_else`](Transaction::or_else) branch that retries, a
///   panic) drops nothing but the clone it returned: the item stays at the front. The item of
///   a rolled-back push is dropped when the attempt ends, on the pushing thread.
/// - **Left in the queue.** Items still queued when the queue is dropped are dropped front to
///   back: at once, on the dropping thread, if no thread is inside
///   [`atomically`](crate::atomically) then; otherwise once every such call has returned (an
///   attempt of another thread may still hold the queue, reached through a handle it has let
///   go of), by a later reclamation pass, outside any transaction. (A popped item whose
///   reclamation is still pending stays with it, as above.)
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
    head: ManuallyDrop<Box<End<T>>>,
    tail: ManuallyDrop<Box<End<T>>>,
    /// Transaction-local key: the first node this transaction pushed and has not popped.
    pending_first: TVar<*mut Node<T>>,
    /// Transaction-local key: the last node this transaction pushed.
    pending_last: TVar<*mut Node<T>>,
    len: TCounter,
    /// Set by [`close`](TQueue::close); read by the channel operations only (never by
    /// [`push`](TQueue::push) or [`pop`](TQueue::pop), which stay conflict-free).
    closed: TVar<bool>,
    /// Set once a close has committed: lets [`push`](TQueue::push), which reads nothing,
    /// refuse a queue closed before it began.
    closed_seen: Arc<AtomicBool>,
    _owns: PhantomData<T>,
}

// SAFETY: the raw node pointers are owned by the queue; items are only cloned out (`T: Sync`)
// and dropped on whichever thread reclaims a pop's marker or drops the queue (`T: Send`).
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
            head: ManuallyDrop::new(Box::new(CachePadded::new(unsafe {
                TVar::new_inline(sentinel)
            }))),
            // SAFETY: as for `head`.
            tail: ManuallyDrop::new(Box::new(CachePadded::new(unsafe {
                TVar::new_inline(sentinel)
            }))),
            pending_first: TVar::new(ptr::null_mut()),
            pending_last: TVar::new(ptr::null_mut()),
            len: TCounter::new(),
            closed: TVar::new(false),
            closed_seen: Arc::new(AtomicBool::new(false)),
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
        self.closed.set_label(label);
        self
    }

    /// Appends `item` at the back; it becomes visible when the transaction commits.
    ///
    /// Does not read the queue: concurrent pushes never conflict. For the same reason it does
    /// not look at [`close`](TQueue::close) transactionally: on a queue that may be closed,
    /// use [`send`](TQueue::send), which gives the item back instead.
    ///
    /// # Panics
    ///
    /// If the queue was closed (the close committed) before this call: the item would land
    /// after the close, where a receiver that saw the queue closed and drained never looks. A
    /// push racing with a close (its transaction commits after the close but called `push`
    /// before) is not caught; that is what `send` is for.
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
        if self.closed_seen.load(Ordering::Acquire) {
            panic!(
                "TQueue::push on a closed queue: use `send`, which hands the item back as \
                 `Err(Closed(item))`"
            );
        }
        self.push_open(tx, item);
    }

    /// [`push`](TQueue::push) without the check of a close: for callers that have read
    /// `closed` in the same transaction (the channel operations, `TBoundedQueue`).
    pub(crate) fn push_open(&self, tx: &Transaction, item: T) {
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
    /// The item returned is a clone. The queue's copy is dropped after the pop commits, as soon
    /// as no transaction that began before the commit can still read it: by the popping
    /// thread's next reclamation pass from then on, without waiting for another pop (see
    /// [when items are dropped](TQueue#when-items-are-dropped)). If the attempt is rolled back,
    /// nothing is dropped but the clone, and the item stays in the queue.
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
        // SAFETY: `first` is alive and holds its item (pinned: its item is dropped only by the
        // marker of the pop that removes it, reclaimed once we have finished; or our own
        // pending node); only the queue's first sentinel has no item.
        let item = Some(unsafe { (*first).clone_item() });
        self.head.write(tx, first);
        // SAFETY: the marker is zero-sized (any aligned address will do). If this attempt
        // commits, the old sentinel is unlinked (head moved past it and it is not the tail,
        // since it has a successor) and `first`'s item is popped, and this marker is the only
        // retirement of either: it is reclaimed once no transaction that could read them runs
        // (see `Popped`). A pending node is handed to the queue when its push is published by
        // this same commit. If the attempt rolls back, nothing is retired and nothing dropped.
        // Tied to `head`: if the queue is dropped before the commit, the retirement is
        // cancelled, and the queue's `Drop` lets go of the old sentinel (still the committed
        // head) and drops `first`'s item with the other items left.
        unsafe { self.head.retire_on_commit(tx, Popped::of(head)) };
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
    ///
    /// # Panics
    ///
    /// If the queue is [closed](TQueue::close) and empty: no item can come, so it would block
    /// forever. A consumer of a queue that may be closed uses [`recv`](TQueue::recv).
    #[track_caller]
    pub fn pop_wait(&self, tx: &Transaction) -> StmResult<T> {
        match self.pop(tx)? {
            Some(item) => Ok(item),
            None if self.closed.read(tx)? => panic!(
                "TQueue::pop_wait on a closed and empty queue would block forever: use `recv`, \
                 which returns None there"
            ),
            None => tx.retry(),
        }
    }

    /// Closes the queue: from its commit on, [`send`](TQueue::send) gives items back
    /// (`Err(Closed(item))`), [`push`](TQueue::push) panics, and receivers take the items
    /// still queued, then [`recv`](TQueue::recv) returns `None`. Wakes every transaction
    /// blocked in `recv`. Closing a closed queue does nothing; a queue cannot be reopened.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q = TQueue::new();
    /// atomically(|tx| {
    ///     q.push(tx, 1);
    ///     q.close(tx);
    ///     Ok(())
    /// });
    /// assert_eq!(atomically(|tx| q.recv(tx)), Some(1)); // drained first
    /// assert_eq!(atomically(|tx| q.recv(tx)), None); // then closed
    /// ```
    pub fn close(&self, tx: &Transaction) {
        self.closed.write(tx, true);
        let seen = self.closed_seen.clone();
        tx.on_commit(move || seen.store(true, Ordering::Release));
    }

    /// True if the queue is [closed](TQueue::close).
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
    /// assert!(!atomically(|tx| q.is_closed(tx)));
    /// atomically(|tx| Ok(q.close(tx)));
    /// assert!(atomically(|tx| q.is_closed(tx)));
    /// ```
    pub fn is_closed(&self, tx: &Transaction) -> StmResult<bool> {
        self.closed.read(tx)
    }

    /// Appends `item` unless the queue is [closed](TQueue::close); then gives it back.
    ///
    /// It reads the closed flag, which only [`close`](TQueue::close) writes: sends still never
    /// conflict with each other, nor with pops; a send and a close conflict, so each happens
    /// wholly before or after the other.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back (pass it
    /// on with `?`), and `Ok(Err(Closed(item)))` if the queue is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, Closed, TQueue};
    ///
    /// let q = TQueue::new();
    /// assert_eq!(atomically(|tx| q.send(tx, 1)), Ok(()));
    /// q.atomic().close();
    /// assert_eq!(atomically(|tx| q.send(tx, 2)).map_err(Closed::into_inner), Err(2));
    /// ```
    pub fn send(&self, tx: &Transaction, item: T) -> StmResult<Result<(), Closed<T>>> {
        if self.closed.read(tx)? {
            return Ok(Err(Closed(item)));
        }
        self.push_open(tx, item);
        Ok(Ok(()))
    }

    /// Removes and returns the front item, blocking while the queue is empty and open;
    /// `None` once it is [closed](TQueue::close) and empty (the items sent before the close
    /// come first).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop), plus the retry signal while empty and open.
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
    ///     std::thread::spawn(move || {
    ///         let mut sum = 0;
    ///         while let Some(n) = atomically(|tx| q.recv(tx)) {
    ///             sum += n;
    ///         }
    ///         sum
    ///     })
    /// };
    /// for n in 1..=4 {
    ///     q.atomic().push(n);
    /// }
    /// q.atomic().close();
    /// assert_eq!(consumer.join().unwrap(), 10);
    /// ```
    pub fn recv(&self, tx: &Transaction) -> StmResult<Option<T>> {
        match self.pop(tx)? {
            Some(item) => Ok(Some(item)),
            None if self.closed.read(tx)? => Ok(None),
            None => tx.retry(),
        }
    }

    /// [`recv`](TQueue::recv) with a deadline: the front item, blocking while the queue is
    /// empty and open, but not past `deadline` (see [`Transaction::retry_until`]).
    ///
    /// Compute the deadline outside the transaction's closure (which may run several
    /// times); [`recv_timeout`](crate::Atomic::recv_timeout) does it for you.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop), plus the retry signal while empty and open before the
    /// deadline; `Ok(Err(RecvTimeoutError::Timeout))` once the deadline has passed with the
    /// queue empty, `Ok(Err(RecvTimeoutError::Closed))` if it is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, RecvTimeoutError, TQueue};
    /// use std::time::{Duration, Instant};
    ///
    /// let q: TQueue<u8> = TQueue::new();
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(atomically(|tx| q.recv_until(tx, deadline)), Err(RecvTimeoutError::Timeout));
    /// assert!(Instant::now() >= deadline);
    /// ```
    pub fn recv_until(
        &self,
        tx: &Transaction,
        deadline: Instant,
    ) -> StmResult<Result<T, RecvTimeoutError>> {
        match self.pop(tx)? {
            Some(item) => Ok(Ok(item)),
            None if self.closed.read(tx)? => Ok(Err(RecvTimeoutError::Closed)),
            None => {
                tx.retry_until(deadline)?;
                Ok(Err(RecvTimeoutError::Timeout))
            }
        }
    }

    /// Removes every item, front to back, in this transaction: the items of a consistent
    /// snapshot, then the transaction's own pushes, as repeated [`pop`](TQueue::pop)s would
    /// return them (with their clones and deferred drops).
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
    /// assert_eq!(atomically(|tx| q.drain(tx)), [1, 2, 3]);
    /// assert!(q.atomic().is_empty());
    /// ```
    pub fn drain(&self, tx: &Transaction) -> StmResult<Vec<T>> {
        let mut items = Vec::new();
        while let Some(item) = self.pop(tx)? {
            items.push(item);
        }
        Ok(items)
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
            // (alive, item included, while the attempt is pinned: a pop that removes it commits
            // after our snapshot, so its marker is reclaimed after the attempt; and the attempt
            // outlives `'a`: `tx` is borrowed for it) or one of this attempt's pending nodes
            // (owned by its write set or its allocations until the attempt ends).
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
    ///
    /// # Panics
    ///
    /// Also if the queue is closed and empty (see [`TQueue::pop_wait`]).
    #[track_caller]
    pub fn pop_wait(self) -> T {
        atomically(|tx| self.0.pop_wait(tx))
    }

    /// [`TQueue::close`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TQueue<u8> = commute::TQueue::new();
    /// q.atomic().close();
    /// assert!(q.atomic().is_closed());
    /// ```
    pub fn close(self) {
        atomically(|tx| {
            self.0.close(tx);
            Ok(())
        });
    }

    /// [`TQueue::is_closed`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TQueue<u8> = commute::TQueue::new();
    /// assert!(!q.atomic().is_closed());
    /// ```
    pub fn is_closed(self) -> bool {
        atomically(|tx| self.0.is_closed(tx))
    }

    /// [`TQueue::send`] in a transaction of its own.
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
    /// let q = commute::TQueue::new();
    /// assert_eq!(q.atomic().send(1), Ok(()));
    /// q.atomic().close();
    /// assert_eq!(q.atomic().send(2), Err(commute::Closed(2)));
    /// ```
    pub fn send(self, item: T) -> Result<(), Closed<T>> {
        atomically(|tx| self.0.send(tx, item.clone()))
    }

    /// [`TQueue::recv`] in a transaction of its own: the front item, blocking while the queue
    /// is empty and open; `None` once it is closed and empty.
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
    /// q.atomic().close();
    /// assert_eq!(q.atomic().recv(), Some('a'));
    /// assert_eq!(q.atomic().recv(), None);
    /// ```
    pub fn recv(self) -> Option<T> {
        atomically(|tx| self.0.recv(tx))
    }

    /// [`TQueue::recv_until`] in a transaction of its own, with the deadline `timeout` from
    /// now.
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
    /// let q = commute::TQueue::new();
    /// q.atomic().push(1);
    /// assert_eq!(q.atomic().recv_timeout(Duration::from_secs(1)), Ok(1));
    /// assert_eq!(
    ///     q.atomic().recv_timeout(Duration::from_millis(1)),
    ///     Err(commute::RecvTimeoutError::Timeout)
    /// );
    /// ```
    pub fn recv_timeout(self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        atomically(|tx| self.0.recv_until(tx, deadline))
    }

    /// [`TQueue::drain`] in a transaction of its own.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TQueue<u8> = (1..=2).collect();
    /// assert_eq!(q.atomic().drain(), [1, 2]);
    /// ```
    pub fn drain(self) -> Vec<T> {
        atomically(|tx| self.0.drain(tx))
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
    /// Pushes every item, all in one transaction: they appear together, in order. The
    /// iterator is drained first, outside the transaction (an attempt may run more than once).
    ///
    /// Panics inside a transaction (transactions do not nest): there, call
    /// [`push`](TQueue::push) in a loop.
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

impl<T: Clone + Send + Sync + 'static> IntoIterator for TQueue<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    /// Consumes the queue: its items, front to back.
    ///
    /// The items are clones taken in one transaction (`self.atomic().iter()`), and
    /// the queue is then dropped as usual, its own copies with it (see [when items are
    /// dropped](TQueue#when-items-are-dropped)). Moving the items out instead would not be
    /// sound: an attempt of another thread that reached the queue through a handle it has since
    /// let go of may still be cloning them.
    ///
    /// There is no `IntoIterator` for `&TQueue`: reading the items needs a transaction, so use
    /// [`iter`](TQueue::iter) inside one, or `atomic().iter()` outside.
    ///
    /// # Panics
    ///
    /// If called inside a transaction (transactions do not nest).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: commute::TQueue<u32> = (1..=3).collect();
    /// let items: Vec<u32> = q.into_iter().collect();
    /// assert_eq!(items, [1, 2, 3]);
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.atomic().iter().into_iter()
    }
}

impl<T: Clone + Send + Sync + fmt::Debug + 'static> fmt::Debug for TQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.atomic().iter()).finish()
    }
}

impl<T: 'static> Drop for TQueue<T> {
    fn drop(&mut self) {
        // SAFETY: the ends are taken once, here, and never used through `self` again.
        let ends = unsafe {
            DeadQueue {
                head: ManuallyDrop::take(&mut self.head),
                _tail: ManuallyDrop::take(&mut self.tail),
            }
        };
        // An attempt (of any thread) may still hold the ends' addresses: the nodes are freed
        // once no `atomically` call running now remains, with whatever a late commit left.
        // SAFETY: the queue is `Send` only for `T: Send`, and a queue exists only with
        // `T: Send + Sync` (the bounds of its constructors): its nodes may be freed anywhere.
        unsafe { commute_stm::drop_after_running_transactions(Box::new(ends)) };
    }
}

/// A dropped queue's ends, which own its nodes: dropped once no attempt can use them.
struct DeadQueue<T: 'static> {
    head: Box<End<T>>,
    /// Kept alive with `head`: a late commit may still link through it.
    _tail: Box<End<T>>,
}

impl<T: 'static> Drop for DeadQueue<T> {
    fn drop(&mut self) {
        // No attempt holds the queue any more, and every commit's `link` step has run.
        // Replaced sentinels and popped items belong to the pops' retired markers.
        let head = self.head.load_mut();
        // SAFETY: the sentinel is alive: its unlinking owner is the queue (no pop replaced it),
        // and we let go of it last thing (if the marker of the pop that made it the sentinel
        // has not dropped its item yet, that marker frees it).
        let mut node = unsafe { (*head).next.load(Ordering::Relaxed) };
        // SAFETY: as above; nothing but the sentinel's item drop still owns it.
        unsafe { Node::release(head) };
        while !node.is_null() {
            // SAFETY: the nodes after the sentinel hold items no pop took, and belong to the
            // queue alone: each item is dropped once and each node freed once (its `Drop`
            // leaves the item of a published node alone).
            let mut boxed = unsafe { Box::from_raw(node) };
            node = boxed.next.load(Ordering::Relaxed);
            // SAFETY: as above.
            unsafe { boxed.item.assume_init_drop() };
        }
    }
}
