//! The write set: every variable the attempt writes or commutes, with its pending value.
//!
//! A small vector searched linearly; once it grows past `INDEX_THRESHOLD` entries an index from
//! variable address to entry position (`addr_index.rs`) takes over the lookups. Entries are unique
//! per variable and updated in place; `or_else` takes a snapshot (see `tx/blocking.rs`).

use std::rc::Rc;

use crate::internal::addr_index::AddrIndex;
use crate::internal::attempt::ReadEntry;
use crate::internal::var::VarCore;

/// Above this many entries lookups go through the index map, and a commit drops the index
/// and may sort the entries. Under loom, 2: its models of large sets then stay small enough
/// to explore (as its maps' inner nodes have 2 slots).
const INDEX_THRESHOLD: usize = if cfg!(loom) { 2 } else { 8 };

/// A commutative operation recorded without reading the variable.
#[derive(Clone)]
pub(crate) enum Op {
    /// Wrapping add of the delta, by the variable type's own add.
    Add(u64, fn(u64, u64) -> u64),
    /// A user function from old bits to new bits.
    Apply(Rc<dyn Fn(u64) -> u64>),
}

impl Op {
    #[inline]
    fn apply(&self, bits: u64) -> u64 {
        match self {
            Op::Add(delta, add) => add(bits, *delta),
            Op::Apply(f) => f(bits),
        }
    }
}

/// What the attempt will do to a variable at commit. Plain data (`Copy`): operations live in
/// side tables of the write set, so clearing the set costs nothing per entry.
#[derive(Clone, Copy)]
pub(crate) enum Pending {
    /// Store these bits.
    Write(u64),
    /// Apply the operations at this index of `WriteSet::ops`, in order, to the latest committed
    /// value.
    Commute(u32),
    /// Add this (wrapping) to the latest committed value of a 64-bit integer: the common
    /// commute (a counter's add), kept inline so that it needs no side table.
    Add(u64),
    /// Nothing to store: the irrevocable transaction only holds the lock (it read the variable).
    Hold,
    /// Commit-time publishing operations (at this index of `WriteSet::publishes`), run in order
    /// during write-back with the old value and the commit version (`TVar::publish_on_commit`).
    Publish(u32),
    /// A transaction-local value keyed by the variable: never locked, validated or written.
    Local(u64),
}

/// A commit-time publishing operation: old bits and commit version to new bits. Must not panic.
#[derive(Clone)]
pub(crate) enum PublishOp {
    /// A closure (`TVar::publish_on_commit`).
    Closure(Rc<dyn Fn(u64, u64) -> u64>),
    /// A function and a heap node that it takes over at commit (`TVar::publish_box_on_commit`):
    /// no allocation beyond the node. Until the commit the write set owns the node; an attempt
    /// or `or_else` branch that is rolled back hands it to the attempt's allocations, which free
    /// it ([`WriteSet::take_unpublished_nodes`]).
    Node {
        /// Calls `f` (a type-erased function pointer) with old bits, version and node.
        call: unsafe fn(*const (), u64, u64, u64) -> u64,
        f: *const (),
        node: u64,
        free: DropFn,
        /// The second step, run once the variable is unlocked (`TVar::publish_box_on_commit_then`).
        then: Option<After>,
    },
    /// An operation whose variable was dropped during the attempt: it does nothing (its node,
    /// if it had one, went to the attempt's allocations).
    Gone,
}

/// The step of a publishing operation that runs after the commit unlocked the variable.
#[derive(Clone, Copy)]
pub(crate) struct After {
    /// Calls `f` (a type-erased function pointer) with the bits the operation replaced and the
    /// node.
    pub(crate) call: unsafe fn(*const (), u64, u64),
    pub(crate) f: *const (),
    /// The bits the operation replaced: set when it runs.
    pub(crate) old: u64,
}

impl PublishOp {
    /// Runs the operation on the variable's old bits at commit version `version`.
    #[inline]
    pub(crate) fn run(&mut self, old: u64, version: u64) -> u64 {
        match self {
            PublishOp::Closure(op) => op(old, version),
            PublishOp::Node {
                call,
                f,
                node,
                then,
                ..
            } => {
                if let Some(after) = then {
                    after.old = old;
                }
                // SAFETY: `call` was made for `f`'s type (`TVar::publish_box_on_commit`), and a
                // commit runs each operation once.
                unsafe { call(*f, old, version, *node) }
            }
            PublishOp::Gone => old,
        }
    }

    /// Runs the operation's second step, if it has one; after [`run`](PublishOp::run), once
    /// the variable is unlocked.
    #[inline]
    pub(crate) fn run_after(&self) {
        if let PublishOp::Node {
            node,
            then: Some(after),
            ..
        } = self
        {
            // SAFETY: `call` was made for `f`'s type (`TVar::publish_box_on_commit_then`); the
            // commit ran the first step (which recorded `old`) and runs this one once.
            unsafe { (after.call)(after.f, after.old, *node) }
        }
    }

    /// True if the operation has a second step.
    #[inline]
    pub(crate) fn has_after(&self) -> bool {
        matches!(self, PublishOp::Node { then: Some(_), .. })
    }
}

impl Pending {
    /// True for entries that take part in the commit (everything but locals).
    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        !matches!(self, Pending::Local(_))
    }
}

/// The add of an inline [`Pending::Add`], as an [`Op`].
pub(crate) fn wrapping_add_u64(value: u64, delta: u64) -> u64 {
    value.wrapping_add(delta)
}

/// Operations of one commuted variable. Adds fold into one; others queue up.
#[derive(Clone)]
pub(crate) enum OpList {
    One(Op),
    Many(Vec<Op>),
}

impl OpList {
    pub(crate) fn push(&mut self, op: Op) {
        match (self, op) {
            (OpList::One(Op::Add(d, add)), Op::Add(e, _)) => *d = add(*d, e),
            (OpList::Many(ops), op) => {
                if let (Some(Op::Add(d, add)), Op::Add(e, _)) = (ops.last_mut(), &op) {
                    *d = add(*d, *e);
                } else {
                    ops.push(op);
                }
            }
            (this, op) => {
                let OpList::One(first) = core::mem::replace(this, OpList::Many(Vec::new())) else {
                    unreachable!()
                };
                *this = OpList::Many(vec![first, op]);
            }
        }
    }

    /// True unless the list is one add (which owns nothing: clearing it needs no destructor).
    #[inline]
    fn owns_anything(&self) -> bool {
        !matches!(self, OpList::One(Op::Add(..)))
    }

    /// Applies the operations to `bits`, in the order they were recorded.
    pub(crate) fn apply(&self, bits: u64) -> u64 {
        match self {
            OpList::One(op) => op.apply(bits),
            OpList::Many(ops) => ops.iter().fold(bits, |b, op| op.apply(b)),
        }
    }
}

/// How to drop a heap value that a `TBox` stored as a word.
pub(crate) type DropFn = unsafe fn(u64);

/// One variable of the write set.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) var: *const VarCore,
    pub(crate) pending: Pending,
    /// For `TBox` variables: how to drop the value a commit replaces.
    pub(crate) drop_old: Option<DropFn>,
    /// The lock word seen when this attempt locked the variable (commit or irrevocable).
    pub(crate) locked_word: u64,
}

impl Entry {
    /// An entry not yet locked.
    #[inline(always)]
    pub(crate) fn new(var: *const VarCore, pending: Pending, drop_old: Option<DropFn>) -> Self {
        Entry {
            var,
            pending,
            drop_old,
            locked_word: 0,
        }
    }

    #[inline]
    pub(crate) fn var(&self) -> &VarCore {
        // SAFETY: entries only live during one attempt, inside `atomically`, while the closure
        // that produced them holds shared borrows of every variable it touched; variables
        // therefore outlive their entries.
        unsafe { &*self.var }
    }
}

/// How many entries [`WriteSet::lacks_few`] scans at most (at most [`INDEX_THRESHOLD`]: a
/// scan, not the index).
const FEW: usize = if cfg!(loom) { 2 } else { 4 };
const _: () = assert!(FEW <= INDEX_THRESHOLD);

/// The write set of one attempt.
#[derive(Default)]
pub(crate) struct WriteSet {
    pub(crate) entries: Vec<Entry>,
    index: AddrIndex,
    /// Operations of commuted variables (`Pending::Commute`).
    pub(crate) ops: Vec<OpList>,
    /// Publishing operations, flat and in registration order, each tagged with the list
    /// (`Pending::Publish`) it belongs to: no allocation per transaction once warmed up.
    pub(crate) publishes: Vec<(u32, PublishOp)>,
    /// How many publish lists have been started.
    publish_lists: u32,
    /// Some entry is `Commute`: the commit computes its value before writing back (cleared
    /// with the set). An inline `Add` does not count: the write-back adds it.
    pub(crate) has_commutes: bool,
    /// Some element of `ops` or `publishes` owns something (a closure, a list of operations):
    /// clearing them must run their destructors. False for the common adds and queue nodes,
    /// whose clearing is then free.
    side_drops: bool,
    /// Closures the set let go of (operations and publishing closures cleared or rolled back),
    /// not dropped yet: they may own transactional variables, whose drop needs the attempt's
    /// state, which is borrowed wherever the set is changed. The end of the attempt takes them
    /// ([`take_let_go`](Self::take_let_go)) and drops them outside the transaction.
    let_go: Vec<LetGo>,
}

/// Something the attempt let go of while its state was borrowed, to drop once it has ended.
pub(crate) type LetGo = Box<dyn core::any::Any>;

/// A copy of a write set, for rolling an `or_else` branch back.
pub(crate) struct Saved {
    entries: Vec<Entry>,
    ops: Vec<OpList>,
    /// Publishing operations are only ever added during a branch: rolling back truncates.
    publishes: usize,
    publish_lists: u32,
}

impl WriteSet {
    /// The most entries a set has without its index: searched by a scan, and left in the
    /// order written by the commit's first try at locking them.
    pub(crate) const SMALL: usize = INDEX_THRESHOLD;

    /// True if the set has no index ([`SMALL`](Self::SMALL) entries at most).
    #[inline]
    pub(crate) fn is_small(&self) -> bool {
        self.entries.len() <= INDEX_THRESHOLD
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.has_commutes = false;
        if self.entries.len() > INDEX_THRESHOLD
            || !self.ops.is_empty()
            || !self.publishes.is_empty()
        {
            self.clear_side_tables();
        }
        self.entries.clear();
    }

    /// Empties the side tables (and the index). Inline for the usual case, a queue's push:
    /// nothing in them owns anything, and they are emptied by setting their lengths.
    #[inline]
    fn clear_side_tables(&mut self) {
        if self.entries.len() > INDEX_THRESHOLD || self.side_drops {
            self.drop_side_tables();
        }
        // SAFETY: a length of 0 is within capacity, and there is nothing to initialise. The
        // elements are forgotten, not dropped: with `side_drops` false (`drop_side_tables`
        // dropped them otherwise) none of them owns anything (adds, queue nodes owned
        // elsewhere, `Gone`), so nothing leaks.
        unsafe {
            self.ops.set_len(0);
            self.publishes.set_len(0);
        }
        self.publish_lists = 0;
    }

    /// [`clear_side_tables`](Self::clear_side_tables)'s rare work: the index of a large set,
    /// and side tables whose entries own something (a closure), let go of (`let_go`).
    #[cold]
    fn drop_side_tables(&mut self) {
        if self.entries.len() > INDEX_THRESHOLD {
            self.index.clear();
        }
        if self.side_drops {
            let ops: Vec<OpList> = self.ops.drain(..).collect();
            let publishes: Vec<(u32, PublishOp)> = self.publishes.drain(..).collect();
            self.let_go.push(Box::new((ops, publishes)));
            self.side_drops = false;
        }
    }

    /// True if clearing the set leaves closures to drop outside the transaction, or it left
    /// some already ([`take_let_go`](Self::take_let_go)).
    #[inline]
    pub(crate) fn lets_go_of_closures(&self) -> bool {
        self.side_drops || !self.let_go.is_empty()
    }

    /// What the set let go of (see `let_go`), to drop once the attempt has ended.
    pub(crate) fn take_let_go(&mut self) -> Vec<LetGo> {
        core::mem::take(&mut self.let_go)
    }

    /// Adds an inline 64-bit add for a variable not yet in the set.
    #[inline]
    pub(crate) fn push_add(&mut self, var: *const VarCore, delta: u64) {
        self.push(Entry::new(var, Pending::Add(delta), None));
    }

    /// Turns entry `i`, an inline add of `delta`, into an operation list starting with it.
    pub(crate) fn add_to_list(&mut self, i: usize, delta: u64) -> u32 {
        let list = self.ops.len() as u32;
        self.ops.push(OpList::One(Op::Add(delta, wrapping_add_u64)));
        self.entries[i].pending = Pending::Commute(list);
        self.has_commutes = true;
        list
    }

    /// Adds `op` to the operations of commuted entry `i`.
    #[inline]
    pub(crate) fn push_op(&mut self, i: u32, op: Op) {
        let list = &mut self.ops[i as usize];
        list.push(op);
        self.side_drops |= list.owns_anything();
    }

    /// Adds a commute entry for a variable not yet in the set.
    pub(crate) fn push_commute(&mut self, var: *const VarCore, op: Op) {
        self.has_commutes = true;
        let i = self.ops.len() as u32;
        let list = OpList::One(op);
        self.side_drops |= list.owns_anything();
        self.ops.push(list);
        self.push(Entry::new(var, Pending::Commute(i), None));
    }

    /// Starts a publish list; returns its `Pending`.
    pub(crate) fn new_publish(&mut self, op: PublishOp) -> Pending {
        let list = self.start_publish_list();
        self.push_publish(list, op);
        Pending::Publish(list)
    }

    /// Adds an operation to a started publish list.
    pub(crate) fn push_publish(&mut self, list: u32, op: PublishOp) {
        self.note_publish(&op);
        self.publishes.push((list, op));
    }

    /// A new publish list's number.
    #[inline(always)]
    fn start_publish_list(&mut self) -> u32 {
        let list = self.publish_lists;
        self.publish_lists += 1;
        list
    }

    /// What adding `op` to a publish list changes besides the list: a closure may own what
    /// it captured (`side_drops`).
    #[inline(always)]
    fn note_publish(&mut self, op: &PublishOp) {
        self.side_drops |= matches!(op, PublishOp::Closure(_));
    }

    /// A copy of the whole set (for `or_else`).
    pub(crate) fn save(&self) -> Saved {
        Saved {
            entries: self.entries.clone(),
            ops: self.ops.clone(),
            publishes: self.publishes.len(),
            publish_lists: self.publish_lists,
        }
    }

    /// Rolls back to a copy taken before an `or_else` branch, less the entries of variables
    /// dropped during the branch (`dropped`: their addresses; such a variable's entry has
    /// already left this set, and a variable made since may have the same address). With
    /// `irrevocable_reads` (the irrevocable mode, which locks what it reads and writes: the
    /// attempt's reads, the branch's included), the locks the branch took on variables it read
    /// stay held, as entries with nothing to store (a read of such an entry records nothing:
    /// the read is recorded); those it took only to write, add or publish are let go, as the
    /// end of the attempt lets go of them. Returns the nodes of the publishing operations
    /// rolled back, to be freed.
    pub(crate) fn restore_saved(
        &mut self,
        saved: Saved,
        dropped: &[usize],
        irrevocable_reads: Option<&[ReadEntry]>,
    ) -> Vec<(u64, DropFn)> {
        let mut entries = saved.entries;
        if !dropped.is_empty() {
            entries.retain(|e| !dropped.contains(&(e.var as usize)));
        }
        if let Some(reads) = irrevocable_reads {
            // Every entry of the set is a live variable (a dropped one left it), and so is
            // every entry of the copy now: the same address is the same variable.
            let before: std::collections::HashSet<usize> =
                entries.iter().map(|e| e.var as usize).collect();
            let read: std::collections::HashSet<usize> =
                reads.iter().map(|r| r.var as usize).collect();
            let taken = self
                .entries
                .iter()
                .filter(|e| e.pending.is_shared() && !before.contains(&(e.var as usize)));
            for e in taken {
                if read.contains(&(e.var as usize)) {
                    entries.push(Entry {
                        pending: Pending::Hold,
                        drop_old: None,
                        ..*e
                    });
                } else {
                    // Nothing of the attempt depends on its value: restore the word exactly
                    // (WAITERS included), as the end of the attempt does.
                    e.var()
                        .lock
                        .store(e.locked_word, crate::sync::atomic::Ordering::Release);
                }
            }
        }
        let branch_ops = core::mem::replace(&mut self.ops, saved.ops);
        if branch_ops.iter().any(OpList::owns_anything) {
            self.let_go.push(Box::new(branch_ops));
        }
        self.side_drops = self.ops.iter().any(OpList::owns_anything);
        let nodes = nodes_of(self.publishes.drain(saved.publishes..), &mut self.let_go);
        self.side_drops |= self
            .publishes
            .iter()
            .any(|(_, op)| matches!(op, PublishOp::Closure(_)));
        self.publish_lists = saved.publish_lists;
        self.restore(entries);
        nodes
    }

    /// Abandons the operations of publish list `list` (their variable is being dropped): they
    /// become [`PublishOp::Gone`], keeping every index of `publishes` in place for `or_else`'s
    /// copies; returns their nodes, to be freed with the attempt.
    pub(crate) fn abandon_publish(&mut self, list: u32) -> Vec<(u64, DropFn)> {
        let ops = self.publishes.iter_mut().filter(|(l, _)| *l == list);
        let gone = ops.map(|(_, op)| (list, core::mem::replace(op, PublishOp::Gone)));
        nodes_of(gone, &mut self.let_go)
    }

    /// Takes the nodes of publishing operations that did not run (the attempt is being rolled
    /// back), to be freed; the operations themselves are cleared with the set.
    pub(crate) fn take_unpublished_nodes(&mut self) -> Vec<(u64, DropFn)> {
        if self.publishes.is_empty() {
            return Vec::new();
        }
        let nodes = nodes_of(self.publishes.drain(..), &mut self.let_go);
        // Their closures went to `let_go`: only the operation lists may still own something.
        self.side_drops = self.ops.iter().any(OpList::owns_anything);
        nodes
    }

    /// True if the set holds at most a few entries (no index) and none for `var`: a read of
    /// `var` reads its committed value.
    #[inline]
    pub(crate) fn lacks_few(&self, var: &VarCore) -> bool {
        self.entries.len() <= FEW && self.find(var).is_none()
    }

    /// The index of `var`'s entry.
    #[inline]
    pub(crate) fn find(&self, var: &VarCore) -> Option<usize> {
        let addr = var.addr();
        if self.entries.len() <= INDEX_THRESHOLD {
            self.entries.iter().position(|e| e.var as usize == addr)
        } else {
            self.index.get(addr)
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.entries[i]
    }

    /// The usual new entry: adds `entry` if the set is small, has room for it, and lacks its
    /// variable; returns false, and does nothing, otherwise (then [`find`](Self::find) and
    /// [`push`](Self::push), or an update of the variable's entry, do the rest).
    #[inline(always)]
    pub(crate) fn try_push_small(&mut self, entry: Entry) -> bool {
        self.small_and_lacks(entry.var) && self.push_small(entry)
    }

    /// If a new entry would leave the set small (no index): the index of `var`'s entry, if
    /// any; `None` if the set is not that small.
    #[inline(always)]
    pub(crate) fn find_small(&self, var: &VarCore) -> Option<Option<usize>> {
        let addr: *const VarCore = var;
        (self.entries.len() < INDEX_THRESHOLD)
            .then(|| self.entries.iter().position(|e| e.var == addr))
    }

    /// Adds `entry`, whose variable the set lacks, to a set that stays small (as
    /// [`find_small`](Self::find_small) found): true if the list had room, false (nothing
    /// done) otherwise.
    #[inline(always)]
    pub(crate) fn push_small(&mut self, entry: Entry) -> bool {
        debug_assert!(matches!(self.find_small(entry.var()), Some(None)));
        // Below the index's threshold: nothing else to update.
        push_within_capacity(&mut self.entries, entry).is_ok()
    }

    /// True if a new entry for `var` would leave the set small (no index), and `var` has none.
    #[inline(always)]
    fn small_and_lacks(&self, var: *const VarCore) -> bool {
        self.entries.len() < INDEX_THRESHOLD && !self.entries.iter().any(|e| e.var == var)
    }

    /// The usual publishing operation ([`new_publish`](Self::new_publish) and a new entry):
    /// done if the set is small, lacks `var`, and both lists have room; `op` given back, and
    /// nothing done, otherwise.
    #[inline(always)]
    pub(crate) fn try_publish_small(
        &mut self,
        var: *const VarCore,
        op: PublishOp,
    ) -> Result<(), PublishOp> {
        if self.entries.len() == self.entries.capacity()
            || self.publishes.len() == self.publishes.capacity()
            || !self.small_and_lacks(var)
        {
            return Err(op);
        }
        let list = self.start_publish_list();
        self.note_publish(&op);
        let entry = Entry::new(var, Pending::Publish(list), None);
        // Room for both checked above.
        let pushed = push_within_capacity(&mut self.publishes, (list, op)).is_ok()
            && push_within_capacity(&mut self.entries, entry).is_ok();
        debug_assert!(pushed);
        Ok(())
    }

    /// Adds an entry for a variable not yet in the set.
    #[inline]
    pub(crate) fn push(&mut self, entry: Entry) {
        debug_assert!(self.find(entry.var()).is_none());
        let i = self.entries.len();
        let addr = entry.var as usize;
        self.entries.push(entry);
        if i == INDEX_THRESHOLD {
            // Crossing the threshold: index everything so far.
            self.index.clear();
            for (j, e) in self.entries.iter().enumerate() {
                self.index.insert(e.var as usize, j);
            }
        } else if i > INDEX_THRESHOLD {
            self.index.insert(addr, i);
        }
    }

    /// Replaces the entries (side tables stay).
    pub(crate) fn restore(&mut self, entries: Vec<Entry>) {
        self.entries = entries;
        self.index.clear();
        if self.entries.len() > INDEX_THRESHOLD {
            for (j, e) in self.entries.iter().enumerate() {
                self.index.insert(e.var as usize, j);
            }
        }
    }

    /// True if some entry must be committed (not only transaction-local values).
    #[inline]
    pub(crate) fn has_shared(&self) -> bool {
        // The first entry on its own: an empty set (a read-only attempt) and a first entry that
        // is shared (nearly every attempt that writes) are answered without setting up a loop.
        match self.entries.split_first() {
            None => false,
            Some((first, _)) if first.pending.is_shared() => true,
            Some((_, rest)) => rest.iter().any(|e| e.pending.is_shared()),
        }
    }

    /// Sorts a large set's entries by address, the global lock order that keeps committers
    /// deadlock-free, for a thread without a tag (whose commit's validation searches the
    /// locked set by address; others lock as written, and sort only if that meets another
    /// committer). Invalidates the index, so only the commit (which does no more lookups)
    /// calls it.
    #[inline]
    pub(crate) fn sort_for_commit(&mut self) {
        debug_assert!(
            !self.is_small(),
            "a small set has no index, and no search by address"
        );
        self.index.clear();
        self.entries.sort_unstable_by_key(|e| e.var().lock_order());
    }

    /// Drops a large set's index before its commit locks the entries as written, which may
    /// sort them (on meeting another committer): only the commit (which does no more lookups)
    /// calls it.
    #[inline]
    pub(crate) fn unindex_for_commit(&mut self) {
        debug_assert!(!self.is_small(), "a small set has no index");
        self.index.clear();
    }
}

/// Pushes `value` onto `v` if `v` has room for it without growing; gives it back otherwise.
/// A push with no call to grow in it: the write set's usual new entry keeps the functions that
/// record it free of a call (and of the registers a call needs saved).
#[inline(always)]
pub(crate) fn push_within_capacity<T>(v: &mut Vec<T>, value: T) -> Result<(), T> {
    let len = v.len();
    if len == v.capacity() {
        return Err(value);
    }
    // SAFETY: `len < capacity`, so slot `len` is allocated and unused; it is written before
    // the length grows to cover it.
    unsafe {
        v.as_mut_ptr().add(len).write(value);
        v.set_len(len + 1);
    }
    Ok(())
}

/// Allocations of an attempt past which its commit sorts them to find those it published,
/// instead of a scan per published value: a transaction that writes many heap values and
/// overwrites some of its own (a bulk insert into a map, whose buckets take several keys)
/// would otherwise commit in time quadratic in its writes.
const SCAN_ALLOCS: usize = 16;

/// Takes out of `allocs` (heap values an attempt allocated, with the functions that free
/// them) one value for each of `published` (the values its commit published, with theirs):
/// what is left is freed when the attempt ends.
///
/// A value is matched by its address and then by its free function: a live allocation's
/// address is its own, but values of zero-sized types share one (their alignment), so
/// that a zero-sized value of one type published beside another type's overwritten one must
/// be told apart by the function that drops it. Two functions for one type (a generic
/// instantiated twice) fall back to the address alone. The order of what is left is not kept.
pub(crate) fn remove_published(
    allocs: &mut Vec<(u64, DropFn)>,
    published: impl Iterator<Item = (u64, DropFn)>,
) {
    if allocs.len() > SCAN_ALLOCS {
        remove_published_sorted(allocs, published.collect());
    } else {
        remove_published_scan(allocs, published);
    }
}

/// [`remove_published`] for a few allocations: a scan of them per published value.
fn remove_published_scan(
    allocs: &mut Vec<(u64, DropFn)>,
    published: impl Iterator<Item = (u64, DropFn)>,
) {
    for (bits, drop_fn) in published {
        if allocs.is_empty() {
            return;
        }
        let mut same_bits = None;
        let mut found = None;
        for (j, &(b, f)) in allocs.iter().enumerate() {
            if b == bits {
                if core::ptr::fn_addr_eq(f, drop_fn) {
                    found = Some(j);
                    break;
                }
                same_bits.get_or_insert(j);
            }
        }
        if let Some(j) = found.or(same_bits) {
            allocs.swap_remove(j);
        }
    }
}

/// [`remove_published`] for many allocations: both lists sorted by address, then walked
/// together, one address at a time. An address of one allocation (any allocation of a sized
/// value) is kept unless a value published there; the allocations at an address that several
/// share (zero-sized values) go through [`remove_published_scan`] with the values published
/// there.
fn remove_published_sorted(allocs: &mut Vec<(u64, DropFn)>, mut published: Vec<(u64, DropFn)>) {
    allocs.sort_unstable_by_key(|a| a.0);
    published.sort_unstable_by_key(|q| q.0);
    let (mut i, mut p, mut kept) = (0, 0, 0);
    while i < allocs.len() {
        let bits = allocs[i].0;
        let end = i + allocs[i..].iter().take_while(|a| a.0 == bits).count();
        while p < published.len() && published[p].0 < bits {
            p += 1;
        }
        let p_end = p + published[p..].iter().take_while(|q| q.0 == bits).count();
        if end - i == 1 {
            if p == p_end {
                allocs[kept] = allocs[i];
                kept += 1;
            }
        } else {
            let mut shared = allocs[i..end].to_vec();
            remove_published_scan(&mut shared, published[p..p_end].iter().copied());
            for a in shared {
                allocs[kept] = a;
                kept += 1;
            }
        }
        i = end;
        p = p_end;
    }
    allocs.truncate(kept);
}

/// The nodes owned by `ops`; their closures go to `let_go`, to be dropped once the attempt has
/// ended.
fn nodes_of(
    ops: impl Iterator<Item = (u32, PublishOp)>,
    let_go: &mut Vec<LetGo>,
) -> Vec<(u64, DropFn)> {
    let mut closures = Vec::new();
    let nodes = ops
        .filter_map(|(_, op)| match op {
            PublishOp::Node { node, free, .. } => Some((node, free)),
            PublishOp::Closure(f) => {
                closures.push(f);
                None
            }
            PublishOp::Gone => None,
        })
        .collect();
    if !closures.is_empty() {
        let_go.push(Box::new(closures));
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::{DropFn, push_within_capacity, remove_published};
    use std::collections::HashMap;

    // Three functions the compiler cannot merge into one (their code differs).
    unsafe fn free_a(bits: u64) {
        std::hint::black_box(bits ^ 1);
    }
    unsafe fn free_b(bits: u64) {
        std::hint::black_box(bits ^ 2);
    }
    unsafe fn free_c(bits: u64) {
        std::hint::black_box(bits ^ 3);
    }

    /// How many of `values` have each address, and each address and function.
    fn counts(values: &[(u64, DropFn)]) -> (HashMap<u64, usize>, HashMap<(u64, usize), usize>) {
        let (mut by_bits, mut by_pair) = (HashMap::new(), HashMap::new());
        for &(bits, f) in values {
            *by_bits.entry(bits).or_insert(0) += 1;
            *by_pair.entry((bits, f as usize)).or_insert(0) += 1;
        }
        (by_bits, by_pair)
    }

    /// Random allocations and published values over a few addresses and functions (so that
    /// both collide), on both sides of the sorted path's threshold: what is left is what the
    /// allocations hold less one per published value of the same address, taken by function
    /// first.
    #[test]
    fn remove_published_takes_one_value_per_published_value_by_address_then_function() {
        let functions: [DropFn; 3] = [free_a, free_b, free_c];
        let addresses: Vec<usize> = functions.iter().map(|&f| f as usize).collect();
        assert!(addresses[0] != addresses[1] && addresses[1] != addresses[2]);
        assert!(addresses[0] != addresses[2], "the functions were merged");
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..2_000 {
            let addresses = 1 + next(if round % 2 == 0 { 4 } else { 64 });
            let values = |next: &mut dyn FnMut(u64) -> u64| -> Vec<(u64, DropFn)> {
                let len = next(48);
                (0..len)
                    .map(|_| (8 * next(addresses), functions[next(3) as usize]))
                    .collect()
            };
            let allocs = values(&mut next);
            let published = values(&mut next);
            let mut left = allocs.clone();
            remove_published(&mut left, published.iter().copied());
            let (a_bits, a_pairs) = counts(&allocs);
            let (p_bits, p_pairs) = counts(&published);
            let (l_bits, l_pairs) = counts(&left);
            for (bits, &a) in &a_bits {
                let p = p_bits.get(bits).copied().unwrap_or(0);
                let l = l_bits.get(bits).copied().unwrap_or(0);
                assert_eq!(
                    l,
                    a.saturating_sub(p),
                    "round {round}: values left at {bits}"
                );
            }
            for (pair, &l) in &l_pairs {
                let a = a_pairs.get(pair).copied().unwrap_or(0);
                let p = p_pairs.get(pair).copied().unwrap_or(0);
                assert!(
                    l <= a - a.min(p),
                    "round {round}: {l} left of {pair:?}, allocated {a}, published {p}"
                );
            }
        }
    }

    /// Many allocations with addresses of their own, half of them published: exactly the
    /// other half is left, whichever path matches them.
    #[test]
    fn remove_published_leaves_exactly_the_unpublished_values() {
        for n in [3_u64, 16, 17, 1_000] {
            let allocs: Vec<(u64, DropFn)> =
                (0..n).map(|i| (8 * (i + 1), free_a as DropFn)).collect();
            let mut left = allocs.clone();
            remove_published(&mut left, allocs.iter().copied().filter(|a| a.0 % 16 == 0));
            left.sort_unstable_by_key(|a| a.0);
            let expected: Vec<u64> = allocs.iter().map(|a| a.0).filter(|b| b % 16 != 0).collect();
            assert_eq!(
                left.iter().map(|a| a.0).collect::<Vec<_>>(),
                expected,
                "{n} values"
            );
        }
    }

    #[test]
    fn push_within_capacity_fills_but_never_grows() {
        let mut v: Vec<String> = Vec::with_capacity(3);
        let capacity = v.capacity();
        for i in 0..capacity {
            assert!(push_within_capacity(&mut v, i.to_string()).is_ok());
        }
        let back = push_within_capacity(&mut v, "over".to_string());
        assert_eq!(back.unwrap_err(), "over");
        assert_eq!(v.capacity(), capacity);
        let expected: Vec<String> = (0..capacity).map(|i| i.to_string()).collect();
        assert_eq!(v, expected);
    }
}
