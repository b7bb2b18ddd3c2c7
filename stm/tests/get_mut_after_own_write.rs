//! `TBox::get_mut` inside a transaction that has written the box gives the committed value.
//! With no other thread inside `atomically`, the box stays where it is and the pending write
//! is committed after the borrow. With another thread inside `atomically`, the box moves to a
//! fresh block and the pending write is dropped with the old one: the attempt must let go of
//! that block and commit at once (its other writes included), not abort on the dead block.

#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;

use commute_stm::{TBox, TVar, atomically};
use commute_test_support::{Counted, with_watchdog};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

/// Reclaims until `live` values remain, failing after a deadline.
fn settle(live: &AtomicUsize, expected: usize) {
    reclaim_until(&format!("only {expected} values live"), || {
        live.load(Ordering::SeqCst) == expected
    });
}

/// In one attempt: writes `other` and the box, then changes the box's committed value through
/// `get_mut`. Returns what `get_mut` saw and the number of attempts.
fn write_then_get_mut(
    b: &mut TBox<Counted>,
    other: &TVar<u64>,
    live: &Arc<AtomicUsize>,
) -> (u64, u32) {
    let mut attempts = 0;
    let seen = atomically(|tx| {
        attempts += 1;
        other.modify(tx, |o| o + 1)?;
        if attempts > 1 {
            return Ok(None); // only the first attempt writes the box
        }
        b.write(tx, Counted::new(2, live));
        let value = b.get_mut();
        let seen = value.value();
        *value = Counted::new(seen + 10, live);
        Ok(Some(seen))
    });
    (seen.unwrap_or(u64::MAX), attempts)
}

#[test]
fn get_mut_after_a_write_of_the_same_attempt() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let other = TVar::new(0u64);
        // Alone: the pending write is committed after the borrow.
        let mut b = TBox::new(Counted::new(1, &live));
        assert_eq!(write_then_get_mut(&mut b, &other, &live), (1, 1));
        assert_eq!(b.load_with(Counted::value), 2);
        assert_eq!(other.load(), 1);
        drop(b);
        settle(&live, 0);

        // Another thread inside `atomically` meanwhile: the box moves, the pending write goes.
        let (inside, is_inside) = mpsc::channel();
        let (leave, wait_leave) = mpsc::channel::<()>();
        let busy = std::thread::spawn(move || {
            atomically(|_| {
                let _ = inside.send(());
                let _ = wait_leave.recv();
                Ok(())
            })
        });
        is_inside.recv().unwrap();
        let mut b = TBox::new(Counted::new(1, &live));
        let got = write_then_get_mut(&mut b, &other, &live);
        leave.send(()).unwrap();
        busy.join().unwrap();
        assert_eq!(
            got,
            (1, 1),
            "get_mut saw the committed value, in one attempt"
        );
        assert_eq!(
            b.load_with(Counted::value),
            11,
            "the change through get_mut"
        );
        assert_eq!(other.load(), 2);
        drop(b);
        settle(&live, 0);
    });
}
