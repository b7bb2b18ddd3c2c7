//! `TSet`: a transactional hash set, a thin layer over `TMap<T, ()>`.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use crate::atomic::Atomic;
use crate::debug;
use crate::{Change, StmResult, TMap, Transaction, atomically};

/// A transactional hash set whose operations on different elements do not conflict.
///
/// A [`TMap<T, ()>`](TMap) underneath, with the same properties: split buckets, a length counter
/// that concurrent inserts do not conflict on, and an API that follows std's
/// [`HashSet`](std::collections::HashSet) with a `tx` argument (or none, through
/// [`atomic`](TSet::atomic)). Inside [`read_only`](crate::read_only) its reads see an O(1)
/// snapshot that writers do not disturb, as the map's do (see
/// [`TMap`'s snapshots](TMap#snapshots-reading-the-whole-map-under-updates)).
///
/// # Examples
///
/// ```
/// use commute::{atomically, TSet};
///
/// let online: TSet<String> = TSet::new();
/// atomically(|tx| {
///     online.insert(tx, "ada".to_string())?;
///     online.insert(tx, "grace".to_string())?;
///     online.remove(tx, "ada")?;
///     Ok(())
/// });
/// assert!(online.atomic().contains("grace"));
/// assert_eq!(online.atomic().len(), 1);
/// ```
pub struct TSet<T: 'static, S = ahash::RandomState> {
    map: TMap<T, (), S>,
}

impl<T> TSet<T, ahash::RandomState>
where
    T: Send + Sync + 'static,
{
    /// Creates an empty set with ahash's randomly seeded hasher.
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u32> = commute::TSet::new();
    /// assert!(s.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        TSet { map: TMap::new() }
    }

    /// Creates an empty set sized for about `capacity` elements; see
    /// [`TMap::with_capacity`].
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u32> = commute::TSet::with_capacity(10_000);
    /// assert!(s.atomic().insert(1));
    /// ```
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        TSet {
            map: TMap::with_capacity(capacity),
        }
    }

    /// Creates an empty set with a custom trie shape; see `TMap::with_config`. For tests and loom
    /// models.
    ///
    /// # Panics
    ///
    /// If `root_slots` is not a power of two (at most 65536), `inner_slots` is not a power of two
    /// from 2 to 65536, or `leaf_capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u32> = commute::TSet::with_config(2, 2, 1);
    /// s.atomic().insert(1);
    /// s.atomic().insert(2);
    /// assert_eq!(s.atomic().len(), 2);
    /// ```
    #[doc(hidden)]
    #[track_caller]
    pub fn with_config(root_slots: usize, inner_slots: usize, leaf_capacity: usize) -> Self {
        TSet {
            map: TMap::with_config(root_slots, inner_slots, leaf_capacity),
        }
    }
}

impl<T, S> TSet<T, S>
where
    T: Send + Sync + 'static,
{
    /// Creates an empty set that hashes elements with `hash_builder`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    ///
    /// let s: commute::TSet<u8, RandomState> = commute::TSet::with_hasher(RandomState::new());
    /// s.atomic().insert(3);
    /// assert!(s.atomic().contains(&3));
    /// ```
    #[track_caller]
    pub fn with_hasher(hash_builder: S) -> Self {
        TSet {
            map: TMap::with_hasher(hash_builder),
        }
    }

    /// Names the set's variables for statistics and conflict reports.
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u8> = commute::TSet::new().with_label("online");
    /// assert!(s.atomic().is_empty());
    /// ```
    pub fn with_label(self, label: &'static str) -> Self {
        TSet {
            map: self.map.with_label(label),
        }
    }

    /// The set's hasher.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::hash::BuildHasher;
    ///
    /// let s: commute::TSet<u8> = commute::TSet::new();
    /// assert_eq!(s.hasher().hash_one(1u8), s.hasher().hash_one(1u8));
    /// ```
    pub fn hasher(&self) -> &S {
        self.map.hasher()
    }

    /// A view whose methods each run one operation as its own transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute::TSet::new();
    /// s.atomic().insert("x");
    /// assert!(s.atomic().contains("x"));
    /// ```
    pub fn atomic(&self) -> Atomic<'_, Self> {
        Atomic(self)
    }
}

impl<T, S> TSet<T, S>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The root bucket `value` falls under (see `TMap::root_index`). For tests that need
    /// disjoint elements.
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u32> = commute::TSet::with_config(2, 2, 1);
    /// assert!(s.root_index(&7) < 2);
    /// ```
    #[doc(hidden)]
    pub fn root_index<Q>(&self, value: &Q) -> usize
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.root_index(value)
    }

    /// Adds `value`; returns whether it was new. A present element is left as it is and nothing is
    /// written (so inserting an element that is there only reads its bucket).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s = TSet::new();
    /// assert!(atomically(|tx| s.insert(tx, 1)));
    /// assert!(!atomically(|tx| s.insert(tx, 1)));
    /// ```
    pub fn insert(&self, tx: &Transaction, value: T) -> StmResult<bool> {
        self.map.insert_if_absent(tx, value, ())
    }

    /// Removes `value`; returns whether it was present.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s = TSet::new();
    /// s.atomic().insert(1);
    /// assert!(atomically(|tx| s.remove(tx, &1)));
    /// assert!(!atomically(|tx| s.remove(tx, &1)));
    /// ```
    pub fn remove<Q>(&self, tx: &Transaction, value: &Q) -> StmResult<bool>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Ok(self.map.remove(tx, value)?.is_some())
    }

    /// Removes `value` if present, else adds it; returns whether it is now in the set.
    ///
    /// One walk ([`TMap::alter`]): it reads and writes only `value`'s bucket, like
    /// [`insert`](TSet::insert) or [`remove`](TSet::remove).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let selected = TSet::new();
    /// assert!(atomically(|tx| selected.toggle(tx, 3)));
    /// assert!(!atomically(|tx| selected.toggle(tx, 3)));
    /// assert!(selected.atomic().is_empty());
    /// ```
    pub fn toggle(&self, tx: &Transaction, value: T) -> StmResult<bool> {
        // An element it removes is dropped here, as arguments are.
        Ok(self.toggle_giving_back(tx, value)?.0)
    }

    /// [`toggle`](TSet::toggle), giving the value back if it removed the element: a one-call
    /// form drops its copy once its transaction has returned.
    fn toggle_giving_back(&self, tx: &Transaction, value: T) -> StmResult<(bool, Option<T>)> {
        self.map
            .alter_giving_back(tx, value, |present| match present {
                Some(()) => (Change::Remove, false),
                None => (Change::Set(()), true),
            })
    }

    /// True if the set holds `value`.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s = TSet::new();
    /// s.atomic().insert("a".to_string());
    /// assert!(atomically(|tx| s.contains(tx, "a")));
    /// ```
    pub fn contains<Q>(&self, tx: &Transaction, value: &Q) -> StmResult<bool>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(tx, value)
    }

    /// The number of elements (reads the length counter: it conflicts with concurrent inserts of
    /// new elements and removals).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s: TSet<u32> = (0..3).collect();
    /// assert_eq!(atomically(|tx| s.len(tx)), 3);
    /// ```
    pub fn len(&self, tx: &Transaction) -> StmResult<usize> {
        self.map.len(tx)
    }

    /// True if the set has no elements.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s: TSet<u32> = TSet::new();
    /// assert!(atomically(|tx| s.is_empty(tx)));
    /// ```
    pub fn is_empty(&self, tx: &Transaction) -> StmResult<bool> {
        self.map.is_empty(tx)
    }

    /// Calls `f` with every element, borrowed, in an unspecified order (a consistent snapshot).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s: TSet<u32> = (1..=3).collect();
    /// let sum = atomically(|tx| {
    ///     let mut sum = 0;
    ///     s.for_each(tx, |x| sum += x)?;
    ///     Ok(sum)
    /// });
    /// assert_eq!(sum, 6);
    /// ```
    pub fn for_each<'a>(&'a self, tx: &'a Transaction, mut f: impl FnMut(&'a T)) -> StmResult<()> {
        self.map.for_each(tx, |k, _| f(k))
    }

    /// Clones of every element, in an unspecified order (a consistent snapshot).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s: TSet<u32> = [2, 1].into_iter().collect();
    /// let mut all = atomically(|tx| s.iter(tx));
    /// all.sort();
    /// assert_eq!(all, [1, 2]);
    /// ```
    pub fn iter(&self, tx: &Transaction) -> StmResult<Vec<T>> {
        self.map.keys(tx)
    }

    /// Removes every element.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s: TSet<u32> = (0..10).collect();
    /// atomically(|tx| s.clear(tx));
    /// assert!(s.atomic().is_empty());
    /// ```
    pub fn clear(&self, tx: &Transaction) -> StmResult<()> {
        self.map.clear(tx)
    }

    /// Keeps only the elements for which `keep` returns true.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TSet};
    ///
    /// let s: TSet<u32> = (0..10).collect();
    /// atomically(|tx| s.retain(tx, |x| x % 3 == 0));
    /// assert_eq!(s.atomic().len(), 4);
    /// ```
    pub fn retain(&self, tx: &Transaction, mut keep: impl FnMut(&T) -> bool) -> StmResult<()> {
        self.map.retain(tx, |k, _| keep(k))
    }
}

impl<T, S> Atomic<'_, TSet<T, S>>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// [`TSet::insert`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute::TSet::new();
    /// assert!(s.atomic().insert(1));
    /// assert!(!s.atomic().insert(1));
    /// ```
    #[track_caller]
    pub fn insert(self, value: T) -> bool {
        // A copy it does not keep comes back out, dropped here, outside the transaction.
        let back = atomically(|tx| self.0.map.insert_new(tx, value.clone(), ()));
        back.is_none()
    }

    /// [`TSet::remove`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute::TSet::new();
    /// s.atomic().insert(1);
    /// assert!(s.atomic().remove(&1));
    /// ```
    #[track_caller]
    pub fn remove<Q>(self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        atomically(|tx| self.0.remove(tx, value))
    }

    /// [`TSet::toggle`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute::TSet::new();
    /// assert!(s.atomic().toggle('x'));
    /// assert!(!s.atomic().toggle('x'));
    /// ```
    #[track_caller]
    pub fn toggle(self, value: T) -> bool {
        // A copy it does not keep comes back out, dropped here, outside the transaction.
        atomically(|tx| self.0.toggle_giving_back(tx, value.clone())).0
    }

    /// [`TSet::contains`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute::TSet::new();
    /// s.atomic().insert('x');
    /// assert!(s.atomic().contains(&'x'));
    /// ```
    #[track_caller]
    pub fn contains<Q>(self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        atomically(|tx| self.0.contains(tx, value))
    }

    /// [`TSet::len`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u8> = (0..5).collect();
    /// assert_eq!(s.atomic().len(), 5);
    /// ```
    #[track_caller]
    pub fn len(self) -> usize {
        atomically(|tx| self.0.len(tx))
    }

    /// [`TSet::is_empty`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u8> = commute::TSet::new();
    /// assert!(s.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn is_empty(self) -> bool {
        atomically(|tx| self.0.is_empty(tx))
    }

    /// [`TSet::iter`] in its own transaction: a consistent snapshot of every element.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute::TSet::new();
    /// s.atomic().insert(9);
    /// assert_eq!(s.atomic().iter(), [9]);
    /// ```
    #[track_caller]
    pub fn iter(self) -> Vec<T> {
        atomically(|tx| self.0.iter(tx))
    }

    /// [`TSet::clear`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute::TSet::new();
    /// s.atomic().insert(9);
    /// s.atomic().clear();
    /// assert!(s.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn clear(self) {
        atomically(|tx| self.0.clear(tx));
    }

    /// [`TSet::retain`] in its own transaction. `keep` may run more than once per element (once
    /// per attempt).
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u32> = (0..6).collect();
    /// s.atomic().retain(|x| *x >= 3);
    /// assert_eq!(s.atomic().len(), 3);
    /// ```
    #[track_caller]
    pub fn retain(self, mut keep: impl FnMut(&T) -> bool) {
        atomically(|tx| self.0.retain(tx, &mut keep));
    }
}

impl<T, S> Default for TSet<T, S>
where
    T: Send + Sync + 'static,
    S: Default,
{
    #[track_caller]
    fn default() -> Self {
        TSet {
            map: TMap::default(),
        }
    }
}

impl<T, S> fmt::Debug for TSet<T, S>
where
    T: Hash + Eq + Clone + Send + Sync + 'static + fmt::Debug,
    S: BuildHasher,
{
    /// Shows the elements of a snapshot taken in its own transaction (inside a
    /// [`TMap`]'s `Debug`, the map's snapshot). Inside a transaction, which may not start
    /// another, shows `TSet(<in a transaction>)`: there, format `set.iter(tx)?`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug::items(
            f,
            "TSet",
            |tx| self.iter(tx),
            |f, elements| f.debug_set().entries(elements).finish(),
        )
    }
}

impl<T, S> FromIterator<T> for TSet<T, S>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher + Default,
{
    /// Builds the set directly, without transactions (so it works inside one too). Of several
    /// equal elements, it keeps the first, as [`extend`](TSet::extend) and std's `HashSet` do.
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        TSet {
            map: TMap::build(iter.into_iter().map(|value| (value, ())), true),
        }
    }
}

impl<T, S> IntoIterator for TSet<T, S>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    /// Consumes the set: its elements, in no particular order.
    ///
    /// The elements are clones taken in one transaction (`self.atomic().iter()`), and the set
    /// is then dropped as usual, its own copies with it (as a [`TMap`]'s). Moving the elements
    /// out instead would not be sound: an attempt of another thread that reached the set
    /// through a handle it has since let go of may still be reading them.
    ///
    /// There is no `IntoIterator` for `&TSet`: reading the elements needs a transaction, so use
    /// [`iter`](TSet::iter) inside one, or `atomic().iter()` outside.
    ///
    /// # Panics
    ///
    /// If called inside a transaction (transactions do not nest).
    ///
    /// # Examples
    ///
    /// ```
    /// let s: commute::TSet<u32> = [3, 1, 2, 3].into_iter().collect();
    /// let mut elements: Vec<u32> = s.into_iter().collect();
    /// elements.sort();
    /// assert_eq!(elements, [1, 2, 3]);
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.atomic().iter().into_iter()
    }
}

impl<T, S> Extend<T> for TSet<T, S>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Inserts every element in one transaction. The iterator is drained first, outside the
    /// transaction (an attempt may run more than once).
    ///
    /// Panics inside a transaction (transactions do not nest): there, call
    /// [`insert`](TSet::insert) in a loop.
    #[track_caller]
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let values: Vec<T> = iter.into_iter().collect();
        let set = &*self;
        // The copies it does not keep come back out, dropped here, outside the transaction
        // (a conflict lets go of those of its attempt there too).
        let present = atomically(|tx| {
            let mut present = crate::unkept::Unkept::new(Vec::new());
            for value in &values {
                present.extend(set.map.insert_new(tx, value.clone(), ())?);
            }
            Ok(present.take())
        });
        drop(present);
    }
}
