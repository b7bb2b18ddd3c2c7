//! The split-bucket hash trie under `TMap`: node layout and the transactional walk.
//!
//! Every slot of the trie is its own `TBox<Node>`, so transactions conflict only on the slots
//! they really touch. A node is either
//!
//! - a **leaf**: a small vector of entries (hash, key, value), replaced copy-on-write as a whole
//!   by every update of one of its keys; or
//! - an **inner node**: `inner_slots` child slots (a power of two), indexed by the next
//!   `inner_bits` bits of the key's hash.
//!
//! The root is a fixed array of `root_slots` slots indexed by the hash's low `root_bits` bits;
//! level *d* below it uses bits `root_bits + (d - 1) * inner_bits ..` upwards (the layout of a
//! hash array mapped trie, Bagwell 2001, with extendible hashing's local splits):
//!
//! ```text
//!   hash: ... | level 2 | level 1 | root index |
//!                                  ^ bit 0
//! ```
//!
//! A leaf that would exceed `leaf_capacity` entries *splits locally*: its own slot is rewritten to
//! an inner node whose children are new leaves (built recursively, so one write suffices even when
//! many entries share hash bits). Nothing else is written: no operation ever rewrites the table,
//! and operations whose keys live in different leaves never read or write a common slot, so they
//! never conflict, whatever the map's growth. Once a slot is an inner node it stays one (only
//! `clear` replaces root slots), so a walk from the root reads inner slots that do not change.
//!
//! When the hash bits are used up (`shift + inner_bits > 64`, only for keys whose whole 64-bit
//! hashes collide) a leaf just grows past its capacity.
//!
//! Memory: replaced leaves (and subtrees replaced by `clear`) are retired by the core's `TBox`
//! and freed once no transaction can read them. Leaves emptied by removals are kept (they are
//! small), so the trie's shape is bounded by the largest size the map had, not by its history.

use core::borrow::Borrow;

use crate::{StmResult, TBox, Transaction};

/// The shape of a trie: root width, inner node width, and when leaves split.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    /// `log2` of the number of root slots.
    root_bits: u32,
    /// `log2` of the number of child slots of an inner node.
    inner_bits: u32,
    /// A leaf holding more entries than this splits (while hash bits remain).
    leaf_capacity: usize,
}

impl Config {
    /// 64 root slots, inner nodes of 16, leaves of up to 8 entries; under loom, 2 and 2 (and
    /// leaves of 2), so that models stay small and still split.
    pub(crate) const DEFAULT: Config = if cfg!(loom) {
        Config {
            root_bits: 1,
            inner_bits: 1,
            leaf_capacity: 2,
        }
    } else {
        Config {
            root_bits: 6,
            inner_bits: 4,
            leaf_capacity: 8,
        }
    };

    /// A configuration from slot counts (powers of two) and a leaf capacity.
    ///
    /// # Panics
    ///
    /// If `root_slots` is not a power of two, `inner_slots` is not a power of two of at least 2,
    /// or `leaf_capacity` is 0.
    pub(crate) fn new(root_slots: usize, inner_slots: usize, leaf_capacity: usize) -> Self {
        assert!(
            root_slots.is_power_of_two() && root_slots <= 1 << 16,
            "commute: root_slots must be a power of two, at most 65536"
        );
        assert!(
            inner_slots.is_power_of_two() && (2..=1 << 16).contains(&inner_slots),
            "commute: inner_slots must be a power of two, from 2 to 65536"
        );
        assert!(
            leaf_capacity > 0,
            "commute: leaf_capacity must be at least 1"
        );
        Config {
            root_bits: root_slots.trailing_zeros(),
            inner_bits: inner_slots.trailing_zeros(),
            leaf_capacity,
        }
    }

    #[inline]
    fn root_index(&self, hash: u64) -> usize {
        (hash & ((1u64 << self.root_bits) - 1)) as usize
    }

    /// The child index at the level whose bits start at `shift` (`shift < 64`).
    #[inline]
    fn child_index(&self, hash: u64, shift: u32) -> usize {
        ((hash >> shift) & ((1u64 << self.inner_bits) - 1)) as usize
    }

    /// Whether a leaf at `shift` can still split: enough hash bits remain for one more level.
    #[inline]
    fn can_split(&self, shift: u32) -> bool {
        shift + self.inner_bits <= u64::BITS
    }
}

/// One key-value pair with its hash (kept so that splits and lookups need not rehash).
#[derive(Clone)]
pub(crate) struct Entry<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// What a slot holds.
pub(crate) enum Node<K, V> {
    /// A small bucket, replaced copy-on-write.
    Leaf(Vec<Entry<K, V>>),
    /// Child slots indexed by the next hash bits.
    Inner(Box<[Slot<K, V>]>),
}

/// A trie slot: its own transactional variable.
pub(crate) type Slot<K, V> = TBox<Node<K, V>>;

/// A leaf found by a walk: its slot, its entries and the shift of its level.
struct LeafRef<'a, K, V> {
    slot: &'a Slot<K, V>,
    entries: &'a [Entry<K, V>],
    shift: u32,
}

/// How the trie makes new nodes: its configuration and the label of every slot it creates.
#[derive(Clone, Copy, Debug)]
struct Shape {
    config: Config,
    label: Option<&'static str>,
}

/// The trie: a fixed root array of slots, and its shape.
pub(crate) struct RawTrie<K, V> {
    root: Box<[Slot<K, V>]>,
    shape: Shape,
}

/// The index of the entry for `key` in a leaf.
#[inline]
fn position<K, V, Q>(entries: &[Entry<K, V>], hash: u64, key: &Q) -> Option<usize>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    entries
        .iter()
        .position(|e| e.hash == hash && e.key.borrow() == key)
}

impl Shape {
    /// A new slot holding `node`, labelled like the trie.
    fn new_slot<K, V>(&self, node: Node<K, V>) -> Slot<K, V>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        let slot = TBox::new(node);
        match self.label {
            Some(label) => slot.with_label(label),
            None => slot,
        }
    }

    /// The node for `entries` at the level whose bits start at `shift`: a leaf if they fit (or no
    /// hash bits remain), else an inner node over new leaves, split as deep as needed.
    fn build<K, V>(&self, entries: Vec<Entry<K, V>>, shift: u32) -> Node<K, V>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        if entries.len() <= self.config.leaf_capacity || !self.config.can_split(shift) {
            return Node::Leaf(entries);
        }
        let width = 1usize << self.config.inner_bits;
        let mut buckets: Vec<Vec<Entry<K, V>>> = (0..width).map(|_| Vec::new()).collect();
        for e in entries {
            buckets[self.config.child_index(e.hash, shift)].push(e);
        }
        let next = shift + self.config.inner_bits;
        let children: Vec<Slot<K, V>> = buckets
            .into_iter()
            .map(|b| self.new_slot(self.build(b, next)))
            .collect();
        Node::Inner(children.into_boxed_slice())
    }
}

impl<K, V> RawTrie<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An empty trie.
    #[track_caller]
    pub(crate) fn new(config: Config) -> Self {
        let slots = 1usize << config.root_bits;
        let mut root = Vec::with_capacity(slots);
        // A loop, not a closure, so that `#[track_caller]` gives the slots the user's site.
        for _ in 0..slots {
            root.push(TBox::new(Node::Leaf(Vec::new())));
        }
        RawTrie {
            root: root.into_boxed_slice(),
            shape: Shape {
                config,
                label: None,
            },
        }
    }

    /// The trie with every slot, present and future, labelled `label`.
    pub(crate) fn with_label(self, label: &'static str) -> Self {
        fn relabel<K, V>(slot: Slot<K, V>, label: &'static str) -> Slot<K, V>
        where
            K: Send + Sync + 'static,
            V: Send + Sync + 'static,
        {
            let node = match slot.into_inner() {
                Node::Inner(children) => Node::Inner(
                    children
                        .into_vec()
                        .into_iter()
                        .map(|c| relabel(c, label))
                        .collect(),
                ),
                leaf => leaf,
            };
            TBox::new(node).with_label(label)
        }
        let root = self
            .root
            .into_vec()
            .into_iter()
            .map(|s| relabel(s, label))
            .collect();
        RawTrie {
            root,
            shape: Shape {
                config: self.shape.config,
                label: Some(label),
            },
        }
    }

    /// The root slot index of `hash`.
    pub(crate) fn root_index(&self, hash: u64) -> usize {
        self.shape.config.root_index(hash)
    }

    /// Walks from the root to the leaf that holds (or would hold) `hash`.
    fn find_leaf<'a>(&'a self, tx: &'a Transaction, hash: u64) -> StmResult<LeafRef<'a, K, V>> {
        let mut slot = &self.root[self.shape.config.root_index(hash)];
        let mut shift = self.shape.config.root_bits;
        loop {
            match slot.read(tx)? {
                Node::Leaf(entries) => {
                    return Ok(LeafRef {
                        slot,
                        entries,
                        shift,
                    });
                }
                Node::Inner(children) => {
                    slot = &children[self.shape.config.child_index(hash, shift)];
                    shift += self.shape.config.inner_bits;
                }
            }
        }
    }

    /// The entry for `key`, borrowed for the transaction.
    pub(crate) fn get<'a, Q>(
        &'a self,
        tx: &'a Transaction,
        hash: u64,
        key: &Q,
    ) -> StmResult<Option<&'a Entry<K, V>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let leaf = self.find_leaf(tx, hash)?;
        Ok(position(leaf.entries, hash, key).map(|i| &leaf.entries[i]))
    }

    /// Sets `key` to `value`; returns the old value, or `None` if the key is new.
    pub(crate) fn insert(
        &self,
        tx: &Transaction,
        hash: u64,
        key: K,
        value: V,
    ) -> StmResult<Option<V>>
    where
        K: Eq + Clone,
        V: Clone,
    {
        let leaf = self.find_leaf(tx, hash)?;
        if let Some(i) = position(leaf.entries, hash, &key) {
            let mut entries = leaf.entries.to_vec();
            let old = core::mem::replace(&mut entries[i].value, value);
            leaf.slot.write(tx, Node::Leaf(entries));
            return Ok(Some(old));
        }
        self.push(tx, &leaf, Entry { hash, key, value });
        Ok(None)
    }

    /// Adds `key` with `value` unless the key is present (then writes nothing); returns whether
    /// it was added.
    pub(crate) fn insert_new(
        &self,
        tx: &Transaction,
        hash: u64,
        key: K,
        value: V,
    ) -> StmResult<bool>
    where
        K: Eq + Clone,
        V: Clone,
    {
        let leaf = self.find_leaf(tx, hash)?;
        if position(leaf.entries, hash, &key).is_some() {
            return Ok(false);
        }
        self.push(tx, &leaf, Entry { hash, key, value });
        Ok(true)
    }

    /// Updates the value of `key` with `update`, first inserting `default()` if the key is
    /// absent; returns whether it was inserted.
    pub(crate) fn upsert(
        &self,
        tx: &Transaction,
        hash: u64,
        key: K,
        default: impl FnOnce() -> V,
        update: impl FnOnce(&mut V),
    ) -> StmResult<bool>
    where
        K: Eq + Clone,
        V: Clone,
    {
        let leaf = self.find_leaf(tx, hash)?;
        if let Some(i) = position(leaf.entries, hash, &key) {
            let mut entries = leaf.entries.to_vec();
            update(&mut entries[i].value);
            leaf.slot.write(tx, Node::Leaf(entries));
            return Ok(false);
        }
        let mut value = default();
        update(&mut value);
        self.push(tx, &leaf, Entry { hash, key, value });
        Ok(true)
    }

    /// Writes the leaf plus `entry` (a new key), splitting it if it overflows.
    fn push(&self, tx: &Transaction, leaf: &LeafRef<'_, K, V>, entry: Entry<K, V>)
    where
        K: Clone,
        V: Clone,
    {
        let mut entries = Vec::with_capacity(leaf.entries.len() + 1);
        entries.extend_from_slice(leaf.entries);
        entries.push(entry);
        leaf.slot.write(tx, self.shape.build(entries, leaf.shift));
    }

    /// Removes `key`; returns its value if it was present.
    pub(crate) fn remove<Q>(&self, tx: &Transaction, hash: u64, key: &Q) -> StmResult<Option<V>>
    where
        K: Borrow<Q> + Clone,
        V: Clone,
        Q: Eq + ?Sized,
    {
        let leaf = self.find_leaf(tx, hash)?;
        let Some(i) = position(leaf.entries, hash, key) else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(leaf.entries.len() - 1);
        entries.extend_from_slice(&leaf.entries[..i]);
        entries.extend_from_slice(&leaf.entries[i + 1..]);
        leaf.slot.write(tx, Node::Leaf(entries));
        Ok(Some(leaf.entries[i].value.clone()))
    }

    /// Calls `visit` with every leaf (its slot and entries), in trie order.
    fn for_each_leaf<'a>(
        &'a self,
        tx: &'a Transaction,
        mut visit: impl FnMut(&'a Slot<K, V>, &'a [Entry<K, V>]) -> StmResult<()>,
    ) -> StmResult<()> {
        let mut pending: Vec<&'a Slot<K, V>> = self.root.iter().rev().collect();
        while let Some(slot) = pending.pop() {
            match slot.read(tx)? {
                Node::Leaf(entries) => visit(slot, entries)?,
                Node::Inner(children) => pending.extend(children.iter().rev()),
            }
        }
        Ok(())
    }

    /// Calls `f` with every entry.
    pub(crate) fn for_each<'a>(
        &'a self,
        tx: &'a Transaction,
        mut f: impl FnMut(&'a K, &'a V),
    ) -> StmResult<()> {
        self.for_each_leaf(tx, |_, entries| {
            for e in entries {
                f(&e.key, &e.value);
            }
            Ok(())
        })
    }

    /// Keeps the entries for which `keep` is true; returns how many were removed. Only leaves
    /// that lose an entry are written.
    pub(crate) fn retain(
        &self,
        tx: &Transaction,
        mut keep: impl FnMut(&K, &V) -> bool,
    ) -> StmResult<usize>
    where
        K: Clone,
        V: Clone,
    {
        let mut removed = 0;
        self.for_each_leaf(tx, |slot, entries| {
            let verdicts: Vec<bool> = entries.iter().map(|e| keep(&e.key, &e.value)).collect();
            let kept = verdicts.iter().filter(|&&k| k).count();
            if kept < entries.len() {
                removed += entries.len() - kept;
                let survivors = entries
                    .iter()
                    .zip(&verdicts)
                    .filter(|&(_, &k)| k)
                    .map(|(e, _)| e.clone());
                slot.write(tx, Node::Leaf(survivors.collect()));
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Empties the trie: every root slot that is not an empty leaf becomes one (the subtrees are
    /// retired whole).
    pub(crate) fn clear(&self, tx: &Transaction) -> StmResult<()> {
        for slot in self.root.iter() {
            let empty = matches!(slot.read(tx)?, Node::Leaf(entries) if entries.is_empty());
            if !empty {
                slot.write(tx, Node::Leaf(Vec::new()));
            }
        }
        Ok(())
    }

    /// Sets `key` to `value` without a transaction (the caller owns the trie exclusively);
    /// returns whether the key is new.
    pub(crate) fn insert_owned(&mut self, hash: u64, key: K, value: V) -> bool
    where
        K: Eq,
    {
        let shape = self.shape;
        let config = shape.config;
        let mut slot = &mut self.root[config.root_index(hash)];
        let mut shift = config.root_bits;
        loop {
            let node = slot.get_mut();
            match node {
                Node::Inner(children) => {
                    slot = &mut children[config.child_index(hash, shift)];
                    shift += config.inner_bits;
                }
                Node::Leaf(entries) => {
                    if let Some(i) = position(entries, hash, &key) {
                        entries[i].value = value;
                        return false;
                    }
                    entries.push(Entry { hash, key, value });
                    if entries.len() > config.leaf_capacity && config.can_split(shift) {
                        let entries = core::mem::take(entries);
                        *node = shape.build(entries, shift);
                    }
                    return true;
                }
            }
        }
    }
}
