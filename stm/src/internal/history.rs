//! Old versions for read-only snapshot transactions ([`crate::read_only`]): a reader that never
//! aborts because of writers and never makes them wait.
//!
//! **Who is before the snapshot.** A snapshot reader *registers* ([`register`]): under the
//! registry's lock it takes the next *epoch* and adds itself to the count in `SNAPSHOTS`
//! with one sequentially consistent read-modify-write. Every committer loads `SNAPSHOTS`
//! once its write locks are held and before it stores any value ([`writer_view`]). The
//! committers whose load precedes the reader's registration in the SC order are *before* the
//! snapshot; the others are *after* it. The reader sees exactly the writes of the committers
//! before it:
//!
//! - *Per variable, every committer before the snapshot precedes every one after it.* A
//!   committer after the snapshot locks the variable, loads `SNAPSHOTS` (after the
//!   registration), unlocks; one that locks the variable later loads it later still.
//! - *No committer before the snapshot depends on one after it* (reads a value it wrote): a
//!   committer's reads precede its load, and a value is stored after its writer's load; so the
//!   snapshot is a state that a serial order of the committers before it produced.
//! - *Every committer after the snapshot keeps the value it replaces for the reader*, unless an
//!   older one already is: it pushes a [`Version`] stamped with the newest registered epoch it
//!   loaded (at least the reader's) onto the variable's list, before it stores the new value.
//!   Committers before the snapshot hold all their locks when they load, so a variable that
//!   the reader finds unlocked has no commit before the snapshot still to come.
//!
//! So the reader reads a variable as (`read_snapshot` in `tx/snapshot.rs`): a consistent
//! (sequence-lock) read of the committed value, then the list; the oldest version stamped with
//! an epoch at least its own holds its value (the value the first committer after it
//! replaced); with none, the committed value read is its value. A locked variable with no such
//! version is waited for: its committer's writes are either before the snapshot (and the reader
//! needs them) or will push a version first. A version pushed between the read and the list's
//! load holds the very value read. The irrevocable transaction's locks are the exception, as
//! they last its whole attempt: its commit turns them into plain locks before it loads
//! `SNAPSHOTS`, so a reader that sees the irrevocable lock before and after reading the value
//! has read a value that the commit (after the snapshot) has not replaced yet.
//!
//! **Memory.** A committer pushes no version if the newest kept one already carries the newest
//! registered epoch (every registered reader has its value): a variable keeps at most one
//! version per snapshot taken while the oldest registered reader runs. Versions stamped below
//! the oldest registered reader's epoch (`OLDEST`) are cut off by the next committer of the
//! variable; with no reader registered, it cuts the whole list off. A version that owns the value
//! it keeps (a `TBox`'s or a `TMap` leaf's block) takes it over from the commit's retirement,
//! so that snapshot readers need not pin: while they run, reclamation goes on, and they hold
//! back only the values they can still read.
//!
//! **Values retired outside variables.** A commit after registered readers hands what it
//! retires with `TVar::retire_on_commit` (a queue's popped nodes and items, which a snapshot may
//! reach through the old `head` kept for it) to the registry ([`hold`]) instead of reclamation,
//! until every reader registered before it has left; and a take waits for those readers
//! before it moves an item out (`wait_for_readers_up_to`, with the [`mark`] its commit took).
//! So snapshot readers never pin.
//!
//! **What a commit pays without readers.** Committers load `SNAPSHOTS` and `LISTS` (how many
//! variables keep versions) once per commit; with no reader registered and no variable keeping
//! versions they do nothing more. A variable of theirs that keeps versions got its list from a
//! commit that unlocked it before they locked it, so its count shows in their load.
//!
//! **Freeing versions.** Ordinary transactions never read versions, but a snapshot reader may
//! be reading one when a committer cuts it off (it loaded the list before the cut; that
//! includes a reader that registered after a committer saw none and before it cut the whole
//! list off). A cut list
//! is buried with the epoch loaded after the cut ([`bury`]): readers registered later see the
//! cut (the cut's store and their load of the list are SC too) and stop before it; those
//! registered before deregister in time, and the last of them hands the buried versions to the
//! ordinary reclamation (their kept values may still be read by ordinary transactions that
//! began before the commit that replaced them, which it waits for). Readers follow a link only
//! to a version stamped at least their epoch, which no cut removes while they are registered;
//! each version records its successor's epoch so that they never touch a version to decide
//! that.

use crate::internal::clock::{self, SC, SC_LOAD};
use crate::internal::reclaim::Retired;
use crate::internal::var::VarCore;
use crate::internal::write_set::DropFn;
use crate::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use crate::sync::{Mutex, lock};

/// The low bits of `SNAPSHOTS` count the registered readers; the epoch of the newest
/// registration is above them.
const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// The most readers registered at once; the count's top bit is free for [`LINGERING`].
const MAX_READERS: u64 = (1 << (COUNT_BITS - 1)) - 1;
/// Set in a [`WriterView`] (never in `SNAPSHOTS`) when some variable keeps versions.
const LINGERING: u64 = 1 << (COUNT_BITS - 1);

/// An old value of a variable, kept for the snapshot readers registered up to its epoch.
pub(crate) struct Version {
    /// The value a commit after the snapshot of `epoch` replaced.
    bits: u64,
    /// Frees `bits`, if the version owns it (a heap value taken over from the commit).
    drop_fn: Option<DropFn>,
    /// The newest registered epoch when it was kept: the value of the snapshot of every
    /// registered reader of this epoch or older that has no older version kept.
    epoch: u64,
    /// The version of the commit that replaced the value (its reclamation waits for it).
    replaced_at: u64,
    /// The next older version; set to null only by a cut, below every registered epoch.
    older: AtomicPtr<Version>,
    /// The epoch of the version `older` pointed to when this one was pushed (0 for none).
    older_epoch: u64,
}

/// Readers registered now and versions cut off while they ran.
struct Registry {
    /// The epochs of the registered readers.
    readers: Vec<u64>,
    /// Cut-off lists, each with the epoch loaded after its cut: freed once every reader of
    /// that epoch or older has deregistered.
    buried: Vec<(u64, *mut Version)>,
    /// Values that commits after registered readers retired outside variables (a queue's
    /// popped nodes), each with the newest epoch the commit loaded: retired once every reader
    /// of that epoch or older has deregistered.
    held: Vec<(u64, Vec<Retired>)>,
}

// SAFETY: the buried versions are only handed to reclamation, once, under the lock; their
// values are `Send` (heap values of variables).
unsafe impl Send for Registry {}

#[cfg(not(loom))]
static SNAPSHOTS: AtomicU64 = AtomicU64::new(0);
#[cfg(not(loom))]
static OLDEST: AtomicU64 = AtomicU64::new(u64::MAX);
#[cfg(not(loom))]
static LISTS: AtomicU64 = AtomicU64::new(0);

/// The newest registered epoch (above [`COUNT_BITS`]) and the number of registered readers.
#[cfg(not(loom))]
#[inline(always)]
fn snapshots() -> &'static AtomicU64 {
    &SNAPSHOTS
}

/// The oldest registered reader's epoch; `u64::MAX` with none.
#[cfg(not(loom))]
#[inline(always)]
fn oldest() -> &'static AtomicU64 {
    &OLDEST
}

/// How many variables keep versions (a list hangs off their extra word).
#[cfg(not(loom))]
#[inline(always)]
fn lists() -> &'static AtomicU64 {
    &LISTS
}

#[cfg(loom)]
fn lists() -> &'static AtomicU64 {
    loom::lazy_static! { static ref W: AtomicU64 = AtomicU64::new(0); }
    &W
}

#[cfg(loom)]
fn snapshots() -> &'static AtomicU64 {
    loom::lazy_static! { static ref W: AtomicU64 = AtomicU64::new(0); }
    &W
}

#[cfg(loom)]
fn oldest() -> &'static AtomicU64 {
    loom::lazy_static! { static ref W: AtomicU64 = AtomicU64::new(u64::MAX); }
    &W
}

crate::sync::global! {
    /// The registered readers and the buried versions.
    static registry: Mutex<Registry> = Mutex::new(Registry {
        readers: Vec::new(),
        buried: Vec::new(),
        held: Vec::new(),
    });
}

/// Registers a snapshot reader; returns its epoch (never 0). Its reads see the commits whose
/// [`writer_view`] came before this.
///
/// # Panics
///
/// If 32,767 readers are registered already.
pub(crate) fn register() -> u64 {
    let mut reg = lock(registry());
    // Only changed under this lock.
    let word = snapshots().load(Ordering::Relaxed);
    assert!(
        word & COUNT_MASK < MAX_READERS,
        "commute: too many read-only transactions running at once (32,767)"
    );
    let epoch = (word >> COUNT_BITS) + 1;
    if reg.readers.is_empty() {
        // Before the count shows the reader: a committer that sees it sees this too.
        oldest().store(epoch, clock::SC_STORE);
    }
    reg.readers.push(epoch);
    snapshots().fetch_add((1 << COUNT_BITS) + 1, SC);
    clock::loom_fence();
    epoch
}

/// Deregisters the reader of `epoch` (its attempt is over); returns the versions that no
/// registered reader can reach any more, for the ordinary reclamation.
pub(crate) fn deregister(epoch: u64) -> Vec<Retired> {
    let mut reg = lock(registry());
    if let Some(i) = reg.readers.iter().position(|&e| e == epoch) {
        reg.readers.swap_remove(i);
    }
    let oldest_now = reg.readers.iter().copied().min().unwrap_or(u64::MAX);
    oldest().store(oldest_now, clock::SC_STORE);
    snapshots().fetch_sub(1, SC);
    clock::loom_fence();
    let mut freed = Vec::new();
    reg.held.retain_mut(|(tag, values)| {
        if *tag < oldest_now {
            freed.append(values);
            false
        } else {
            true
        }
    });
    reg.buried.retain(|&(tag, list)| {
        if tag < oldest_now {
            // SAFETY: every reader that could be reading the list has deregistered (see the
            // module doc); the list is handed over once.
            unsafe { retire_list(list, 0, &mut freed) };
            false
        } else {
            true
        }
    });
    freed
}

/// What a committer learns once its write locks are held: the `SNAPSHOTS` word it loaded
/// (the newest registered epoch and the number of registered readers), with [`LINGERING`] if
/// some variable kept versions then.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterView(u64);

impl WriterView {
    /// True if a snapshot reader was registered.
    #[inline(always)]
    fn readers(self) -> bool {
        self.0 & MAX_READERS != 0
    }

    /// True if a reader was registered or some variable kept versions: else no variable the
    /// committer holds keeps versions, and it has nothing to do for snapshots.
    #[inline(always)]
    fn active(self) -> bool {
        self.0 & COUNT_MASK != 0
    }

    /// The newest registered epoch.
    fn newest(self) -> u64 {
        self.0 >> COUNT_BITS
    }
}

/// Loads `SNAPSHOTS`; call once per commit, with every write lock held, before the first value
/// is stored.
#[inline(always)]
pub(crate) fn writer_view() -> WriterView {
    clock::loom_fence();
    let word = snapshots().load(SC_LOAD);
    // A variable of ours that keeps versions got them before the commit that last unlocked
    // it, which happened before we locked it: its count shows here.
    if lists().load(Ordering::Acquire) != 0 {
        WriterView(word | LINGERING)
    } else {
        WriterView(word)
    }
}

/// True if a commit of `var` has versions to keep or let go of ([`on_write`] does nothing
/// otherwise): a reader is registered, or the variable keeps versions.
#[inline(always)]
pub(crate) fn involved(var: &VarCore, view: WriterView) -> bool {
    view.active() && (view.readers() || !var.history_head(Ordering::Relaxed).is_null())
}

/// Called by a committer that holds `var`'s lock, before it stores the commit's value
/// (version `wv`), if [`involved`]: keeps the value it replaces (owned, if `drop_fn`) for the
/// registered readers that need it, and lets go of versions that none needs (into `retired`).
/// Returns true if a version took the old value over (the commit must not retire it).
#[cold]
pub(crate) fn on_write(
    var: &VarCore,
    drop_fn: Option<DropFn>,
    wv: u64,
    view: WriterView,
    retired: &mut Vec<Retired>,
) -> bool {
    let head = var.history_head(Ordering::Relaxed);
    let old = var.value.load(Ordering::Relaxed);
    // SAFETY: we hold the lock; the list is the variable's.
    let kept = unsafe { keep(var, head, old, drop_fn, wv, view, retired) };
    match (
        head.is_null(),
        var.history_head(Ordering::Relaxed).is_null(),
    ) {
        (true, false) => {
            lists().fetch_add(1, Ordering::Release);
        }
        (false, true) => {
            lists().fetch_sub(1, Ordering::Release);
        }
        _ => {}
    }
    kept
}

/// [`on_write`], given the list and the old value.
///
/// # Safety
///
/// `head` is `var`'s list, and the caller holds `var`'s lock.
#[inline(always)]
unsafe fn keep(
    var: &VarCore,
    head: *mut Version,
    old: u64,
    drop_fn: Option<DropFn>,
    wv: u64,
    view: WriterView,
    retired: &mut Vec<Retired>,
) -> bool {
    if !view.readers() {
        // No reader registered (one registering now sees this commit as before it): no one
        // needs the list. But one registering now may still load it before the store below,
        // and snapshot readers do not pin: the list is buried as a cut one is, kept until
        // every reader registered before the cut has deregistered (freed at once if none is).
        var.set_history_head(core::ptr::null_mut());
        if !head.is_null() {
            // SAFETY: unlinked by the store above (SC), handed over once.
            unsafe { bury(head, retired) };
        }
        return false;
    }
    // Loaded after `SNAPSHOTS` (`writer_view`): at most the epoch of every reader registered
    // before that load that is still registered (module doc).
    let oldest = oldest().load(SC_LOAD);
    let newest = view.newest();
    let mut kept = head;
    // SAFETY: versions of the list are alive while it links them (we hold the lock: only we
    // change it).
    unsafe {
        if !head.is_null() && (*head).epoch < oldest {
            var.set_history_head(core::ptr::null_mut());
            bury(head, retired);
            kept = core::ptr::null_mut();
        } else if !head.is_null() {
            let mut last = head;
            while (*last).older_epoch >= oldest {
                last = (*last).older.load(Ordering::Relaxed);
            }
            if !(*last).older.load(Ordering::Relaxed).is_null() {
                let cut = (*last).older.swap(core::ptr::null_mut(), clock::SC);
                clock::loom_fence();
                bury(cut, retired);
            }
        }
        if !kept.is_null() && (*kept).epoch >= newest {
            // Every registered reader already has its value.
            return false;
        }
    }
    let older_epoch = if kept.is_null() {
        0
    } else {
        // SAFETY: as above.
        unsafe { (*kept).epoch }
    };
    let version = Box::into_raw(Box::new(Version {
        bits: old,
        drop_fn,
        epoch: newest,
        replaced_at: wv,
        older: AtomicPtr::new(kept),
        older_epoch,
    }));
    // Before the value's store: a reader that sees the new value sees the version.
    var.set_history_head(version);
    drop_fn.is_some()
}

/// Keeps a cut-off list until every reader that may be reading it has deregistered (frees it
/// into `retired` at once if none is registered).
///
/// # Safety
///
/// `list` is unlinked (by an SC store), and handed over once.
unsafe fn bury(list: *mut Version, retired: &mut Vec<Retired>) {
    // After the cut's store (SC): readers registered later see the cut.
    let tag = snapshots().load(SC_LOAD) >> COUNT_BITS;
    let mut reg = lock(registry());
    if reg.readers.iter().all(|&epoch| epoch > tag) {
        // SAFETY: no reader that could have loaded the list before the cut is registered.
        unsafe { retire_list(list, 0, retired) };
    } else {
        reg.buried.push((tag, list));
    }
}

/// Called by a commit after registered readers (`view`) for the values it retires outside
/// variables (`TVar::retire_on_commit`: a queue's popped nodes and items), which a snapshot
/// reader may still reach through the old values kept for it: holds them until every reader
/// registered before the commit has deregistered. Returns them if none is registered any more
/// (the commit retires them itself).
pub(crate) fn hold(view: WriterView, mut values: Vec<Retired>) -> Vec<Retired> {
    let newest = view.newest();
    let mut reg = lock(registry());
    if reg.readers.iter().any(|&epoch| epoch <= newest) {
        reg.held.push((newest, core::mem::take(&mut values)));
    }
    values
}

/// True if `view` saw snapshot readers registered: a commit's retirements outside variables
/// go to [`hold`].
#[inline(always)]
pub(crate) fn holds(view: WriterView) -> bool {
    view.readers()
}

/// The epoch of the newest snapshot reader registered so far (0 if none ever was): loaded
/// during a commit, at least the newest epoch of every reader that commit is after
/// ([`crate::snapshot_mark`]).
pub(crate) fn mark() -> u64 {
    snapshots().load(SC_LOAD) >> COUNT_BITS
}

/// Waits until every snapshot reader of epoch `mark` or older has deregistered (at once if
/// none is registered): a value unlinked by a commit that loaded `mark` or less may be read in
/// place until then ([`crate::wait_for_readers`]). Outside transactions.
pub(crate) fn wait_for_readers_up_to(mark: u64) {
    let mut backoff = crate::internal::backoff::Backoff::new();
    // Counted among the waiters from the first check that finds a reader.
    let mut counted = None;
    // `OLDEST` is `u64::MAX` with no reader registered.
    while oldest().load(SC_LOAD) <= mark {
        counted.get_or_insert_with(crate::internal::reclaim::AwaitingReaders::new);
        backoff.snooze();
    }
}

/// The value of `var` in the snapshot of the reader of `epoch`, if a commit after it replaced
/// the value; `None` if none did (so far): the committed value read just before is the
/// snapshot's.
#[inline]
pub(crate) fn visible(var: &VarCore, epoch: u64) -> Option<u64> {
    let mut version = var.history_head(SC_LOAD);
    if version.is_null() {
        return None;
    }
    // SAFETY: a version stays alive while a registered reader may load it (module doc): the
    // reader of `epoch` is registered, and follows links only to versions stamped at least its
    // epoch, which no cut removes meanwhile.
    unsafe {
        if (*version).epoch < epoch {
            return None;
        }
        while (*version).older_epoch >= epoch {
            version = (*version).older.load(Ordering::Acquire);
        }
        Some((*version).bits)
    }
}

/// Frees a version and the value it owns.
///
/// # Safety
///
/// `bits` is a `Box<Version>` pointer no longer linked anywhere, freed once, once no reader
/// can read it or its value.
unsafe fn free_version(bits: u64) {
    // SAFETY: forwarded from the caller.
    let version = unsafe { Box::from_raw(bits as usize as *mut Version) };
    if let Some(drop_fn) = version.drop_fn {
        // SAFETY: the version owns its value (taken over from the commit that replaced it).
        unsafe { drop_fn(version.bits) };
    }
}

/// Hands every version of `list` to reclamation, each no earlier than `at` nor the commit that
/// replaced its value.
///
/// # Safety
///
/// `list` is unlinked, and no snapshot reader can reach it any more.
unsafe fn retire_list(list: *mut Version, at: u64, retired: &mut Vec<Retired>) {
    let mut next = list;
    while !next.is_null() {
        let version = next;
        // SAFETY: alive until retired (caller).
        unsafe {
            next = (*version).older.load(Ordering::Relaxed);
            retired.push(Retired {
                version: at.max((*version).replaced_at),
                bits: version as usize as u64,
                drop_fn: free_version,
            });
        }
    }
}

/// Lets go of a dropped variable's versions.
///
/// # Safety
///
/// The variable is being dropped: no snapshot reader can reach it, and `list` is handed over
/// once.
pub(crate) unsafe fn drop_versions(list: *mut Version) {
    lists().fetch_sub(1, Ordering::Release);
    let mut retired = Vec::new();
    // SAFETY: forwarded from the caller.
    unsafe { retire_list(list, 0, &mut retired) };
    for r in retired {
        // Ordinary transactions that began before a value was replaced may still read it.
        // SAFETY: each version is handed over once.
        unsafe {
            crate::internal::reclaim::drop_after_all_running_attempts(r.bits, r.drop_fn);
        }
    }
}
