//! Transactions run from thread-local destructors that run after commute's own thread context
//! was destroyed: a user's thread-local first touched before the thread's first transaction is
//! destroyed after commute's (destructors run in reverse order of registration). Such a
//! destructor's transactions, commits alone and pins work: they commit, are counted, and what
//! they retire is reclaimed as a normal thread exit leaves it, without a registry slot kept for
//! good.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use commute_stm::{Seen, TBox, TVar, atomically};

/// A thread-local whose destructor runs `f`.
struct OnDrop(Option<Box<dyn FnOnce()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

thread_local! {
    static FIRST: RefCell<OnDrop> = const { RefCell::new(OnDrop(None)) };
    static SECOND: RefCell<OnDrop> = const { RefCell::new(OnDrop(None)) };
}

/// Registers `f` to run when the thread's `FIRST` is destroyed: touched now, before any
/// transaction of the thread, so after commute's context.
fn at_exit<R>(f: impl FnOnce() -> R + 'static) {
    FIRST.with(|d| d.borrow_mut().0 = Some(Box::new(move || drop(f()))));
}

/// As [`at_exit`], with `SECOND` (destroyed before `FIRST`, after commute's context).
fn at_exit_second<R>(f: impl FnOnce() -> R + 'static) {
    SECOND.with(|d| d.borrow_mut().0 = Some(Box::new(move || drop(f()))));
}

/// The tag of the thread that last committed to a variable (its registry slot + 1, or 0 for a
/// thread without one), from what `load_seen` saw: the lock word's version's low 10 bits.
fn tag_of(seen: Seen) -> u64 {
    let text = format!("{seen:?}");
    let word: u64 = text
        .trim_start_matches("Seen(")
        .trim_end_matches(')')
        .parse()
        .expect("Seen's Debug shows its word");
    (word >> 3) & 1023
}

#[test]
fn a_destructor_destroyed_after_the_context_runs_a_transaction() {
    let shared = Arc::new(TVar::new(0u64));
    let before = commute_stm::stats::snapshot().commits;
    let s = shared.clone();
    std::thread::spawn(move || {
        let late = s.clone();
        at_exit(move || atomically(|tx| late.modify(tx, |x| x + 1)));
        // The thread's first transaction: commute's context, registered after `FIRST`.
        atomically(|tx| s.modify(tx, |x| x + 1));
    })
    .join()
    .unwrap();
    assert_eq!(shared.load(), 2);
    assert!(commute_stm::stats::snapshot().commits >= before + 2);
}

#[test]
fn a_late_destructor_commits_alone_and_pins() {
    let shared = Arc::new(TVar::new(0u64));
    let boxed = Arc::new(TBox::new(String::from("a")));
    let s = shared.clone();
    let b = boxed.clone();
    std::thread::spawn(move || {
        let (late, late_box) = (s.clone(), b.clone());
        at_exit(move || {
            late.modify_alone(|x| x + 10);
            let seen = commute_stm::pinned(|| late_box.load_with(|v| v.clone()));
            assert_eq!(seen, "ab");
            let n = commute_stm::pinned(|| {
                // A commit alone inside the pin, then a transaction.
                late.modify_alone(|x| x + 100);
                late.load()
            });
            assert_eq!(n, 111);
            atomically(|tx| late_box.modify(tx, |v| format!("{v}c")));
            assert!(commute_stm::stats::thread().commits >= 3);
        });
        atomically(|tx| s.modify(tx, |x| x + 1));
        atomically(|tx| b.modify(tx, |v| format!("{v}b")));
    })
    .join()
    .unwrap();
    assert_eq!(shared.load(), 111);
    assert_eq!(boxed.load_with(|v| v.clone()), "abc");
}

#[test]
fn two_late_destructors_and_a_context_made_in_one() {
    // Two thread-locals destroyed after the context, each committing; and a thread whose first
    // transaction runs in a destructor.
    let shared = Arc::new(TVar::new(0u64));
    let s = shared.clone();
    std::thread::spawn(move || {
        let (one, two) = (s.clone(), s.clone());
        at_exit(move || atomically(|tx| one.modify(tx, |x| x + 1)));
        at_exit_second(move || {
            two.modify_alone(|x| x + 10);
            atomically(|tx| two.modify(tx, |x| x + 100));
        });
        atomically(|tx| s.modify(tx, |x| x + 1000));
    })
    .join()
    .unwrap();
    assert_eq!(shared.load(), 1111);
    let s = shared.clone();
    std::thread::spawn(move || at_exit(move || atomically(|tx| s.modify(tx, |x| x + 1))))
        .join()
        .unwrap();
    assert_eq!(shared.load(), 1112);
}

static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A value that counts its drops.
struct Counted(#[allow(dead_code)] u64);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn what_a_late_destructor_retires_is_reclaimed() {
    const WRITES: usize = 100;
    let boxed = Arc::new(TBox::new(Counted(0)));
    let b = boxed.clone();
    std::thread::spawn(move || {
        let late = b.clone();
        at_exit(move || {
            for i in 1..=WRITES as u64 {
                atomically(|tx| {
                    late.write(tx, Counted(i));
                    Ok(())
                });
            }
        });
        atomically(|tx| b.read(tx).map(|_| ()));
    })
    .join()
    .unwrap();
    commute_stm::reclaim_retired();
    // The initial value and every write but the last were replaced.
    assert_eq!(DROPPED.load(Ordering::Relaxed), WRITES);
    assert_eq!(boxed.load_with(|v| v.0), WRITES as u64);
    drop(boxed);
    assert_eq!(DROPPED.load(Ordering::Relaxed), WRITES + 1);
}

#[test]
fn many_threads_run_late_transactions_without_keeping_slots() {
    const THREADS: u64 = 2_000;
    let shared = Arc::new(TVar::new(0u64));
    let highest_tag = Arc::new(AtomicU64::new(0));
    for _ in 0..THREADS {
        let s = shared.clone();
        let highest = highest_tag.clone();
        std::thread::spawn(move || {
            let late = s.clone();
            at_exit(move || {
                atomically(|tx| late.modify(tx, |x| x + 1));
                late.modify_alone(|x| x + 1);
                let (_, seen) = commute_stm::pinned(|| late.load_seen());
                highest.fetch_max(tag_of(seen), Ordering::Relaxed);
            });
            s.modify_alone(|x| x + 1);
        })
        .join()
        .unwrap();
    }
    assert_eq!(shared.load(), 3 * THREADS);
    // Every thread's slots went back to the registry: the late commits' tags (slot + 1) stay
    // small (a slot kept for good per thread would have passed 1,023, the last tag, and 0).
    let highest = highest_tag.load(Ordering::Relaxed);
    assert!(highest > 0 && highest < 64, "highest tag {highest}");
}

macro_rules! many_keys {
    ($($key:ident)*) => {
        thread_local! { $(static $key: RefCell<OnDrop> = const { RefCell::new(OnDrop(None)) };)* }
        /// Thread-locals destroyed in reverse order (the last first), each after the context
        /// of the destructor before it was dropped.
        const MANY: &[&std::thread::LocalKey<RefCell<OnDrop>>] = &[$(&$key),*];
    };
}
many_keys!(K0 K1 K2 K3 K4 K5 K6 K7 K8 K9 K10 K11 K12 K13 K14 K15 K16 K17 K18 K19);

/// More late destructors that transact than a thread has keys to drop contexts with (16): each
/// gets a context, the last ones one that is never dropped, and none leaves a variable locked.
/// (They got a panic first, raised from a commit alone's first use of the context after it had
/// locked its variable: every later access to the variable spun for ever.)
#[test]
fn more_late_destructors_than_context_keys_all_commit() {
    let shared = Arc::new(TVar::new(0u64));
    let s = shared.clone();
    std::thread::spawn(move || {
        for (i, key) in MANY.iter().enumerate() {
            let v = s.clone();
            key.with(|d| {
                d.borrow_mut().0 = Some(Box::new(move || {
                    // Commits alone lock their variable before they use the context.
                    if i % 2 == 0 {
                        v.modify_alone(|x| x + 1);
                    } else {
                        atomically(|tx| v.modify(tx, |x| x + 1));
                    }
                }));
            });
        }
        atomically(|tx| s.modify(tx, |x| x + 1));
    })
    .join()
    .unwrap();
    assert_eq!(shared.load(), MANY.len() as u64 + 1);
    let s = shared.clone();
    commute_test_support::with_watchdog(10, move || {
        s.modify_alone(|x| x + 1);
        atomically(|tx| s.modify(tx, |x| x + 1));
    });
    assert_eq!(shared.load(), MANY.len() as u64 + 3);
}
