//! Transactions: `atomically`, reads, writes, commutes, `retry`, `or_else`, hooks, commit.
//!
//! The protocol is TL2 (Dice, Shalev & Shavit, "Transactional Locking II", DISC 2006) with
//! timestamp extension (Riegel, Felber & Fetzer's LSA) and commit-time commutative updates:
//!
//! - **Begin**: read the commit clock into `rv`, the attempt's read version.
//! - **Read**: sequence-lock read of the variable (see `internal/var.rs`). A version above `rv`
//!   means a commit happened since the attempt began: re-validate every earlier read and, if they
//!   all still hold, move `rv` up to the current clock (extension); otherwise abort. So every
//!   attempt, even one that will abort, sees a state some serial order produced (opacity).
//! - **Write / commute**: buffered in the write set; commutes record operations, not values, and
//!   add no read-set entry.
//! - **Commit** (read-only attempts are already done): lock the write set in address order
//!   (`lock_write_set`; a set of more than one entry first as written, sorted only if that
//!   meets another committer: `lock_as_written`; each lock carries the committing thread's
//!   tag), take `wv` from the clock, validate the read set (`validate_reads`: a variable this
//!   commit locked is known by its lock's tag and checked by its version's count), compute
//!   commuted values on the latest committed values where the program's own operations give
//!   them (`compute_values`), then write back (adding inline adds to the value under the lock)
//!   and unlock with version `wv` (`write_back`).
//! - **Progress**: a committer waits for locks held by other committers (they hold them for a
//!   bounded time, and the global lock order rules out deadlock: a committer locking out of
//!   order never waits), but aborts rather than wait for the irrevocable transaction. After
//!   `IRREVOCABLE_AFTER` conflict aborts of one call a transaction becomes irrevocable: it takes a
//!   global token and locks every variable it touches as it goes (strict two-phase locking), so
//!   it cannot abort and always commits.
//!
//! One file per phase: `read` (reads, extension, pins), `write` (the write set: writes,
//! commutes, publishing operations, locals, heap values), `commit` (the commit phases),
//! `blocking` (`retry`, `or_else`), `end` (hooks, clearing, the leftovers released outside the
//! transaction), `conflict` (which variable stopped an attempt); the per-thread buffers
//! are `internal/attempt.rs`. This file holds the driver, [`atomically`], which runs attempts until one commits.

use core::cell::Cell;
use core::fmt;
use core::panic::Location;

use crate::conflicts::{ConflictKey, ConflictKind};
use crate::internal::clock;
use crate::internal::thread::{self, ThreadCtx, global, with_ctx};
use crate::internal::var::VarCore;
use crate::internal::wait;
use crate::stats::AbortCause;

pub(crate) mod alone;
mod blocking;
mod commit;
mod conflict;
mod end;
mod future;
mod read;
mod snapshot;
mod write;

pub(crate) use crate::internal::attempt::TxState;
use crate::internal::attempt::{AbortRecord, Hook, Involved, ReadEntry};
use end::AfterCommit;
pub use future::{
    __block_on, Atomically, TryAtomically, atomically_async, pending_async_registrations,
    try_atomically_async,
};
pub use snapshot::read_only;
pub(crate) use write::drop_boxed as write_drop_boxed;

/// After this many conflict aborts of one call (of `atomically`, `try_atomically` or
/// `atomically_async`), the transaction runs in irrevocable mode, where it is guaranteed to
/// commit. Retries are not conflicts: they neither count nor start the count again.
pub const IRREVOCABLE_AFTER: u32 = 16;

/// How long a reader waits for a committer's lock before giving up on the attempt.
const READ_LOCK_PATIENCE: u32 = if cfg!(loom) { 1 } else { 10 };

/// The result of a transactional operation: `Err` means the attempt must stop and be rolled
/// back (pass it on with `?`).
pub type StmResult<T> = Result<T, StmError>;

/// Why a transactional operation asks the attempt to stop.
///
/// Not an error to handle: return it from the closure (usually with `?`) and
/// [`atomically`](crate::atomically) rolls the attempt back and runs it again, or blocks first
/// if it was a [`retry`](Transaction::retry). A closure that swallows a conflict (replaces the
/// value it could not read by a default, say) and returns `Ok` all the same does not commit
/// what it computed: the attempt that met the conflict is rolled back and runs again anyway.
/// An error belongs to the attempt whose operation returned it: a conflict kept and returned by
/// a later attempt makes `atomically` panic (it would run again for ever).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StmError {
    kind: ErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    Conflict,
    Retry,
}

impl StmError {
    const CONFLICT: StmError = StmError {
        kind: ErrorKind::Conflict,
    };
    const RETRY: StmError = StmError {
        kind: ErrorKind::Retry,
    };

    /// True if this is an explicit [`retry`](Transaction::retry) rather than a conflict.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let v = TVar::new(1u8);
    /// let was_retry = atomically(|tx| {
    ///     let r: commute_stm::StmResult<()> = tx.or_else(
    ///         |tx| {
    ///             v.read(tx)?;
    ///             tx.retry()
    ///         },
    ///         |_| Ok(()),
    ///     );
    ///     Ok(r.is_ok())
    /// });
    /// assert!(was_retry);
    /// ```
    pub fn is_retry(&self) -> bool {
        self.kind == ErrorKind::Retry
    }
}

impl fmt::Debug for StmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Conflict => f.write_str("StmError(conflict)"),
            ErrorKind::Retry => f.write_str("StmError(retry)"),
        }
    }
}

impl fmt::Display for StmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Conflict => f.write_str("transaction conflict: the attempt will be re-run"),
            ErrorKind::Retry => f.write_str("transaction retry: waiting for a change"),
        }
    }
}

impl std::error::Error for StmError {}

/// The result of a closure given to [`try_atomically`]: `Err` is commute's own signal (pass it
/// on) or the closure's error, which rolls the transaction back.
pub type TxResult<T, E> = Result<T, TxError<E>>;

/// Why the closure of [`try_atomically`] stops an attempt: commute's signal, or the closure's
/// own error.
///
/// `?` converts an [`StmError`] into [`TxError::Stm`] (`From`); build the other variant with
/// [`Transaction::abort`], `TxError::Abort(e)`, or `result.map_err(TxError::Abort)?`. (A blanket
/// `From<E>` is impossible beside `From<StmError>`: the two would overlap for `E = StmError`.)
///
/// # Examples
///
/// ```
/// use commute_stm::{try_atomically, TVar, TxError};
///
/// let v = TVar::new(7u32);
/// let r: Result<u32, std::num::TryFromIntError> = try_atomically(|tx| {
///     let small = u8::try_from(v.read(tx)? * 100).map_err(TxError::Abort)?;
///     Ok(u32::from(small))
/// });
/// assert!(r.is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TxError<E> {
    /// A conflict or a [`retry`](Transaction::retry): the attempt is run again (after waiting,
    /// for a retry).
    Stm(StmError),
    /// The closure's error: the transaction is rolled back and
    /// [`try_atomically`] returns it.
    Abort(E),
}

impl<E> From<StmError> for TxError<E> {
    #[inline]
    fn from(e: StmError) -> Self {
        TxError::Stm(e)
    }
}

impl<E: fmt::Debug> fmt::Debug for TxError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::Stm(e) => fmt::Debug::fmt(e, f),
            TxError::Abort(e) => f.debug_tuple("Abort").field(e).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TxError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::Stm(e) => fmt::Display::fmt(e, f),
            TxError::Abort(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TxError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TxError::Stm(e) => Some(e),
            TxError::Abort(e) => Some(e),
        }
    }
}

/// An attempt of a transaction, handed to the closure given to [`atomically`].
///
/// All reads and writes of [`TVar`](crate::TVar)s and [`TBox`](crate::TBox)es take it. It cannot
/// leave the closure or the thread.
pub struct Transaction {
    ctx: *const ThreadCtx,
    rv: Cell<u64>,
    /// What kind of attempt this is: one test tells the fast paths an ordinary attempt.
    mode: Cell<Mode>,
    /// The conflict profiler was on when the transaction started.
    profiling: bool,
    site: &'static Location<'static>,
    finished: Cell<bool>,
    /// The attempt has pinned its thread ([`pin`](Transaction::pin)): later calls return at
    /// once, and the end of the attempt unpins.
    pinned: Cell<bool>,
    /// The epoch of the snapshot this attempt reads ([`read_only`]; set with `Mode::Snapshot`,
    /// which alone tells a snapshot attempt), or 0; with [`snapshot::LEFT`] set once the
    /// attempt met what a snapshot cannot read (a link published outside variables after it):
    /// it must not commit, and runs again as an ordinary transaction.
    snapshot: Cell<u64>,
}

/// The kinds of attempt. An attempt never changes kind, but for a snapshot attempt, which
/// begins as `Plain` and becomes `Snapshot` before its closure runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An ordinary attempt.
    Plain,
    /// After repeated conflicts: it locks what it touches and cannot abort.
    Irrevocable,
    /// The first attempt of a [`read_only`] transaction, which reads a snapshot.
    Snapshot,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("read_version", &self.rv.get())
            .field("irrevocable", &self.irrevocable())
            .field("snapshot", &self.is_snapshot())
            .field("site", &format_args!("{}", self.site))
            .finish()
    }
}

/// Runs `f` as a transaction and returns its result.
///
/// The closure appears to run alone: every transaction is serialisable with every other, and
/// every attempt (even one that is later rolled back) sees a consistent state. The closure may
/// run several times; effects outside transactional variables belong in
/// [`Transaction::on_commit`]. What an attempt that does not commit returned is dropped once the
/// attempt has ended, outside the transaction (its `Drop` may use commute; inside a pin, such
/// as [`pinned`](crate::pinned)'s closure, it is dropped there: it may borrow what the pin's
/// scope owns, so it cannot wait for the pin's end).
///
/// Whatever the closure returns is committed, `Ok(Err(e))` included; for a transaction that
/// fails with an error of its own and rolls back, see [`try_atomically`].
///
/// It may run in a thread-local destructor, also one that runs after commute's own thread
/// state was destroyed (a thread-local first used before the thread's first transaction): the
/// thread then gets a fresh context for the destructor, dropped after it as at a thread's exit.
/// (A thread has 16 such drops; past them, the context of a later destructor is kept for the
/// rest of the thread's teardown and never dropped: its registry slot and what it retired stay
/// for the process's life.)
///
/// # Panics
///
/// - If called inside a transaction: compose transactional code by passing the `&Transaction`
///   down instead (functions taking `tx: &Transaction`).
/// - If the closure calls [`Transaction::retry`] without having read any variable (it would
///   block forever).
/// - If the closure returns a conflict [`StmError`] that no operation of the running attempt
///   returned (one kept from an earlier attempt): it would run again for ever.
/// - A panic in the closure rolls the attempt back (nothing of it is visible, no lock stays held)
///   and then propagates to the caller.
/// - A panic after the commit, of a [commit hook](Transaction::on_commit), of a destructor of a
///   value the attempt let go of, or of a pending future's waker that the commit woke (called
///   as `atomically` returns), passes on to the caller once all of them have run: the
///   transaction has committed, and the value the closure returned is dropped.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, TVar};
///
/// let balance = TVar::new(100i64);
/// let ok = atomically(|tx| {
///     if balance.read(tx)? < 30 {
///         return Ok(false);
///     }
///     balance.modify(tx, |b| b - 30)?;
///     Ok(true)
/// });
/// assert!(ok);
/// assert_eq!(balance.load(), 70);
/// ```
#[track_caller]
pub fn atomically<T, F>(f: F) -> T
where
    F: FnMut(&Transaction) -> StmResult<T>,
{
    let site = Location::caller();
    with_ctx(|ctx| run(ctx, site, f))
}

/// Runs `f` as a transaction that may fail with an error of the caller's own: `Err(e)` rolls
/// the transaction back and is returned, without running it again.
///
/// The closure returns [`TxResult<T, E>`]: `?` passes on both commute's own signals
/// ([`StmError`], converted by `From`) and the closure's errors, built with
/// [`Transaction::abort`] (or `.map_err(TxError::Abort)` on a `Result<_, E>`). Where
/// [`atomically`] commits whatever the closure returns (`Ok(Err(e))` included, with every write
/// made before the error), an `Err(TxError::Abort(e))` here rolls back every effect of the
/// attempt, as a conflict does: writes, commutes, queue pushes, map inserts, frees of values
/// written; its [`on_commit`](Transaction::on_commit) hooks are dropped unrun and its
/// [`on_abort`](Transaction::on_abort) hooks run. Then `try_atomically` returns `Err(e)`.
/// Values the attempt wrote are dropped once, outside the transaction.
///
/// [`retry`](Transaction::retry) and conflicts keep their meaning (wait, or run again). In
/// [`try_or_else`](Transaction::try_or_else), an error of the first branch ends the whole
/// transaction: only a retry falls through to the second branch.
///
/// No validation is needed before returning the error: every value an attempt reads belongs to
/// one consistent committed state (opacity, see [`atomically`]), so an attempt that decides to
/// fail is serialisable at its read version, like a read-only transaction (its writes are
/// discarded). One exception is handled: an attempt that was already told to roll back (a
/// conflict [`StmError`] that the closure swallowed instead of passing on) and then fails does
/// not return its error, since its decision may rest on a value it never got: it runs again,
/// as after any conflict. An attempt that ends with the closure's error counts in
/// [`stats`](crate::stats) neither as a commit nor as an abort.
///
/// # Errors
///
/// The closure's error `e`, from the first attempt that ends with `Err(TxError::Abort(e))`.
///
/// # Panics
///
/// As [`atomically`].
///
/// # Examples
///
/// ```
/// use commute_stm::{try_atomically, TVar};
///
/// #[derive(Debug, PartialEq)]
/// struct InsufficientFunds;
///
/// let balance = TVar::new(100i64);
/// let refused = try_atomically(|tx| {
///     balance.modify(tx, |b| b - 400)?; // rolled back by the abort below
///     if balance.read(tx)? < 0 {
///         return tx.abort(InsufficientFunds);
///     }
///     Ok(())
/// });
/// assert_eq!(refused, Err(InsufficientFunds));
/// assert_eq!(balance.load(), 100);
/// ```
#[track_caller]
pub fn try_atomically<T, E, F>(f: F) -> Result<T, E>
where
    F: FnMut(&Transaction) -> TxResult<T, E>,
{
    let site = Location::caller();
    with_ctx(|ctx| run_try(ctx, site, f))
}

fn run<T>(
    ctx: &ThreadCtx,
    site: &'static Location<'static>,
    mut f: impl FnMut(&Transaction) -> StmResult<T>,
) -> T {
    let _in_tx = enter(ctx, site);
    let mut conflicts: u32 = 0;
    loop {
        // Before the attempt: see `OutsideWhenUnwinding`.
        let outcome: StmResult<T>;
        let outside = OutsideWhenUnwinding;
        let irrevocable = conflicts >= IRREVOCABLE_AFTER;
        let mut token = irrevocable.then(|| IrrevocableToken::take(ctx));
        // Per attempt: the switch may move while the call runs.
        let profiling = crate::conflicts::profiling();
        let tx = Transaction::begin(ctx, site, irrevocable, profiling);
        outcome = f(&tx);
        let is_retry = matches!(&outcome, Err(e) if e.is_retry());
        if outcome.is_ok() && committed(ctx, &tx, &mut token, || {}) {
            ended(tx);
            core::mem::forget(outside);
            let Ok(value) = outcome else { unreachable!() };
            return value;
        }
        if let Err(e) = &outcome {
            tx.check_error(e);
        }
        after_rollback(ctx, site, tx, token, is_retry, &mut conflicts);
        core::mem::forget(outside);
        if let Ok(value) = outcome {
            drop_refused(value);
        }
    }
}
fn run_try<T, E>(
    ctx: &ThreadCtx,
    site: &'static Location<'static>,
    mut f: impl FnMut(&Transaction) -> TxResult<T, E>,
) -> Result<T, E> {
    let _in_tx = enter(ctx, site);
    let mut conflicts: u32 = 0;
    loop {
        // Before the attempt: see `OutsideWhenUnwinding`.
        let outcome: TxResult<T, E>;
        let outside = OutsideWhenUnwinding;
        let irrevocable = conflicts >= IRREVOCABLE_AFTER;
        let mut token = irrevocable.then(|| IrrevocableToken::take(ctx));
        // Per attempt: the switch may move while the call runs.
        let profiling = crate::conflicts::profiling();
        let tx = Transaction::begin(ctx, site, irrevocable, profiling);
        outcome = f(&tx);
        let is_retry = matches!(&outcome, Err(TxError::Stm(e)) if e.is_retry());
        match &outcome {
            Ok(_) => {
                if committed(ctx, &tx, &mut token, || {}) {
                    ended(tx);
                    core::mem::forget(outside);
                    let Ok(value) = outcome else { unreachable!() };
                    return Ok(value);
                }
                after_rollback(ctx, site, tx, token, false, &mut conflicts);
            }
            Err(TxError::Abort(_)) => {
                if !tx.told_to_roll_back() {
                    roll_back_uncounted(ctx, tx, token);
                    core::mem::forget(outside);
                    let Err(TxError::Abort(e)) = outcome else {
                        unreachable!()
                    };
                    return Err(e);
                }
                after_rollback(ctx, site, tx, token, false, &mut conflicts);
            }
            Err(TxError::Stm(e)) => {
                tx.check_error(e);
                after_rollback(ctx, site, tx, token, is_retry, &mut conflicts);
            }
        }
        core::mem::forget(outside);
        match outcome {
            Ok(value) => drop_refused(value),
            Err(TxError::Abort(e)) => drop_refused(e),
            Err(TxError::Stm(_)) => {}
        }
    }
}

/// The panic of [`Transaction::check_error`].
#[cold]
#[inline(never)]
fn kept_conflict() -> ! {
    panic!(
        "commute: the transaction's closure returned a conflict (StmError) that no operation of \
         this attempt returned, one kept from an earlier attempt: it would run again for ever; \
         return only the errors of this attempt's operations (pass them on with `?`)"
    )
}

/// Marks the thread outside the transaction when dropped, which happens only while a panic
/// unwinds out of an attempt's end (a commit hook, a commutative operation's closure at
/// commit, an abort hook, a destructor run after the attempt): the drivers forget it on every
/// other way out. Declared after what the closure returned and before the attempt and its
/// irrevocable token, it drops after them and before that value: the attempt is rolled back
/// (or has ended), and the value is dropped outside the transaction, as every value the
/// library drops (its destructor may run transactions).
pub(super) struct OutsideWhenUnwinding;

impl Drop for OutsideWhenUnwinding {
    #[cold]
    fn drop(&mut self) {
        thread::set_in_tx(false);
    }
}

/// Drops `value`, what the closure of an attempt that was rolled back returned, once the
/// attempt has ended: outside the transaction, where every value the library drops is dropped
/// (its destructor may run transactions or wait for readers). At once, not through
/// [`crate::drop_outside`]: the value need not be `'static`, and may borrow from the caller's
/// scope (inside a pin, it is dropped there).
#[cold]
#[inline(never)]
pub(super) fn drop_refused<T>(value: T) {
    thread::set_in_tx(false);
    let _back_in_tx = RestoreInTx;
    drop(value);
}

/// Marks the thread as inside a transaction (and inside `atomically`) until the guard drops.
///
/// # Panics
///
/// If the thread is inside a transaction already: transactions do not nest.
#[inline(always)]
fn enter<'a>(ctx: &'a ThreadCtx, site: &'static Location<'static>) -> InTxGuard<'a> {
    if thread::replace_in_tx(true) {
        nested(site);
    }
    ctx.enter_atomically();
    InTxGuard(ctx)
}

/// The panic of a transaction begun inside another. It is raised behind the thread context's
/// closure, which `#[track_caller]` does not cross, so the message names the caller's line
/// (checking before the closure instead cost every transaction 16 instructions: the closure
/// was no longer inlined).
#[cold]
#[inline(never)]
fn nested(site: &'static Location<'static>) -> ! {
    panic!(
        "commute: atomically() called inside a transaction, at {site}; transactions do not \
         nest. Pass the `&Transaction` down to the inner code instead (take `tx: &Transaction` \
         as a parameter), or use `tx.or_else` for alternatives"
    )
}

/// Tries to commit the attempt; if it did, calls `on_commit`, records the commit, ends the
/// attempt, gives the irrevocable token back and releases what the attempt left (outside the
/// transaction), and returns true.
///
/// `on_commit` runs as soon as the commit has succeeded, before anything that may panic (commit
/// hooks, destructors): the async driver marks its future complete there, so that a future
/// polled again after such a panic does not commit again. The blocking forms pass `|| {}`,
/// which compiles away.
#[inline(always)]
fn committed<G>(
    ctx: &ThreadCtx,
    tx: &Transaction,
    token: &mut Option<G>,
    on_commit: impl FnOnce(),
) -> bool {
    // One borrow of the attempt's state from the commit to the end of the attempt.
    let mut st = tx.state();
    if tx.commit(&mut st).is_err() {
        return false;
    }
    on_commit();
    ctx.slot.stats.commit();
    if tx.profiling {
        ctx.slot.profile.commit(tx.attempt_time());
    }
    if !st.extras {
        // The usual end, on a path of its own (no leftovers to test for).
        tx.finish_commit(&mut st);
        drop(st);
        give_token_back(ctx, token);
        return true;
    }
    drop(st);
    let after = tx.finish_commit_slow();
    // The token first: a destructor or hook released below may itself become irrevocable.
    give_token_back(ctx, token);
    after.run(ctx);
    true
}

/// [`committed`] for a clean snapshot attempt (read-only: its commit cannot fail), which leaves
/// what is left to run outside the transaction to the caller, who deregisters the reader first.
pub(super) fn commit_read_only(ctx: &ThreadCtx, tx: &Transaction) -> AfterCommit {
    let mut st = tx.state();
    let done = tx.commit(&mut st);
    debug_assert!(done.is_ok(), "a read-only commit cannot fail");
    ctx.slot.stats.commit();
    if tx.profiling {
        ctx.slot.profile.commit(tx.attempt_time());
    }
    if !st.extras {
        tx.finish_commit(&mut st);
        return AfterCommit::Nothing;
    }
    drop(st);
    tx.finish_commit_slow()
}

/// After a commit: an irrevocable attempt (the one kind that holds the token) counts as an
/// irrevocable commit and gives the token back.
#[inline(always)]
fn give_token_back<G>(ctx: &ThreadCtx, token: &mut Option<G>) {
    if let Some(token) = token.take() {
        ctx.slot.stats.irrevocable_commit();
        drop(token);
    }
}

/// A committed attempt, ended by [`committed`]: nothing is left for its drop, which only
/// rolls back an attempt that a panic left unfinished.
#[inline(always)]
fn ended(tx: Transaction) {
    debug_assert!(tx.finished.get());
    core::mem::forget(tx);
}

/// The end of an attempt that did not commit: statistics, rollback, then a wait (retry) or a
/// backoff (conflict).
#[inline(always)]
fn after_rollback<G>(
    ctx: &ThreadCtx,
    site: &'static Location<'static>,
    tx: Transaction,
    token: Option<G>,
    is_retry: bool,
    conflicts: &mut u32,
) {
    let Some(wait) = roll_back(ctx, site, tx, token, is_retry) else {
        *conflicts += 1;
        backoff(ctx, *conflicts);
        return;
    };
    if wait.deadline.is_none() {
        if wait.vars.is_empty() {
            nothing_to_wait_on();
        }
        if ctx.in_load_pin() {
            retry_in_pin();
        }
    }
    // SAFETY: the variables are alive until the wait sleeps: the closure that read them is
    // still borrowed by this call, variables dropped during the attempt purged themselves from
    // its read set, and those freed with its values since were taken out of the list
    // (`roll_back`). Asleep, the thread counts as outside `atomically`, and other threads may
    // free them: the wait touches none of them from then on.
    let reads = unsafe { wait.borrowed() };
    if ctx.has_due_wakers() {
        wake_due_before_waiting(ctx);
    }
    wait::wait_for_change(&reads, wait.deadline, wait::WaitSite { site }, |sleep| {
        ctx.asleep_outside_attempts(sleep)
    });
}

/// What a retried attempt waits for: a change of one of these variables (from the version it
/// read), or the deadline of `retry_until`.
struct WaitFor {
    vars: Vec<(*const VarCore, u64)>,
    deadline: Option<std::time::Instant>,
}

impl WaitFor {
    /// The variables to wait on, borrowed, with the versions read.
    ///
    /// # Safety
    ///
    /// Every variable is alive while the result is used.
    unsafe fn borrowed(&self) -> Vec<(&VarCore, u64)> {
        self.vars
            .iter()
            // SAFETY: alive (caller).
            .map(|&(v, ver)| (unsafe { &*v }, ver))
            .collect()
    }
}

/// The rollback shared by the blocking and the async drivers: records the abort (statistics,
/// profiler), ends the attempt, gives the token back and releases what it left, outside the
/// transaction. For a retry, returns what to wait for, less the variables freed meanwhile
/// (which can no longer change); for a conflict, `None`.
#[inline(always)]
fn roll_back<G>(
    ctx: &ThreadCtx,
    site: &'static Location<'static>,
    tx: Transaction,
    token: Option<G>,
    is_retry: bool,
) -> Option<WaitFor> {
    let record = if is_retry { None } else { tx.abort_info() };
    let cause = match &record {
        Some(r) => r.cause,
        None if is_retry => AbortCause::Retry,
        None => AbortCause::ReadValidation,
    };
    ctx.slot
        .stats
        .abort(cause, record.as_ref().map(|r| r.var.origin), site);
    if tx.profiling {
        let keys = conflict_keys(cause, record, site);
        ctx.slot.profile.abort(&keys, tx.attempt_time());
    }
    let wait = is_retry.then(|| WaitFor {
        vars: tx.wait_list(),
        deadline: tx.state().deadline,
    });
    let leftovers = tx.finish_abort();
    drop(tx);
    drop(token);
    let dropped = match leftovers {
        Some(leftovers) => leftovers.release_watching(ctx, is_retry),
        None => Vec::new(),
    };
    wait.map(|mut wait| {
        wait.vars
            .retain(|(var, _)| !dropped.contains(&(*var as usize)));
        wait
    })
}

/// A retry with nothing to wait for would block for ever.
#[cold]
#[track_caller]
fn nothing_to_wait_on() -> ! {
    panic!(
        "commute: retry() called in a transaction that has read no TVar; it would block \
         forever. Read the variables whose change should wake it first"
    )
}

/// A retry without a deadline inside a pin would wait with the pin held: other threads'
/// [`wait_for_readers`](crate::wait_for_readers) (a queue's `Taken::into_inner`) would wait for
/// it, possibly the very thread whose commit it waits for; and the values the attempt wrote,
/// dropped once the pin ends, could own the only variables it read: the wait would never end
/// (a future's too: a variable that is dropped wakes nobody).
#[cold]
#[track_caller]
pub(super) fn retry_in_pin() -> ! {
    panic!(
        "commute: retry() would wait inside a pin (pinned, TBox::load_with's closure, or code \
         such as a Clone that a collection's one-call operation runs pinned); a pinned thread \
         must not wait for other threads' commits. Wait once the pin has ended, or bound the \
         wait with retry_until"
    )
}

/// Calls the wakers of pending futures that this attempt woke (a variable killed inside it),
/// or that a pin the thread is in woke, outside the transaction, before the thread blocks:
/// they must not wait for it.
#[cold]
#[inline(never)]
fn wake_due_before_waiting(ctx: &ThreadCtx) {
    thread::set_in_tx(false);
    let _back_in_tx = RestoreInTx;
    ctx.wake_due_before_blocking();
}

/// Rolls an attempt back without counting it as an abort (its abort hooks run, outside the
/// transaction): the closure of [`try_atomically`] failed in a consistent attempt, whose error
/// the caller returns (neither met a conflict).
#[cold]
fn roll_back_uncounted<G>(ctx: &ThreadCtx, tx: Transaction, token: Option<G>) {
    let leftovers = tx.finish_abort();
    drop(tx);
    drop(token);
    if let Some(leftovers) = leftovers {
        leftovers.release(ctx);
    }
}

/// The profiler's keys for an aborted attempt: one per variable involved (one key without a
/// variable for a retry or an unattributed abort).
fn conflict_keys(
    cause: AbortCause,
    record: Option<AbortRecord>,
    site: &'static Location<'static>,
) -> Vec<ConflictKey> {
    let key = |var: Option<Involved>| ConflictKey {
        kind: match (cause, var) {
            (AbortCause::Retry, _) => ConflictKind::Retry,
            (AbortCause::LockBusy, _) => ConflictKind::LockBusy,
            (AbortCause::ReadValidation, Some(v)) if v.also_written => ConflictKind::WriteWrite,
            (AbortCause::ReadValidation, _) => ConflictKind::ReadWrite,
        },
        var_label: var.and_then(|v| v.origin.label),
        var_created_at: var.map(|v| v.origin.site),
        aborted_at: site,
        written_by: var.and_then(|v| v.written_by),
    };
    match record {
        None => vec![key(None)],
        Some(r) => std::iter::once(r.var)
            .chain(r.also)
            .map(|v| key(Some(v)))
            .collect(),
    }
}

struct RestoreInTx;

impl Drop for RestoreInTx {
    fn drop(&mut self) {
        thread::set_in_tx(true);
    }
}

/// True if the calling thread is inside a transaction (in the closure given to [`atomically`]).
///
/// Commit and abort hooks run outside the transaction.
///
/// The readers that work outside transactions ([`TVar::load`](crate::TVar::load),
/// [`TBox::load`](crate::TBox::load), the collections' `load` and `.atomic()` views) panic while
/// this is true: there they would read outside the transaction, unseen by conflict detection.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, in_transaction};
///
/// assert!(!in_transaction());
/// assert!(atomically(|_| Ok(in_transaction())));
/// ```
#[inline]
pub fn in_transaction() -> bool {
    thread::in_tx()
}

/// Randomised exponential backoff after a conflict.
fn backoff(ctx: &ThreadCtx, conflicts: u32) {
    if cfg!(loom) {
        crate::sync::yield_now();
        return;
    }
    let ceiling = 1u64 << conflicts.min(10);
    let spins = ctx.next_random() % ceiling;
    for _ in 0..spins {
        crate::sync::spin_hint();
    }
    if conflicts > 4 {
        crate::sync::yield_now();
    }
}

/// The global irrevocable token, held by this thread's irrevocable attempt; the thread knows
/// it holds it while it does (`ThreadCtx::irrevocable`).
struct IrrevocableToken<'a> {
    _token: crate::sync::MutexGuard<'a, ()>,
    ctx: &'a ThreadCtx,
}

impl<'a> IrrevocableToken<'a> {
    fn take(ctx: &'a ThreadCtx) -> Self {
        let token = crate::sync::lock(&global().irrevocable);
        ctx.irrevocable.set(true);
        IrrevocableToken { _token: token, ctx }
    }
}

impl Drop for IrrevocableToken<'_> {
    fn drop(&mut self) {
        self.ctx.irrevocable.set(false);
    }
}

/// Notes when an attempt begins, for the conflict profiler's times.
#[cold]
#[inline(never)]
fn note_start(ctx: &ThreadCtx) {
    ctx.attempt_started.set(Some(std::time::Instant::now()));
}

struct InTxGuard<'a>(&'a ThreadCtx);

impl Drop for InTxGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        thread::set_in_tx(false);
        self.0.leave_atomically();
        if self.0.wakes_due.get() {
            // Pending futures that this call's commits woke (see `internal/async_wait.rs`).
            self.0.wake_due();
        }
    }
}

impl Transaction {
    #[inline]
    fn begin(
        ctx: &ThreadCtx,
        site: &'static Location<'static>,
        irrevocable: bool,
        profiling: bool,
    ) -> Self {
        if profiling {
            note_start(ctx);
        }
        let rv = clock::begin();
        Transaction {
            ctx,
            rv: Cell::new(rv),
            mode: Cell::new(if irrevocable {
                Mode::Irrevocable
            } else {
                Mode::Plain
            }),
            profiling,
            site,
            finished: Cell::new(false),
            pinned: Cell::new(false),
            snapshot: Cell::new(0),
        }
    }

    /// How long the attempt has run (for the profiler: only when `profiling`).
    #[cold]
    fn attempt_time(&self) -> std::time::Duration {
        self.ctx()
            .attempt_started
            .get()
            .map_or(std::time::Duration::ZERO, |started| started.elapsed())
    }

    #[inline]
    fn ctx(&self) -> &ThreadCtx {
        // SAFETY: a `Transaction` only exists inside `run`, on the thread that owns `ctx`, which
        // outlives it (the thread-local is alive for the whole `with_ctx` call).
        unsafe { &*self.ctx }
    }

    #[inline]
    fn state(&self) -> core::cell::RefMut<'_, TxState> {
        self.ctx().state.borrow_mut()
    }

    /// True if this attempt runs in irrevocable mode (after repeated conflicts): it holds a lock
    /// on every variable it has touched and cannot abort.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!commute_stm::atomically(|tx| Ok(tx.is_irrevocable())));
    /// ```
    pub fn is_irrevocable(&self) -> bool {
        self.irrevocable()
    }

    #[inline(always)]
    fn irrevocable(&self) -> bool {
        self.mode.get() == Mode::Irrevocable
    }

    /// True for an ordinary attempt: neither irrevocable nor reading a snapshot.
    #[inline(always)]
    fn plain(&self) -> bool {
        self.mode.get() == Mode::Plain
    }

    /// Ends the attempt with the closure's own error `e`: `return tx.abort(e);` in a closure
    /// given to [`try_atomically`], which rolls the transaction back and returns `Err(e)`.
    ///
    /// # Errors
    ///
    /// Always `Err(TxError::Abort(e))`; return it.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{try_atomically, TVar};
    ///
    /// let stock = TVar::new(0u32);
    /// let r = try_atomically(|tx| {
    ///     stock.write(tx, 5);
    ///     if stock.read(tx)? < 10 {
    ///         return tx.abort("out of stock");
    ///     }
    ///     Ok(())
    /// });
    /// assert_eq!(r, Err("out of stock"));
    /// assert_eq!(stock.load(), 0);
    /// ```
    pub fn abort<T, E>(&self, e: E) -> TxResult<T, E> {
        Err(TxError::Abort(e))
    }

    /// The attempt met a conflict (and returned the signal to its closure): it must not commit,
    /// nor end with the closure's error.
    fn told_to_roll_back(&self) -> bool {
        self.state().abort.is_some()
    }

    /// The closure returned `error`: if a conflict, panics unless an operation of this attempt
    /// returned one. A conflict kept from an earlier attempt and returned again would make the
    /// transaction run again for ever (the irrevocable attempt included).
    #[inline]
    fn check_error(&self, error: &StmError) {
        if !error.is_retry()
            && !self.told_to_roll_back()
            && self.snapshot.get() & (snapshot::LEFT | snapshot::GAVE_WAY) == 0
        {
            kept_conflict();
        }
    }

    /// Where the running `atomically` was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let (line, here) = (commute_stm::atomically(|tx| Ok(tx.site().line())), line!());
    /// assert_eq!(line, here);
    /// ```
    pub fn site(&self) -> &'static Location<'static> {
        self.site
    }
}
