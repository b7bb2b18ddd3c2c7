//! A `read_only` snapshot of a queue does not see pushes committed after its snapshot, even
//! once they are linked: `peek` and `is_empty` in the snapshot answer for the queue as it was
//! (as `len` and `iter` do), so that they agree with each other and with every other variable
//! the snapshot reads.
//!
//! A snapshot's reads do not check versions as a transaction's do, so a walk that followed the
//! sentinel's link without first asking the snapshot's `tail` would return an item pushed by a
//! later commit. The other snapshot tests read with `iter`/`len`, which stop at the tail.

mod common;

use commute::{TBoundedQueue, TQueue, TVar, atomically, read_only};
use std::sync::Arc;
use std::sync::mpsc;

/// In a snapshot: reads the queue (through `before`), lets `push` commit on another thread and
/// waits for it, then reads the queue again (through `after`), once per attempt that runs the
/// closure (the push happens in the first only). Returns both readings.
fn around_a_later_push<Q: Send + Sync + 'static, R: Send>(
    q: &Arc<Q>,
    before: impl Fn(&commute::Transaction, &Q) -> commute::StmResult<R>,
    after: impl Fn(&commute::Transaction, &Q) -> commute::StmResult<R>,
    push: impl FnOnce(&Q) + Send + 'static,
) -> (R, R) {
    let (go, wait_go) = mpsc::channel::<()>();
    let (done, wait_done) = mpsc::channel::<()>();
    let pusher = {
        let q = q.clone();
        std::thread::spawn(move || {
            wait_go.recv().unwrap();
            push(&q);
            done.send(()).unwrap();
        })
    };
    let mut go = Some(go);
    let readings = read_only(|tx| {
        let first = before(tx, q)?;
        if let Some(go) = go.take() {
            go.send(()).unwrap();
            // The push has committed (and linked its node) when this returns.
            wait_done.recv().unwrap();
        }
        let second = after(tx, q)?;
        Ok((first, second))
    });
    pusher.join().unwrap();
    readings
}

#[test]
fn an_empty_queue_stays_empty_in_a_snapshot_taken_before_a_push() {
    common::with_watchdog(20, || {
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        let (before, after) = around_a_later_push(
            &q,
            |tx, q| Ok((q.is_empty(tx)?, q.peek(tx)?, q.len(tx)?)),
            |tx, q| Ok((q.is_empty(tx)?, q.peek(tx)?, q.len(tx)?)),
            |q| q.atomic().push(7),
        );
        assert_eq!(before, (true, None, 0));
        assert_eq!(after, (true, None, 0), "the snapshot saw a later push");
        assert_eq!(q.atomic().iter(), [7]);
    });
}

#[test]
fn a_snapshot_agrees_with_a_variable_written_with_the_push() {
    common::with_watchdog(20, || {
        // Each push also counts itself in `pushes`, in the same transaction: in any consistent
        // state, `peek` finds an item exactly when `pushes` is above zero (nothing is popped).
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        let pushes = Arc::new(TVar::new(0u32));
        let counted = pushes.clone();
        let (before, after) = around_a_later_push(
            &q,
            |tx, q| Ok((pushes.read(tx)?, q.peek(tx)?, q.is_empty(tx)?)),
            |tx, q| Ok((pushes.read(tx)?, q.peek(tx)?, q.is_empty(tx)?)),
            move |q| {
                atomically(|tx| {
                    q.push(tx, 1);
                    counted.modify(tx, |n| n + 1)
                });
            },
        );
        assert_eq!(before, (0, None, true));
        let (seen_pushes, peeked, empty) = after;
        assert_eq!(seen_pushes, 0, "the snapshot's variable");
        assert_eq!(
            (peeked, empty),
            (None, true),
            "the snapshot's queue must agree with its variable"
        );
    });
}

#[test]
fn a_queue_with_items_shows_the_snapshots_front_and_length() {
    common::with_watchdog(20, || {
        // The front item is popped and another pushed after the snapshot: the snapshot still
        // peeks the old front, and counts the old length.
        let q: Arc<TQueue<u32>> = Arc::new(TQueue::new());
        q.atomic().push(1);
        let (before, after) = around_a_later_push(
            &q,
            |tx, q| Ok((q.peek(tx)?, q.len(tx)?, q.iter(tx)?)),
            |tx, q| Ok((q.peek(tx)?, q.len(tx)?, q.iter(tx)?)),
            |q| {
                q.atomic().push(2);
                assert_eq!(q.atomic().pop(), Some(1));
            },
        );
        assert_eq!(before, (Some(1), 1, vec![1]));
        assert_eq!(after, before);
        assert_eq!(q.atomic().iter(), [2]);
    });
}

#[test]
fn a_bounded_queue_snapshot_does_not_see_later_pushes_either() {
    common::with_watchdog(20, || {
        let q: Arc<TBoundedQueue<u32>> = Arc::new(TBoundedQueue::with_capacity(4));
        let (before, after) = around_a_later_push(
            &q,
            |tx, q| Ok((q.is_empty(tx)?, q.peek(tx)?)),
            |tx, q| Ok((q.is_empty(tx)?, q.peek(tx)?)),
            |q| q.atomic().push(9),
        );
        assert_eq!(before, (true, None));
        assert_eq!(after, (true, None), "the snapshot saw a later push");
        assert_eq!(q.atomic().iter(), [9]);
    });
}
