//! The drop audit's harness, shared by `stm/tests/drop_audit.rs` and
//! `collections/tests/drop_audit.rs` (the latter includes this file by path): every way a
//! transactional object can die while the running transaction still refers to it.
//!
//! - Each case runs in a child process (`commute_test_support::in_child_process`: the test
//!   binary again, with one exact test), so that a case that corrupts memory fails that test
//!   alone, with its signal.
//! - [`Ledger`] and [`Tracked`] count every payload value made and dropped, and catch double
//!   drops.
//! - [`run_case`] drives one object ([`Subject`]) through one way to die ([`Origin`]) and one
//!   end of the transaction ([`End`]); [`audit_matrix!`] generates a test per origin and end.
#![allow(dead_code, unused_macros)]

use std::cell::Cell;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use commute_stm::{StmResult, TVar, Transaction, atomically, reclaim_retired};

/// How long reclamation may take to free every replaced value.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);

/// Counts the payload values of one test: made (new or cloned), dropped, and dropped twice.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    made: AtomicUsize,
    dropped: AtomicUsize,
    dropped_twice: AtomicUsize,
    next_id: AtomicU64,
    live: Mutex<HashSet<u64>>,
}

impl Ledger {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn enter(&self) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        self.made.fetch_add(1, Ordering::SeqCst);
        id
    }

    fn leave(&self, id: u64) {
        let was_live = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if !was_live {
            self.dropped_twice.fetch_add(1, Ordering::SeqCst);
        }
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }

    /// Frees replaced values until every value made is dropped (up to [`SETTLE_DEADLINE`]),
    /// then asserts that each was dropped exactly once.
    pub(crate) fn settle(&self) {
        let deadline = Instant::now() + SETTLE_DEADLINE;
        // At least one pass, even when the counts already match: memory the case retired
        // without a payload (a queue's sentinel) must be freed too, where a double free shows
        // (under valgrind, or as glibc's abort).
        reclaim_retired();
        while self.dropped.load(Ordering::SeqCst) < self.made.load(Ordering::SeqCst)
            && Instant::now() < deadline
        {
            reclaim_retired();
            std::thread::yield_now();
        }
        reclaim_retired();
        let (made, dropped) = (
            self.made.load(Ordering::SeqCst),
            self.dropped.load(Ordering::SeqCst),
        );
        let twice = self.dropped_twice.load(Ordering::SeqCst);
        assert_eq!(
            twice, 0,
            "{twice} values dropped twice ({made} made, {dropped} drops)"
        );
        assert_eq!(dropped, made, "{made} values made, {dropped} dropped");
    }
}

/// A payload that counts itself in a [`Ledger`]: `n` is its value, clones count as new values.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) n: u64,
    id: u64,
    ledger: Arc<Ledger>,
}

impl Tracked {
    pub(crate) fn new(ledger: &Arc<Ledger>, n: u64) -> Self {
        Tracked {
            n,
            id: ledger.enter(),
            ledger: ledger.clone(),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(&self.ledger, self.n)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.leave(self.id);
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

impl Eq for Tracked {}

impl Hash for Tracked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.n.hash(state);
    }
}

/// A transactional object under audit.
pub(crate) trait Subject: Sized {
    /// What the transaction does to the object before it dies.
    type Act: Copy;
    /// A new object, made outside or inside a transaction.
    fn make(ledger: &Arc<Ledger>) -> Self;
    /// Gives an object made before the transaction some committed content.
    fn prepare(&self, _ledger: &Arc<Ledger>) {}
    /// Does `act` to the object inside the transaction.
    fn act(&self, tx: &Transaction, act: Self::Act, ledger: &Arc<Ledger>) -> StmResult<()>;
}

/// Where the object that dies comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin {
    /// Made before the transaction, in an `Option` the closure captures; the attempt takes it
    /// out (a move) and drops it.
    Before,
    /// Made inside the attempt, then moved into `drop`.
    Inside,
}

/// How the transaction goes on after the object died.
#[derive(Clone, Copy, Debug)]
pub(crate) enum End {
    /// It commits, with a write of another variable.
    Commit,
    /// The object dies in `or_else`'s first branch, which retries; the second branch commits.
    OrElse,
    /// It retries until another thread changes a variable it read, then commits.
    Retry,
    /// Its commit fails validation once (another thread wrote what it read), then it commits.
    Conflict,
    /// It panics; the panic reaches the caller of `atomically`.
    Panic,
}

/// The panic payload of [`End::Panic`].
#[derive(Debug)]
struct AuditPanic;

/// The objects and variables of one case.
struct Case<'a, S: Subject> {
    ledger: &'a Arc<Ledger>,
    origin: Origin,
    act: S::Act,
    /// The object made before the transaction, until an attempt takes it.
    slot: Cell<Option<S>>,
    /// Another variable, written by the attempt that commits.
    witness: TVar<u64>,
    /// The variable the attempt reads and another thread changes (`Retry`, `Conflict`).
    gate: TVar<u64>,
    attempts: Cell<u32>,
}

impl<S: Subject> Case<'_, S> {
    /// Does the act to the object and drops it: the object of this origin, moved first.
    fn kill(&self, tx: &Transaction) -> StmResult<()> {
        let object = match self.origin {
            Origin::Before => self.slot.take(),
            Origin::Inside => Some(S::make(self.ledger)),
        };
        if let Some(object) = object {
            object.act(tx, self.act, self.ledger)?;
            drop(object);
        }
        Ok(())
    }

    fn attempt(&self) -> u32 {
        self.attempts.set(self.attempts.get() + 1);
        self.attempts.get()
    }
}

/// Runs one case of the matrix: the object of `origin` gets `act` and dies in a transaction
/// that ends as `end`; then checks the other variables and that every value was dropped once.
pub(crate) fn run_case<S: Subject>(origin: Origin, act: S::Act, end: End) {
    let ledger = Ledger::new();
    let case = Case {
        ledger: &ledger,
        origin,
        act,
        slot: Cell::new(None),
        witness: TVar::new(0u64),
        gate: TVar::new(0u64),
        attempts: Cell::new(0),
    };
    if let Origin::Before = origin {
        let object = S::make(&ledger);
        object.prepare(&ledger);
        case.slot.set(Some(object));
    }
    let expected_witness = match end {
        End::Commit => commit(&case),
        End::OrElse => or_else(&case),
        End::Retry => retry(&case),
        End::Conflict => conflict(&case),
        End::Panic => panicking(&case),
    };
    assert_eq!(case.witness.load(), expected_witness, "the other variable");
    drop(case);
    ledger.settle();
}

fn commit<S: Subject>(case: &Case<'_, S>) -> u64 {
    atomically(|tx| {
        case.attempt();
        case.kill(tx)?;
        case.witness.write(tx, 1);
        Ok(())
    });
    assert_eq!(case.attempts.get(), 1, "attempts");
    1
}

fn or_else<S: Subject>(case: &Case<'_, S>) -> u64 {
    atomically(|tx| {
        case.attempt();
        tx.or_else(
            |tx| {
                case.kill(tx)?;
                case.witness.write(tx, 99);
                tx.retry()
            },
            |tx| {
                case.witness.write(tx, 2);
                Ok(())
            },
        )
    });
    assert_eq!(case.attempts.get(), 1, "attempts");
    2
}

fn retry<S: Subject>(case: &Case<'_, S>) -> u64 {
    let (signal, wait) = mpsc::channel::<()>();
    let gate = &case.gate;
    std::thread::scope(|s| {
        s.spawn(move || {
            // Sent by the first attempt just before it retries (or dropped if it never does).
            if wait.recv().is_ok() {
                atomically(|tx| {
                    gate.write(tx, 1);
                    Ok(())
                });
            }
        });
        let signal = Cell::new(Some(signal));
        atomically(|tx| {
            case.attempt();
            let seen = gate.read(tx)?;
            case.kill(tx)?;
            if seen == 0 {
                if let Some(signal) = signal.take() {
                    signal.send(()).unwrap();
                }
                return tx.retry();
            }
            case.witness.write(tx, 3);
            Ok(())
        });
        drop(signal.take());
    });
    assert!(case.attempts.get() >= 2, "the first attempt retried");
    assert_eq!(case.gate.load(), 1, "the gate");
    3
}

fn conflict<S: Subject>(case: &Case<'_, S>) -> u64 {
    let gate = &case.gate;
    atomically(|tx| {
        let attempt = case.attempt();
        let seen = gate.read(tx)?;
        case.kill(tx)?;
        if attempt == 1 {
            // Another thread commits to the gate this attempt read: its commit must fail.
            std::thread::scope(|s| {
                s.spawn(|| {
                    atomically(|tx| {
                        gate.write(tx, 100);
                        Ok(())
                    })
                });
            });
        }
        gate.write(tx, seen + 1);
        case.witness.write(tx, 4);
        Ok(())
    });
    assert_eq!(
        case.attempts.get(),
        2,
        "attempts: one conflict, then a commit"
    );
    assert_eq!(case.gate.load(), 101, "the gate");
    4
}

fn panicking<S: Subject>(case: &Case<'_, S>) -> u64 {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        atomically(|tx| -> StmResult<()> {
            case.attempt();
            case.kill(tx)?;
            case.witness.write(tx, 5);
            std::panic::panic_any(AuditPanic)
        })
    }));
    let payload = outcome.expect_err("the panic propagates");
    assert!(payload.is::<AuditPanic>(), "the transaction's own panic");
    assert_eq!(case.attempts.get(), 1, "attempts");
    0
}

/// Generates the audit matrix: for each `module: Subject, act;` line, a module with one test per
/// origin (`made_before`, `made_inside`) and end (`then_commit`, ...), each run in a child
/// process. Test names read `tbox_dropped_after_write::made_inside::then_commit`.
macro_rules! audit_matrix {
    ($($module:ident: $subject:ty, $act:expr;)*) => {$(
        mod $module {
            use super::*;
            audit_matrix!(@origins $subject, $act;
                made_before: Origin::Before,
                made_inside: Origin::Inside);
        }
    )*};
    (@origins $subject:ty, $act:expr; $($origin_mod:ident: $origin:expr),*) => {$(
        mod $origin_mod {
            use super::*;
            audit_matrix!(@ends $subject, $act, $origin;
                then_commit: End::Commit,
                then_or_else_second_branch: End::OrElse,
                then_retry: End::Retry,
                then_conflict_abort: End::Conflict,
                then_panic: End::Panic);
        }
    )*};
    (@ends $subject:ty, $act:expr, $origin:expr; $($name:ident: $end:expr),*) => {$(
        #[test]
        fn $name() {
            commute_test_support::in_child_process(|| {
                run_case::<$subject>($origin, $act, $end)
            });
        }
    )*};
}

/// Generates one isolated test per `name: body;` line (a function call that is the test).
macro_rules! isolated_tests {
    ($($name:ident: $body:expr;)*) => {$(
        #[test]
        fn $name() {
            commute_test_support::in_child_process(|| $body);
        }
    )*};
}
