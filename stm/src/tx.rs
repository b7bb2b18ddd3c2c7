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
//!   (`lock_write_set`), take `wv` from the clock, validate the read set unless no commit
//!   intervened (`validate_reads`), compute commuted values on the latest committed values
//!   (`compute_values`), then write back and unlock with version `wv` (`write_back`).
//! - **Progress**: a committer waits for locks held by other committers (they hold them for a
//!   bounded time, and the global lock order rules out deadlock), but aborts rather than wait for
//!   the irrevocable transaction. After `IRREVOCABLE_AFTER` conflict aborts in a row a
//!   transaction becomes irrevocable: it takes a global token and locks every variable it touches
//!   as it goes (strict two-phase locking), so it cannot abort and always commits.

use core::cell::Cell;
use core::fmt;
use core::panic::Location;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::conflicts::{ConflictKey, ConflictKind};
use crate::internal::backoff::Backoff;
use crate::internal::clock;
use crate::internal::thread::{Retired, ThreadCtx, global, with_ctx};
use crate::internal::var::{
    IRREVOCABLE, LOCKED, Origin, Snapshot, VarCore, WAITERS, unlocked_word, version_of,
};
use crate::internal::wait;
use crate::internal::write_set::{DropFn, Entry, Op, OpList, Pending, PublishOp, WriteSet};
use crate::stats::AbortCause;
use crate::sync::atomic::Ordering;

/// After this many conflict aborts in a row, a transaction runs in irrevocable mode, where it is
/// guaranteed to commit.
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
/// if it was a [`retry`](Transaction::retry).
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

/// One entry of the read set: a variable and the version this attempt read.
#[derive(Clone, Copy)]
pub(crate) struct ReadEntry {
    var: *const VarCore,
    version: u64,
}

impl ReadEntry {
    #[inline]
    fn var(&self) -> &VarCore {
        // SAFETY: read entries live only during the attempt, while the closure's borrows keep
        // every variable it read alive (as for write entries).
        unsafe { &*self.var }
    }
}

type Hook = Box<dyn FnOnce()>;

/// What stopped an attempt: the cause and the variable, with what the profiler wants to know.
#[derive(Clone)]
struct AbortRecord {
    cause: AbortCause,
    var: Involved,
    /// Other variables found changed at the same validation (profiler on only): an event that
    /// conflicts on two globals is charged to both.
    also: Vec<Involved>,
}

/// A variable involved in a conflict.
#[derive(Clone, Copy)]
struct Involved {
    addr: usize,
    origin: Origin,
    /// The variable's last committing writer (profiler on only).
    written_by: Option<&'static Location<'static>>,
    /// The attempt also wrote the variable (a read-modify-write).
    also_written: bool,
}

/// The buffers of one attempt, kept per thread and reused so that transactions do not allocate.
#[derive(Default)]
pub(crate) struct TxState {
    reads: Vec<ReadEntry>,
    writes: WriteSet,
    on_commit: Vec<Hook>,
    on_abort: Vec<Hook>,
    /// Heap values allocated by this attempt (for `TBox`), with their drop functions.
    allocs: Vec<(u64, DropFn)>,
    pinned: bool,
    /// Set when the attempt used anything beyond reads, writes and a pin (hooks, heap values,
    /// retirements): the end of the attempt then takes the slow path.
    extras: bool,
    /// Heap values to retire if the attempt commits (`Transaction::retire_on_commit`), each
    /// with the address of the variable whose drop cancels it (0: none).
    retire_on_commit: Vec<(u64, DropFn, usize)>,
    /// Addresses of variables dropped during the attempt (see [`TxState::forget`]), for
    /// `or_else` to purge them from the write set it restores.
    forgotten: Vec<usize>,
    /// Heap values replaced by the commit, retired once the state borrow is released.
    retired_by_commit: Vec<Retired>,
    /// The cause and variable of the conflict that stopped this attempt.
    abort: Option<AbortRecord>,
}

impl TxState {
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
        self.extras = true;
    }

    /// Removes the write-set entry of the variable at `addr`, if any, without touching the
    /// variable (it may already be freed).
    fn forget_written(&mut self, addr: usize) {
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
        let mut entries = core::mem::take(&mut self.writes.entries);
        entries.remove(i);
        self.writes.restore(entries);
    }
}

/// An attempt of a transaction, handed to the closure given to [`atomically`].
///
/// All reads and writes of [`TVar`](crate::TVar)s and [`TBox`](crate::TBox)es take it. It cannot
/// leave the closure or the thread.
pub struct Transaction {
    ctx: *const ThreadCtx,
    rv: Cell<u64>,
    irrevocable: bool,
    /// The conflict profiler was on when the transaction started.
    profiling: bool,
    site: &'static Location<'static>,
    finished: Cell<bool>,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("read_version", &self.rv.get())
            .field("irrevocable", &self.irrevocable)
            .field("site", &format_args!("{}", self.site))
            .finish()
    }
}

/// Runs `f` as a transaction and returns its result.
///
/// The closure appears to run alone: every transaction is serialisable with every other, and
/// every attempt (even one that is later rolled back) sees a consistent state. The closure may
/// run several times; effects outside transactional variables belong in
/// [`Transaction::on_commit`].
///
/// # Panics
///
/// - If called inside a transaction: compose transactional code by passing the `&Transaction`
///   down instead (functions taking `tx: &Transaction`).
/// - If the closure calls [`Transaction::retry`] without having read any variable (it would
///   block forever).
/// - A panic in the closure rolls the attempt back (nothing of it is visible, no lock stays held)
///   and then propagates to the caller.
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

fn run<T>(
    ctx: &ThreadCtx,
    site: &'static Location<'static>,
    mut f: impl FnMut(&Transaction) -> StmResult<T>,
) -> T {
    if ctx.in_tx.replace(true) {
        panic!(
            "commute: atomically() called inside a transaction; transactions do not nest. \
             Pass the `&Transaction` down to the inner code instead (take `tx: &Transaction` \
             as a parameter), or use `tx.or_else` for alternatives"
        );
    }
    let _in_tx = InTxGuard(ctx);
    let mut conflicts: u32 = 0;
    let profiling = crate::conflicts::profiling();
    loop {
        let irrevocable = conflicts >= IRREVOCABLE_AFTER;
        let token = irrevocable.then(|| crate::sync::lock(&global().irrevocable));
        let started = profiling.then(std::time::Instant::now);
        let tx = Transaction::begin(ctx, site, irrevocable, profiling);
        let outcome = f(&tx);
        let is_retry = matches!(&outcome, Err(e) if e.is_retry());
        if let Ok(value) = outcome {
            if tx.commit().is_ok() {
                ctx.slot.stats.commit(irrevocable);
                if let Some(started) = started {
                    ctx.slot.profile.commit(started.elapsed());
                }
                let leftovers = tx.finish_commit();
                drop(tx);
                drop(token);
                if let Some(leftovers) = leftovers {
                    leftovers.release(ctx);
                }
                return value;
            }
        }
        let record = if is_retry { None } else { tx.abort_info() };
        let cause = match &record {
            Some(r) => r.cause,
            None if is_retry => AbortCause::Retry,
            None => AbortCause::ReadValidation,
        };
        ctx.slot
            .stats
            .abort(cause, record.as_ref().map(|r| r.var.origin), site);
        if let Some(started) = started {
            let keys = conflict_keys(cause, record, site);
            ctx.slot.profile.abort(&keys, started.elapsed());
        }
        let mut wait_list = if is_retry { tx.wait_list() } else { Vec::new() };
        let leftovers = tx.finish_abort();
        drop(tx);
        drop(token);
        let dropped = leftovers.release_watching(ctx, is_retry);
        if is_retry {
            // Variables freed with the attempt's values cannot change any more.
            wait_list.retain(|(var, _)| !dropped.contains(&(*var as usize)));
            if wait_list.is_empty() {
                panic!(
                    "commute: retry() called in a transaction that has read no TVar; it would \
                     block forever. Read the variables whose change should wake it first"
                );
            }
            // SAFETY: the variables are alive: the closure that read them is still borrowed by
            // this call, variables dropped during the attempt purged themselves from its read
            // set, and those freed with its values since were taken out of the list above.
            let reads: Vec<(&VarCore, u64)> = wait_list
                .iter()
                .map(|&(v, ver)| (unsafe { &*v }, ver))
                .collect();
            wait::wait_for_change(&reads);
        } else {
            conflicts += 1;
            backoff(ctx, conflicts);
        }
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

/// What an attempt leaves to be done once it has ended, outside the transaction: values to
/// free (which may run transactions in their `Drop`), values to retire, hooks to run.
pub(crate) struct Leftovers {
    /// Values the attempt allocated and did not publish, and values dropped during it.
    allocs: Vec<(u64, DropFn)>,
    /// Values the commit replaced.
    retired: Vec<Retired>,
    /// Commit hooks, or abort hooks, to run.
    hooks: Vec<Hook>,
    /// Hooks not to run (abort hooks after a commit, commit hooks after a rollback): dropped.
    unrun: Vec<Hook>,
}

impl Leftovers {
    /// Frees, retires and runs everything, outside the transaction (the thread counts as not
    /// in one meanwhile, so destructors and hooks may start transactions), then hands the
    /// emptied buffers back to the thread's state so that the next attempt does not allocate.
    ///
    /// Every destructor and hook runs even if an earlier one panics; the first panic is then
    /// passed on (unless the thread is already unwinding, when it is dropped).
    #[cold]
    fn release(self, ctx: &ThreadCtx) {
        self.release_watching(ctx, false);
    }

    /// [`release`](Leftovers::release); if `watch`, returns the addresses of the variables
    /// dropped meanwhile.
    #[cold]
    fn release_watching(mut self, ctx: &ThreadCtx, watch: bool) -> Vec<usize> {
        let mut first_panic = None;
        let dropped = {
            ctx.in_tx.set(false);
            let _back_in_tx = RestoreInTx(ctx);
            if watch {
                ctx.watch_drops();
            }
            for (bits, drop_fn) in self.allocs.drain(..) {
                // SAFETY: allocated by the attempt and never published (no committed variable
                // holds it), or owned by a value the attempt dropped; the closure that could
                // borrow it has returned, and nothing else frees it.
                let freed = catch_unwind(AssertUnwindSafe(|| unsafe { drop_fn(bits) }));
                note_panic(&mut first_panic, freed);
            }
            if !self.retired.is_empty() {
                let retired = catch_unwind(AssertUnwindSafe(|| ctx.retire(self.retired.drain(..))));
                note_panic(&mut first_panic, retired);
            }
            let unrun = core::mem::take(&mut self.unrun);
            note_panic(
                &mut first_panic,
                catch_unwind(AssertUnwindSafe(|| drop(unrun))),
            );
            for hook in self.hooks.drain(..) {
                note_panic(&mut first_panic, catch_unwind(AssertUnwindSafe(hook)));
            }
            if watch {
                ctx.take_dropped()
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
        if let Some(payload) = first_panic {
            if !std::thread::panicking() {
                resume_unwind(payload);
            }
        }
        dropped
    }
}

/// Keeps the first panic of a series of destructors and hooks.
fn note_panic(first: &mut Option<Box<dyn core::any::Any + Send>>, result: std::thread::Result<()>) {
    if let Err(payload) = result {
        first.get_or_insert(payload);
    }
}

struct RestoreInTx<'a>(&'a ThreadCtx);

impl Drop for RestoreInTx<'_> {
    fn drop(&mut self) {
        self.0.in_tx.set(true);
    }
}

/// True if the calling thread is inside a transaction (in the closure given to [`atomically`]).
///
/// Commit and abort hooks run outside the transaction.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, in_transaction};
///
/// assert!(!in_transaction());
/// assert!(atomically(|_| Ok(in_transaction())));
/// ```
pub fn in_transaction() -> bool {
    with_ctx(|ctx| ctx.in_tx.get())
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

struct InTxGuard<'a>(&'a ThreadCtx);

impl Drop for InTxGuard<'_> {
    fn drop(&mut self) {
        self.0.in_tx.set(false);
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
        let rv = clock::begin();
        Transaction {
            ctx,
            rv: Cell::new(rv),
            irrevocable,
            profiling,
            site,
            finished: Cell::new(false),
        }
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
        self.irrevocable
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

    fn conflict(&self, st: &mut TxState, cause: AbortCause, var: &VarCore) -> StmError {
        if st.abort.is_none() {
            let var = self.involved(st, var);
            st.abort = Some(AbortRecord {
                cause,
                var,
                also: Vec::new(),
            });
        }
        StmError::CONFLICT
    }

    fn involved(&self, st: &TxState, var: &VarCore) -> Involved {
        let (written_by, also_written) = if self.profiling {
            (var.last_writer(), st.writes.find(var).is_some())
        } else {
            (None, false)
        };
        Involved {
            addr: var.addr(),
            origin: var.origin(),
            written_by,
            also_written,
        }
    }

    /// Profiler on: after a failed validation, charges the conflict also to every other read
    /// variable that changed, and to `trigger` (the variable whose newer version started the
    /// validation).
    #[cold]
    fn involve_other_changes(&self, st: &mut TxState, trigger: Option<&VarCore>) {
        let Some(primary) = st.abort.as_ref().map(|a| a.var.addr) else {
            return;
        };
        let mut seen = vec![primary];
        let mut also = Vec::new();
        let changed = st.reads.iter().filter(|r| {
            let word = r.var().lock.load(Ordering::Acquire);
            version_of(word) != r.version
        });
        for var in trigger.into_iter().chain(changed.map(ReadEntry::var)) {
            if !seen.contains(&var.addr()) {
                seen.push(var.addr());
                also.push(self.involved(st, var));
            }
        }
        if let Some(a) = st.abort.as_mut() {
            a.also = also;
        }
    }

    fn abort_info(&self) -> Option<AbortRecord> {
        self.state().abort.clone()
    }

    // ----- reads -------------------------------------------------------------------------

    /// Reads a variable's word: own pending value first, else a validated committed value.
    #[inline]
    pub(crate) fn read_word(&self, var: &VarCore) -> StmResult<u64> {
        let mut st = self.state();
        if !st.writes.is_empty() {
            if let Some(i) = st.writes.find(var) {
                let pending = st.writes.entries[i].pending;
                return match pending {
                    Pending::Write(bits) => Ok(bits),
                    Pending::Local(_) => {
                        drop(st);
                        panic!(
                            "commute: a TVar used as a transaction-local key (set_local) is also \
                             read as a shared variable; use a TVar of its own as the key"
                        )
                    }
                    // The irrevocable transaction holds the lock: the value word is stable.
                    Pending::Hold => Ok(var.value.load(Ordering::Acquire)),
                    // Publishing operations are invisible to the transaction's own reads.
                    Pending::Publish(_) if self.irrevocable => {
                        Ok(var.value.load(Ordering::Acquire))
                    }
                    Pending::Publish(_) => self.read_committed(&mut st, var),
                    Pending::Commute(ops) => {
                        // Reading a commuted variable turns it into an ordinary read and write.
                        let base = if self.irrevocable {
                            var.value.load(Ordering::Acquire)
                        } else {
                            self.read_committed(&mut st, var)?
                        };
                        let bits = st.writes.ops[ops as usize].apply(base);
                        st.writes.get_mut(i).pending = Pending::Write(bits);
                        Ok(bits)
                    }
                };
            }
        }
        if self.irrevocable {
            let i = self.lock_irrevocably(&mut st, var);
            debug_assert!(matches!(st.writes.entries[i].pending, Pending::Hold));
            return Ok(var.value.load(Ordering::Acquire));
        }
        self.read_committed(&mut st, var)
    }

    /// A committed value consistent with the rest of the read set; records the read.
    #[inline(always)]
    fn read_committed(&self, st: &mut TxState, var: &VarCore) -> StmResult<u64> {
        let mut backoff = Backoff::new();
        loop {
            match var.snapshot() {
                Snapshot::Value { bits, version } => {
                    if version > self.rv.get() && !clock::written_by(version, self.ctx().tag) {
                        if let Err(e) = self.extend(st, version) {
                            if self.profiling {
                                self.involve_other_changes(st, Some(var));
                            }
                            return Err(e);
                        }
                        continue;
                    }
                    st.reads.push(ReadEntry { var, version });
                    return Ok(bits);
                }
                Snapshot::Locked(word) => {
                    if word & IRREVOCABLE != 0 || backoff.steps() >= READ_LOCK_PATIENCE {
                        return Err(self.conflict(st, AbortCause::LockBusy, var));
                    }
                    backoff.snooze();
                }
            }
        }
    }

    /// Timestamp extension: advance the clock to `version` (a newer version this attempt met);
    /// if every read still holds, move `rv` up to the clock.
    #[inline]
    fn extend(&self, st: &mut TxState, version: u64) -> StmResult<()> {
        let now = clock::advance_to(version);
        let changed = st.reads.iter().find(|r| {
            let word = r.var().lock.load(clock::SC_LOAD);
            word & LOCKED != 0 || version_of(word) != r.version
        });
        if let Some(r) = changed {
            let var = r.var;
            // SAFETY: see `ReadEntry::var`.
            return Err(self.conflict(st, AbortCause::ReadValidation, unsafe { &*var }));
        }
        self.rv.set(now);
        Ok(())
    }

    // ----- writes ------------------------------------------------------------------------

    /// Buffers a write of `bits`; `drop_old` is set for `TBox` variables.
    #[inline]
    pub(crate) fn write_word(&self, var: &VarCore, bits: u64, drop_old: Option<DropFn>) {
        let mut st = self.state();
        let i = match st.writes.find(var) {
            Some(i) => i,
            None if self.irrevocable => self.lock_irrevocably(&mut st, var),
            None => {
                st.writes.push(Entry {
                    var,
                    pending: Pending::Write(bits),
                    drop_old,
                    locked_word: 0,
                });
                return;
            }
        };
        let e = st.writes.get_mut(i);
        check_not_publishing(&e.pending);
        e.pending = Pending::Write(bits);
        e.drop_old = e.drop_old.or(drop_old);
    }

    /// Buffers a commutative operation.
    #[inline]
    pub(crate) fn commute_word(&self, var: &VarCore, op: Op) {
        let mut st = self.state();
        let i = match st.writes.find(var) {
            Some(i) => i,
            None if self.irrevocable => self.lock_irrevocably(&mut st, var),
            None => {
                st.writes.push_commute(var, op);
                return;
            }
        };
        let st = &mut *st;
        let pending = st.writes.entries[i].pending;
        check_not_publishing(&pending);
        let new = match pending {
            Pending::Commute(ops) => {
                st.writes.ops[ops as usize].push(op);
                return;
            }
            Pending::Write(bits) => OpList::One(op).apply(bits),
            Pending::Hold => OpList::One(op).apply(var.value.load(Ordering::Acquire)),
            Pending::Publish(_) | Pending::Local(_) => unreachable!("checked above"),
        };
        st.writes.get_mut(i).pending = Pending::Write(new);
    }

    /// Irrevocable mode: locks `var` for the rest of the attempt; returns its write-set index.
    fn lock_irrevocably(&self, st: &mut TxState, var: &VarCore) -> usize {
        let mut backoff = Backoff::new();
        loop {
            let word = var.lock.load(Ordering::Relaxed);
            if word & LOCKED == 0 {
                if var
                    .lock
                    .compare_exchange_weak(
                        word,
                        word | LOCKED | IRREVOCABLE,
                        clock::SC,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    st.writes.push(Entry {
                        var,
                        pending: Pending::Hold,
                        drop_old: None,
                        locked_word: word,
                    });
                    return st.writes.len() - 1;
                }
            } else {
                // Only committers hold other locks, briefly, and they never wait for us.
                backoff.snooze();
            }
        }
    }

    // ----- heap values and low-level building blocks ----------------------------------------

    /// Low-level: keeps every heap value reachable from variables read from now on alive until
    /// the attempt ends.
    ///
    /// [`TBox::read`](crate::TBox::read) does this itself. Collections that store raw pointers
    /// in `TVar`s and free replaced nodes with
    /// [`retire_on_commit`](Transaction::retire_on_commit) call it before following them.
    /// Cheap after the first call in an attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// commute_stm::atomically(|tx| {
    ///     tx.pin();
    ///     Ok(())
    /// });
    /// ```
    pub fn pin(&self) {
        let mut st = self.state();
        if !st.pinned {
            st.pinned = true;
            self.ctx().pin(self.rv.get());
        }
    }

    /// Low-level: the attempt's read version. Everything it has read belongs to the committed
    /// state at this version of the commit clock.
    ///
    /// # Examples
    ///
    /// ```
    /// let rv = commute_stm::atomically(|tx| Ok(tx.read_version()));
    /// let _ = rv;
    /// ```
    pub fn read_version(&self) -> u64 {
        self.rv.get()
    }

    /// Low-level: makes sure the attempt's snapshot includes the commit with version `version`.
    ///
    /// Collections call it when they follow a link that a commit published outside `TVar`s (see
    /// [`TVar::publish_on_commit`](crate::TVar::publish_on_commit), which hands publishing code
    /// the commit version): if `version` is newer than the snapshot, every earlier read is
    /// re-validated and the snapshot moves forward, or the attempt aborts. That keeps attempts
    /// opaque.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`] when an earlier read has changed; pass it on with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// commute_stm::atomically(|tx| tx.observe_version(0));
    /// ```
    pub fn observe_version(&self, version: u64) -> StmResult<()> {
        if version <= self.rv.get()
            || self.irrevocable
            || clock::written_by(version, self.ctx().tag)
        {
            return Ok(());
        }
        let mut st = self.state();
        self.extend(&mut st, version)?;
        debug_assert!(
            version <= self.rv.get(),
            "a published version is never ahead of the clock"
        );
        Ok(())
    }

    /// Low-level: frees `ptr` (a `Box<T>` pointer) once this attempt has committed and no running
    /// transaction can still read it; does nothing if the attempt is rolled back.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `Box::<T>::into_raw`, and, if this attempt commits, it must be
    /// unreachable from every shared location for transactions that begin after the commit
    /// (the commit unlinks it), and must not be freed by anything else.
    ///
    /// # Examples
    ///
    /// ```
    /// let node = Box::into_raw(Box::new(5u64));
    /// commute_stm::atomically(|tx| {
    ///     // SAFETY: `node` was never shared and is retired exactly once (the closure runs once
    ///     // here: it has no reads, so it cannot conflict).
    ///     unsafe { tx.retire_on_commit(node) };
    ///     Ok(())
    /// });
    /// ```
    pub unsafe fn retire_on_commit<T: Send + 'static>(&self, ptr: *mut T) {
        let mut st = self.state();
        st.extras = true; // the end of the attempt must hand these on (slow path)
        st.retire_on_commit
            .push((ptr as usize as u64, drop_boxed::<T>, 0));
    }

    /// Low-level: [`retire_on_commit`](Transaction::retire_on_commit) tied to `var`: cancelled
    /// if `var` is dropped before the attempt ends (whoever frees the structure that `var`
    /// belongs to then frees `bits` too).
    pub(crate) fn retire_on_commit_of<T: Send + 'static>(&self, var: &VarCore, ptr: *mut T) {
        let mut st = self.state();
        st.extras = true;
        st.retire_on_commit
            .push((ptr as usize as u64, drop_boxed::<T>, var.addr()));
    }

    /// Buffers a commit-time publishing operation.
    pub(crate) fn publish_word(&self, var: &VarCore, op: PublishOp) {
        let mut st = self.state();
        let i = match st.writes.find(var) {
            Some(i) => i,
            None if self.irrevocable => self.lock_irrevocably(&mut st, var),
            None => {
                let pending = st.writes.new_publish(op);
                st.writes.push(Entry {
                    var,
                    pending,
                    drop_old: None,
                    locked_word: 0,
                });
                return;
            }
        };
        match st.writes.entries[i].pending {
            Pending::Publish(list) => st.writes.push_publish(list, op),
            Pending::Hold => {
                let pending = st.writes.new_publish(op);
                st.writes.get_mut(i).pending = pending;
            }
            _ => panic!(
                "commute: publish_on_commit on a TVar that this transaction also writes, commutes \
                 or uses as a local key"
            ),
        }
    }

    /// Sets the transaction-local value keyed by `var`.
    pub(crate) fn set_local(&self, var: &VarCore, bits: u64) {
        let mut st = self.state();
        match st.writes.find(var) {
            Some(i) => {
                let e = st.writes.get_mut(i);
                assert!(
                    matches!(e.pending, Pending::Local(_)),
                    "commute: a TVar used as a transaction-local key is also read or written"
                );
                e.pending = Pending::Local(bits);
            }
            None => {
                let addr = var.addr();
                if st.reads.iter().any(|r| r.var as usize == addr) {
                    drop(st);
                    panic!(
                        "commute: a TVar used as a transaction-local key (set_local) was also \
                         read as a shared variable; use a TVar of its own as the key"
                    );
                }
                st.writes.push(Entry {
                    var,
                    pending: Pending::Local(bits),
                    drop_old: None,
                    locked_word: 0,
                })
            }
        }
    }

    /// The transaction-local value keyed by `var`, if set in this attempt.
    pub(crate) fn get_local(&self, var: &VarCore) -> Option<u64> {
        let st = self.state();
        st.writes
            .find(var)
            .and_then(|i| match st.writes.entries[i].pending {
                Pending::Local(bits) => Some(bits),
                _ => None,
            })
    }

    /// Records a heap value allocated by this attempt (freed unless a commit publishes it).
    pub(crate) fn track_alloc(&self, bits: u64, drop_fn: DropFn) {
        let mut st = self.state();
        st.extras = true;
        st.allocs.push((bits, drop_fn));
    }

    // ----- hooks, retry, or_else -----------------------------------------------------------

    /// Runs `hook` after this transaction commits, once, outside the transaction.
    ///
    /// Use it for I/O and other effects that must not happen in an attempt that may be rolled
    /// back. Hooks run in registration order; they may start new transactions. A hook registered
    /// by an attempt that is rolled back (or by an `or_else` branch that retried) never runs.
    ///
    /// # Panics
    ///
    /// A hook that panics does not stop the others: every hook of the commit runs, then the
    /// first panic propagates from [`atomically`] (whose transaction has committed).
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
    /// unrun). Hooks of an `or_else` branch that retried are dropped too.
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

    /// Abandons the attempt and blocks until a variable it read changes, then runs it again.
    ///
    /// Use it as `return tx.retry();` when the transaction cannot proceed yet (an empty queue, a
    /// full buffer). Inside [`or_else`](Transaction::or_else) it falls through to the
    /// alternative instead.
    ///
    /// # Errors
    ///
    /// Always returns the retry signal; propagate it.
    ///
    /// # Panics
    ///
    /// [`atomically`] panics if the attempt retries without having read any variable.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    /// use std::sync::Arc;
    ///
    /// let ready = Arc::new(TVar::new(false));
    /// let r = ready.clone();
    /// let waiter = std::thread::spawn(move || {
    ///     atomically(|tx| if r.read(tx)? { Ok("go") } else { tx.retry() })
    /// });
    /// atomically(|tx| {
    ///     ready.write(tx, true);
    ///     Ok(())
    /// });
    /// assert_eq!(waiter.join().unwrap(), "go");
    /// ```
    pub fn retry<T>(&self) -> StmResult<T> {
        Err(StmError::RETRY)
    }

    /// Runs `first`; if it calls [`retry`](Transaction::retry), rolls back its writes (and
    /// hooks) and runs `second` instead. Reads of both stay in the attempt, so if both retry the
    /// transaction waits for a change to either. Nests freely.
    ///
    /// # Errors
    ///
    /// A conflict in either branch, or a retry of `second`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let a = TVar::new(0u32);
    /// let b = TVar::new(7u32);
    /// let got = atomically(|tx| {
    ///     tx.or_else(
    ///         |tx| {
    ///             a.write(tx, 99); // rolled back: this branch retries
    ///             match b.read(tx)? {
    ///                 0 => Ok(0),
    ///                 _ => tx.retry(),
    ///             }
    ///         },
    ///         |tx| b.read(tx),
    ///     )
    /// });
    /// assert_eq!(got, 7);
    /// assert_eq!(a.load(), 0);
    /// ```
    pub fn or_else<T>(
        &self,
        first: impl FnOnce(&Transaction) -> StmResult<T>,
        second: impl FnOnce(&Transaction) -> StmResult<T>,
    ) -> StmResult<T> {
        let (saved_writes, commit_hooks, abort_hooks, retirements, forgotten) = {
            let st = self.state();
            let saved = st.writes.save();
            (
                saved,
                st.on_commit.len(),
                st.on_abort.len(),
                st.retire_on_commit.len(),
                st.forgotten.len(),
            )
        };
        match first(self) {
            Err(e) if e.is_retry() => {
                let mut st = self.state();
                // Locks that an irrevocable branch took stay held (as reads); only its values
                // roll back.
                let kept: Vec<Entry> = if self.irrevocable {
                    st.writes.entries[saved_writes.len()..]
                        .iter()
                        .filter(|e| e.pending.is_shared())
                        .map(|e| Entry {
                            pending: Pending::Hold,
                            drop_old: None,
                            ..*e
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let nodes = st.writes.restore_saved(saved_writes, kept);
                if !nodes.is_empty() {
                    // Freed at the end of the attempt (commit or not), with no state borrow
                    // held: the end of a commit must take the slow path to see them.
                    st.extras = true;
                    st.allocs.extend(nodes);
                }
                st.on_commit.truncate(commit_hooks);
                st.on_abort.truncate(abort_hooks);
                // Retirements of variables dropped in the branch are already gone, and none
                // of those left were added by it, unless fewer remain than were saved.
                let kept_retirements = retirements.min(st.retire_on_commit.len());
                st.retire_on_commit.truncate(kept_retirements);
                // Variables dropped during the branch must not come back with the copy.
                for i in forgotten..st.forgotten.len() {
                    let addr = st.forgotten[i];
                    st.forget_written(addr);
                }
                drop(st);
                second(self)
            }
            other => other,
        }
    }

    // ----- commit ------------------------------------------------------------------------

    /// Tries to commit; on failure the attempt must be rolled back by the caller.
    #[inline(always)]
    fn commit(&self) -> Result<(), ()> {
        let mut guard = self.state();
        let st: &mut TxState = &mut guard;
        if !st.writes.has_shared() {
            // Read-only: every read was validated against `rv`.
            st.writes.clear();
            if !st.retire_on_commit.is_empty() {
                // Nothing was unlinked by this commit, so values retired here are unreachable
                // to anyone who starts from now on: retire them at the next clock value.
                let version = clock::write_version(0, self.ctx().tag);
                st.retired_by_commit = st
                    .retire_on_commit
                    .drain(..)
                    .map(|(bits, drop_fn, _)| Retired {
                        version,
                        bits,
                        drop_fn,
                    })
                    .collect();
            }
            return Ok(());
        }
        if self.irrevocable {
            return self.commit_irrevocable(st);
        }
        st.writes.sort_for_commit();
        let mut locks = LockGuard {
            entries: &mut st.writes.entries,
            held: 0,
        };
        let newest_locked = match lock_write_set(&mut locks) {
            Ok(newest) => newest,
            Err(var) => {
                drop(locks);
                // SAFETY: the variable belongs to this attempt's write set (see `Entry::var`).
                self.conflict(st, AbortCause::LockBusy, unsafe { &*var });
                return Err(());
            }
        };
        let wv = clock::write_version(newest_locked, self.ctx().tag);
        // Always validate: the clock does not count commits, so "nobody committed since we
        // began" cannot be read off it.
        if let Err(var) = validate_reads(&st.reads, locks.entries) {
            drop(locks);
            // SAFETY: the variable belongs to this attempt's read set.
            self.conflict(st, AbortCause::ReadValidation, unsafe { &*var });
            if self.profiling {
                self.involve_other_changes(st, None);
            }
            return Err(());
        }
        compute_values(locks.entries, &st.writes.ops);
        let writer = self.profiling.then_some(self.site);
        debug_assert!(st.retired_by_commit.is_empty());
        let replaced_heap_values = {
            let retired = &mut st.retired_by_commit;
            write_back(locks.entries, &mut st.writes.publishes, wv, writer, retired);
            !retired.is_empty()
        };
        locks.held = 0; // unlocked by write_back
        drop(locks);
        if st.extras || replaced_heap_values {
            let to_retire = st
                .retire_on_commit
                .drain(..)
                .map(|(bits, drop_fn, _)| Retired {
                    version: wv,
                    bits,
                    drop_fn,
                });
            st.retired_by_commit.extend(to_retire);
            st.allocs = take_unpublished(st);
            st.extras = true;
        }
        st.writes.clear();
        Ok(())
    }

    /// The irrevocable commit: every variable is already locked, nothing can fail.
    fn commit_irrevocable(&self, st: &mut TxState) -> Result<(), ()> {
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
        let writer = self.profiling.then_some(self.site);
        let mut retired = Vec::new();
        write_back(
            locks.entries,
            &mut st.writes.publishes,
            wv,
            writer,
            &mut retired,
        );
        locks.held = 0;
        drop(locks);
        retired.extend(
            st.retire_on_commit
                .drain(..)
                .map(|(bits, drop_fn, _)| Retired {
                    version: wv,
                    bits,
                    drop_fn,
                }),
        );
        st.allocs = take_unpublished(st);
        // Unlocked by the write-back: the reset must not release these again.
        st.writes.clear();
        st.retired_by_commit = retired;
        Ok(())
    }

    /// After a commit: clears the attempt; returns what is left to do outside it, if anything.
    #[inline]
    fn finish_commit(&self) -> Option<Leftovers> {
        let mut st = self.state();
        if !st.extras {
            // The common case: only the read set is left to clear (the commit cleared the
            // write set), and the pin to release.
            st.reads.clear();
            if st.pinned {
                st.pinned = false;
                self.ctx().unpin();
            }
            self.finished.set(true);
            return None;
        }
        drop(st);
        Some(self.finish_commit_slow())
    }

    #[cold]
    fn finish_commit_slow(&self) -> Leftovers {
        let mut st = self.state();
        let leftovers = Leftovers {
            allocs: core::mem::take(&mut st.allocs),
            retired: core::mem::take(&mut st.retired_by_commit),
            hooks: core::mem::take(&mut st.on_commit),
            unrun: core::mem::take(&mut st.on_abort),
        };
        self.reset(&mut st); // unpins first, so our own retired values can go at once
        leftovers
    }

    /// After a rollback: the nodes of publishing operations that never ran join the attempt's
    /// allocations, to be freed with them.
    fn hand_back_unpublished_nodes(&self) {
        let mut st = self.state();
        let nodes = st.writes.take_unpublished_nodes();
        if !nodes.is_empty() {
            st.allocs.extend(nodes);
        }
    }

    /// After a rollback: releases what the attempt held; returns what is left to do outside
    /// it (its allocations to free, its abort hooks to run).
    fn finish_abort(&self) -> Leftovers {
        self.hand_back_unpublished_nodes();
        let mut st = self.state();
        let leftovers = Leftovers {
            allocs: core::mem::take(&mut st.allocs),
            retired: Vec::new(),
            hooks: core::mem::take(&mut st.on_abort),
            unrun: core::mem::take(&mut st.on_commit),
        };
        self.reset(&mut st);
        leftovers
    }

    /// The variables (and versions) whose change should wake a retried attempt.
    fn wait_list(&self) -> Vec<(*const VarCore, u64)> {
        let st = self.state();
        let mut list: Vec<_> = st.reads.iter().map(|r| (r.var, r.version)).collect();
        if self.irrevocable {
            list.extend(
                st.writes
                    .entries
                    .iter()
                    .filter(|e| e.pending.is_shared())
                    .map(|e| (e.var, version_of(e.locked_word))),
            );
        }
        list
    }

    /// Releases irrevocable locks, frees unpublished allocations, unpins, clears buffers.
    fn reset(&self, st: &mut TxState) {
        if self.irrevocable {
            for e in st.writes.entries.iter().filter(|e| e.pending.is_shared()) {
                // Restore the word exactly (WAITERS included): nothing changed.
                e.var().lock.store(e.locked_word, Ordering::Release);
            }
        }
        debug_assert!(
            st.allocs.is_empty(),
            "allocations are taken out before the reset"
        );
        if st.pinned {
            st.pinned = false;
            self.ctx().unpin();
        }
        st.reads.clear();
        st.writes.clear();
        debug_assert!(
            st.on_commit.is_empty() && st.on_abort.is_empty(),
            "hooks are taken out before the reset (their drops may run transactions)"
        );
        st.retire_on_commit.clear();
        st.forgotten.clear();
        st.abort = None;
        st.extras = false;
        self.finished.set(true);
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
    fn roll_back_after_panic(&self) {
        let mut leftovers = self.finish_abort();
        let abort_hooks = core::mem::take(&mut leftovers.hooks);
        leftovers.unrun.extend(abort_hooks);
        leftovers.release(self.ctx());
    }
}

/// Write-set locks held during a commit; released (restoring the old words) if dropped early,
/// for example when a commute function panics.
struct LockGuard<'a> {
    entries: &'a mut [Entry],
    held: usize,
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

/// Commit phase 1: lock every written variable, in address order.
#[inline(always)]
fn lock_write_set(locks: &mut LockGuard<'_>) -> Result<u64, *const VarCore> {
    let mut newest = 0;
    for i in 0..locks.entries.len() {
        if !locks.entries[i].pending.is_shared() {
            continue;
        }
        let var = locks.entries[i].var();
        let mut backoff = Backoff::new();
        loop {
            let word = var.lock.load(Ordering::Relaxed);
            if word & LOCKED == 0 {
                if var
                    .lock
                    .compare_exchange_weak(word, word | LOCKED, clock::SC, Ordering::Relaxed)
                    .is_ok()
                {
                    locks.entries[i].locked_word = word;
                    newest = newest.max(version_of(word));
                    locks.held = i + 1;
                    break;
                }
            } else if word & IRREVOCABLE != 0 {
                return Err(var);
            } else {
                // Another committer: it holds its locks briefly and, locking in the same order,
                // never waits for one of ours.
                backoff.snooze();
            }
        }
    }
    Ok(newest)
}

/// Commit phase 2: every read must still show the version it had (our own locks keep the
/// pre-lock version in the word).
#[inline(always)]
fn validate_reads(reads: &[ReadEntry], locked: &[Entry]) -> Result<(), *const VarCore> {
    for r in reads {
        let word = r.var().lock.load(clock::SC_LOAD);
        if word & LOCKED != 0 {
            let ours = locked
                .binary_search_by_key(&r.var().lock_order(), |e| e.var().lock_order())
                .is_ok_and(|i| locked[i].pending.is_shared());
            if !ours || version_of(word) != r.version {
                return Err(r.var);
            }
        } else if version_of(word) != r.version {
            return Err(r.var);
        }
    }
    Ok(())
}

/// Commit phase 3: commuted values from the latest committed values (which our locks freeze).
#[inline(always)]
fn compute_values(entries: &mut [Entry], ops: &[OpList]) {
    for e in entries.iter_mut() {
        if let Pending::Commute(i) = e.pending {
            let bits = ops[i as usize].apply(e.var().value.load(Ordering::Relaxed));
            e.pending = Pending::Write(bits);
        }
    }
}

/// Commit phase 4: store the values, unlock at version `wv`, wake `retry` waiters, run the
/// second steps of publishing operations. Collects the heap values the commit replaced in
/// `retired`.
#[inline(always)]
fn write_back(
    entries: &[Entry],
    publishes: &mut [(u32, PublishOp)],
    wv: u64,
    writer: Option<&'static Location<'static>>,
    retired: &mut Vec<Retired>,
) {
    let mut then = false;
    for e in entries {
        let var = e.var();
        match &e.pending {
            &Pending::Write(bits) => {
                if let Some(drop_fn) = e.drop_old {
                    let old = var.value.load(Ordering::Relaxed);
                    retired.push(Retired {
                        version: wv,
                        bits: old,
                        drop_fn,
                    });
                }
                var.value.store(bits, Ordering::Release);
            }
            &Pending::Publish(list) => {
                let old = var.value.load(Ordering::Relaxed);
                let mut new = old;
                for (_, op) in publishes.iter_mut().filter(|(l, _)| *l == list) {
                    new = op.run(new, wv);
                    then |= op.has_after();
                }
                var.value.store(new, Ordering::Release);
            }
            Pending::Hold => {
                // Read (and locked) by the irrevocable transaction only: restore the word.
                var.lock.store(e.locked_word, Ordering::Release);
                continue;
            }
            Pending::Local(_) => continue,
            Pending::Commute(_) => unreachable!("computed before write-back"),
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

/// Panics if the entry holds commit-time publishing operations or a local value, which cannot be
/// mixed with writes and commutes of the same variable.
fn check_not_publishing(pending: &Pending) {
    match pending {
        Pending::Publish(_) => panic!(
            "commute: a TVar with commit-time publishing operations cannot also be written or \
             commuted in the same transaction"
        ),
        Pending::Local(_) => panic!(
            "commute: a TVar used as a transaction-local key cannot also be written or commuted"
        ),
        _ => {}
    }
}

/// Drops a boxed `T` stored as bits.
///
/// # Safety
///
/// `bits` is a live `Box<T>` pointer that nothing else frees.
unsafe fn drop_boxed<T>(bits: u64) {
    // SAFETY: forwarded from the caller.
    drop(unsafe { Box::from_raw(bits as usize as *mut T) });
}

/// Takes the attempt's allocations, minus those the commit published (one per published write,
/// matched by address).
fn take_unpublished(st: &mut TxState) -> Vec<(u64, DropFn)> {
    let mut allocs = core::mem::take(&mut st.allocs);
    if allocs.is_empty() {
        return allocs;
    }
    for e in &st.writes.entries {
        if let (Some(_), Pending::Write(bits)) = (e.drop_old, &e.pending) {
            if let Some(j) = allocs.iter().position(|(b, _)| b == bits) {
                allocs.swap_remove(j);
            }
        }
    }
    allocs
}
