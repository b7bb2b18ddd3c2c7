//! Drop audit of the core: every way a `TVar`, a `TBox` or a `write_owned` value can die (or
//! move) while the running transaction still refers to it. Each test runs in a child process
//! (see `common/audit.rs`), so a case that corrupts memory fails alone, with its signal.

#[macro_use]
#[path = "common/audit.rs"]
mod audit;
#[path = "common/owned.rs"]
mod owned;

use std::sync::Arc;

use audit::{End, Ledger, Origin, Subject, Tracked, run_case};
use commute_stm::{OwnedWord, StmResult, TBox, TVar, Transaction, atomically};

/// The value-level view of a variable that the tests need: made with a value, read, written,
/// and loaded outside any transaction.
trait Var: Sized {
    fn new(ledger: &Arc<Ledger>, n: u64) -> Self;
    fn get(&self, tx: &Transaction) -> StmResult<u64>;
    fn set(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64);
    /// A commutative update, for the types that have one.
    fn add(&self, _tx: &Transaction, _n: u64) {
        unreachable!("no commutative update on this type");
    }
    fn value(&self) -> u64;
}

impl Var for TVar<u64> {
    fn new(_: &Arc<Ledger>, n: u64) -> Self {
        TVar::new(n)
    }
    fn get(&self, tx: &Transaction) -> StmResult<u64> {
        self.read(tx)
    }
    fn set(&self, tx: &Transaction, _: &Arc<Ledger>, n: u64) {
        self.write(tx, n);
    }
    fn add(&self, tx: &Transaction, n: u64) {
        TVar::add(self, tx, n);
    }
    fn value(&self) -> u64 {
        self.load()
    }
}

impl Var for TBox<Tracked> {
    fn new(ledger: &Arc<Ledger>, n: u64) -> Self {
        TBox::new(Tracked::new(ledger, n))
    }
    fn get(&self, tx: &Transaction) -> StmResult<u64> {
        Ok(self.read(tx)?.n)
    }
    fn set(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64) {
        self.write(tx, Tracked::new(ledger, n));
    }
    fn value(&self) -> u64 {
        self.load_with(|t| t.n)
    }
}

/// A boxed [`Tracked`] as an [`OwnedWord`].
type OwnedPtr = owned::Owned<Tracked>;

impl OwnedPtr {
    fn boxed(ledger: &Arc<Ledger>, n: u64) -> Self {
        OwnedPtr::new(Tracked::new(ledger, n))
    }

    /// The value's number.
    ///
    /// # Safety
    ///
    /// The box must be alive: the committed value (no commit replaced it yet), or one read
    /// under the transaction's pin.
    unsafe fn n(self) -> u64 {
        // SAFETY: forwarded from the caller.
        unsafe { (*self.0).n }
    }
}

/// A variable of owned words that frees its committed value when dropped, as a collection's
/// node slots do.
struct OwnedBox(TVar<OwnedPtr>);

impl Drop for OwnedBox {
    fn drop(&mut self) {
        // SAFETY: dropping needs ownership, so no transaction of another thread reads the
        // variable; the committed value is owned by it alone (replaced values were retired).
        unsafe { self.0.load_mut().free() };
    }
}

impl Var for OwnedBox {
    fn new(ledger: &Arc<Ledger>, n: u64) -> Self {
        OwnedBox(TVar::new(OwnedPtr::boxed(ledger, n)))
    }
    fn get(&self, tx: &Transaction) -> StmResult<u64> {
        tx.pin();
        let value = self.0.read(tx)?;
        // SAFETY: read under the pin: not freed before the attempt ends.
        Ok(unsafe { value.n() })
    }
    fn set(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64) {
        // SAFETY: a fresh box that nothing else owns; every value of the variable is one.
        unsafe { self.0.write_owned(tx, OwnedPtr::boxed(ledger, n)) };
    }
    fn value(&self) -> u64 {
        // SAFETY: outside any transaction, the committed value is alive.
        unsafe { self.0.load().n() }
    }
}

/// What the attempt does to the variable before it dies.
#[derive(Clone, Copy, Debug)]
enum Act {
    Read,
    Write,
    Add,
}

impl<V: Var> Subject for V {
    type Act = Act;
    fn make(ledger: &Arc<Ledger>) -> Self {
        V::new(ledger, 1)
    }
    fn prepare(&self, ledger: &Arc<Ledger>) {
        // A committed write, so that the variable also has a replaced value to reclaim.
        atomically(|tx| {
            self.set(tx, ledger, 1);
            Ok(())
        });
    }
    fn act(&self, tx: &Transaction, act: Act, ledger: &Arc<Ledger>) -> StmResult<()> {
        match act {
            Act::Read => assert_eq!(self.get(tx)?, 1),
            Act::Write => self.set(tx, ledger, 2),
            Act::Add => self.add(tx, 2),
        }
        Ok(())
    }
}

audit_matrix! {
    tvar_dropped_after_read: TVar<u64>, Act::Read;
    tvar_dropped_after_write: TVar<u64>, Act::Write;
    tvar_dropped_after_add: TVar<u64>, Act::Add;
    tbox_dropped_after_read: TBox<Tracked>, Act::Read;
    tbox_dropped_after_write: TBox<Tracked>, Act::Write;
    owned_word_dropped_after_read: OwnedBox, Act::Read;
    owned_word_dropped_after_write_owned: OwnedBox, Act::Write;
}

/// A variable made inside the attempt, written, and returned from the closure: the caller sees
/// the write.
fn returned<V: Var>() {
    let ledger = Ledger::new();
    let var = atomically(|tx| {
        let var = V::new(&ledger, 1);
        var.set(tx, &ledger, 7);
        Ok(var)
    });
    assert_eq!(var.value(), 7, "the returned variable");
    drop(var);
    ledger.settle();
}

/// The first variable of a `Vec` is written, then the `Vec` reallocates (pushes until its buffer
/// moves): the commit lands in the variable, now at its new place.
fn vec_reallocated<V: Var>(origin: Origin) {
    let ledger = Ledger::new();
    let witness = TVar::new(0u64);
    let mut outside: Vec<V> = Vec::with_capacity(1);
    if let Origin::Before = origin {
        outside.push(V::new(&ledger, 1));
    }
    let vars = atomically(|tx| {
        let mut vars = match origin {
            Origin::Before => std::mem::take(&mut outside),
            Origin::Inside => Vec::with_capacity(1),
        };
        if vars.is_empty() {
            vars.push(V::new(&ledger, 1));
        }
        vars[0].set(tx, &ledger, 7);
        let buffer = vars.as_ptr();
        while vars.as_ptr() == buffer {
            vars.push(V::new(&ledger, 100));
        }
        witness.write(tx, 1);
        Ok(vars)
    });
    assert_eq!(witness.load(), 1, "the other variable");
    assert_eq!(vars[0].value(), 7, "the first variable");
    assert!(vars[1..].iter().all(|v| v.value() == 100), "the later ones");
    drop(vars);
    ledger.settle();
}

/// Two variables swap places after the attempt wrote one: the write follows the variable.
fn swapped<V: Var>() {
    let ledger = Ledger::new();
    let (mut a, mut b) = (V::new(&ledger, 1), V::new(&ledger, 2));
    atomically(|tx| {
        a.set(tx, &ledger, 7);
        std::mem::swap(&mut a, &mut b);
        Ok(())
    });
    assert_eq!(
        (a.value(), b.value()),
        (2, 7),
        "`b` holds the variable written as `a`"
    );
    drop((a, b));
    ledger.settle();
}

/// A written variable is replaced by a new one (`mem::replace`) and dropped: its write dies with
/// it, and the new variable keeps its own value.
fn replaced<V: Var>() {
    let ledger = Ledger::new();
    let witness = TVar::new(0u64);
    let mut var = V::new(&ledger, 1);
    atomically(|tx| {
        var.set(tx, &ledger, 7);
        drop(std::mem::replace(&mut var, V::new(&ledger, 5)));
        witness.write(tx, 1);
        Ok(())
    });
    assert_eq!(witness.load(), 1, "the other variable");
    assert_eq!(var.value(), 5, "the replacement");
    drop(var);
    ledger.settle();
}

/// Generates the tests of variables that move (rather than die) during the attempt, one module
/// per type.
macro_rules! moves {
    ($($module:ident: $var:ty;)*) => {$(
        mod $module {
            use super::*;
            isolated_tests! {
                made_inside_written_then_returned: returned::<$var>();
                vec_reallocated_after_write_of_element_made_before:
                    vec_reallocated::<$var>(Origin::Before);
                vec_reallocated_after_write_of_element_made_inside:
                    vec_reallocated::<$var>(Origin::Inside);
                swapped_after_write_then_commit: swapped::<$var>();
                replaced_after_write_then_dropped: replaced::<$var>();
            }
        }
    )*};
}

moves! {
    tvar_moved: TVar<u64>;
    tbox_moved: TBox<Tracked>;
    owned_word_moved: OwnedBox;
}
