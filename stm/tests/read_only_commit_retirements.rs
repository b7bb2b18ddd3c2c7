//! A value retired by an attempt that writes nothing (`Transaction::retire_on_commit` in a
//! read-only commit, for a value that an earlier commit unlinked) is retired at the next clock
//! value: a pinned transaction that began before may still be reading it, and it stays alive
//! until that transaction ends.

#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;

use commute_stm::{TVar, atomically, reclaim_retired};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

fn boxed(value: u64, live: &Arc<AtomicUsize>) -> u64 {
    Box::into_raw(Box::new(Counted::new(value, live))) as usize as u64
}

#[test]
fn a_value_retired_by_a_read_only_commit_outlives_pinned_transactions_that_began_before() {
    with_watchdog(30, || {
        let live = Arc::new(AtomicUsize::new(0));
        let first = boxed(1, &live);
        let slot = Arc::new(TVar::new(first));
        let (read, has_read) = mpsc::channel();
        let (go, wait) = mpsc::channel::<()>();
        let reader = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                let mut attempts = 0;
                atomically(|tx| {
                    attempts += 1;
                    tx.pin();
                    let p = slot.read(tx)? as usize as *const Counted;
                    if attempts == 1 {
                        read.send(()).unwrap();
                        if wait.recv().is_err() {
                            return Ok(0); // the test gave up: do not touch `p`
                        }
                    }
                    // SAFETY: read in this pinned attempt: alive until it ends.
                    Ok(unsafe { (*p).value() })
                })
            })
        };
        has_read.recv().expect("the reader read the slot");
        // An ordinary commit unlinks `first`; then an attempt that writes nothing retires it.
        let second = boxed(2, &live);
        atomically(|tx| {
            slot.write(tx, second);
            Ok(())
        });
        atomically(|tx| {
            // SAFETY: unlinked by the commit above, boxed, retired once (nothing read: the
            // closure commits in its first attempt).
            unsafe { tx.retire_on_commit(first as usize as *mut Counted) };
            Ok(())
        });
        for _ in 0..20 {
            reclaim_retired();
            std::thread::yield_now();
        }
        assert_eq!(
            live.load(Ordering::Relaxed),
            2,
            "a value retired by a read-only commit was freed under a pinned transaction that \
             began before it"
        );
        go.send(()).unwrap();
        // The reader wrote nothing: it commits at its snapshot, with the value it read there.
        assert_eq!(reader.join().unwrap(), 1);
        reclaim_until("the retired value freed", || {
            live.load(Ordering::Relaxed) == 1
        });
        // SAFETY: the slot's box, reachable from nothing else now.
        drop(unsafe { Box::from_raw(slot.load() as usize as *mut Counted) });
        assert_eq!(live.load(Ordering::Relaxed), 0);
    });
}
