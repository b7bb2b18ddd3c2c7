//! Loom model of heap values (`TBox`): deferred reclamation never frees a value still in use.
#![cfg(loom)]

use commute_loom_tests::{Payload, run_model, settle};
use commute_stm::{TBox, atomically, reclaim_retired};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// A writer replaces a box's value twice while a reader borrows it inside a transaction and
/// outside (`load_with`). After joining, `reclaim_retired` must free both replaced values.
///
/// Catches reclamation that ignores pins (frees a value a running reader still borrows),
/// retired values that are never freed (leaks), and values published without release
/// ordering.
#[test]
fn tbox_replace_vs_reader() {
    run_model("tbox_replace_vs_reader", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = Arc::new(TBox::new(Payload::new(0, &drops)));
        let writer = {
            let (cell, drops) = (cell.clone(), drops.clone());
            thread::spawn(move || {
                for id in 1..=2 {
                    atomically(|tx| {
                        cell.write(tx, Payload::new(id, &drops));
                        Ok(())
                    });
                }
            })
        };
        let seen = atomically(|tx| Ok(cell.read(tx)?.id()));
        let seen_later = cell.load_with(Payload::id);
        assert!(
            seen <= seen_later && seen_later <= 2,
            "{seen} then {seen_later}"
        );
        writer.join().unwrap();
        // The writer's thread context (holding what it could not free yet) is dropped after
        // `join` returns under loom.
        settle();
        reclaim_retired();
        assert_eq!(
            drops.fetch_add(0, Ordering::AcqRel),
            2,
            "replaced values not freed"
        );
        assert_eq!(cell.load_with(Payload::id), 2);
    });
}
