//! Loom model of heap values (`TBox`): deferred reclamation never frees a value still in use.
#![cfg(loom)]

use commute_loom_tests::{run_model, settle};
use commute_stm::{TBox, atomically, reclaim_retired};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// A heap value whose reads and drop loom checks.
///
/// Reads go through a loom `UnsafeCell`, which the drop writes: a drop that is not ordered
/// after every read (use after free) is a causality violation, and so is a read of a value
/// whose creation it does not see (unsafe publication). The drop also counts itself, and the
/// loom `Arc` it holds makes loom report a value that is never freed.
#[repr(C)]
struct Payload {
    // Padding first: the allocator reuses the first words of a freed block, and a read of a
    // freed payload should still find the cell's loom identity intact to report the race.
    _pad: [u64; 2],
    id: UnsafeCell<u64>,
    drops: Arc<AtomicUsize>,
}

// SAFETY: shared references only read the cell; the one write is in `drop`, which has `&mut`.
unsafe impl Sync for Payload {}

const FREED: u64 = u64::MAX;

impl Payload {
    fn new(id: u64, drops: &Arc<AtomicUsize>) -> Self {
        Payload {
            _pad: [0; 2],
            id: UnsafeCell::new(id),
            drops: drops.clone(),
        }
    }

    fn id(&self) -> u64 {
        // SAFETY: only `drop` writes the cell; loom checks that it does not race with us.
        let id = self.id.with(|p| unsafe { *p });
        assert_ne!(id, FREED, "read a freed payload");
        id
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        // SAFETY: loom checks that no read of the cell is concurrent with this write.
        self.id.with_mut(|p| unsafe { *p = FREED });
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

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
