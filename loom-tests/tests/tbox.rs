//! Loom model of heap values (`TBox`): deferred reclamation never frees a value still in use.
#![cfg(loom)]

use commute_loom_tests::{Payload, run_model, settle, spawn_payload_writer};
use commute_stm::{TBox, atomically, pinned, reclaim_retired};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
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
        let writer = spawn_payload_writer(&cell, &drops, 2);
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

/// A thread writes a box through a clone of a shared handle, which it lets go of inside its
/// attempt, before the commit; meanwhile the main thread takes the shared handle and drops it.
/// Whichever handle goes last, the value the commit stores is dropped with the box, and the
/// value it replaced is freed once.
///
/// Catches a drop of the box that does not wait for the `atomically` call that still commits to
/// it, and one that waits but does not see that call's writes: an exit from `atomically` (the
/// slot's `attempt` mark) that is not a release, or a check of the mark (`Deferred::is_due`)
/// that is not an acquire, so that the dropper frees the block with the value it had before the
/// commit (the replaced value freed twice, which crashes the test, and the new one leaked).
///
/// The writer's call runs inside `pinned`, which puts the reclamation pass of its commit off
/// until the pin ends, after the call has left `atomically`: under loom every retirement starts
/// a pass, whose lock on the thread registry would otherwise order the commit before the
/// dropper's scan of the registry, hiding the exit's ordering.
#[test]
fn tbox_dropped_while_a_commit_writes_it() {
    run_model("tbox_dropped_while_a_commit_writes_it", || {
        let drops = Arc::new(AtomicUsize::new(0));
        // Payloads made (one per attempt that writes, the box's first), each to be dropped once.
        let made = Arc::new(AtomicUsize::new(1));
        let shared = Arc::new(Mutex::new(Some(Arc::new(TBox::new(Payload::new(
            1, &drops,
        ))))));
        let writer = {
            let (shared, drops, made) = (shared.clone(), drops.clone(), made.clone());
            thread::spawn(move || {
                pinned(|| {
                    atomically(|tx| {
                        let handle = shared.lock().unwrap().clone();
                        if let Some(handle) = handle {
                            made.fetch_add(1, Ordering::Relaxed);
                            handle.write(tx, Payload::new(2, &drops));
                        }
                        Ok(())
                    })
                });
            })
        };
        drop(shared.lock().unwrap().take());
        writer.join().unwrap();
        settle();
        reclaim_retired();
        assert_eq!(
            drops.fetch_add(0, Ordering::AcqRel),
            made.load(Ordering::Acquire),
            "values of the box not dropped once each"
        );
    });
}
