//! Deferred reclamation: values replaced by commits, and variables dropped while other
//! threads' attempts may still hold them, freed once no transaction can reach them.
//!
//! Reclamation is quiescence on the STM clock (epoch-based reclamation where the epoch is the
//! commit clock). A commit at version `wv` that replaces a heap value retires the old value with
//! `wv`. A transaction whose pin is `rv >= wv` can never see the old value: it loaded the clock
//! after the committer had locked the variable, so it sees the lock or the new value. The old
//! value is therefore freed once every slot is unpinned or pinned at `rv >= wv`.
//!
//! The race between a reader pinning and a reclaimer scanning is the store-buffering pattern.
//! Both sides use read-modify-writes on the slot word (the reader's `swap`, the reclaimer's
//! `fetch_add(0)`), which are totally ordered on that word: either the reclaimer sees the pin, or
//! the reader's later loads happen after the reclaimer's commit and see the new value. This needs
//! only acquire/release, which loom models exactly.
//!
//! Each thread keeps the values its commits retired and frees them in passes, a batch at a
//! time ([`ThreadCtx::retire`]); the values of threads that exited are swept by whoever passes
//! next. A dropped variable that another thread's running attempt may still hold by address
//! waits for that `atomically` call to return instead ([`drop_after_running_attempts`]), and a
//! thread that must move a value out from under readers waits for their pins
//! ([`wait_for_pins_below`]).

use crate::internal::thread::{
    Slot, ThreadCtx, UNPINNED, drop_outside, global, in_load_pin, in_tx, known_outside_tx,
    running_elsewhere, try_with_ctx, with_ctx,
};
use crate::internal::write_set::DropFn;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Mutex};

/// Retired values are scanned for reclamation in batches of at least this many, and of
/// [`BATCH_PER_SLOT`] per registered thread slot: a scan reads every slot's pin with a
/// read-modify-write, so more threads make scans dearer. Small batches hand freed memory back
/// while it is still in cache (the `TMap` leaf cache reuses it): 16 measured 5% faster than 64
/// on updates, 256 5% slower.
pub(super) const RECLAIM_BATCH: usize = if cfg!(loom) { 1 } else { 16 };
/// See [`RECLAIM_BATCH`].
const BATCH_PER_SLOT: usize = if cfg!(loom) { 0 } else { 4 };

/// Room, in values, that a list of retired values keeps once it is empty again: a batch
/// ([`RECLAIM_BATCH`] and [`BATCH_PER_SLOT`] per slot) of up to 250 threads. A list that grew
/// past it in a burst (values held back by a long transaction, or left by threads that exited
/// meanwhile) gives its memory back once the burst is freed; lists pass from one role to another
/// (`collect_reclaimable` swaps them), and one that kept a burst's room kept it for good (the
/// soak, `--mode churn` for 600 s: 1.1 MB left; `tests/reclaim_memory.rs`).
const KEEP_ROOM: usize = 1024;

/// Gives `list`'s memory back if it is empty and has room for more than [`KEEP_ROOM`] values.
#[inline]
fn shed<T>(list: &mut Vec<T>) {
    if list.is_empty() && list.capacity() > KEEP_ROOM {
        *list = Vec::new();
    }
}

/// A value replaced by a commit, waiting until no transaction can still read it.
pub(crate) struct Retired {
    pub(crate) version: u64,
    pub(crate) bits: u64,
    pub(crate) drop_fn: DropFn,
}

// SAFETY: retired values are heap values of `TBox<T>` with `T: Send`; the drop function is the
// only thing ever done with them, on whichever thread reclaims.
unsafe impl Send for Retired {}

impl Retired {
    /// Drops the value.
    ///
    /// # Safety
    ///
    /// No transaction may still be able to read the value (see the module doc), and the value
    /// must not have been dropped already.
    unsafe fn free(self) {
        // SAFETY: forwarded from the caller; `drop_fn` is the matching drop for `bits`.
        unsafe { (self.drop_fn)(self.bits) }
    }
}

/// A list of values any thread may add to and every reclamation pass sweeps, behind a lock,
/// with a flag that tells a pass whether the list may hold anything: both lists are empty in
/// almost every pass, which then reads the flag instead of taking and releasing the lock (about
/// 60 instructions a pass, 4 an update of a `TMap`).
///
/// The flag is written only under the lock, after each change, so the last write says whether
/// the list is empty. A pass that reads it as false while another thread adds (a stale read)
/// skips the list this once; the next pass, or [`reclaim_now`](ThreadCtx::reclaim_now), which
/// always locks, takes what was added.
pub(super) struct SweptList<T> {
    list: Mutex<Vec<T>>,
    filled: AtomicBool,
}

impl<T> SweptList<T> {
    pub(super) fn new() -> Self {
        SweptList {
            list: Mutex::new(Vec::new()),
            filled: AtomicBool::new(false),
        }
    }

    /// Runs `f` on the list under its lock, then records whether the list is empty.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        let mut list = crate::sync::lock(&self.list);
        self.changed(&mut list, f)
    }

    /// False if the list was empty when last changed (as far as this thread has seen).
    #[inline]
    fn looks_filled(&self) -> bool {
        self.filled.load(Ordering::Relaxed)
    }

    /// [`with`](Self::with), unless the list looks empty or another thread holds the lock.
    #[inline]
    fn with_if_filled<R>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> Option<R> {
        if !self.looks_filled() {
            return None;
        }
        let mut list = crate::sync::try_lock(&self.list)?;
        Some(self.changed(&mut list, f))
    }

    /// Runs `f` on `list`, this list's, locked by the caller; then records whether it is empty.
    fn changed<R>(&self, list: &mut Vec<T>, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        let r = f(list);
        self.filled.store(!list.is_empty(), Ordering::Relaxed);
        r
    }
}

impl ThreadCtx {
    /// Queues values replaced by a commit; reclaims a batch when enough have gathered.
    ///
    /// Called outside any transaction: the values freed here may run transactions in their
    /// `Drop` (which may retire more values: this is re-entrant).
    ///
    /// Inside a pinned load (a map's update alone reads the old entry after its commit; a
    /// transaction run by `TBox::load_with`'s closure), a pass that is due waits for the
    /// outermost load to end: run under the load's pin, it could free nothing retired since the
    /// pin began, and would test and move the rest one by one instead of handing the whole
    /// list over.
    pub(crate) fn retire(&self, values: impl IntoIterator<Item = Retired>) {
        self.retire_by(|retired| retired.extend(values));
    }

    /// [`retire`](Self::retire) of one value (a commit alone's replaced value): a push, where
    /// `extend` of an `Option` cost about 15 instructions more.
    #[inline]
    pub(crate) fn retire_one(&self, value: Retired) {
        self.retire_by(|retired| retired.push(value));
    }

    /// Adds to the retired values with `add` (which runs no code of users), then starts the
    /// pass that this made due.
    #[inline(always)]
    fn retire_by(&self, add: impl FnOnce(&mut Vec<Retired>)) {
        let due = {
            let mut retired = self.retired.borrow_mut();
            add(&mut retired);
            retired.len() >= self.reclaim_at.get()
        };
        if due {
            self.due_pass();
        }
    }

    /// The pass that retirements queued without one ([`queue_retired`](Self::queue_retired))
    /// made due, if they did. Called outside any transaction, as [`retire`](Self::retire).
    pub(crate) fn run_due_pass(&self) {
        if self.retire_is_due(0) {
            self.due_pass();
        }
    }

    /// The pass that a retirement made due: now, or at the end of the outermost pinned load.
    fn due_pass(&self) {
        if self.load_pins.get() > 0 {
            self.pass_after_pin.set(true);
        } else {
            self.reclaim_pass();
        }
    }

    /// True if retiring `more` values now would start a reclamation pass (which runs
    /// destructors).
    #[inline]
    pub(crate) fn retire_is_due(&self, more: usize) -> bool {
        self.pass_due_at(self.retired.borrow().len() + more)
    }

    /// True if a list of `len` retired values is due for a reclamation pass.
    #[inline]
    pub(crate) fn pass_due_at(&self, len: usize) -> bool {
        len >= self.reclaim_at.get()
    }

    /// Counts `values` more retired values towards the next reclamation pass, beyond the
    /// list's length: for one retired value that stands for several (`TVar::retire_run_on_commit`).
    /// Only when passes run depends on it, never what they free; the next pass sets its own
    /// mark again.
    #[inline]
    pub(crate) fn bring_pass_closer(&self, values: usize) {
        self.reclaim_at
            .set(self.reclaim_at.get().saturating_sub(values));
    }

    /// This thread's retired values, for a commit's write-back to add what it replaces
    /// straight to them: no pass starts (so no destructor runs), and the borrow lasts only
    /// while the commit writes back (no code of the thread's passes or users runs meanwhile).
    /// The end of the attempt runs a pass that this made due, outside the transaction.
    #[inline]
    pub(crate) fn retired_list(&self) -> core::cell::RefMut<'_, Vec<Retired>> {
        self.retired.borrow_mut()
    }

    /// Queues `values` (emptying the vector) for a later pass, without starting one: runs no
    /// destructor, so it may be called inside a transaction.
    #[inline]
    pub(crate) fn queue_retired(&self, values: &mut Vec<Retired>) {
        let mut retired = self.retired.borrow_mut();
        // One value (an update's replaced leaf, a pop's marker) is the usual case: a push,
        // where `append` calls `memcpy`.
        if values.len() == 1 {
            if let Some(only) = values.pop() {
                retired.push(only);
            }
        } else {
            retired.append(values);
        }
    }

    /// One reclamation pass over this thread's retired values, and over the orphans unless
    /// another thread is at them.
    #[cold]
    pub(super) fn reclaim_pass(&self) {
        // Whatever made it due, this pass is the one a pinned load may have left for later
        // (but for wakers woken inside a pin that still runs: its end calls them).
        self.pass_after_pin
            .set(self.in_load_pin() && !self.due_wakers.borrow().is_empty());
        let mut free = core::mem::take(&mut *self.freeing.borrow_mut());
        {
            let mut retired = self.retired.borrow_mut();
            let mut scan = self.scan.borrow_mut();
            // A list that grew in a burst changes hands with the scratch list here (`free` is
            // empty), and the scratch list keeps no more room than `KEEP_ROOM` (below).
            let slots = collect_reclaimable(&mut retired, &mut scan, &mut free);
            // Scan once per batch of *new* retirements: values still pinned by a long
            // transaction stay in the list, and re-scanning them on every commit would cost
            // more than they do.
            let batch = RECLAIM_BATCH.max(BATCH_PER_SLOT * slots);
            self.reclaim_at.set(retired.len() + batch);
            // Values left by threads that exited are swept by whoever reclaims next (unless
            // another thread is at it): nothing else would ever free them.
            global()
                .orphans
                .with_if_filled(|orphans| sweep_orphans(orphans, &mut scan, &mut free));
        }
        free_each(&mut free);
        drop_deferred(false);
        let mut scratch = self.freeing.borrow_mut();
        if scratch.capacity() == 0 && free.capacity() <= KEEP_ROOM {
            *scratch = free;
        }
        drop(scratch);
        self.drop_after_pin_values();
    }

    /// Reclaims what can be reclaimed now, this thread's retired values and orphans alike.
    pub(crate) fn reclaim_now(&self) {
        let mut free = Vec::new();
        {
            let mut scan = self.scan.borrow_mut();
            let mut retired = self.retired.borrow_mut();
            collect_reclaimable(&mut retired, &mut scan, &mut free);
            shed(&mut retired);
            global()
                .orphans
                .with(|orphans| sweep_orphans(orphans, &mut scan, &mut free));
        }
        free_each(&mut free);
        drop_deferred(true);
        self.drop_after_pin_values();
    }
}

/// Frees `values` (emptying the vector), with no borrow of the thread's state held: a value's
/// `Drop` may run transactions. Every value is freed even if an earlier one's `Drop` panics;
/// the first panic is then passed on.
fn free_each(values: &mut Vec<Retired>) {
    let mut first_panic = None;
    for value in values.drain(..) {
        // SAFETY: `collect_reclaimable` found no transaction that can read the value, and it
        // was retired exactly once by the commit that replaced it.
        let freed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { value.free() }));
        if let Err(payload) = freed {
            crate::internal::keep_first_panic(&mut first_panic, payload);
        }
    }
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
}

/// A dropped variable (with whatever it owns) waiting for the `atomically` calls that were
/// running on other threads when it was dropped.
pub(crate) struct Deferred {
    /// The value, type-erased: `drop_fn(bits)` drops it.
    bits: u64,
    drop_fn: DropFn,
    /// The slots that were inside `atomically`, with their marks then.
    waits: Vec<(*const Slot, u64)>,
}

// SAFETY: the slot pointers point at registry slots, which live as long as the process and are
// only read (atomically); the value may be dropped on any thread (the caller of
// `drop_after_running_attempts` promises it).
unsafe impl Send for Deferred {}

impl Drop for Deferred {
    fn drop(&mut self) {
        // SAFETY: `drop_after_running_attempts`'s caller handed the value over to be dropped
        // once, and it is: a `Deferred` is dropped once, when it is due.
        unsafe { (self.drop_fn)(self.bits) };
    }
}

impl Deferred {
    /// True once every call it waits for has returned.
    fn is_due(&self) -> bool {
        self.waits.iter().all(|&(slot, mark)| {
            // SAFETY: slots are never freed (see `oldest_pin`).
            unsafe { &*slot }.attempt.load(Ordering::Acquire) != mark
        })
    }
}

/// Drops `value`, which owns transactional variables that are being dropped, once no
/// `atomically` call of another thread that may still refer to them is running; at once if
/// none runs.
///
/// A running attempt keeps raw addresses of the variables it read or wrote until it ends (and
/// through a `retry` wait, but only as keys while asleep: a sleeping thread is not waited for,
/// [`ThreadCtx::asleep_outside_attempts`]). The calling thread's own attempt has purged them
/// already (see `TxState::forget`); another thread's may still hold them if it reached them
/// through a handle it let go of in mid-attempt (an `Arc` clone dropped inside its closure),
/// while this thread dropped the last handle. Whatever made this thread the owner (the `Arc`
/// count, a mutex, a channel) synchronised with that handle's release, which came after the
/// other thread marked itself inside `atomically` ([`ThreadCtx::enter_atomically`]): so the
/// scan below sees that mark, and the drop waits until the mark moves on. A thread that is not
/// inside `atomically` holds no such address.
///
/// Deferred values are dropped by later reclamation passes, outside any transaction, and by
/// [`reclaim_retired`], or by the next such drop outside a transaction.
///
/// # Safety
///
/// `drop_fn(bits)` drops the value, exactly once, on whichever thread runs it; nothing else
/// uses the value from now on.
pub(crate) unsafe fn drop_after_running_attempts(bits: u64, drop_fn: DropFn) {
    // SAFETY: forwarded from the caller.
    unsafe { defer_drop(bits, drop_fn, running_elsewhere()) }
}

/// As [`drop_after_running_attempts`], but also waiting for this thread's own `atomically`
/// call, if it is inside one: for memory whose variables this thread's attempt may still hold
/// because they were not purged from it (a collection dropped as a whole).
///
/// # Safety
///
/// As for [`drop_after_running_attempts`].
pub(crate) unsafe fn drop_after_all_running_attempts(bits: u64, drop_fn: DropFn) {
    let mut waits = running_elsewhere();
    let own = try_with_ctx(|ctx| {
        let mark = ctx.slot.attempt.load(Ordering::Relaxed);
        (mark % 2 == 1).then_some((Arc::as_ptr(&ctx.slot), mark))
    })
    .flatten();
    waits.extend(own);
    // SAFETY: forwarded from the caller.
    unsafe { defer_drop(bits, drop_fn, waits) }
}

/// Drops the value now if `waits` is empty, else once they are all over.
///
/// # Safety
///
/// As for [`drop_after_running_attempts`].
unsafe fn defer_drop(bits: u64, drop_fn: DropFn, waits: Vec<(*const Slot, u64)>) {
    let deferred = Deferred {
        bits,
        drop_fn,
        waits,
    };
    // Inside a pin, nothing is dropped: a value's `Drop` may wait for readers.
    let pinned = in_load_pin();
    if deferred.waits.is_empty() {
        if pinned {
            drop_outside(deferred);
        } else {
            drop(deferred);
        }
        return;
    }
    global().deferred.with(|list| list.push(deferred));
    if known_outside_tx() && !pinned {
        drop_deferred(false);
    }
}

/// Waits until no transaction of another thread that may still read what the commit at
/// `version` unlinked is running: until every other slot is unpinned or pinned at `version` or
/// above, the condition under which reclamation frees a value retired at `version`.
///
/// A thread asleep in `retry` is unpinned (its attempt ended before it sleeps), and so is one
/// between transactions: neither is waited for. The calling thread's own slot is skipped: it is
/// not inside an attempt (the caller's promise), so it holds no reference an attempt made.
///
/// Each slot is waited for once: a slot seen unpinned, or pinned at `version` or above, can
/// pin below `version` afterwards only for an attempt that reads the commit's result, by the
/// argument of [`oldest_pin`] (the read-modify-write below is ordered against its `swap`), and
/// the clock is advanced to `version` first, so that attempts beginning from now on pin above.
pub(crate) fn wait_for_pins_below(version: u64) {
    crate::internal::clock::advance_to(version);
    let own = try_with_ctx(|ctx| Arc::as_ptr(&ctx.slot)).unwrap_or(core::ptr::null());
    let slots: Vec<*const Slot> = crate::sync::lock(&global().slots)
        .iter()
        .map(Arc::as_ptr)
        .filter(|&s| s != own)
        .collect();
    // Counted among the waiters from the first pin that holds it up.
    let mut counted = None;
    for slot in slots {
        let mut backoff = crate::internal::backoff::Backoff::new();
        loop {
            // SAFETY: registry slots are never freed (see `oldest_pin`).
            let pin = unsafe { &*slot }.pin.fetch_add(0, Ordering::AcqRel);
            if pin == UNPINNED || pin >= version {
                break;
            }
            counted.get_or_insert_with(AwaitingReaders::new);
            backoff.snooze();
        }
    }
}

/// A thread counted among those that wait for readers (see [`readers_awaited`]) while it lives.
pub(crate) struct AwaitingReaders(());

impl AwaitingReaders {
    pub(crate) fn new() -> Self {
        global().reader_waiters.fetch_add(1, Ordering::SeqCst);
        AwaitingReaders(())
    }
}

impl Drop for AwaitingReaders {
    fn drop(&mut self) {
        global().reader_waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// True while another thread waits for readers to end (pinned attempts, or snapshot readers),
/// some of which may be the caller's: see [`Transaction::give_way`](crate::Transaction::give_way).
pub(crate) fn readers_awaited() -> bool {
    global().reader_waiters.load(Ordering::SeqCst) != 0
}

/// Drops the deferred values that are due, outside any transaction; if `wait_for_lock`, even
/// when another thread is at it. Inlined: a pass finds the list empty, as a rule.
#[inline]
fn drop_deferred(wait_for_lock: bool) {
    if wait_for_lock || global().deferred.looks_filled() {
        drop_due_deferred(wait_for_lock);
    }
}

/// [`drop_deferred`] when the list may hold anything.
fn drop_due_deferred(wait_for_lock: bool) {
    let take_due = |list: &mut Vec<Deferred>| -> Vec<Deferred> {
        if list.is_empty() {
            return Vec::new();
        }
        let (due, waiting) = core::mem::take(list)
            .into_iter()
            .partition(Deferred::is_due);
        *list = waiting;
        due
    };
    let deferred = &global().deferred;
    let due = if wait_for_lock {
        deferred.with(take_due)
    } else {
        match deferred.with_if_filled(take_due) {
            Some(due) => due,
            None => return,
        }
    };
    let mut first_panic = None;
    for deferred in due {
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(deferred)));
        if let Err(payload) = dropped {
            crate::internal::keep_first_panic(&mut first_panic, payload);
        }
    }
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
}

/// The lowest pin of any slot (values retired at or below it are unreachable), and the number
/// of slots. `scan` is scratch space.
///
/// The registry's lock is held only to copy the slots' addresses: each pin is then read with a
/// read-modify-write on another thread's cache line, and holding the lock through all of them
/// would make every other thread that reclaims wait for as many cache misses as there are
/// threads (or for a scheduler slice, if the holder is preempted), once per batch. A slot
/// registered after the copy needs no reading: its thread took the lock after this one
/// released it, so everything it reads comes after the commits that retired the caller's
/// values, and it finds their replacements, not them. (Loom's `tbox_replace_vs_reader` fails
/// if a slot that was registered before the copy is left out.)
fn oldest_pin(scan: &mut Vec<*const Slot>) -> (u64, usize) {
    scan.clear();
    scan.extend(crate::sync::lock(&global().slots).iter().map(Arc::as_ptr));
    let oldest = scan
        .iter()
        // SAFETY: the registry never removes a slot (a thread that exits leaves its slot for
        // reuse) and outlives every thread context, so each address points at a live `Slot`.
        .map(|&s| unsafe { &*s }.pin.fetch_add(0, Ordering::AcqRel))
        .min()
        .unwrap_or(UNPINNED);
    (oldest, scan.len())
}

/// Moves the values no transaction can read any more from `retired` to `free`; returns the
/// number of thread slots scanned (0 if there was nothing to scan). `scan` is scratch space for
/// [`oldest_pin`]. Runs no destructor.
fn collect_reclaimable(
    retired: &mut Vec<Retired>,
    scan: &mut Vec<*const Slot>,
    free: &mut Vec<Retired>,
) -> usize {
    if retired.is_empty() {
        return 0;
    }
    // Values are retired at versions the clock may not have reached yet (commits do not move
    // it): move it there, so that transactions pinning from now on pin at or above them.
    let newest = retired.iter().fold(0, |newest, r| newest.max(r.version));
    crate::internal::clock::advance_to(newest);
    let (oldest, slots) = oldest_pin(scan);
    if newest <= oldest {
        // Every value can go (no pinned transaction began before the newest retirement): the
        // usual pass. The buffers change hands instead of the values moving one by one.
        if free.is_empty() {
            core::mem::swap(free, retired);
        } else {
            free.append(retired);
        }
        return slots;
    }
    let mut i = 0;
    while i < retired.len() {
        // Every pinned transaction has `rv >= version`, so none can read the value (module
        // doc).
        if retired[i].version <= oldest {
            free.push(retired.swap_remove(i));
        } else {
            i += 1;
        }
    }
    slots
}

/// [`collect_reclaimable`] over the values left by threads that exited, then [`shed`].
fn sweep_orphans(
    orphans: &mut Vec<Retired>,
    scan: &mut Vec<*const Slot>,
    free: &mut Vec<Retired>,
) -> usize {
    let slots = collect_reclaimable(orphans, scan, free);
    shed(orphans);
    slots
}

/// Frees every retired heap value that no running transaction can read any more, including
/// those left behind by threads that have exited. Called by tests and loom models to check that
/// nothing leaks; ordinary programs never need it (reclamation runs in batches by itself).
///
/// Inside a transaction it does nothing, and inside a pin ([`pinned`](crate::pinned),
/// `TBox::load_with`'s closure) it leaves the pass to the pin's end: replaced values are never
/// dropped there (their `Drop` may use commute), and a later pass frees them.
#[doc(hidden)]
pub fn reclaim_retired() {
    if in_tx() {
        return;
    }
    with_ctx(|ctx| {
        if ctx.in_load_pin() {
            ctx.pass_after_pin.set(true);
        } else {
            ctx.reclaim_now();
        }
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_pass_skips_a_swept_list_only_while_it_is_empty() {
        let list = SweptList::<u32>::new();
        assert_eq!(list.with_if_filled(|l| l.len()), None);
        list.with(|l| l.extend([1, 2]));
        assert!(list.looks_filled());
        // Taking one leaves the flag set; taking the rest clears it.
        assert_eq!(list.with_if_filled(|l| l.pop()), Some(Some(2)));
        assert!(list.looks_filled());
        assert_eq!(list.with_if_filled(|l| l.pop()), Some(Some(1)));
        assert!(!list.looks_filled());
        assert_eq!(list.with_if_filled(|l| l.len()), None);
        // An unconditional visit still sees the list, and records an add.
        assert_eq!(list.with(|l| l.len()), 0);
        list.with(|l| l.push(3));
        assert_eq!(list.with_if_filled(core::mem::take), Some(vec![3]));
        assert!(!list.looks_filled());
    }

    #[test]
    fn a_held_lock_makes_a_pass_skip_a_swept_list() {
        let list = SweptList::<u32>::new();
        list.with(|l| l.push(1));
        let held = crate::sync::lock(&list.list);
        assert_eq!(list.with_if_filled(|l| l.len()), None);
        drop(held);
        assert_eq!(list.with_if_filled(|l| l.len()), Some(1));
    }
}
