//! Reclamation keeps up with commits on its own: values that commits replace are freed by the
//! passes those commits make due, with no call of `reclaim_retired`. Alone in its test binary:
//! another test's running transaction would hold values back.

use commute_stm::{TBox, atomically};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn replaced_values_are_freed_by_the_passes_commits_make_due() {
    with_watchdog(120, || {
        const WRITES: u64 = 20_000;
        let live = Arc::new(AtomicUsize::new(0));
        let b = TBox::new(Counted::new(0, &live));
        let mut most = 0;
        for i in 1..=WRITES {
            atomically(|tx| {
                b.write(tx, Counted::new(i, &live));
                Ok(())
            });
            most = most.max(live.load(Ordering::Relaxed));
        }
        assert_eq!(b.load_with(|c| c.value()), WRITES);
        // A pass runs every few dozen retirements (more with more threads registered): without
        // them all 20,000 replaced values would still be alive.
        assert!(most < 1_000, "{most} values alive at once");
        drop(b);
        commute_stm::reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), 0);
    });
}
