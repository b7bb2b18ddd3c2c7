//! A `take` of an empty `TBoundedQueue` gives no credit back: there was no item, so no credit
//! was taken for it. The queue then holds its capacity and not one item more, however many
//! empty takes came before (in transactions of their own or with other operations).

mod common;

use commute::{TBoundedQueue, atomically};

#[test]
fn takes_of_an_empty_bounded_queue_leave_its_capacity_alone() {
    common::with_watchdog(20, || {
        const CAP: usize = 2;
        let q: TBoundedQueue<Box<u32>> = TBoundedQueue::with_capacity(CAP);
        for _ in 0..4 {
            assert!(atomically(|tx| q.take(tx)).is_none());
            assert!(q.atomic().take().is_none());
        }
        // Empty takes in the transaction that pushes: still no credit made up.
        let full = atomically(|tx| {
            assert!(q.take(tx)?.is_none());
            q.try_push(tx, Box::new(0))?
                .expect("room for the first item");
            q.is_full(tx)
        });
        assert!(!full, "one item in a queue of {CAP}");
        let accepted = atomically(|tx| Ok(q.try_push(tx, Box::new(1))?.is_ok()));
        assert!(accepted, "room for the second item");
        assert!(q.atomic().is_full());
        let refused = atomically(|tx| Ok(q.try_push(tx, Box::new(2))?.is_err()));
        assert!(refused, "a full queue of {CAP} took a third item");
        assert_eq!(q.atomic().len(), CAP);
        // Emptied by takes, it holds exactly its capacity again.
        assert_eq!(*q.atomic().take().unwrap(), 0);
        assert_eq!(*q.atomic().take().unwrap(), 1);
        assert!(q.atomic().take().is_none());
        let accepted = (0..CAP + 2)
            .filter(|&i| atomically(|tx| Ok(q.try_push(tx, Box::new(i as u32))?.is_ok())))
            .count();
        assert_eq!(accepted, CAP);
    });
}
