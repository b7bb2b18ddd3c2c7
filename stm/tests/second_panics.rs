//! A second panic in a series of destructors and hooks that the library runs outside a
//! transaction: every one still runs, the first panic passes on, and nothing aborts. Both tests
//! failed before (a reviewer's): a second hook's payload whose `Drop` panicked stopped the
//! hooks after it, and two values let go of with `drop_outside` whose `Drop`s panicked aborted
//! the process (the second panicked while the first unwound).

use commute_stm::{atomically, drop_outside};
use commute_test_support::panic_message;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A panic payload whose `Drop` panics (when not dropped during an unwinding).
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a payload's drop");
        }
    }
}

#[test]
fn a_hook_runs_after_a_panicking_hook_whose_payload_panics_when_dropped() {
    let ran = Arc::new(AtomicBool::new(false));
    let out = catch_unwind(AssertUnwindSafe(|| {
        atomically(|tx| {
            tx.on_commit(|| panic!("first hook"));
            tx.on_commit(|| std::panic::panic_any(Bomb));
            let ran = ran.clone();
            tx.on_commit(move || ran.store(true, Ordering::SeqCst));
            Ok(())
        })
    }));
    let payload = out.expect_err("a hook panicked");
    assert!(ran.load(Ordering::SeqCst), "the third hook ran");
    assert_eq!(panic_message(&*payload), "first hook");
}

/// Panics whenever dropped, counting its drops.
struct Panicky(&'static str, Arc<AtomicUsize>);

impl Drop for Panicky {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        panic!("{}", self.0);
    }
}

#[test]
fn values_let_go_of_whose_drops_panic_are_each_dropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    let out = catch_unwind(AssertUnwindSafe(|| {
        atomically(|_| {
            drop_outside(Panicky("one", drops.clone()));
            drop_outside(Panicky("two", drops.clone()));
            Ok(())
        })
    }));
    let payload = out.expect_err("a drop panicked");
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(panic_message(&*payload), "one");
}
