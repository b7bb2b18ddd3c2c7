//! Single-variable commits outside the transaction machinery, for operations that read and
//! write one variable only (a counter's add, a map update confined to one bucket).
//!
//! Such an operation is the transaction "read `var`, write `var`": its read set and its write
//! set are the one variable. Its commit is the ordinary one with both sets of size one:
//!
//! 1. [`load_seen`]: a sequence-lock read of the value together with the whole lock word,
//!    waiting out any commit in progress (so that the value is the latest committed one, and
//!    a commit that also wrote other variables is seen whole or not at all).
//! 2. [`commit_alone`]: lock the variable with a CAS from that word (or from the same word
//!    with the `WAITERS` bit that a sleeping transaction may have set since). Success proves
//!    that no commit changed it since the read (every commit moves the version; a committer
//!    that locked it and gave up restores the very word), which is the read's validation; a
//!    failure means "run again". Then take the write version as every commit does, store the
//!    value, unlock at the new version, and wake `retry` waiters if the word had `WAITERS`.
//!
//! No transaction state is touched, so none of its bookkeeping is paid. The thread must not be
//! inside a transaction (its attempt could not see the write, and would not be serialisable
//! with it): the callers check.
//!
//! Three variants: [`commit_alone_through`] also validates the variables read on the way to
//! this one (a map's leaf slot, found through the slots of the inner nodes above it), with this
//! one locked, as a transaction's commit validates its reads; [`commit_alone_retiring`] also
//! retires a value outside the variable (a queue's
//! pop, whose marker frees the sentinel it replaced), as `retire_on_commit` does in a
//! transaction, and can be told a version its commit must come after; [`publish_alone`] is the
//! transaction "publish to `var`" (a queue's push), which reads nothing and so cannot fail: it
//! waits for the variable to be unlocked, locks it from whatever word it holds, and computes
//! the new value from the old one under the lock, as a transaction's write-back runs a
//! publishing operation.

use core::panic::Location;

use crate::internal::counters::AbortCause;
use crate::internal::reclaim::Retired;
use crate::internal::thread::{ThreadCtx, with_ctx};
use crate::internal::var::{
    IRREVOCABLE, LOCKED, VarCore, WAITERS, locked_by, unlocked_word, version_of,
};
use crate::internal::wait;
use crate::internal::write_set::DropFn;
use crate::internal::{clock, history};
use crate::sync::atomic::Ordering;

/// The latest committed value of `var` and the (unlocked) lock word it was read under.
#[inline]
pub(crate) fn load_seen(var: &VarCore) -> (u64, u64) {
    let mut backoff = crate::internal::backoff::Backoff::new();
    loop {
        let before = var.lock.load(clock::SC_LOAD);
        if before & LOCKED == 0 {
            // Acquire keeps the second lock-word load below from moving above this one.
            let bits = var.value.load(Ordering::Acquire);
            if var.lock.load(Ordering::Acquire) == before {
                return (bits, before);
            }
            crate::sync::spin_hint();
        } else {
            // A committer (briefly) or the irrevocable transaction (until it ends).
            backoff.snooze();
        }
    }
}

/// Commits `bits` to `var` if its lock word is still `seen` (from [`load_seen`]); returns the
/// bits it replaced, or `None` if `var` changed meanwhile. If `drop_old` is given, the value
/// replaced owns heap memory, which it frees once no running transaction can read it.
#[inline]
pub(crate) fn commit_alone(
    var: &VarCore,
    seen: u64,
    bits: u64,
    drop_old: Option<DropFn>,
    site: &'static Location<'static>,
) -> Option<u64> {
    commit_seen(var, seen, bits, 0, drop_old, None, site)
}

/// [`commit_alone`] of a variable the caller reached through others, each read with
/// [`load_seen`] on the way (`reads`: each variable and the word it was read under): the
/// transaction "read `reads` and `var`, write `var`". With `var` locked, every one of `reads`
/// must still hold its word, unlocked (validated as a transaction's commit validates its reads:
/// a committer of one of them either committed before, which changed its word, or has it
/// locked, or will meet `var` locked or moved on when it validates its own reads); else `var` is
/// restored and the commit gives up (`None`, counted as an abort). The new version comes after
/// theirs.
#[inline]
pub(crate) fn commit_alone_through<'r>(
    var: &VarCore,
    seen: u64,
    bits: u64,
    drop_old: Option<DropFn>,
    reads: impl Iterator<Item = (&'r VarCore, u64)>,
    site: &'static Location<'static>,
) -> Option<u64> {
    let word = lock_seen(var, seen, site)?;
    clock::loom_fence();
    let mut newest = version_of(seen);
    for (read, read_seen) in reads {
        let now = read.lock.load(clock::SC_LOAD);
        if (now | WAITERS) != (read_seen | WAITERS) {
            var.lock.store(word, Ordering::Release);
            count_abort(read, now, site);
            return None;
        }
        newest = newest.max(version_of(read_seen));
    }
    let (old, _wake) = write_locked(var, word, newest, |_, _| bits, drop_old, None, site);
    Some(old)
}

/// [`commit_alone`] of `bits`, whose commit comes after version `after` (a version the caller
/// read in memory that the new value makes reachable), and which also retires `retired` (bits
/// and how to free them) at its version, as a transaction's `retire_on_commit` does: held for
/// the snapshot readers registered before it, freed once no running transaction can read it.
#[inline]
pub(crate) fn commit_alone_retiring(
    var: &VarCore,
    seen: u64,
    bits: u64,
    after: u64,
    retired: (u64, DropFn),
    site: &'static Location<'static>,
) -> Option<u64> {
    debug_assert!(
        after <= clock::MAX_OUTSIDE_VERSION,
        "commit_alone_retiring after a version no commit hands out: {after:#x}"
    );
    commit_seen(var, seen, bits, after, None, Some(retired), site)
}

/// The two above: lock `var` from `seen` and write `bits` at a version above `after`.
#[inline(always)]
fn commit_seen(
    var: &VarCore,
    seen: u64,
    bits: u64,
    after: u64,
    drop_old: Option<DropFn>,
    retired: Option<(u64, DropFn)>,
    site: &'static Location<'static>,
) -> Option<u64> {
    let word = lock_seen(var, seen, site)?;
    let newest = version_of(seen).max(after);
    let (old, _wake) = write_locked(var, word, newest, |_, _| bits, drop_old, retired, site);
    Some(old)
}

/// A commit of its own that publishes to `var`: locks it from whatever word it holds (waiting
/// while a committer or the irrevocable transaction holds it; a wait for the irrevocable one
/// counts as one lock-busy abort, as a transaction's commit would abort there), stores
/// `publish(old bits, commit version)` and unlocks; returns the bits replaced, and the wake of
/// the variable's waiters, to drop once the caller's work after the commit is done. `publish`
/// runs with the variable locked: it must not panic or block.
#[inline]
pub(crate) fn publish_alone<'v>(
    var: &'v VarCore,
    publish: impl FnOnce(u64, u64) -> u64,
    site: &'static Location<'static>,
) -> (u64, WakeWhenDone<'v>) {
    let mut backoff = crate::internal::backoff::Backoff::new();
    let mut waited = false;
    let word = loop {
        // Without a tag, as `lock_seen`.
        match var.try_lock(clock::NO_TAG) {
            Ok(word) => break word,
            Err(word) if word & LOCKED == 0 => {}
            Err(word) => {
                if word & IRREVOCABLE != 0 && !waited {
                    // A transaction's commit aborts on the irrevocable transaction's lock (it
                    // waits out other committers'): the wait stands for that rerun, counted
                    // once.
                    waited = true;
                    count_abort(var, word, site);
                }
                backoff.snooze();
            }
        }
    };
    write_locked(var, word, version_of(word), publish, None, None, site)
}

/// Locks `var` if its word is still `seen` (or `seen` with `WAITERS`); returns the word it
/// locked, or `None` (counted as an abort) if a commit changed the variable since.
#[inline(always)]
fn lock_seen(var: &VarCore, seen: u64, site: &'static Location<'static>) -> Option<u64> {
    debug_assert_eq!(seen & LOCKED, 0, "a seen word is unlocked");
    // The word may differ from `seen` by the `WAITERS` bit alone (a transaction went to sleep
    // on the variable since): the version is what matters. Locked as a thread without a tag
    // (`locked_by`): a commit alone checks no reads, so it need not know its own locks, and no
    // transaction's commit takes them for its own.
    let mut word = seen;
    while let Err(now) = var.lock.compare_exchange(
        word,
        locked_by(word, clock::NO_TAG),
        clock::SC,
        Ordering::Relaxed,
    ) {
        if now & LOCKED != 0 || (now | WAITERS) != (seen | WAITERS) {
            count_abort(var, now, site);
            return None;
        }
        word = now;
    }
    Some(word)
}

/// The rest of a commit alone, with `var` locked from `word`: takes a write version above
/// `newest` (and the clock), stores `new(old bits, version)`, unlocks, wakes blocked waiters,
/// then retires the value replaced (with `drop_old`) and `retired`. Returns the bits replaced
/// and the wake of the variable's waiters, which happens when it is dropped: after all of
/// that and whatever the caller still has to do, or while a panic of a destructor that the
/// retirement ran unwinds.
#[inline(always)]
fn write_locked<'v>(
    var: &'v VarCore,
    word: u64,
    newest: u64,
    new: impl FnOnce(u64, u64) -> u64,
    drop_old: Option<DropFn>,
    retired: Option<(u64, DropFn)>,
    site: &'static Location<'static>,
) -> (u64, WakeWhenDone<'v>) {
    let old = var.value.load(Ordering::Relaxed);
    // A plain reference rather than a closure around the commit: the closure's size decided
    // whether `LocalKey::with` was inlined (60 instructions a commit alone when it was not).
    let ctx = with_ctx(|ctx| ctx as *const ThreadCtx);
    // SAFETY: this thread's context lives until its thread-locals are torn down, which does not
    // happen during this call (see `Transaction::ctx`).
    let ctx = unsafe { &*ctx };
    let wv = clock::write_version(newest, ctx.tag);
    let view = history::writer_view();
    let kept = history::involved(var, view) && keep_alone(ctx, var, drop_old, wv, view);
    var.value.store(new(old, wv), Ordering::Release);
    if crate::conflicts::profiling() {
        var.note_writer(site);
    }
    var.lock.store(unlocked_word(wv), Ordering::Release);
    let wake = WakeWhenDone((word & WAITERS != 0).then_some(var));
    ctx.slot.stats.commit();
    // Retired once the variable is unlocked: a reclamation pass may start, which runs
    // destructors.
    if let Some(drop_fn) = drop_old.filter(|_| !kept) {
        ctx.retire_one(Retired {
            version: wv,
            bits: old,
            drop_fn,
        });
    }
    if let Some((bits, drop_fn)) = retired {
        let value = Retired {
            version: wv,
            bits,
            drop_fn,
        };
        if history::holds(view) {
            retire_held(ctx, value, view);
        } else {
            ctx.retire_one(value);
        }
    }
    (old, wake)
}

/// The wake of a variable's waiters (blocked `retry`s and pending futures) after a commit of its
/// own, when dropped: a waker is foreign code, which may panic or poll its task on the spot, so
/// it runs once the commit's work is done.
#[must_use = "the waiters are woken when this is dropped"]
pub(crate) struct WakeWhenDone<'v>(Option<&'v VarCore>);

impl Drop for WakeWhenDone<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(var) = self.0 {
            wake_waiters(var);
        }
    }
}

#[cold]
#[inline(never)]
fn wake_waiters(var: &VarCore) {
    wait::wake(var);
}

/// Retires `value`, unless a snapshot reader registered before its commit (`view`) holds it.
#[cold]
fn retire_held(ctx: &ThreadCtx, value: Retired, view: history::WriterView) {
    ctx.retire(history::hold(view, vec![value]));
}

/// [`history::on_write`] for a commit alone, which has no attempt to hand versions let go of
/// to: they are queued on the thread (no destructor runs while `var` is locked).
#[cold]
fn keep_alone(
    ctx: &ThreadCtx,
    var: &VarCore,
    drop_old: Option<DropFn>,
    wv: u64,
    view: history::WriterView,
) -> bool {
    let mut versions = Vec::new();
    let kept = history::on_write(var, drop_old, wv, view, &mut versions);
    ctx.queue_retired(&mut versions);
    kept
}

/// Counts a commit alone that found `var` changed (or locked) as the aborted attempt it is, in
/// the statistics, so that contention on one-call operations shows there as it does for
/// transactions.
#[cold]
fn count_abort(var: &VarCore, now: u64, site: &'static Location<'static>) {
    let cause = if now & LOCKED != 0 {
        AbortCause::LockBusy
    } else {
        AbortCause::ReadValidation
    };
    with_ctx(|ctx| ctx.slot.stats.abort(cause, Some(var.origin()), site));
}

/// Runs `f` with the thread pinned (see [`crate::pinned`]).
///
/// `f` runs outside the thread-local's `with`: the two closures handed to it stay small
/// enough to be inlined, whatever `f` is (a map lookup inside one was left behind an indirect
/// call to the thread-local's accessor, 20 instructions a call).
#[inline]
pub(crate) fn pinned<R>(f: impl FnOnce() -> R) -> R {
    /// Ends the pin, even if `f` panics.
    struct Unpin;
    impl Drop for Unpin {
        #[inline]
        fn drop(&mut self) {
            // The context outlives `f`: it was there when the pin began, and only the thread's
            // teardown, which `f` cannot start, takes it away.
            with_ctx(ThreadCtx::end_load_pin);
        }
    }
    with_ctx(ThreadCtx::begin_load_pin);
    let unpin = Unpin;
    let value = f();
    // Ended here, not at the return: a panic of what the pin's end runs (wakers, values let go
    // of inside it) then drops `value`, a local, where after the return it would leak it.
    drop(unpin);
    value
}
