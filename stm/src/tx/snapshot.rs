//! Read-only snapshot transactions: [`read_only`] runs its closure on the committed state of
//! the moment it starts, reading old versions kept by the writers that commit meanwhile
//! (`internal/history.rs` has the protocol), so it never aborts because of them and never
//! makes them wait.

use core::panic::Location;

use super::{
    Mode, OutsideWhenUnwinding, StmError, StmResult, Transaction, commit_read_only, end, ended,
    enter, run,
};
use crate::internal::backoff::Backoff;
use crate::internal::thread::{ThreadCtx, with_ctx};
use crate::internal::var::{IRREVOCABLE, Snapshot, VarCore};
use crate::internal::{clock, history};
use crate::sync::atomic::Ordering;

/// Set in [`Transaction`]'s snapshot word once the attempt left its snapshot (epochs stay far
/// below it).
pub(super) const LEFT: u64 = 1 << 63;

/// Set in [`Transaction`]'s snapshot word (of any attempt) once
/// [`give_way`](Transaction::give_way) returned a conflict: with [`LEFT`] and the conflicts
/// recorded in the attempt's state, what tells a conflict of this attempt from one its closure
/// kept from an earlier attempt.
pub(super) const GAVE_WAY: u64 = 1 << 62;

/// Runs `f` as a read-only transaction on a snapshot: the committed state of the moment it
/// starts, however long it runs and whatever commits meanwhile.
///
/// Where an [`atomically`](crate::atomically) transaction that reads a lot aborts whenever a
/// commit changes something it read (and after many aborts runs irrevocably, stopping every
/// writer), `read_only` commits in its first attempt: commits that change what it reads keep
/// the values they replace for it, and it reads those. Writers never wait for it, and it never
/// aborts them. Use it for whole-state reads under update load: a status page that sums a map,
/// a report, a checkpoint.
///
/// **Read-only, explicitly.** A transaction becomes a snapshot transaction only through this
/// call, never by detection. Its closure may write all the same (through helpers shared with
/// updating code): the writes are kept in the attempt (its own reads see them), but a snapshot
/// cannot commit them, so at the end the attempt is rolled back and the closure runs again as
/// an ordinary [`atomically`](crate::atomically) transaction, which validates its reads and
/// commits, aborts or blocks as any other. The same happens if the closure calls
/// [`retry`](Transaction::retry) (a snapshot never changes, so waiting on it would never end:
/// the ordinary transaction waits instead), or if it follows a link that a commit published
/// outside variables ([`Transaction::observe_version`]: commute's queues stop at their
/// snapshot's tail and never do). Variables held by the irrevocable transaction are read as
/// they were before it, without waiting. [`Transaction::is_snapshot`] tells an attempt which
/// kind it is.
///
/// **What it costs.** Taking the snapshot registers the reader (one lock and one shared
/// read-modify-write); each read of a variable costs one more load than in an ordinary
/// transaction, plus a short walk of the variable's old versions if a commit changed it since
/// the snapshot. A writer pays one load per commit while no snapshot reader is registered;
/// while one is, each commit keeps (allocates) the first old value of each variable it
/// changes that some registered reader may need, at most one per variable per snapshot taken.
/// A snapshot reader holds back only those old values (the `TMap` leaves, `TBox` values and
/// words its snapshot still needs), not the reclamation of everything replaced meanwhile:
/// ordinary reclamation goes on while it runs. The exception is what commits retire outside
/// variables, a `TQueue`'s popped nodes and items: those that commits after the snapshot
/// retire are held until it ends (it may walk them), and a `Taken` item moves out only once
/// the snapshots running when `into_inner` is called have ended.
///
/// # Panics
///
/// As [`atomically`](crate::atomically); and if 32,767 read-only transactions run at once.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, read_only, TVar};
/// use std::sync::Arc;
///
/// let accounts: Arc<Vec<TVar<i64>>> = Arc::new((0..100).map(|_| TVar::new(10)).collect());
/// let writer = {
///     let accounts = accounts.clone();
///     std::thread::spawn(move || {
///         for i in 0..10_000 {
///             let (a, b) = (i % 100, (i * 7 + 1) % 100);
///             atomically(|tx| {
///                 accounts[a].modify(tx, |x| x - 1)?;
///                 accounts[b].modify(tx, |x| x + 1)
///             });
///         }
///     })
/// };
/// // The total never changes, and a snapshot always sees it, in one attempt.
/// let mut attempts = 0;
/// let total = read_only(|tx| {
///     attempts += 1;
///     let mut sum = 0;
///     for a in accounts.iter() {
///         sum += a.read(tx)?;
///     }
///     Ok(sum)
/// });
/// assert_eq!(total, 1000);
/// assert_eq!(attempts, 1);
/// writer.join().unwrap();
/// ```
#[track_caller]
pub fn read_only<T, F>(mut f: F) -> T
where
    F: FnMut(&Transaction) -> StmResult<T>,
{
    let site = Location::caller();
    with_ctx(|ctx| match snapshot_attempt(ctx, site, &mut f) {
        Some(value) => value,
        None => run(ctx, site, f),
    })
}

/// The snapshot attempt of [`read_only`]: its value, or `None` if it must run again as an
/// ordinary transaction (it wrote, retried, or left the snapshot).
fn snapshot_attempt<T>(
    ctx: &ThreadCtx,
    site: &'static Location<'static>,
    f: &mut impl FnMut(&Transaction) -> StmResult<T>,
) -> Option<T> {
    let in_tx = enter(ctx, site);
    let profiling = crate::conflicts::profiling();
    // What the attempt leaves (hooks, values to free) runs once the reader has deregistered:
    // it may wait for snapshot readers (`wait_for_readers`, a queue's `Taken::into_inner`).
    // What the closure returned is declared before the attempt: see `OutsideWhenUnwinding`.
    let mut value = None;
    let mut refused = None;
    let outside = OutsideWhenUnwinding;
    let a = SnapshotAttempt {
        registered: Registered {
            epoch: history::register(),
            ctx,
        },
        tx: Transaction::begin(ctx, site, false, profiling),
    };
    a.tx.snapshot.set(a.registered.epoch);
    a.tx.mode.set(Mode::Snapshot);
    let after = match f(&a.tx) {
        // A clean snapshot attempt is read-only: its commit cannot fail.
        Ok(v)
            if a.tx.snapshot.get() & LEFT == 0
                && !a.tx.told_to_roll_back()
                && !a.tx.state().writes.has_shared() =>
        {
            value = Some(v);
            let after = commit_read_only(ctx, &a.tx);
            ended(a.tx);
            drop(a.registered);
            after.run(ctx);
            None
        }
        // It wrote, retried or left its snapshot: no conflict (a snapshot meets none), so
        // nothing to count or wait for; the ordinary run that follows counts what it meets.
        // What the closure returned is dropped once outside the transaction, below.
        outcome => {
            refused = outcome.ok();
            let leftovers = a.tx.finish_abort();
            drop(a.tx);
            drop(a.registered);
            leftovers
        }
    };
    if let Some(leftovers) = after {
        leftovers.release(ctx);
    }
    // The versions that deregistering let go of went to this thread's retired values, without
    // a pass (no destructor runs inside the transaction): a thread that only reads snapshots
    // would keep them for good.
    if ctx.retire_is_due(0) {
        end::run_due_pass(ctx);
    }
    core::mem::forget(outside);
    drop(in_tx);
    drop(refused);
    value
}

/// A snapshot attempt and its reader's registration. A struct for the order its fields drop in
/// when a panic unwinds out of the attempt: the registration first, then the attempt, whose
/// rollback runs destructors that may wait for snapshot readers.
struct SnapshotAttempt<'a> {
    registered: Registered<'a>,
    tx: Transaction,
}

/// A registered snapshot reader: deregisters when dropped, and queues the old versions that
/// no registered reader can reach any more for reclamation.
struct Registered<'a> {
    epoch: u64,
    ctx: &'a ThreadCtx,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut freed = history::deregister(self.epoch);
        if !freed.is_empty() {
            // Runs no destructor (we may be inside the transaction still).
            self.ctx.queue_retired(&mut freed);
        }
    }
}

impl Transaction {
    /// The value of `var` in this attempt's snapshot.
    #[inline(never)]
    pub(super) fn read_snapshot(&self, var: &VarCore) -> StmResult<u64> {
        let mut backoff = Backoff::new();
        loop {
            match var.snapshot() {
                Snapshot::Value { bits, .. } => {
                    return Ok(history::visible(var, self.epoch()).unwrap_or(bits));
                }
                Snapshot::Locked(word) => {
                    if let Some(bits) = history::visible(var, self.epoch()) {
                        return Ok(bits);
                    }
                    if word & IRREVOCABLE != 0 {
                        // The irrevocable transaction holds it, for as long as it runs. Its
                        // commit turns the lock into a plain one before it decides which
                        // snapshots it is after (so it is after this one) and before it stores
                        // anything: while the lock is still the irrevocable one, the value
                        // under it is the snapshot's.
                        let bits = var.value.load(Ordering::Acquire);
                        if var.lock.load(clock::SC_LOAD) == word {
                            return Ok(bits);
                        }
                        continue;
                    }
                    // A committer: its writes are in the snapshot, or it keeps the old value
                    // before it stores a new one; either way, it is done in a moment.
                    backoff.snooze();
                }
            }
        }
    }

    /// Ends the snapshot: the attempt met a commit published after it that it cannot read
    /// around (see [`observe_version`](Transaction::observe_version)); it runs again as an
    /// ordinary transaction.
    #[cold]
    pub(super) fn leave_snapshot(&self) -> StmError {
        self.snapshot.set(self.snapshot.get() | LEFT);
        StmError::CONFLICT
    }

    /// The epoch of the snapshot this attempt reads (it keeps reading it after leaving it:
    /// still opaque until the closure returns).
    fn epoch(&self) -> u64 {
        self.snapshot.get() & !(LEFT | GAVE_WAY)
    }

    /// True if this attempt reads a snapshot: the first attempt of a [`read_only`]
    /// transaction (false once it runs again as an ordinary one).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, read_only};
    ///
    /// assert!(read_only(|tx| Ok(tx.is_snapshot())));
    /// assert!(!atomically(|tx| Ok(tx.is_snapshot())));
    /// ```
    #[inline]
    pub fn is_snapshot(&self) -> bool {
        self.mode.get() == Mode::Snapshot
    }
}
