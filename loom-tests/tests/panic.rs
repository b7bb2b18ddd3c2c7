//! Loom model of a transaction that panics while another thread commits.
#![cfg(loom)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use commute_loom_tests::{run_model, silence_panics_starting_with};
use commute_stm::{TVar, atomically};
use loom::sync::Arc;
use loom::thread;

/// The value the panicking transactions write: nobody may ever see it.
const POISON: u64 = 99;
/// The payload of the deliberate panics, so that the hook keeps them quiet.
const DELIBERATE: &str = "commute-loom: deliberate panic";

/// One thread panics twice: inside the closure after buffering a write, and inside a
/// commutative function, which runs at commit while the write set is locked. Another thread
/// commits to the same variables meanwhile. Everything completes, and nothing of the panicking
/// transactions is visible.
///
/// Catches locks left held by a commit that unwinds (the other thread and the later
/// transactions would spin for ever: loom reports the branch limit), buffered writes of a
/// panicked attempt that leak into a later one or into memory, and thread state (the
/// "in a transaction" flag, the attempt's buffers) left dirty by the unwind.
#[test]
fn panic_releases_everything() {
    silence_panics_starting_with(DELIBERATE);
    run_model("panic_releases_everything", || {
        let a = Arc::new(TVar::new(0u64));
        let b = Arc::new(TVar::new(0u64));
        let panicker = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                let in_closure = catch_unwind(AssertUnwindSafe(|| {
                    atomically(|tx| {
                        a.write(tx, POISON);
                        b.read(tx)?;
                        if true {
                            panic!("{DELIBERATE}");
                        }
                        Ok(())
                    })
                }));
                assert!(in_closure.is_err());
                let at_commit = catch_unwind(AssertUnwindSafe(|| {
                    atomically(|tx| {
                        a.write(tx, POISON);
                        b.commute(tx, |_| panic!("{DELIBERATE}"));
                        Ok(())
                    })
                }));
                assert!(at_commit.is_err());
                // This thread's next transaction starts clean.
                atomically(|tx| {
                    let seen = a.read(tx)?;
                    assert_ne!(seen, POISON, "a panicked write leaked");
                    a.write(tx, seen + 1);
                    Ok(())
                });
            })
        };
        atomically(|tx| {
            let seen = a.read(tx)?;
            assert_ne!(seen, POISON, "a panicked write became visible");
            a.write(tx, seen + 1);
            b.modify(tx, |n| n + 1)?;
            Ok(())
        });
        panicker.join().unwrap();
        assert_eq!((a.load(), b.load()), (2, 1));
    });
}
