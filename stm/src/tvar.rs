//! `TVar<T>`: one transactional word, stored beside its versioned lock.
//!
//! A running attempt records the variables it reads and writes by address until it commits, so
//! a variable must not move while an attempt may refer to it. Rust moves values freely (`drop(v)`
//! moves `v` first; so do returning it, pushing it into a growing `Vec`, `mem::swap`), so the
//! lock and value words of an ordinary `TVar` live in a heap block of their own ([`Boxed`]),
//! which moves with nothing. Collections that keep their variables in heap memory of their own
//! (a map's trie nodes, a counter's boxed shards) store them inline instead ([`Inline`], whose
//! constructor is `unsafe`: the collection promises not to move them).

use core::fmt;
use core::marker::PhantomData;
use core::panic::Location;

use crate::internal::var::{Origin, VarCore};
use crate::internal::write_set::{After, DropFn, PublishOp};
use crate::tx::{StmResult, Transaction};
use crate::word::{Integer, OwnedWord, Word, adds_as_u64};

/// A transactional variable holding one machine word (`T: `[`Word`]).
///
/// The value lives next to a versioned lock, in one 32-byte block allocated by
/// [`new`](TVar::new) (see [`Boxed`]): no allocation, no `Arc` and no clone per read or write. Read and write it inside [`atomically`](crate::atomically); outside a transaction,
/// [`load`](TVar::load) returns a consistent snapshot.
///
/// Each `TVar` remembers where it was created (or the label given with
/// [`with_label`](TVar::with_label)), so that [statistics](crate::stats) can say which variable a
/// conflict was on.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, TVar};
///
/// let a = TVar::new(10i64);
/// let b = TVar::new(0i64);
/// atomically(|tx| {
///     let amount = a.read(tx)?;
///     a.write(tx, 0);
///     b.modify(tx, |x| x + amount)?;
///     Ok(())
/// });
/// assert_eq!((a.load(), b.load()), (0, 10));
/// ```
pub struct TVar<T: Word, H: Home = Boxed> {
    home: H,
    _marker: PhantomData<fn() -> T>,
}

/// Where a [`TVar`]'s lock and value words live: [`Boxed`] (the default) or [`Inline`].
///
/// Sealed: the two homes are all there is.
///
/// # Examples
///
/// ```
/// use commute_stm::{Boxed, Home, TVar};
///
/// // Code generic over the home works with both kinds of variable.
/// fn current<H: Home>(v: &TVar<u64, H>) -> u64 {
///     v.load()
/// }
/// let v: TVar<u64, Boxed> = TVar::new(3); // the same type as `TVar<u64>`
/// assert_eq!(current(&v), 3);
/// ```
pub trait Home: home::Sealed {}

/// The default [`Home`] of a [`TVar`]: its words live in a heap block of their own (32 bytes,
/// allocated once by [`TVar::new`]), so the `TVar` may be moved at any time, even in the middle
/// of a transaction that uses it.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, TVar};
///
/// let v = atomically(|tx| {
///     let v = TVar::new(0u32); // Boxed: moving it out of the closure is fine
///     v.write(tx, 7);
///     Ok(v)
/// });
/// assert_eq!(v.load(), 7);
/// ```
#[derive(Debug)]
pub struct Boxed(core::mem::ManuallyDrop<Box<VarCore>>);

impl Drop for Boxed {
    fn drop(&mut self) {
        // This thread's running attempt forgets the variable now; another thread's attempt
        // that may still refer to it keeps its block alive until it ends.
        self.0.forget_in_running_tx();
        // SAFETY: the block is taken once, here, and never used through `self` again.
        let block = unsafe { core::mem::ManuallyDrop::take(&mut self.0) };
        let bits = Box::into_raw(block) as usize as u64;
        // SAFETY: `drop_block` frees the block once; nothing else uses it from now on.
        unsafe {
            crate::internal::reclaim::drop_after_running_attempts(
                bits,
                crate::internal::var::drop_block,
            )
        };
    }
}

/// The [`Home`] of a [`TVar`] kept by a collection in memory of its own that never moves: the
/// words live inside the `TVar` itself. Made only by the `unsafe` [`TVar::new_inline`].
///
/// # Examples
///
/// ```
/// use commute_stm::{Inline, TVar};
///
/// // SAFETY: the variable goes straight into a `Box` and never leaves it.
/// let slot: Box<TVar<u8, Inline>> = Box::new(unsafe { TVar::new_inline(1) });
/// assert_eq!(slot.load(), 1);
/// ```
#[derive(Debug)]
pub struct Inline(VarCore);

impl Home for Boxed {}
impl Home for Inline {}

// Sealed and unnameable outside the crate: `VarCore` never reaches users, although rustc counts
// the supertrait's methods as reachable through `Home`.
#[allow(private_interfaces)]
mod home {
    use crate::internal::var::VarCore;

    /// Access to the words, whatever the home.
    pub trait Sealed: Send + Sync {
        fn wrap(core: VarCore) -> Self;
        fn core(&self) -> &VarCore;
        fn core_mut(&mut self) -> &mut VarCore;
    }

    impl Sealed for super::Boxed {
        fn wrap(core: VarCore) -> Self {
            super::Boxed(core::mem::ManuallyDrop::new(Box::new(core)))
        }
        #[inline(always)]
        fn core(&self) -> &VarCore {
            &self.0
        }
        fn core_mut(&mut self) -> &mut VarCore {
            &mut self.0
        }
    }

    impl Sealed for super::Inline {
        fn wrap(core: VarCore) -> Self {
            super::Inline(core)
        }
        #[inline(always)]
        fn core(&self) -> &VarCore {
            &self.0
        }
        fn core_mut(&mut self) -> &mut VarCore {
            &mut self.0
        }
    }
}

impl<T: Word> TVar<T> {
    /// Creates a variable holding `value`, remembering the caller's source location.
    ///
    /// # Examples
    ///
    /// ```
    /// let flag = commute_stm::TVar::new(false);
    /// assert!(!flag.load());
    /// ```
    #[track_caller]
    pub fn new(value: T) -> Self {
        Self::with_origin(value, Origin::site(Location::caller()))
    }
}

impl<T: Word> TVar<T, Inline> {
    /// Low-level: creates a variable whose lock and value words live inside the `TVar` itself,
    /// saving the heap block of [`TVar::new`] and its pointer hop, for collections that keep
    /// their variables in heap memory of their own.
    ///
    /// # Safety
    ///
    /// From its first use in a transaction until it is dropped, the variable must not move: keep
    /// it in memory that stays put (a heap node, a boxed slice, a `Box`) and never move it out
    /// of there (no `mem::swap`/`replace`, no `Vec` that may reallocate). A running attempt
    /// records it by address; a moved variable would leave the attempt pointing at memory that
    /// is no longer it. Dropping it in place is fine, inside a transaction too.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, Inline, TVar};
    ///
    /// // SAFETY: the variable goes straight into a `Box` and never leaves it.
    /// let shards: Box<[TVar<u64, Inline>]> =
    ///     (0..4).map(|_| unsafe { TVar::new_inline(0) }).collect();
    /// atomically(|tx| {
    ///     shards[1].add(tx, 5);
    ///     Ok(())
    /// });
    /// assert_eq!(shards[1].load(), 5);
    /// ```
    #[track_caller]
    pub unsafe fn new_inline(value: T) -> Self {
        Self::with_origin(value, Origin::site(Location::caller()))
    }
}

impl<T: Word, H: Home> TVar<T, H> {
    pub(crate) fn with_origin(value: T, origin: Origin) -> Self {
        TVar {
            home: H::wrap(VarCore::new(value.into_bits(), origin)),
            _marker: PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn core(&self) -> &VarCore {
        home::Sealed::core(&self.home)
    }

    /// Gives the variable a name, used in statistics and conflict reports instead of its creation
    /// site.
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = commute_stm::TVar::new(0u64).with_label("hits");
    /// assert_eq!(hits.label(), Some("hits"));
    /// ```
    pub fn with_label(mut self, label: &'static str) -> Self {
        home::Sealed::core_mut(&mut self.home).set_label(label);
        self
    }

    /// Low-level: gives the variable `site` as its creation site, the one
    /// [`created_at`](TVar::created_at) returns and statistics and conflict reports name (with
    /// its label, if any). For a collection that makes variables later on behalf of one call of
    /// its user (a map's slots, made as it grows): it keeps that call's
    /// [`Location::caller`] and gives it to each.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::panic::Location;
    ///
    /// #[track_caller]
    /// fn made_here() -> &'static Location<'static> {
    ///     Location::caller()
    /// }
    ///
    /// let site = made_here();
    /// let v = commute_stm::TVar::new(0u32).with_label("hits").with_created_at(site);
    /// assert_eq!(v.created_at(), site);
    /// assert_eq!(v.label(), Some("hits"));
    /// ```
    pub fn with_created_at(mut self, site: &'static Location<'static>) -> Self {
        home::Sealed::core_mut(&mut self.home).set_site(site);
        self
    }

    /// Sets the label (see [`with_label`](TVar::with_label)) in place.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut v = commute_stm::TVar::new(0u8);
    /// v.set_label("flags");
    /// assert_eq!(v.label(), Some("flags"));
    /// ```
    pub fn set_label(&mut self, label: &'static str) {
        home::Sealed::core_mut(&mut self.home).set_label(label);
    }

    /// The label given with [`with_label`](TVar::with_label), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute_stm::TVar::new(1u8).label(), None);
    /// ```
    pub fn label(&self) -> Option<&'static str> {
        self.core().origin().label
    }

    /// The source location where the variable was created.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = commute_stm::TVar::new(1u8);
    /// assert!(v.created_at().file().ends_with(".rs"));
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.core().origin().site
    }

    /// Reads the latest committed value, outside any transaction.
    ///
    /// The value is one that some commit left (never a torn or uncommitted one: the value word
    /// only changes during a commit's write-back, after every check has passed). It takes part in
    /// no conflict detection: inside a transaction use [`read`](TVar::read).
    ///
    /// # Panics
    ///
    /// If called inside a transaction, where it would read outside it, unseen by conflict
    /// detection: use [`read`](TVar::read) there. The same rule holds for every reader that
    /// works outside transactions ([`TBox::load`](crate::TBox::load), the collections' `load`
    /// and `.atomic()` views). With exclusive access, [`load_mut`](TVar::load_mut) and
    /// [`into_inner`](TVar::into_inner) work anywhere.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = commute_stm::TVar::new('a');
    /// assert_eq!(v.load(), 'a');
    /// ```
    #[inline]
    #[track_caller]
    pub fn load(&self) -> T {
        if crate::internal::thread::in_tx() {
            load_in_transaction();
        }
        self.load_committed()
    }

    /// Reads the latest committed value through an exclusive borrow (destructors, code that
    /// owns the variable), inside a transaction or not.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut v = commute_stm::TVar::new(3u8);
    /// assert_eq!(commute_stm::atomically(|_| Ok(v.load_mut())), 3);
    /// ```
    #[inline]
    pub fn load_mut(&mut self) -> T {
        self.load_committed()
    }

    #[inline]
    fn load_committed(&self) -> T {
        T::from_bits(
            self.core()
                .value
                .load(crate::sync::atomic::Ordering::Acquire),
        )
    }

    /// The value, taking the variable apart (inside a transaction or not).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute_stm::TVar::new(5u8).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.load_committed()
    }

    /// Low-level, outside transactions: the latest committed value, with what
    /// [`commit_alone`](TVar::commit_alone) needs to replace it only if it is still the latest.
    ///
    /// Waits out a commit of the variable in progress (a few instructions usually; as long as
    /// an irrevocable transaction that holds the variable runs), so that the value belongs to
    /// the committed state: a commit that also wrote other variables is seen whole, never in
    /// part, by later reads of the same thread.
    ///
    /// # Panics
    ///
    /// If called inside a transaction (as [`load`](TVar::load)).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = commute_stm::TVar::new(3u32);
    /// let (value, _seen) = v.load_seen();
    /// assert_eq!(value, 3);
    /// ```
    #[inline]
    pub fn load_seen(&self) -> (T, Seen) {
        if crate::internal::thread::in_tx() {
            load_in_transaction();
        }
        let (bits, word) = crate::tx::alone::load_seen(self.core());
        (T::from_bits(bits), Seen(word))
    }

    /// Low-level, outside transactions: commits `value` as a transaction of its own that read
    /// this variable when [`load_seen`](TVar::load_seen) returned `seen` and writes only it,
    /// without a transaction's bookkeeping; `Err(value)` if a commit changed the variable since
    /// (load again and decide again).
    ///
    /// It is exactly the commit of `atomically(|tx| { v.read(tx)?; v.write(tx, value); .. })`:
    /// serialisable with every transaction, counted in [`stats`](crate::stats) as a commit (a
    /// refusal as an abort, charged to this variable),
    /// waking transactions blocked in [`retry`](Transaction::retry) on the variable. For one
    /// variable it costs a few tens of instructions instead of a few hundred.
    ///
    /// # Errors
    ///
    /// Gives `value` back when the variable changed after `seen`.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = commute_stm::TVar::new(3u32);
    /// let (value, seen) = v.load_seen();
    /// assert_eq!(v.commit_alone(seen, value * 2), Ok(()));
    /// assert_eq!(v.commit_alone(seen, 0), Err(0)); // `seen` is stale now
    /// assert_eq!(v.load(), 6);
    /// ```
    #[track_caller]
    #[inline]
    pub fn commit_alone(&self, seen: Seen, value: T) -> Result<(), T> {
        self.commit_bits_alone(seen, value.into_bits(), None)
            .map(|_| ())
            .ok_or(value)
    }

    /// Low-level, outside transactions: [`commit_alone`](TVar::commit_alone) of a value that
    /// owns heap memory, as [`write_owned`](TVar::write_owned) writes one: on success, the
    /// value replaced is freed once no running transaction can still read it; on failure,
    /// `value` is given back, still owned by the caller.
    ///
    /// # Safety
    ///
    /// As for [`write_owned`](TVar::write_owned): every value this variable holds is owned by
    /// it alone.
    ///
    /// # Errors
    ///
    /// As [`commit_alone`](TVar::commit_alone).
    ///
    /// # Examples
    ///
    /// See [`OwnedWord`].
    #[track_caller]
    #[inline]
    pub unsafe fn commit_owned_alone(&self, seen: Seen, value: T) -> Result<(), T>
    where
        T: OwnedWord,
    {
        self.commit_bits_alone(seen, value.into_bits(), Some(free_owned_bits::<T>))
            .ok_or(value)?;
        Ok(())
    }

    /// Low-level, outside transactions: [`commit_owned_alone`](TVar::commit_owned_alone) of a
    /// variable found through others, each read with [`load_seen`](TVar::load_seen) on the way
    /// (`path`: each variable with what `load_seen` returned for it), such as the slot of a
    /// trie's leaf below the slots of its inner nodes. It commits the transaction "read `path`
    /// and this variable, write this variable": only if, with this variable locked, every
    /// variable of `path` is unchanged since it was read, as this one must be. A commit that
    /// replaced a node on the way meanwhile (and made this variable unreachable) thus makes it
    /// fail, where `commit_owned_alone` would write where no one looks any more.
    ///
    /// `path` is iterated once, with this variable locked.
    ///
    /// # Safety
    ///
    /// As for [`write_owned`](TVar::write_owned): every value this variable holds is owned by
    /// it alone.
    ///
    /// # Errors
    ///
    /// `value` back, still owned by the caller, if this variable or one of `path` changed since
    /// it was read.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// See [`OwnedWord`] for an owned word type; the path is built as in `commute`'s `TMap`,
    /// whose one-call update of a present key walks its trie with `load_seen` and commits the
    /// key's leaf slot this way.
    #[track_caller]
    #[inline]
    pub unsafe fn commit_owned_alone_through<'p>(
        &self,
        seen: Seen,
        value: T,
        path: impl IntoIterator<Item = (&'p Self, Seen)>,
    ) -> Result<(), T>
    where
        T: OwnedWord,
        H: 'p,
    {
        check_alone();
        crate::tx::alone::commit_alone_through(
            self.core(),
            seen.0,
            value.into_bits(),
            Some(free_owned_bits::<T>),
            path.into_iter().map(|(var, seen)| (var.core(), seen.0)),
            Location::caller(),
        )
        .ok_or(value)?;
        Ok(())
    }

    /// Low-level, outside transactions: applies `f` to the latest committed value and commits
    /// the result as a transaction of its own touching only this variable (see
    /// [`commit_alone`](TVar::commit_alone)); returns the new value. `f` may run more than once
    /// if other commits change the variable meanwhile.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = commute_stm::TVar::new(0u64);
    /// assert_eq!(hits.modify_alone(|h| h + 1), 1);
    /// assert_eq!(hits.load(), 1);
    /// ```
    #[track_caller]
    #[inline]
    pub fn modify_alone(&self, mut f: impl FnMut(T) -> T) -> T {
        loop {
            let (value, seen) = self.load_seen();
            let new = f(value);
            let bits = new.into_bits();
            if self.commit_bits_alone(seen, bits, None).is_some() {
                return T::from_bits(bits);
            }
        }
    }

    /// Low-level, outside transactions: [`commit_alone`](TVar::commit_alone) that, if it
    /// commits, also retires `retired` as [`Transaction::retire_on_commit`] does, and whose
    /// commit comes after version `after`.
    ///
    /// `after` is a version the caller read in memory that `value` makes reachable (a node's
    /// publishing version, which a transaction would hand to
    /// [`Transaction::observe_version`]), or 0: the commit takes a version above it, so that a
    /// transaction that sees the new value at its read version also sees what that version
    /// published.
    ///
    /// # Safety
    ///
    /// As for [`Transaction::retire_on_commit`], with this commit as the transaction's: `retired`
    /// comes from `Box::<R>::into_raw`, the commit makes it unreachable for transactions that
    /// begin after it, and nothing else frees it. (If the commit is refused, nothing is
    /// retired.) `after` is 0 or a version that a commit handed out: the commit's own version
    /// must fit a lock word.
    ///
    /// # Errors
    ///
    /// As [`commit_alone`](TVar::commit_alone).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::TVar;
    ///
    /// // A slot whose replaced boxes are retired, not freed at once: readers may still use them.
    /// let first = Box::into_raw(Box::new(1u64));
    /// let slot = TVar::new(first);
    /// let (old, seen) = slot.load_seen();
    /// let second = Box::into_raw(Box::new(2u64));
    /// // SAFETY: `old` was boxed, is unlinked by this commit and freed by nothing else.
    /// assert!(unsafe { slot.commit_alone_retiring(seen, second, 0, old) }.is_ok());
    /// // SAFETY: the slot's box, freed once (nothing else frees it).
    /// assert_eq!(*unsafe { Box::from_raw(slot.load()) }, 2);
    /// ```
    #[track_caller]
    #[inline]
    pub unsafe fn commit_alone_retiring<R: Send + 'static>(
        &self,
        seen: Seen,
        value: T,
        after: u64,
        retired: *mut R,
    ) -> Result<(), T> {
        check_alone();
        let retired = (
            retired as usize as u64,
            crate::tx::write_drop_boxed::<R> as DropFn,
        );
        let site = Location::caller();
        crate::tx::alone::commit_alone_retiring(
            self.core(),
            seen.0,
            value.into_bits(),
            after,
            retired,
            site,
        )
        .map(|_| ())
        .ok_or(value)
    }

    /// Low-level, outside transactions: publishes `node` as a transaction of its own that only
    /// runs [`publish_box_on_commit_then`](TVar::publish_box_on_commit_then)'s two steps: `op`
    /// with the variable locked (the value it replaces, the commit's version, the node; its
    /// result is stored), then `then` once the variable is unlocked (the value `op` replaced,
    /// the node).
    ///
    /// It reads nothing, so it never fails: it waits while a committer (or the irrevocable
    /// transaction) holds the variable, and it wakes transactions blocked in
    /// [`retry`](Transaction::retry) on it. It is serialisable with every transaction, and
    /// counted as a commit in [`stats`](crate::stats) (and a wait for the irrevocable
    /// transaction as a lock-busy abort, as a transaction's commit would abort there).
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Safety
    ///
    /// As for [`publish_box_on_commit_then`](TVar::publish_box_on_commit_then), with this
    /// commit as the transaction's: `node` is handed to `op`, which publishes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::TVar;
    ///
    /// fn swap_in(_old: *mut u64, _version: u64, node: *mut u64) -> *mut u64 {
    ///     node
    /// }
    /// fn free_old(old: *mut u64, _node: *mut u64) {
    ///     // SAFETY: no transaction runs here, and the old box is ours (a real structure
    ///     // would retire it: readers may still hold it).
    ///     drop(unsafe { Box::from_raw(old) });
    /// }
    /// let slot = TVar::new(Box::into_raw(Box::new(1u64)));
    /// // SAFETY: neither step blocks or panics; the node is published once.
    /// unsafe { slot.publish_box_alone(Box::into_raw(Box::new(2u64)), swap_in, free_old) };
    /// // SAFETY: the slot's box, freed once.
    /// assert_eq!(*unsafe { Box::from_raw(slot.load()) }, 2);
    /// ```
    #[track_caller]
    #[inline]
    pub unsafe fn publish_box_alone<N: 'static>(
        &self,
        node: *mut N,
        op: fn(T, u64, *mut N) -> T,
        then: fn(T, *mut N),
    ) {
        check_alone();
        let (old, wake) = crate::tx::alone::publish_alone(
            self.core(),
            |old, version| op(T::from_bits(old), version, node).into_bits(),
            Location::caller(),
        );
        then(T::from_bits(old), node);
        // Pending futures woken by the commit hear of it now that the second step is done (a
        // queue's node is linked): their wakers are foreign code, which may poll them at once.
        drop(wake);
    }

    #[track_caller]
    #[inline]
    fn commit_bits_alone(&self, seen: Seen, bits: u64, drop_old: Option<DropFn>) -> Option<u64> {
        check_alone();
        crate::tx::alone::commit_alone(self.core(), seen.0, bits, drop_old, Location::caller())
    }

    /// Reads the variable inside a transaction.
    ///
    /// Returns the value this transaction wrote (or commuted) if any, else a committed value
    /// consistent with everything else the transaction has read.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the transaction must be rolled back and run
    /// again; pass it on with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let v = TVar::new(3u32);
    /// assert_eq!(atomically(|tx| v.read(tx)), 3);
    /// ```
    #[inline(always)]
    pub fn read(&self, tx: &Transaction) -> StmResult<T> {
        tx.read_word(self.core()).map(T::from_bits)
    }

    /// Low-level: [`read`](TVar::read) for a variable that stops changing, as the inner nodes'
    /// slots of a trie do once they hold an inner node. A committed value for which
    /// `settled` returns true is read without recording the read: it is not validated at the
    /// commit (which can then never fail on it) and a [`retry`](Transaction::retry) does not
    /// wait for it to change. Every other value (one this attempt wrote, one not yet settled)
    /// reads as `read` reads it.
    ///
    /// # Errors
    ///
    /// As for [`read`](TVar::read).
    ///
    /// # Safety
    ///
    /// Once the variable holds a value for which `settled` returns true, no transaction writes
    /// it again, nor does anything else change it while transactions can reach it: a change
    /// that no commit validates would let transactions that read the old value commit after it,
    /// out of any serial order (a collection that frees memory through such a variable may then
    /// free it twice).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// // 0 until set, then fixed for good: the one writer below writes only an unset variable.
    /// let fixed = TVar::new(0u64);
    /// atomically(|tx| {
    ///     if fixed.read(tx)? == 0 {
    ///         fixed.write(tx, 42);
    ///     }
    ///     Ok(())
    /// });
    /// // SAFETY: a non-zero value is never written over (the one writer above checks first).
    /// let seen = atomically(|tx| unsafe { fixed.read_settled(tx, |v| v != 0) });
    /// assert_eq!(seen, 42);
    /// ```
    #[inline(always)]
    pub unsafe fn read_settled(
        &self,
        tx: &Transaction,
        settled: impl FnOnce(T) -> bool,
    ) -> StmResult<T> {
        tx.read_word_settled(self.core(), |bits| settled(T::from_bits(bits)))
            .map(T::from_bits)
    }

    /// Sets the variable inside a transaction; the write becomes visible when the transaction
    /// commits.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let v = TVar::new(3u32);
    /// atomically(|tx| {
    ///     v.write(tx, 4);
    ///     Ok(())
    /// });
    /// assert_eq!(v.load(), 4);
    /// ```
    #[inline]
    pub fn write(&self, tx: &Transaction, value: T) {
        tx.write_word(self.core(), value.into_bits());
    }

    /// Reads the variable, applies `f`, writes the result back, and returns the new value.
    ///
    /// # Errors
    ///
    /// As for [`read`](TVar::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let v = TVar::new(3u32);
    /// assert_eq!(atomically(|tx| v.modify(tx, |x| x * 2)), 6);
    /// ```
    #[inline]
    pub fn modify(&self, tx: &Transaction, f: impl FnOnce(T) -> T) -> StmResult<T> {
        let new = f(self.read(tx)?);
        self.write(tx, new);
        Ok(new)
    }

    /// Replaces the value and returns the old one.
    ///
    /// # Errors
    ///
    /// As for [`read`](TVar::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let v = TVar::new(1u8);
    /// assert_eq!(atomically(|tx| v.replace(tx, 2)), 1);
    /// assert_eq!(v.load(), 2);
    /// ```
    #[inline]
    pub fn replace(&self, tx: &Transaction, value: T) -> StmResult<T> {
        let old = self.read(tx)?;
        self.write(tx, value);
        Ok(old)
    }

    /// Records a commutative update: `f` is applied at commit to the latest committed value.
    ///
    /// The transaction does not read the variable, so two transactions that only commute the same
    /// variable never abort each other. If this transaction later reads the variable, it sees its
    /// own pending updates applied, and from then on the variable is an ordinary read and write.
    ///
    /// `f` must be a pure function whose applications commute with each other (and with every
    /// other update that concurrent transactions only commute); it may be called more than once
    /// per transaction attempt, and runs while commit locks are held, so keep it short. A closure
    /// that captures nothing is stored without allocating. `f` and what it captures are dropped
    /// once the attempt has ended (committed or rolled back), outside the transaction.
    ///
    /// # Aborts
    ///
    /// The process, if `f` drops a transactional variable (or a collection) while it runs, for
    /// example the last handle to one taken out of its captures: the transaction may still hold
    /// that variable's address, and nothing could tell it.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let max_seen = TVar::new(0u64);
    /// atomically(|tx| {
    ///     max_seen.commute(tx, |m| m.max(42));
    ///     Ok(())
    /// });
    /// assert_eq!(max_seen.load(), 42);
    /// ```
    pub fn commute(&self, tx: &Transaction, f: impl Fn(T) -> T + 'static) {
        tx.commute_word(
            self.core(),
            crate::internal::write_set::Op::Apply(std::rc::Rc::new(move |bits| {
                f(T::from_bits(bits)).into_bits()
            })),
        );
    }
}

impl<T: Word, H: Home> TVar<T, H> {
    /// Low-level: runs `op` once, at commit, with the variable's latest committed value and the
    /// commit's version; its result becomes the new value.
    ///
    /// This is how a collection appends without reading: a queue's `push` publishes its node by
    /// linking it after the tail the commit finds. Operations run in registration order, after
    /// every check of the commit has passed and while the variable is locked, so code in `op` may
    /// also write memory that only becomes reachable through the new value. They are not visible
    /// to the transaction's own reads of this variable (which return the committed value), and
    /// the variable cannot also be written or commuted in the same transaction. Two transactions
    /// that only publish to the same variable never abort each other.
    ///
    /// # Panics
    ///
    /// If this transaction also writes or commutes the variable, or uses it as a
    /// transaction-local key ([`set_local`](TVar::set_local)).
    ///
    /// # Safety
    ///
    /// `op` must not panic (a panic would leave the commit half applied) and must not block. Any
    /// memory it writes besides the returned value must be reachable by other threads only
    /// through this variable's new value or through links that readers check with
    /// [`Transaction::observe_version`] against the version passed to `op`. It runs inside the
    /// commit, with the attempt's state (and the thread's retired values) borrowed: it must not
    /// use commute itself (create, drop, read or write its variables, run or pin a
    /// transaction).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// // The version of the last commit that published to `last_commit`.
    /// let last_commit = TVar::new(0u64);
    /// atomically(|tx| {
    ///     // SAFETY: the operation neither panics nor touches other memory.
    ///     unsafe { last_commit.publish_on_commit(tx, |_, version| version) };
    ///     Ok(())
    /// });
    /// assert!(last_commit.load() > 0);
    /// ```
    pub unsafe fn publish_on_commit(&self, tx: &Transaction, op: impl Fn(T, u64) -> T + 'static) {
        tx.publish_closure(
            self.core(),
            PublishOp::Closure(std::rc::Rc::new(move |bits, version| {
                op(T::from_bits(bits), version).into_bits()
            })),
        );
    }

    /// Low-level: [`publish_on_commit`](TVar::publish_on_commit) for a heap node, without
    /// allocating a closure: at commit, `op` runs with the latest committed value, the commit
    /// version and `node`, and takes the node over (it links it into the structure); if the
    /// attempt, or the [`or_else`](Transaction::or_else) branch that registered it, is rolled
    /// back instead, the node is dropped as the `Box` it came from.
    ///
    /// # Panics
    ///
    /// As for [`publish_on_commit`](TVar::publish_on_commit).
    ///
    /// # Safety
    ///
    /// As for [`publish_on_commit`](TVar::publish_on_commit); in addition, `node` must come from
    /// `Box::into_raw` and be owned by nothing else, and once `op` has run, the structure that
    /// `op` linked it into owns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// // A stack of published numbers: each node points at the one below.
    /// struct Node {
    ///     value: u64,
    ///     below: *mut Node,
    /// }
    /// fn link(top: *mut Node, _version: u64, node: *mut Node) -> *mut Node {
    ///     // SAFETY: the node is ours until this returns it.
    ///     unsafe { (*node).below = top };
    ///     node
    /// }
    /// let top: TVar<*mut Node> = TVar::new(core::ptr::null_mut());
    /// atomically(|tx| {
    ///     let node = Box::into_raw(Box::new(Node { value: 7, below: core::ptr::null_mut() }));
    ///     // SAFETY: `link` neither panics nor blocks; the node is fresh.
    ///     unsafe { top.publish_box_on_commit(tx, node, link) };
    ///     Ok(())
    /// });
    /// // SAFETY: no transaction runs; the one node is read and freed once.
    /// let node = unsafe { Box::from_raw(top.load()) };
    /// assert_eq!(node.value, 7);
    /// ```
    pub unsafe fn publish_box_on_commit<N: 'static>(
        &self,
        tx: &Transaction,
        node: *mut N,
        op: fn(T, u64, *mut N) -> T,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe { self.publish_node(tx, node, op, None, false) }
    }

    /// Low-level: [`publish_box_on_commit`](TVar::publish_box_on_commit) in two steps: `op`
    /// runs at commit with the variable locked, as there; `then` runs later in the same commit,
    /// once the commit has unlocked its variables, with the value `op` replaced and the node.
    ///
    /// What `then` writes is thereby off the path on which other committers of this variable
    /// wait. A queue links its node after the previous last node this way: that node's cache
    /// line was most likely written last by another core, and fetching it while the tail is
    /// locked would make every concurrent push wait for it too.
    ///
    /// `then` runs before the commit returns, so a transaction that begins after it sees what
    /// `then` wrote; but a transaction running meanwhile can see the new value before `then`
    /// has run (and publish after it), and must wait for what `then` writes if it needs it.
    ///
    /// # Panics
    ///
    /// As for [`publish_on_commit`](TVar::publish_on_commit).
    ///
    /// # Safety
    ///
    /// As for [`publish_box_on_commit`](TVar::publish_box_on_commit), for `op` and `then`
    /// alike: neither may panic or block. In addition, what `then` writes must stay valid to
    /// write until it has run (nothing may free it meanwhile), and readers that meet the new
    /// value before `then` ran must tolerate its effects' absence.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    ///
    /// // A list built at its end: `last` is locked only while the node is swapped in; the
    /// // previous last node's link is written after the unlock.
    /// struct Node {
    ///     value: u64,
    ///     next: AtomicPtr<Node>,
    /// }
    /// fn swap_in(_last: *mut Node, _version: u64, node: *mut Node) -> *mut Node {
    ///     node
    /// }
    /// fn link(last: *mut Node, node: *mut Node) {
    ///     // SAFETY: `last` is the list's first node or an earlier one's successor, all alive.
    ///     unsafe { (*last).next.store(node, Ordering::Release) };
    /// }
    /// let first = Box::into_raw(Box::new(Node { value: 0, next: AtomicPtr::default() }));
    /// let last = TVar::new(first);
    /// for value in 1..=2 {
    ///     atomically(|tx| {
    ///         let node = Box::into_raw(Box::new(Node { value, next: AtomicPtr::default() }));
    ///         // SAFETY: neither step panics or blocks; no node is freed before the end.
    ///         unsafe { last.publish_box_on_commit_then(tx, node, swap_in, link) };
    ///         Ok(())
    ///     });
    /// }
    /// // SAFETY: no transaction runs; each node is read and freed once.
    /// let mut node = unsafe { Box::from_raw(first) };
    /// let mut values = vec![node.value];
    /// while let Some(next) = unsafe { node.next.load(Ordering::Acquire).as_mut() } {
    ///     node = unsafe { Box::from_raw(next) };
    ///     values.push(node.value);
    /// }
    /// assert_eq!(values, [0, 1, 2]);
    /// ```
    pub unsafe fn publish_box_on_commit_then<N: 'static>(
        &self,
        tx: &Transaction,
        node: *mut N,
        op: fn(T, u64, *mut N) -> T,
        then: fn(T, *mut N),
    ) {
        let after = after_step(then);
        // SAFETY: forwarded from the caller.
        unsafe { self.publish_node(tx, node, op, Some(after), false) }
    }

    /// Low-level: [`publish_box_on_commit_then`](TVar::publish_box_on_commit_then) of a node
    /// that the caller keeps if the attempt is rolled back: the rollback does not free it, so
    /// that the next attempt (of a closure that must not lose what the node holds) can publish
    /// the same node again. Once the transaction has committed, the node belongs to whatever
    /// `op` and `then` linked it into.
    ///
    /// # Safety
    ///
    /// As for [`publish_box_on_commit_then`](TVar::publish_box_on_commit_then), except that
    /// `node` stays the caller's until a commit publishes it: the caller frees it (or leaks
    /// it) if no attempt ever commits, and publishes it in at most one committing attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// fn swap_in(_old: *mut u64, _version: u64, node: *mut u64) -> *mut u64 {
    ///     node
    /// }
    /// fn nothing(_old: *mut u64, _node: *mut u64) {}
    /// let first = Box::into_raw(Box::new(1u64));
    /// let slot = TVar::new(first);
    /// // Made once, outside the closure: a rolled-back attempt leaves it for the next one.
    /// let node = Box::into_raw(Box::new(2u64));
    /// atomically(|tx| {
    ///     // SAFETY: neither step blocks or panics; only the committing attempt publishes
    ///     // `node`, and `atomically` returns once one has.
    ///     unsafe { slot.publish_kept_box_on_commit_then(tx, node, swap_in, nothing) };
    ///     Ok(())
    /// });
    /// // SAFETY: no transaction runs any more: each node is freed once.
    /// unsafe {
    ///     drop(Box::from_raw(first));
    ///     assert_eq!(*Box::from_raw(slot.into_inner()), 2);
    /// }
    /// ```
    pub unsafe fn publish_kept_box_on_commit_then<N: 'static>(
        &self,
        tx: &Transaction,
        node: *mut N,
        op: fn(T, u64, *mut N) -> T,
        then: fn(T, *mut N),
    ) {
        let after = after_step(then);
        // SAFETY: forwarded from the caller.
        unsafe { self.publish_node(tx, node, op, Some(after), true) }
    }

    /// Low-level: the first node this attempt has handed to
    /// [`publish_box_on_commit_then`](TVar::publish_box_on_commit_then) (or the `kept` form) on
    /// this variable and not rolled back (an [`or_else`](Transaction::or_else) branch that
    /// retried takes its nodes with it), or `None` if there is none. With
    /// [`last_published_node`](TVar::last_published_node), a collection reads its pending nodes
    /// here instead of keeping them in transaction-locals.
    ///
    /// The pointer is the node as given, cast back to `N`: the caller names the type it
    /// published with (dereferencing it is its own `unsafe` business).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// fn swap_in(_old: *mut u64, _version: u64, node: *mut u64) -> *mut u64 {
    ///     node
    /// }
    /// fn nothing(_old: *mut u64, _node: *mut u64) {}
    /// let first = Box::into_raw(Box::new(0u64));
    /// let last = TVar::new(first);
    /// let (a, b) = (Box::into_raw(Box::new(1u64)), Box::into_raw(Box::new(2u64)));
    /// let seen = atomically(|tx| {
    ///     assert_eq!(last.last_published_node::<u64>(tx), None);
    ///     // SAFETY: the steps do not panic or block; every node is freed below.
    ///     unsafe {
    ///         last.publish_kept_box_on_commit_then(tx, a, swap_in, nothing);
    ///         last.publish_kept_box_on_commit_then(tx, b, swap_in, nothing);
    ///     }
    ///     Ok((last.first_published_node::<u64>(tx), last.last_published_node::<u64>(tx)))
    /// });
    /// assert_eq!(seen, (Some(a), Some(b)));
    /// assert_eq!(last.load(), b);
    /// // SAFETY: no transaction runs; each box is freed once.
    /// unsafe { [first, a, b].map(|p| drop(Box::from_raw(p))) };
    /// ```
    pub fn first_published_node<N>(&self, tx: &Transaction) -> Option<*mut N> {
        tx.published_node(self.core(), false)
            .map(|bits| bits as usize as *mut N)
    }

    /// Low-level: the last node this attempt has handed to
    /// [`publish_box_on_commit_then`](TVar::publish_box_on_commit_then) (or the `kept` form) on
    /// this variable and not rolled back; see
    /// [`first_published_node`](TVar::first_published_node).
    ///
    /// # Examples
    ///
    /// See [`first_published_node`](TVar::first_published_node).
    pub fn last_published_node<N>(&self, tx: &Transaction) -> Option<*mut N> {
        tx.published_node(self.core(), true)
            .map(|bits| bits as usize as *mut N)
    }

    /// Registers a [`PublishOp::Node`].
    ///
    /// # Safety
    ///
    /// As for [`publish_box_on_commit_then`](TVar::publish_box_on_commit_then).
    unsafe fn publish_node<N: 'static>(
        &self,
        tx: &Transaction,
        node: *mut N,
        op: fn(T, u64, *mut N) -> T,
        then: Option<After>,
        kept: bool,
    ) {
        /// Calls `f`, an `fn(T, u64, *mut N) -> T`, on bits.
        ///
        /// # Safety
        ///
        /// `f` must be such a function pointer.
        unsafe fn call<T: Word, N>(f: *const (), old: u64, version: u64, node: u64) -> u64 {
            // SAFETY: `f` was made from a function pointer of exactly this type (below).
            let f = unsafe { core::mem::transmute::<*const (), fn(T, u64, *mut N) -> T>(f) };
            f(T::from_bits(old), version, node as usize as *mut N).into_bits()
        }
        /// Drops the boxed node.
        ///
        /// # Safety
        ///
        /// `bits` is a `Box<N>` pointer that nothing else owns.
        unsafe fn free<N>(bits: u64) {
            // SAFETY: forwarded from the caller.
            drop(unsafe { Box::from_raw(bits as usize as *mut N) });
        }
        /// Leaves a kept node to its caller.
        ///
        /// # Safety
        ///
        /// Nothing to uphold: it does nothing.
        unsafe fn keep(_bits: u64) {}
        tx.publish_word(
            self.core(),
            PublishOp::Node {
                call: call::<T, N>,
                f: op as *const (),
                node: node as usize as u64,
                free: if kept { keep } else { free::<N> },
                then,
            },
        );
    }

    /// Low-level: frees `ptr` (a `Box<N>` pointer) once this attempt has committed and no
    /// running transaction can still read it, as [`Transaction::retire_on_commit`] does, unless
    /// this variable is dropped before the attempt ends: the retirement is then cancelled with
    /// the variable's pending writes, and `ptr` stays with the structure the variable belongs
    /// to. A queue retires the node its `head` leaves behind this way, so that a queue dropped
    /// in the same transaction frees that node once, with its other nodes.
    ///
    /// # Safety
    ///
    /// As for [`Transaction::retire_on_commit`]; and if this variable is dropped during the
    /// attempt, whatever drops it must free `ptr` (or leave it to something that does).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let node = Box::into_raw(Box::new(5u64));
    /// let head = TVar::new(node);
    /// let next = Box::into_raw(Box::new(6u64));
    /// atomically(|tx| {
    ///     head.write(tx, next);
    ///     // SAFETY: the commit unlinks `node` (the only link to it was `head`), and the
    ///     // closure runs once (it reads nothing, so it cannot conflict).
    ///     unsafe { head.retire_on_commit(tx, node) };
    ///     Ok(())
    /// });
    /// // SAFETY: no transaction can reach `next` any more.
    /// drop(unsafe { Box::from_raw(head.into_inner()) });
    /// ```
    pub unsafe fn retire_on_commit<N: Send + 'static>(&self, tx: &Transaction, ptr: *mut N) {
        tx.retire_on_commit_of(self.core(), ptr);
    }

    /// Low-level: [`retire_on_commit`](TVar::retire_on_commit) for a value whose drop frees
    /// what `values` retired values would (a marker for a run of nodes a structure unlinked in
    /// this attempt): the thread's reclamation passes, which run after every so many
    /// retirements, count it as `values`, so that what it holds comes back as soon as that
    /// many separate values' memory would (0 counts as 1). Only when passes run depends on
    /// `values`, never what is freed or when freeing is safe; it counts when called, so an
    /// attempt that rolls back only makes the thread's next pass come early.
    ///
    /// # Safety
    ///
    /// As for [`retire_on_commit`](TVar::retire_on_commit).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// // A run of three nodes, unlinked by one commit and freed by one retired value.
    /// let nodes: Vec<Box<u64>> = (1..=3).map(Box::new).collect();
    /// let head = TVar::new(&*nodes[0] as *const u64 as *mut u64);
    /// let run = Box::into_raw(Box::new(nodes));
    /// atomically(|tx| {
    ///     head.write(tx, std::ptr::null_mut());
    ///     // SAFETY: the commit unlinks the run (`head` was the only way to it), retired once:
    ///     // the closure reads nothing, so it cannot conflict and runs once.
    ///     unsafe { head.retire_run_on_commit(tx, run, 3) };
    ///     Ok(())
    /// });
    /// ```
    pub unsafe fn retire_run_on_commit<N: Send + 'static>(
        &self,
        tx: &Transaction,
        ptr: *mut N,
        values: usize,
    ) {
        tx.retire_run_on_commit_of(self.core(), ptr, values);
    }

    /// Low-level: writes `value`, which owns heap memory, as [`TBox`](crate::TBox) writes its
    /// boxes: if the attempt rolls back, or a later write of the same attempt replaces `value`
    /// before the commit, `value` is freed with the attempt; the value a commit replaces is freed
    /// once no running transaction can still read it.
    ///
    /// Readers that follow the pointer must call [`Transaction::pin`] first.
    ///
    /// # Safety
    ///
    /// `value` must be owned by nothing else (freshly allocated by this attempt, or an "empty"
    /// value that owns nothing), and every value this variable holds, or any attempt writes to
    /// it, must be one written with `write_owned` or given to [`new`](TVar::new): the commit
    /// frees the value it replaces, and the end of an attempt the values it wrote and then
    /// overwrote, so nothing else may free them or keep a pointer into them.
    ///
    /// # Examples
    ///
    /// See [`OwnedWord`].
    pub unsafe fn write_owned(&self, tx: &Transaction, value: T)
    where
        T: OwnedWord,
    {
        let bits = value.into_bits();
        tx.write_allocated(self.core(), bits, free_owned_bits::<T>);
    }

    /// Low-level: sets a transaction-local value keyed by this variable.
    ///
    /// The value is never committed; it lives until the attempt ends and is rolled back with an
    /// [`or_else`](Transaction::or_else) branch that retries. Collections use a dedicated
    /// `TVar` as the key for per-transaction bookkeeping (a queue's own pending pushes). The
    /// key must not also be read or written as a shared variable in the same transaction.
    ///
    /// # Panics
    ///
    /// If this transaction also reads, writes or commutes the variable as a shared one (before
    /// or after), or publishes to it; reads, writes and commutes of the key after `set_local`
    /// panic too.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let key = TVar::new(0u32);
    /// let seen = atomically(|tx| {
    ///     assert_eq!(key.local(tx), None);
    ///     key.set_local(tx, 7);
    ///     Ok(key.local(tx))
    /// });
    /// assert_eq!(seen, Some(7));
    /// assert_eq!(key.load(), 0); // never committed
    /// ```
    pub fn set_local(&self, tx: &Transaction, value: T) {
        tx.set_local(self.core(), value.into_bits());
    }

    /// Low-level: the transaction-local value keyed by this variable, if this attempt set one
    /// (see [`set_local`](TVar::set_local)).
    ///
    /// # Examples
    ///
    /// ```
    /// let key = commute_stm::TVar::new(0u8);
    /// assert_eq!(commute_stm::atomically(|tx| Ok(key.local(tx))), None);
    /// ```
    pub fn local(&self, tx: &Transaction) -> Option<T> {
        tx.get_local(self.core()).map(T::from_bits)
    }
}

impl<T: Integer, H: Home> TVar<T, H> {
    /// Adds `delta` (wrapping) as a commutative update: no read, so concurrent adders never
    /// conflict with each other.
    ///
    /// Use [`Integer::wrapping_sub`]-style negative deltas on signed types, or
    /// [`sub`](TVar::sub), to subtract.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let n = TVar::new(1i32);
    /// atomically(|tx| {
    ///     n.add(tx, 2);
    ///     n.add(tx, -5);
    ///     Ok(())
    /// });
    /// assert_eq!(n.load(), -2);
    /// ```
    #[inline]
    pub fn add(&self, tx: &Transaction, delta: T) {
        if adds_as_u64::<T>() {
            // A 64-bit integer's wrapping add is the wrapping add of its bits: kept inline.
            tx.commute_add64(self.core(), delta.into_bits());
        } else {
            tx.commute_word(
                self.core(),
                crate::internal::write_set::Op::Add(delta.into_bits(), add_bits::<T>),
            );
        }
    }

    /// Subtracts `delta` (wrapping) as a commutative update, like [`add`](TVar::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let n = TVar::new(10u32);
    /// atomically(|tx| {
    ///     n.sub(tx, 3);
    ///     Ok(())
    /// });
    /// assert_eq!(n.load(), 7);
    /// ```
    #[inline]
    pub fn sub(&self, tx: &Transaction, delta: T) {
        self.add(tx, T::ZERO.wrapping_sub(delta));
    }
}

fn add_bits<T: Integer>(value: u64, delta: u64) -> u64 {
    T::from_bits(value)
        .wrapping_add(T::from_bits(delta))
        .into_bits()
}

impl<T: Word + Default> Default for TVar<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new(T::default())
    }
}

#[cold]
#[inline(never)]
#[track_caller]
/// The second step of a publishing operation: `then`, type-erased.
fn after_step<T: Word, N>(then: fn(T, *mut N)) -> After {
    /// Calls `f`, an `fn(T, *mut N)`, on bits.
    ///
    /// # Safety
    ///
    /// `f` must be such a function pointer.
    unsafe fn call<T: Word, N>(f: *const (), old: u64, node: u64) {
        // SAFETY: `f` was made from a function pointer of exactly this type (below).
        let f = unsafe { core::mem::transmute::<*const (), fn(T, *mut N)>(f) };
        f(T::from_bits(old), node as usize as *mut N);
    }
    After {
        call: call::<T, N>,
        f: then as *const (),
        old: 0,
    }
}

/// Frees an owned word given as bits.
///
/// # Safety
///
/// `bits` come from `into_bits` of an owned value that nothing else frees.
unsafe fn free_owned_bits<T: OwnedWord>(bits: u64) {
    // SAFETY: forwarded from the caller.
    unsafe { T::from_bits(bits).free() }
}

/// What [`TVar::load_seen`] saw of a variable (its version): pass it to
/// [`TVar::commit_alone`], which commits only if the variable has not changed since.
///
/// # Examples
///
/// ```
/// let v = commute_stm::TVar::new(1u8);
/// let (_, a) = v.load_seen();
/// let (_, b) = v.load_seen();
/// assert_eq!(a, b); // nothing committed in between
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen(u64);

/// Panics inside a transaction: a commit alone would write outside it.
#[inline]
#[track_caller]
fn check_alone() {
    if crate::internal::thread::in_tx() {
        alone_in_transaction();
    }
}

#[cold]
#[track_caller]
fn alone_in_transaction() -> ! {
    panic!(
        "commute: a commit alone (TVar::commit_alone, modify_alone, publish_box_alone, ...) \
         called inside a transaction, where it would write outside it; use TVar::write(tx) or \
         modify(tx)"
    )
}

#[cold]
#[track_caller]
fn load_in_transaction() -> ! {
    panic!(
        "commute: TVar::load called inside a transaction, where it would read outside it; use \
         TVar::read(tx)"
    )
}

impl<T: Word> From<T> for TVar<T> {
    #[track_caller]
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: Word + fmt::Debug, H: Home> fmt::Debug for TVar<T, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TVar");
        if crate::internal::thread::in_tx() {
            d.field("value", &format_args!("<in a transaction>"));
        } else {
            d.field("value", &self.load_committed());
        }
        let origin = self.core().origin();
        match origin.label {
            Some(label) => d.field("label", &label),
            None => d.field("created_at", &format_args!("{}", origin.site)),
        };
        d.finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::TVar;
    use crate::atomically;
    use crate::internal::var::{LOCKED, VarCore};
    use core::sync::atomic::Ordering;
    use std::cell::{Cell, RefCell};

    /// A node of the test: its number.
    struct Node(u32);

    thread_local! {
        /// What the steps saw: `(step, old, node, was the variable locked)`.
        static SEEN: RefCell<Vec<(&'static str, u32, u32, bool)>> = const { RefCell::new(Vec::new()) };
        /// The nodes the first steps took over, to be freed by the test.
        static TAKEN: RefCell<Vec<*mut Node>> = const { RefCell::new(Vec::new()) };
        /// The variable being published to, for the steps to look at its lock.
        static VAR: Cell<*const VarCore> = const { Cell::new(core::ptr::null()) };
    }

    fn number(node: *mut Node) -> u32 {
        // SAFETY: the test's nodes stay alive until it frees them at the end (or are null).
        unsafe { node.as_ref() }.map_or(0, |n| n.0)
    }

    fn locked() -> bool {
        // SAFETY: the test sets `VAR` to its variable, alive while it runs transactions.
        unsafe { &*VAR.get() }.lock.load(Ordering::Relaxed) & LOCKED != 0
    }

    fn first(old: *mut Node, _version: u64, node: *mut Node) -> *mut Node {
        SEEN.with_borrow_mut(|s| s.push(("first", number(old), number(node), locked())));
        TAKEN.with_borrow_mut(|t| t.push(node));
        node
    }

    fn then(old: *mut Node, node: *mut Node) {
        SEEN.with_borrow_mut(|s| s.push(("then", number(old), number(node), locked())));
    }

    #[test]
    fn second_steps_run_in_order_after_the_unlock_and_never_for_rolled_back_publishes() {
        let var: TVar<*mut Node> = TVar::new(core::ptr::null_mut());
        VAR.set(var.core());
        let publish = |n: u32, tx: &crate::Transaction| {
            let node = Box::into_raw(Box::new(Node(n)));
            // SAFETY: the steps neither panic nor block, and free nothing.
            unsafe { var.publish_box_on_commit_then(tx, node, first, then) };
        };
        atomically(|tx| {
            publish(1, tx);
            tx.or_else(
                |tx| {
                    publish(2, tx); // rolled back: its node is freed, no step runs
                    tx.retry::<()>()
                },
                |tx| {
                    publish(3, tx);
                    Ok(())
                },
            )?;
            publish(4, tx);
            Ok(())
        });
        assert_eq!(
            SEEN.with_borrow_mut(std::mem::take),
            [
                ("first", 0, 1, true),
                ("first", 1, 3, true),
                ("first", 3, 4, true),
                ("then", 0, 1, false),
                ("then", 1, 3, false),
                ("then", 3, 4, false),
            ]
        );
        assert_eq!(number(var.load()), 4);
        for node in TAKEN.with_borrow_mut(std::mem::take) {
            // SAFETY: each node was taken over once by `first`, and no transaction runs.
            drop(unsafe { Box::from_raw(node) });
        }
    }
}
