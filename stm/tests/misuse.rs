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
    commute_test_support::panic_message(&*payload)
}

/// What the transaction does to the variable first.
#[derive(Clone, Copy, Debug)]
enum First {
    Publish,
    SetLocal,
}

#[test]
fn writing_or_adding_to_a_variable_published_to_or_used_as_a_local_key_panics() {
    for first in [First::Publish, First::SetLocal] {
        for add in [false, true] {
            let v = TVar::new(5u64);
            let message = panic_message(|tx| {
                match first {
                    // SAFETY: the operation neither panics nor touches other memory.
                    First::Publish => unsafe { v.publish_on_commit(tx, |x, _| x + 1) },
                    First::SetLocal => v.set_local(tx, 3),
                }
                if add {
                    v.add(tx, 1);
                } else {
                    v.write(tx, 7);
                }
            });
            let expected = match first {
                First::Publish => "publishing operations cannot also be written or commuted",
                First::SetLocal => "transaction-local key cannot also be written or commuted",
            };
            assert!(
                message.contains(expected),
                "{first:?}, add {add}: {message}"
            );
            assert_eq!(v.load(), 5, "rolled back");
        }
    }
}
