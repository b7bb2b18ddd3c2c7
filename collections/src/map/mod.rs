//! `TMap`: a transactional hash map whose operations on different keys do not conflict.
//!
//! A safe layer over the split-bucket hash trie of [`raw`] (the hashbrown split: `raw` knows node
//! layout, this module knows hashing and the public API), plus a [`TCounter`] for the length so
//! that inserts and removals of different keys do not conflict on the size either.

mod owned;
mod raw;

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use crate::atomic::Atomic;
use crate::debug::{self, Place, Placeholder};
use crate::{StmResult, TCounter, Transaction, atomically};
use owned::sealed::TOKEN;
pub use owned::{MapValue, Owned};
use raw::{Config, RawTrie};

/// The default hasher: ahash's randomly seeded state (fixed seeds under loom, so that models are
/// deterministic).
fn default_hasher() -> ahash::RandomState {
    if cfg!(loom) {
        ahash::RandomState::with_seeds(1, 2, 3, 4)
    } else {
        ahash::RandomState::new()
    }
}

/// What [`TMap::alter`]'s closure does with the key it was given.
///
/// The closure sees the key's current value (or `None`) and returns one of these with its
/// result, like stm-containers' `focus` or a `match` on std's `Entry`.
///
/// # Examples
///
/// ```
/// use commute::{Change, TMap};
///
/// let stock: TMap<&str, u32> = TMap::new();
/// stock.atomic().insert("pear", 1);
/// // Take one pear; the key goes when the last one does.
/// let left = stock.atomic().alter("pear", |n| match n {
///     Some(&1) => (Change::Remove, 0),
///     Some(&n) => (Change::Set(n - 1), n - 1),
///     None => (Change::Keep, 0),
/// });
/// assert_eq!(left, 0);
/// assert!(stock.atomic().is_empty());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change<V> {
    /// Leave the key as it is, present or absent: nothing is written, so the operation is a read
    /// of the key's bucket only.
    Keep,
    /// Set the key to this value: a replacement if it was present, an insertion if not. Either
    /// way the entry stores the key given to `alter` (see [`TMap::insert`]).
    Set(V),
    /// Remove the key (nothing is written if it was absent).
    Remove,
}

/// A transactional hash map whose operations on different keys do not conflict.
///
/// The API follows std's [`HashMap`](std::collections::HashMap), with a `tx` argument: replace a
/// `Mutex<HashMap<K, V>>` by a `TMap<K, V>`, and `map.lock().unwrap().insert(k, v)` by
/// `map.insert(tx, k, v)?` inside [`atomically`], or by `map.atomic().insert(k, v)` on its own.
///
/// Inside, the map is a hash trie of small buckets, each bucket its own transactional variable.
/// A bucket that overflows splits locally, so the map grows without ever rewriting the whole
/// table: two transactions that touch keys in different buckets never abort each other, even
/// while the map grows from empty to millions of keys. The length is a [`TCounter`], so
/// inserting or removing different keys does not conflict on it either; reading it
/// ([`len`](TMap::len)) does conflict with concurrent inserts and removals, as it must. Buckets
/// do not store their keys' hashes: as std's map hashes its keys again when it grows, this one
/// hashes a bucket's keys again when the bucket splits (and one key when a removal moves it up
/// among the bucket's first four). A key's `Hash` that panics there leaves the map unchanged.
///
/// Buckets are replaced copy-on-write, which is why keys must be `Clone`, and values
/// [`MapValue`]: either `Clone` (each bucket holds its own clones: cheap to clone values such as
/// numbers, `Arc`s and short strings suit it best), or wrapped in [`Owned`], for values that are
/// not `Clone` or are costly to clone (jobs, one-shot senders, large buffers): buckets then
/// share one heap cell per value, and [`remove`](TMap::remove) and [`insert`](TMap::insert)
/// hand the old value back through a [`Taken`](crate::Taken) handle that moves it out after the
/// commit. The operations that copy values out ([`get`](TMap::get), [`iter`](TMap::iter),
/// [`values`](TMap::values), [`upsert`](TMap::upsert)) need `V: Clone`; the others
/// ([`get_ref`](TMap::get_ref), [`for_each`](TMap::for_each), [`alter`](TMap::alter), ...)
/// work with `Owned` values too.
///
/// ```
/// use commute::{atomically, Owned, TMap};
///
/// let buffers: TMap<&str, Owned<Vec<u8>>> = TMap::new();
/// buffers.atomic().insert("frame", Owned::new(vec![0; 1 << 20]));
/// // Reads borrow the value; updates of other keys never copy it.
/// let len = atomically(|tx| Ok(buffers.get_ref(tx, "frame")?.map(|b| b.len())));
/// assert_eq!(len, Some(1 << 20));
/// let frame: Vec<u8> = buffers.atomic().remove("frame").unwrap().into_inner();
/// assert_eq!(frame.len(), 1 << 20);
/// ```
///
/// # Where and when keys and values are dropped
///
/// A bucket holds its own clones of its keys and values. An insert, update or removal commits
/// a new bucket and retires the old one; the old bucket's keys and values are dropped by a later
/// reclamation pass, once no running transaction can still read them, never inside a
/// transaction, so their `Drop` may use commute (see [`TBox`](crate::TBox) for where passes
/// run, and what happens when the thread exits first). A removed value handed back to you is a
/// clone; the map's own copy goes with its bucket. An [`Owned`] value is dropped with the last
/// bucket that holds it, unless a removal's [`Taken`](crate::Taken) handle moves it out first. Buckets an attempt built but did not commit
/// are dropped when the attempt ends. Dropping the map drops what it holds at once if no thread
/// is inside [`atomically`] then; otherwise once every such call has returned (an attempt,
/// maybe this thread's own, may still hold the map's buckets), by a later reclamation pass,
/// outside any transaction.
///
/// # Snapshots: reading the whole map under updates
///
/// Inside [`read_only`](crate::read_only), [`for_each`](TMap::for_each), [`iter`](TMap::iter),
/// [`get`](TMap::get) and [`len`](TMap::len) read the map as it was when the snapshot was taken,
/// however long the walk takes and whatever commits meanwhile: taking the snapshot is O(1) (no
/// copy), the walk never aborts, and writers are never held up by it. Each commit that replaces
/// a bucket the snapshot still needs keeps the old bucket for it (one per bucket, whatever the
/// number of commits), and lets go of it once the snapshot ends. In an ordinary
/// [`atomically`] transaction, the same walk conflicts with every concurrent write to the map.
///
/// ```
/// use commute::{read_only, TMap};
///
/// let balances: TMap<u32, i64> = (0..1000).map(|k| (k, 10)).collect();
/// let total = read_only(|tx| {
///     let mut total = 0;
///     balances.for_each(tx, |_, v| total += v)?;
///     Ok(total)
/// });
/// assert_eq!(total, 10_000);
/// ```
///
/// # Examples
///
/// ```
/// use commute::{atomically, TMap};
///
/// let sessions: TMap<u64, String> = TMap::new();
/// atomically(|tx| {
///     sessions.insert(tx, 1, "ada".to_string())?;
///     sessions.insert(tx, 2, "grace".to_string())?;
///     Ok(())
/// });
/// assert_eq!(sessions.atomic().get(&1).as_deref(), Some("ada"));
/// assert_eq!(sessions.atomic().len(), 2);
/// ```
pub struct TMap<K: 'static, V: 'static, S = ahash::RandomState> {
    raw: RawTrie<K, V>,
    len: TCounter,
    hash_builder: S,
}

impl<K, V> TMap<K, V, ahash::RandomState>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Creates an empty map with ahash's randomly seeded hasher.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: commute::TMap<u32, u32> = commute::TMap::new();
    /// assert!(m.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        Self::with_hasher(default_hasher())
    }

    /// Creates an empty map sized for about `capacity` keys, with ahash's randomly seeded
    /// hasher.
    ///
    /// The map never needs this (it grows by local splits, without ever rewriting the table),
    /// but a map that will hold many keys walks one or two levels less if its root starts wide:
    /// the root gets about one slot per two keys, rounded up to a power of two (32 bytes each:
    /// 16 to 32 bytes per key, about what a `HashMap` of words spends on its table; at most
    /// 16,777,216 slots, 512 MiB, reached past 16,777,216 keys). Small capacities give the
    /// default shape. Asking for more than the keys expected spreads them thinner: fewer keys
    /// share a bucket, so threads that update different keys share fewer cache lines, at 32
    /// bytes per extra root slot. A walk over the whole map ([`for_each`](TMap::for_each),
    /// [`iter`](TMap::iter), [`retain`](TMap::retain), [`clear`](TMap::clear)) visits every root
    /// slot, so its cost follows the capacity asked for, as a `HashMap`'s iteration does.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: commute::TMap<u64, u64> = commute::TMap::with_capacity(100_000);
    /// m.atomic().insert(1, 1);
    /// assert_eq!(m.atomic().len(), 1);
    /// ```
    #[track_caller]
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, default_hasher())
    }

    /// Creates an empty map with a custom trie shape: `root_slots` root buckets, inner nodes of
    /// `inner_slots` children, and buckets that split above `leaf_capacity` entries.
    ///
    /// For tests and loom models, which use tiny shapes to make splits happen with a few keys.
    ///
    /// # Panics
    ///
    /// If `root_slots` is not a power of two (at most 65536), `inner_slots` is not a power of two
    /// from 2 to 65536, or `leaf_capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: commute::TMap<u32, u32> = commute::TMap::with_config(2, 2, 1);
    /// m.atomic().insert(1, 1);
    /// m.atomic().insert(2, 2); // the bucket of 1 may split here
    /// assert_eq!(m.atomic().len(), 2);
    /// ```
    #[doc(hidden)]
    #[track_caller]
    pub fn with_config(root_slots: usize, inner_slots: usize, leaf_capacity: usize) -> Self {
        Self::with_config_and_hasher(root_slots, inner_slots, leaf_capacity, default_hasher())
    }
}

impl<K, V, S> TMap<K, V, S>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Creates an empty map that hashes keys with `hash_builder`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::TMap;
    /// use std::collections::hash_map::RandomState;
    ///
    /// let m: TMap<&str, i32, RandomState> = TMap::with_hasher(RandomState::new());
    /// m.atomic().insert("a", 1);
    /// assert_eq!(m.atomic().get("a"), Some(1));
    /// ```
    #[track_caller]
    pub fn with_hasher(hash_builder: S) -> Self {
        TMap {
            raw: RawTrie::new(Config::DEFAULT),
            len: TCounter::new(),
            hash_builder,
        }
    }

    /// Creates an empty map sized for about `capacity` keys (see
    /// [`with_capacity`](TMap::with_capacity)) that hashes keys with `hash_builder`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    ///
    /// let m: commute::TMap<u8, u8, RandomState> =
    ///     commute::TMap::with_capacity_and_hasher(1_000, RandomState::new());
    /// m.atomic().insert(1, 1);
    /// assert_eq!(m.atomic().get(&1), Some(1));
    /// ```
    #[track_caller]
    pub fn with_capacity_and_hasher(capacity: usize, hash_builder: S) -> Self {
        TMap {
            raw: RawTrie::new(Config::for_capacity(capacity)),
            len: TCounter::new(),
            hash_builder,
        }
    }

    /// [`with_config`](TMap::with_config) with a given hasher.
    ///
    /// # Panics
    ///
    /// As for [`with_config`](TMap::with_config).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    ///
    /// let m: commute::TMap<u8, u8, RandomState> =
    ///     commute::TMap::with_config_and_hasher(1, 2, 1, RandomState::new());
    /// m.atomic().insert(1, 1);
    /// assert_eq!(m.atomic().get(&1), Some(1));
    /// ```
    #[doc(hidden)]
    #[track_caller]
    pub fn with_config_and_hasher(
        root_slots: usize,
        inner_slots: usize,
        leaf_capacity: usize,
        hash_builder: S,
    ) -> Self {
        TMap {
            raw: RawTrie::new(Config::new(root_slots, inner_slots, leaf_capacity)),
            len: TCounter::new(),
            hash_builder,
        }
    }

    /// Names the map's variables (buckets and length) for statistics and conflict reports.
    ///
    /// # Examples
    ///
    /// ```
    /// let sessions: commute::TMap<u64, u64> = commute::TMap::new().with_label("sessions");
    /// assert!(sessions.atomic().is_empty());
    /// ```
    pub fn with_label(self, label: &'static str) -> Self {
        TMap {
            raw: self.raw.with_label(label),
            len: self.len.with_label(label),
            hash_builder: self.hash_builder,
        }
    }

    /// The map's hasher.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::hash::BuildHasher;
    ///
    /// let m: commute::TMap<u8, u8> = commute::TMap::new();
    /// assert_eq!(m.hasher().hash_one(1u8), m.hasher().hash_one(1u8));
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hash_builder
    }

    /// A view whose methods each run one operation as its own transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert("k", 1);
    /// assert_eq!(m.atomic().get("k"), Some(1));
    /// ```
    pub fn atomic(&self) -> Atomic<'_, Self> {
        Atomic(self)
    }
}

impl<K, V, S> TMap<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: MapValue,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hash_builder.hash_one(key)
    }

    /// The root bucket `key` falls under: keys under different root buckets never share a
    /// bucket, so operations on them never conflict. For tests that need disjoint keys.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: commute::TMap<u32, u32> = commute::TMap::with_config(2, 2, 1);
    /// assert!(m.root_index(&7) < 2);
    /// ```
    #[doc(hidden)]
    pub fn root_index<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.raw.root_index(self.hash(key))
    }

    /// A clone of the value of `key`, if present.
    ///
    /// Reads only `key`'s bucket (and the path to it): it conflicts only with writes to that
    /// bucket.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m = TMap::new();
    /// m.atomic().insert("a".to_string(), 1);
    /// assert_eq!(atomically(|tx| m.get(tx, "a")), Some(1));
    /// assert_eq!(atomically(|tx| m.get(tx, "b")), None);
    /// ```
    #[inline(always)]
    pub fn get<Q>(&self, tx: &Transaction, key: &Q) -> StmResult<Option<V>>
    where
        V: Clone,
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Ok(self.get_ref(tx, key)?.cloned())
    }

    /// The value of `key`, borrowed for the rest of the transaction (no clone).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m = TMap::new();
    /// m.atomic().insert(1, vec![1, 2, 3]);
    /// let len = atomically(|tx| Ok(m.get_ref(tx, &1)?.map(Vec::len)));
    /// assert_eq!(len, Some(3));
    /// ```
    #[inline(always)]
    pub fn get_ref<'a, Q>(&'a self, tx: &'a Transaction, key: &Q) -> StmResult<Option<&'a V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Ok(self.raw.get(tx, self.hash(key), key)?.map(|e| &e.value))
    }

    /// True if the map holds `key`.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m = TMap::new();
    /// m.atomic().insert(1, ());
    /// assert!(atomically(|tx| m.contains_key(tx, &1)));
    /// assert!(!atomically(|tx| m.contains_key(tx, &2)));
    /// ```
    #[inline(always)]
    pub fn contains_key<Q>(&self, tx: &Transaction, key: &Q) -> StmResult<bool>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Ok(self.get_ref(tx, key)?.is_some())
    }

    /// Sets `key` to `value`; returns the old value, or `None` if the key was absent.
    ///
    /// Writes only `key`'s bucket (splitting it if it overflows, which touches nothing else) and,
    /// for a new key, adds to the length counter without reading it.
    ///
    /// If the key is present, the entry stores `key` too, in place of the equal key it held:
    /// unlike [`HashMap::insert`](std::collections::HashMap::insert), which keeps its key. The
    /// bucket is copied with the new entry, and the old one stays, unchanged, for snapshots and
    /// concurrent readers. This matters only for keys that are equal without being identical;
    /// [`alter`](Self::alter) does the same when it sets a present key.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m = TMap::new();
    /// assert_eq!(atomically(|tx| m.insert(tx, "k", 1)), None);
    /// assert_eq!(atomically(|tx| m.insert(tx, "k", 2)), Some(1));
    /// assert_eq!(m.atomic().get("k"), Some(2));
    /// ```
    #[inline]
    pub fn insert(&self, tx: &Transaction, key: K, value: V) -> StmResult<Option<V::Removed>> {
        let old = self
            .raw
            .insert(tx, self.hash(&key), key, value, &self.hash_builder)?;
        if old.is_none() {
            self.len.incr(tx);
        }
        Ok(old)
    }

    /// Adds `key` with `value` if the key is absent; returns whether it was added. A present key
    /// keeps its value and nothing is written.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m = TMap::new();
    /// assert!(atomically(|tx| m.insert_if_absent(tx, "k", 1)));
    /// assert!(!atomically(|tx| m.insert_if_absent(tx, "k", 2)));
    /// assert_eq!(m.atomic().get("k"), Some(1));
    /// ```
    pub fn insert_if_absent(&self, tx: &Transaction, key: K, value: V) -> StmResult<bool> {
        // A present key: `key` and `value` are dropped here, as arguments are.
        Ok(self.insert_new(tx, key, value)?.is_none())
    }

    /// [`insert_if_absent`](TMap::insert_if_absent), giving `key` and `value` back if the key
    /// is present: a one-call form drops its copies once its transaction has returned.
    pub(crate) fn insert_new(
        &self,
        tx: &Transaction,
        key: K,
        value: V,
    ) -> StmResult<Option<(K, V)>> {
        let hash = self.hash(&key);
        match self
            .raw
            .insert_new(tx, hash, key, value, &self.hash_builder)?
        {
            None => {
                self.len.incr(tx);
                Ok(None)
            }
            Some(entry) => Ok(Some((entry.key, entry.value))),
        }
    }

    /// Removes `key`; returns its value if it was present.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m = TMap::new();
    /// m.atomic().insert(1, 'a');
    /// assert_eq!(atomically(|tx| m.remove(tx, &1)), Some('a'));
    /// assert_eq!(atomically(|tx| m.remove(tx, &1)), None);
    /// ```
    pub fn remove<Q>(&self, tx: &Transaction, key: &Q) -> StmResult<Option<V::Removed>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // The length is counted as soon as the removal is written: the clone of the value handed
        // back may panic (and the panic be caught inside the transaction).
        self.raw
            .remove(tx, self.hash(key), key, &self.hash_builder, || {
                self.len.decr(tx)
            })
    }

    /// Reads, inserts, replaces or removes `key` in one walk, as `f` decides; returns `f`'s
    /// result.
    ///
    /// `f` gets the key's current value (`None` if absent) and returns a [`Change`] with a
    /// result of its own: [`Keep`](Change::Keep) writes nothing, [`Set`](Change::Set) inserts
    /// or replaces the value, [`Remove`](Change::Remove) removes the key. It is the one operation
    /// behind std's `Entry` patterns, dashmap's `alter` and `remove_if`, and stm-containers'
    /// `focus`.
    ///
    /// Its conflicts are those of a single-key operation: it reads only `key`'s bucket (and
    /// the path to it), and writes that bucket only for a `Set` or for a `Remove` of a present
    /// key, so a `Keep` aborts no concurrent reader. The length counter is added to (without
    /// reading it) only when the key appears or disappears.
    ///
    /// `f` runs once per attempt, inside the transaction: keep it free of side effects outside
    /// it. It may read and write this map too (it can capture the transaction): its change then
    /// applies to the key as the map stands after `f` ran.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// A counter per key that disappears at zero; each call returns the new count:
    ///
    /// ```
    /// use commute::{atomically, Change, TMap};
    ///
    /// let holds: TMap<&str, u32> = TMap::new();
    /// let add = |key, delta: i32| {
    ///     atomically(|tx| {
    ///         holds.alter(tx, key, |n| {
    ///             let n = n.map_or(0, |&n| n as i32) + delta;
    ///             let change = if n > 0 { Change::Set(n as u32) } else { Change::Remove };
    ///             (change, n.max(0) as u32)
    ///         })
    ///     })
    /// };
    /// assert_eq!(add("lock", 1), 1);
    /// assert_eq!(add("lock", 1), 2);
    /// assert_eq!(add("lock", -1), 1);
    /// assert_eq!(add("lock", -1), 0);
    /// assert_eq!(holds.atomic().get("lock"), None);
    /// assert!(holds.atomic().is_empty());
    /// ```
    ///
    /// A remove-if (here: remove an expired session, returning it):
    ///
    /// ```
    /// use commute::{atomically, Change, TMap};
    ///
    /// let expiry: TMap<u64, u64> = [(1, 100), (2, 300)].into_iter().collect();
    /// let now = 200;
    /// let remove_if_expired = |id| {
    ///     atomically(|tx| {
    ///         expiry.alter(tx, id, |at| match at {
    ///             Some(&at) if at <= now => (Change::Remove, Some(at)),
    ///             _ => (Change::Keep, None),
    ///         })
    ///     })
    /// };
    /// assert_eq!(remove_if_expired(1), Some(100));
    /// assert_eq!(remove_if_expired(2), None); // not expired: kept, nothing written
    /// assert_eq!(remove_if_expired(3), None); // absent: nothing written
    /// assert_eq!(expiry.atomic().iter(), [(2, 300)]);
    /// ```
    ///
    /// A read-modify-write that returns the old value:
    ///
    /// ```
    /// use commute::{atomically, Change, TMap};
    ///
    /// let names: TMap<u32, String> = TMap::new();
    /// let old = atomically(|tx| {
    ///     names.alter(tx, 7, |old| {
    ///         let new = format!("{}!", old.map_or("", String::as_str));
    ///         (Change::Set(new), old.cloned())
    ///     })
    /// });
    /// assert_eq!(old, None);
    /// let old = names.atomic().alter(7, |old| (Change::Set("hi".to_string()), old.cloned()));
    /// assert_eq!(old.as_deref(), Some("!"));
    /// assert_eq!(names.atomic().get(&7).as_deref(), Some("hi"));
    /// ```
    #[inline]
    pub fn alter<R>(
        &self,
        tx: &Transaction,
        key: K,
        f: impl FnOnce(Option<&V>) -> (Change<V>, R),
    ) -> StmResult<R> {
        // A key no entry keeps is dropped here, as arguments are.
        self.alter_handing(tx, key, f, drop)
    }

    /// [`alter`](TMap::alter), giving the key back if no entry keeps it: a one-call form drops
    /// its copy once its transaction has returned.
    #[inline]
    pub(crate) fn alter_giving_back<R>(
        &self,
        tx: &Transaction,
        key: K,
        f: impl FnOnce(Option<&V>) -> (Change<V>, R),
    ) -> StmResult<(R, Option<K>)> {
        let mut back = None;
        let result = self.alter_handing(tx, key, f, |key| back = Some(key))?;
        Ok((result, back))
    }

    /// [`alter`](TMap::alter), handing the key to `unkept` if no entry keeps it.
    #[inline]
    fn alter_handing<R>(
        &self,
        tx: &Transaction,
        key: K,
        f: impl FnOnce(Option<&V>) -> (Change<V>, R),
        unkept: impl FnOnce(K),
    ) -> StmResult<R> {
        // The key no entry keeps is handed on only once the length is adjusted: its `Drop` may
        // panic (and the panic be caught inside the transaction).
        let mut spare = None;
        let (result, delta) =
            self.raw
                .alter(tx, self.hash(&key), key, &self.hash_builder, f, |key| {
                    spare = Some(key)
                })?;
        if delta != 0 {
            self.len.add(tx, delta);
        }
        if let Some(key) = spare {
            unkept(key);
        }
        Ok(result)
    }

    /// Updates the value of `key` in place with `update`, first inserting `default()` if the key
    /// is absent (like std's `entry(key).or_insert_with(default)` followed by `update`). A
    /// shorthand for an [`alter`](TMap::alter) that always sets the key.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let words = TMap::new();
    /// atomically(|tx| {
    ///     for w in ["to", "be", "or", "not", "to", "be"] {
    ///         words.upsert(tx, w, || 0, |n| *n += 1)?;
    ///     }
    ///     Ok(())
    /// });
    /// assert_eq!(words.atomic().get("to"), Some(2));
    /// assert_eq!(words.atomic().get("or"), Some(1));
    /// ```
    pub fn upsert(
        &self,
        tx: &Transaction,
        key: K,
        default: impl FnOnce() -> V,
        update: impl FnOnce(&mut V),
    ) -> StmResult<()>
    where
        V: Clone,
    {
        self.alter(tx, key, |old| {
            // Let go of outside the transaction if `update` panics.
            let mut value = crate::unkept::Unkept::new(match old {
                Some(old) => old.clone(),
                None => default(),
            });
            update(&mut value);
            (Change::Set(value.take()), ())
        })
    }

    /// The number of entries.
    ///
    /// It reads the length counter (its per-thread shards, never the buckets), so it conflicts
    /// with concurrent inserts of new keys and removals: read it only where the transaction
    /// depends on it. In a [`read_only`](crate::read_only) snapshot it never conflicts.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m = TMap::new();
    /// let n = atomically(|tx| {
    ///     m.insert(tx, 1, 1)?;
    ///     m.insert(tx, 2, 2)?;
    ///     m.len(tx)
    /// });
    /// assert_eq!(n, 2);
    /// ```
    pub fn len(&self, tx: &Transaction) -> StmResult<usize> {
        let len = self.len.get(tx)?;
        debug_assert!(
            len >= 0,
            "a map's length is never negative in a consistent snapshot"
        );
        Ok(usize::try_from(len).unwrap_or(0))
    }

    /// True if the map has no entries (reads the length, like [`len`](TMap::len)).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m: TMap<u8, u8> = TMap::new();
    /// assert!(atomically(|tx| m.is_empty(tx)));
    /// ```
    pub fn is_empty(&self, tx: &Transaction) -> StmResult<bool> {
        Ok(self.len(tx)? == 0)
    }

    /// Calls `f` with every entry, borrowed, in an unspecified order.
    ///
    /// The entries are a consistent snapshot (the transaction reads every bucket), so in an
    /// ordinary transaction it conflicts with every concurrent write to the map; run it in
    /// [`read_only`](crate::read_only) to walk a snapshot that writers do not disturb (see
    /// [snapshots](TMap#snapshots-reading-the-whole-map-under-updates)).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m: TMap<u32, u32> = (1..=4).map(|k| (k, k * 10)).collect();
    /// let mut sum = 0;
    /// atomically(|tx| {
    ///     sum = 0;
    ///     m.for_each(tx, |_, v| sum += v)
    /// });
    /// assert_eq!(sum, 100);
    /// ```
    pub fn for_each<'a>(
        &'a self,
        tx: &'a Transaction,
        f: impl FnMut(&'a K, &'a V),
    ) -> StmResult<()> {
        self.raw.for_each(tx, f)
    }

    /// Clones of every entry, in an unspecified order (a consistent snapshot, as for
    /// [`for_each`](TMap::for_each)).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m: TMap<u32, char> = [(1, 'a'), (2, 'b')].into_iter().collect();
    /// let mut entries = atomically(|tx| m.iter(tx));
    /// entries.sort();
    /// assert_eq!(entries, [(1, 'a'), (2, 'b')]);
    /// ```
    pub fn iter(&self, tx: &Transaction) -> StmResult<Vec<(K, V)>>
    where
        V: Clone,
    {
        self.collect(tx, |k, v| (k.clone(), v.clone()))
    }

    /// Clones of every key, in an unspecified order (a consistent snapshot).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m: TMap<u32, ()> = [(3, ()), (1, ())].into_iter().collect();
    /// let mut keys = atomically(|tx| m.keys(tx));
    /// keys.sort();
    /// assert_eq!(keys, [1, 3]);
    /// ```
    pub fn keys(&self, tx: &Transaction) -> StmResult<Vec<K>> {
        self.collect(tx, |k, _| k.clone())
    }

    /// Clones of every value, in an unspecified order (a consistent snapshot).
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m: TMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    /// let total: u32 = atomically(|tx| m.values(tx)).into_iter().sum();
    /// assert_eq!(total, 3);
    /// ```
    pub fn values(&self, tx: &Transaction) -> StmResult<Vec<V>>
    where
        V: Clone,
    {
        self.collect(tx, |_, v| v.clone())
    }

    /// `f` of every entry, in the trie's order (one consistent snapshot).
    fn collect<R: 'static>(
        &self,
        tx: &Transaction,
        mut f: impl FnMut(&K, &V) -> R,
    ) -> StmResult<Vec<R>> {
        // Copies of the user's keys and values: let go of outside the transaction if the walk
        // meets a conflict or `f` (a `Clone`) panics.
        let mut out = crate::unkept::Unkept::new(Vec::new());
        self.raw.for_each(tx, |k, v| out.push(f(k, v)))?;
        Ok(out.take())
    }

    /// Removes every entry.
    ///
    /// It reads the length (to reset it) and the root buckets, so it conflicts with every
    /// concurrent write to the map.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m: TMap<u32, u32> = (0..100).map(|k| (k, k)).collect();
    /// atomically(|tx| m.clear(tx));
    /// assert!(m.atomic().is_empty());
    /// assert_eq!(m.atomic().get(&5), None);
    /// ```
    pub fn clear(&self, tx: &Transaction) -> StmResult<()> {
        let len = self.len.get(tx)?;
        self.raw.clear(tx)?;
        self.len.add(tx, len.wrapping_neg());
        Ok(())
    }

    /// Keeps only the entries for which `keep` returns true.
    ///
    /// Unlike std's, `keep` gets `&V`, not `&mut V`: updating every value would write every
    /// bucket and so conflict with everything. Only buckets that lose an entry are written.
    /// `keep` may write this map too (it can capture the transaction): the entries it rejected
    /// are then removed from the map as it stands after it ran.
    ///
    /// # Errors
    ///
    /// Returns an [`StmError`](crate::StmError) when the attempt must be rolled back; pass it on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TMap};
    ///
    /// let m: TMap<u32, u32> = (0..10).map(|k| (k, k)).collect();
    /// atomically(|tx| m.retain(tx, |_, v| v % 2 == 0));
    /// assert_eq!(m.atomic().len(), 5);
    /// assert_eq!(m.atomic().get(&3), None);
    /// ```
    pub fn retain(&self, tx: &Transaction, keep: impl FnMut(&K, &V) -> bool) -> StmResult<()> {
        /// Subtracts what the walk removed from the length, even if a `keep` that panics ends
        /// the walk (and the panic is caught inside the transaction).
        struct Counted<'a> {
            len: &'a TCounter,
            tx: &'a Transaction,
            removed: usize,
        }
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                if self.removed > 0 {
                    self.len.add(self.tx, -(self.removed as i64));
                }
            }
        }
        let mut counted = Counted {
            len: &self.len,
            tx,
            removed: 0,
        };
        self.raw
            .retain(tx, &self.hash_builder, keep, &mut counted.removed)
    }
}

impl<K, V, S> Atomic<'_, TMap<K, V, S>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: MapValue,
    S: BuildHasher,
{
    /// [`TMap::get`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, "one");
    /// assert_eq!(m.atomic().get(&1), Some("one"));
    /// ```
    #[track_caller]
    pub fn get<Q>(self, key: &Q) -> Option<V>
    where
        V: Clone,
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        crate::atomic::assert_outside_transaction();
        // A lookup reads one leaf: the latest committed one, without a transaction.
        let hash = self.0.hash(key);
        self.0
            .raw
            .get_alone(hash, key, |e| e.map(|e| e.value.clone()))
    }

    /// [`TMap::contains_key`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, ());
    /// assert!(m.atomic().contains_key(&1));
    /// ```
    #[track_caller]
    pub fn contains_key<Q>(self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        crate::atomic::assert_outside_transaction();
        let hash = self.0.hash(key);
        self.0.raw.get_alone(hash, key, |e| e.is_some())
    }

    /// [`TMap::insert`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// assert_eq!(m.atomic().insert(1, 'a'), None);
    /// assert_eq!(m.atomic().insert(1, 'b'), Some('a'));
    /// ```
    #[track_caller]
    pub fn insert(self, key: K, value: V) -> Option<V::Removed> {
        crate::atomic::assert_outside_transaction();
        // Updating a present key writes its leaf only: a commit of that one slot, without a
        // transaction. A new key also changes the length: a transaction, as is the update
        // that found its leaf changed by another commit first.
        let hash = self.0.hash(&key);
        match self.0.raw.update_alone(hash, key, value) {
            Ok(old) => Some(old),
            Err((key, value)) => {
                atomically(|tx| self.0.insert(tx, key.clone(), value.share(TOKEN)))
            }
        }
    }

    /// [`TMap::insert_if_absent`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// assert!(m.atomic().insert_if_absent(1, 'a'));
    /// assert!(!m.atomic().insert_if_absent(1, 'b'));
    /// ```
    #[track_caller]
    pub fn insert_if_absent(self, key: K, value: V) -> bool {
        // What it does not keep comes back out, dropped here, outside the transaction.
        let back = atomically(|tx| self.0.insert_new(tx, key.clone(), value.share(TOKEN)));
        back.is_none()
    }

    /// [`TMap::remove`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, 'a');
    /// assert_eq!(m.atomic().remove(&1), Some('a'));
    /// ```
    #[track_caller]
    pub fn remove<Q>(self, key: &Q) -> Option<V::Removed>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        atomically(|tx| self.0.remove(tx, key))
    }

    /// [`TMap::upsert`] in its own transaction. The closures may run more than once (once per
    /// attempt), hence `FnMut`.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = commute::TMap::new();
    /// hits.atomic().upsert("/", || 0, |n| *n += 1);
    /// hits.atomic().upsert("/", || 0, |n| *n += 1);
    /// assert_eq!(hits.atomic().get("/"), Some(2));
    /// ```
    #[track_caller]
    pub fn upsert(self, key: K, mut default: impl FnMut() -> V, mut update: impl FnMut(&mut V))
    where
        V: Clone,
    {
        atomically(|tx| self.0.upsert(tx, key.clone(), &mut default, &mut update));
    }

    /// [`TMap::alter`] in its own transaction. The closure may run more than once (once per
    /// attempt), hence `FnMut`.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::Change;
    ///
    /// let stock = commute::TMap::new();
    /// stock.atomic().insert("apple", 1u32);
    /// // Take one if there is one; the result says whether there was.
    /// let take = |item| {
    ///     stock.atomic().alter(item, |n| match n {
    ///         Some(&1) => (Change::Remove, true),
    ///         Some(&n) => (Change::Set(n - 1), true),
    ///         None => (Change::Keep, false),
    ///     })
    /// };
    /// assert!(take("apple"));
    /// assert!(!take("apple"));
    /// assert!(stock.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn alter<R>(self, key: K, mut f: impl FnMut(Option<&V>) -> (Change<V>, R)) -> R {
        // A key copy no entry keeps comes back out, dropped here, outside the transaction.
        atomically(|tx| self.0.alter_giving_back(tx, key.clone(), &mut f)).0
    }

    /// [`TMap::len`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, 1);
    /// assert_eq!(m.atomic().len(), 1);
    /// ```
    #[track_caller]
    pub fn len(self) -> usize {
        atomically(|tx| self.0.len(tx))
    }

    /// [`TMap::is_empty`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: commute::TMap<u8, u8> = commute::TMap::new();
    /// assert!(m.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn is_empty(self) -> bool {
        atomically(|tx| self.0.is_empty(tx))
    }

    /// [`TMap::iter`] in its own transaction: a consistent snapshot of every entry.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, 'a');
    /// assert_eq!(m.atomic().iter(), [(1, 'a')]);
    /// ```
    #[track_caller]
    pub fn iter(self) -> Vec<(K, V)>
    where
        V: Clone,
    {
        atomically(|tx| self.0.iter(tx))
    }

    /// [`TMap::keys`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, 'a');
    /// assert_eq!(m.atomic().keys(), [1]);
    /// ```
    #[track_caller]
    pub fn keys(self) -> Vec<K> {
        atomically(|tx| self.0.keys(tx))
    }

    /// [`TMap::values`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, 'a');
    /// assert_eq!(m.atomic().values(), ['a']);
    /// ```
    #[track_caller]
    pub fn values(self) -> Vec<V>
    where
        V: Clone,
    {
        atomically(|tx| self.0.values(tx))
    }

    /// [`TMap::clear`] in its own transaction.
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = commute::TMap::new();
    /// m.atomic().insert(1, 'a');
    /// m.atomic().clear();
    /// assert!(m.atomic().is_empty());
    /// ```
    #[track_caller]
    pub fn clear(self) {
        atomically(|tx| self.0.clear(tx));
    }

    /// [`TMap::retain`] in its own transaction. `keep` may run more than once per entry (once per
    /// attempt).
    ///
    /// # Panics
    ///
    /// If called inside a transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: commute::TMap<u32, u32> = (0..4).map(|k| (k, k)).collect();
    /// m.atomic().retain(|k, _| *k < 2);
    /// assert_eq!(m.atomic().len(), 2);
    /// ```
    #[track_caller]
    pub fn retain(self, mut keep: impl FnMut(&K, &V) -> bool) {
        atomically(|tx| self.0.retain(tx, &mut keep));
    }
}

impl<K, V, S> Default for TMap<K, V, S>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: Default,
{
    #[track_caller]
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K, V, S> fmt::Debug for TMap<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static + fmt::Debug,
    V: MapValue + fmt::Debug,
    S: BuildHasher,
{
    /// Shows the entries of a snapshot taken in its own transaction. The values are formatted
    /// in that snapshot: collections among them (a map of counters, of maps) show their
    /// contents in it. Inside a transaction, which may not start another, shows
    /// `TMap(<in a transaction>)`: there, format `map.iter(tx)?`.
    ///
    /// # Panics
    ///
    /// If a key's or value's `Debug` starts a transaction (`atomically`, a one-call form that
    /// runs one): it runs inside the map's snapshot, and transactions do not nest. Format
    /// `map.atomic().iter()`'s copies instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = |f: &mut fmt::Formatter<'_>, tx: &Transaction| {
            let mut map = f.debug_map();
            // A snapshot's reads do not fail.
            self.for_each(tx, |k, v| {
                map.entry(k, v);
            })
            .map_err(|_| fmt::Error)?;
            map.finish()
        };
        debug::show(|place| match place {
            Place::Outside => debug::in_snapshot(|tx| entries(f, tx)),
            Place::Snapshot(tx) => entries(f, tx),
            Place::InTransaction => f.debug_tuple("TMap").field(&Placeholder).finish(),
        })
    }
}

impl<K, V, S> FromIterator<(K, V)> for TMap<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: MapValue,
    S: BuildHasher + Default,
{
    /// Builds the map directly, without transactions (so it works inside one too); a later
    /// duplicate key replaces the earlier value, as in std, and the earlier key, as
    /// [`insert`](TMap::insert) does.
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::build(iter, false)
    }
}

impl<K, V, S> TMap<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: MapValue,
    S: BuildHasher + Default,
{
    /// The map of `iter`'s entries, built without transactions: of several equal keys, the
    /// last entry, or with `keep_first` the first (a set's elements, as std's `HashSet`).
    #[track_caller]
    pub(crate) fn build<I: IntoIterator<Item = (K, V)>>(iter: I, keep_first: bool) -> Self {
        let hash_builder = S::default();
        let mut raw = RawTrie::new(Config::DEFAULT);
        let mut len = 0i64;
        for (key, value) in iter {
            let hash = hash_builder.hash_one(&key);
            if raw.insert_owned(hash, key, value, &hash_builder, keep_first) {
                len += 1;
            }
        }
        TMap {
            raw,
            len: TCounter::starting_at(len),
            hash_builder,
        }
    }
}

impl<K, V, S> IntoIterator for TMap<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    /// Consumes the map: its entries, in no particular order.
    ///
    /// The entries are clones taken in one transaction (`self.atomic().iter()`), and the map is
    /// then dropped as usual, its own copies with it (see [where and when keys and values are
    /// dropped](TMap#where-and-when-keys-and-values-are-dropped)). Moving the entries out
    /// instead would not be sound: an attempt of another thread that reached the map through a
    /// handle it has since let go of may still be reading its buckets.
    ///
    /// There is no `IntoIterator` for `&TMap`: reading the entries needs a transaction, so use
    /// [`iter`](TMap::iter) inside one, or `atomic().iter()` outside.
    ///
    /// # Panics
    ///
    /// If called inside a transaction (transactions do not nest).
    ///
    /// # Examples
    ///
    /// ```
    /// let m: commute::TMap<u32, char> = [(1, 'a'), (2, 'b')].into_iter().collect();
    /// let mut entries: Vec<(u32, char)> = m.into_iter().collect();
    /// entries.sort();
    /// assert_eq!(entries, [(1, 'a'), (2, 'b')]);
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.atomic().iter().into_iter()
    }
}

impl<K, V, S> Extend<(K, V)> for TMap<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: MapValue,
    S: BuildHasher,
{
    /// Inserts every pair in one transaction (a later duplicate key replaces the earlier
    /// value, as in std). The iterator is drained first, outside the transaction (an attempt
    /// may run more than once).
    ///
    /// Panics inside a transaction (transactions do not nest): there, call
    /// [`insert`](TMap::insert) in a loop.
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let pairs: Vec<(K, V)> = iter.into_iter().collect();
        let map = &*self;
        // The values it replaces come back out, dropped here, outside the transaction (a
        // conflict lets go of those of its attempt there too).
        let replaced = atomically(|tx| {
            let mut replaced = crate::unkept::Unkept::new(Vec::new());
            for (key, value) in &pairs {
                replaced.extend(map.insert(tx, key.clone(), value.share(TOKEN))?);
            }
            Ok(replaced.take())
        });
        drop(replaced);
    }
}
