//! Blocking for `retry`: sleep until a variable the attempt read is changed by a commit, or
//! until the attempt's deadline (`retry_until`) passes.
//!
//! Protocol (no lost wake-up):
//!
//! 0. First a short watch, without registering anything: the waiter re-reads the lock words of
//!    the variables it read, yielding its time slice between looks (up to 128 times or 200 us).
//!    If one already moved on (or is being committed), it returns and the
//!    transaction runs again; a hand-off between two running threads thus costs no sleep and
//!    no wake-up. Loads only: this step can return early, never miss a change, so the
//!    protocol below does not depend on it (and loom skips it).
//! 1. The waiter adds itself, under a stripe mutex, to the list of every variable it read.
//! 2. For each variable it then sets the `WAITERS` bit with a CAS that succeeds only while the
//!    lock word still shows the version it read, unlocked. If any variable already moved on (or
//!    is being committed), it does not sleep: the transaction simply runs again.
//! 3. A committer locks its variables with a CAS; if the word it replaced had `WAITERS`, then
//!    after write-back it takes the stripe mutex and wakes the waiters listed for the variable.
//!    (Write-back clears the bit, so a variable nobody waits on costs its committers nothing.)
//! 4. A waiter with a deadline sleeps at most until then; waking at the deadline (or early,
//!    spuriously) is always safe, as the transaction runs again and decides. Under loom, which
//!    has no time, a wait with a deadline returns at once (as if the deadline had passed).
//!
//! The waiter's CAS (release) is before the committer's lock CAS (acquire) in the lock word's
//! modification order whenever the committer sees the bit, so the committer also sees the
//! registration made before it. If the committer locked first, the waiter's CAS fails and it
//! does not sleep.
//!
//! A waiter that goes to sleep also lists itself in a global table of sleepers, with what it
//! waits on (see `crate::blocked_transactions`); that is diagnostics only, outside the
//! protocol (a plain `std` lock that loom does not see), and only sleepers pay for it.

use std::panic::Location;
use std::time::{Duration, Instant};

use crate::internal::var::{LOCKED, VarCore, WAITERS, version_of};
use crate::sync::atomic::Ordering;
use crate::sync::{Arc, Condvar, Mutex};

// One stripe under loom: stripe choice must not depend on anything that varies between executions.
const STRIPES: usize = if cfg!(loom) { 1 } else { 64 };

/// The watch (step 0) yields the time slice between looks, at most `WATCH_YIELDS` times and
/// for at most `WATCH_TIME`. No spinning: measured with the `handoff` bench on 2 cores, spins
/// (crossbeam's 2^k `PAUSE`s before yielding) only kept the core from the thread that was
/// about to commit (pipeline 127,000 items/s with spins of up to 64, 363,000 without).
const WATCH_YIELDS: u32 = if cfg!(loom) { 0 } else { 128 };
const WATCH_TIME: Duration = Duration::from_micros(200);

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

/// Who waits: the `atomically` call site of the transaction that retried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitSite {
    pub(crate) site: &'static Location<'static>,
}

/// Blocks until one of `reads` (variable, version read) is changed by a commit, or until
/// `deadline`; returns at once if one already has changed or the deadline has passed.
///
/// The sleep itself runs in `asleep` ([`ThreadCtx::asleep_outside_attempts`]), during which,
/// and after which, `reads` may be freed: nothing below the sleep touches them.
///
/// [`ThreadCtx::asleep_outside_attempts`]: crate::internal::thread::ThreadCtx::asleep_outside_attempts
pub(crate) fn wait_for_change(
    reads: &[(&VarCore, u64)],
    deadline: Option<Instant>,
    who: WaitSite,
    asleep: impl FnOnce(&dyn Fn()),
) {
    if watch(reads, deadline) {
        return;
    }
    let waiter = Arc::new(Waiter {
        woken: Mutex::new(false),
        cond: Condvar::new(),
    });
    // The stripes, taken now: the variables may be gone once the thread has slept.
    let stripes: Vec<&Stripe> = reads.iter().map(|(var, _)| stripe(var)).collect();
    for ((var, _), stripe) in reads.iter().zip(&stripes) {
        crate::sync::lock(stripe).push((var.addr(), waiter.clone()));
    }
    let unchanged = reads
        .iter()
        .all(|(var, version)| flag_waiting(var, *version));
    if unchanged {
        let _listed = sleepers::list(reads, deadline, who);
        asleep(&|| sleep(&waiter, deadline));
    }
    for stripe in stripes {
        crate::sync::lock(stripe).retain(|(_, w)| !Arc::ptr_eq(w, &waiter));
    }
}

/// Step 0: watches the lock words for a short while; true if one changed (or the deadline
/// passed), so the transaction should run again without sleeping.
// No watching under loom (`WATCH_YIELDS` is 0 there, its loop empty).
#[cfg_attr(loom, allow(clippy::reversed_empty_ranges))]
fn watch(reads: &[(&VarCore, u64)], deadline: Option<Instant>) -> bool {
    if WATCH_YIELDS == 0 {
        return false;
    }
    let started = Instant::now();
    for _ in 0..WATCH_YIELDS {
        if reads.iter().any(|(var, version)| moved_on(var, *version)) {
            return true;
        }
        crate::sync::yield_now();
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return true;
        }
        if now.duration_since(started) >= WATCH_TIME {
            break;
        }
    }
    false
}

/// True if `var` no longer shows `version`, unlocked (it changed, or a committer holds it).
#[inline]
fn moved_on(var: &VarCore, version: u64) -> bool {
    let word = var.lock.load(Ordering::Acquire);
    word & LOCKED != 0 || version_of(word) != version
}

/// Sleeps until woken, or until `deadline`.
fn sleep(waiter: &Waiter, deadline: Option<Instant>) {
    let mut woken = crate::sync::lock(&waiter.woken);
    while !*woken {
        match deadline {
            None => {
                woken = match waiter.cond.wait(woken) {
                    Ok(g) => g,
                    Err(e) => e.into_inner(),
                };
            }
            // Loom has no time: a wait with a deadline ends at once, as if it had passed.
            Some(_) if cfg!(loom) => return,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                woken = match waiter.cond.wait_timeout(woken, left) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                };
            }
        }
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

/// The global table of sleeping transactions, for `crate::blocked_transactions`.
pub(crate) mod sleepers {
    use std::panic::Location;
    use std::sync::{Mutex, PoisonError};
    use std::thread::Thread;
    use std::time::Instant;

    use super::WaitSite;
    use crate::internal::var::{Origin, VarCore};

    /// One sleeping transaction, as listed.
    #[derive(Clone, Debug)]
    pub(crate) struct Sleeper {
        pub(crate) id: u64,
        pub(crate) thread: Thread,
        pub(crate) site: &'static Location<'static>,
        pub(crate) since: Instant,
        pub(crate) deadline: Option<Instant>,
        /// The variables it waits on: address and origin.
        pub(crate) vars: Vec<(usize, Origin)>,
    }

    struct Table {
        next_id: u64,
        sleepers: Vec<Sleeper>,
    }

    static TABLE: Mutex<Table> = Mutex::new(Table {
        next_id: 0,
        sleepers: Vec::new(),
    });

    fn table() -> std::sync::MutexGuard<'static, Table> {
        TABLE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the sleeper off the table when dropped.
    pub(crate) struct Listed(u64);

    impl Drop for Listed {
        fn drop(&mut self) {
            let mut table = table();
            if let Some(i) = table.sleepers.iter().position(|s| s.id == self.0) {
                table.sleepers.swap_remove(i);
            }
        }
    }

    /// Lists the calling thread as sleeping on `reads` until the guard drops.
    pub(crate) fn list(
        reads: &[(&VarCore, u64)],
        deadline: Option<Instant>,
        who: WaitSite,
    ) -> Listed {
        let vars: Vec<(usize, Origin)> =
            reads.iter().map(|(v, _)| (v.addr(), v.origin())).collect();
        let thread = std::thread::current();
        let since = Instant::now();
        let mut table = table();
        let id = table.next_id;
        table.next_id += 1;
        table.sleepers.push(Sleeper {
            id,
            thread,
            site: who.site,
            since,
            deadline,
            vars,
        });
        Listed(id)
    }

    /// A copy of the table, oldest sleeper first.
    pub(crate) fn snapshot() -> Vec<Sleeper> {
        let mut all = table().sleepers.clone();
        all.sort_by_key(|s| (s.since, s.id));
        all
    }
}
