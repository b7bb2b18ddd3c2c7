//! The async driver and the code of its users that it runs: wakers (their `wake`, `clone` and
//! `Drop`), commit and abort hooks, and a future polled where it must not be. Each test failed
//! before its fix: the first hung (caught by its watchdog), the second committed a transaction
//! twice, the third returned `Pending` instead of its documented panic, the fourth left its
//! future pending, never woken; the later ones say what they caught.

use commute_stm::{TBox, TVar, atomically, atomically_async, pinned, try_atomically_async};
use commute_test_support::{in_child_process, panic_message, with_watchdog};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};

/// A waker whose last handle's drop commits to `v`.
struct CommitsOnDrop {
    v: Arc<TVar<u64>>,
}

impl Wake for CommitsOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for CommitsOnDrop {
    fn drop(&mut self) {
        atomically(|tx| {
            self.v.write(tx, 1);
            Ok(())
        });
    }
}

/// A future that waits until `v` is non-zero, and returns it.
fn nonzero(v: &TVar<u64>) -> impl Future<Output = u64> + '_ {
    atomically_async(move |tx| match v.read(tx)? {
        0 => tx.retry(),
        n => Ok(n),
    })
}

#[test]
fn a_replaced_waker_whose_drop_commits_to_the_variable_waited_on_wakes_the_future() {
    // In a child process: a hang would leave a stripe's mutex locked for good.
    in_child_process(|| {
        let got = with_watchdog(20, || {
            let v = Arc::new(TVar::new(0u64));
            let inner = v.clone();
            let mut future = pin!(nonzero(&inner));
            {
                let first = Waker::from(Arc::new(CommitsOnDrop { v: v.clone() }));
                assert!(
                    future
                        .as_mut()
                        .poll(&mut Context::from_waker(&first))
                        .is_pending()
                );
            } // the registration's clone is now the waker's last handle
            let mut cx = Context::from_waker(Waker::noop());
            // Replaces the stored waker, whose drop commits 1 and wakes the future.
            let replaced = future.as_mut().poll(&mut cx);
            assert!(replaced.is_pending());
            future.as_mut().poll(&mut cx)
        });
        assert_eq!(got, Poll::Ready(1));
    });
}

/// A waker that panics when woken.
struct PanicsWhenWoken;

impl Wake for PanicsWhenWoken {
    fn wake(self: Arc<Self>) {
        panic!("waker");
    }
}

#[test]
fn a_committed_future_whose_commit_woke_a_panicking_waker_does_not_run_again() {
    let (v, commits) = (TVar::new(0u64), TVar::new(0u64));
    let panicking = Waker::from(Arc::new(PanicsWhenWoken));
    let mut waiting = pin!(nonzero(&v));
    assert!(
        waiting
            .as_mut()
            .poll(&mut Context::from_waker(&panicking))
            .is_pending()
    );
    let mut writer = pin!(atomically_async(|tx| {
        v.write(tx, 1);
        commits.modify(tx, |n| n + 1)
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let first = catch_unwind(AssertUnwindSafe(|| writer.as_mut().poll(&mut cx)));
    assert!(
        first.is_err(),
        "the waker's panic passes on from the poll that woke it"
    );
    assert_eq!(commits.load(), 1);
    let again = catch_unwind(AssertUnwindSafe(|| writer.as_mut().poll(&mut cx)));
    assert!(again.is_err(), "a complete future polled again panics");
    assert_eq!(commits.load(), 1, "the transaction committed once");
}

#[test]
#[should_panic(expected = "polled inside a transaction")]
fn a_pending_future_polled_inside_a_transaction_panics() {
    let (v, other) = (TVar::new(0u64), TVar::new(0u64));
    let mut future = pin!(nonzero(&v));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    atomically(|tx| {
        other.read(tx)?;
        let _ = future.as_mut().poll(&mut cx);
        Ok(())
    });
}

#[test]
fn a_future_whose_attempt_retries_inside_a_pin_panics() {
    // Its only read is a variable of its own, which the values it wrote own: dropped once the
    // pin ends, it wakes nobody.
    let outer: TBox<Option<Arc<TVar<u64>>>> = TBox::new(None);
    let mut future = pin!(atomically_async(|tx| {
        let inner = Arc::new(TVar::new(0u64));
        outer.write(tx, Some(inner.clone()));
        if inner.read(tx)? == 0 {
            return tx.retry();
        }
        Ok(())
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let polled = catch_unwind(AssertUnwindSafe(|| {
        pinned(|| future.as_mut().poll(&mut cx))
    }));
    let payload = polled.expect_err("a retry that would wait inside a pin panics");
    let text = panic_message(&*payload);
    assert!(text.contains("inside a pin"), "{text}");
}

/// The second poll of a future whose poll panicked after its commit, as the documented panic of
/// a complete future polled again (or `None` if it returned).
fn poll_again<F: Future>(mut future: std::pin::Pin<&mut F>) -> Option<String> {
    let again = catch_unwind(AssertUnwindSafe(|| {
        future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }));
    again.err().map(|payload| panic_message(&*payload))
}

/// Before the fix the future was marked complete only after its commit's hooks had run: the
/// hook's panic left it runnable, and polled again it committed a second time.
#[test]
fn a_future_whose_commit_hook_panicked_does_not_commit_again() {
    let commits = TVar::new(0u64);
    let mut future = pin!(atomically_async(|tx| {
        commits.modify(tx, |n| n + 1)?;
        tx.on_commit(|| panic!("commit hook"));
        Ok(())
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let first = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
    assert!(first.is_err(), "the hook's panic passes on from the poll");
    assert_eq!(commits.load(), 1, "the attempt committed");
    let again = poll_again(future.as_mut());
    assert_eq!(commits.load(), 1, "the transaction committed twice");
    let text = again.expect("a complete future polled again panics");
    assert!(text.contains("polled after completion"), "{text}");
}

/// Before the fix a future that failed with its closure's error was marked complete only after
/// the abort hooks had run: the hook's panic left it runnable, and polled again it ran its
/// closure again, which committed this time.
#[test]
fn a_try_future_whose_abort_hook_panicked_does_not_run_again() {
    let commits = TVar::new(0u64);
    let calls = Cell::new(0u32);
    let mut future = pin!(try_atomically_async(|tx| {
        calls.set(calls.get() + 1);
        if calls.get() == 1 {
            // The first attempt refuses; its abort hook panics.
            tx.on_abort(|| panic!("abort hook"));
            return tx.abort("refused");
        }
        commits.modify(tx, |n| n + 1)?;
        Ok(())
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let first = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
    assert!(first.is_err(), "the hook's panic passes on from the poll");
    let again = poll_again(future.as_mut());
    assert_eq!(
        commits.load(),
        0,
        "the future ended with its closure's error, then committed when polled again"
    );
    let text = again.expect("a complete future polled again panics");
    assert!(text.contains("polled after completion"), "{text}");
    assert_eq!(calls.get(), 1);
}

/// What the `clone` of a [`cloned_with`] waker runs: foreign code, as a `RawWakerVTable`
/// function may run any.
struct OnClone(Box<dyn Fn() + Send + Sync>);

/// The vtable's `clone`: runs the `OnClone`.
///
/// # Safety
///
/// `data` is the `&'static OnClone` given to [`cloned_with`].
unsafe fn clone_running(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a leaked `OnClone`, alive for the rest of the process.
    let on_clone = unsafe { &*data.cast::<OnClone>() };
    (on_clone.0)();
    RawWaker::new(data, &CLONE_RUNNING)
}

unsafe fn do_nothing(_: *const ()) {}

static CLONE_RUNNING: RawWakerVTable =
    RawWakerVTable::new(clone_running, do_nothing, do_nothing, do_nothing);

/// A waker whose `clone` runs `on_clone`; waking or dropping it does nothing.
fn cloned_with(on_clone: impl Fn() + Send + Sync + 'static) -> Waker {
    let data: &'static OnClone = Box::leak(Box::new(OnClone(Box::new(on_clone))));
    // Kept reachable, so that memcheck's leak check passes over the test's own leak.
    static LEAKED: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    leaked.push(data as *const OnClone as usize);
    // SAFETY: the vtable keeps the `RawWaker` contract: its data lives for ever and is `Send +
    // Sync`, `clone` returns a waker of the same data and vtable, `wake`, `wake_by_ref` and
    // `drop` do nothing.
    unsafe {
        Waker::from_raw(RawWaker::new(
            (data as *const OnClone).cast(),
            &CLONE_RUNNING,
        ))
    }
}

/// Before the fix the new waker of a poll was cloned under the waiter's mutex, and a `clone`
/// that commits to a variable the future waits on locks that mutex to wake it: the poll
/// deadlocked (caught by the watchdog).
#[test]
fn a_new_waker_whose_clone_commits_to_the_variable_waited_on_wakes_the_future() {
    // In a child process: a hang would leave a mutex locked for good.
    in_child_process(|| {
        let got = with_watchdog(20, || {
            let v = Arc::new(TVar::new(0u64));
            let inner = v.clone();
            let mut future = pin!(nonzero(&inner));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(future.as_mut().poll(&mut cx).is_pending());
            let commits = cloned_with(move || {
                atomically(|tx| {
                    v.write(tx, 1);
                    Ok(())
                });
            });
            // Stores a clone of the new waker (another task's): its clone commits 1.
            match future.as_mut().poll(&mut Context::from_waker(&commits)) {
                Poll::Ready(n) => Poll::Ready(n),
                Poll::Pending => future.as_mut().poll(&mut cx),
            }
        });
        assert_eq!(got, Poll::Ready(1));
    });
}

/// Before the fix the poll's waker was cloned with the thread marked inside the transaction
/// that retried: a `clone` that runs a transaction of its own (here, one that counts the
/// clones) panicked as a nested transaction.
#[test]
fn a_waker_whose_clone_runs_a_transaction_can_wait() {
    static CLONES: AtomicU64 = AtomicU64::new(0);
    let counted = Arc::new(TVar::new(0u64));
    let waker = {
        let counted = counted.clone();
        cloned_with(move || {
            CLONES.fetch_add(1, Ordering::Relaxed);
            atomically(|tx| counted.modify(tx, |n| n + 1).map(drop));
        })
    };
    let v = TVar::new(0u64);
    let mut future = pin!(nonzero(&v));
    let polled = future.as_mut().poll(&mut Context::from_waker(&waker));
    assert_eq!(polled, Poll::Pending);
    assert_eq!(counted.load(), CLONES.load(Ordering::Relaxed));
}

/// Before the fix the waker was cloned while the registration held the attempt's variables
/// borrowed, between reading them and setting their `WAITERS` bit: a `clone` that lets go of
/// the last handle of a variable waited on freed it, and the registration then read and
/// CASed the freed lock word. A memcheck finding (the run itself passed):
///
/// `valgrind --error-exitcode=7 <debug async_user_code binary>
/// a_waker_clone_that_drops_the_variable_waited_on --exact --test-threads=1`
///
/// reported invalid reads in `Registration::register`; it is clean since.
#[test]
fn a_waker_clone_that_drops_the_variable_waited_on() {
    // Shared state, as an executor's bookkeeping: the variable's only long-lived handle.
    let door: &'static Mutex<Option<Arc<TVar<u64>>>> =
        Box::leak(Box::new(Mutex::new(Some(Arc::new(TVar::new(0u64))))));
    let mut future = pin!(atomically_async(|tx| {
        let var = door.lock().unwrap().clone();
        match var {
            Some(var) => match var.read(tx)? {
                0 => tx.retry(),
                n => Ok(n),
            },
            None => Ok(u64::MAX),
        }
    }));
    let waker = cloned_with(|| drop(door.lock().unwrap().take()));
    let polled = future.as_mut().poll(&mut Context::from_waker(&waker));
    // Whatever the poll returned, the variable is gone; fresh variables reuse its memory.
    let fresh: Vec<TVar<u64>> = (0..64).map(TVar::new).collect();
    for v in &fresh {
        atomically(|tx| v.modify(tx, |n| n + 1).map(drop));
    }
    assert!(matches!(polled, Poll::Pending | Poll::Ready(u64::MAX)));
}
