//! The read phase: sequence-lock reads validated against the read version, timestamp
//! extension (LSA) when a newer version shows up, and pinning for heap values.

use super::{READ_LOCK_PATIENCE, ReadEntry, StmError, StmResult, Transaction, TxState};
use crate::internal::backoff::Backoff;
use crate::internal::clock;
use crate::internal::var::{IRREVOCABLE, LOCKED, Snapshot, VarCore, version_of};
use crate::internal::write_set::Pending;
use crate::stats::AbortCause;
use crate::sync::atomic::Ordering;

impl Transaction {
    /// Reads a variable's word: own pending value first, else a validated committed value.
    ///
    /// Inlined for the common case: an ordinary attempt that has written nothing yet (or only
    /// a few other variables: an event's counter before its map and queue) reads a variable
    /// that is unlocked, and no newer than its read version or last written by this thread
    /// (the first loop turn of
    /// [`read_committed`](Self::read_committed)). Everything else goes to
    /// [`read_word_slow`](Self::read_word_slow), which starts over.
    #[inline(always)]
    pub(crate) fn read_word(&self, var: &VarCore) -> StmResult<u64> {
        if self.plain() {
            let mut st = self.state();
            if st.writes.is_empty() || st.writes.lacks_few(var) {
                if let Some(bits) = self.read_current(&mut st, var) {
                    return Ok(bits);
                }
            }
        }
        self.read_word_slow(var)
    }

    /// [`read_word`](Self::read_word) of a variable whose values for which `settled` holds are
    /// its last: once it holds one, no commit changes it again (a `TMap` slot below the root
    /// that holds an inner node). Such a value, committed at or before the read version (or by
    /// this thread), is not recorded in the read set: validating it could never fail, and a
    /// `retry` has no change of it to wait for. The attempt cannot have written the variable
    /// either: it writes only what it read unsettled, and a commit that settled it since then
    /// is newer than the read version (and moving the read version past it validates the
    /// unsettled read, which then fails). Every other value reads as `read_word` reads it.
    #[inline(always)]
    pub(crate) fn read_word_settled(
        &self,
        var: &VarCore,
        settled: impl FnOnce(u64) -> bool,
    ) -> StmResult<u64> {
        if self.plain() {
            if let Snapshot::Value { bits, version } = var.snapshot() {
                if version <= self.rv.get() || clock::written_by(version, self.ctx().own_mark) {
                    if settled(bits) {
                        return Ok(bits);
                    }
                    let mut st = self.state();
                    if st.writes.is_empty() {
                        st.reads.push(ReadEntry { var, version });
                        return Ok(bits);
                    }
                    drop(st);
                    return self.read_unsettled(var, bits, version);
                }
            }
        }
        self.read_word_slow(var)
    }

    /// [`read_word_settled`](Self::read_word_settled) of a value it found unsettled, committed
    /// at `version`, no newer than the read version (or by this thread), by an attempt that has
    /// written: recorded, as `read_current` records it, unless the attempt wrote the variable
    /// or has more writes than the inline scan looks at (`read_word_slow` then reads it).
    /// Out of line: inlined into every `TMap` walk, its scan of the write set cost STAMP
    /// vacation's actions about 80 instructions each through their registers, though their
    /// presized maps' walks stop at the root and never come here
    /// (`scripts/vacation-instructions.sh`).
    #[inline(never)]
    fn read_unsettled(&self, var: &VarCore, bits: u64, version: u64) -> StmResult<u64> {
        let mut st = self.state();
        if st.writes.lacks_few(var) {
            st.reads.push(ReadEntry { var, version });
            return Ok(bits);
        }
        drop(st);
        self.read_word_slow(var)
    }

    /// The committed value of `var`, which the attempt has not written, in the usual case:
    /// unlocked, and no newer than the attempt's read version or last written by this thread
    /// (the first loop turn of [`read_committed`](Self::read_committed)); recorded in the read
    /// set. `None` otherwise: the caller reads it the general way.
    #[inline(always)]
    fn read_current(&self, st: &mut TxState, var: &VarCore) -> Option<u64> {
        if let Snapshot::Value { bits, version } = var.snapshot() {
            if version <= self.rv.get() || clock::written_by(version, self.ctx().own_mark) {
                st.reads.push(ReadEntry { var, version });
                return Some(bits);
            }
        }
        None
    }

    /// [`read_word`](Self::read_word) off its inlined path. An ordinary attempt searches its
    /// write set once: a variable it has written reads as the pending value (a queue's head,
    /// popped again in the same attempt), one it has not as the committed value (a read after
    /// more writes than the inlined path scans); the rest (commutes, publishing operations,
    /// the other modes) goes on to [`read_word_general`](Self::read_word_general).
    #[inline(never)]
    fn read_word_slow(&self, var: &VarCore) -> StmResult<u64> {
        if self.plain() {
            let mut st = self.state();
            match st.writes.find(var) {
                Some(i) => {
                    if let Pending::Write(bits) = st.writes.entries[i].pending {
                        return Ok(bits);
                    }
                }
                // Not in the write set (the fast path gave way to a set too large to scan
                // inline, or to a version newer than the attempt's): the committed value, its
                // usual case here as on the inlined path; the rest (a lock, a newer version)
                // as `read_word_general` reads it after searching the set again.
                None => {
                    if let Some(bits) = self.read_current(&mut st, var) {
                        return Ok(bits);
                    }
                }
            }
        }
        self.read_word_general(var)
    }

    /// [`read_word`](Self::read_word) in every case: pending values, snapshots, the
    /// irrevocable mode, locked variables and timestamp extension.
    #[inline(never)]
    fn read_word_general(&self, var: &VarCore) -> StmResult<u64> {
        let mut st = self.state();
        if !st.writes.is_empty() {
            if let Some(i) = st.writes.find(var) {
                let pending = st.writes.entries[i].pending;
                return match pending {
                    Pending::Write(bits) => Ok(bits),
                    Pending::Local(_) => {
                        drop(st);
                        panic!(
                            "commute: a TVar used as a transaction-local key (set_local) is also \
                             read as a shared variable; use a TVar of its own as the key"
                        )
                    }
                    // The irrevocable transaction holds the lock: the value word is stable.
                    Pending::Hold => Ok(var.value.load(Ordering::Acquire)),
                    // Publishing operations are invisible to the transaction's own reads.
                    Pending::Publish(_) if self.irrevocable() => {
                        held_read(&mut st, i);
                        Ok(var.value.load(Ordering::Acquire))
                    }
                    // A snapshot attempt reads its snapshot's value, never a newer one.
                    Pending::Publish(_) if self.is_snapshot() => self.read_snapshot(var),
                    Pending::Publish(_) => self.read_committed(&mut st, var),
                    Pending::Commute(_) | Pending::Add(_) => {
                        // Reading a commuted variable turns it into an ordinary read and write.
                        let base = if self.irrevocable() {
                            held_read(&mut st, i);
                            var.value.load(Ordering::Acquire)
                        } else if self.is_snapshot() {
                            self.read_snapshot(var)?
                        } else {
                            self.read_committed(&mut st, var)?
                        };
                        let bits = match pending {
                            Pending::Add(d) => base.wrapping_add(d),
                            Pending::Commute(ops) => st.writes.ops[ops as usize].apply(base),
                            _ => unreachable!("matched above"),
                        };
                        st.writes.get_mut(i).pending = Pending::Write(bits);
                        Ok(bits)
                    }
                };
            }
        }
        if self.is_snapshot() {
            return self.read_snapshot(var);
        }
        if self.irrevocable() {
            let i = self.lock_irrevocably(&mut st, var);
            debug_assert!(matches!(st.writes.entries[i].pending, Pending::Hold));
            // Recorded as a read (for the wait of a retry; an irrevocable commit checks none).
            let version = version_of(st.writes.entries[i].locked_word);
            st.reads.push(ReadEntry { var, version });
            return Ok(var.value.load(Ordering::Acquire));
        }
        self.read_committed(&mut st, var)
    }

    /// A committed value consistent with the rest of the read set; records the read.
    #[inline(always)]
    pub(super) fn read_committed(&self, st: &mut TxState, var: &VarCore) -> StmResult<u64> {
        let mut backoff = Backoff::new();
        loop {
            match var.snapshot() {
                Snapshot::Value { bits, version } => {
                    if version > self.rv.get() && !clock::written_by(version, self.ctx().own_mark) {
                        if let Err(e) = self.extend(st, version) {
                            if self.profiling {
                                self.involve_other_changes(st, Some(var));
                            }
                            return Err(e);
                        }
                        continue;
                    }
                    st.reads.push(ReadEntry { var, version });
                    return Ok(bits);
                }
                Snapshot::Locked(word) => {
                    if word & IRREVOCABLE != 0 || backoff.steps() >= READ_LOCK_PATIENCE {
                        return Err(self.conflict(st, AbortCause::LockBusy, var));
                    }
                    backoff.snooze();
                }
            }
        }
    }

    /// Timestamp extension: advance the clock to `version` (a newer version this attempt met);
    /// if every read still holds, move `rv` up to the clock.
    #[inline]
    pub(super) fn extend(&self, st: &mut TxState, version: u64) -> StmResult<()> {
        let now = clock::advance_to(version);
        let changed = st.reads.iter().find(|r| {
            let word = r.var().lock.load(clock::SC_LOAD);
            word & LOCKED != 0 || version_of(word) != r.version
        });
        if let Some(r) = changed {
            let var = r.var;
            // SAFETY: see `ReadEntry::var`.
            return Err(self.conflict(st, AbortCause::ReadValidation, unsafe { &*var }));
        }
        self.rv.set(now);
        Ok(())
    }

    /// Low-level: keeps every heap value reachable from variables read from now on alive until
    /// the attempt ends.
    ///
    /// [`TBox::read`](crate::TBox::read) does this itself. Collections that store raw pointers
    /// in `TVar`s and free replaced nodes with
    /// [`retire_on_commit`](Transaction::retire_on_commit) call it before following them.
    /// Cheap after the first call in an attempt. A [snapshot](crate::read_only) attempt needs
    /// no pin (what it reads is kept for it otherwise), and does nothing here.
    ///
    /// # Examples
    ///
    /// ```
    /// commute_stm::atomically(|tx| {
    ///     tx.pin();
    ///     Ok(())
    /// });
    /// ```
    #[inline]
    pub fn pin(&self) {
        if !self.pinned.get() {
            self.pin_first();
        }
    }

    /// Low-level: gives way to a thread that waits for this attempt to end. Returns a conflict
    /// (the attempt is rolled back and runs again; a snapshot attempt, as an ordinary one) if
    /// the attempt has pinned its thread ([`pin`](Self::pin)), or is a
    /// [snapshot](crate::read_only), while another thread waits for such attempts to end, in
    /// [`wait_for_readers`](crate::wait_for_readers) (which `commute::Taken::into_inner`
    /// calls); `Ok` otherwise.
    ///
    /// For an attempt that waits for another thread (for its turn in an order of commits,
    /// say): the waiting thread may be the very one it waits for, and the two would wait for
    /// ever. Call it, and pass its error on with `?`, before the wait and again while waiting.
    /// Cheap: two loads.
    ///
    /// # Errors
    ///
    /// A conflict, as described above.
    ///
    /// # Examples
    ///
    /// ```
    /// commute_stm::atomically(|tx| {
    ///     tx.pin();
    ///     // No other thread waits for readers here.
    ///     tx.give_way()?;
    ///     Ok(())
    /// });
    /// ```
    pub fn give_way(&self) -> StmResult<()> {
        if (self.pinned.get() || self.is_snapshot()) && crate::internal::reclaim::readers_awaited()
        {
            let word = &self.snapshot;
            word.set(word.get() | super::snapshot::GAVE_WAY);
            return Err(StmError::CONFLICT);
        }
        Ok(())
    }

    /// The first [`pin`](Self::pin) of an ordinary attempt pins the thread at the attempt's read
    /// version; a snapshot attempt does nothing.
    fn pin_first(&self) {
        if self.is_snapshot() {
            // What a snapshot reads stays alive without a pin: values replaced after it are
            // kept in versions, values retired outside variables are held for it (`history`).
            return;
        }
        self.ctx().pin(self.rv.get());
        self.pinned.set(true);
    }

    /// Low-level: the attempt's read version. Everything it has read belongs to the committed
    /// state at this version of the commit clock.
    ///
    /// # Examples
    ///
    /// ```
    /// let rv = commute_stm::atomically(|tx| Ok(tx.read_version()));
    /// let _ = rv;
    /// ```
    pub fn read_version(&self) -> u64 {
        self.rv.get()
    }

    /// Low-level: makes sure the attempt's snapshot includes the commit with version `version`.
    ///
    /// Collections call it when they follow a link that a commit published outside `TVar`s (see
    /// [`TVar::publish_on_commit`](crate::TVar::publish_on_commit), which hands publishing code
    /// the commit version): if `version` is newer than the snapshot, every earlier read is
    /// re-validated and the snapshot moves forward, or the attempt aborts. That keeps attempts
    /// opaque. A [`read_only`](crate::read_only) snapshot cannot move: unless the version is
    /// one of this thread's own commits (which came before it), it leaves the snapshot and the
    /// closure runs again as an ordinary transaction. (Versions run ahead of the clock, so
    /// a commit after the snapshot may carry a version at or below its read version: the
    /// version alone cannot show a commit to be before a snapshot.)
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when an earlier read has changed; pass it on with `?`.
    ///
    /// # Panics
    ///
    /// If `version` is above 2^60 and not at or below the attempt's read version: no commit
    /// hands out such a version (the clock must never be moved past what a lock word holds).
    ///
    /// # Examples
    ///
    /// ```
    /// commute_stm::atomically(|tx| tx.observe_version(0));
    /// ```
    #[inline]
    pub fn observe_version(&self, version: u64) -> StmResult<()> {
        // Inline up to the usual answers: a version the attempt's snapshot already includes, or
        // one this thread's own commit wrote (see `clock::written_by`). A `read_only` snapshot
        // cannot tell a commit before it from one after by its read version (versions run ahead
        // of the clock): only its thread's own commits are known to be before it.
        if (version <= self.rv.get() && !self.is_snapshot())
            || clock::written_by(version, self.ctx().own_mark)
        {
            return Ok(());
        }
        self.observe_newer_version(version)
    }

    /// [`observe_version`](Self::observe_version) of a version newer than the read version,
    /// written by another thread.
    #[inline(never)]
    fn observe_newer_version(&self, version: u64) -> StmResult<()> {
        if version > clock::MAX_OUTSIDE_VERSION {
            clock::not_a_version("Transaction::observe_version", version);
        }
        if self.irrevocable() {
            return Ok(());
        }
        if self.is_snapshot() {
            // The commit may be after the snapshot, and what it published is not versioned.
            return Err(self.leave_snapshot());
        }
        let mut st = self.state();
        self.extend(&mut st, version)?;
        debug_assert!(
            version <= self.rv.get(),
            "a published version is never ahead of the clock"
        );
        Ok(())
    }
}

/// Records the read of write-set entry `i`, a variable the irrevocable attempt holds locked
/// (for a commute or a publishing operation), as a read: a retry waits for its change, and a
/// branch rolled back keeps its lock.
#[cold]
pub(super) fn held_read(st: &mut TxState, i: usize) {
    let e = &st.writes.entries[i];
    let read = ReadEntry {
        var: e.var,
        version: version_of(e.locked_word),
    };
    st.reads.push(read);
}
