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
//! - A transaction's own pending pushes are the nodes of its publishing operations on `tail`
//!   ([`TVar::first_published_node`], [`TVar::last_published_node`]: they come and go with
//!   the operations, `or_else` rollbacks included), linked privately; a pop that finds the
//!   committed queue empty continues into them, so a transaction sees its own pushes in
//!   order.
//! - `for_each` (and `iter`) walk as repeated pops would, without moving `head`; they read `tail`
//!   first and stop there before going on into the attempt's own pushes, so the walk covers one
//!   snapshot and never follows links that later commits added.
//! - `drain` makes the reads and clones of repeated pops, but reads and writes `head` once,
//!   walking a local sentinel, and retires one `PoppedRun` marker for up to eight pops (their
//!   count in the low bits of its address), which does what their `Popped` markers would and
//!   counts as them towards the thread's next reclamation pass; its vector's capacity is the
//!   tail's count of pushes less the head's position, read outside the transaction as a hint.
//! - The length needs no variable of its own: each node holds its position, the number of items
//!   pushed up to and including it, which the commit that publishes it sets with `tail` locked
//!   (from a count beside `tail` on its cache line, not from the old tail node), so `len` is the
//!   tail's position less the head's, plus the attempt's own pending pushes. A push or a pop
//!   thus commits one variable, not two.
//! - One-call pushes and pops (`.atomic()`) are commits of their own, without a transaction's
//!   buffers: a push publishes its node with [`TVar::publish_box_alone`] (the same `stamp` and
//!   `link` steps, the same lock), a pop reads `head` with `load_seen` (pinned), follows the
//!   sentinel as above (reading `tail` only when it has no successor) and moves `head` with
//!   [`TVar::commit_alone_retiring`], which retires the same marker and takes a version above
//!   the popped node's stamp; a pop that finds `head` changed tries again.
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
//!
//! A snapshot attempt ([`read_only`](crate::read_only)) does not pin: the markers that commits
//! after its snapshot retire are held until it ends (the core holds what commits retire outside
//! variables for the snapshots registered before them), so the nodes and items it walks, from
//! the old `head` kept for it to the old `tail`, stay alive as they do for a pinned attempt.
//!
//! **Taking without cloning.** [`TQueue::take`] makes the reads and writes of a pop, but
//! instead of a clone it returns a [`Taken`] handle (a shared [`Ticket`] and the item's
//! address), and it retires a [`TakenPop`] marker (a type of its own: plain pops pay nothing
//! for takes) and registers a [`Claim`] on the queue's `taken` variable, a commit-time
//! publishing operation that tells the ticket the commit's version. The item moves out in
//! [`Taken::into_inner`], after the transaction. Why that is sound:
//!
//! - *Only a committed take's handle gets the item.* The claim runs in the commit that moves
//!   `head` past the node, and only there: both are in one write set, and `taken` lives as long
//!   as `head` (the queue's drop keeps both for late commits), so neither is purged without the
//!   other. A rolled-back claim is dropped by the core and leaves the ticket pending: that
//!   handle (kept out of its attempt through a captured variable) never touches the node, which
//!   may be freed since; `into_inner` and `Deref` panic.
//! - *The item does not move while it may be read.* Its readers (a pop's or a peek's clone,
//!   `for_each`, another attempt's take) are attempts pinned before the take's commit, and
//!   snapshot attempts registered before it (the take's commit notes the snapshot mark, and
//!   `into_inner` waits for those snapshots with [`commute_stm::wait_for_readers_up_to`]);
//!   attempts that begin later see the node as the sentinel, and never read a sentinel's item.
//!   `into_inner` first waits for the commit's grace period
//!   ([`commute_stm::wait_for_readers`]), the condition under which reclamation would drop the
//!   item. Threads asleep in `retry` are unpinned and not waited for.
//! - *The item is moved or dropped once, and the node freed once.* After the commit, the item's
//!   fate is shared by the marker (reclaimed after the grace period) and the handle: each sets
//!   [`ITEM_DONE`] in the ticket's `fate`, once; a handle dropped without `into_inner` also
//!   sets [`ITEM_LEFT`]. The second drops the item if it was left, then lets go of the node for
//!   the item's owner ([`Node::release`]). (Not in the node's stamp: attempts that began before
//!   the take may still read it as a version, and a handle dropped unused is done at once.) A
//!   handle dropped before its take commits marks its ticket abandoned, and the commit then
//!   does the handle's part. Until then a committed handle reads the item in place (`Deref`,
//!   for `T: Sync`: others may still read it too). The commit hands the claim's count of the
//!   ticket to the marker, which finds the ticket at its own address.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr::{self, NonNull};

use crossbeam_utils::CachePadded;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use crate::blocks;
use crate::closed::{
    Closed, RecvTimeoutError, pop_wait_on_closed, push_on_closed, take_wait_on_closed,
};
use crate::debug;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use crate::unkept::Unkept;
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
/// Set in a [`Ticket`]'s `fate` by the first of the two that share the item of a node taken by
/// a committed [`TQueue::take`], the take's [`TakenPop`] marker and the [`Taken`] handle (see
/// [`Node::item_done`]). Not in the node's stamp: an attempt that began before the take may
/// still read the stamp as a version, and the handle may be done before the grace period.
const ITEM_DONE: u64 = 1;
/// Set with [`ITEM_DONE`] by a [`Taken`] handle dropped without [`Taken::into_inner`]: the item
/// is still in the node, to be dropped by whichever of the two comes second.
const ITEM_LEFT: u64 = 2;

/// A node: no `Option` around the item, so that a node of a word-sized item takes 32 bytes.
struct Node<T> {
    /// Initialised in every node but the first sentinel (stamp [`FIRST`]), until the pop that
    /// makes the node the sentinel has its item dropped (see [`Popped`]).
    item: MaybeUninit<T>,
    next: AtomicPtr<Node<T>>,
    /// The version of the commit that published the node ([`UNPUBLISHED`] before), plus
    /// [`LET_GO`] once one of its two owners has let go of it.
    stamp: AtomicU64,
    /// Once published: the node's position, the number of items pushed into the queue up to
    /// and including it (0 for the first sentinel), so that the length is the tail's position
    /// less the head's. Before: the address of the queue's [`End::pushed`], from which
    /// [`stamp`] takes the position (see there).
    pos: AtomicU64,
}

impl<T> Node<T> {
    /// A node for `item`, not yet published: from this thread's cache of freed blocks (pops
    /// free their nodes to it), or from the allocator; either way a block that may be freed as
    /// a `Box` (the core frees the nodes of rolled-back pushes so).
    fn alloc(item: T) -> *mut Node<T> {
        let node = blocks::allocate_for::<Node<T>>().as_ptr();
        // SAFETY: a fresh block with the layout of a node, ours alone.
        unsafe {
            node.write(Node {
                item: MaybeUninit::new(item),
                next: AtomicPtr::new(ptr::null_mut()),
                stamp: AtomicU64::new(UNPUBLISHED),
                pos: AtomicU64::new(0),
            });
        }
        node
    }

    /// The queue's first sentinel.
    fn first() -> *mut Node<T> {
        Box::into_raw(Box::new(Node {
            item: MaybeUninit::uninit(),
            next: AtomicPtr::new(ptr::null_mut()),
            stamp: AtomicU64::new(FIRST),
            pos: AtomicU64::new(0),
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
            // Its block came from `Node::alloc` (or `Box`, the first sentinel's) and goes back to
            // this thread's cache.
            unsafe {
                ptr::drop_in_place(node);
                blocks::release_for(NonNull::new_unchecked(node));
            }
        }
    }
}

impl<T> Node<T> {
    /// One of the two that share the item of a node taken by a committed [`TQueue::take`]
    /// (its [`TakenPop`] marker and its [`Taken`] handle) is done with it; `left` from a handle
    /// dropped without moving the item out, which leaves it in the node. The second drops the
    /// item if the handle left it, then lets go of the node for the item's owner
    /// ([`Node::release`]).
    ///
    /// The two meet in the take's `ticket` (its `fate`), which both hold.
    ///
    /// # Safety
    ///
    /// `ticket` is the ticket of a committed `take` of a `Node<T>`, which the commit has made
    /// the sentinel; each of the two calls this once, and whichever comes second comes after the
    /// grace period of the take's commit (no transaction that could read the item still runs):
    /// the marker is reclaimed only after it, and a handle that moves the item out waits for it
    /// first ([`commute_stm::wait_for_readers`]). A handle that leaves the item may come first
    /// at any time, even from the commit itself.
    unsafe fn item_done(ticket: &Ticket, left: bool) {
        let mark = if left {
            ITEM_DONE | ITEM_LEFT
        } else {
            ITEM_DONE
        };
        // AcqRel: the second sees what the first did with the item (a handle's move or reads).
        let before = ticket.fate.fetch_or(mark, Ordering::AcqRel);
        if before & ITEM_DONE == 0 {
            return;
        }
        let node = ticket.node.cast::<Node<T>>();
        /// Lets go of the node even if the item's drop panics.
        struct Release<T>(*mut Node<T>);
        impl<T> Drop for Release<T> {
            fn drop(&mut self) {
                // SAFETY: see below: we are the item's owner, letting go once.
                unsafe { Node::release(self.0) }
            }
        }
        let _release = Release(node);
        if (before | mark) & ITEM_LEFT != 0 {
            // SAFETY: the item was left in the node (not moved out by the handle), the other
            // is done with it, and the grace period is over (caller): dropped once, here.
            unsafe { (*node).item.assume_init_drop() };
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
        let old: *mut Node<T> = ptr::with_exposed_provenance_mut(ptr::from_mut(self).addr());
        // SAFETY: `old` is the sentinel the pop replaced (`Popped::of`, provenance exposed
        // there), and this marker, reclaimed once no transaction that could read either node
        // runs, is the pop's (see `Node::popped`).
        unsafe { Node::popped(old) }
    }
}

impl<T> Node<T> {
    /// What reclaiming a pop's marker does: drops the popped item, in `old`'s successor (which
    /// the pop made the sentinel), and lets go of both nodes for the pop.
    ///
    /// # Safety
    ///
    /// `old` is the sentinel a committed pop replaced, and the caller acts for that pop's
    /// marker, once, after the pop's grace period (no transaction pinned before the pop's
    /// commit still runs, nor a snapshot registered before it).
    #[inline(always)]
    unsafe fn popped(old: *mut Self) {
        /// Lets go of the new sentinel even if the item's drop panics.
        struct Release<T>(*mut Node<T>);
        impl<T> Drop for Release<T> {
            fn drop(&mut self) {
                // SAFETY: see below: the pop's marker owns the new sentinel for its item.
                unsafe { Node::release(self.0) }
            }
        }
        // SAFETY: the marker is the owner that unlinked `old`, so it is alive until we let go.
        // Its `next` is the node the pop made the sentinel: a pop moves `head` to the
        // sentinel's successor only, linked before the pop's commit retired the marker (the pop
        // followed the link, or, for a pending node of the popping transaction, the commit's
        // `link` step stored it before the commit handed its retirements to reclamation). The
        // marker owns that node's item drop, so the node is alive too, and the item (of which
        // the pop returned a clone) is dropped exactly once, here, with no transaction left
        // that could read it (caller).
        unsafe {
            let new = (*old).next.load(Ordering::Acquire);
            Node::release(old);
            let _release = Release(new);
            (*new).item.assume_init_drop();
        }
    }
}

/// How many pops one [`PoppedRun`] marker stands for, at most: the count sits in the low bits
/// of the marker's address, which a node's alignment leaves zero.
const RUN: usize = 8;

/// What a drain's commit retires for up to [`RUN`] consecutive pops: a zero-sized marker at
/// the address of the first sentinel they replace, plus the number of pops less one.
///
/// Reclaiming it does, in order, what reclaiming those pops' [`Popped`] markers would do
/// ([`Node::popped`]): the markers would be retired by one commit, at one version, and so
/// become reclaimable together; one marker instead of eight moves one entry through the
/// retired lists and the reclamation pass, and counts as its pops towards the thread's next
/// pass ([`TVar::retire_run_on_commit`]), so that their nodes come back as soon as separate
/// markers' would. A panic in one item's drop does not stop the run: every step runs, then
/// the first panic passes on (as separate markers' panics would, one each).
struct PoppedRun<T>(PhantomData<T>);

impl<T> PoppedRun<T> {
    /// The marker to retire for `pops` (1 to [`RUN`]) consecutive pops, the first of which
    /// replaces the sentinel `first`. Its provenance is exposed, as in [`Popped::of`].
    fn of(first: *mut Node<T>, pops: usize) -> *mut PoppedRun<T> {
        const { assert!(align_of::<Node<T>>() >= RUN) };
        debug_assert!((1..=RUN).contains(&pops));
        ptr::without_provenance_mut(first.expose_provenance() | (pops - 1))
    }
}

impl<T> Drop for PoppedRun<T> {
    fn drop(&mut self) {
        let addr = ptr::from_mut(self).addr();
        let mut old: *mut Node<T> = ptr::with_exposed_provenance_mut(addr & !(RUN - 1));
        let mut first_panic = None;
        for _ in 0..=(addr & (RUN - 1)) {
            // SAFETY: `old` is the sentinel that the run's next pop replaced (the first one's
            // from `PoppedRun::of`, each later one the successor its pop moved `head` to), and
            // this marker stands for that pop's, reclaimed after the drain's grace period. The
            // successor is read first: the step may free `old`. It stays alive after the step,
            // which lets go of it only for its item; its unlinking is the run's next step, or a
            // later pop's, or the queue's drop.
            let next = unsafe { (*old).next.load(Ordering::Acquire) };
            // SAFETY: as above.
            let step = catch_unwind(AssertUnwindSafe(|| unsafe { Node::popped(old) }));
            if let Err(payload) = step {
                crate::keep_first_panic(&mut first_panic, payload);
            }
            old = next;
        }
        if let Some(payload) = first_panic {
            resume_unwind(payload);
        }
    }
}

/// What a [`TQueue::take`]'s commit retires: as [`Popped`], but the item of the node that
/// became the sentinel is shared with the take's [`Taken`] handle ([`Node::item_done`]), which
/// may move it out. A type of its own, so that plain pops pay nothing for takes; a zero-sized
/// marker at the address of the take's [`Ticket`], whose count the commit hands it
/// ([`commit_claim`]).
struct TakenPop<T>(PhantomData<T>);

impl<T> TakenPop<T> {
    /// The marker to retire for the take of `ticket` (its provenance exposed).
    fn of(ticket: &Arc<Ticket>) -> *mut TakenPop<T> {
        ptr::without_provenance_mut(Arc::as_ptr(ticket).expose_provenance())
    }
}

impl<T> Drop for TakenPop<T> {
    fn drop(&mut self) {
        // SAFETY: the marker is retired by the commit that also ran the take's claim, which
        // left one count of the ticket to it (`commit_claim`); its provenance was exposed.
        let ticket: Arc<Ticket> =
            unsafe { Arc::from_raw(ptr::with_exposed_provenance(ptr::from_mut(self).addr())) };
        let old = ticket.old.cast::<Node<T>>();
        // SAFETY: as in `Popped::drop`: `old` is the sentinel the take replaced and this marker
        // unlinked it; the ticket's node is the one the take made the sentinel, whose item this
        // marker shares with the take's handle. The marker is reclaimed after the commit's
        // grace period, as `item_done` requires, and calls it once.
        unsafe {
            Node::release(old);
            Node::<T>::item_done(&ticket, false);
        }
    }
}

/// The state of a [`Taken`] handle's take while its attempt runs; then the commit's version,
/// or [`ABANDONED`].
const PENDING: u64 = 0;
/// A [`Taken`] handle dropped before its take committed (if it ever does).
const ABANDONED: u64 = u64::MAX;

/// What a [`Taken`] handle shares with the commit of its take (whether, and at which version,
/// it committed) and then with the take's [`TakenPop`] marker (the item's fate). A `TMap`
/// removal of an [`Owned`](crate::Owned) value makes one too ([`Ticket::for_value`]).
pub(crate) struct Ticket {
    /// [`PENDING`]; the take's commit version (never 0) once it committed; [`ABANDONED`] if the
    /// handle was dropped before.
    state: AtomicU64,
    /// [`ITEM_DONE`] and [`ITEM_LEFT`] (see [`Node::item_done`]).
    fate: AtomicU64,
    /// The snapshot mark taken by the commit ([`commute_stm::snapshot_mark`]): the `read_only`
    /// transactions that may still read the item in place.
    mark: AtomicU64,
    /// The sentinel the take replaces (a `Node<S>` of the queue's stored type `S`).
    old: *mut (),
    /// The node taken, which the take makes the sentinel (a `Node<S>`); for a map value, its
    /// cell.
    pub(crate) node: *mut (),
    /// `Node::<S>::item_done`.
    item_done: unsafe fn(&Ticket, bool),
}

impl Ticket {
    /// A pending ticket for the value in `cell` (a map's), which `item_done` ends.
    pub(crate) fn for_value(cell: *mut (), item_done: unsafe fn(&Ticket, bool)) -> Arc<Ticket> {
        Arc::new(Ticket {
            state: AtomicU64::new(PENDING),
            fate: AtomicU64::new(0),
            mark: AtomicU64::new(0),
            old: ptr::null_mut(),
            node: cell,
            item_done,
        })
    }

    /// The take committed: `version` is its commit's version (or a bound above every attempt
    /// that began before it), `mark` the snapshots that may still read the item. A handle
    /// dropped already gives the item back ([`Node::item_done`], or the map's).
    pub(crate) fn commit(&self, version: u64, mark: u64) {
        // Before the state's swap publishes it: the snapshots that may still see the item.
        self.mark.store(mark, Ordering::Relaxed);
        // AcqRel: the handle's load sees that the take committed; a handle dropped before hands
        // its share of the item over to us.
        if self.state.swap(version, Ordering::AcqRel) == ABANDONED {
            // SAFETY: the take committed, and a handle that leaves the item may be done first
            // at any time; it is done once (it was dropped without calling this).
            unsafe { (self.item_done)(self, true) };
        }
    }
}

// SAFETY: the node pointers are only used by whoever owns the item's fate (the handle, or the
// commit for a handle already dropped, and the marker), each once, through `item_done`; the
// queue's item type is `Send`, so the item may be dropped or moved wherever that runs.
unsafe impl Send for Ticket {}
// SAFETY: shared only through the atomics `state` and `fate`.
unsafe impl Sync for Ticket {}

/// What a take registers on its queue's `taken` variable: a zero-sized marker at the address of
/// the handle's [`Ticket`] (one `Arc` count, whose provenance is exposed). The core drops it as
/// a `Box` if the take is rolled back, or hands it to [`commit_claim`] at commit.
struct Claim;

impl Claim {
    /// The marker for `ticket`, which it owns.
    fn of(ticket: Arc<Ticket>) -> *mut Claim {
        ptr::without_provenance_mut(Arc::into_raw(ticket).expose_provenance())
    }

    /// The ticket the marker at `claim` owns.
    ///
    /// # Safety
    ///
    /// `claim` comes from [`Claim::of`], and is taken up once.
    unsafe fn ticket(claim: *mut Claim) -> Arc<Ticket> {
        // SAFETY: the address of an `Arc::into_raw` whose provenance `Claim::of` exposed; its
        // count is the marker's (caller).
        unsafe { Arc::from_raw(ptr::with_exposed_provenance(claim.addr())) }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // The take was rolled back (its attempt, or the `or_else` branch, or the queue was
        // dropped in the same attempt): the handle stays `PENDING`, and never touches the node.
        // SAFETY: a marker dropped by the core was made by `Claim::of`, and is dropped once.
        drop(unsafe { Claim::ticket(ptr::from_mut(self)) });
    }
}

/// Runs at the take's commit, with the queue's `taken` variable locked: the handle learns that
/// its take committed, and at which version. A handle dropped already gives the item back to the
/// take's marker, which drops it as a pop's ([`Node::item_done`]). The claim's count of the
/// ticket goes to the take's [`TakenPop`] marker, which the same commit retires: the claim and
/// the retirement are registered together and purged together (by an `or_else` that rolls the
/// branch back; `head` and `taken` are never dropped while an attempt may use them, see
/// [`DeadQueue`]), so the marker is retired exactly when this runs.
fn commit_claim(_previous: u64, version: u64, claim: *mut Claim) -> u64 {
    // SAFETY: the marker registered by `take`, handed over once by the commit.
    let ticket = unsafe { Claim::ticket(claim) };
    ticket.commit(version, commute_stm::snapshot_mark());
    // The marker's count (see above).
    let _ = Arc::into_raw(ticket);
    version
}

/// The item removed by a [`TQueue::take`] (or [`TBoundedQueue::take`](crate::TBoundedQueue::take)),
/// or the [`Owned`](crate::Owned) value that a [`TMap::remove`](crate::TMap::remove) or
/// [`TMap::insert`](crate::TMap::insert) removed or replaced, to be moved out with
/// [`into_inner`](Taken::into_inner) once the transaction has committed.
///
/// A pop that hands out a clone can drop the queue's copy later, once no transaction can still
/// read it; a take moves the item itself, so it must wait for those readers, and for its own
/// commit: an attempt is speculative, and one rolled back must leave the item in the queue,
/// unmoved. So `take` returns this handle, and the item moves when the handle is consumed after
/// the commit, outside any transaction. Until then the item stays in the queue's node (no longer
/// in the queue), and the handle can read it ([`Deref`](core::ops::Deref)) once the take has
/// committed.
///
/// - [`into_inner`](Taken::into_inner) outside transactions, after the commit: waits until no
///   transaction of another thread that began before the commit still runs (at once if none),
///   then moves the item out.
/// - A handle from an attempt that did not commit (kept out of it through a captured variable)
///   holds nothing: `into_inner` panics, and the item is still in the queue (or map).
/// - A handle dropped without `into_inner`: the item is dropped as a popped item is, by a
///   later reclamation pass (see [when items are dropped](TQueue#when-items-are-dropped)); a
///   map value, with the last bucket that held it. If that came first, the handle's drop drops
///   it: never inside a transaction or a pin (then, once they have ended).
///
/// # Examples
///
/// ```
/// use commute::{atomically, TQueue};
///
/// let jobs: TQueue<Box<dyn FnOnce() -> u32 + Send>> = TQueue::new();
/// jobs.atomic().push(Box::new(|| 7));
/// let job = atomically(|tx| jobs.take(tx)).expect("one job queued");
/// assert_eq!(job.into_inner()(), 7);
/// ```
pub struct Taken<T: 'static> {
    ticket: Arc<Ticket>,
    /// The item, in the node the ticket names.
    item: *mut T,
}

// SAFETY: the handle moves the item out (`into_inner`) or may drop it, wherever it is: `T: Send`.
unsafe impl<T: Send + 'static> Send for Taken<T> {}
// SAFETY: through `&Taken` the item is only read (`Deref`, for `T: Sync`).
unsafe impl<T: Sync + 'static> Sync for Taken<T> {}

impl<T: 'static> Taken<T> {
    /// A handle for `item`, inside the node (or map cell) of `ticket`.
    pub(crate) fn new(ticket: Arc<Ticket>, item: *mut T) -> Self {
        Taken { ticket, item }
    }

    /// The version of the take's commit, if it committed.
    fn committed(&self) -> Option<u64> {
        let state = self.ticket.state.load(Ordering::Acquire);
        (state != PENDING).then_some(state)
    }

    /// Moves the item out, once no transaction that could still read it runs.
    ///
    /// Waits (outside transactions) until every transaction of another thread that began
    /// before the take committed has finished, [`read_only`](crate::read_only) snapshots
    /// included (they may read the item in place however long they run); threads blocked in
    /// [`retry`](crate::Transaction::retry) or between transactions, and snapshots taken after
    /// the commit, are not waited for.
    ///
    /// # Panics
    ///
    /// If called inside a transaction or inside a pin ([`commute_stm::pinned`]; see
    /// [`commute_stm::wait_for_readers`]), or if the take that made this handle did not commit
    /// (a handle kept out of an attempt that was rolled back: the item is still in the queue,
    /// and a later pop or take gets it).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    ///
    /// let q = TQueue::new();
    /// q.atomic().push(String::from("job"));
    /// let taken = atomically(|tx| q.take(tx)).unwrap();
    /// let job: String = taken.into_inner();
    /// assert_eq!(job, "job");
    /// assert!(q.atomic().is_empty());
    /// ```
    pub fn into_inner(self) -> T {
        assert!(
            !crate::in_transaction(),
            "commute: Taken::into_inner called inside a transaction; call it once the \
             transaction that took the item has returned"
        );
        let Some(version) = self.committed() else {
            panic!(
                "commute: Taken::into_inner on a handle whose take did not commit (it was kept out \
                 of an attempt that was rolled back); the item is still in the queue (or map)"
            );
        };
        commute_stm::wait_for_readers_up_to(version, self.ticket.mark.load(Ordering::Relaxed));
        let this = ManuallyDrop::new(self);
        // SAFETY: the take committed, so the handle owns the item's fate with the take's
        // marker (`Node::item_done`), and neither has let go yet (the handle is consumed once,
        // here): the item is in its node, alive. The grace period of the commit is over
        // (`wait_for_readers`; the calling thread is outside transactions): no transaction
        // reads the item any more, and none that begins now can reach it. It is read once.
        let item = unsafe { ptr::read(this.item) };
        // SAFETY: the handle is done with the item, once; the grace period is over. The ticket
        // is moved out of the handle, which is never used again.
        unsafe {
            let ticket = ptr::read(&this.ticket);
            (ticket.item_done)(&ticket, false);
        }
        item
    }
}

/// Panics where a one-call take could not move its item out: inside a transaction, or inside
/// a pin ([`commute_stm::pinned`], [`TBox::load_with`](crate::TBox::load_with)'s closure), where
/// [`Taken::into_inner`] may not wait for readers. Called before the take's transaction, so that
/// a refusal leaves the item in the queue.
#[track_caller]
#[inline]
pub(crate) fn assert_can_take_alone() {
    crate::atomic::assert_outside_transaction();
    assert!(
        !commute_stm::__private::in_pin(),
        "commute: a one-call take (.atomic().take(), take_wait()) moves the item out once no \
         reader can see it, a wait that a pin (pinned, TBox::load_with's closure) forbids; take \
         it once the pin has ended"
    );
}

impl<T: Sync + 'static> core::ops::Deref for Taken<T> {
    type Target = T;

    /// The item, while it is still in the handle.
    ///
    /// # Panics
    ///
    /// If the take that made this handle has not committed (inside its own attempt, too: the
    /// item can be read once the transaction has returned).
    fn deref(&self) -> &T {
        assert!(
            self.committed().is_some(),
            "commute: a Taken item can be read once its take has committed (not inside the \
             attempt, nor from an attempt that was rolled back)"
        );
        // SAFETY: the take committed and the handle has not let go of the item (it would have
        // been consumed): the item stays in its node until then, and is only read meanwhile
        // (by attempts that began before the commit, and through this handle): `T: Sync`.
        unsafe { &*self.item }
    }
}

impl<T: 'static> Drop for Taken<T> {
    fn drop(&mut self) {
        // AcqRel: if the commit comes later, it sees that the handle is gone and gives the item
        // back to the marker; if it came before, we see it did.
        let state = self.ticket.state.swap(ABANDONED, Ordering::AcqRel);
        if state == PENDING {
            // Rolled back (never to commit), or committing later: nothing of the node is ours.
            return;
        }
        /// A committed handle's share of the item, given back once no transaction runs.
        struct Left(Arc<Ticket>);
        impl Drop for Left {
            fn drop(&mut self) {
                // SAFETY: the take committed and the handle is done with the item, once; if the
                // marker comes second it runs after the grace period; if we do, the marker has
                // run, which it does after it.
                unsafe { (self.0.item_done)(&self.0, true) }
            }
        }
        let left = Left(self.ticket.clone());
        // We may be the second and drop the item, whose `Drop` may use commute (run
        // transactions, wait for readers): never inside a transaction or a pin.
        if crate::in_transaction() {
            // SAFETY: the item is `Send` (the ticket's queue holds `Send` items), and nothing
            // but this uses the handle's share any more.
            unsafe { commute_stm::drop_after_running_transactions(Box::new(left)) };
        } else if commute_stm::__private::in_pin() {
            // Once the pin has ended.
            commute_stm::drop_outside(left);
        } else {
            drop(left);
        }
    }
}

impl<T: 'static> fmt::Debug for Taken<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Taken")
            .field("committed", &self.committed().is_some())
            .finish_non_exhaustive()
    }
}

/// One end of a queue (`head` or `tail`): a variable on a cache line of its own, in a box of
/// its own (a running attempt refers to it by address, and the queue itself may move).
struct End<T: 'static> {
    var: TVar<*mut Node<T>, Inline>,
    /// At the tail: the position of the tail node (items ever pushed), on the variable's cache
    /// line, so that a commit that publishes a node takes its position without reading the
    /// old tail's line (see [`stamp`]). Written only by `stamp`, with `tail` locked (the lock
    /// orders one commit's stores before the next's loads), and read there; elsewhere only as
    /// a hint (`TQueue::committed_hint`). Unused at the head.
    pushed: AtomicU64,
}

impl<T: 'static> End<T> {
    /// An end holding `node`, in a padded box of its own.
    #[track_caller]
    fn boxed(node: *mut Node<T>) -> Box<CachePadded<End<T>>> {
        Box::new(CachePadded::new(End {
            // SAFETY: the variable goes straight into a box of its own, which never moves it.
            var: unsafe { TVar::new_inline(node) },
            pushed: AtomicU64::new(0),
        }))
    }
}

impl<T: 'static> core::ops::Deref for End<T> {
    type Target = TVar<*mut Node<T>, Inline>;

    fn deref(&self) -> &Self::Target {
        &self.var
    }
}

impl<T: 'static> core::ops::DerefMut for End<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.var
    }
}

/// Publishes `node` at commit, with `tail` locked: stamps it with the commit version and its
/// position (the tail's, plus one); it becomes the new tail. [`link`] follows once `tail` is
/// unlocked.
fn stamp<T>(_old_tail: *mut Node<T>, version: u64, node: *mut Node<T>) -> *mut Node<T> {
    // SAFETY: runs once, at commit; `node` is ours until the release store of the new tail (by
    // the commit, after this) or of the link (by `link`) makes it reachable, and both come
    // after these stores. Its `pos` holds the address of its queue's `End::pushed` (set by
    // `push_node`), alive since the tail is (the commit is writing it), and written only here,
    // under the tail's lock, which this commit holds.
    unsafe {
        let pushed = &*((*node).pos.load(Ordering::Relaxed) as usize as *const AtomicU64);
        let pos = pushed.load(Ordering::Relaxed) + 1;
        pushed.store(pos, Ordering::Relaxed);
        (*node).pos.store(pos, Ordering::Relaxed);
        (*node).next.store(ptr::null_mut(), Ordering::Relaxed);
        (*node).stamp.store(version, Ordering::Relaxed);
    }
    node
}

/// The successor of `sentinel`, once the commit that published it (and has unlocked `tail`, or
/// is about to) has linked it: waits for the link, giving way to the committer if it is slow.
fn wait_for_link<T>(sentinel: &Node<T>) -> *mut Node<T> {
    let mut waited = 0u32;
    loop {
        let next = sentinel.next.load(Ordering::Acquire);
        if !next.is_null() {
            return next;
        }
        waited = waited.saturating_add(1);
        if waited < 64 {
            crate::sync::spin_hint();
        } else {
            crate::sync::yield_now();
        }
    }
}

/// Links `node` after `old_tail`, the tail that [`stamp`] replaced, once the commit has unlocked
/// `tail`.
fn link<T>(old_tail: *mut Node<T>, node: *mut Node<T>) {
    // SAFETY: `old_tail` is alive: a node is freed only after a pop moved `head` past it, and a
    // pop moves past a node only to its successor, which for `old_tail` is the one this store
    // sets (also for a node pushed earlier in the same transaction: `stamp` reset its link to
    // null, and this store sets it again). The release store makes the node's stamp and item
    // visible to whoever follows the link.
    unsafe { (*old_tail).next.store(node, Ordering::Release) };
}

/// A transactional FIFO queue: pushes never conflict with each other, nor with pops of other
/// items.
///
/// Items pushed by one transaction appear together, in order, when it commits; an aborted
/// transaction's pushes never appear and its pops are not lost. A pop returns a clone of the
/// item; a [`take`](TQueue::take) moves the item itself out (after the commit, through a
/// [`Taken`] handle), so `T` need not be `Clone`.
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
/// - **Taken.** An item removed by [`take`](TQueue::take) is not dropped by the queue: it
///   moves out with [`Taken::into_inner`]. A [`Taken`] handle dropped without `into_inner`
///   leaves the item to be dropped as a popped item is, by a reclamation pass (or by the
///   handle's drop, if that pass has run already; outside any transaction either way).
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
    head: ManuallyDrop<Box<CachePadded<End<T>>>>,
    tail: ManuallyDrop<Box<CachePadded<End<T>>>>,
    /// Only published to: each [`take`](TQueue::take) registers its [`Claim`] on it, which
    /// lets the handle know that (and when) the take committed. It lives as long as `head`
    /// (in [`DeadQueue`] after the queue's drop): a take commits exactly when the pop it made
    /// does, even into a queue dropped meanwhile.
    taken: ManuallyDrop<TVar<u64>>,
    /// Set by [`close`](TQueue::close); read by the channel operations, and by
    /// [`push`](TQueue::push) only once a close has begun (`close_begun`): pushes and pops of
    /// a queue never closed stay conflict-free.
    closed: TVar<bool>,
    /// Set by [`close`](TQueue::close) in its attempt, before its commit (never unset): while
    /// false, no close has committed, and [`push`](TQueue::push) reads nothing; once true, a
    /// push reads `closed` to refuse a queue whose close committed before it began.
    close_begun: AtomicBool,
    _owns: PhantomData<T>,
}

// SAFETY: the raw node pointers are owned by the queue; items are moved in by pushes, moved
// out by takes and dropped on whichever thread reclaims a pop's marker or drops the queue
// (`T: Send`).
unsafe impl<T: Send + 'static> Send for TQueue<T> {}
// SAFETY: as above; all shared mutation goes through the STM or the nodes' atomics. Items are
// reached by reference from several threads only through the methods that require `T: Sync`
// (`pop`, `peek` and `iter` clone them, `for_each` lends them, a `Taken` handle derefs), as a
// `Mutex<T>` is `Sync` for `T: Send`.
unsafe impl<T: Send + 'static> Sync for TQueue<T> {}

impl<T: Send + 'static> TQueue<T> {
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
            head: ManuallyDrop::new(End::boxed(sentinel)),
            tail: ManuallyDrop::new(End::boxed(sentinel)),
            taken: ManuallyDrop::new(TVar::new(0)),
            closed: TVar::new(false),
            close_begun: AtomicBool::new(false),
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
        self.closed.set_label(label);
        self
    }

    /// Appends `item` at the back; it becomes visible when the transaction commits.
    ///
    /// Does not read the queue: concurrent pushes never conflict. On a queue that may be
    /// closed, use [`send`](TQueue::send), which gives the item back instead.
    ///
    /// # Panics
    ///
    /// If the queue was closed (the close committed) before this call: the item would land
    /// after the close, where a receiver that saw the queue closed and drained never looks.
    /// (Once a close has begun, a push reads the closed flag, so its transaction also panics,
    /// when run again, if a close commits before it does.) A push called before any close
    /// began is not checked again: racing a close, its transaction may commit after it; that
    /// is what `send` is for.
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
    #[inline(always)]
    pub fn push(&self, tx: &Transaction, item: T) {
        if self.close_begun.load(Ordering::Acquire) {
            self.check_open_for_push(tx);
        }
        self.push_open(tx, item);
    }

    /// Panics if a close of the queue has committed (see [`push`](TQueue::push)): once a close
    /// has begun, a push reads `closed`. Its conflict is not passed on (a push returns nothing),
    /// but the attempt it met does not commit, and runs again.
    #[cold]
    #[track_caller]
    fn check_open_for_push(&self, tx: &Transaction) {
        if self.closed.read(tx).unwrap_or(false) {
            push_on_closed("TQueue");
        }
    }

    /// [`check_open_for_push`](Self::check_open_for_push) for the forms that run transactions
    /// of their own, before them: a close that committed before the call is seen.
    #[track_caller]
    fn check_open_alone(&self) {
        if self.close_begun.load(Ordering::Acquire) && atomically(|tx| self.closed.read(tx)) {
            push_on_closed("TQueue");
        }
    }

    /// [`push`](TQueue::push) without the check of a close: for callers that have read
    /// `closed` in the same transaction (the channel operations, `TBoundedQueue`).
    pub(crate) fn push_open(&self, tx: &Transaction, item: T) {
        // SAFETY: a fresh node, handed over to the write set.
        unsafe { self.push_node(tx, Node::alloc(item), false) };
    }

    /// Appends `node`, a fresh node of this queue's kind. If `kept`, a rollback leaves the node
    /// to the caller (to push again in the next attempt) instead of freeing it.
    ///
    /// # Safety
    ///
    /// `node` comes from `Node::alloc` and is owned by the caller alone; if `kept`, the caller
    /// publishes it in at most one committing attempt and frees or leaks it if none commits.
    #[inline(always)]
    unsafe fn push_node(&self, tx: &Transaction, node: *mut Node<T>, kept: bool) {
        // SAFETY: the node is ours alone (caller).
        unsafe { self.aim(node) };
        if let Some(last) = self.tail.last_published_node::<Node<T>>(tx) {
            // SAFETY: `last` is this attempt's own unpublished node, owned by its publishing
            // operation in the write set; nobody else can see it yet.
            unsafe { (*last).next.store(node, Ordering::Relaxed) };
        }
        // SAFETY: `stamp` and `link` cannot panic or block; the memory they write (the node,
        // the old tail's link) becomes reachable only through the new tail or through a link
        // whose stamp readers check with `observe_version`. The node is fresh: the write set
        // owns it until the commit hands it to `stamp` (or frees it if the push is rolled
        // back). The old tail stays alive until `link` ran (see there), and readers that see
        // the new tail before the link wait for it (`first_node`).
        unsafe {
            if kept {
                self.tail
                    .publish_kept_box_on_commit_then(tx, node, stamp::<T>, link::<T>)
            } else {
                self.tail
                    .publish_box_on_commit_then(tx, node, stamp::<T>, link::<T>)
            }
        };
    }

    /// Tells `node`, about to be pushed, where [`stamp`] takes its position from: this queue's
    /// [`End::pushed`].
    ///
    /// # Safety
    ///
    /// `node` is a fresh node owned by the caller alone.
    unsafe fn aim(&self, node: *mut Node<T>) {
        let pushed: *const AtomicU64 = &self.tail.pushed;
        // SAFETY: the node is ours alone (caller).
        unsafe { (*node).pos.store(pushed as usize as u64, Ordering::Relaxed) };
    }

    /// The first node this attempt pushed, or null if it pushed none.
    fn pending_first(&self, tx: &Transaction) -> *mut Node<T> {
        self.tail
            .first_published_node::<Node<T>>(tx)
            .unwrap_or(ptr::null_mut())
    }

    /// The successor of the sentinel `head` in this attempt's view, or null if the queue is
    /// empty. Takes the attempt's own pending pushes into account. Inlined: the hot step of
    /// `pop` and `drain`.
    #[inline(always)]
    fn first_node(&self, tx: &Transaction, head: *mut Node<T>) -> StmResult<*mut Node<T>> {
        // SAFETY: `head` was read from `self.head` after `tx.pin()`, so it stays alive for the
        // attempt (or it is this attempt's own pending node, owned by its publishing operation).
        let sentinel = unsafe { &*head };
        if sentinel.stamp.load(Ordering::Relaxed) == UNPUBLISHED {
            // Already inside our own pending pushes.
            let last = self
                .tail
                .last_published_node::<Node<T>>(tx)
                .unwrap_or(ptr::null_mut());
            return Ok(if head == last {
                ptr::null_mut()
            } else {
                sentinel.next.load(Ordering::Relaxed)
            });
        }
        let snapshot = tx.is_snapshot();
        let mut next = sentinel.next.load(Ordering::Acquire);
        if next.is_null() || snapshot {
            // Empty in the committed queue? Only `tail` can tell consistently. A snapshot
            // attempt asks first: links after its snapshot's `tail` are later commits', which
            // it must not follow (their versions cannot tell it so: see `read_only`).
            if self.tail.read(tx)? == head {
                return Ok(self.pending_first(tx));
            }
        }
        if next.is_null() {
            // In this attempt's snapshot the sentinel has a successor, so the commit that
            // published it has unlocked `tail` and links it (or has linked it since we looked).
            next = wait_for_link(sentinel);
        }
        if !snapshot {
            // SAFETY: published nodes stay alive while we are pinned.
            tx.observe_version(unsafe { (*next).stamp.load(Ordering::Relaxed) })?;
        }
        // (A snapshot's link, before its `tail`, was published by a commit before it.)
        Ok(next)
    }

    /// Removes the front item, or returns `None` if the queue is empty, without cloning it: the
    /// item moves out of the queue through the returned [`Taken`] handle, with
    /// [`Taken::into_inner`] once the transaction has committed. So `T` need not be `Clone`.
    ///
    /// Inside the attempt it is a [`pop`](TQueue::pop): the same reads and writes, the same
    /// conflicts. If the attempt is rolled back, the item stays at the front and the handle
    /// (if kept out of the attempt) holds nothing. A handle dropped without `into_inner` leaves
    /// the item to be dropped as a popped item is (see [when items are
    /// dropped](TQueue#when-items-are-dropped)).
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    /// use std::sync::Arc;
    ///
    /// type Job = Box<dyn FnOnce() + Send>;
    /// let jobs: Arc<TQueue<Job>> = Arc::new(TQueue::new());
    /// let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
    /// for _ in 0..3 {
    ///     let ran = ran.clone();
    ///     jobs.atomic().push(Box::new(move || {
    ///         ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ///     }));
    /// }
    /// while let Some(job) = atomically(|tx| jobs.take(tx)) {
    ///     (job.into_inner())();
    /// }
    /// assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 3);
    /// ```
    pub fn take(&self, tx: &Transaction) -> StmResult<Option<Taken<T>>> {
        self.take_map(tx, |item| item)
    }

    /// Removes the front item as [`take`](TQueue::take) does, blocking (through
    /// [`Transaction::retry`]) while the queue is empty.
    ///
    /// # Errors
    ///
    /// As for [`pop`](TQueue::pop), plus the retry signal while empty.
    ///
    /// # Panics
    ///
    /// If the queue is [closed](TQueue::close) and empty: no item can come, so it would block
    /// forever. A consumer of a queue that may be closed uses [`take`](TQueue::take) and
    /// [`is_closed`](TQueue::is_closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TQueue};
    /// use std::sync::Arc;
    ///
    /// let q: Arc<TQueue<Box<u32>>> = Arc::new(TQueue::new());
    /// let consumer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || atomically(|tx| q.take_wait(tx)).into_inner())
    /// };
    /// q.atomic().push(Box::new(42));
    /// assert_eq!(*consumer.join().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn take_wait(&self, tx: &Transaction) -> StmResult<Taken<T>> {
        match self.take_unless_closed(tx)? {
            Some(taken) => Ok(taken),
            None => take_wait_on_closed("TQueue"),
        }
    }

    /// [`take_wait`](TQueue::take_wait), with `None` for a closed and empty queue: the
    /// one-call form panics outside its transaction, where `#[track_caller]` names its caller.
    fn take_unless_closed(&self, tx: &Transaction) -> StmResult<Option<Taken<T>>> {
        match self.take(tx)? {
            Some(taken) => Ok(Some(taken)),
            None if self.closed.read(tx)? => Ok(None),
            None => tx.retry(),
        }
    }

    /// [`take`](TQueue::take), with the handle's item a part of the stored item: `project`
    /// gets a pointer to the item in its node (alive and initialised, read only as `pop`
    /// would, while the attempt runs) and returns the pointer to the part the handle moves
    /// out; the rest is left in the node and must need no drop.
    pub(crate) fn take_map<U: 'static>(
        &self,
        tx: &Transaction,
        project: impl FnOnce(*mut T) -> *mut U,
    ) -> StmResult<Option<Taken<U>>> {
        tx.pin();
        let head = self.head.read(tx)?;
        let first = self.first_node(tx, head)?;
        if first.is_null() {
            return Ok(None);
        }
        self.head.write(tx, first);
        let ticket = Arc::new(Ticket {
            state: AtomicU64::new(PENDING),
            fate: AtomicU64::new(0),
            mark: AtomicU64::new(0),
            old: head.cast(),
            node: first.cast(),
            item_done: Node::<T>::item_done,
        });
        // SAFETY: the marker is zero-sized. As in `pop`, with the take's own marker: if this
        // attempt commits, the old sentinel is unlinked and `first`'s item belongs to the
        // marker and the handle (`Node::item_done`); the marker is this pop's only retirement,
        // and it is retired exactly when the claim below runs, which hands it a count of the
        // ticket (see `commit_claim`). If the attempt rolls back, neither happens.
        unsafe { self.head.retire_on_commit(tx, TakenPop::<T>::of(&ticket)) };
        let handle = Taken::new(
            ticket.clone(),
            // SAFETY: `first` stays alive while the attempt is pinned. A raw pointer, not a
            // reference: other attempts may be reading the item.
            project(unsafe { (&raw mut (*first).item).cast::<T>() }),
        );
        // SAFETY: `commit_claim` neither panics nor blocks (nor frees: its count of the ticket
        // goes to the marker); it writes only the ticket, which the handle reads through its
        // acquire load and the marker after the commit. The claim is a fresh marker owning one
        // count of the ticket.
        unsafe {
            self.taken
                .publish_box_on_commit(tx, Claim::of(ticket), commit_claim)
        };
        Ok(Some(handle))
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
        // Before the commit, so that whoever sees the close committed (through any variable it
        // wrote) sees this too, and a push after that reads `closed`.
        self.close_begun.store(true, Ordering::Release);
        self.closed.write(tx, true);
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
}

impl<T: Clone + Send + Sync + 'static> TQueue<T> {
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
    #[inline(always)]
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
        match self.recv(tx)? {
            Some(item) => Ok(item),
            None => pop_wait_on_closed("TQueue"),
        }
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
        // The reads, clones and retirements of repeated pops, with `head` read and written
        // once: the walk moves a local sentinel instead of the variable.
        tx.pin();
        let head = self.head.read(tx)?;
        let mut sentinel = head;
        // SAFETY: read after `tx.pin()`, in this attempt.
        // Copies: let go of outside the transaction if a conflict stops the walk.
        let mut items = Unkept::new(Vec::with_capacity(unsafe { self.committed_hint(head) }));
        // The pops not yet retired: `run` of them, from the sentinel `run_start` on.
        let (mut run_start, mut run) = (head, 0);
        loop {
            let first = self.first_node(tx, sentinel)?;
            if first.is_null() {
                break;
            }
            // SAFETY: as in `pop`: `first` follows a sentinel, so it holds an item, alive while
            // the attempt is pinned (or a pending node of this attempt).
            items.push(unsafe { (*first).clone_item() });
            sentinel = first;
            run += 1;
            if run == RUN {
                // SAFETY: `head` is written below to `sentinel`, the last of these pops' items,
                // or to a node after it; their marker is retired here only.
                unsafe { self.retire_run(tx, run_start, run) };
                (run_start, run) = (sentinel, 0);
            }
        }
        if run > 0 {
            // SAFETY: as above, for the last pops.
            unsafe { self.retire_run(tx, run_start, run) };
        }
        if sentinel != head {
            self.head.write(tx, sentinel);
        }
        Ok(items.take())
    }

    /// Retires, if the attempt commits, the marker of `pops` (1 to [`RUN`]) consecutive pops
    /// of `drain`, the first of which replaces the sentinel `first`.
    ///
    /// # Safety
    ///
    /// The attempt moves `head` past those pops' items (it writes `head` to the last of them
    /// or to a node after it), and retires no other marker for them: as for a pop's marker in
    /// `pop`, the commit then unlinks each sentinel and pops each item, once. Tied to `head`,
    /// as there.
    unsafe fn retire_run(&self, tx: &Transaction, first: *mut Node<T>, pops: usize) {
        // SAFETY: the caller's; a marker is zero-sized (its address is only data).
        unsafe {
            self.head
                .retire_run_on_commit(tx, PoppedRun::of(first, pops), pops)
        };
    }

    /// About how many committed items follow the sentinel `head`, read without the
    /// transaction (a capacity for `drain`, nothing more): the count of items ever pushed, as
    /// the last commit that pushed left it, less `head`'s position; 0 for a pending `head`.
    ///
    /// # Safety
    ///
    /// `head` was read from `self.head` by a pinned attempt that is still running (or is one
    /// of its pending nodes), so that it is alive.
    unsafe fn committed_hint(&self, head: *mut Node<T>) -> usize {
        // SAFETY: alive (caller).
        let sentinel = unsafe { &*head };
        if sentinel.stamp.load(Ordering::Relaxed) == UNPUBLISHED {
            // A pending node's `pos` is still the address of `pushed`.
            return 0;
        }
        let pushed = self.tail.pushed.load(Ordering::Relaxed);
        usize::try_from(pushed.saturating_sub(sentinel.pos.load(Ordering::Relaxed))).unwrap_or(0)
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
}

impl<T: Send + 'static> TQueue<T> {
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

    /// One try of [`Atomic::pop`]: a pop as a commit of its own to `head` (it reads `head`, and
    /// `tail` if the queue looks empty, and writes `head`), or, if a commit changed `head`
    /// meanwhile, `Err` with the copy of the item made for the pop: the caller drops it once it
    /// has unpinned (its destructor may wait for readers, as a pinned thread must not), and
    /// tries again. The caller pins the thread.
    #[inline]
    fn pop_alone(&self) -> Result<Option<T>, T>
    where
        T: Clone,
    {
        let (head, seen) = self.head.load_seen();
        // SAFETY: read while pinned (caller): a node a pop replaces is freed only after every
        // thread pinned before that pop's commit has unpinned.
        let sentinel = unsafe { &*head };
        let mut next = sentinel.next.load(Ordering::Acquire);
        if next.is_null() {
            // Empty, unless a commit has published a successor and not linked it yet: only
            // `tail` can tell. A `tail` that is our `head` means an empty queue when we read it
            // (`head` never passes `tail`, and it was here before).
            // Read whole (`load_seen` waits out a commit in progress): a commit still writing
            // back, whose other writes this thread may have seen already, has `tail` locked.
            if self.tail.load_seen().0 == head {
                return Ok(None);
            }
            next = wait_for_link(sentinel);
        }
        // SAFETY: as for `head`: pinned, and `next` holds an item (only the first sentinel has
        // none, and it is never a successor).
        let (item, version) = unsafe {
            (
                (*next).clone_item(),
                (*next).stamp.load(Ordering::Relaxed) & !LET_GO,
            )
        };
        // A commit stamps its pushed nodes before it unlocks any variable (`head` among them):
        // a successor reached from a committed `head` is published.
        debug_assert_ne!(version, UNPUBLISHED & !LET_GO, "an unpublished successor");
        // SAFETY: as in `pop`: if this commit succeeds, it unlinks the old sentinel and pops
        // `next`'s item, and the marker is the only retirement of either; it comes after the
        // push that published `next` (its version), as a transactional pop's snapshot does
        // (`observe_version`). If it is refused, nothing is retired.
        match unsafe {
            self.head
                .commit_alone_retiring(seen, next, version, Popped::of(head))
        } {
            Ok(()) => Ok(Some(item)),
            Err(_) => Err(item),
        }
    }

    /// The number of items. Reads `head` and `tail` (the length is the tail's position less
    /// the head's), so it conflicts with concurrent pushes and pops (as it must); the
    /// attempt's own pending pushes are counted one by one.
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
        tx.pin();
        let head = self.head.read(tx)?;
        // SAFETY: as in `first_node`: read after `tx.pin()`, or our own pending node.
        let sentinel = unsafe { &*head };
        if sentinel.stamp.load(Ordering::Relaxed) == UNPUBLISHED {
            // Popped into our own pending pushes: the rest of them.
            let last = self.tail.last_published_node::<Node<T>>(tx);
            return Ok(if last == Some(head) {
                0
            } else {
                self.pending_from(tx, sentinel.next.load(Ordering::Relaxed))
            });
        }
        let tail = self.tail.read(tx)?;
        // SAFETY: `tail` was read after `tx.pin()`, and published nodes stay alive while we are
        // pinned. Both positions were stored before the nodes were published, and do not
        // change; in the attempt's consistent view the head is at or before the tail.
        let committed =
            unsafe { (*tail).pos.load(Ordering::Relaxed) } - sentinel.pos.load(Ordering::Relaxed);
        Ok(committed as usize + self.pending_from(tx, self.pending_first(tx)))
    }

    /// The number of this attempt's pending pushes from `node` (one of them, or null) to the
    /// last.
    fn pending_from(&self, tx: &Transaction, mut node: *mut Node<T>) -> usize {
        let Some(last) = self.tail.last_published_node::<Node<T>>(tx) else {
            return 0;
        };
        if node.is_null() {
            return 0;
        }
        let mut n = 1;
        while node != last {
            // SAFETY: the attempt's pending nodes, owned by its publishing operations, are
            // linked in push order up to `last` (`push_node`).
            node = unsafe { (*node).next.load(Ordering::Relaxed) };
            n += 1;
        }
        n
    }
}

impl<T: Send + Sync + 'static> TQueue<T> {
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
                self.pending_first(tx)
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
}

impl<T: Clone + Send + Sync + 'static> TQueue<T> {
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
        // Copies: let go of outside the transaction if a conflict stops the walk.
        let mut items = Unkept::new(Vec::new());
        self.for_each(tx, |item| items.push(item.clone()))?;
        Ok(items.take())
    }
}

impl<T: Send + 'static> TQueue<T> {
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

impl<T: Send + 'static> Atomic<'_, TQueue<T>> {
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
    #[track_caller]
    pub fn push(self, item: T) {
        crate::atomic::assert_outside_transaction();
        self.0.check_open_alone();
        // A push reads nothing: as a commit of its own it publishes the node to `tail` with
        // the same two steps as a transaction's commit (`push_node`), without the transaction.
        let node = Node::alloc(item);
        // SAFETY: `node` is fresh and ours; `stamp` and `link` neither panic nor block, and
        // publish it once (see `push_node` for what they write and why readers cope).
        unsafe {
            self.0.aim(node);
            self.0.tail.publish_box_alone(node, stamp::<T>, link::<T>);
        }
    }

    /// [`TQueue::take`] in a transaction of its own, and the item moved out
    /// ([`Taken::into_inner`]): the front item itself, not a clone.
    ///
    /// # Panics
    ///
    /// If called inside a transaction, or inside a pin ([`commute_stm::pinned`],
    /// [`TBox::load_with`](crate::TBox::load_with)'s closure), before taking anything.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TQueue::new();
    /// q.atomic().push(Box::new(1u8));
    /// assert_eq!(q.atomic().take(), Some(Box::new(1)));
    /// assert_eq!(q.atomic().take(), None);
    /// ```
    #[track_caller]
    pub fn take(self) -> Option<T> {
        assert_can_take_alone();
        atomically(|tx| self.0.take(tx)).map(Taken::into_inner)
    }

    /// [`TQueue::take_wait`] in a transaction of its own, and the item moved out: blocks while
    /// the queue is empty.
    ///
    /// # Panics
    ///
    /// If called inside a transaction or inside a pin (before taking anything, as
    /// [`take`](Atomic::take)), or if the queue is closed and empty (as [`TQueue::take_wait`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = commute::TQueue::new();
    /// q.atomic().push(String::from("x"));
    /// assert_eq!(q.atomic().take_wait(), "x");
    /// ```
    #[track_caller]
    pub fn take_wait(self) -> T {
        assert_can_take_alone();
        match atomically(|tx| self.0.take_unless_closed(tx)) {
            Some(taken) => taken.into_inner(),
            None => take_wait_on_closed("TQueue"),
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
    /// let q: commute::TQueue<u8> = commute::TQueue::new();
    /// assert_eq!(q.atomic().len(), 0);
    /// ```
    #[track_caller]
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
    #[track_caller]
    pub fn is_empty(self) -> bool {
        atomically(|tx| self.0.is_empty(tx))
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
    #[track_caller]
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
    #[track_caller]
    pub fn is_closed(self) -> bool {
        atomically(|tx| self.0.is_closed(tx))
    }
}

impl<T: Clone + Send + Sync + 'static> Atomic<'_, TQueue<T>> {
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
    #[track_caller]
    pub fn pop(self) -> Option<T> {
        crate::atomic::assert_outside_transaction();
        loop {
            match commute_stm::pinned(|| self.0.pop_alone()) {
                Ok(popped) => return popped,
                Err(copy) => drop(copy),
            }
        }
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
        // An item there: the one-call pop. Empty: the transaction, which blocks (or panics).
        if let Some(item) = self.pop() {
            return item;
        }
        match atomically(|tx| self.0.recv(tx)) {
            Some(item) => item,
            None => pop_wait_on_closed("TQueue"),
        }
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
    #[track_caller]
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
    #[track_caller]
    pub fn recv(self) -> Option<T> {
        // As `pop_wait`: a closed queue still hands out what it holds.
        if let Some(item) = self.pop() {
            return Some(item);
        }
        atomically(|tx| self.0.recv(tx))
    }

    /// [`TQueue::recv_until`] in a transaction of its own, with the deadline `timeout` from
    /// now (a timeout too long for an `Instant`, such as `Duration::MAX`, sets none:
    /// [`recv`](TQueue::recv)).
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
    #[track_caller]
    pub fn recv_timeout(self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            // Too long for an `Instant` (`Duration::MAX`): no deadline, as std's channels take it.
            return atomically(|tx| self.0.recv(tx)).ok_or(RecvTimeoutError::Closed);
        };
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
    #[track_caller]
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
    #[track_caller]
    pub fn peek(self) -> Option<T> {
        atomically(|tx| self.0.peek(tx))
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
    #[track_caller]
    pub fn iter(self) -> Vec<T> {
        atomically(|tx| self.0.iter(tx))
    }
}

impl<T: Send + 'static> Default for TQueue<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> FromIterator<T> for TQueue<T> {
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut q = TQueue::new();
        q.extend(iter);
        q
    }
}

impl<T: Send + 'static> Extend<T> for TQueue<T> {
    /// Pushes every item, all in one transaction: they appear together, in order. The
    /// iterator is drained first, outside the transaction, and each item goes into its node
    /// once (an attempt that runs again publishes the same nodes): items need not be `Clone`.
    ///
    /// Panics inside a transaction (transactions do not nest): there, call
    /// [`push`](TQueue::push) in a loop. Panics on a closed queue, as `push` does.
    #[track_caller]
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        crate::atomic::assert_outside_transaction();
        self.check_open_alone();
        let items: Vec<T> = iter.into_iter().collect();
        let nodes: Vec<*mut Node<T>> = items.into_iter().map(Node::alloc).collect();
        atomically(|tx| {
            for &node in &nodes {
                // SAFETY: each node is ours and fresh; only the committing attempt publishes
                // them, in the same order in every attempt (so the links an attempt set
                // between them are set again alike), and `atomically` returns once one has
                // committed (a panic would leak the nodes, never free them twice).
                unsafe { self.push_node(tx, node, true) };
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
    /// Shows the items of a snapshot taken in its own transaction, front first (inside a
    /// [`TMap`](crate::TMap)'s `Debug`, the map's snapshot). Inside a transaction, which may
    /// not start another, shows `TQueue(<in a transaction>)`: there, format `queue.iter(tx)?`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug::items(
            f,
            "TQueue",
            |tx| self.iter(tx),
            |f, items| f.debug_list().entries(items).finish(),
        )
    }
}

impl<T: 'static> Drop for TQueue<T> {
    fn drop(&mut self) {
        // SAFETY: the ends are taken once, here, and never used through `self` again.
        let ends = unsafe {
            DeadQueue {
                head: ManuallyDrop::take(&mut self.head),
                _tail: ManuallyDrop::take(&mut self.tail),
                _taken: ManuallyDrop::take(&mut self.taken),
            }
        };
        // An attempt (of any thread) may still hold the ends' addresses: the nodes are freed
        // once no `atomically` call running now remains, with whatever a late commit left.
        // SAFETY: the queue is `Send` only for `T: Send`, and a queue exists only with
        // `T: Send` (the bound of its constructors): its nodes may be freed anywhere.
        unsafe { commute_stm::drop_after_running_transactions(Box::new(ends)) };
    }
}

/// A dropped queue's ends, which own its nodes: dropped once no attempt can use them.
struct DeadQueue<T: 'static> {
    head: Box<CachePadded<End<T>>>,
    /// Kept alive with `head`: a late commit may still link through it.
    _tail: Box<CachePadded<End<T>>>,
    /// Kept with `head`: a late take's claim commits with its pop.
    _taken: TVar<u64>,
}

impl<T: 'static> Drop for DeadQueue<T> {
    fn drop(&mut self) {
        // No attempt holds the queue any more, and every commit's `link` step has run.
        // Replaced sentinels and popped items belong to the pops' retired markers.
        let head = self.head.load_mut();
        // SAFETY: the sentinel is alive: its unlinking owner is the queue (no pop replaced it),
        // and we let go of it last thing (if the marker of the pop that made it the sentinel
        // has not dropped its item yet, that marker frees it).
        let node = unsafe { (*head).next.load(Ordering::Relaxed) };
        // SAFETY: as above; nothing but the sentinel's item drop still owns it.
        unsafe { Node::release(head) };
        // SAFETY: the nodes after the sentinel hold items no pop took, and belong to the queue
        // alone.
        unsafe { drop_items_from(node) };
    }
}

/// Frees `node` and the nodes after it, dropping their items; if an item's drop panics, the
/// rest are still dropped (as a `Vec` drops the rest of its elements), then the panic goes on.
///
/// # Safety
///
/// The nodes from `node` on hold items, and belong to the caller alone.
unsafe fn drop_items_from<T: 'static>(mut node: *mut Node<T>) {
    /// The nodes left when an item's drop panicked.
    struct Rest<T: 'static>(*mut Node<T>);
    impl<T: 'static> Drop for Rest<T> {
        fn drop(&mut self) {
            // SAFETY: the rest of the caller's nodes, none of them freed yet.
            unsafe { drop_items_from(self.0) };
        }
    }
    while !node.is_null() {
        // SAFETY: each node is freed once and its item dropped once (the node's `Drop` leaves
        // the item of a published node alone).
        let mut boxed = unsafe { Box::from_raw(node) };
        node = boxed.next.load(Ordering::Relaxed);
        let rest = Rest(node);
        // SAFETY: as above.
        unsafe { boxed.item.assume_init_drop() };
        core::mem::forget(rest);
    }
}
