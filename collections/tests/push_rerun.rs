//! A one-call push whose commit meets the irrevocable transaction holding the queue's tail
//! waits for it (counted as a lock-busy abort, where a transaction's commit would abort): the item
//! must still be pushed, once, and nothing may panic.

use commute::{TQueue, TVar, atomically, stats};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::sync::mpsc;

#[test]
fn an_atomic_push_that_meets_the_irrevocable_transaction_lands_once() {
    with_watchdog(60, || {
        let q: Arc<TQueue<Box<u64>>> = Arc::new(TQueue::new());
        let x = Arc::new(TVar::new(0u64));
        let (to_writer, writer_rx) = mpsc::channel::<()>();
        let (writer_done, wrote) = mpsc::channel::<()>();
        // Commits a write of `x` whenever asked: each makes the holder's attempt conflict.
        let writer = {
            let x = x.clone();
            std::thread::spawn(move || {
                while writer_rx.recv().is_ok() {
                    atomically(|tx| x.modify(tx, |v| v + 1));
                    writer_done.send(()).unwrap();
                }
            })
        };
        let (to_pusher, pusher_rx) = mpsc::channel::<()>();
        let pusher = {
            let q = q.clone();
            std::thread::spawn(move || {
                pusher_rx.recv().unwrap();
                q.atomic().push(Box::new(7));
            })
        };
        let lock_busy_before = stats::snapshot().aborts_lock_busy;
        let mut told_pusher = false;
        let y = TVar::new(0u64);
        atomically(|tx| {
            x.read(tx)?;
            y.write(tx, 1); // not read-only: the commit validates the read of `x`
            if !tx.is_irrevocable() {
                // Conflict: another commit of `x` before this attempt commits.
                to_writer.send(()).unwrap();
                wrote.recv().unwrap();
                return Ok(());
            }
            // Irrevocable: the empty queue's pop locks its tail until this transaction ends.
            assert_eq!(q.pop(tx)?, None);
            if !told_pusher {
                told_pusher = true;
                to_pusher.send(()).unwrap();
                // Hold on until the push's commit has met the lock at least once.
                while stats::snapshot().aborts_lock_busy == lock_busy_before {
                    std::thread::yield_now();
                }
            }
            Ok(())
        });
        drop(to_writer);
        pusher
            .join()
            .expect("the push must not panic when it waits for the lock");
        writer.join().unwrap();
        assert_eq!(q.atomic().pop(), Some(Box::new(7)));
        assert_eq!(q.atomic().pop(), None);
    });
}
