//! A transaction that read a variable before another transaction pushed an item and wrote that
//! variable, and then looks at the queue, must not see the new item beside the variable's old
//! value: the item was published by a commit after its snapshot, and following the link to it
//! must either bring the snapshot past that commit (the variable read again, in a new attempt)
//! or abort. A read-only transaction (a `peek`, an `is_empty`) commits without validation, so
//! a view that mixes both states would be returned as it is.

mod common;

use commute::{TQueue, TVar, atomically};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};

#[test]
fn a_peek_never_sees_an_item_pushed_after_its_snapshot_beside_older_values() {
    common::with_watchdog(30, || {
        for round in 0..20u32 {
            let q = Arc::new(TQueue::new());
            // How many items were pushed: written by the transaction that pushes.
            let pushed = Arc::new(TVar::new(0u32));
            let go = Arc::new(Barrier::new(2));
            let (done_tx, done) = mpsc::channel();
            let pusher = {
                let (q, pushed, go) = (q.clone(), pushed.clone(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    atomically(|tx| {
                        q.push(tx, round);
                        pushed.write(tx, 1);
                        Ok(())
                    });
                    done_tx.send(()).unwrap();
                })
            };
            let mut first = true;
            let seen = atomically(|tx| {
                let count = pushed.read(tx)?;
                if std::mem::take(&mut first) {
                    // The push commits after this attempt's snapshot, before it looks at the queue.
                    go.wait();
                    done.recv().unwrap();
                }
                Ok((count, q.peek(tx)?, q.is_empty(tx)?))
            });
            pusher.join().unwrap();
            assert!(
                seen == (0, None, true) || seen == (1, Some(round), false),
                "round {round}: a view that mixes states: {seen:?}"
            );
        }
    });
}
