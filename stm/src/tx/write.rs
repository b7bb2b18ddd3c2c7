//! The write set: buffered writes, commutative operations, commit-time publishing operations,
//! transaction-local values, irrevocable locks, and heap values to free or retire.

use super::{Transaction, TxState};
use crate::internal::backoff::Backoff;
use crate::internal::clock;
use crate::internal::var::{IRREVOCABLE, LOCKED, VarCore};
use crate::internal::write_set::{
    DropFn, Entry, Op, OpList, Pending, PublishOp, push_within_capacity,
};
use crate::sync::atomic::Ordering;

impl Transaction {
    /// Buffers a write of `bits`, a plain value (owning no heap memory: `TVar::write`).
    #[inline(always)]
    pub(crate) fn write_word(&self, var: &VarCore, bits: u64) {
        let mut st = self.state();
        self.buffer_write(&mut st, var, bits, None);
    }

    /// Buffers a write of `bits`, a heap value this attempt allocated, to a variable whose
    /// values are all such heap values (a `TBox`, an owned `TVar`): the value is freed with
    /// `drop_fn` unless a commit publishes it, and the one it replaces is retired by the
    /// commit. One borrow of the attempt's state for both records.
    #[inline(never)]
    pub(crate) fn write_allocated(&self, var: &VarCore, bits: u64, drop_fn: DropFn) {
        {
            // The usual cases without a call, in a small set with room in both lists: a new
            // entry, or the variable's own pending write overwritten (a map's bucket the
            // attempt rewrites: `buffer_write_slow`'s update of an entry, without its search).
            let st = &mut *self.state();
            if !self.irrevocable() && st.allocs.len() < st.allocs.capacity() {
                let done = match st.writes.find_small(var) {
                    Some(None) => {
                        st.writes
                            .push_small(Entry::new(var, Pending::Write(bits), Some(drop_fn)))
                    }
                    // Only a pending write: other kinds take the general path's checks.
                    Some(Some(i)) if matches!(st.writes.entries[i].pending, Pending::Write(_)) => {
                        overwrite_within_capacity(st, i, bits, Some(drop_fn))
                    }
                    _ => false,
                };
                if done {
                    st.extras = true;
                    let pushed = push_within_capacity(&mut st.allocs, (bits, drop_fn));
                    debug_assert!(pushed.is_ok(), "room checked above");
                    return;
                }
            }
        }
        self.write_allocated_slow(var, bits, drop_fn);
    }

    /// [`write_allocated`](Self::write_allocated) in every case.
    #[inline(never)]
    fn write_allocated_slow(&self, var: &VarCore, bits: u64, drop_fn: DropFn) {
        let mut st = self.state();
        st.extras = true;
        st.allocs.push((bits, drop_fn));
        self.buffer_write_slow(&mut st, var, bits, Some(drop_fn));
    }

    /// Records the write of `bits` to `var` in the write set (a new entry, or the variable's
    /// entry overwritten); `drop_old` frees the values of a variable that owns heap memory.
    #[inline(always)]
    fn buffer_write(&self, st: &mut TxState, var: &VarCore, bits: u64, drop_old: Option<DropFn>) {
        let entry = Entry::new(var, Pending::Write(bits), drop_old);
        if self.irrevocable() || !st.writes.try_push_small(entry) {
            self.buffer_write_slow(st, var, bits, drop_old);
        }
    }

    /// [`buffer_write`](Self::buffer_write) in every case.
    #[inline(never)]
    fn buffer_write_slow(
        &self,
        st: &mut TxState,
        var: &VarCore,
        bits: u64,
        drop_old: Option<DropFn>,
    ) {
        let i = match st.writes.find(var) {
            Some(i) => i,
            None if self.irrevocable() => self.lock_irrevocably(st, var),
            None => {
                st.writes
                    .push(Entry::new(var, Pending::Write(bits), drop_old));
                return;
            }
        };
        check_not_publishing(&st.writes.entries[i].pending);
        overwrite(st, i, bits, drop_old);
    }

    /// Buffers a wrapping add of `delta` to a 64-bit integer: a commute kept inline in the
    /// entry ([`Pending::Add`]).
    #[inline(never)]
    pub(crate) fn commute_add64(&self, var: &VarCore, delta: u64) {
        {
            let mut st = self.state();
            let entry = Entry::new(var, Pending::Add(delta), None);
            if !self.irrevocable() && st.writes.try_push_small(entry) {
                return;
            }
        }
        self.commute_add64_slow(var, delta);
    }

    /// [`commute_add64`](Self::commute_add64) in every case.
    #[inline(never)]
    fn commute_add64_slow(&self, var: &VarCore, delta: u64) {
        let st = &mut *self.state();
        let i = match st.writes.find(var) {
            Some(i) => i,
            None if self.irrevocable() => {
                // Locked, its value frozen; the add stays an add (the irrevocable commit adds
                // it to the value), so that a later read of the variable is recorded as a read,
                // as an optimistic attempt's is: a retry then waits on it.
                let i = self.lock_irrevocably(st, var);
                st.writes.get_mut(i).pending = Pending::Add(delta);
                return;
            }
            None => {
                st.writes.push_add(var, delta);
                return;
            }
        };
        let pending = st.writes.entries[i].pending;
        check_not_publishing(&pending);
        let new = match pending {
            Pending::Add(d) => Pending::Add(d.wrapping_add(delta)),
            Pending::Commute(ops) => {
                st.writes.push_op(
                    ops,
                    Op::Add(delta, crate::internal::write_set::wrapping_add_u64),
                );
                return;
            }
            Pending::Write(bits) => Pending::Write(bits.wrapping_add(delta)),
            Pending::Hold => Pending::Write(var.value.load(Ordering::Acquire).wrapping_add(delta)),
            Pending::Publish(_) | Pending::Local(_) => unreachable!("checked above"),
        };
        st.writes.get_mut(i).pending = new;
    }

    /// Buffers a commutative operation.
    #[inline]
    pub(crate) fn commute_word(&self, var: &VarCore, op: Op) {
        let mut guard = self.state();
        let st = &mut *guard;
        if matches!(op, Op::Apply(_)) {
            // A closure, which may own transactional variables: the end of the attempt drops
            // it, outside the transaction (`TxState::take_let_go`).
            st.note_closures();
        }
        let (i, locked_now) = match st.writes.find(var) {
            Some(i) => (i, false),
            None if self.irrevocable() => (self.lock_irrevocably(st, var), true),
            None => {
                st.writes.push_commute(var, op);
                return;
            }
        };
        let pending = st.writes.entries[i].pending;
        check_not_publishing(&pending);
        let old = match pending {
            Pending::Commute(ops) => {
                st.writes.push_op(ops, op);
                return;
            }
            // Irrevocable: the variable is locked, and its commit computes no commutes: the
            // operation runs now, on the committed value, which the attempt has then read
            // (recorded, so that a read of the result is one: a retry waits on the variable,
            // and a branch rolled back after such a read keeps its lock).
            Pending::Add(d) if self.irrevocable() => {
                super::read::held_read(st, i);
                var.value.load(Ordering::Acquire).wrapping_add(d)
            }
            Pending::Add(d) => {
                let ops = st.writes.add_to_list(i, d);
                st.writes.push_op(ops, op);
                return;
            }
            Pending::Write(bits) => bits,
            // Held for a read (recorded then), or locked just now for this operation.
            Pending::Hold => {
                if locked_now {
                    super::read::held_read(st, i);
                }
                var.value.load(Ordering::Acquire)
            }
            Pending::Publish(_) | Pending::Local(_) => unreachable!("checked above"),
        };
        let list = OpList::One(op);
        st.writes.get_mut(i).pending = Pending::Write(list.apply(old));
        // The operation is spent: dropped once the state is no longer borrowed, as the drop
        // of a transactional variable it owns needs it.
        drop(guard);
        drop(list);
    }

    /// Irrevocable mode: locks `var` for the rest of the attempt; returns its write-set index.
    pub(super) fn lock_irrevocably(&self, st: &mut TxState, var: &VarCore) -> usize {
        let mut backoff = Backoff::new();
        loop {
            let word = var.lock.load(Ordering::Relaxed);
            if word & LOCKED == 0 {
                if var
                    .lock
                    .compare_exchange_weak(
                        word,
                        word | LOCKED | IRREVOCABLE,
                        clock::SC,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    st.writes.push(Entry {
                        var,
                        pending: Pending::Hold,
                        drop_old: None,
                        locked_word: word,
                    });
                    return st.writes.len() - 1;
                }
            } else {
                // Only committers hold other locks, briefly, and they never wait for us.
                backoff.snooze();
            }
        }
    }

    /// Low-level: frees `ptr` (a `Box<T>` pointer) once this attempt has committed and no running
    /// transaction can still read it; does nothing if the attempt is rolled back.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `Box::<T>::into_raw`, and, if this attempt commits, it must be
    /// unreachable from every shared location for transactions that begin after the commit
    /// (the commit unlinks it), and must not be freed by anything else.
    ///
    /// # Examples
    ///
    /// ```
    /// let node = Box::into_raw(Box::new(5u64));
    /// commute_stm::atomically(|tx| {
    ///     // SAFETY: `node` was never shared and is retired exactly once (the closure runs once
    ///     // here: it has no reads, so it cannot conflict).
    ///     unsafe { tx.retire_on_commit(node) };
    ///     Ok(())
    /// });
    /// ```
    pub unsafe fn retire_on_commit<T: Send + 'static>(&self, ptr: *mut T) {
        let mut st = self.state();
        st.extras = true; // the end of the attempt must hand these on (slow path)
        st.retire_on_commit
            .push((ptr as usize as u64, drop_boxed::<T>, 0));
    }

    /// Low-level: [`retire_on_commit`](Transaction::retire_on_commit) tied to `var`: cancelled
    /// if `var` is dropped before the attempt ends (whoever frees the structure that `var`
    /// belongs to then frees `bits` too).
    pub(crate) fn retire_on_commit_of<T: Send + 'static>(&self, var: &VarCore, ptr: *mut T) {
        let mut st = self.state();
        st.extras = true;
        st.retire_on_commit
            .push((ptr as usize as u64, drop_boxed::<T>, var.addr()));
    }

    /// [`retire_on_commit_of`](Self::retire_on_commit_of) for a value that stands for `values`
    /// retired values: counted as that many towards this thread's next reclamation pass, now
    /// (an attempt that rolls back only makes that pass come a little early).
    pub(crate) fn retire_run_on_commit_of<T: Send + 'static>(
        &self,
        var: &VarCore,
        ptr: *mut T,
        values: usize,
    ) {
        self.retire_on_commit_of(var, ptr);
        self.ctx().bring_pass_closer(values.saturating_sub(1));
    }

    /// Buffers a commit-time publishing closure ([`PublishOp::Closure`]).
    pub(crate) fn publish_closure(&self, var: &VarCore, op: PublishOp) {
        // It may own transactional variables: the end of the attempt drops it, outside the
        // transaction (`TxState::take_let_go`).
        self.state().note_closures();
        self.publish_word(var, op);
    }

    /// Buffers a commit-time publishing operation.
    #[inline(never)]
    pub(crate) fn publish_word(&self, var: &VarCore, op: PublishOp) {
        let op = {
            // The usual case without a call: a new entry, with room in both lists.
            let st = &mut *self.state();
            if self.irrevocable() {
                op
            } else {
                match st.writes.try_publish_small(var, op) {
                    Ok(()) => return,
                    Err(op) => op,
                }
            }
        };
        self.publish_word_slow(var, op);
    }

    /// [`publish_word`](Self::publish_word) in every case.
    #[inline(never)]
    fn publish_word_slow(&self, var: &VarCore, op: PublishOp) {
        let mut st = self.state();
        let i = match st.writes.find(var) {
            Some(i) => i,
            None if self.irrevocable() => self.lock_irrevocably(&mut st, var),
            None => {
                let pending = st.writes.new_publish(op);
                st.writes.push(Entry::new(var, pending, None));
                return;
            }
        };
        match st.writes.entries[i].pending {
            Pending::Publish(list) => st.writes.push_publish(list, op),
            Pending::Hold => {
                let pending = st.writes.new_publish(op);
                st.writes.get_mut(i).pending = pending;
            }
            _ => panic!(
                "commute: publish_on_commit on a TVar that this transaction also writes, commutes \
                 or uses as a local key"
            ),
        }
    }

    /// The first (or, if `last`, the last) node of the publishing operations on `var` in this
    /// attempt (see `TVar::first_published_node`). The last is searched from the end of the
    /// attempt's operations and the first from the start, so a run of pushes to one queue
    /// finds either at once. Inline up to the usual answer: no publishing operation at all (a
    /// transaction's first push), no search.
    #[inline]
    pub(crate) fn published_node(&self, var: &VarCore, last: bool) -> Option<u64> {
        if self.state().writes.publishes.is_empty() {
            return None;
        }
        self.search_published_node(var, last)
    }

    /// [`published_node`](Self::published_node)'s search.
    #[inline(never)]
    fn search_published_node(&self, var: &VarCore, last: bool) -> Option<u64> {
        let st = self.state();
        let i = st.writes.find(var)?;
        let Pending::Publish(list) = st.writes.entries[i].pending else {
            return None;
        };
        let node_of = |(l, op): &(u32, PublishOp)| match op {
            PublishOp::Node { node, .. } if *l == list => Some(*node),
            _ => None,
        };
        let ops = &st.writes.publishes;
        if last {
            ops.iter().rev().find_map(node_of)
        } else {
            ops.iter().find_map(node_of)
        }
    }

    /// Sets the transaction-local value keyed by `var`.
    pub(crate) fn set_local(&self, var: &VarCore, bits: u64) {
        let mut st = self.state();
        match st.writes.find(var) {
            Some(i) => {
                let e = st.writes.get_mut(i);
                assert!(
                    matches!(e.pending, Pending::Local(_)),
                    "commute: a TVar used as a transaction-local key is also read or written"
                );
                e.pending = Pending::Local(bits);
            }
            None => {
                let addr = var.addr();
                if st.reads.iter().any(|r| r.var as usize == addr) {
                    drop(st);
                    panic!(
                        "commute: a TVar used as a transaction-local key (set_local) was also \
                         read as a shared variable; use a TVar of its own as the key"
                    );
                }
                st.writes.push(Entry::new(var, Pending::Local(bits), None))
            }
        }
    }

    /// The transaction-local value keyed by `var`, if set in this attempt.
    pub(crate) fn get_local(&self, var: &VarCore) -> Option<u64> {
        let st = self.state();
        st.writes
            .find(var)
            .and_then(|i| match st.writes.entries[i].pending {
                Pending::Local(bits) => Some(bits),
                _ => None,
            })
    }
}

/// Overwrites the pending value of write-set entry `i` (not a publishing operation nor a local)
/// with a write of `bits`; `drop_old` frees the values of a variable that owns heap memory.
#[inline(always)]
fn overwrite(st: &mut TxState, i: usize, bits: u64, drop_old: Option<DropFn>) {
    if !overwrite_within_capacity(st, i, bits, drop_old) {
        let overwritten = &mut st.overwritten;
        overwritten.reserve(overwritten.capacity().max(8));
        let done = overwrite_within_capacity(st, i, bits, drop_old);
        debug_assert!(done, "room reserved above");
    }
}

/// [`overwrite`] where the value overwritten, if the attempt must free it, fits in the
/// attempt's list of overwritten values without growing it; otherwise changes nothing and
/// returns false. No call in it: the inlined paths of [`Transaction::write_allocated`] use it.
#[inline(always)]
fn overwrite_within_capacity(
    st: &mut TxState,
    i: usize,
    bits: u64,
    drop_old: Option<DropFn>,
) -> bool {
    let e = st.writes.get_mut(i);
    if let (Pending::Write(old), Some(old_drop)) = (e.pending, e.drop_old) {
        // A pending write of a variable that owns heap values is one of the attempt's
        // allocations (`write_allocated` records both): no longer to be published, so freed
        // when the attempt ends.
        if push_within_capacity(&mut st.overwritten, (old, old_drop)).is_err() {
            return false;
        }
    }
    e.pending = Pending::Write(bits);
    // The new value's own free function, if it has one: the commit tells the value it
    // publishes from the attempt's other allocations by it (`remove_published`).
    e.drop_old = drop_old.or(e.drop_old);
    true
}

/// Panics if the entry holds commit-time publishing operations or a local value, which cannot be
/// mixed with writes and commutes of the same variable.
#[inline]
fn check_not_publishing(pending: &Pending) {
    if matches!(pending, Pending::Publish(_) | Pending::Local(_)) {
        mixed_with_publishing(pending);
    }
}

#[cold]
#[inline(never)]
fn mixed_with_publishing(pending: &Pending) -> ! {
    match pending {
        Pending::Publish(_) => panic!(
            "commute: a TVar with commit-time publishing operations cannot also be written or \
             commuted in the same transaction"
        ),
        _ => panic!(
            "commute: a TVar used as a transaction-local key cannot also be written or commuted"
        ),
    }
}

/// Drops a boxed `T` stored as bits.
///
/// # Safety
///
/// `bits` is a live `Box<T>` pointer that nothing else frees.
pub(crate) unsafe fn drop_boxed<T>(bits: u64) {
    // SAFETY: forwarded from the caller.
    drop(unsafe { Box::from_raw(bits as usize as *mut T) });
}
