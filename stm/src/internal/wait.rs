//! Blocking for `retry`: sleep until a variable the attempt read is changed by a commit.
//!
//! Protocol (no lost wake-up, no spinning):
//!
//! 1. The waiter adds itself, under a stripe mutex, to the list of every variable it read.
//! 2. For each variable it then sets the `WAITERS` bit with a CAS that succeeds only while the
//!    lock word still shows the version it read, unlocked. If any variable already moved on (or
//!    is being committed), it does not sleep: the transaction simply runs again.
//! 3. A committer locks its variables with a CAS; if the word it replaced had `WAITERS`, then
//!    after write-back it takes the stripe mutex and wakes the waiters listed for the variable.
//!
//! The waiter's CAS (release) is before the committer's lock CAS (acquire) in the lock word's
//! modification order whenever the committer sees the bit, so the committer also sees the
//! registration made before it. If the committer locked first, the waiter's CAS fails and it
//! does not sleep.

use crate::internal::var::{LOCKED, VarCore, WAITERS, version_of};
use crate::sync::atomic::Ordering;
use crate::sync::{Arc, Condvar, Mutex};

// One stripe under loom: stripe choice must not depend on anything that varies between executions.
const STRIPES: usize = if cfg!(loom) { 1 } else { 64 };

/// One sleeping transaction.
struct Waiter {
    woken: Mutex<bool>,
    cond: Condvar,
}

type Stripe = Mutex<Vec<(usize, Arc<Waiter>)>>;

crate::sync::global! {
    static stripes: Vec<Stripe> = (0..STRIPES).map(|_| Mutex::new(Vec::new())).collect();
}

fn stripe(var: &VarCore) -> &'static Stripe {
    // Mix the key (the address; a creation number under loom, whose executions must not depend
    // on addresses) so that neighbours spread out.
    let h = (var.lock_order() >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let all = stripes();
    &all[(h >> 32) % all.len()]
}

/// Wakes the waiters of `var` (called by a committer that saw `WAITERS` when locking it).
pub(crate) fn wake(var: &VarCore) {
    let addr = var.addr();
    let list = crate::sync::lock(stripe(var));
    for (a, w) in list.iter() {
        if *a == addr {
            *crate::sync::lock(&w.woken) = true;
            w.cond.notify_all();
        }
    }
    drop(list);
    crate::internal::async_wait::wake(var);
}

/// Blocks until one of `reads` (variable, version read) is changed by a commit, or returns at
/// once if one already has.
pub(crate) fn wait_for_change(reads: &[(&VarCore, u64)]) {
    let waiter = Arc::new(Waiter {
        woken: Mutex::new(false),
        cond: Condvar::new(),
    });
    for (var, _) in reads {
        crate::sync::lock(stripe(var)).push((var.addr(), waiter.clone()));
    }
    let unchanged = reads
        .iter()
        .all(|(var, version)| flag_waiting(var, *version));
    if unchanged {
        let mut woken = crate::sync::lock(&waiter.woken);
        while !*woken {
            woken = match waiter.cond.wait(woken) {
                Ok(g) => g,
                Err(e) => e.into_inner(),
            };
        }
    }
    for (var, _) in reads {
        crate::sync::lock(stripe(var)).retain(|(_, w)| !Arc::ptr_eq(w, &waiter));
    }
}

/// Sets `WAITERS` on `var` if it is still unlocked at `version`; false if it has changed.
pub(crate) fn flag_waiting(var: &VarCore, version: u64) -> bool {
    let mut word = var.lock.load(Ordering::Acquire);
    loop {
        if word & LOCKED != 0 || version_of(word) != version {
            return false;
        }
        // Always a read-modify-write, even when the bit is already set: that is what orders our
        // registration before any committer that later locks the variable.
        match var.lock.compare_exchange_weak(
            word,
            word | WAITERS,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(now) => word = now,
        }
    }
}
