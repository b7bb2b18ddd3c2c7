//! One rule for the readers that work outside transactions: inside one they panic (they would
//! read outside it, unseen by conflict detection); exclusive access reads anywhere.

use commute_stm::{TBox, TVar, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};

fn panics_inside_a_transaction(what: &str, f: impl Fn()) {
    let r = atomically(|_| Ok(catch_unwind(AssertUnwindSafe(&f)).is_err()));
    assert!(r, "{what} did not panic inside a transaction");
    f(); // and works outside
}

#[test]
fn tvar_load_panics_inside_a_transaction() {
    let v = TVar::new(1u32);
    panics_inside_a_transaction("TVar::load", || {
        v.load();
    });
}

#[test]
fn tbox_load_panics_inside_a_transaction() {
    let b = TBox::new(String::from("x"));
    panics_inside_a_transaction("TBox::load", || {
        b.load();
    });
    panics_inside_a_transaction("TBox::load_with", || {
        b.load_with(|s| s.len());
    });
}

#[test]
fn exclusive_access_reads_anywhere() {
    let got = atomically(|tx| {
        let mut v = TVar::new(5u32);
        let first = v.load_mut();
        let w = TVar::new(6u32);
        w.read(tx)?;
        Ok((first, w.into_inner()))
    });
    assert_eq!(got, (5, 6));
}

#[test]
fn debug_output_inside_a_transaction_reads_nothing() {
    let v = TVar::new(9u32);
    let inside = atomically(|_| Ok(format!("{v:?}")));
    assert!(inside.contains("<in a transaction>"), "{inside}");
    assert!(format!("{v:?}").contains('9'));
}
