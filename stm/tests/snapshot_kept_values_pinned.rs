//! A value that a commit kept for a snapshot reader (a `TBox`'s old value, taken over by the
//! kept version) is still the value that ordinary transactions which began before that commit
//! may be reading. Once the snapshot has ended and a later commit lets go of the kept version,
//! the value must still wait, as any value the commit replaced would, for the pinned
//! transactions that began before the commit that replaced it.

#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;

use commute_stm::{TBox, atomically, read_only, reclaim_retired};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

#[test]
fn a_kept_value_let_go_of_outlives_pinned_transactions_that_began_before_it_was_replaced() {
    with_watchdog(30, || {
        let live = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(TBox::new(Counted::new(0, &live)));
        // An ordinary transaction reads the first value (`TBox::read` pins) and waits.
        let (read, has_read) = mpsc::channel();
        let (go, wait) = mpsc::channel::<()>();
        let pinned = {
            let b = b.clone();
            std::thread::spawn(move || {
                let mut attempts = 0;
                atomically(|tx| {
                    attempts += 1;
                    let value = b.read(tx)?;
                    if attempts == 1 {
                        read.send(()).unwrap();
                        if wait.recv().is_err() {
                            return Ok(u64::MAX); // the test gave up: do not touch `value`
                        }
                    }
                    Ok(value.value())
                })
            })
        };
        has_read
            .recv()
            .expect("the pinned transaction read the box");
        // A snapshot reader registers; the next commit keeps the first value for it.
        let (registered, is_registered) = mpsc::channel();
        let (release, wait_release) = mpsc::channel::<()>();
        let snapshot = {
            let b = b.clone();
            std::thread::spawn(move || {
                read_only(|tx| {
                    let _ = registered.send(());
                    if wait_release.recv().is_err() {
                        return Ok(u64::MAX);
                    }
                    Ok(b.read(tx)?.value())
                })
            })
        };
        is_registered.recv().expect("the snapshot registers");
        atomically(|tx| {
            b.write(tx, Counted::new(1, &live));
            Ok(())
        });
        release.send(()).unwrap();
        assert_eq!(snapshot.join().unwrap(), 0, "the snapshot's value");
        // No reader left: this commit lets go of the kept version (and retires value 1).
        atomically(|tx| {
            b.write(tx, Counted::new(2, &live));
            Ok(())
        });
        for _ in 0..20 {
            reclaim_retired();
            std::thread::yield_now();
        }
        assert_eq!(
            live.load(Ordering::Relaxed),
            3,
            "a value kept for a snapshot was freed under a pinned transaction that read it \
             before the commit that replaced it"
        );
        go.send(()).unwrap();
        // The pinned transaction wrote nothing: it commits with the value it read.
        assert_eq!(pinned.join().unwrap(), 0);
        reclaim_until("the replaced values freed", || {
            live.load(Ordering::Relaxed) == 1
        });
        drop(b);
        reclaim_until("the last value freed", || live.load(Ordering::Relaxed) == 0);
    });
}
