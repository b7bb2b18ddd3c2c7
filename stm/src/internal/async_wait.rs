//! Waiting for `retry` without blocking a thread: a future's `Waker` on the variables' lists.
//!
//! The protocol is the blocking one (`wait.rs`), with a waker in place of a condition variable:
//!
//! 1. The waiting future adds itself, under a stripe mutex, to the list of every variable its
//!    attempt read (keyed by address; the stripe index is computed now, while the variable is
//!    known to be alive, and kept). It has no waker yet: the driver stores a clone of the task's
//!    waker once the thread is outside `atomically` (a waker's `clone` is foreign code), and runs
//!    the transaction again if a committer woke the future in between.
//! 2. It sets `WAITERS` on each with the CAS of `wait::flag_waiting` (succeeds only while the
//!    word still shows the version read, unlocked). If any variable moved on, it removes itself
//!    and the transaction runs again at once; otherwise `poll` returns `Pending`.
//! 3. A committer that replaced a word with `WAITERS` calls `wait::wake`, which calls [`wake`]:
//!    under the stripe mutex it marks the waiters of that address woken and takes their wakers.
//!
//! The ordering argument is `wait.rs`'s: the registration is made before the waiter's CAS, and a
//! committer that sees the bit acquired it through its lock CAS, so it finds the registration.
//!
//! **Nothing here dereferences a variable after `poll` returns.** A registration keeps only
//! addresses and stripe indices, so that the variables may be dropped while the future is
//! pending: waking compares addresses (a new variable at a reused address can only cause a
//! spurious wake, after which the transaction simply runs again), and removing a registration
//! touches only the global stripes.
//!
//! **Wakers are not called inside a transaction.** A committer reaches [`wake`] in the middle
//! of its write-back, with variables still locked and the attempt's state borrowed; a waker is
//! foreign code (an executor's, or a user's `Wake` impl) that might panic, run a transaction or
//! drop a task holding variables. Wakers found inside a transaction are therefore handed to the
//! thread's context, which calls them once the thread leaves `atomically` (or before it blocks
//! in a `retry`); outside a transaction (a variable dropped by a destructor) they are called at
//! once, after the stripe mutex is released. A commit of its own (`tx/alone.rs`) wakes only
//! once it has done all its work (a queue's push links its node after its commit, a pop
//! retires its marker): a waker may poll its task on the spot, which must find the queue whole.

use core::task::Waker;

use crate::internal::var::VarCore;
use crate::internal::wait::flag_waiting;
use crate::sync::{Arc, Mutex};

// One stripe under loom, as in `wait.rs`.
const STRIPES: usize = if cfg!(loom) { 1 } else { 64 };

/// One pending future.
struct AsyncWaiter {
    state: Mutex<WaiterState>,
}

struct WaiterState {
    /// Set by a committer that changed a variable this waiter is listed on.
    woken: bool,
    /// The waker of the last poll (none until the poll that registered has stored it); taken by
    /// the committer that wakes it.
    waker: Option<Waker>,
}

type Stripe = Mutex<Vec<(usize, Arc<AsyncWaiter>)>>;

crate::sync::global! {
    static stripes: Vec<Stripe> = (0..STRIPES).map(|_| Mutex::new(Vec::new())).collect();
}

// One stripe under loom, where the modulo is 0.
#[cfg_attr(loom, allow(clippy::modulo_one))]
fn stripe_index(var: &VarCore) -> usize {
    // The same mix as `wait.rs`: neighbours spread out; a creation number under loom.
    let h = (var.lock_order() >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) % STRIPES
}

/// A pending future's entries in the stripes; removes them when dropped.
pub(crate) struct Registration {
    waiter: Arc<AsyncWaiter>,
    /// (variable address, stripe index) of every entry: no pointer that could dangle.
    keys: Vec<(usize, usize)>,
}

impl core::fmt::Debug for Registration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registration")
            .field("variables", &self.keys.len())
            .finish()
    }
}

impl Registration {
    /// Registers a waiter, with no waker yet, on `reads` (variable, version read) and flags
    /// them; `None` if one has changed already (the caller runs the transaction again at once).
    /// The caller stores the waker with [`woken_or_update`](Self::woken_or_update) once it is
    /// outside `atomically`: a waker's `clone` is foreign code, which must not run inside the
    /// transaction, nor while the variables are borrowed here (it could free them). A committer
    /// that wakes the registration before then finds no waker to call, and leaves it woken.
    ///
    /// The variables must be alive for the duration of this call (the caller is inside the
    /// attempt's `atomically` mark; see `tx/future.rs`); they need not be afterwards. Runs no
    /// foreign code: a registration dropped here holds no waker.
    pub(crate) fn register(reads: &[(&VarCore, u64)]) -> Option<Registration> {
        let waiter = Arc::new(AsyncWaiter {
            state: Mutex::new(WaiterState {
                woken: false,
                waker: None,
            }),
        });
        let all = stripes();
        let mut keys = Vec::with_capacity(reads.len());
        for (var, _) in reads {
            let key = (var.addr(), stripe_index(var));
            crate::sync::lock(&all[key.1]).push((key.0, waiter.clone()));
            keys.push(key);
        }
        let registration = Registration { waiter, keys };
        let unchanged = reads
            .iter()
            .all(|(var, version)| flag_waiting(var, *version));
        // Dropped (deregistered) if something changed.
        unchanged.then_some(registration)
    }

    /// True if a committer has woken this registration; otherwise stores `waker` for the next
    /// wake (unless it would wake the same task as the stored one).
    pub(crate) fn woken_or_update(&self, waker: &Waker) -> bool {
        {
            let state = crate::sync::lock(&self.waiter.state);
            if state.woken {
                return true;
            }
            if state.waker.as_ref().is_some_and(|s| s.will_wake(waker)) {
                return false;
            }
        }
        // Cloned with the waiter's mutex released: a waker's `clone` is foreign code, which may
        // commit to a variable this future waits on, whose wake locks that mutex. A wake in
        // between is seen below.
        let new = waker.clone();
        let (woken, unused) = {
            let mut state = crate::sync::lock(&self.waiter.state);
            if state.woken {
                (true, Some(new))
            } else {
                (false, state.waker.replace(new))
            }
        };
        // Dropped once the waiter's mutex is released, as the clone was made: a waker's `Drop`
        // may commit to a variable this future waits on.
        drop(unused);
        woken
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let all = stripes();
        for &(_, stripe) in &self.keys {
            crate::sync::lock(&all[stripe]).retain(|(_, w)| !Arc::ptr_eq(w, &self.waiter));
        }
        // A waker still stored is dropped with the waiter, outside every stripe mutex.
    }
}

/// Wakes the pending futures listed on `var` (called through `wait::wake` by a committer that
/// saw `WAITERS`, or by a variable dying with it set).
pub(crate) fn wake(var: &VarCore) {
    let addr = var.addr();
    let mut due: Vec<Waker> = Vec::new();
    {
        let list = crate::sync::lock(&stripes()[stripe_index(var)]);
        for (a, w) in list.iter() {
            if *a == addr {
                let mut state = crate::sync::lock(&w.state);
                state.woken = true;
                due.extend(state.waker.take());
            }
        }
    }
    if due.is_empty() {
        return;
    }
    if crate::internal::thread::in_tx() {
        crate::internal::thread::wake_after_transaction(due);
    } else if crate::internal::thread::in_load_pin() {
        // A one-call operation commits under a pin of its own (or the user's `pinned`,
        // `TBox::load_with`'s closure): a waker may poll its task at once, whose transaction
        // must not run inside a pin it never took (where a `retry` panics).
        crate::internal::thread::wake_after_pin(due);
    } else {
        wake_all(due);
    }
}

/// Calls each waker, all of them even if one panics; the first panic is passed on, unless the
/// thread is unwinding already (wakers run from the end of an `atomically` call, which a panic
/// of its closure also reaches).
pub(crate) fn wake_all(wakers: Vec<Waker>) {
    let mut first_panic = None;
    for waker in wakers {
        let woke = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
        if let Err(payload) = woke {
            crate::internal::keep_first_panic(&mut first_panic, payload);
        }
    }
    crate::internal::pass_on_first_panic(first_panic);
}

/// The number of (variable, pending future) entries registered now, over all threads.
pub(crate) fn registered() -> usize {
    stripes().iter().map(|s| crate::sync::lock(s).len()).sum()
}
