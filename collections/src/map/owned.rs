//! How a `TMap` keeps its values: [`MapValue`], implemented for every `Clone` type and for
//! [`Owned`], a value that is never cloned.
//!
//! Buckets are replaced copy-on-write: an update of one key builds a new bucket holding every
//! other entry of the old one too. A `Clone` value is cloned into it, and each bucket owns its
//! copies. An [`Owned`] value lives in one heap cell of its own, which the buckets that hold
//! it share, counting them (a bucket version shares the cell with the next, the way `Arc` is
//! shared): the value is dropped with the last bucket that holds it. A removal moves it out
//! through a [`Taken`] handle, whose [`into_inner`](Taken::into_inner) waits, as a queue
//! take's does, until no transaction that began before the removal's commit can still read
//! the value in an old bucket, then moves it and marks the cell as moved, so that the last
//! bucket to let go of the cell frees it without dropping the value again.
//!
//! Why that is sound:
//!
//! - *Nobody moves or drops the value while it may be read.* Transactions read it through
//!   buckets, which they reach only while pinned (or as a snapshot's kept version); a bucket is
//!   freed, and lets go of the cell, only after that. The handle moves the value only after
//!   the grace period of the removal's commit (and after the snapshots registered before it),
//!   after which no transaction reaches a bucket that still holds it: later ones see the
//!   buckets without it.
//! - *Only a committed removal's handle moves it.* The handle learns that its removal committed
//!   from an `on_commit` hook, which also hands it the share of the cell counted for it; a
//!   removal rolled back (with its attempt or its `or_else` branch) never runs the hook, whose
//!   drop gives the share back: that handle holds nothing, and `into_inner` panics.
//! - *Exactly one drop or move.* The cell's count is `Arc`'s (release decrements, an acquire
//!   fence before the last one frees); the handle sets the cell's `moved` flag before it lets
//!   go of its share, so the last share sees it.
//! - *A user never holds a second share.* The shares a bucket copy makes never leave the map:
//!   [`Owned`] is not `Clone`, and the map hands values out only by reference or through a
//!   [`Taken`] handle (the operations that return values by value need `V: Clone`).

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use crate::Transaction;
use crate::queue::{Taken, Ticket};
use crate::sync::Arc;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A value that a [`TMap`](crate::TMap) can hold: every `Clone + Send + Sync` type, and
/// [`Owned`] values, which are never cloned.
///
/// The trait is sealed; it says what a removal or a replacement hands back
/// ([`Removed`](MapValue::Removed)): a clone of the map's copy for a `Clone` value, a
/// [`Taken`] handle that moves the value out for an [`Owned`] one.
///
/// # Examples
///
/// ```
/// use commute::{atomically, Owned, TMap};
///
/// // Cloned: `remove` returns the value.
/// let names: TMap<u32, String> = TMap::new();
/// names.atomic().insert(1, "ada".to_string());
/// assert_eq!(names.atomic().remove(&1).as_deref(), Some("ada"));
///
/// // Owned: `remove` returns a handle to move the value out after the commit.
/// let jobs: TMap<u32, Owned<Box<dyn Fn() -> u32 + Send + Sync>>> = TMap::new();
/// jobs.atomic().insert(1, Owned::new(Box::new(|| 7)));
/// let job = jobs.atomic().remove(&1).expect("present").into_inner();
/// assert_eq!(job(), 7);
/// ```
pub trait MapValue: sealed::Stored + Send + Sync + 'static {
    /// What [`TMap::insert`](crate::TMap::insert) and [`TMap::remove`](crate::TMap::remove)
    /// hand back for a value they replace or remove: the value itself (a clone of the map's
    /// copy), or, for an [`Owned`] value, a [`Taken`] handle.
    type Removed;
}

pub(crate) mod sealed {
    use crate::Transaction;

    /// A proof that the caller is this crate: the methods of [`Stored`] take one, so that code
    /// outside the crate cannot call them through a `MapValue` bound (a second share of an
    /// [`Owned`](super::Owned) cell in a user's hands would outlive a move out of it).
    #[derive(Debug)]
    pub struct Token(());

    /// The token, for the map's own code.
    pub(crate) const TOKEN: Token = Token(());

    /// What buckets do with their values; private, so that no share of an
    /// [`Owned`](super::Owned) ever reaches a user.
    pub trait Stored: Sized {
        /// The copy a new bucket version holds (or an attempt that may be rolled back).
        fn share(&self, _: Token) -> Self;

        /// What a removal or replacement by `tx` of the value `self` (in a bucket the
        /// attempt read) hands back.
        fn removed(&self, tx: &Transaction, _: Token) -> <Self as super::MapValue>::Removed
        where
            Self: super::MapValue;

        /// What a removal or replacement outside transactions (a commit of its own,
        /// `commit_owned_alone`) will hand back, made before that commit, while pinned: user
        /// code (a `Clone`) that panics here leaves the map as it was, as in a transaction.
        /// Dropped (outside the pin) if the commit is refused.
        type Removing: 'static;

        /// The [`Removing`](Self::Removing) of the value `self`.
        fn removing_alone(&self, _: Token) -> Self::Removing;

        /// What the removal hands back, once its commit has removed or replaced the value; the
        /// caller is still pinned. Runs no user code.
        fn removed_alone(removing: Self::Removing, _: Token) -> <Self as super::MapValue>::Removed
        where
            Self: super::MapValue;
    }
}

impl<T: Clone + Send + Sync + 'static> sealed::Stored for T {
    #[inline]
    fn share(&self, _: sealed::Token) -> Self {
        self.clone()
    }

    #[inline]
    fn removed(&self, _tx: &Transaction, _: sealed::Token) -> <T as MapValue>::Removed {
        self.clone()
    }

    type Removing = T;

    #[inline]
    fn removing_alone(&self, _: sealed::Token) -> T {
        self.clone()
    }

    #[inline]
    fn removed_alone(removing: Self::Removing, _: sealed::Token) -> <T as MapValue>::Removed {
        removing
    }
}

impl<T: Clone + Send + Sync + 'static> MapValue for T {
    type Removed = T;
}

/// The heap cell of an [`Owned`] value, shared by the buckets that hold it.
struct Cell<T> {
    /// The buckets (and the user's handle, or a pending removal) that hold the cell.
    shares: AtomicUsize,
    /// Set once a [`Taken`] handle moved the value out: the last share frees the cell only.
    moved: AtomicBool,
    value: UnsafeCell<ManuallyDrop<T>>,
}

/// A map value that is never cloned: a [`TMap<K, Owned<T>>`](crate::TMap) holds `T`s that
/// need not be `Clone` (jobs, one-shot senders, large buffers), and hands them back by moving
/// them out.
///
/// The value sits in a heap cell of its own that the map's buckets share (an update of a
/// neighbouring key copies a pointer, not the value). In the map, it is read by reference
/// ([`get_ref`](crate::TMap::get_ref), [`for_each`](crate::TMap::for_each),
/// [`alter`](crate::TMap::alter)); [`insert`](crate::TMap::insert) (replacing a value) and
/// [`remove`](crate::TMap::remove) return a [`Taken`] handle, whose
/// [`into_inner`](Taken::into_inner) moves the value out once the removal has committed and
/// no transaction that began before can still read it. The operations that copy values out
/// (`get`, `iter`, `values`) need `V: Clone`, which `Owned` is not.
///
/// Costs: one allocation per value, one more pointer to follow on a read, and an atomic
/// increment and decrement per neighbouring entry on each bucket update: for `Clone` values
/// that are cheap to copy, a plain `TMap<K, V>` is faster.
///
/// A value removed and never moved out, or left in the map, is dropped with the last bucket
/// that holds it, by a later reclamation pass, outside any transaction (as a `Clone` value's
/// copies are).
///
/// # Examples
///
/// A map of one-shot jobs, each run exactly once by whoever removes it:
///
/// ```
/// use commute::{atomically, Owned, TMap};
///
/// type Job = Box<dyn FnOnce() -> String + Send + Sync>;
/// let jobs: TMap<u32, Owned<Job>> = TMap::new();
/// jobs.atomic().insert(7, Owned::new(Box::new(|| "done".to_string())));
///
/// let taken = atomically(|tx| jobs.remove(tx, &7)).expect("job 7 is there");
/// let job: Job = taken.into_inner();
/// assert_eq!(job(), "done");
/// assert!(jobs.atomic().is_empty());
/// ```
pub struct Owned<T: 'static> {
    cell: NonNull<Cell<T>>,
    _owns: PhantomData<T>,
}

// SAFETY: an `Owned` value's cell is shared by buckets that threads read (`&T` on several
// threads: `T: Sync`) and free (the last one drops `T`, on any thread: `T: Send`).
unsafe impl<T: Send + Sync + 'static> Send for Owned<T> {}
// SAFETY: as above; through `&Owned` the value is only read.
unsafe impl<T: Send + Sync + 'static> Sync for Owned<T> {}

impl<T: 'static> Owned<T> {
    /// A value for a [`TMap`](crate::TMap), in a heap cell of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let buffer = commute::Owned::new(vec![0u8; 4096]);
    /// assert_eq!(buffer.len(), 4096);
    /// ```
    pub fn new(value: T) -> Self {
        let cell = Box::new(Cell {
            shares: AtomicUsize::new(1),
            moved: AtomicBool::new(false),
            value: UnsafeCell::new(ManuallyDrop::new(value)),
        });
        Owned {
            cell: NonNull::from(Box::leak(cell)),
            _owns: PhantomData,
        }
    }

    /// The value, moved out of its cell.
    ///
    /// An `Owned` that you hold is always the only share of its cell (the map never hands
    /// one out; values leave it through [`Taken`] handles), so this never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let owned = commute::Owned::new(String::from("job"));
    /// assert_eq!(owned.into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> T {
        let this = ManuallyDrop::new(self);
        // SAFETY: the cell is alive while a share (ours) exists.
        let cell = unsafe { this.cell.as_ref() };
        assert_eq!(
            cell.shares.load(Ordering::Acquire),
            1,
            "commute: Owned::into_inner on a shared cell"
        );
        // SAFETY: ours is the only share (checked): nothing else reads the value or the cell.
        // The value is read once, and the cell, allocated by `new`, freed without dropping it.
        unsafe {
            let value = ManuallyDrop::take(&mut *cell.value.get());
            drop(Box::from_raw(this.cell.as_ptr()));
            value
        }
    }

    /// One more share of the cell (for a new bucket version).
    fn new_share(&self) -> Self {
        // SAFETY: the cell is alive while a share (ours) exists.
        let cell = unsafe { self.cell.as_ref() };
        // Relaxed, as `Arc::clone`: the new share comes from an existing one.
        cell.shares.fetch_add(1, Ordering::Relaxed);
        Owned {
            cell: self.cell,
            _owns: PhantomData,
        }
    }

    /// Lets go of the share of `cell`; the last share drops the value (unless a handle moved
    /// it out) and frees the cell.
    ///
    /// # Safety
    ///
    /// The caller owns one share of `cell` and gives it up here, once; if the value may be
    /// dropped (the last share), no transaction can read it any more.
    unsafe fn release(cell: NonNull<Cell<T>>) {
        // SAFETY: the cell is alive while a share (the caller's) exists.
        let shares = unsafe { &cell.as_ref().shares };
        // Release: what this share did with the value (reads, a move) comes before the free.
        if shares.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        crate::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: the last share: the cell is ours alone (caller); allocated by `new`.
        let mut cell = unsafe { Box::from_raw(cell.as_ptr()) };
        if !cell.moved.load(Ordering::Relaxed) {
            // SAFETY: not moved out, and dropped once, here.
            unsafe { ManuallyDrop::drop(cell.value.get_mut()) };
        }
    }
}

impl<T: 'static> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: this share is given up once. A share dropped by a bucket is dropped once no
        // transaction reads that bucket (buckets are freed after their grace period); a share
        // held by the user is the only one.
        unsafe { Self::release(self.cell) }
    }
}

impl<T: Sync + 'static> core::ops::Deref for Owned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the value stays in its cell while a share is held and no handle moved it
        // out; a handle moves it only once no transaction can reach this share (a bucket's),
        // and a share the user holds is the only one.
        unsafe { &*self.cell.as_ref().value.get() }
    }
}

impl<T: Sync + fmt::Debug + 'static> fmt::Debug for Owned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Owned").field(&**self).finish()
    }
}

impl<T: Default + 'static> Default for Owned<T> {
    fn default() -> Self {
        Owned::new(T::default())
    }
}

impl<T: 'static> From<T> for Owned<T> {
    fn from(value: T) -> Self {
        Owned::new(value)
    }
}

impl<T: Send + Sync + 'static> sealed::Stored for Owned<T> {
    #[inline]
    fn share(&self, _: sealed::Token) -> Self {
        self.new_share()
    }

    fn removed(&self, tx: &Transaction, _: sealed::Token) -> <Self as MapValue>::Removed {
        let (ticket, taken) = handle_for(self);
        let mut claim = Claim::<T> {
            ticket: Some(ticket),
            _value: PhantomData,
        };
        tx.on_commit(move || claim.commit());
        taken
    }

    /// The handle, and the claim that hands it the value once the commit is done (dropped
    /// unrun, it gives its share back and leaves the handle pending, as a rolled-back removal).
    type Removing = (Claim<T>, Taken<T>);

    fn removing_alone(&self, _: sealed::Token) -> Self::Removing {
        let (ticket, taken) = handle_for(self);
        let claim = Claim::<T> {
            ticket: Some(ticket),
            _value: PhantomData,
        };
        (claim, taken)
    }

    fn removed_alone(
        (mut claim, taken): Self::Removing,
        _: sealed::Token,
    ) -> <Self as MapValue>::Removed {
        claim.commit();
        taken
    }
}

impl<T: Send + Sync + 'static> MapValue for Owned<T> {
    type Removed = Taken<T>;
}

/// A pending handle for the value of `owned`, and its ticket, which holds one new share of the
/// cell until the removal commits (then the handle's) or is rolled back.
fn handle_for<T: Send + Sync + 'static>(owned: &Owned<T>) -> (Arc<Ticket>, Taken<T>) {
    let share = ManuallyDrop::new(owned.new_share());
    let ticket = Ticket::for_value(share.cell.as_ptr().cast(), value_done::<T>);
    // SAFETY: the cell is alive while the ticket's share exists.
    let item = unsafe { share.cell.as_ref() }.value.get().cast::<T>();
    let taken = Taken::new(ticket.clone(), item);
    (ticket, taken)
}

/// The end of a [`Taken`] handle's share of an [`Owned`] cell: `moved` if it moved the value
/// out.
///
/// # Safety
///
/// `ticket` was made by [`handle_for`] for a `Cell<T>`; called once, by whoever owns the
/// handle's share (the handle, or the commit for a handle dropped before it), after the grace
/// period of the removal's commit.
unsafe fn value_done<T: Send + Sync + 'static>(ticket: &Ticket, left: bool) {
    let cell = NonNull::new(ticket.node.cast::<Cell<T>>()).expect("a ticket names its cell");
    if !left {
        // SAFETY: the cell is alive while the handle's share exists. Set before the share's
        // release, which publishes it to the last share.
        unsafe { cell.as_ref() }
            .moved
            .store(true, Ordering::Relaxed);
    }
    // SAFETY: the handle's share, given up once (caller); the value, if this is the last
    // share and it was left, is dropped after the grace period (caller).
    unsafe { Owned::<T>::release(cell) }
}

/// A removal's claim, registered as an `on_commit` hook: it tells the handle that the removal
/// committed and hands it the share of the cell; dropped without running (the removal rolled
/// back), it gives the share back.
pub struct Claim<T: Send + Sync + 'static> {
    ticket: Option<Arc<Ticket>>,
    _value: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> fmt::Debug for Claim<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("committed", &self.ticket.is_none())
            .finish()
    }
}

impl<T: Send + Sync + 'static> Claim<T> {
    fn commit(&mut self) {
        let ticket = self.ticket.take().expect("a claim commits once");
        // After the commit: a bound above every attempt that may still read the old bucket,
        // and the snapshots that may.
        ticket.commit(commute_stm::version_bound(), commute_stm::snapshot_mark());
    }
}

impl<T: Send + Sync + 'static> Drop for Claim<T> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            // Rolled back: the handle stays pending and never touches the cell.
            let cell =
                NonNull::new(ticket.node.cast::<Cell<T>>()).expect("a ticket names its cell");
            // SAFETY: the claim's share, given up once. The cell is still held by the bucket
            // the removal read (the removal did not commit), or that bucket is gone and no
            // transaction reads it.
            unsafe { Owned::<T>::release(cell) };
        }
    }
}
