//! `drop_outside`: a value let go of inside a transaction or a pin is dropped once the thread is
//! outside both, where its `Drop` may use commute.

use commute_stm::{TVar, atomically, drop_outside, pinned, try_atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts its drops, which run a transaction and wait for readers (as a queue's
/// `Taken::into_inner` does): either panics inside a transaction or a pin.
struct UsesCommute {
    drops: Arc<AtomicUsize>,
    log: Arc<TVar<u64>>,
}

impl UsesCommute {
    fn new(drops: &Arc<AtomicUsize>, log: &Arc<TVar<u64>>) -> Self {
        UsesCommute {
            drops: drops.clone(),
            log: log.clone(),
        }
    }
}

impl Drop for UsesCommute {
    fn drop(&mut self) {
        atomically(|tx| self.log.modify(tx, |n| n + 1));
        commute_stm::wait_for_readers(commute_stm::version_bound());
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Lets go of `value` in a pin whose code then panics; catches the panic.
fn let_go_of_in_a_pin_that_panics(value: UsesCommute) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        pinned(|| {
            drop_outside(value);
            panic!("the pinned code panics");
        })
    }));
    assert!(r.is_err());
}

fn counters() -> (Arc<AtomicUsize>, Arc<TVar<u64>>) {
    (Arc::new(AtomicUsize::new(0)), Arc::new(TVar::new(0)))
}

#[test]
fn outside_transactions_and_pins_a_value_is_dropped_at_once() {
    let (drops, log) = counters();
    drop_outside(UsesCommute::new(&drops, &log));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(log.load(), 1);
}

#[test]
fn inside_a_transaction_a_value_is_dropped_once_the_attempt_has_ended() {
    let (drops, log) = counters();
    let v = TVar::new(0u64);
    atomically(|tx| {
        drop_outside(UsesCommute::new(&drops, &log));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "not yet");
        v.write(tx, 1);
        Ok(())
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    // Rolled back: its values too are dropped once it has ended.
    let failed: Result<(), ()> = try_atomically(|tx| {
        drop_outside(UsesCommute::new(&drops, &log));
        v.write(tx, 2);
        tx.abort(())
    });
    assert!(failed.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!((v.load(), log.load()), (1, 2));
}

#[test]
fn inside_a_pin_a_value_is_dropped_once_the_outermost_pin_has_ended() {
    let (drops, log) = counters();
    pinned(|| {
        pinned(|| drop_outside(UsesCommute::new(&drops, &log)));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "still pinned");
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(log.load(), 1);
}

#[test]
fn a_value_let_go_of_in_a_pin_that_panics_is_dropped_when_the_next_pin_ends() {
    let (drops, log) = counters();
    let_go_of_in_a_pin_that_panics(UsesCommute::new(&drops, &log));
    assert_eq!(drops.load(Ordering::SeqCst), 0, "not while unwinding");
    pinned(|| ());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// A transaction run inside a pin (here by `pinned`'s closure; as by a value's `Clone` in a
/// collection's one-call lookup): the value it wrote and then replaced, which its end frees,
/// is dropped once the pin has ended. It was dropped inside the pin before, where its `Drop`
/// could not wait for readers (it panicked).
#[test]
fn what_a_transaction_inside_a_pin_frees_is_dropped_once_the_pin_has_ended() {
    let (drops, log) = counters();
    let b = commute_stm::TBox::new(None::<UsesCommute>);
    pinned(|| {
        atomically(|tx| {
            b.write(tx, Some(UsesCommute::new(&drops, &log)));
            b.write(tx, None);
            Ok(())
        });
        assert_eq!(drops.load(Ordering::SeqCst), 0, "still pinned");
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(log.load(), 1);
}

/// Panics in its `Drop`.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the value's drop panics");
    }
}

/// Values let go of in a pin are each dropped when it ends, even past two whose `Drop`
/// panics (dropped together, the second panic aborted the process); the first panic passes on.
#[test]
fn values_let_go_of_in_a_pin_are_all_dropped_past_panics() {
    commute_test_support::in_child_process(|| {
        let (drops, log) = counters();
        let r = catch_unwind(AssertUnwindSafe(|| {
            pinned(|| {
                drop_outside(PanicsWhenDropped);
                drop_outside(PanicsWhenDropped);
                drop_outside(UsesCommute::new(&drops, &log));
            })
        }));
        assert!(r.is_err(), "the first panic passes on");
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// A value let go of in a pin that ended in a panic is dropped on the way out of the thread's
/// next `atomically`.
#[test]
fn a_value_left_by_a_panicking_pin_is_dropped_after_the_next_transaction() {
    let (drops, log) = counters();
    let_go_of_in_a_pin_that_panics(UsesCommute::new(&drops, &log));
    assert_eq!(drops.load(Ordering::SeqCst), 0, "not while unwinding");
    atomically(|_| Ok(()));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// A thread that exits after such a pin, with no pin, pass or transaction since, keeps the
/// value undropped for the process's life: its `Drop` may use commute, whose thread-local
/// state is going (dropped there, it aborted the process).
#[test]
fn a_value_left_by_a_panicking_pin_on_an_exiting_thread_is_kept_not_dropped_in_teardown() {
    commute_test_support::in_child_process(|| {
        let (drops, log) = counters();
        let value = UsesCommute::new(&drops, &log);
        std::thread::spawn(move || {
            let_go_of_in_a_pin_that_panics(value);
        })
        .join()
        .expect("the thread exits cleanly");
        assert_eq!(drops.load(Ordering::SeqCst), 0, "kept, not dropped");
    });
}
