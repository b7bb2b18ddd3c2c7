//! `TBoundedQueue::try_push` gives the item back on a closed queue even when there is room.
//!
//! The channel test that checks `try_push` after `close` does so on a full queue, so the item
//! comes back for want of room whether or not the close is looked at; here the queue has room,
//! and only the close refuses the item. An item accepted after the close would land where
//! receivers that saw the queue closed and drained never look.

//!
//! Each test runs under a watchdog: a `recv` that missed the close would block for ever.

use commute::{TBoundedQueue, atomically};
use commute_test_support::with_watchdog;

#[test]
fn try_push_on_a_closed_queue_with_room_gives_the_item_back() {
    with_watchdog(20, try_push_on_a_closed_queue_with_room);
}

fn try_push_on_a_closed_queue_with_room() {
    let q: TBoundedQueue<u32> = TBoundedQueue::with_capacity(8);
    assert_eq!(q.atomic().try_push(1), Ok(()));
    q.atomic().close();
    assert!(
        !q.atomic().is_full(),
        "there is room: only the close refuses"
    );
    assert_eq!(q.atomic().try_push(2), Err(2), "one call");
    assert_eq!(
        atomically(|tx| q.try_push(tx, 3)),
        Err(3),
        "in a transaction"
    );
    assert_eq!(q.atomic().len(), 1, "nothing was added after the close");
    assert_eq!(q.atomic().iter(), [1]);
    // Receivers drain what was sent before the close, then see it closed.
    assert_eq!(q.atomic().recv(), Some(1));
    assert_eq!(q.atomic().recv(), None);
    assert_eq!(q.atomic().try_push(4), Err(4), "closed and empty");
    assert!(q.atomic().is_empty());
}

#[test]
fn a_close_and_a_try_push_in_one_transaction_refuse_the_item() {
    with_watchdog(20, a_close_and_a_try_push_in_one_transaction);
}

fn a_close_and_a_try_push_in_one_transaction() {
    let q: TBoundedQueue<u32> = TBoundedQueue::with_capacity(4);
    let refused = atomically(|tx| {
        q.close(tx);
        q.try_push(tx, 5)
    });
    assert_eq!(refused, Err(5));
    assert!(q.atomic().is_empty());
    assert_eq!(q.atomic().recv(), None);
}
