//! The commit, in named phases: lock the write set (in address order wherever it meets another
//! committer), take the write version, validate the read set, compute commuted values, write
//! back and unlock.

use super::{ReadEntry, Transaction, TxState};
use crate::internal::backoff::Backoff;
use crate::internal::reclaim::Retired;
use crate::internal::var::{
    IRREVOCABLE, LOCKED, VarCore, WAITERS, held_by, locked_by, same_count, unlocked_word,
    version_of,
};
use crate::internal::write_set::{
    DropFn, Entry, OpList, Pending, PublishOp, WriteSet, remove_published,
};
use crate::internal::{clock, history, wait};
use crate::stats::AbortCause;
use crate::sync::atomic::Ordering;
use core::panic::Location;

impl Transaction {
    /// Tries to commit, with the attempt's state borrowed by the caller (who goes on to
    /// [`finish_commit`](Transaction::finish_commit) under the same borrow if the attempt has
    /// no extras left, to [`finish_commit_slow`](Transaction::finish_commit_slow) once the
    /// borrow has ended if it has); on failure the attempt must be rolled back by the caller,
    /// once the borrow has ended.
    #[inline(always)]
    pub(super) fn commit(&self, st: &mut TxState) -> Result<(), ()> {
        // Told to roll back, its closure swallowed the conflict (against the docs) and returned
        // `Ok`, perhaps computed from a value it never read: it runs again.
        if !st.writes.has_shared() {
            if st.abort.is_some() {
                return Err(());
            }
            // Read-only: every read was validated against `rv`.
            st.writes.clear();
            if !st.retire_on_commit.is_empty() {
                // Nothing was unlinked by this commit, so values retired here are unreachable
                // to anyone who starts from now on: retire them at the next clock value.
                let version = clock::write_version(0, self.ctx().tag);
                let view = history::writer_view();
                let mut retired = Vec::new();
                retire_after_commit(&mut st.retire_on_commit, version, view, &mut retired);
                st.retired_by_commit = retired;
            }
            return Ok(());
        }
        if self.irrevocable() {
            return self.commit_irrevocable(st);
        }
        if st.abort.is_some() {
            return Err(());
        }
        if st.writes.entries.len() == 1 {
            // The usual write: one variable. The same phases, on a slice whose length the
            // compiler knows, so that their loops fold away.
            self.commit_shared::<true>(st)
        } else {
            // A set is locked as it stands, and sorted only if that meets another committer
            // (`lock_as_written`).
            if !st.writes.is_small() {
                self.prepare_large_commit(st);
            }
            self.commit_shared::<false>(st)
        }
    }

    /// Before a large set (past [`WriteSet::SMALL`] entries) is locked: its index dropped
    /// (sorting would leave it stale), or, for a thread without a tag, whose validation searches
    /// a large set by address, the set sorted. Out of line: inlined, it cost STAMP vacation's
    /// actions about 20 instructions of register traffic (`scripts/vacation-instructions.sh`).
    #[cold]
    #[inline(never)]
    fn prepare_large_commit(&self, st: &mut TxState) {
        if self.ctx().tag == clock::NO_TAG {
            st.writes.sort_for_commit();
        } else {
            st.writes.unindex_for_commit();
        }
    }

    /// The commit of an ordinary attempt that writes: `ONE` if its write set holds one entry.
    #[inline(always)]
    fn commit_shared<const ONE: bool>(&self, st: &mut TxState) -> Result<(), ()> {
        let entries = if ONE {
            &mut st.writes.entries[..1]
        } else {
            &mut st.writes.entries[..]
        };
        let mut locks = LockGuard { entries, held: 0 };
        // One entry is locked as a thread without a tag: its validation knows the one lock it
        // holds without one (the tag, kept live through the commit, cost the one-entry rows
        // about 15 instructions of register spills, `instructions --measure`).
        let tag = if ONE { clock::NO_TAG } else { self.ctx().tag };
        let locked = if ONE {
            lock_write_set(&mut locks, tag)
        } else {
            // As written, or as sorted by `prepare_large_commit` (a large set of a thread
            // without a tag).
            lock_as_written(&mut locks, tag)
        };
        let newest_locked = match locked {
            Ok(newest) => newest,
            Err(var) => {
                drop(locks);
                // SAFETY: the variable belongs to this attempt's write set (see `Entry::var`).
                self.conflict(st, AbortCause::LockBusy, unsafe { &*var });
                return Err(());
            }
        };
        let wv = clock::write_version(newest_locked, self.ctx().tag);
        // Every lock is held: from here on, snapshot readers registering see this commit as
        // before them, and those registered already get the values it replaces (`history.rs`).
        let view = history::writer_view();
        // Always validate: the clock does not count commits, so "nobody committed since we
        // began" cannot be read off it.
        if let Err(var) = validate_reads::<ONE>(&st.reads, locks.entries, tag) {
            drop(locks);
            // SAFETY: the variable belongs to this attempt's read set.
            self.conflict(st, AbortCause::ReadValidation, unsafe { &*var });
            if self.profiling {
                self.involve_other_changes(st, None);
            }
            return Err(());
        }
        if st.writes.has_commutes {
            compute_values(locks.entries, &st.writes.ops);
        }
        let writer = self.profiling.then_some(self.site);
        if !st.extras {
            // No allocation of the attempt and nothing retired outside variables (both set
            // `extras`): such a commit seldom retires anything (a value kept for a snapshot
            // reader, a box written without an allocation of this attempt). Into the attempt's
            // own list, which the end of the attempt hands on, without borrowing the thread's.
            let (publishes, retired) = (&mut st.writes.publishes, &mut st.retired_by_commit);
            write_back_unlocking(&mut locks, publishes, wv, view, writer, retired);
            drop(locks);
            debug_assert!(st.allocs.is_empty() && st.retire_on_commit.is_empty());
            st.extras = !st.retired_by_commit.is_empty();
            st.writes.clear();
            return Ok(());
        }
        let pass_due = {
            // An attempt with extras (an allocation, a value to retire) most likely retires
            // what its commit replaces: straight into the thread's retired values, without the
            // copy through the attempt's own list (the end of the attempt runs a reclamation
            // pass that this makes due). The borrow lasts until the retirements are in: no pass
            // runs meanwhile, and so no destructor.
            let mut retired = self.ctx().retired_list();
            let publishes = &mut st.writes.publishes;
            write_back_unlocking(&mut locks, publishes, wv, view, writer, &mut retired);
            drop(locks);
            retire_pending(&mut st.retire_on_commit, wv, view, &mut retired);
            self.ctx().pass_due_at(retired.len())
        };
        keep_unpublished(st);
        st.writes.clear();
        if !pass_due && self.ends_quietly(st) {
            // The usual collection update: its allocations published, what it replaced in the
            // thread's list, no pass due. The attempt ends as one without extras.
            st.extras = false;
        }
        Ok(())
    }

    /// The irrevocable commit: every variable is already locked, nothing can fail.
    pub(super) fn commit_irrevocable(&self, st: &mut TxState) -> Result<(), ()> {
        let mut locks = LockGuard {
            entries: &mut st.writes.entries,
            held: 0,
        };
        locks.held = locks.entries.len();
        let newest_locked = locks
            .entries
            .iter()
            .filter(|e| e.pending.is_shared())
            .map(|e| version_of(e.locked_word))
            .max()
            .unwrap_or(0);
        let wv = clock::write_version(newest_locked, self.ctx().tag);
        // The locks stop being the irrevocable transaction's before the commit decides which
        // snapshots it is after: a snapshot reader that still sees one reads the value under
        // it, which this commit has not replaced yet and which is the snapshot's (`history.rs`).
        // Locked as a thread without a tag (`locked_by`): this commit checks no reads.
        for e in locks.entries.iter().filter(|e| e.pending.is_shared()) {
            let word = locked_by(e.locked_word, clock::NO_TAG);
            e.var().lock.store(word, clock::SC_STORE);
        }
        let view = history::writer_view();
        let writer = self.profiling.then_some(self.site);
        let mut retired = Vec::new();
        let publishes = &mut st.writes.publishes;
        write_back_unlocking(&mut locks, publishes, wv, view, writer, &mut retired);
        drop(locks);
        retire_after_commit(&mut st.retire_on_commit, wv, view, &mut retired);
        keep_unpublished(st);
        // Unlocked by the write-back: the reset must not release these again.
        st.writes.clear();
        // Values kept for snapshot readers may be retired by a commit of words alone.
        st.extras |= !retired.is_empty();
        st.retired_by_commit = retired;
        Ok(())
    }
}

/// [`retire_after_commit`], with the usual case inline: one value (a queue's popped sentinel)
/// and no snapshot reader to hold it for.
#[inline(always)]
fn retire_pending(
    pending: &mut Vec<(u64, DropFn, usize)>,
    version: u64,
    view: history::WriterView,
    into: &mut Vec<Retired>,
) {
    match pending.as_slice() {
        [] => {}
        &[(bits, drop_fn, _)] if !history::holds(view) => {
            into.push(Retired {
                version,
                bits,
                drop_fn,
            });
            pending.clear();
        }
        _ => retire_after_commit(pending, version, view, into),
    }
}

/// Adds the values the attempt retires outside variables ([`TVar::retire_on_commit`]) to
/// `into`, as retirements of version `version`; held back instead for the snapshot readers
/// registered before the commit (`view`), if any (`history::hold`).
///
/// [`TVar::retire_on_commit`]: crate::TVar::retire_on_commit
#[inline]
fn retire_after_commit(
    pending: &mut Vec<(u64, DropFn, usize)>,
    version: u64,
    view: history::WriterView,
    into: &mut Vec<Retired>,
) {
    let retired = |&(bits, drop_fn, _): &(u64, DropFn, usize)| Retired {
        version,
        bits,
        drop_fn,
    };
    if history::holds(view) {
        into.extend(history::hold(view, pending.iter().map(retired).collect()));
    } else {
        // A plain loop: usually one value (a queue's popped sentinel), for which `extend` over
        // a `drain` cost about 55 instructions.
        for value in pending.iter() {
            into.push(retired(value));
        }
    }
    pending.clear();
}

/// Write-set locks held during a commit; released (restoring the old words) if dropped early,
/// for example when a commute function panics.
struct LockGuard<'a> {
    entries: &'a mut [Entry],
    held: usize,
}

impl LockGuard<'_> {
    /// Releases the locks held, restoring the words they replaced. The `Drop` below has the
    /// same loop of its own: written as a call to this one, it let the compiler merge the
    /// one-entry and several-entry commits into one loop (the one-entry rows +30 to +50
    /// instructions, `instructions --measure`).
    #[inline]
    fn release(&mut self) {
        for e in self.entries[..self.held]
            .iter()
            .filter(|e| e.pending.is_shared())
        {
            e.var().lock.store(e.locked_word, Ordering::Release);
        }
        self.held = 0;
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.held == 0 {
            return;
        }
        for e in self.entries[..self.held]
            .iter()
            .filter(|e| e.pending.is_shared())
        {
            e.var().lock.store(e.locked_word, Ordering::Release);
        }
    }
}

/// Commit phase 1 for a write set of more than one entry, in the order the attempt wrote it
/// (or sorted, for a large set of a thread without a tag): each variable locked without
/// waiting; on meeting another committer's lock, every lock taken is released and the set is
/// sorted and locked by [`lock_write_set`]. Deadlock-free: this pass never waits while holding
/// a lock, and the sorted pass waits only in address order (a committer it waits for either
/// waits in that order too, or is in this pass and finishes or releases without waiting).
/// Returns the newest version locked.
#[inline(always)]
fn lock_as_written(locks: &mut LockGuard<'_>, tag: u64) -> Result<u64, *const VarCore> {
    let mut newest = 0;
    for (i, e) in locks.entries.iter_mut().enumerate() {
        if !e.pending.is_shared() {
            continue;
        }
        let word = loop {
            match e.var().try_lock(tag) {
                Ok(word) => break word,
                // Lost a race for an unlocked word: again.
                Err(word) if word & LOCKED == 0 => {}
                Err(word) => {
                    let var = e.var;
                    locks.held = i;
                    return if word & IRREVOCABLE != 0 {
                        Err(var)
                    } else {
                        lock_in_order(locks, tag)
                    };
                }
            }
        };
        e.locked_word = word;
        newest = newest.max(version_of(word));
    }
    locks.held = locks.entries.len();
    Ok(newest)
}

/// [`lock_as_written`] after it met another committer: releases, sorts, locks in order.
#[cold]
#[inline(never)]
fn lock_in_order(locks: &mut LockGuard<'_>, tag: u64) -> Result<u64, *const VarCore> {
    locks.release();
    // No index to invalidate: a small set has none, a large one dropped it
    // (`WriteSet::unindex_for_commit`).
    locks.entries.sort_unstable_by_key(|e| e.var().lock_order());
    lock_write_set(locks, tag)
}

/// Commit phase 1: lock every written variable, in address order, as the thread tagged `tag`
/// ([`locked_by`]).
#[inline(always)]
fn lock_write_set(locks: &mut LockGuard<'_>, tag: u64) -> Result<u64, *const VarCore> {
    let mut newest = 0;
    for i in 0..locks.entries.len() {
        if !locks.entries[i].pending.is_shared() {
            continue;
        }
        let var = locks.entries[i].var();
        let mut backoff = Backoff::new();
        loop {
            match var.try_lock(tag) {
                Ok(word) => {
                    locks.entries[i].locked_word = word;
                    newest = newest.max(version_of(word));
                    locks.held = i + 1;
                    break;
                }
                // Lost a race for an unlocked word: again.
                Err(word) if word & LOCKED == 0 => {}
                Err(word) if word & IRREVOCABLE != 0 => return Err(var),
                // Another committer: it holds its locks briefly and, locking in the same order,
                // never waits for one of ours.
                Err(_) => backoff.snooze(),
            }
        }
    }
    Ok(newest)
}

/// Commit phase 2: every read must still show the version it had. A variable locked by this
/// commit (as the thread tagged `tag`) still shows its pre-lock version's count ([`locked_by`],
/// [`same_count`]). The commit knows its own locks by the one entry it locked (`ONE`), by its
/// tag ([`held_by`]), or, locked without a tag, by a search of `locked`, which is in lock order
/// if it is larger than [`WriteSet::SMALL`] (a small set may be as written).
#[inline(always)]
fn validate_reads<const ONE: bool>(
    reads: &[ReadEntry],
    locked: &[Entry],
    tag: u64,
) -> Result<(), *const VarCore> {
    for r in reads {
        let word = r.var().lock.load(clock::SC_LOAD);
        if word & LOCKED != 0 {
            let ours = if ONE {
                // The one entry of a commit of one (see `commit`: it is shared).
                core::ptr::eq(locked[0].var, r.var)
            } else if tag != clock::NO_TAG {
                held_by(word, tag)
            } else {
                holds_lock_of(locked, r.var())
            };
            if !ours || !same_count(version_of(word), r.version) {
                return Err(r.var);
            }
        } else if version_of(word) != r.version {
            return Err(r.var);
        }
    }
    Ok(())
}

/// For a thread without a tag, whose locks all carry the same tag: whether `locked` (in lock
/// order if larger than [`WriteSet::SMALL`]) holds `var`'s lock.
#[cold]
#[inline(never)]
fn holds_lock_of(locked: &[Entry], var: &VarCore) -> bool {
    if locked.len() <= WriteSet::SMALL {
        // A few entries, perhaps not in order: a scan.
        locked
            .iter()
            .any(|e| core::ptr::eq(e.var, var) && e.pending.is_shared())
    } else {
        locked
            .binary_search_by_key(&var.lock_order(), |e| e.var().lock_order())
            .is_ok_and(|i| locked[i].pending.is_shared())
    }
}

/// Commit phase 3: commuted values from the latest committed values (which our locks freeze),
/// where they come from operations of the program's own, which may panic: all of them before
/// the first value is written back, so that a panic leaves every variable as it was (the
/// [`LockGuard`] restores the locks). Inline adds ([`Pending::Add`]) cannot panic: the
/// write-back computes them as it goes.
#[inline(always)]
fn compute_values(entries: &mut [Entry], ops: &[OpList]) {
    for e in entries.iter_mut() {
        if let Pending::Commute(i) = e.pending {
            let bits = ops[i as usize].apply(e.var().value.load(Ordering::Relaxed));
            e.pending = Pending::Write(bits);
        }
    }
}

/// [`write_back`] with every lock of `locks` held, which releases them all.
#[inline(always)]
fn write_back_unlocking(
    locks: &mut LockGuard<'_>,
    publishes: &mut [(u32, PublishOp)],
    wv: u64,
    view: history::WriterView,
    writer: Option<&'static Location<'static>>,
    retired: &mut Vec<Retired>,
) {
    write_back(locks.entries, publishes, wv, view, writer, retired);
    locks.held = 0; // unlocked by write_back
}

/// Commit phase 4: run the publishing operations, store the values, unlock at version `wv`,
/// wake `retry` waiters, run the second steps of publishing operations. Collects the heap
/// values the commit replaced in `retired`.
///
/// No variable is unlocked before every publishing operation has run: a value stored and
/// unlocked may lead to what they publish (a queue's `head` moved onto the attempt's own
/// pushes, whose nodes `stamp` makes readable).
#[inline(always)]
fn write_back(
    entries: &[Entry],
    publishes: &mut [(u32, PublishOp)],
    wv: u64,
    view: history::WriterView,
    writer: Option<&'static Location<'static>>,
    retired: &mut Vec<Retired>,
) {
    let mut then = false;
    // The publishing operations first, every lock still held (see above).
    if !publishes.is_empty() {
        for e in entries {
            if let Pending::Publish(list) = e.pending {
                then |= publish_entry(e.var(), list, publishes, wv, view, retired);
            }
        }
    }
    for e in entries {
        let var = e.var();
        let bits = match e.pending {
            Pending::Write(bits) => Some(bits),
            // A commuted add to a plain word: the latest committed value, frozen by our lock,
            // plus the sum of the attempt's adds (no heap value to retire: no `drop_old`).
            Pending::Add(d) => Some(var.value.load(Ordering::Relaxed).wrapping_add(d)),
            Pending::Publish(_) => None, // run above
            Pending::Hold => {
                // Read (and locked) by the irrevocable transaction only: restore the word.
                var.lock.store(e.locked_word, Ordering::Release);
                continue;
            }
            Pending::Local(_) => continue,
            Pending::Commute(_) => unreachable!("computed before write-back"),
        };
        if let Some(bits) = bits {
            let kept = history::involved(var, view)
                && history::on_write(var, e.drop_old, wv, view, retired);
            if let Some(drop_fn) = e.drop_old {
                if !kept {
                    retired.push(Retired {
                        version: wv,
                        bits: var.value.load(Ordering::Relaxed),
                        drop_fn,
                    });
                }
            }
            var.value.store(bits, Ordering::Release);
        }
        if let Some(site) = writer {
            var.note_writer(site);
        }
        // Each variable is unlocked as soon as its value is in place: readers that see the new
        // version see the new value, and the clock already shows `wv`.
        var.lock.store(unlocked_word(wv), Ordering::Release);
        if e.locked_word & WAITERS != 0 {
            wait::wake(var);
        }
    }
    if then {
        // Second steps, with every variable unlocked: what they write (a queue's link in the
        // node that was last before the commit) is off the path that other committers of the
        // same variables wait on.
        for (_, op) in publishes.iter() {
            op.run_after();
        }
    }
}

/// Runs the publishing operations of the locked `var` (its list `list`) and stores the value
/// they leave; true if one has a second step.
#[inline(always)]
fn publish_entry(
    var: &VarCore,
    list: u32,
    publishes: &mut [(u32, PublishOp)],
    wv: u64,
    view: history::WriterView,
    retired: &mut Vec<Retired>,
) -> bool {
    if history::involved(var, view) {
        history::on_write(var, None, wv, view, retired);
    }
    let mut then = false;
    let old = var.value.load(Ordering::Relaxed);
    let mut new = old;
    for (_, op) in publishes.iter_mut().filter(|(l, _)| *l == list) {
        new = op.run(new, wv);
        then |= op.has_after();
    }
    var.value.store(new, Ordering::Release);
    then
}

/// Leaves in the attempt's allocations only those the commit did not publish: the values its
/// writes overwrote, or, where the attempt lost track of some (`allocs_unmatched`), those left
/// once one per published write is taken out ([`remove_published`]). They are freed when the
/// attempt ends.
#[inline]
fn keep_unpublished(st: &mut TxState) {
    if core::mem::take(&mut st.allocs_unmatched) {
        st.overwritten.clear();
        if st.allocs.is_empty() {
            return;
        }
        let published = st
            .writes
            .entries
            .iter()
            .filter_map(|e| match (e.drop_old, e.pending) {
                (Some(drop_fn), Pending::Write(bits)) => Some((bits, drop_fn)),
                _ => None,
            });
        remove_published(&mut st.allocs, published);
        return;
    }
    // Each is the pending write of an entry of its own (published), or one it overwrote.
    st.allocs.clear();
    if !st.overwritten.is_empty() {
        core::mem::swap(&mut st.allocs, &mut st.overwritten);
    }
}
