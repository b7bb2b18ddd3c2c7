//! The buffers of one attempt (`TxState`), kept per thread in its context and reused: the read
//! set, the write set, hooks, the heap values the attempt allocated or retires, what it forgot
//! (variables dropped during it), and the record of what stopped it.

use crate::internal::counters::AbortCause;
use crate::internal::reclaim::Retired;
use crate::internal::var::Origin;
use crate::internal::var::VarCore;
use crate::internal::write_set::{DropFn, LetGo, Pending, WriteSet};
use core::panic::Location;

/// One entry of the read set: a variable and the version this attempt read.
#[derive(Clone, Copy)]
pub(crate) struct ReadEntry {
    pub(crate) var: *const VarCore,
    pub(crate) version: u64,
}

impl ReadEntry {
    #[inline]
    pub(crate) fn var(&self) -> &VarCore {
        // SAFETY: read entries live only during the attempt, while the closure's borrows keep
        // every variable it read alive (as for write entries).
        unsafe { &*self.var }
    }
}

pub(crate) type Hook = Box<dyn FnOnce()>;

/// The buffers of one attempt, kept per thread and reused so that transactions do not allocate.
#[derive(Default)]
pub(crate) struct TxState {
    pub(crate) reads: Vec<ReadEntry>,
    pub(crate) writes: WriteSet,
    pub(crate) on_commit: Vec<Hook>,
    pub(crate) on_abort: Vec<Hook>,
    /// Hooks of `or_else` branches rolled back, not dropped yet: they may own transactional
    /// variables, whose drop needs this state. Dropped once the attempt has ended, outside the
    /// transaction, with what the write set let go of ([`take_let_go`](Self::take_let_go)).
    pub(crate) let_go: Vec<LetGo>,
    /// Set when the attempt keeps a closure that may own transactional variables (a
    /// commutative or publishing operation) or let go of hooks: its end must drop what it let
    /// go of outside the transaction ([`take_let_go`](Self::take_let_go)). With `extras`.
    pub(crate) closures: bool,
    /// Heap values allocated by this attempt (for `TBox`), with their drop functions.
    pub(crate) allocs: Vec<(u64, DropFn)>,
    /// Set when `allocs` may hold a value that neither a write-set entry holds as its pending
    /// write nor `overwritten` holds (a value rolled back by `or_else`, dropped, or a
    /// publishing operation's node handed over by either): the commit must then search for the
    /// ones it published (`write_set::remove_published`). Clear, every value in `allocs` is
    /// the pending write of its own entry or one of `overwritten`, and a commit publishes all
    /// but those. Only a commit reads it: the nodes a rollback hands over
    /// (`hand_back_unpublished_nodes`) are freed with everything else.
    pub(crate) allocs_unmatched: bool,
    /// Values of `allocs` that a later write of the same variable in this attempt replaced as
    /// its pending write (a map's bucket copied twice), with their drop functions: unless
    /// `allocs_unmatched` is set, what a commit leaves to free. Never freed from this list
    /// itself (`allocs` holds them too): an abort frees `allocs`.
    pub(crate) overwritten: Vec<(u64, DropFn)>,
    /// Set when the attempt used anything beyond reads, writes and a pin (hooks, heap values,
    /// retirements): the end of the attempt then takes the slow path.
    pub(crate) extras: bool,
    /// Heap values to retire if the attempt commits (`Transaction::retire_on_commit`), each
    /// with the address of the variable whose drop cancels it (0: none).
    pub(crate) retire_on_commit: Vec<(u64, DropFn, usize)>,
    /// Addresses of variables dropped during the attempt (see [`TxState::forget`]), for
    /// `or_else` to purge them from the write set it restores.
    pub(crate) forgotten: Vec<usize>,
    /// Heap values replaced by a commit that did not retire into the thread's list (an
    /// irrevocable or read-only commit, or one of an attempt without extras), retired once the
    /// state borrow is released: a commit of an attempt with extras retires straight into the
    /// thread's list.
    pub(crate) retired_by_commit: Vec<Retired>,
    /// The cause and variable of the conflict that stopped this attempt.
    pub(crate) abort: Option<AbortRecord>,
    /// The earliest deadline given to `Transaction::retry_until` in this attempt (which sets
    /// `extras`, so that the end of the attempt clears it).
    pub(crate) deadline: Option<std::time::Instant>,
}

impl TxState {
    /// Notes a closure that may own transactional variables (see `closures`).
    #[inline]
    pub(crate) fn note_closures(&mut self) {
        self.closures = true;
        self.extras = true;
    }

    /// Everything the attempt let go of, to drop outside the transaction: taken after the
    /// write set is cleared.
    pub(crate) fn take_let_go(&mut self) -> Vec<LetGo> {
        let mut all = core::mem::take(&mut self.let_go);
        all.append(&mut self.writes.take_let_go());
        all
    }

    /// Drops every trace of `var`: it is being dropped during the attempt, so the attempt must
    /// never touch it again. What the attempt meant to do to it goes with it: a pending write
    /// or commute is discarded (a value the attempt allocated for it is freed with the
    /// attempt's allocations), a publishing operation's node joins those allocations, and a
    /// retirement tied to it (`TVar::retire_on_commit`) is cancelled.
    pub(crate) fn forget(&mut self, var: &VarCore) {
        let addr = var.addr();
        self.reads.retain(|r| r.var as usize != addr);
        self.forget_written(addr);
        self.retire_on_commit.retain(|&(_, _, owner)| owner != addr);
        self.forgotten.push(addr);
        self.extras = true; // the end of the attempt clears `forgotten`
    }

    /// Frees `bits` (with `drop_fn`) when the attempt ends, outside the transaction, whether it
    /// commits or not: a value dropped inside the closure (a `TBox` dropped there).
    pub(crate) fn free_after_attempt(&mut self, bits: u64, drop_fn: DropFn) {
        self.allocs.push((bits, drop_fn));
        self.allocs_unmatched = true;
        self.extras = true;
    }

    /// Removes the write-set entry of the variable at `addr`, if any, without touching the
    /// variable (it may already be freed).
    pub(crate) fn forget_written(&mut self, addr: usize) {
        let Some(i) = self
            .writes
            .entries
            .iter()
            .position(|e| e.var as usize == addr)
        else {
            return;
        };
        if let Pending::Publish(list) = self.writes.entries[i].pending {
            let nodes = self.writes.abandon_publish(list);
            self.allocs.extend(nodes);
        }
        // The entry's value, if the attempt allocated it, stays in `allocs` unpublished.
        self.allocs_unmatched = true;
        let mut entries = core::mem::take(&mut self.writes.entries);
        entries.remove(i);
        self.writes.restore(entries);
    }
}

/// What stopped an attempt: the cause and the variable, with what the profiler wants to know.
#[derive(Clone)]
pub(crate) struct AbortRecord {
    pub(crate) cause: AbortCause,
    pub(crate) var: Involved,
    /// Other variables found changed at the same validation (profiler on only): an event that
    /// conflicts on two globals is charged to both.
    pub(crate) also: Vec<Involved>,
}

/// A variable involved in a conflict.
#[derive(Clone, Copy)]
pub(crate) struct Involved {
    pub(crate) addr: usize,
    pub(crate) origin: Origin,
    /// The variable's last committing writer (profiler on only).
    pub(crate) written_by: Option<&'static Location<'static>>,
    /// The attempt also wrote the variable (a read-modify-write).
    pub(crate) also_written: bool,
}
