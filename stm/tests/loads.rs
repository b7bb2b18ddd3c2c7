//! One rule for the readers that work outside transactions: inside one they panic (they would
//! read outside it, unseen by conflict detection); exclusive access reads anywhere.

use commute_stm::{TBox, TVar, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

/// Taken by every test here: two check when reclamation frees a value, and reclamation is
/// global, so a pin held by another test (a transaction's, or a panic hook's running while its
/// thread is pinned) could keep that value alive.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn panics_inside_a_transaction(what: &str, f: impl Fn()) {
    let _serial = serial();
    let r = atomically(|_| Ok(catch_unwind(AssertUnwindSafe(&f)).is_err()));
    assert!(r, "{what} did not panic inside a transaction");
    f(); // and works outside
}

#[test]
fn tvar_load_panics_inside_a_transaction() {
    let v = TVar::new(1u32);
    panics_inside_a_transaction("TVar::load", || {
        v.load();
    });
}

#[test]
fn tbox_load_panics_inside_a_transaction() {
    let b = TBox::new(String::from("x"));
    panics_inside_a_transaction("TBox::load", || {
        b.load();
    });
    panics_inside_a_transaction("TBox::load_with", || {
        b.load_with(|s| s.len());
    });
}

#[test]
fn exclusive_access_reads_anywhere() {
    let _serial = serial();
    let got = atomically(|tx| {
        let mut v = TVar::new(5u32);
        let first = v.load_mut();
        let w = TVar::new(6u32);
        w.read(tx)?;
        Ok((first, w.into_inner()))
    });
    assert_eq!(got, (5, 6));
}

#[test]
fn debug_output_inside_a_transaction_reads_nothing() {
    let _serial = serial();
    let v = TVar::new(9u32);
    let inside = atomically(|_| Ok(format!("{v:?}")));
    assert!(inside.contains("<in a transaction>"), "{inside}");
    assert!(format!("{v:?}").contains('9'));
}

/// A value whose drop is recorded.
struct Tracked(Arc<AtomicBool>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A transaction run inside `TBox::load_with`'s closure must not take away the pin that keeps
/// the borrowed value alive: once it ends, another thread replaces the value and reclaims; the
/// borrowed value must still be there until the closure returns.
#[test]
fn a_transaction_inside_load_with_keeps_the_value_pinned() {
    let _serial = serial();
    let dropped = Arc::new(AtomicBool::new(false));
    let b = Arc::new(TBox::new(Tracked(dropped.clone())));
    // A `TBox`: reading it pins the transaction.
    let other = TBox::new(1u32);
    let (go, went) = mpsc::channel::<()>();
    let (done, finished) = mpsc::channel::<()>();
    let replacer = {
        let b = b.clone();
        std::thread::spawn(move || {
            went.recv().unwrap();
            atomically(|tx| {
                b.write(tx, Tracked(Arc::new(AtomicBool::new(false))));
                Ok(())
            });
            commute_stm::reclaim_retired();
            done.send(()).unwrap();
        })
    };
    let alive_at_end = b.load_with(|_value| {
        assert_eq!(atomically(|tx| Ok(*other.read(tx)?)), 1);
        go.send(()).unwrap();
        finished.recv().unwrap();
        !dropped.load(Ordering::SeqCst)
    });
    replacer.join().unwrap();
    assert!(
        alive_at_end,
        "the value borrowed by load_with was freed while borrowed"
    );
    commute_stm::reclaim_retired();
    assert!(
        dropped.load(Ordering::SeqCst),
        "freed once the borrow ended"
    );
}

/// A panic inside `TBox::load_with`'s closure (or `pinned`'s) ends the pin it took: afterwards
/// another thread replaces the value and reclaims, and the old value is freed at once. A pin
/// left behind would keep it (and everything retired after it) alive for good.
#[test]
fn a_panic_inside_load_with_ends_its_pin() {
    let _serial = serial();
    let dropped = Arc::new(AtomicBool::new(false));
    let b = Arc::new(TBox::new(Tracked(dropped.clone())));
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        b.load_with(|_value| -> u32 { panic!("inside load_with") })
    }));
    assert!(panicked.is_err());
    let panicked = catch_unwind(|| commute_stm::pinned(|| -> u32 { panic!("inside pinned") }));
    assert!(panicked.is_err());
    let replacer = {
        let b = b.clone();
        std::thread::spawn(move || {
            atomically(|tx| {
                b.write(tx, Tracked(Arc::new(AtomicBool::new(false))));
                Ok(())
            });
            commute_stm::reclaim_retired();
        })
    };
    replacer.join().unwrap();
    assert!(
        dropped.load(Ordering::SeqCst),
        "the replaced value was not freed: the panic left this thread pinned"
    );
    // And pins still nest and end as before.
    assert_eq!(b.load_with(|_| commute_stm::pinned(|| 7)), 7);
}
