//! `reclaim_retired` called inside a transaction drops nothing there. Before the fix it ran the
//! reclamation pass on the spot, inside the transaction, against `TBox`'s promise that a
//! replaced value is never dropped inside one (so that its `Drop` may use commute): a `Drop`
//! that runs a transaction panicked as a nested one, and the caller's commit was lost. Alone in
//! its test binary: another test's running transaction would hold the value back.

use commute_stm::{TBox, TVar, atomically, in_transaction, reclaim_retired};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A value whose `Drop` counts in a transactional variable (allowed by `TBox`'s docs).
struct Logged(Arc<TVar<u64>>);

impl Drop for Logged {
    fn drop(&mut self) {
        assert!(
            !in_transaction(),
            "a TBox value dropped inside a transaction"
        );
        atomically(|tx| self.0.modify(tx, |n| n + 1).map(drop));
    }
}

#[test]
fn reclaim_retired_inside_a_transaction_drops_nothing_there() {
    let drops = Arc::new(TVar::new(0u64));
    let work = TVar::new(0u32);
    let b = TBox::new(Logged(drops.clone()));
    atomically(|tx| {
        b.write(tx, Logged(drops.clone()));
        Ok(())
    });
    // The first value is retired now. A transaction that also asks for a reclamation pass:
    let r = catch_unwind(AssertUnwindSafe(|| {
        atomically(|tx| {
            work.write(tx, 1);
            reclaim_retired();
            Ok(())
        })
    }));
    assert!(
        r.is_ok(),
        "atomically panicked: reclaim_retired() ran a retired value's Drop inside the transaction"
    );
    assert_eq!(work.load(), 1, "the transaction's commit was lost");
    reclaim_retired();
    assert_eq!(drops.load(), 1);
}
