//! The commit clock: versions without a shared increment per commit.
//!
//! TL2's global clock (GV1) makes every writing commit `fetch_add` one shared word: the scaling
//! wall of TL2-style STMs. We use TL2's GV5 idea instead, made safe for the C11 memory model:
//!
//! - A committer, once it holds its write locks, *reads* the clock `c` and writes version
//!   `wv = max(c, pre-lock versions of what it locked) + 1`. Disjoint committers only read the
//!   clock's cache line; it stays shared.
//! - A reader that meets a version `v` above its read version `rv` *advances* the clock to `v`
//!   (`fetch_max`) before it re-validates and extends its snapshot. So the clock moves only when
//!   some transaction actually reads a fresh value; commutes and blind writes never move it.
//! - Reclamation advances the clock to the versions it wants to free (see `reclaim.rs`).
//!
//! The TL2 invariant we need: if a transaction begins with (or extends to) `rv >= wv`, it sees
//! every lock of the commit that wrote `wv`, so it can never read an old value that commit
//! replaces. With GV1 the committer's `fetch_add` carries that by release/acquire. Here the
//! committer's clock read returned `c < wv`, while the reader's read returned a value `>= wv`
//! written later by some `fetch_max`; sequential consistency orders the committer's lock CAS
//! before its clock read, before that `fetch_max`, before the reader's clock read, before the
//! reader's load of the locked word, which therefore sees the lock. The same argument (two
//! committers whose validations could both miss each other's locks: the store-buffering shape)
//! needs validation loads to be sequentially consistent too.
//!
//! Own writes: a version's low bits name the thread that committed it. A transaction that
//! meets a version above its read version, but written by its own thread, accepts it without
//! extension: that commit finished before the transaction began, and the variable still shows
//! its version, so the value is the one the variable had when the transaction began — exactly
//! what a read at `rv` promises. So a thread that keeps updating its own data (a counter
//! shard, its own keys of a map) never touches the clock at all. (Registry slots are reused
//! only after their thread exited, so a tag also covers the slot's earlier owners, whose commits
//! all finished before.)
//!
//! So: lock CASes, clock accesses and lock-word loads on the read and validation paths are
//! `SeqCst` (on x86 these compile to the same instructions as acquire/release: the CAS is a
//! locked instruction anyway, loads are plain moves). Loom does not model `SeqCst` accesses (it
//! treats them as `AcqRel`) but does model `SeqCst` fences, so under `cfg(loom)` the same
//! ordering is expressed with fences at the two points that need it: after taking commit locks
//! (before reading the clock and validating) and after reading or advancing the clock (before
//! reading variables).

use crate::sync::atomic::{AtomicU64, Ordering};

/// The clock, on a cache line of its own (commits read it, readers advance it).
#[cfg(not(loom))]
static CLOCK: crossbeam_utils::CachePadded<AtomicU64> =
    crossbeam_utils::CachePadded::new(AtomicU64::new(0));

#[cfg(not(loom))]
#[inline(always)]
fn clock() -> &'static AtomicU64 {
    &CLOCK
}

#[cfg(loom)]
fn clock() -> &'static AtomicU64 {
    loom::lazy_static! { static ref CLOCK: AtomicU64 = AtomicU64::new(0); }
    &CLOCK
}

/// The ordering of clock accesses, lock CASes and lock-word loads on the read/validate paths.
pub(crate) const SC: Ordering = if cfg!(loom) {
    Ordering::AcqRel
} else {
    Ordering::SeqCst
};
/// The ordering of loads on those paths (`AcqRel` is not valid for loads).
pub(crate) const SC_LOAD: Ordering = if cfg!(loom) {
    Ordering::Acquire
} else {
    Ordering::SeqCst
};

/// The ordering of stores on those paths (`AcqRel` is not valid for stores).
pub(crate) const SC_STORE: Ordering = if cfg!(loom) {
    Ordering::Release
} else {
    Ordering::SeqCst
};

/// Under loom, a `SeqCst` fence standing in for the `SeqCst` accesses it cannot model.
#[inline(always)]
pub(crate) fn loom_fence() {
    #[cfg(loom)]
    crate::sync::atomic::fence(Ordering::SeqCst);
}

/// The read version for a transaction that begins now.
#[inline]
pub(crate) fn begin() -> u64 {
    let rv = clock().load(SC_LOAD);
    loom_fence();
    rv
}

/// Versions carry the committing thread's tag in their low bits (see "Own writes" in the
/// module doc); the count is above them.
pub(crate) const TAG_BITS: u32 = 10;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// The tag of threads that get none (more than `TAG_MASK` threads alive at once).
pub(crate) const NO_TAG: u64 = 0;

/// The tag of the thread whose registry slot is `slot`: `NO_TAG` when slots run out.
pub(crate) fn tag_for_slot(slot: usize) -> u64 {
    let tag = slot as u64 + 1;
    if tag <= TAG_MASK { tag } else { NO_TAG }
}

/// What the thread tagged `tag` compares the low bits of versions with ([`written_by`]): its
/// tag, or, for a thread without one, a value that the low bits of no version equal.
pub(crate) fn own_mark(tag: u64) -> u64 {
    if tag == NO_TAG { TAG_MASK + 1 } else { tag }
}

/// True if `version` was written by a commit of the thread whose [`own_mark`] is `own` (or of
/// a thread that held its registry slot before it): such a commit finished before anything
/// that thread runs now began. Never true for a thread without a tag.
#[inline(always)]
pub(crate) fn written_by(version: u64, own: u64) -> bool {
    version & TAG_MASK == own
}

/// A committer's write version; call after every write lock is held. `newest_locked` is the
/// highest pre-lock version among the locked variables, `tag` the committing thread's.
#[inline]
pub(crate) fn write_version(newest_locked: u64, tag: u64) -> u64 {
    loom_fence();
    let c = clock().load(SC_LOAD);
    let wv = (((c.max(newest_locked) >> TAG_BITS) + 1) << TAG_BITS) | tag;
    debug_assert!(wv < 1 << 61, "a version must fit a lock word");
    wv
}

/// The highest version that the public API takes from a caller and moves the clock to
/// (`Transaction::observe_version`, `wait_for_readers`): far above any version a commit writes
/// (one count of 2^10 per commit: 2^50 commits), and far enough below the 61 bits of version
/// that a lock word holds (`var::VERSION_SHIFT`) that every commit after the clock reached it
/// still fits. A clock moved past those bits would give every later commit the same version,
/// which read validation cannot tell apart.
pub(crate) const MAX_OUTSIDE_VERSION: u64 = 1 << 60;

/// Refuses a version above [`MAX_OUTSIDE_VERSION`] handed to `call`.
#[cold]
#[inline(never)]
pub(crate) fn not_a_version(call: &str, version: u64) -> ! {
    panic!(
        "commute: {call}({version:#x}): no commit hands out a version above 2^60; pass a \
         version that a commit handed to a publishing operation"
    )
}

/// Moves the clock up to at least `version`; returns the clock's value afterwards.
#[inline]
pub(crate) fn advance_to(version: u64) -> u64 {
    let before = clock().fetch_max(version, SC);
    loom_fence();
    before.max(version)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_without_a_tag_owns_no_version() {
        let untagged = own_mark(tag_for_slot(TAG_MASK as usize));
        let tagged = own_mark(tag_for_slot(0));
        for count in [0u64, 1, 7, 1 << 40] {
            // Versions of tagged threads (slots 0..TAG_MASK) and of untagged ones (low bits 0).
            for tag in [NO_TAG, 1, 2, TAG_MASK] {
                let version = (count << TAG_BITS) | tag;
                assert!(!written_by(version, untagged), "{version:#x}");
                assert_eq!(written_by(version, tagged), tag == 1, "{version:#x}");
            }
        }
    }
}
