//! `TBox<T>`: an owned transactional pointer to a heap value, with deferred reclamation.

use core::fmt;
use core::marker::PhantomData;
use core::panic::Location;

use crate::internal::var::{Origin, VarCore};
use crate::sync::atomic::Ordering;
use crate::tx::{StmResult, Transaction};

/// A transactional box: a heap value of any type, replaced as a whole inside transactions.
///
/// Reads borrow the value (no clone) for the rest of the transaction. A write allocates the new
/// value; the replaced one is freed only when no running transaction can still be reading it
/// (quiescence on the commit clock, see `ARCHITECTURE.md`). Values written by an attempt that is
/// rolled back are freed with it.
///
/// # Where and when a value is dropped
///
/// Never inside a transaction, so a value's `Drop` may itself use commute (run
/// [`atomically`](crate::atomically), update a counter, log to a queue):
///
/// - a value a commit **replaced** is dropped by a later reclamation pass, once no running
///   transaction can still read it: on the committing thread, after one of its next commits
///   (passes run every few dozen retirements), or by [`reclaim_retired`](crate::reclaim_retired);
///   if that thread exits first, the value goes to a process-wide list that the next pass of any
///   other thread empties (never from the exiting thread's thread-local destructors);
/// - a value **written by an attempt that does not commit it** (rolled back, or overwritten
///   later in the same attempt) is dropped when the attempt ends, right after it, on the same
///   thread;
/// - the value of a box **dropped inside a transaction** is dropped when that attempt ends, like
///   the values it wrote; the box's pending write, if any, goes with it (the box is gone);
/// - the value of a box dropped outside any transaction is dropped at once, unless other
///   threads are inside [`atomically`](crate::atomically) then: an attempt of theirs may still
///   hold the box (reached through a handle it has let go of), so the value (the one the box
///   holds by then) and the box's block wait until those calls have returned, and a later
///   reclamation pass drops them.
///
/// A destructor that panics does not stop the others of the same batch; its panic then
/// propagates from the `atomically` (or `reclaim_retired`) that ran it.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, TBox};
///
/// let names = TBox::new(vec!["ada".to_string()]);
/// atomically(|tx| {
///     let mut next = names.read(tx)?.clone();
///     next.push("grace".to_string());
///     names.write(tx, next);
///     Ok(())
/// });
/// assert_eq!(names.load().len(), 2);
/// ```
pub struct TBox<T> {
    /// In a heap block of its own, like a [`TVar`](crate::TVar)'s: a running attempt records it
    /// by address, and the box may move (be dropped, returned, swapped) during the attempt.
    core: core::mem::ManuallyDrop<Box<VarCore>>,
    _owns: PhantomData<T>,
}

/// Drops a value that `TBox` stored as the bits of a `Box<T>` pointer.
///
/// # Safety
///
/// `bits` must come from `Box::<T>::into_raw`, not yet freed, and no longer reachable.
unsafe fn drop_box<T>(bits: u64) {
    // SAFETY: forwarded from the caller.
    drop(unsafe { Box::from_raw(bits as usize as *mut T) });
}

fn into_bits<T>(value: T) -> u64 {
    Box::into_raw(Box::new(value)) as usize as u64
}

impl<T: Send + Sync + 'static> TBox<T> {
    /// Creates a box holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = commute_stm::TBox::new(String::from("hi"));
    /// assert_eq!(b.load(), "hi");
    /// ```
    #[track_caller]
    pub fn new(value: T) -> Self {
        TBox {
            core: core::mem::ManuallyDrop::new(Box::new(VarCore::new(
                into_bits(value),
                Origin::site(Location::caller()),
            ))),
            _owns: PhantomData,
        }
    }

    /// Names the box for statistics and conflict reports.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = commute_stm::TBox::new(0u8).with_label("config");
    /// ```
    pub fn with_label(mut self, label: &'static str) -> Self {
        self.core.set_label(label);
        self
    }

    #[inline]
    fn deref_bits<'a>(bits: u64) -> &'a T {
        // SAFETY: the bits are a live `Box<T>` pointer: either committed (and kept alive by the
        // caller's pin until its attempt or load ends) or allocated by the running attempt (freed
        // only after the attempt's closure returns).
        unsafe { &*(bits as usize as *const T) }
    }

    /// Borrows the value inside a transaction, for as long as the transaction runs.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TBox};
    ///
    /// let b = TBox::new(vec![1, 2, 3]);
    /// assert_eq!(atomically(|tx| Ok(b.read(tx)?.len())), 3);
    /// ```
    pub fn read<'a>(&'a self, tx: &'a Transaction) -> StmResult<&'a T> {
        tx.pin();
        tx.read_word(&self.core).map(Self::deref_bits)
    }

    /// Replaces the value inside a transaction (the new value is visible at commit).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TBox};
    ///
    /// let b = TBox::new(1u64);
    /// atomically(|tx| {
    ///     b.write(tx, 2);
    ///     Ok(())
    /// });
    /// assert_eq!(b.load(), 2);
    /// ```
    pub fn write(&self, tx: &Transaction, value: T) {
        let bits = into_bits(value);
        tx.write_allocated(&self.core, bits, drop_box::<T>);
    }

    /// Replaces the value with `f` of the current one.
    ///
    /// # Errors
    ///
    /// As for [`read`](TBox::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TBox};
    ///
    /// let b = TBox::new(String::from("a"));
    /// atomically(|tx| b.modify(tx, |s| format!("{s}b")));
    /// assert_eq!(b.load(), "ab");
    /// ```
    pub fn modify(&self, tx: &Transaction, f: impl FnOnce(&T) -> T) -> StmResult<()> {
        let new = f(self.read(tx)?);
        self.write(tx, new);
        Ok(())
    }

    /// Calls `f` with the latest committed value, outside any transaction. `f` runs pinned
    /// ([`pinned`](crate::pinned)): it may run transactions, but not wait for readers, nor block
    /// in [`retry`](crate::Transaction::retry) (both panic there).
    ///
    /// # Panics
    ///
    /// If called inside a transaction: use [`read`](TBox::read) there.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = commute_stm::TBox::new(vec![1, 2]);
    /// assert_eq!(b.load_with(|v| v.iter().sum::<i32>()), 3);
    /// ```
    pub fn load_with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        assert!(
            !crate::internal::thread::in_tx(),
            "commute: TBox::load_with/load called inside a transaction; use TBox::read(tx)"
        );
        crate::tx::alone::pinned(|| f(Self::deref_bits(self.core.load_committed())))
    }

    /// A clone of the latest committed value, outside any transaction. The clone is made
    /// pinned, as [`load_with`](TBox::load_with)'s closure runs.
    ///
    /// # Panics
    ///
    /// If called inside a transaction: use [`read`](TBox::read) there.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = commute_stm::TBox::new(String::from("x"));
    /// assert_eq!(b.load(), "x");
    /// ```
    pub fn load(&self) -> T
    where
        T: Clone,
    {
        self.load_with(T::clone)
    }

    /// The value, mutably: no transaction can be reading or writing it while the box is
    /// borrowed mutably.
    ///
    /// If other threads are inside [`atomically`](crate::atomically) meanwhile, or a `retry`
    /// waits on the box, the box first moves its variable to a fresh block (one allocation): an
    /// attempt of theirs that still holds the old one (it reached the box through a handle it
    /// has let go of) then aborts on it instead of replacing the value under this borrow, and a
    /// thread asleep in `retry` on it, or a pending future, runs again, as after a commit to
    /// the box. Inside a transaction that has
    /// written the box, this gives the committed value, and the pending write is then either
    /// committed after the borrow (as a write after it) or, if the box had to move, dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut b = commute_stm::TBox::new(1);
    /// *b.get_mut() += 1;
    /// assert_eq!(b.load(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // In this order: a waiter that counts as outside (asleep in `retry`, or a future
        // between polls) flagged the box before it left, which the mark seen first makes
        // visible to the flag's load.
        if crate::internal::thread::others_in_atomically() || self.core.waited_on() {
            // This thread's own attempt, if any, lets go of the old block too.
            self.core.forget_in_running_tx();
            self.core.kill();
            let fresh = VarCore::new(self.core.value.load(Ordering::Acquire), self.core.origin());
            let old = core::mem::replace(&mut *self.core, Box::new(fresh));
            // SAFETY: the old block, dead and no longer this box's, is freed once, after the
            // calls that may still hold it; its value moved to the fresh block.
            unsafe {
                crate::internal::reclaim::drop_after_running_attempts(
                    Box::into_raw(old) as usize as u64,
                    crate::internal::var::drop_block,
                )
            };
        }
        let bits = self.core.value.load(Ordering::Acquire);
        // SAFETY: `&mut self` proves no transaction of this thread holds the box, and no
        // attempt of another thread can commit to its current block (fresh if any may hold the
        // old one); the committed pointer is a live `Box<T>` that only this box owns.
        unsafe { &mut *(bits as usize as *mut T) }
    }

    /// The value, taken out of the box.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = commute_stm::TBox::new(vec![7]);
    /// assert_eq!(b.into_inner(), vec![7]);
    /// ```
    pub fn into_inner(self) -> T {
        let mut this = core::mem::ManuallyDrop::new(self);
        this.core.forget_in_running_tx();
        // An attempt of another thread that still holds the block (through a handle it has let
        // go of) must not replace the value we take: it aborts on the dead block instead.
        this.core.kill();
        let bits = this.core.value.load(Ordering::Acquire);
        // SAFETY: we own the box (by value) and skip its `Drop`; the block is dead, so nothing
        // replaces or frees the value: it is taken once, here.
        let value = unsafe { *Box::from_raw(bits as usize as *mut T) };
        // SAFETY: `this` is never used or dropped again, so its block is taken once, here.
        let block = unsafe { core::mem::ManuallyDrop::take(&mut this.core) };
        // SAFETY: `drop_block` frees the block once, after the calls that may still hold it.
        unsafe {
            crate::internal::reclaim::drop_after_running_attempts(
                Box::into_raw(block) as usize as u64,
                crate::internal::var::drop_block,
            )
        };
        value
    }
}

impl<T> Drop for TBox<T> {
    fn drop(&mut self) {
        // This thread's running attempt forgets the box now (its pending write goes with it).
        self.core.forget_in_running_tx();
        // SAFETY: the block is taken once, here, and never used through `self` again.
        let block = unsafe { core::mem::ManuallyDrop::take(&mut self.core) };
        let bits = Box::into_raw(block) as usize as u64;
        // Dropped inside a transaction: the value's own `Drop` runs when the attempt ends,
        // outside it (it may run transactions itself).
        if crate::internal::thread::free_after_attempt(bits, drop_dead_box_later::<T>) {
            return;
        }
        // SAFETY: the block (with its value) is handed over once, here.
        unsafe { drop_dead_box_later::<T>(bits) };
    }
}

/// Drops a dropped box's block and its value once no `atomically` call of another thread that
/// may still hold the block runs (at once if none: see `drop_after_running_attempts`).
///
/// # Safety
///
/// `bits` come from `Box::<VarCore>::into_raw` of a `TBox<T>`'s block, handed over once. (A
/// `TBox<T>` exists only with `T: Send + Sync + 'static`, the bounds of its constructors, so
/// the value may be dropped on any thread.)
unsafe fn drop_dead_box_later<T>(bits: u64) {
    // SAFETY: forwarded from the caller; `drop_dead_box` drops the pair once.
    unsafe { crate::internal::reclaim::drop_after_running_attempts(bits, drop_dead_box::<T>) };
}

/// Drops a dead box's value (the one in its block now: a late commit of another thread may have
/// replaced the one it had when it was dropped, and retired that one itself) and its block.
///
/// # Safety
///
/// As for [`drop_dead_box_later`], once no attempt can hold the block any more.
unsafe fn drop_dead_box<T>(bits: u64) {
    // SAFETY: forwarded from the caller.
    let block = unsafe { Box::from_raw(bits as usize as *mut VarCore) };
    let value = block.value.load(Ordering::Acquire);
    // SAFETY: the box owned its current value, and nothing else can replace or free it now.
    unsafe { drop_box::<T>(value) };
    drop(block);
}

impl<T: Default + Send + Sync + 'static> Default for TBox<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new(T::default())
    }
}

/// `TBox::new(value)`, as `Box<T>: From<T>`.
///
/// # Examples
///
/// ```
/// let name: commute_stm::TBox<String> = String::from("ada").into();
/// assert_eq!(name.load(), "ada");
/// ```
impl<T: Send + Sync + 'static> From<T> for TBox<T> {
    #[track_caller]
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: fmt::Debug + Send + Sync + 'static> fmt::Debug for TBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let in_tx = crate::internal::thread::in_tx();
        let mut d = f.debug_struct("TBox");
        if in_tx {
            d.field("value", &format_args!("<in a transaction>"));
        } else {
            self.load_with(|v| {
                d.field("value", v);
            });
        }
        d.finish()
    }
}
