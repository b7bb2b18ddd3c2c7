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

/// A panic payload whose `Drop` panics always, during an unwinding too.
struct BombAlways;

impl Drop for BombAlways {
    fn drop(&mut self) {
        panic!("a payload's drop, always");
    }
}

/// A value whose `Drop` panics with a [`BombAlways`] payload.
struct Thrower(Arc<AtomicUsize>);

impl Drop for Thrower {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::panic::panic_any(BombAlways);
    }
}

/// The closure panics; what the attempt let go of is dropped during that unwinding, and a
/// panic in its `Drop` is not passed on (the closure's is): its payload was dropped as the
/// unwinding went on, and a panic of that drop aborted the process (a reviewer's test, with
/// the next one, in a child process each; both aborted before).
#[test]
fn a_panic_in_a_drop_during_an_unwinding_is_dropped_under_catch_unwind() {
    commute_test_support::in_child_process(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let out = catch_unwind(AssertUnwindSafe(|| {
            atomically(|_| -> commute_stm::StmResult<()> {
                drop_outside(Thrower(drops.clone()));
                panic!("the closure");
            })
        }));
        assert_eq!(
            panic_message(&*out.expect_err("it panicked")),
            "the closure"
        );
        let out = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| -> commute_stm::StmResult<()> {
                let thrower = Thrower(drops.clone());
                tx.on_commit(move || drop(thrower));
                panic!("the closure");
            })
        }));
        assert_eq!(
            panic_message(&*out.expect_err("it panicked")),
            "the closure"
        );
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}

/// A waker that panics with a [`BombAlways`] payload.
struct BombWaker;

impl std::task::Wake for BombWaker {
    fn wake(self: Arc<Self>) {
        std::panic::panic_any(BombAlways);
    }
}

/// The wakers a commit woke are called at the end of its `atomically`, here while a commit
/// hook's panic unwinds out of it; a waker's panic is then not passed on, and its payload was
/// dropped as the unwinding went on.
#[test]
fn a_wakers_panic_during_an_unwinding_is_dropped_under_catch_unwind() {
    commute_test_support::in_child_process(|| {
        use std::future::Future;
        let x = Arc::new(commute_stm::TVar::new(0u32));
        let mut fut = Box::pin(commute_stm::atomically_async({
            let x = x.clone();
            move |tx| if x.read(tx)? == 0 { tx.retry() } else { Ok(()) }
        }));
        let waker = std::task::Waker::from(Arc::new(BombWaker));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        let out = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| {
                x.write(tx, 1);
                tx.on_commit(|| panic!("the hook"));
                Ok(())
            })
        }));
        assert_eq!(panic_message(&*out.expect_err("it panicked")), "the hook");
        drop(fut);
    });
}
