//! The documented panics of the low-level per-variable modes: a variable that a transaction
//! publishes to, or uses as a transaction-local key, cannot also be written or commuted in it.
//! Each panic rolls the attempt back, so the variable keeps its value.

use commute_stm::{TVar, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f` in a transaction and returns its panic message.
fn panic_message(f: impl Fn(&commute_stm::Transaction)) -> String {
    let payload = catch_unwind(AssertUnwindSafe(|| {
        atomically(|tx| {
            f(tx);
            Ok(())
        })
    }))
    .expect_err("the transaction must panic");
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .expect("a text panic")
}

#[test]
fn writing_a_variable_published_to_panics_and_rolls_back() {
    let v = TVar::new(5u64);
    let message = panic_message(|tx| {
        // SAFETY: the operation neither panics nor touches other memory.
        unsafe { v.publish_on_commit(tx, |x, _| x + 1) };
        v.write(tx, 7);
    });
    assert!(
        message.contains("publishing operations cannot also be written or commuted"),
        "{message}"
    );
    assert_eq!(v.load(), 5);
}

#[test]
fn adding_to_a_variable_published_to_panics() {
    let v = TVar::new(5u64);
    let message = panic_message(|tx| {
        // SAFETY: as above.
        unsafe { v.publish_on_commit(tx, |x, _| x + 1) };
        v.add(tx, 1);
    });
    assert!(
        message.contains("publishing operations cannot also be written or commuted"),
        "{message}"
    );
    assert_eq!(v.load(), 5);
}

#[test]
fn writing_or_adding_to_a_local_key_panics() {
    let key = TVar::new(0u64);
    for add in [false, true] {
        let message = panic_message(|tx| {
            key.set_local(tx, 3);
            if add {
                key.add(tx, 1);
            } else {
                key.write(tx, 1);
            }
        });
        assert!(
            message.contains("transaction-local key cannot also be written or commuted"),
            "{message}"
        );
        assert_eq!(key.load(), 0);
    }
}
