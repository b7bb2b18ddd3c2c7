//! `map.atomic().insert(k, v)` of a present key is `TMap::insert` in a transaction of its own.
//! The transactional insert clones the old value (to hand it back) before it writes the leaf,
//! so a `Clone` that panics rolls the whole insert back: the map keeps the old value. The
//! one-call form's fast path committed the new leaf first and cloned the old value after: the
//! same panic reached the caller, but the insert had happened. It now makes the copy first.

use commute::{TMap, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

static ARMED: AtomicBool = AtomicBool::new(false);

/// A value whose `Clone` panics, once armed, if it is `fragile`.
#[derive(Debug, PartialEq)]
struct V {
    n: u32,
    fragile: bool,
}

impl Clone for V {
    fn clone(&self) -> Self {
        assert!(
            !(self.fragile && ARMED.load(Ordering::SeqCst)),
            "Clone panics"
        );
        V {
            n: self.n,
            fragile: self.fragile,
        }
    }
}

fn setup() -> TMap<u32, V> {
    let m = TMap::new();
    // A fresh key moves its value in: no clone.
    atomically(|tx| {
        m.insert(
            tx,
            1,
            V {
                n: 1,
                fragile: true,
            },
        )
    });
    m
}

#[test]
fn a_panicking_clone_of_the_replaced_value_rolls_back_both_forms_alike() {
    let one_call = setup();
    let in_tx = setup();

    ARMED.store(true, Ordering::SeqCst);
    let a = catch_unwind(AssertUnwindSafe(|| {
        one_call.atomic().insert(
            1,
            V {
                n: 2,
                fragile: false,
            },
        )
    }));
    let b = catch_unwind(AssertUnwindSafe(|| {
        atomically(|tx| {
            in_tx.insert(
                tx,
                1,
                V {
                    n: 2,
                    fragile: false,
                },
            )
        })
    }));
    ARMED.store(false, Ordering::SeqCst);

    assert!(
        a.is_err(),
        "one-call insert: the clone of the old value panicked"
    );
    assert!(
        b.is_err(),
        "transactional insert: the clone of the old value panicked"
    );

    let got_tx = in_tx.atomic().get(&1).map(|v| v.n);
    let got_one = one_call.atomic().get(&1).map(|v| v.n);
    // The transactional insert was rolled back by its panic: the old value stays.
    assert_eq!(got_tx, Some(1));
    // The one-call form behaves the same (it left Some(2): committed, although it panicked).
    assert_eq!(
        got_one, got_tx,
        "one-call insert that panicked left its write committed"
    );
}
