//! A bare TL2, the floor of the protocol commute's core runs: a measuring stick for the
//! `instructions` binary's `anatomy` row, not a transactional memory to use.
//!
//! It keeps what makes TL2 a correct, safe transactional memory and nothing else: a global
//! version clock, one lock word (version and lock bit) beside each variable's value, reads
//! validated against the attempt's read version (opacity, with no timestamp extension), writes
//! buffered, and a commit that locks the write set, takes a write version, validates the read
//! set and writes back. Its read and write sets are arrays of [`SET_CAPACITY`] entries inside
//! the thread-local context (the "small transaction" shape: no `Vec`, no allocation, a
//! constant-initialised thread-local without destructor); a transaction that touches more
//! variables panics. What commute's core does beyond it (commutative updates, publishing
//! operations, reclamation, snapshots, `retry` and `or_else`, hooks, irrevocability, the
//! profiler, statistics, variables freed while attempts run) is what the `anatomy` row's
//! difference prices; see `docs/hot-path.md`, "Nineteenth pass".
//!
//! Safety rests on two rules the types enforce: a [`Tx<'env>`] is invariant in `'env`, and a
//! variable is read or written only through a borrow for `'env`, which outlives the call to
//! [`atomically`], so every address in the sets stays valid until the attempt ends; and the
//! thread-local context is borrowed by one attempt at a time (a nested call panics).

use core::cell::{Cell, UnsafeCell};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

/// The most variables a transaction may read, and the most it may write.
pub(crate) const SET_CAPACITY: usize = 8;

/// The commit clock: the version of the latest commit.
static CLOCK: AtomicU64 = AtomicU64::new(0);

/// The lock bit of a lock word; the version is the word shifted right by one.
const LOCKED: u64 = 1;

/// A transactional variable holding a `u64`.
#[derive(Debug, Default)]
pub(crate) struct Var {
    lock: AtomicU64,
    value: AtomicU64,
}

/// Why an operation stops the attempt: it will run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict;

/// An attempt, handed to the closure given to [`atomically`]. Invariant in `'env`, so that only
/// variables that outlive the call can be touched.
pub(crate) struct Tx<'env> {
    ctx: *mut Ctx,
    rv: u64,
    _env: PhantomData<Cell<&'env ()>>,
}

/// A set of (variable, word) pairs of at most [`SET_CAPACITY`] entries.
#[derive(Clone, Copy)]
struct Set {
    len: usize,
    items: [(*const Var, u64); SET_CAPACITY],
}

struct Ctx {
    /// An attempt is running on this thread (and borrows the sets).
    active: bool,
    /// The variables read, with the lock word each was read under.
    reads: Set,
    /// The variables written, with the value to write.
    writes: Set,
}

std::thread_local! {
    static CTX: UnsafeCell<Ctx> = const {
        UnsafeCell::new(Ctx { active: false, reads: Set::EMPTY, writes: Set::EMPTY })
    };
}

impl Set {
    const EMPTY: Set = Set {
        len: 0,
        items: [(core::ptr::null(), 0); SET_CAPACITY],
    };

    #[inline(always)]
    fn push(&mut self, var: *const Var, word: u64) {
        assert!(
            self.len < SET_CAPACITY,
            "tl2_floor: a transaction touched more than {SET_CAPACITY} variables"
        );
        self.items[self.len] = (var, word);
        self.len += 1;
    }

    #[inline(always)]
    fn entries(&self) -> &[(*const Var, u64)] {
        &self.items[..self.len]
    }

    #[inline(always)]
    fn find(&mut self, var: *const Var) -> Option<&mut u64> {
        self.items[..self.len]
            .iter_mut()
            .find(|e| core::ptr::eq(e.0, var))
            .map(|e| &mut e.1)
    }
}

impl Var {
    /// A variable holding `value`.
    pub(crate) fn new(value: u64) -> Self {
        Var {
            lock: AtomicU64::new(0),
            value: AtomicU64::new(value),
        }
    }

    /// The latest committed value, read outside any transaction.
    pub(crate) fn load(&self) -> u64 {
        loop {
            let before = self.lock.load(Ordering::Acquire);
            let value = self.value.load(Ordering::Acquire);
            if before & LOCKED == 0 && self.lock.load(Ordering::Acquire) == before {
                return value;
            }
            core::hint::spin_loop();
        }
    }

    /// The value in `tx`: its own write if it wrote one, else the committed value, if no commit
    /// after the attempt's read version changed it.
    #[inline]
    pub(crate) fn read<'env>(&'env self, tx: &Tx<'env>) -> Result<u64, Conflict> {
        // SAFETY: the context is the thread's, borrowed by this attempt alone (`atomically`),
        // and no other reference to it lives across this call.
        let ctx = unsafe { &mut *tx.ctx };
        // The length test first: without it the search of an empty set costs the read and the
        // read-modify-write 5-6 instructions more (`instructions --measure --case anatomy`).
        if ctx.writes.len != 0
            && let Some(&mut value) = ctx.writes.find(self)
        {
            return Ok(value);
        }
        let before = self.lock.load(Ordering::Acquire);
        if before & LOCKED != 0 || before >> 1 > tx.rv {
            return Err(Conflict);
        }
        let value = self.value.load(Ordering::Acquire);
        if self.lock.load(Ordering::Acquire) != before {
            return Err(Conflict);
        }
        ctx.reads.push(self, before);
        Ok(value)
    }

    /// Buffers a write of `value` in `tx`.
    #[inline]
    pub(crate) fn write<'env>(&'env self, tx: &Tx<'env>, value: u64) {
        // SAFETY: as in `read`.
        let ctx = unsafe { &mut *tx.ctx };
        match ctx.writes.find(self) {
            Some(slot) => *slot = value,
            None => ctx.writes.push(self, value),
        }
    }

    /// Reads the value, writes `f(value)`, and returns the new value.
    #[inline]
    pub(crate) fn modify<'env>(
        &'env self,
        tx: &Tx<'env>,
        f: impl FnOnce(u64) -> u64,
    ) -> Result<u64, Conflict> {
        let value = f(self.read(tx)?);
        self.write(tx, value);
        Ok(value)
    }
}

/// Ends the thread's attempt when dropped (also when the closure panics): empties the sets, so
/// that no address outlives the attempt.
struct Active(*mut Ctx);

impl Drop for Active {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the thread's context, no longer borrowed by the attempt.
        let ctx = unsafe { &mut *self.0 };
        ctx.reads.len = 0;
        ctx.writes.len = 0;
        ctx.active = false;
    }
}

/// Runs `f` as a transaction until an attempt commits; returns its result.
///
/// # Panics
///
/// If called inside a transaction, or if a transaction touches more than [`SET_CAPACITY`]
/// variables; a panic of `f` ends the attempt and propagates.
pub(crate) fn atomically<'env, T>(mut f: impl FnMut(&Tx<'env>) -> Result<T, Conflict>) -> T {
    CTX.with(|cell| {
        let ctx = cell.get();
        // SAFETY: the thread's context; no attempt borrows it (checked just below, before any
        // set is touched).
        let active = unsafe { &mut (*ctx).active };
        assert!(!*active, "tl2_floor: transactions do not nest");
        *active = true;
        let _active = Active(ctx);
        loop {
            let tx = Tx {
                ctx,
                rv: CLOCK.load(Ordering::Acquire),
                _env: PhantomData,
            };
            let outcome = f(&tx);
            // SAFETY: the closure has returned; nothing else borrows the context.
            let sets = unsafe { &mut *ctx };
            if let Ok(value) = outcome
                && commit(sets)
            {
                // `_active` empties the sets.
                return value;
            }
            sets.reads.len = 0;
            sets.writes.len = 0;
            core::hint::spin_loop();
        }
    })
}

/// Commits the attempt whose sets `ctx` holds; false if it must run again.
#[inline(always)]
fn commit(ctx: &Ctx) -> bool {
    if ctx.writes.len == 0 {
        // Read-only: every read was validated against the read version.
        return true;
    }
    let writes = ctx.writes.entries();
    for (held, &(var, _)) in writes.iter().enumerate() {
        // SAFETY: every variable in the sets outlives the call to `atomically` (`'env`).
        let var = unsafe { &*var };
        let word = var.lock.load(Ordering::Relaxed);
        if word & LOCKED != 0
            || var
                .lock
                .compare_exchange(word, word | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            unlock(&writes[..held]);
            return false;
        }
    }
    let wv = CLOCK.fetch_add(1, Ordering::AcqRel) + 1;
    for &(var, seen) in ctx.reads.entries() {
        // SAFETY: as above.
        let now = unsafe { &*var }.lock.load(Ordering::Acquire);
        // Unchanged, or locked by this commit from the word the read saw.
        if now != seen && (now != seen | LOCKED || !writes.iter().any(|e| core::ptr::eq(e.0, var)))
        {
            unlock(writes);
            return false;
        }
    }
    for &(var, value) in writes {
        // SAFETY: as above.
        let var = unsafe { &*var };
        var.value.store(value, Ordering::Release);
        var.lock.store(wv << 1, Ordering::Release);
    }
    true
}

/// Unlocks `held` (locked by this commit), leaving their versions as they were.
fn unlock(held: &[(*const Var, u64)]) {
    for &(var, _) in held {
        // SAFETY: as in `commit`.
        unsafe { &*var }.lock.fetch_and(!LOCKED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_from_two_threads_are_all_counted() {
        const EACH: u64 = 200_000;
        let (a, b) = (Var::new(0), Var::new(1_000_000));
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..EACH {
                        // A transfer keeps the sum; the count of transfers is exact.
                        atomically(|tx| {
                            a.modify(tx, |x| x + 1)?;
                            b.modify(tx, |x| x - 1)
                        });
                    }
                });
            }
        });
        assert_eq!((a.load(), b.load()), (2 * EACH, 1_000_000 - 2 * EACH));
    }

    #[test]
    fn reads_see_the_attempts_own_writes() {
        let v = Var::new(5);
        let seen = atomically(|tx| {
            v.write(tx, 9);
            v.read(tx)
        });
        assert_eq!((seen, v.load()), (9, 9));
    }

    #[test]
    fn each_transaction_starts_with_empty_sets() {
        let v = Var::new(0);
        // Reads left over from earlier commits would fill the read set: a panic at the ninth.
        for _ in 0..2 * SET_CAPACITY {
            assert_eq!(atomically(|tx| v.read(tx)), 0);
        }
        // A write left over would answer a later read instead of the committed value.
        atomically(|tx| {
            v.write(tx, 5);
            Ok(())
        });
        std::thread::scope(|s| {
            s.spawn(|| {
                atomically(|tx| {
                    v.write(tx, 7);
                    Ok(())
                })
            });
        });
        assert_eq!(atomically(|tx| v.read(tx)), 7);
    }

    #[test]
    #[should_panic(expected = "do not nest")]
    fn nested_transactions_panic() {
        atomically(|_| Ok(atomically(|_| Ok(1))));
    }

    #[test]
    fn a_panicking_attempt_leaves_nothing_behind() {
        let v = Var::new(3);
        let panicked = std::panic::catch_unwind(|| {
            atomically(|tx| -> Result<(), Conflict> {
                v.write(tx, 4);
                panic!("out of the closure")
            })
        });
        assert!(panicked.is_err());
        assert_eq!(v.load(), 3);
        // The next transaction starts with empty sets, not the dead attempt's write.
        assert_eq!(atomically(|tx| v.modify(tx, |x| x + 1)), 4);
    }

    #[test]
    #[should_panic(expected = "more than 8 variables")]
    fn too_many_variables_panic() {
        let vars: Vec<Var> = (0..9).map(Var::new).collect();
        atomically(|tx| {
            for v in &vars {
                v.write(tx, 0);
            }
            Ok(())
        });
    }
}
