//! The end of an attempt: hooks, clearing the buffers, and the leftovers (values to free or
//! retire, hooks to run) released outside the transaction, where destructors may run
//! transactions of their own.

use super::{Hook, RestoreInTx, Transaction, TxState};
use crate::internal::reclaim::Retired;
use crate::internal::thread::{ThreadCtx, with_ctx};
use crate::internal::write_set::DropFn;
use crate::internal::write_set::LetGo;
use crate::sync::atomic::Ordering;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What an attempt leaves to be done once it has ended, outside the transaction: values to
/// free (which may run transactions in their `Drop`), values to retire, hooks to run.
pub(crate) struct Leftovers {
    /// Values the attempt allocated and did not publish, and values dropped during it.
    allocs: Vec<(u64, DropFn)>,
    /// Values the commit replaced, where it did not retire them into the thread's list
    /// itself; `release` also runs a reclamation pass that is due without them.
    retired: Vec<Retired>,
    /// Commit hooks, or abort hooks, to run.
    hooks: Vec<Hook>,
    /// Hooks not to run (abort hooks after a commit, commit hooks after a rollback): dropped.
    unrun: Vec<Hook>,
    /// Closures the attempt let go of (`TxState::take_let_go`): dropped.
    let_go: Vec<LetGo>,
}

impl Leftovers {
    /// Frees, retires and runs everything, outside the transaction (the thread counts as not
    /// in one meanwhile, so destructors and hooks may start transactions), then hands the
    /// emptied buffers back to the thread's state so that the next attempt does not allocate.
    ///
    /// Every destructor and hook runs even if an earlier one panics; the first panic is then
    /// passed on (unless the thread is already unwinding, when it is dropped).
    #[cold]
    pub(super) fn release(self, ctx: &ThreadCtx) {
        self.release_watching(ctx, false);
    }

    /// [`release`](Leftovers::release); if `watch`, returns the addresses of the variables
    /// dropped meanwhile.
    #[cold]
    pub(super) fn release_watching(mut self, ctx: &ThreadCtx, watch: bool) -> Vec<usize> {
        if ctx.in_load_pin() {
            // What it drops waits for the outermost load's end (see `free_after_pin`); its
            // hooks run now, as the caller expects once its transaction has returned.
            free_after_pin(ctx, &mut self.allocs);
            // Each value on its own: a second panic in one drop would abort.
            for unrun in self.unrun.drain(..) {
                ctx.drop_after_pin(Box::new(unrun));
            }
            for let_go in self.let_go.drain(..) {
                ctx.drop_after_pin(let_go);
            }
        }
        let mut first_panic = None;
        let dropped = {
            crate::internal::thread::set_in_tx(false);
            let _back_in_tx = RestoreInTx;
            let outer_watch = if watch { ctx.watch_drops() } else { None };
            free_allocs(&mut self.allocs, &mut first_panic);
            // Also with none of its own: a commit's write-back retires into the thread's list,
            // and a pass it made due runs here.
            if !self.retired.is_empty() || ctx.retire_is_due(0) {
                let retired = catch_unwind(AssertUnwindSafe(|| ctx.retire(self.retired.drain(..))));
                note_panic(&mut first_panic, retired);
            }
            // Each value on its own: a second panic in one drop would abort.
            for unrun in self.unrun.drain(..) {
                note_panic(
                    &mut first_panic,
                    catch_unwind(AssertUnwindSafe(|| drop(unrun))),
                );
            }
            for let_go in self.let_go.drain(..) {
                note_panic(
                    &mut first_panic,
                    catch_unwind(AssertUnwindSafe(|| drop(let_go))),
                );
            }
            for hook in self.hooks.drain(..) {
                note_panic(&mut first_panic, catch_unwind(AssertUnwindSafe(hook)));
            }
            if watch {
                ctx.take_dropped(outer_watch)
            } else {
                Vec::new()
            }
        };
        if let Ok(mut st) = ctx.state.try_borrow_mut() {
            if st.allocs.capacity() == 0 {
                st.allocs = core::mem::take(&mut self.allocs);
            }
            if st.retired_by_commit.capacity() == 0 {
                st.retired_by_commit = core::mem::take(&mut self.retired);
            }
        }
        crate::internal::pass_on_first_panic(first_panic);
        dropped
    }
}

/// What a committed attempt with extras leaves to do once it has ended, outside the
/// transaction ([`Transaction::finish_commit_slow`]).
pub(crate) enum AfterCommit {
    /// Nothing.
    Nothing,
    /// A reclamation pass over the thread's retired values, which now hold the commit's: due,
    /// and the only thing left (no destructor or hook of the attempt's own), so it runs without
    /// the bookkeeping of [`Leftovers`] ([`run_due_pass`]).
    Pass,
    /// Values to free, and no hook: [`free_after_commit`], which then runs a reclamation
    /// pass if one is due.
    Free(Vec<(u64, DropFn)>),
    /// Values to free or retire, hooks to run: [`Leftovers::release`].
    Release(Leftovers),
}

impl AfterCommit {
    /// Does what the committed attempt left, outside the transaction.
    #[inline(always)]
    pub(crate) fn run(self, ctx: &ThreadCtx) {
        match self {
            AfterCommit::Nothing => {}
            AfterCommit::Pass => run_due_pass(ctx),
            AfterCommit::Free(allocs) => free_after_commit(ctx, allocs),
            AfterCommit::Release(leftovers) => leftovers.release(ctx),
        }
    }
}

/// The reclamation pass a commit left due ([`AfterCommit::Pass`]), outside the transaction:
/// the values it frees may run transactions in their `Drop`. A panic of one of them passes on
/// once the others are freed (`free_each`), with the thread back inside the transaction for
/// the guard of `atomically` that unwinds.
#[cold]
#[inline(never)]
pub(super) fn run_due_pass(ctx: &ThreadCtx) {
    crate::internal::thread::set_in_tx(false);
    let _back_in_tx = RestoreInTx;
    ctx.run_due_pass();
}

/// Frees the values of a committed attempt that has nothing else left to do outside it
/// ([`AfterCommit::Free`]): its allocations that the commit did not publish (values it wrote,
/// then overwrote) and values dropped during it, then a reclamation pass that is due. What
/// [`Leftovers::release`] does with no hook to run, without its bookkeeping.
#[cold]
#[inline(never)]
pub(super) fn free_after_commit(ctx: &ThreadCtx, mut allocs: Vec<(u64, DropFn)>) {
    free_after_pin(ctx, &mut allocs);
    let mut first_panic = None;
    {
        crate::internal::thread::set_in_tx(false);
        let _back_in_tx = RestoreInTx;
        free_allocs(&mut allocs, &mut first_panic);
        let pass = catch_unwind(AssertUnwindSafe(|| ctx.run_due_pass()));
        note_panic(&mut first_panic, pass);
    }
    if let Ok(mut st) = ctx.state.try_borrow_mut() {
        if st.allocs.capacity() == 0 {
            st.allocs = allocs;
        }
    }
    crate::internal::pass_on_first_panic(first_panic);
}

/// Inside a pinned load (a transaction run by the closure of `pinned` or `TBox::load_with`, or
/// by a value's `Clone` in a collection's one-call operation), the values an attempt leaves to
/// free wait for the outermost load's end: their `Drop` may wait for readers, which a pinned
/// thread may not. Takes them out of `allocs`.
fn free_after_pin(ctx: &ThreadCtx, allocs: &mut Vec<(u64, DropFn)>) {
    if ctx.in_load_pin() && !allocs.is_empty() {
        ctx.drop_after_pin(Box::new(FreeAfterPin(core::mem::take(allocs))));
    }
}

/// Values of an attempt that ended inside a pinned load ([`free_after_pin`]): freed when
/// dropped, outside transactions and pins.
struct FreeAfterPin(Vec<(u64, DropFn)>);

impl Drop for FreeAfterPin {
    fn drop(&mut self) {
        let mut first_panic = None;
        free_allocs(&mut self.0, &mut first_panic);
        crate::internal::pass_on_first_panic(first_panic);
    }
}

/// Frees `allocs` (emptying the vector), every one even if an earlier destructor panics,
/// keeping the first panic.
fn free_allocs(
    allocs: &mut Vec<(u64, DropFn)>,
    first_panic: &mut Option<crate::internal::Payload>,
) {
    for (bits, drop_fn) in allocs.drain(..) {
        // SAFETY: allocated by the attempt and never published (no committed variable holds
        // it), or owned by a value the attempt dropped; the closure that could borrow it has
        // returned, and nothing else frees it.
        let freed = catch_unwind(AssertUnwindSafe(|| unsafe { drop_fn(bits) }));
        note_panic(first_panic, freed);
    }
}

/// True if the attempt leaves no allocation to free and no hook to run or drop.
#[inline]
fn nothing_to_run(st: &TxState) -> bool {
    st.allocs.is_empty() && st.on_commit.is_empty() && st.on_abort.is_empty() && !st.closures
}

/// Keeps the first panic of a series of destructors and hooks.
fn note_panic(first: &mut Option<crate::internal::Payload>, result: std::thread::Result<()>) {
    if let Err(payload) = result {
        crate::internal::keep_first_panic(first, payload);
    }
}

impl Transaction {
    /// Runs `hook` after this transaction commits, once, outside the transaction.
    ///
    /// Use it for I/O and other effects that must not happen in an attempt that may be rolled
    /// back. Hooks run in registration order; they may start new transactions. A hook registered
    /// by an attempt that is rolled back (or by an `or_else` branch that retried, or a
    /// `try_or_else` branch that failed) never runs.
    ///
    /// Threads asleep in [`retry`](Transaction::retry) that the commit woke are awake when the
    /// hooks run; the wakers of pending futures it woke ([`atomically_async`](crate::atomically_async))
    /// are called later, once `atomically` returns: a hook must not wait for such a task.
    ///
    /// # Panics
    ///
    /// A hook that panics does not stop the others: every hook of the commit runs, then the
    /// first panic propagates from [`atomically`](crate::atomically) (whose transaction has
    /// committed; what its closure returned is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let sent = Arc::new(AtomicU32::new(0));
    /// let v = TVar::new(0u32);
    /// let s = sent.clone();
    /// atomically(move |tx| {
    ///     v.write(tx, 1);
    ///     let s = s.clone();
    ///     tx.on_commit(move || {
    ///         s.fetch_add(1, Ordering::Relaxed);
    ///     });
    ///     Ok(())
    /// });
    /// assert_eq!(sent.load(Ordering::Relaxed), 1);
    /// ```
    pub fn on_commit(&self, hook: impl FnOnce() + 'static) {
        let mut st = self.state();
        st.extras = true;
        st.on_commit.push(Box::new(hook));
    }

    /// Runs `hook` if this attempt is rolled back (conflict or `retry`), after the rollback.
    ///
    /// Not run when the attempt commits, nor when the closure panics (the hooks are then dropped
    /// unrun). Hooks of an `or_else` branch that retried are dropped too; those of a
    /// `try_or_else` branch that failed stay, and run if the attempt is rolled back.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::atomically;
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let aborted = Rc::new(Cell::new(false));
    /// let a = aborted.clone();
    /// atomically(move |tx| {
    ///     let a = a.clone();
    ///     tx.on_abort(move || a.set(true));
    ///     Ok(())
    /// });
    /// assert!(!aborted.get());
    /// ```
    pub fn on_abort(&self, hook: impl FnOnce() + 'static) {
        let mut st = self.state();
        st.extras = true;
        st.on_abort.push(Box::new(hook));
    }

    /// The end of a committed attempt without extras (its state borrowed by the caller since
    /// the commit): only the read set is left to clear (the commit cleared the write set), and
    /// the pin to release. An attempt with extras ends with
    /// [`finish_commit_slow`](Self::finish_commit_slow) instead.
    #[inline]
    pub(super) fn finish_commit(&self, st: &mut TxState) {
        debug_assert!(!st.extras && !st.writes.lets_go_of_closures());
        st.reads.clear();
        self.unpin_at_end();
    }

    /// Unpins the attempt (if it pinned) and marks it finished.
    #[inline]
    fn unpin_at_end(&self) {
        if self.pinned.get() {
            self.pinned.set(false);
            self.ctx().unpin();
        }
        self.finished.set(true);
    }

    /// True if, after a commit, nothing is left to the end of the attempt but its reads and
    /// its pin: no allocation to free, no hook, no value retired into the attempt's own list,
    /// and nothing [`only_reads_left`](Self::only_reads_left) rules out.
    #[inline]
    pub(super) fn ends_quietly(&self, st: &TxState) -> bool {
        nothing_to_run(st) && st.retired_by_commit.is_empty() && self.only_reads_left(st)
    }

    /// After a commit of an attempt with extras (no borrow of its state held): clears the
    /// attempt; returns what is left to do outside it.
    #[cold]
    pub(super) fn finish_commit_slow(&self) -> AfterCommit {
        let mut st = self.state();
        if nothing_to_run(&st) {
            // No destructor or hook to run (the common update: the commit put the value it
            // replaced in the thread's list, or left it here): at most a reclamation pass is
            // left to run outside the transaction, on the thread's list alone.
            let pass = self.ctx().retire_is_due(st.retired_by_commit.len());
            if !st.retired_by_commit.is_empty() {
                self.ctx().queue_retired(&mut st.retired_by_commit);
            }
            if self.ends_quietly(&st) {
                // As a commit of an update decides it for itself (`commit`): the commit
                // cleared the write set and published every allocation.
                st.extras = false;
                self.finish_commit(&mut st);
            } else {
                self.reset(&mut st); // unpins first, so our own retired values can go at once
            }
            return if pass {
                AfterCommit::Pass
            } else {
                AfterCommit::Nothing
            };
        }
        if st.on_commit.is_empty() && st.on_abort.is_empty() && !st.closures {
            // Values to free (written, then overwritten, or dropped in the attempt), no hook:
            // what the commit retired goes to the thread's list, as above, and the values are
            // freed outside the transaction, followed by a pass if one is due.
            let allocs = core::mem::take(&mut st.allocs);
            if !st.retired_by_commit.is_empty() {
                self.ctx().queue_retired(&mut st.retired_by_commit);
            }
            self.reset(&mut st); // unpins first, so our own retired values can go at once
            return AfterCommit::Free(allocs);
        }
        let mut leftovers = Leftovers {
            allocs: core::mem::take(&mut st.allocs),
            retired: core::mem::take(&mut st.retired_by_commit),
            hooks: core::mem::take(&mut st.on_commit),
            unrun: core::mem::take(&mut st.on_abort),
            let_go: Vec::new(),
        };
        self.reset(&mut st); // unpins first, so our own retired values can go at once
        leftovers.let_go = st.take_let_go();
        AfterCommit::Release(leftovers)
    }

    /// After a rollback: the nodes of publishing operations that never ran join the attempt's
    /// allocations, to be freed with them.
    pub(super) fn hand_back_unpublished_nodes(&self) {
        let mut st = self.state();
        let nodes = st.writes.take_unpublished_nodes();
        if !nodes.is_empty() {
            st.allocs.extend(nodes);
        }
    }

    /// After a rollback: releases what the attempt held; returns what is left to do outside
    /// it (its allocations to free, its abort hooks to run).
    pub(super) fn finish_abort(&self) -> Option<Leftovers> {
        self.hand_back_unpublished_nodes();
        let mut st = self.state();
        if nothing_to_run(&st) {
            self.reset(&mut st);
            return None;
        }
        let mut leftovers = Leftovers {
            allocs: core::mem::take(&mut st.allocs),
            retired: Vec::new(),
            hooks: core::mem::take(&mut st.on_abort),
            unrun: core::mem::take(&mut st.on_commit),
            let_go: Vec::new(),
        };
        self.reset(&mut st);
        leftovers.let_go = st.take_let_go();
        Some(leftovers)
    }

    /// True if, after a commit (which cleared the write set and took the allocations it
    /// published), [`reset`](Self::reset) would do no more than clear the read set and `extras`
    /// and unpin: nothing else it clears or releases is set. Kept beside `reset`, whose every
    /// other step this must rule out.
    fn only_reads_left(&self, st: &TxState) -> bool {
        !self.irrevocable()
            && st.retire_on_commit.is_empty()
            && st.forgotten.is_empty()
            && st.abort.is_none()
            && st.deadline.is_none()
    }

    /// Releases irrevocable locks, frees unpublished allocations, unpins, clears buffers.
    pub(super) fn reset(&self, st: &mut TxState) {
        if self.irrevocable() {
            for e in st.writes.entries.iter().filter(|e| e.pending.is_shared()) {
                // Restore the word exactly (WAITERS included): nothing changed.
                e.var().lock.store(e.locked_word, Ordering::Release);
            }
        }
        debug_assert!(
            st.allocs.is_empty(),
            "allocations are taken out before the reset"
        );
        self.unpin_at_end();
        st.reads.clear();
        st.writes.clear();
        debug_assert!(
            st.on_commit.is_empty() && st.on_abort.is_empty(),
            "hooks are taken out before the reset (their drops may run transactions)"
        );
        st.retire_on_commit.clear();
        st.forgotten.clear();
        st.allocs_unmatched = false;
        st.overwritten.clear();
        st.abort = None;
        st.deadline = None;
        st.closures = false; // what they let go of is taken after the reset
        st.extras = false;
    }
}

impl Drop for Transaction {
    #[inline]
    fn drop(&mut self) {
        if !self.finished.get() {
            self.roll_back_after_panic();
        }
    }
}

impl Transaction {
    /// The closure (or a commutative operation at commit) panicked: roll back. Abort hooks do
    /// not run; they and the commit hooks are dropped, outside the transaction.
    #[cold]
    pub(super) fn roll_back_after_panic(&self) {
        let irrevocable = self.irrevocable();
        if let Some(mut leftovers) = self.finish_abort() {
            let abort_hooks = core::mem::take(&mut leftovers.hooks);
            leftovers.unrun.extend(abort_hooks);
            if irrevocable {
                // The caller still holds the irrevocable token (given back as the panic
                // unwinds on), which the destructors' own transactions may need: they run once
                // the thread has left `atomically`.
                let release = move || with_ctx(|ctx| leftovers.release(ctx));
                self.ctx().run_after_unwind(Box::new(release));
            } else {
                leftovers.release(self.ctx());
            }
        }
    }
}
