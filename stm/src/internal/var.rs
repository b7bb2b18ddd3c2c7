//! The versioned lock word and the value word of one transactional variable.
//!
//! Lock word layout (TL2's versioned write lock, Dice, Shalev & Shavit 2006):
//!
//! ```text
//!  63                                   3     2          1         0
//! +--------------------------------------+-----------+---------+--------+
//! | version: clock value of last commit  | IRREVOC.  | WAITERS | LOCKED |
//! +--------------------------------------+-----------+---------+--------+
//! ```
//!
//! - `LOCKED`: a committer (or the irrevocable transaction) owns the variable. The owner keeps
//!   the pre-lock word, to restore it on abort. A committer's lock keeps the pre-lock version's
//!   count and puts its own thread's tag in the tag bits ([`locked_by`]; see "Own writes" in
//!   `clock.rs`), so that it recognises its own locks when it checks its reads ([`held_by`]):
//!   the versions of one variable differ in their counts, so the count alone says whether a
//!   read still holds ([`same_count`]).
//! - `IRREVOCABLE`: set together with `LOCKED` when the owner is the irrevocable transaction,
//!   which holds its locks for a whole attempt; committers never wait on such a lock.
//! - `WAITERS`: some transaction blocked in `retry` is waiting for this variable to change; the
//!   next committer to lock it wakes the waiters (see `wait.rs`).
//!
//! Readers use the lock word as a sequence lock: load it, load the value, load it again; equal
//! unlocked words (ignoring `WAITERS`) mean the value belongs to that version.

use core::panic::Location;

use crate::internal::clock::{NO_TAG, TAG_BITS};
use crate::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Set while a committer or the irrevocable transaction owns the variable.
pub(crate) const LOCKED: u64 = 1;
/// Set while some `retry` waiter wants to hear of the next change.
pub(crate) const WAITERS: u64 = 1 << 1;
/// Set with `LOCKED` when the owner is the irrevocable transaction.
pub(crate) const IRREVOCABLE: u64 = 1 << 2;
/// The version is stored above the flag bits.
pub(crate) const VERSION_SHIFT: u32 = 3;

/// The version stored in a lock word.
#[inline]
pub(crate) fn version_of(lock_word: u64) -> u64 {
    lock_word >> VERSION_SHIFT
}

/// The unlocked lock word for `version`.
#[inline]
pub(crate) fn unlocked_word(version: u64) -> u64 {
    version << VERSION_SHIFT
}

/// The bits of a lock word that hold its version's thread tag: a committer's own tag while it
/// holds the lock ([`locked_by`]).
const OWNER_BITS: u64 = ((1 << TAG_BITS) - 1) << VERSION_SHIFT;

/// The unlocked `word` locked by a committer of the thread tagged `tag` (`NO_TAG` for a thread
/// without a tag): the version's count stays, its tag bits name the committer.
#[inline(always)]
pub(crate) fn locked_by(word: u64, tag: u64) -> u64 {
    debug_assert!(word & LOCKED == 0 && tag < 1 << TAG_BITS);
    (word & !OWNER_BITS) | (tag << VERSION_SHIFT) | LOCKED
}

/// True if `word` is a committer's lock ([`locked_by`], not the irrevocable transaction's) of
/// the thread tagged `tag`, which must not be `NO_TAG` (every thread without a tag locks with
/// that one). Tags are unique among live threads, and a thread's locks are all released when
/// its commit ends: such a word is a lock of the caller's commit in progress.
#[inline(always)]
pub(crate) fn held_by(word: u64, tag: u64) -> bool {
    debug_assert!(tag != NO_TAG);
    word & (OWNER_BITS | IRREVOCABLE | LOCKED) == (tag << VERSION_SHIFT) | LOCKED
}

/// True if versions `a` and `b` of one variable are the same version: every commit gives the
/// variable a version of a higher count than the one it replaced (`clock::write_version`), so
/// the counts alone tell, even when one of them comes from a locked word (whose tag bits are
/// the locker's).
#[inline(always)]
pub(crate) fn same_count(a: u64, b: u64) -> bool {
    a >> TAG_BITS == b >> TAG_BITS
}

/// Where a variable came from: its creation site and an optional user label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) site: &'static Location<'static>,
    pub(crate) label: Option<&'static str>,
}

impl Origin {
    pub(crate) fn site(site: &'static Location<'static>) -> Self {
        Origin { site, label: None }
    }
}

/// An [`Origin`] in one word, so that a variable takes 32 bytes rather than 56 (a `TMap` has
/// one per trie slot): the creation site's address, or, with the low bit set, the address of
/// an interned `Origin` that also carries a label. Labels are rare and set once, usually right
/// after creation, so interning them costs nothing that matters; sites and interned origins are
/// `&'static` and word-aligned, which frees the low bit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OriginWord(usize);

impl OriginWord {
    const LABELED: usize = 1;

    fn new(origin: Origin) -> Self {
        match origin.label {
            None => OriginWord(origin.site as *const Location<'static> as usize),
            Some(_) => OriginWord(intern(origin) as *const Origin as usize | Self::LABELED),
        }
    }

    fn get(self) -> Origin {
        if self.0 & Self::LABELED == 0 {
            // SAFETY: made from a `&'static Location` in `new`.
            Origin::site(unsafe { &*(self.0 as *const Location<'static>) })
        } else {
            // SAFETY: made from an `&'static Origin` (interned, never freed) in `new`.
            *unsafe { &*((self.0 & !Self::LABELED) as *const Origin) }
        }
    }
}

/// The one `&'static Origin` for `origin`, leaked on first use: at most one per distinct
/// creation site and label. Outside loom's model (a plain `std` lock, held for no yield point):
/// labels have nothing to do with the protocol it checks.
fn intern(origin: Origin) -> &'static Origin {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static INTERNED: OnceLock<Mutex<HashSet<&'static Origin>>> = OnceLock::new();
    let mut set = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&known) = set.get(&origin) {
        return known;
    }
    let leaked: &'static Origin = Box::leak(Box::new(origin));
    set.insert(leaked);
    leaked
}

// The low bit of a site's or an interned origin's address is free for `OriginWord::LABELED`.
const _: () = assert!(core::mem::align_of::<Location<'static>>() >= 2);
const _: () = assert!(core::mem::align_of::<Origin>() >= 2);
// Lock word, value word, origin word, last writer.
#[cfg(all(not(loom), target_pointer_width = "64"))]
const _: () = assert!(core::mem::size_of::<VarCore>() == 32);

/// The untyped part of every `TVar` and `TBox`: lock word, value word, origin.
#[derive(Debug)]
pub(crate) struct VarCore {
    pub(crate) lock: AtomicU64,
    pub(crate) value: AtomicU64,
    origin: OriginWord,
    /// Null; or the call site of the last transaction that committed a write, kept only while
    /// the conflict profiler is on; or, with the low bit set, the newest of the old versions
    /// kept for read-only snapshot transactions (`history.rs`), which takes the word's place
    /// while there are any (the profiler then names no last writer). Changed only by the
    /// holder of the variable's lock (or its sole owner).
    extra: AtomicPtr<()>,
    /// Creation number: the lock order under loom, whose executions must not depend on
    /// addresses (they differ from one execution to the next).
    #[cfg(loom)]
    seq: u64,
}

/// One consistent read of a variable: its value and the version it belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Snapshot {
    /// An unlocked, untorn read.
    Value { bits: u64, version: u64 },
    /// The variable was locked (by the lock word given).
    Locked(u64),
}

impl VarCore {
    pub(crate) fn new(bits: u64, origin: Origin) -> Self {
        VarCore {
            lock: AtomicU64::new(0),
            value: AtomicU64::new(bits),
            origin: OriginWord::new(origin),
            extra: AtomicPtr::new(core::ptr::null_mut()),
            #[cfg(loom)]
            seq: {
                // Deliberately not a loom atomic: a plain counter outside the model, giving
                // variables created in the same order the same relative keys in every execution.
                static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        }
    }

    /// The key of the global lock order (and of `retry` wait stripes): the address, or under
    /// loom the creation number.
    #[inline]
    pub(crate) fn lock_order(&self) -> usize {
        #[cfg(loom)]
        return self.seq as usize;
        #[cfg(not(loom))]
        self.addr()
    }

    /// The variable's address, its identity in read and write sets.
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        self as *const VarCore as usize
    }

    /// One try to lock the variable from whatever word it holds, as a committer of the thread
    /// tagged `tag` does ([`locked_by`]): `Ok(word)` (the word before) if it was unlocked and
    /// this CAS locked it; `Err(word)` if it is locked (`word` says by whom), or, with an
    /// unlocked `word`, if the CAS lost a race (try again).
    #[inline(always)]
    pub(crate) fn try_lock(&self, tag: u64) -> Result<u64, u64> {
        let word = self.lock.load(Ordering::Relaxed);
        if word & LOCKED == 0
            && self
                .lock
                .compare_exchange_weak(
                    word,
                    locked_by(word, tag),
                    crate::internal::clock::SC,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Ok(word);
        }
        Err(word)
    }

    /// One sequence-lock read: a value with its version, or the lock word if locked.
    #[inline]
    pub(crate) fn snapshot(&self) -> Snapshot {
        loop {
            let before = self.lock.load(crate::internal::clock::SC_LOAD);
            if before & LOCKED != 0 {
                return Snapshot::Locked(before);
            }
            // Acquire keeps the second lock-word load below from moving above this one.
            let bits = self.value.load(Ordering::Acquire);
            let after = self.lock.load(Ordering::Acquire);
            if (before | WAITERS) == (after | WAITERS) {
                return Snapshot::Value {
                    bits,
                    version: version_of(before),
                };
            }
            // A commit (or a waiter flag) moved under us: read again.
            crate::sync::spin_hint();
        }
    }

    /// The latest committed value, waiting out any commit in progress.
    pub(crate) fn load_committed(&self) -> u64 {
        let mut backoff = crate::internal::backoff::Backoff::new();
        loop {
            match self.snapshot() {
                Snapshot::Value { bits, .. } => return bits,
                Snapshot::Locked(word) if word & IRREVOCABLE != 0 => {
                    // The irrevocable owner may hold the lock for a whole transaction, but the
                    // value word keeps the committed value until its write-back, which happens
                    // under the lock; reading it here would race with that write-back, so wait.
                    backoff.snooze();
                }
                Snapshot::Locked(_) => backoff.snooze(),
            }
        }
    }
}

impl VarCore {
    /// Removes this variable from the calling thread's running attempt, if any: it is being
    /// dropped, which needs exclusive ownership, so no other thread can see it, and the attempt
    /// must not touch its memory again.
    pub(crate) fn forget_in_running_tx(&self) {
        crate::internal::thread::forget_var(self);
    }
}

impl VarCore {
    /// True if a `retry` waiter (a sleeping thread or a pending future) has asked to hear of
    /// this variable's next change. Acquire: a waiter that a caller has seen outside
    /// `atomically` (see [`TBox::get_mut`](crate::TBox::get_mut)) flagged it before it left.
    pub(crate) fn waited_on(&self) -> bool {
        self.lock.load(Ordering::Acquire) & WAITERS != 0
    }

    /// Makes the variable dead for every attempt that still holds its address (one of another
    /// thread that reached it through a handle it let go of): locks it for good, marked
    /// `IRREVOCABLE`, so that such an attempt aborts on it (as on the irrevocable transaction's
    /// locks) instead of committing to it; waits first for a committer that holds it. Called
    /// by the variable's sole owner, before it takes the value out or moves it elsewhere.
    pub(crate) fn kill(&self) {
        let mut backoff = crate::internal::backoff::Backoff::new();
        loop {
            let word = self.lock.load(Ordering::Relaxed);
            if word & IRREVOCABLE != 0 && crate::internal::thread::holds_irrevocable_token() {
                // Locked by this thread's own irrevocable attempt, which has forgotten the
                // variable: nobody will unlock it, so it is dead already.
                return;
            }
            if word & LOCKED == 0
                && self
                    .lock
                    .compare_exchange_weak(
                        word,
                        word | LOCKED | IRREVOCABLE,
                        crate::internal::clock::SC,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                if word & WAITERS != 0 {
                    // A `retry` waiter registered on it: let it run again (it will not find
                    // the variable, which it can no longer reach).
                    crate::internal::wait::wake(self);
                }
                return;
            }
            backoff.snooze();
        }
    }
}

/// Frees a variable's heap block given as the bits of its `Box` pointer.
///
/// # Safety
///
/// `bits` come from `Box::<VarCore>::into_raw`, and the block is freed once.
pub(crate) unsafe fn drop_block(bits: u64) {
    // SAFETY: forwarded from the caller.
    drop(unsafe { Box::from_raw(bits as usize as *mut VarCore) });
}

impl Drop for VarCore {
    fn drop(&mut self) {
        self.forget_in_running_tx();
        let versions = self.history_head(Ordering::Relaxed);
        if !versions.is_null() {
            // SAFETY: the variable is being dropped, so no snapshot reader can reach it (and its
            // versions) any more, and nothing else will let go of them.
            unsafe { crate::internal::history::drop_versions(versions) };
        }
    }
}

/// The tag of an `extra` word that points at old versions.
const HISTORY_TAG: usize = 1;

impl VarCore {
    /// Where the variable came from.
    #[inline]
    pub(crate) fn origin(&self) -> Origin {
        self.origin.get()
    }

    /// Gives the variable a label (or a new one).
    pub(crate) fn set_label(&mut self, label: &'static str) {
        self.origin = OriginWord::new(Origin {
            label: Some(label),
            ..self.origin()
        });
    }

    /// Gives the variable another creation site, keeping its label.
    pub(crate) fn set_site(&mut self, site: &'static Location<'static>) {
        self.origin = OriginWord::new(Origin {
            site,
            ..self.origin()
        });
    }

    /// The call site of the last transaction that committed a write (profiler on), if known.
    pub(crate) fn last_writer(&self) -> Option<&'static Location<'static>> {
        let p = self.extra.load(Ordering::Relaxed);
        // SAFETY: an untagged word is only ever set from a `&'static Location` (`note_writer`).
        (!p.is_null() && p.addr() & HISTORY_TAG == 0)
            .then(|| unsafe { &*p.cast::<Location<'static>>() })
    }

    /// Records the call site of a committing writer (profiler on), unless the word holds old
    /// versions. Called with the variable locked.
    pub(crate) fn note_writer(&self, site: &'static Location<'static>) {
        if self.extra.load(Ordering::Relaxed).addr() & HISTORY_TAG == 0 {
            let site: *const Location<'static> = site;
            self.extra.store(site.cast_mut().cast(), Ordering::Relaxed);
        }
    }

    /// The newest old version kept for snapshot readers, or null.
    #[inline]
    pub(crate) fn history_head(&self, order: Ordering) -> *mut crate::internal::history::Version {
        let p = self.extra.load(order);
        if p.addr() & HISTORY_TAG == 0 {
            core::ptr::null_mut()
        } else {
            p.map_addr(|a| a & !HISTORY_TAG).cast()
        }
    }

    /// Makes `head` (or none, if null) the newest old version. Called with the variable
    /// locked; sequentially consistent (see `history.rs`).
    pub(crate) fn set_history_head(&self, head: *mut crate::internal::history::Version) {
        let word = if head.is_null() {
            core::ptr::null_mut()
        } else {
            head.map_addr(|a| a | HISTORY_TAG).cast()
        };
        self.extra.store(word, crate::internal::clock::SC_STORE);
        crate::internal::clock::loom_fence();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Origin, OriginWord, VarCore, intern};
    use core::panic::Location;

    #[test]
    fn origin_words_round_trip_and_labels_are_interned_once() {
        let site = Location::caller();
        let plain = Origin::site(site);
        assert_eq!(OriginWord::new(plain).get(), plain);
        let labeled = Origin {
            site,
            label: Some("hits"),
        };
        assert_eq!(OriginWord::new(labeled).get(), labeled);
        assert!(core::ptr::eq(intern(labeled), intern(labeled)));
        let other = Origin {
            site,
            label: Some("misses"),
        };
        assert!(!core::ptr::eq(intern(labeled), intern(other)));

        let mut var = VarCore::new(7, plain);
        assert_eq!(var.origin(), plain);
        var.set_label("hits");
        assert_eq!(var.origin(), labeled);
        var.set_label("misses");
        assert_eq!(var.origin(), other);
    }
}
