//! Async transactions: [`atomically_async`] and [`try_atomically_async`], futures that wait for
//! a `retry` by registering the task's `Waker` instead of blocking the thread.
//!
//! Every attempt runs synchronously inside `poll`, exactly as in [`atomically`](super::atomically):
//! the thread is marked inside `atomically` (and inside a transaction) only for the length of
//! one `poll`, and everything an attempt holds (read set, pin, irrevocable token, `attempt`
//! mark) is finished before `poll` returns. When an attempt retries, the future registers on
//! the variables the attempt read (`internal/async_wait.rs`, the blocking protocol with a waker
//! for the condition variable), stores its waker there once the thread has left `atomically` (a
//! waker's `clone` is foreign code) and returns `Pending`; if one of them changed meanwhile, it
//! runs the transaction again at once instead. A committer that changes one of them wakes the
//! task, whose next `poll` runs the transaction again. Dropping the pending future removes its
//! registration. The crate depends on no executor.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::panic::Location;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use super::TxError;
use super::{
    IRREVOCABLE_AFTER, IrrevocableToken, OutsideWhenUnwinding, StmResult, Transaction, TxResult,
    backoff, committed, drop_refused, ended, enter, nothing_to_wait_on, retry_in_pin, roll_back,
    roll_back_uncounted,
};
use crate::internal::async_wait::Registration;
use crate::internal::thread::{ThreadCtx, with_ctx};

/// Runs `f` as a transaction in a future: like [`atomically`](crate::atomically), but a
/// [`retry`](Transaction::retry) makes the future wait (`Poll::Pending`, the task woken by the
/// commit that changes a variable the attempt read) instead of blocking the thread.
///
/// The closure is the same synchronous closure as [`atomically`](crate::atomically)'s, and
/// each attempt runs to its end inside one `poll`: there is no `.await` inside a transaction.
/// An attempt's state lives in its thread (read set, the pin that holds back reclamation,
/// the irrevocable token), a task may move to another thread between polls, and an attempt
/// suspended while other tasks run would keep a snapshot that ages into conflicts. Do the
/// awaiting between transactions; wait for a state inside one with `retry`.
///
/// Executor-agnostic: works with any executor (tokio's current-thread and multi-thread
/// runtimes, a hand-written `block_on`). Cancel-safe: dropping the future commits nothing that
/// has not committed yet, and removes its waker from every variable it was waiting on.
///
/// A commit calls the wakers of the futures it woke once its caller's transaction has ended;
/// a commit inside a pin ([`pinned`](crate::pinned),
/// [`TBox::load_with`](crate::TBox::load_with)'s closure, or a collection's one-call
/// operation, which commits under a pin of its own) calls them once the outermost pin has
/// ended, or before the thread blocks inside it (a [`retry_until`](Transaction::retry_until)
/// in the pin may wait for what those tasks commit): a waker may poll its task at once, and the
/// task's transaction must not run inside a pin it never took.
///
/// # Panics
///
/// As [`atomically`](crate::atomically), from `poll`: if polled inside a transaction, or if the
/// closure retries having read no variable; a panic of the closure propagates. Also if polled
/// again after it completed.
///
/// A panic after the commit passes on from the `poll` that committed, as from `atomically`:
/// that of a commit hook, of a destructor of a value the attempt let go of, or of a waker of
/// another task that the commit woke (wakers are called as the `poll` returns). The
/// transaction has committed and the future is complete (polled again, it panics), but the
/// value the closure returned is dropped: an item it popped, say, is lost. Likewise for the
/// abort hooks of a [`try_atomically_async`] whose closure failed.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, atomically_async, TVar};
/// use std::sync::Arc;
/// # use commute_stm::__block_on as block_on;
///
/// let ready = Arc::new(TVar::new(0u32));
/// let setter = {
///     let ready = ready.clone();
///     std::thread::spawn(move || {
///         atomically(|tx| {
///             ready.write(tx, 7);
///             Ok(())
///         })
///     })
/// };
/// // `block_on` stands for any executor: `.await` in a tokio task, a runtime's `block_on`.
/// let got = block_on(atomically_async(|tx| match ready.read(tx)? {
///     0 => tx.retry(),
///     n => Ok(n),
/// }));
/// assert_eq!(got, 7);
/// setter.join().unwrap();
/// ```
#[track_caller]
pub fn atomically_async<T, F>(f: F) -> Atomically<T, F>
where
    F: FnMut(&Transaction) -> StmResult<T>,
{
    Atomically {
        f,
        driver: Driver::new(Location::caller()),
        _output: PhantomData,
    }
}

/// Runs `f` as a transaction that may fail with an error of its own, in a future:
/// [`try_atomically`](crate::try_atomically) as [`atomically_async`] is to
/// [`atomically`](crate::atomically).
///
/// # Errors
///
/// The closure's error `e`, from the first attempt that ends with `Err(TxError::Abort(e))`
/// (rolled back).
///
/// # Panics
///
/// As [`atomically_async`].
///
/// # Examples
///
/// ```
/// use commute_stm::{try_atomically_async, TVar};
/// # use commute_stm::__block_on as block_on;
///
/// let stock = TVar::new(3u32);
/// let r: Result<(), &str> = block_on(try_atomically_async(|tx| {
///     stock.write(tx, 0);
///     tx.abort("refused")
/// }));
/// assert_eq!(r, Err("refused"));
/// assert_eq!(stock.load(), 3);
/// ```
#[track_caller]
pub fn try_atomically_async<T, E, F>(f: F) -> TryAtomically<T, E, F>
where
    F: FnMut(&Transaction) -> TxResult<T, E>,
{
    TryAtomically {
        f,
        driver: Driver::new(Location::caller()),
        _output: PhantomData,
    }
}

/// The future of [`atomically_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Atomically<T, F> {
    f: F,
    driver: Driver,
    _output: PhantomData<fn() -> T>,
}

/// The future of [`try_atomically_async`].
#[must_use = "futures do nothing unless polled"]
pub struct TryAtomically<T, E, F> {
    f: F,
    driver: Driver,
    _output: PhantomData<fn() -> Result<T, E>>,
}

// Neither future is ever structurally pinned: `poll` only takes `&mut F` (never a `Pin<&mut F>`)
// and the driver holds no self-reference.
impl<T, F> Unpin for Atomically<T, F> {}
impl<T, E, F> Unpin for TryAtomically<T, E, F> {}

impl<T, F> fmt::Debug for Atomically<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Atomically")
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl<T, E, F> fmt::Debug for TryAtomically<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryAtomically")
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl<T, F> Future for Atomically<T, F>
where
    F: FnMut(&Transaction) -> StmResult<T>,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let f = &mut this.f;
        this.driver.poll(cx.waker(), |tx| match f(tx) {
            Ok(value) => Outcome::Commit(value),
            Err(e) => {
                tx.check_error(&e);
                Outcome::Stop {
                    retry: e.is_retry(),
                }
            }
        })
    }
}

impl<T, E, F> Future for TryAtomically<T, E, F>
where
    F: FnMut(&Transaction) -> TxResult<T, E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let this = self.get_mut();
        let f = &mut this.f;
        this.driver.poll(cx.waker(), |tx| match f(tx) {
            Ok(value) => Outcome::Commit(Ok(value)),
            Err(TxError::Abort(e)) => Outcome::Fail(Err(e)),
            Err(TxError::Stm(e)) => {
                tx.check_error(&e);
                Outcome::Stop {
                    retry: e.is_retry(),
                }
            }
        })
    }
}

/// How an attempt ended, as the driver sees it.
enum Outcome<R> {
    /// Commit, then return this.
    Commit(R),
    /// Roll back and return this (the closure's own error), unless told to roll back.
    Fail(R),
    /// Roll back, then wait (retry) or run again (conflict).
    Stop { retry: bool },
}

/// The part of the futures that does not depend on the closure.
struct Driver {
    site: &'static Location<'static>,
    /// Conflict aborts of this future, over polls (retries do not count, as in `atomically`).
    conflicts: u32,
    /// Where the future waits after a retry: addresses only (see `async_wait.rs`).
    wait: Option<Registration>,
    done: bool,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("site", &format_args!("{}", self.site))
            .field("waiting", &self.wait.is_some())
            .field("done", &self.done)
            .finish()
    }
}

impl Driver {
    fn new(site: &'static Location<'static>) -> Self {
        Driver {
            site,
            conflicts: 0,
            wait: None,
            done: false,
        }
    }

    fn poll<R>(
        &mut self,
        waker: &Waker,
        mut attempt: impl FnMut(&Transaction) -> Outcome<R>,
    ) -> Poll<R> {
        assert!(
            !self.done,
            "commute: transaction future polled after completion"
        );
        assert!(
            !crate::internal::thread::in_tx(),
            "commute: a transaction future polled inside a transaction; transactions do not \
             nest. Await it outside the transaction"
        );
        loop {
            if let Some(wait) = &self.wait {
                if !wait.woken_or_update(waker) {
                    return Poll::Pending;
                }
            }
            // Woken: the registration goes before the attempts, which may register anew.
            self.wait = None;
            match with_ctx(|ctx| self.attempts(ctx, &mut attempt)) {
                Ok(value) => return Poll::Ready(value),
                // Registered without a waker: `woken_or_update` above stores it, here, outside
                // `atomically` (a waker's `clone` is foreign code), or finds the registration
                // woken meanwhile and runs the transaction again.
                Err(wait) => self.wait = Some(wait),
            }
        }
    }

    /// Runs attempts until one commits (or fails with the closure's error), or until one
    /// retries and a registration (with no waker yet) is made on what it read.
    fn attempts<R>(
        &mut self,
        ctx: &ThreadCtx,
        mut attempt: impl FnMut(&Transaction) -> Outcome<R>,
    ) -> Result<R, Registration> {
        // Dropped when this returns: the thread is then outside `atomically` and outside any
        // transaction, and wakers this call's commits woke run.
        let _in_tx = enter(ctx, self.site);
        loop {
            // Before the attempt: see `OutsideWhenUnwinding`.
            let outcome: Outcome<R>;
            let outside = OutsideWhenUnwinding;
            let irrevocable = self.conflicts >= IRREVOCABLE_AFTER;
            let mut token = irrevocable.then(|| IrrevocableToken::take(ctx));
            // Per attempt: the switch may move while the call runs.
            let profiling = crate::conflicts::profiling();
            let tx = Transaction::begin(ctx, self.site, irrevocable, profiling);
            outcome = attempt(&tx);
            let is_retry = matches!(outcome, Outcome::Stop { retry: true });
            // The future is complete as soon as its attempt has committed (or failed for good),
            // before what may panic: commit hooks and destructors (inside `committed`), abort
            // hooks (`roll_back_uncounted`), the wakers this commit woke (when `_in_tx` drops).
            // Polled again after such a panic, it panics instead of running again.
            let done = match &outcome {
                Outcome::Commit(_) => committed(ctx, &tx, &mut token, || self.done = true),
                Outcome::Fail(_) => !tx.told_to_roll_back(),
                Outcome::Stop { .. } => false,
            };
            if done {
                if matches!(outcome, Outcome::Fail(_)) {
                    self.done = true;
                    roll_back_uncounted(ctx, tx, token);
                } else {
                    ended(tx);
                }
                core::mem::forget(outside);
                let (Outcome::Commit(value) | Outcome::Fail(value)) = outcome else {
                    unreachable!()
                };
                return Ok(value);
            }
            let wait = self.rolled_back(ctx, tx, token, is_retry);
            core::mem::forget(outside);
            if let Outcome::Commit(value) | Outcome::Fail(value) = outcome {
                drop_refused(value);
            }
            if let Some(wait) = wait {
                return Err(wait);
            }
        }
    }

    /// `after_rollback` of `atomically`, with a registration in place of the blocking wait:
    /// `Some` if the future should wait, `None` to run again.
    fn rolled_back<G>(
        &mut self,
        ctx: &ThreadCtx,
        tx: Transaction,
        token: Option<G>,
        is_retry: bool,
    ) -> Option<Registration> {
        let Some(wait) = roll_back(ctx, self.site, tx, token, is_retry) else {
            self.conflicts += 1;
            backoff(ctx, self.conflicts);
            return None;
        };
        if wait.deadline.is_some() {
            panic!(
                "commute: retry_until() in an async transaction: the future has no timer to \
                 wake it at the deadline. Put the executor's timeout around the future instead \
                 (tokio::time::timeout(d, atomically_async(..))): dropping it leaves no waiter"
            );
        }
        if wait.vars.is_empty() {
            nothing_to_wait_on();
        }
        if ctx.in_load_pin() {
            retry_in_pin();
        }
        // SAFETY: the variables are alive until `attempts` returns, which is all the
        // registration needs (it dereferences them only to compute their stripes and to set
        // `WAITERS`, here, and keeps addresses only: see `internal/async_wait.rs`). The same
        // argument as the blocking wait's: the closure the future owns is borrowed by this
        // call; variables dropped during the attempt purged themselves from its read set, and
        // those freed with its values since were taken out of the list above; a variable the
        // closure reached through a handle it let go of (an `Arc` clone dropped inside it, or
        // shared state another thread empties) is not freed by the thread that drops its last
        // handle while this thread is inside `atomically` (`_in_tx` in `attempts`, until it
        // returns). Between polls the argument "the future owns the closure, so what
        // it borrows lives" holds for what the closure borrows or owns (a `'static` closure's
        // `Arc<TVar>` clones keep their variables alive as long as the future exists), but
        // not for variables it reaches through shared state that others may empty (a
        // `Mutex<Option<Arc<TVar>>>`): hence addresses only, once `attempts` has returned.
        // Nor does this thread free them before the registration is done: `register` runs no
        // foreign code (the waker, whose `clone` could let go of a variable's last handle, is
        // cloned once `attempts` has returned).
        let reads = unsafe { wait.borrowed() };
        Registration::register(&reads)
    }
}

/// Runs a future to completion on this thread, parking between polls: a minimal executor
/// for the documentation's examples (which must not depend on an async runtime). Programs use
/// their runtime's (`tokio::runtime::Runtime::block_on`, or `.await` in a task).
///
/// # Examples
///
/// ```
/// assert_eq!(commute_stm::__block_on(async { 1 + 1 }), 2);
/// ```
#[doc(hidden)]
pub fn __block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = core::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(value) => return value,
            // A spurious unpark costs one more poll that returns `Pending`.
            Poll::Pending => std::thread::park(),
        }
    }
}

/// The number of (variable, pending future) registrations that exist now, over all threads:
/// for tests that check that cancelled futures leave nothing behind.
///
/// # Examples
///
/// ```
/// assert_eq!(commute_stm::pending_async_registrations(), 0);
/// ```
#[doc(hidden)]
pub fn pending_async_registrations() -> usize {
    crate::internal::async_wait::registered()
}
