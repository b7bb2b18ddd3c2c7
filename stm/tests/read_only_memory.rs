//! Memory of read-only snapshot transactions: an open snapshot holds back only the old values
//! it can still read, not the reclamation of everything replaced meanwhile. Alone in its test
//! binary: other tests' snapshot readers and pins would hold values back too.

use commute_stm::{TBox, atomically, read_only, reclaim_retired};
use commute_test_support::{Counted, spawn_counted, wait_for_more, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[test]
fn an_open_snapshot_holds_back_only_what_it_can_see() {
    with_watchdog(120, || {
        let live = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(TBox::new(Counted::new(0, &live)));
        let (stop, commits) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let most_alive = Arc::new(AtomicUsize::new(0));
        let w = {
            let (b, live, most) = (b.clone(), live.clone(), most_alive.clone());
            spawn_counted(&stop, &commits, move |i| {
                atomically(|tx| {
                    b.write(tx, Counted::new(i + 1, &live));
                    Ok(())
                });
                most.fetch_max(live.load(Ordering::Relaxed), Ordering::Relaxed);
            })
        };
        const WRITES: u64 = 50_000;
        let seen = read_only(|tx| {
            let before = b.read(tx)?.value();
            // 50,000 replacements while the snapshot stays open.
            wait_for_more(&commits, WRITES);
            assert_eq!(b.read(tx)?.value(), before, "the snapshot moved");
            Ok(before)
        });
        stop.store(true, Ordering::Release);
        w.join().unwrap();
        assert!(b.load_with(|c| c.value()) > seen);
        // Reclamation went on while the reader ran: the writer never saw more than a few
        // batches of replaced values alive (an ordinary pin would have kept all 50,000).
        let most = most_alive.load(Ordering::Relaxed);
        assert!(most < 1000, "{most} values alive at once");
        // With no reader left, the next commit of the box lets go of the value it kept.
        atomically(|tx| {
            b.write(tx, Counted::new(0, &live));
            Ok(())
        });
        reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), 1);
        drop(b);
        reclaim_retired();
        assert_eq!(live.load(Ordering::Relaxed), 0);
    });
}
