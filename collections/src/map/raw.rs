//! The split-bucket hash trie under `TMap`: node layout and the transactional walk.
//!
//! Every slot of the trie is its own `TVar` holding a [`NodeRef`], so transactions conflict only
//! on the slots they really touch. A slot holds one of
//!
//! - **empty**: the null word; an empty leaf costs no allocation;
//! - a **leaf**: one allocation holding its length, a one-byte tag of each of its first four
//!   entries' hashes, and its entries (key, value) inline, exactly as many as it has,
//!   replaced copy-on-write as a whole by every update of one of its keys; or
//! - an **inner node**: one cache-line-aligned allocation of `inner_slots` child slots (a power
//!   of two) inline, indexed by the next `inner_bits` bits of the key's hash.
//!
//! Nodes are laid out by hand so that a walk costs one dependent load per level (the slot, inline
//! in its parent) plus one for the leaf, whose entries sit right after its header. A lookup in
//! a leaf compares the four tags at once (one word of the header) and the key of each matching
//! entry, rather than going through the entries one by one: a loop that stops at its key
//! mispredicts about once per lookup, since a key's place in its leaf is random. The slot's
//! word tags the kind: 0 is empty, a set low bit marks an inner node (whose width, as `log2`, sits
//! in bits 1 to 5: inner nodes are 64-byte aligned), anything else is a leaf.
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
//! `clear` replaces root slots), so a walk from the root reads inner slots that do not change:
//! below the root it reads them settled ([`TVar::read_settled`]), not recorded in the
//! attempt's read set, whose validation could never fail on them.
//!
//! When the hash bits are used up (`shift + inner_bits > 64`, only for keys whose whole 64-bit
//! hashes collide) a leaf just grows past its capacity.
//!
//! Memory: replaced leaves (and subtrees replaced by `clear`) are retired by the core
//! ([`TVar::write_owned`]) and freed once no transaction can read them. A leaf emptied by
//! removals becomes an empty slot (no allocation); inner nodes stay, so the trie's shape is
//! bounded by the largest size the map had, not by its history.

use core::alloc::Layout;
use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::panic::Location;
use core::ptr::{self, NonNull};
use std::alloc::{alloc, dealloc, handle_alloc_error};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::Change;
use super::owned::MapValue;
use super::owned::sealed::{Stored, TOKEN};
use crate::blocks;
use crate::unkept::Unkept;
use crate::{Inline, OwnedWord, Seen, StmResult, TVar, Transaction, Word};

/// The shape of a trie: root width, inner node width, and when leaves split.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    /// `log2` of the number of root slots.
    root_bits: u32,
    /// `log2` of the number of child slots of an inner node.
    inner_bits: u32,
    /// A leaf holding more entries than this splits (while hash bits remain).
    leaf_capacity: usize,
    /// `inner_slots - 1`, the mask of a child index (derived from `inner_bits` in
    /// [`from_bits`](Self::from_bits)): kept, so that a walk that stops at the root (a
    /// presized map) does not compute it.
    inner_mask: u64,
}

impl Config {
    /// 64 root slots, inner nodes of 16, leaves of up to 8 entries; under loom, 2 and 2 (and
    /// leaves of 2), so that models stay small and still split.
    pub(crate) const DEFAULT: Config = if cfg!(loom) {
        Config::from_bits(1, 1, 2)
    } else {
        Config::from_bits(6, 4, 8)
    };

    /// A configuration from `log2` widths (`inner_bits` from 1 to 16) and a leaf capacity.
    const fn from_bits(root_bits: u32, inner_bits: u32, leaf_capacity: usize) -> Self {
        Config {
            root_bits,
            inner_bits,
            leaf_capacity,
            inner_mask: (1 << inner_bits) - 1,
        }
    }

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
        Config::from_bits(
            root_slots.trailing_zeros(),
            inner_slots.trailing_zeros(),
            leaf_capacity,
        )
    }

    /// The default shape with a root of about one slot per two of `capacity` keys: a presized
    /// map walks straight from a root slot to a small leaf. (One slot per eight keys, a full
    /// leaf, measured about 20% slower on the runner's `map-uniform` at 2 threads.) The root
    /// never shrinks or grows; it has at most `2^MAX_ROOT_BITS` slots. (A bound of 65,536
    /// slots made a map presized for more than 131,072 keys split most root leaves into inner
    /// nodes at once: at 1,000,000 keys, 63.7 bytes per entry against 44.4 with the root it
    /// asked for, and lookups about a fifth slower.)
    pub(crate) fn for_capacity(capacity: usize) -> Self {
        let mut config = Self::DEFAULT;
        let wanted = (capacity / 2).next_power_of_two();
        let root_bits = wanted
            .trailing_zeros()
            .clamp(config.root_bits, MAX_ROOT_BITS);
        config.root_bits = root_bits;
        config
    }

    /// The child index at the level whose bits start at `shift` (`shift < 64`).
    #[inline]
    fn child_index(&self, hash: u64, shift: u32) -> usize {
        ((hash >> shift) & self.inner_mask) as usize
    }

    /// Whether a leaf at `shift` can still split: enough hash bits remain for one more level.
    #[inline]
    fn can_split(&self, shift: u32) -> bool {
        shift + self.inner_bits <= u64::BITS
    }
}

/// One key-value pair. Its hash is not kept (8 bytes of every entry, a third of a `u64` map's):
/// a lookup finds its candidates by the leaf's tags and compares keys; the few builds that need
/// a hash the tags do not give (a split, and a removal or `retain` that moves an entry into a
/// tagged place) hash the key again with the map's hasher.
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
}

impl<K: Clone, V: Stored> Entry<K, V> {
    /// The copy of the entry a new bucket version holds (a clone of the key; the value's
    /// [`share`](Stored::share)).
    #[inline]
    fn share(&self) -> Self {
        Entry {
            key: self.key.clone(),
            value: self.value.share(TOKEN),
        }
    }
}

/// The largest root [`Config::for_capacity`] makes: `2^24` slots (512 MiB), reached by
/// capacities past 16,777,216 keys.
const MAX_ROOT_BITS: u32 = 24;

/// The low bit of a slot word that marks an inner node.
const INNER_TAG: usize = 1;
/// Inner nodes are aligned to this (a cache line), which frees the word's low 6 bits for tags.
const INNER_ALIGN: usize = 64;
/// Where an inner node's `log2` width sits in its word (5 bits: widths up to 2^31).
const WIDTH_SHIFT: u32 = 1;
const WIDTH_MASK: usize = 0x1f;

/// The header of a leaf allocation; its entries follow it.
struct LeafHeader {
    /// The number of entries (at most `u32::MAX`: [`leaf_layout`]).
    len: u32,
    /// The tag ([`tag_of`]) of the hash of each of the first [`TAGGED`] entries, one byte
    /// each (entry `i` in byte `i`, from the low end), 0 in the bytes past the last entry: a
    /// lookup finds its candidates among them without a branch per entry ([`position`]).
    tags: u32,
}

/// How many of a leaf's entries have a tag in its header (the bytes of a `u32`). A presized
/// map's leaves hold about two entries, a grown map's at most eight by default; entries past
/// the fourth are compared one by one.
const TAGGED: usize = 4;

/// The one-byte tag of `hash` kept in a leaf's header: its top 7 bits (the trie indexes by the
/// low bits, which a leaf's entries share), with the high bit set so that no tag is 0, the
/// byte of no entry.
#[inline(always)]
fn tag_of(hash: u64) -> u32 {
    (hash >> 57) as u32 | 0x80
}

/// The header's byte for an entry of `hash` at place `i` of its leaf: its tag, shifted to
/// byte `i`, or 0 past the tagged places.
#[inline(always)]
fn tag_at(hash: u64, i: usize) -> u32 {
    if i < TAGGED {
        tag_of(hash) << (8 * i)
    } else {
        0
    }
}

/// `tags` without the byte of entry `i`: the bytes of the entries after it move down one
/// place, and the top byte is 0 (an entry that moves into the last tagged place needs its tag
/// added).
#[inline]
fn tags_without(tags: u32, i: usize) -> u32 {
    if i >= TAGGED {
        return tags;
    }
    let tags = u64::from(tags);
    let below = tags & ((1 << (8 * i)) - 1);
    let above = (tags >> (8 * (i + 1))) << (8 * i);
    (below | above) as u32
}

/// The bytes of a header's tags that a leaf of `len` entries may use: those of its tagged
/// entries (the others are 0).
#[inline]
fn tagged_bytes(len: usize) -> u32 {
    if len >= TAGGED {
        u32::MAX
    } else {
        (1 << (8 * len)) - 1
    }
}

/// The tag byte of entry `i` in `tags` (`i` below [`TAGGED`]).
#[inline]
fn tag_byte(tags: u32, i: usize) -> u32 {
    debug_assert!(i < TAGGED);
    (tags >> (8 * i)) & 0xff
}

/// What a slot holds, as one word: empty (0), a leaf, or a tagged inner node.
pub(crate) struct NodeRef<K, V> {
    bits: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for NodeRef<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for NodeRef<K, V> {}

// SAFETY: a pointer-sized word round-trips through `u64`; dereferencing it is this module's
// unsafe business, done only under the rules of `NodeRef::node`.
unsafe impl<K: 'static, V: 'static> Word for NodeRef<K, V> {
    #[inline]
    fn into_bits(self) -> u64 {
        self.bits as u64
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        NodeRef {
            bits: bits as usize,
            _types: PhantomData,
        }
    }
}

// SAFETY: `free` releases exactly the node (and, for an inner node, its whole subtree), and does
// nothing for the empty word.
unsafe impl<K: 'static, V: 'static> OwnedWord for NodeRef<K, V> {
    unsafe fn free(self) {
        // SAFETY: the caller frees each value once, when nothing can reach it: the node and,
        // through it, its subtree are ours alone.
        unsafe { self.free_subtree() }
    }
}

/// A node, borrowed.
enum Node<'a, K: 'static, V: 'static> {
    Empty,
    /// A leaf's entries and the tags of its header.
    Leaf(&'a [Entry<K, V>], u32),
    Inner(&'a [Slot<K, V>]),
}

/// A trie slot: its own transactional variable, 32 bytes (a `TVar` is four words), aligned so
/// that its lock word and value never straddle two cache lines: two slots share a line. Each
/// slot alone on a line (64 bytes) measured no faster on disjoint updates from two threads
/// (`conflicts`, map-disjoint: 15.7-16.4M against 15.4-16.1M updates/s) and a quarter slower on
/// `map-uniform`'s lookups, whose misses in a root twice as large dominate them.
#[repr(align(32))]
pub(crate) struct Slot<K: 'static, V: 'static>(TVar<NodeRef<K, V>, Inline>);

impl<K: 'static, V: 'static> core::ops::Deref for Slot<K, V> {
    type Target = TVar<NodeRef<K, V>, Inline>;
    #[inline]
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K: 'static, V: 'static> core::ops::DerefMut for Slot<K, V> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// The layout of a leaf of `len` entries, and the offset of its entries.
///
/// # Panics
///
/// If `len` exceeds `u32::MAX` (a leaf's header counts its entries in a `u32`) or the size
/// overflows.
fn leaf_layout<K, V>(len: usize) -> (Layout, usize) {
    assert!(u32::try_from(len).is_ok(), "commute: TMap leaf too large");
    Layout::new::<LeafHeader>()
        .extend(Layout::array::<Entry<K, V>>(len).expect("commute: TMap leaf too large"))
        .expect("commute: TMap leaf too large")
}

/// [`leaf_layout`] of a leaf that exists: of `len` entries, built by [`LeafBuilder`], whose
/// layout was computed and checked then. The same arithmetic without the checks against
/// overflow (a map update computes it twice: for the copy and for the free of the old leaf).
///
/// # Safety
///
/// A block of `leaf_layout::<K, V>(len)` was allocated (so that layout is valid).
#[inline]
unsafe fn existing_leaf_layout<K, V>(len: usize) -> (Layout, usize) {
    let header = Layout::new::<LeafHeader>();
    let entry = Layout::new::<Entry<K, V>>();
    let offset = header.size().next_multiple_of(entry.align());
    let size = offset + len * entry.size();
    let align = header.align().max(entry.align());
    debug_assert!({
        let (checked, checked_offset) = leaf_layout::<K, V>(len);
        (checked.size(), checked.align(), checked_offset) == (size, align, offset)
    });
    // SAFETY: the size and alignment that `leaf_layout` computed and checked for `len` (it
    // succeeded: the caller's promise): a power-of-two alignment, and a size that, rounded up
    // to it, does not exceed `isize::MAX`.
    (
        unsafe { Layout::from_size_align_unchecked(size, align) },
        offset,
    )
}

/// Reads a slot below the root (a child of an inner node), settled once it holds an inner node
/// (see the module doc).
#[inline(always)]
fn read_below_root<K: 'static, V: 'static>(
    tx: &Transaction,
    slot: &Slot<K, V>,
) -> StmResult<NodeRef<K, V>> {
    // SAFETY: a slot below the root that holds an inner node is never written again: a split
    // writes the slot of a leaf, and `clear`, the one operation that replaces inner nodes,
    // writes root slots only. Slots change only by commits (of transactions, or an update's
    // commit alone of its leaf's slot), or while the trie is owned whole.
    unsafe { slot.read_settled(tx, |word| word.is_inner()) }
}

/// The layout of an inner node of `width` slots.
fn inner_layout<K: 'static, V: 'static>(width: usize) -> Layout {
    Layout::array::<Slot<K, V>>(width)
        .and_then(|l| l.align_to(INNER_ALIGN))
        .expect("commute: TMap inner node too large")
}

impl<K, V> NodeRef<K, V> {
    const EMPTY: Self = NodeRef {
        bits: 0,
        _types: PhantomData,
    };

    /// True for an inner node (a slot below the root holding one never changes again).
    #[inline]
    fn is_inner(&self) -> bool {
        self.bits & INNER_TAG != 0
    }

    /// Child slot `index` of this inner node, found without reading the node's width from its
    /// word and without a bounds check: a walk's step, where decoding the width for
    /// [`node`](Self::node)'s slice and checking the index against it cost 9 of a level's
    /// 40 instructions.
    ///
    /// # Safety
    ///
    /// `self` is an inner node alive for `'a` (as for [`node`](Self::node)), and `index` is
    /// below its width: [`Config::child_index`] of the trie that built it (every inner node of
    /// a trie is `1 << inner_bits` slots wide, [`Shape::build`]).
    #[inline(always)]
    unsafe fn child<'a>(self, index: usize) -> &'a Slot<K, V> {
        debug_assert!(self.is_inner());
        debug_assert!(index < 1usize << ((self.bits >> WIDTH_SHIFT) & WIDTH_MASK));
        let first = (self.bits & !(INNER_ALIGN - 1)) as *const Slot<K, V>;
        // SAFETY: `index` is within the node's initialised slots, alive for `'a` (caller).
        unsafe { &*first.add(index) }
    }

    /// Takes entry `i` out of a leaf, freeing the leaf and its other entries.
    ///
    /// # Safety
    ///
    /// `self` is a leaf with more than `i` entries, owned exclusively (built by this thread and
    /// never published).
    unsafe fn into_entry(self, i: usize) -> Entry<K, V>
    where
        K: 'static,
        V: 'static,
    {
        // SAFETY: owned exclusively (caller).
        let Node::Leaf(entries, _) = (unsafe { self.node() }) else {
            unreachable!("into_entry of a leaf")
        };
        let len = entries.len();
        debug_assert!(i < len);
        let first = entries.as_ptr() as *mut Entry<K, V>;
        let (layout, _) = leaf_layout::<K, V>(len);
        // SAFETY: the entries are initialised and ours: entry `i` is moved out, the others are
        // moved out and dropped, each once (all of them even if one's `Drop` panics: a
        // vector's drop glue goes on); then the block, allocated for this layout by
        // `LeafBuilder::new` (`len` entries), is released, also while such a panic unwinds.
        unsafe {
            let taken = ptr::read(first.add(i));
            let _block = Released(NonNull::new_unchecked(self.bits as *mut u8), layout);
            drop(moved_out(first, (0..len).filter(|&j| j != i)));
            taken
        }
    }

    /// The node this word refers to.
    ///
    /// # Safety
    ///
    /// The node must stay alive for `'a`: read from a slot after `Transaction::pin` (or built by
    /// the running attempt), for the attempt; or owned exclusively.
    #[inline]
    unsafe fn node<'a>(self) -> Node<'a, K, V>
    where
        K: 'static,
        V: 'static,
    {
        if self.bits == 0 {
            Node::Empty
        } else if self.bits & INNER_TAG != 0 {
            let width = 1usize << ((self.bits >> WIDTH_SHIFT) & WIDTH_MASK);
            let first = (self.bits & !(INNER_ALIGN - 1)) as *const Slot<K, V>;
            // SAFETY: an inner word points at `width` initialised slots (`alloc_inner`), alive
            // per the caller.
            Node::Inner(unsafe { core::slice::from_raw_parts(first, width) })
        } else {
            let header = self.bits as *const LeafHeader;
            let (_, offset) = leaf_layout::<K, V>(0);
            // SAFETY: a leaf word points at a header followed by `len` initialised entries
            // (`LeafBuilder::finish`), alive per the caller.
            unsafe {
                let LeafHeader { len, tags } = header.read();
                let first = (self.bits as *const u8).add(offset) as *const Entry<K, V>;
                Node::Leaf(core::slice::from_raw_parts(first, len as usize), tags)
            }
        }
    }

    /// Drops the node and everything below it.
    ///
    /// # Safety
    ///
    /// The node is owned exclusively and freed once.
    // Inlined (a leaf, what reclamation frees after each update, in the caller's body); an
    // inner node's subtree goes through `free_children`.
    #[inline]
    unsafe fn free_subtree(self)
    where
        K: 'static,
        V: 'static,
    {
        // SAFETY: owned exclusively (caller).
        match unsafe { self.node() } {
            Node::Empty => {}
            Node::Leaf(entries, _) => {
                // SAFETY: the entries are initialised and ours; the block was allocated for this
                // layout (`LeafBuilder::new` for `len` entries), and is released once, after
                // them, even if an entry's `Drop` panics (the slice's drop glue still drops the
                // others).
                unsafe {
                    let (layout, _) = existing_leaf_layout::<K, V>(entries.len());
                    let _block = Released(NonNull::new_unchecked(self.bits as *mut u8), layout);
                    ptr::drop_in_place(entries as *const [Entry<K, V>] as *mut [Entry<K, V>]);
                }
            }
            Node::Inner(children) => {
                let first = children.as_ptr() as *mut Slot<K, V>;
                // SAFETY: owned exclusively, with its children (caller).
                unsafe { Self::free_children(first, children.len()) }
            }
        }
    }

    /// Drops the `width` child slots of the inner node at `first` and their subtrees, then
    /// frees the node.
    ///
    /// # Safety
    ///
    /// `first` is an inner node of `width` slots, owned exclusively, and freed once.
    #[inline(never)]
    unsafe fn free_children(first: *mut Slot<K, V>, width: usize)
    where
        K: 'static,
        V: 'static,
    {
        // SAFETY: each slot is initialised and ours; it is read, then dropped, once, and its
        // child's subtree is ours (caller) and freed once.
        let first_panic = unsafe {
            free_subtrees((0..width).map(|i| {
                let child = (*first.add(i)).load_mut();
                ptr::drop_in_place(first.add(i));
                child
            }))
        };
        // SAFETY: allocated by `alloc_inner` with this layout.
        unsafe { dealloc(first as *mut u8, inner_layout::<K, V>(width)) };
        if let Some(payload) = first_panic {
            resume_unwind(payload);
        }
    }

    /// A new inner node holding `children` (a power-of-two count, at least 2).
    fn alloc_inner(mut children: Vec<Slot<K, V>>) -> Self
    where
        K: 'static,
        V: 'static,
    {
        let width = children.len();
        debug_assert!(width.is_power_of_two() && width >= 2);
        let layout = inner_layout::<K, V>(width);
        // SAFETY: the layout has a non-zero size (at least two slots).
        let first = unsafe { alloc(layout) } as *mut Slot<K, V>;
        if first.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: `first` has room for `width` slots; the vector's slots are moved (bitwise)
        // and the vector forgets them.
        unsafe {
            ptr::copy_nonoverlapping(children.as_ptr(), first, width);
            children.set_len(0);
        }
        NodeRef {
            bits: first as usize | INNER_TAG | (width.trailing_zeros() as usize) << WIDTH_SHIFT,
            _types: PhantomData,
        }
    }

    /// A leaf holding `entries`, each given with its hash (empty if there are none).
    fn leaf_from_vec(entries: Vec<(u64, Entry<K, V>)>) -> Self
    where
        K: 'static,
        V: 'static,
    {
        if entries.is_empty() {
            return Self::EMPTY;
        }
        let mut leaf = LeafBuilder::new(entries.len());
        let mut tags = 0;
        for (i, (hash, e)) in entries.into_iter().enumerate() {
            tags |= tag_at(hash, i);
            leaf.push(e);
        }
        leaf.finish(tags)
    }
}

/// Frees the subtree of each of `nodes`, every one even if a `Drop` in an earlier one panics;
/// returns the first panic, for the caller to pass on once it has freed what held them.
///
/// # Safety
///
/// Each node's subtree is owned exclusively, and freed here once; so is whatever the iterator
/// reads them from.
unsafe fn free_subtrees<K: 'static, V: 'static>(
    nodes: impl Iterator<Item = NodeRef<K, V>>,
) -> Option<crate::Payload> {
    let mut first_panic = None;
    for node in nodes {
        // SAFETY: the caller's.
        let freed = catch_unwind(AssertUnwindSafe(|| unsafe { node.free_subtree() }));
        if let Err(payload) = freed {
            crate::keep_first_panic(&mut first_panic, payload);
        }
    }
    first_panic
}

/// A freed leaf's block: released to [`blocks`] when dropped, after the leaf's entries, also
/// while a panic of one's `Drop` unwinds.
struct Released(NonNull<u8>, Layout);

impl Drop for Released {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the block of a leaf being freed, allocated with this layout; its entries are
        // dropped (or their drop glue is unwinding, done with the block by the time this
        // guard, declared before it, is dropped); released once.
        unsafe { blocks::release(self.0, self.1) }
    }
}

/// A leaf being filled: frees what it holds if dropped before `finish` (a `Clone` panicked),
/// its entries through [`commute_stm::drop_outside`] (a panic inside a transaction or a pin).
struct LeafBuilder<K: 'static, V: 'static> {
    base: NonNull<u8>,
    first: *mut Entry<K, V>,
    len: usize,
    capacity: usize,
}

impl<K: 'static, V: 'static> LeafBuilder<K, V> {
    /// Room for exactly `capacity` (at least 1) entries.
    #[inline]
    fn new(capacity: usize) -> Self {
        debug_assert!(capacity > 0);
        let (layout, offset) = leaf_layout::<K, V>(capacity);
        Self::with_layout(capacity, layout, offset)
    }

    /// Room for exactly as many entries as `leaf` has (for its copy with one entry changed),
    /// with the layout computed without checks.
    ///
    /// # Safety
    ///
    /// `leaf` is the entries of a leaf node ([`Node::Leaf`]).
    #[inline]
    unsafe fn like(leaf: &[Entry<K, V>]) -> Self {
        // SAFETY: a leaf's entries live in a block of this layout (`LeafBuilder::finish`; the
        // caller's promise).
        let (layout, offset) = unsafe { existing_leaf_layout::<K, V>(leaf.len()) };
        Self::with_layout(leaf.len(), layout, offset)
    }

    #[inline(always)]
    fn with_layout(capacity: usize, layout: Layout, offset: usize) -> Self {
        // The layout has a non-zero size (the header).
        let base = blocks::allocate(layout);
        LeafBuilder {
            base,
            // SAFETY: the entries start `offset` bytes in, inside the allocation.
            first: unsafe { base.as_ptr().add(offset) } as *mut Entry<K, V>,
            len: 0,
            capacity,
        }
    }

    #[inline]
    fn push(&mut self, entry: Entry<K, V>) {
        assert!(self.len < self.capacity, "leaf builder overfilled");
        // SAFETY: in bounds (checked), and not yet initialised.
        unsafe { self.first.add(self.len).write(entry) };
        self.len += 1;
    }

    /// The finished leaf, with the tags of its entries given (the caller's: hashes are not
    /// kept).
    fn finish(self, tags: u32) -> NodeRef<K, V> {
        assert_eq!(self.len, self.capacity, "leaf builder underfilled");
        // A lookup takes a marked byte for an entry without a bounds check (`position`).
        assert!(
            tags & !tagged_bytes(self.len) == 0,
            "commute: TMap leaf tags past its entries"
        );
        // SAFETY: full, and no tag past the entries (both checked above).
        unsafe { self.finish_tagged(tags) }
    }

    /// The finished leaf, with the tags of its entries given (those of the leaf it copies).
    ///
    /// # Safety
    ///
    /// `capacity` entries were pushed: the header's length is the one the block was allocated
    /// for, which frees it ([`NodeRef::free_subtree`]); and the bytes of `tags` past the last
    /// entry are 0 ([`position`] relies on it).
    #[inline]
    unsafe fn finish_tagged(self, tags: u32) -> NodeRef<K, V> {
        debug_assert_eq!(self.len, self.capacity, "leaf builder underfilled");
        debug_assert!(
            (0..self.len.min(TAGGED)).all(|i| tag_byte(tags, i) & 0x80 != 0)
                && tags & !tagged_bytes(self.len) == 0,
            "a tag for each entry, and none past them"
        );
        let (base, len) = (self.base, self.len);
        core::mem::forget(self);
        // `len` fits: the builder's layout was computed for it (`leaf_layout`).
        let header = LeafHeader {
            len: len as u32,
            tags,
        };
        // SAFETY: the header sits at the start of the allocation.
        unsafe { (base.as_ptr() as *mut LeafHeader).write(header) };
        NodeRef {
            bits: base.as_ptr() as usize,
            _types: PhantomData,
        }
    }
}

impl<K: 'static, V: 'static> Drop for LeafBuilder<K, V> {
    fn drop(&mut self) {
        let (layout, _) = leaf_layout::<K, V>(self.capacity);
        // SAFETY: the first `len` entries are initialised and ours, each moved out once; the
        // block was allocated for this layout in `new`.
        let entries = unsafe { moved_out(self.first, 0..self.len) };
        // SAFETY: as above; nothing uses the block after.
        unsafe { blocks::release(self.base, layout) };
        commute_stm::drop_outside(entries);
    }
}

/// The entries at `first` plus each of `places`, moved into a vector (to drop them with
/// [`commute_stm::drop_outside`]: their `Drop` is the user's; or, as a vector's drop glue goes
/// on past a panicking `Drop`, to drop them all). For the guards that a panic of user code
/// drops, and a refused update alone's leaf ([`NodeRef::into_entry`]).
///
/// # Safety
///
/// Each place is initialised, given once, and not used after.
#[cold]
unsafe fn moved_out<K, V>(
    first: *mut Entry<K, V>,
    places: impl Iterator<Item = usize>,
) -> Vec<Entry<K, V>> {
    // SAFETY: the caller's promise.
    places
        .map(|at| unsafe { ptr::read(first.add(at)) })
        .collect()
}

/// Why an update alone ([`RawTrie::update_alone`]) gave its entry back.
enum Refused<K, V> {
    /// Before building a leaf: the key is absent.
    Before(Entry<K, V>),
    /// After: the commit found the slot changed; the leaf built, never published, holds the
    /// entry at the index.
    Built(NodeRef<K, V>, usize),
}

/// A leaf found by a walk: its slot, its entries (none for an empty slot) and the shift of its
/// level.
struct LeafRef<'a, K: 'static, V: 'static> {
    slot: &'a Slot<K, V>,
    entries: &'a [Entry<K, V>],
    /// The leaf's tags (0 for an empty slot).
    tags: u32,
    shift: u32,
}

/// What [`RawTrie::walk_alone_through`] found: the leaf's slot, its node, what `load_seen`
/// returned for it, and the root slot it passed with what `load_seen` returned for that, if the
/// root slot held an inner node.
type WalkedThrough<'t, K, V> = (
    &'t Slot<K, V>,
    NodeRef<K, V>,
    Seen,
    Option<(&'t Slot<K, V>, Seen)>,
);

/// How many counts of trie writes a thread keeps ([`RawTrie::writes_made`]).
const WRITE_COUNTS: usize = 64;

#[cfg(not(loom))]
std::thread_local! {
    static WRITES_MADE: [core::cell::Cell<u64>; WRITE_COUNTS] =
        const { [const { core::cell::Cell::new(0) }; WRITE_COUNTS] };
}
#[cfg(loom)]
loom::thread_local! {
    static WRITES_MADE: [core::cell::Cell<u64>; WRITE_COUNTS] =
        core::array::from_fn(|_| core::cell::Cell::new(0));
}

/// This thread's count of trie writes number `count` (see `RawTrie::writes_made`).
#[inline(always)]
fn writes_made_at(count: usize) -> u64 {
    WRITES_MADE.with(|counts| counts[count].get())
}

/// Counts a trie write in this thread's count number `count`.
#[inline(always)]
fn count_write(count: usize) {
    WRITES_MADE.with(|counts| counts[count].set(counts[count].get().wrapping_add(1)));
}

/// How the trie makes new nodes: its configuration, and the label and creation site of every
/// slot it creates.
#[derive(Clone, Copy, Debug)]
struct Shape {
    config: Config,
    label: Option<&'static str>,
    /// The user's call that made the trie: every slot's creation site, the root's and those
    /// that splits make later.
    site: &'static Location<'static>,
}

/// The trie: a fixed root array of slots, and its shape. It owns every node below the root.
pub(crate) struct RawTrie<K: 'static, V: 'static> {
    root: Box<[Slot<K, V>]>,
    /// Which of this thread's counts of trie writes this trie's writes go to
    /// ([`writes_made`](Self::writes_made)).
    write_count: u8,
    shape: Shape,
    _owns: PhantomData<Entry<K, V>>,
}

/// The index of the entry for `key` in a leaf: `entries`, with its header's `tags` (or no
/// entries and tags 0).
///
/// The tagged entries are found without a branch per entry: a byte of `x` below is 0 where an
/// entry's tag is the hash's, and the usual test for a zero byte marks it (and, after a borrow
/// out of a zero byte, at most a byte above it: a false candidate, rejected by the comparison).
/// Past the last entry a byte of `tags` is 0, so `x` there is the hash's tag, whose high bit
/// clears the mark: every candidate is an entry. Where a loop over the entries mispredicts the
/// one it stops at, about one branch per lookup (a key's place in its leaf is random), the
/// test's one loop turn is predictable.
#[inline(always)]
fn position<K, V, Q>(entries: &[Entry<K, V>], tags: u32, hash: u64, key: &Q) -> Option<usize>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    const ONES: u32 = 0x0101_0101;
    const HIGHS: u32 = 0x8080_8080;
    let x = tags ^ tag_of(hash).wrapping_mul(ONES);
    let mut candidates = x.wrapping_sub(ONES) & !x & HIGHS;
    while candidates != 0 {
        let i = (candidates.trailing_zeros() / 8) as usize;
        debug_assert!(i < entries.len());
        // SAFETY: every candidate is an entry (above: a byte past the last entry is never
        // marked).
        let e = unsafe { entries.get_unchecked(i) };
        if e.key.borrow() == key {
            return Some(i);
        }
        candidates &= candidates - 1;
    }
    let rest = entries.get(TAGGED..)?;
    rest.iter()
        .position(|e| e.key.borrow() == key)
        .map(|i| i + TAGGED)
}

/// A copy of `entries` (whose header's tags are `tags`) with entry `i` replaced by `with`, an
/// entry of the same key (so of the same hash, and tag).
///
/// One loop copies every other entry to its own place (the index skips `i` by arithmetic,
/// not by a branch), then `with` fills the gap: a loop of a random length ends with a
/// mispredicted branch, and two loops (the entries before `i`, then those after) took two.
///
/// # Safety
///
/// `entries` is the entries of a leaf node ([`Node::Leaf`]; found by a walk, with entry `i`
/// among them).
#[inline(always)]
unsafe fn replaced<K: Clone + 'static, V: Stored + 'static>(
    entries: &[Entry<K, V>],
    tags: u32,
    i: usize,
    with: Entry<K, V>,
) -> NodeRef<K, V> {
    // Kept only once every copy is made: a `clone` that panics lets it go.
    let with = Unkept::new(with);
    // Before anything is copied: the loop below and the gap rest on it.
    assert!(
        i < entries.len(),
        "commute: TMap entry index out of its leaf"
    );
    // SAFETY: the caller's promise.
    let mut leaf = unsafe { LeafBuilder::like(entries) };
    // Declared after the builder, so dropped before it: a panic in a `clone` drops the copies
    // made so far, then the builder (still empty) releases the block.
    let mut copied = Copied {
        first: leaf.first,
        gap: i,
        count: 0,
    };
    for j in 0..entries.len() - 1 {
        let at = j + usize::from(j >= i);
        // SAFETY: `at` < `entries.len()`: `j` < `len - 1`. The builder has room for
        // `entries.len()` entries, and place `at` is not yet written (each `j` gives another).
        unsafe {
            let e = entries.get_unchecked(at).share();
            copied.first.add(at).write(e);
        }
        copied.count += 1;
    }
    core::mem::forget(copied);
    // SAFETY: `i` is in bounds (asserted) and the one place the loop left unwritten; every
    // place of the builder is now initialised.
    unsafe { leaf.first.add(i).write(with.take()) };
    leaf.len = entries.len();
    // SAFETY: all `entries.len()` entries written. The same hashes in the same places: the
    // same tags.
    unsafe { leaf.finish_tagged(tags) }
}

/// The entries that [`replaced`] has copied so far: the first `count` places past `first`
/// other than `gap`. Dropped only if a `clone` panics (they are the new leaf's otherwise).
struct Copied<K: 'static, V: 'static> {
    first: *mut Entry<K, V>,
    gap: usize,
    count: usize,
}

impl<K: 'static, V: 'static> Drop for Copied<K, V> {
    fn drop(&mut self) {
        let gap = self.gap;
        // SAFETY: the places `replaced` wrote, each once, not yet handed to a leaf.
        let entries = unsafe {
            moved_out(
                self.first,
                (0..self.count).map(|j| j + usize::from(j >= gap)),
            )
        };
        commute_stm::drop_outside(entries);
    }
}

/// A copy of `entries` (whose header's tags are `tags`) without entry `i` (empty if it was the
/// only one). The entries after `i` move down one place, with their tags; the first untagged
/// entry, if one moves into the last tagged place, is hashed with `hasher` for its tag.
fn without<K: Clone + Hash + 'static, V: Stored + 'static, S: BuildHasher>(
    entries: &[Entry<K, V>],
    tags: u32,
    i: usize,
    hasher: &S,
) -> NodeRef<K, V> {
    assert!(
        i < entries.len(),
        "commute: TMap entry index out of its leaf"
    );
    if entries.len() == 1 {
        return NodeRef::EMPTY;
    }
    let mut tags = tags_without(tags, i);
    if i < TAGGED && entries.len() > TAGGED {
        tags |= tag_at(hasher.hash_one(&entries[TAGGED].key), TAGGED - 1);
    }
    let mut rest = LeafBuilder::new(entries.len() - 1);
    // One loop, skipping `i` by arithmetic (see `replaced`).
    for j in 0..entries.len() - 1 {
        rest.push(entries[j + usize::from(j >= i)].share());
    }
    rest.finish(tags)
}

impl Shape {
    /// A new slot holding `node`, labelled like the trie.
    fn new_slot<K: 'static, V: 'static>(&self, node: NodeRef<K, V>) -> Slot<K, V> {
        // SAFETY: slots live in the root's boxed slice or in an inner node's allocation, and
        // are moved there before any transaction sees them; they never move after.
        let slot = unsafe { TVar::new_inline(node) }.with_created_at(self.site);
        Slot(match self.label {
            Some(label) => slot.with_label(label),
            None => slot,
        })
    }

    /// The node for `entries` (each with its hash) at the level whose bits start at `shift`: a
    /// leaf if they fit (or no hash bits remain), else an inner node over new leaves, split as
    /// deep as needed.
    fn build<K: 'static, V: 'static>(
        &self,
        entries: Vec<(u64, Entry<K, V>)>,
        shift: u32,
    ) -> NodeRef<K, V> {
        if entries.len() <= self.config.leaf_capacity || !self.config.can_split(shift) {
            return NodeRef::leaf_from_vec(entries);
        }
        let width = 1usize << self.config.inner_bits;
        let mut buckets: Vec<Vec<(u64, Entry<K, V>)>> = (0..width).map(|_| Vec::new()).collect();
        for (hash, e) in entries {
            buckets[self.config.child_index(hash, shift)].push((hash, e));
        }
        let next = shift + self.config.inner_bits;
        let children: Vec<Slot<K, V>> = buckets
            .into_iter()
            .map(|b| self.new_slot(self.build(b, next)))
            .collect();
        NodeRef::alloc_inner(children)
    }

    /// The node for `entries` (whose header's tags are `tags`) plus `entry`, a new key of
    /// hash `hash`, at level `shift`. A split hashes the other entries again with `hasher`.
    fn with_new_entry<K: Clone + Hash + 'static, V: Stored + 'static, S: BuildHasher>(
        &self,
        entries: &[Entry<K, V>],
        tags: u32,
        hash: u64,
        entry: Entry<K, V>,
        shift: u32,
        hasher: &S,
    ) -> NodeRef<K, V> {
        // Kept only once every copy is made: a `clone` or `hash` that panics lets it go.
        let entry = Unkept::new(entry);
        let len = entries.len() + 1;
        if len > self.config.leaf_capacity && self.config.can_split(shift) {
            let mut all = Unkept::new(Vec::with_capacity(len));
            all.extend(entries.iter().map(|e| (hasher.hash_one(&e.key), e.share())));
            all.push((hash, entry.take()));
            return self.build(all.take(), shift);
        }
        let mut leaf = LeafBuilder::new(len);
        for e in entries {
            leaf.push(e.share());
        }
        leaf.push(entry.take());
        // The bytes of `tags` past the last entry are 0: the new entry's tag goes in its own.
        leaf.finish(tags | tag_at(hash, entries.len()))
    }
}

impl<K, V> RawTrie<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An empty trie (one allocation: the root slots, all empty).
    #[track_caller]
    pub(crate) fn new(config: Config) -> Self {
        let slots = 1usize << config.root_bits;
        let mut root = Vec::with_capacity(slots);
        // A loop, not a closure, so that `#[track_caller]` gives the slots the user's site.
        for _ in 0..slots {
            // SAFETY: the slots go into the boxed slice below before any transaction sees them.
            root.push(Slot(unsafe { TVar::new_inline(NodeRef::EMPTY) }));
        }
        // The tries of a program take the counts in turn: the first `WRITE_COUNTS` share none.
        static NEXT_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let count = NEXT_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % WRITE_COUNTS;
        RawTrie {
            root: root.into_boxed_slice(),
            write_count: count as u8,
            shape: Shape {
                config,
                label: None,
                site: Location::caller(),
            },
            _owns: PhantomData,
        }
    }

    /// The trie with every slot, present and future, labelled `label`.
    pub(crate) fn with_label(mut self, label: &'static str) -> Self {
        fn relabel<K: 'static, V: 'static>(slot: &mut Slot<K, V>, label: &'static str) {
            slot.set_label(label);
            // SAFETY: the trie is owned exclusively (`self` by value): nothing else reads or
            // frees its nodes meanwhile.
            if let Node::Inner(children) = unsafe { slot.load_mut().node() } {
                let first = children.as_ptr() as *mut Slot<K, V>;
                for i in 0..children.len() {
                    // SAFETY: as above; each child slot is borrowed mutably once at a time.
                    relabel(unsafe { &mut *first.add(i) }, label);
                }
            }
        }
        for slot in self.root.iter_mut() {
            relabel(slot, label);
        }
        self.shape.label = Some(label);
        self
    }

    /// The root slot index of `hash`: its low bits, masked by the root's length (a power of
    /// two, `1 << root_bits`), which leaves the compiler only a check that the root is not
    /// empty where the index is used.
    #[inline(always)]
    pub(crate) fn root_index(&self, hash: u64) -> usize {
        hash as usize & (self.root.len() - 1)
    }

    /// The root slot of `hash`.
    #[inline(always)]
    fn root_slot(&self, hash: u64) -> &Slot<K, V> {
        &self.root[self.root_index(hash)]
    }

    /// Walks from the root to the leaf that holds (or would hold) `hash`.
    // Always inlined, as `walk_alone`: a call costs about 20 instructions of a lookup's 90.
    #[inline(always)]
    fn find_leaf<'a>(&'a self, tx: &'a Transaction, hash: u64) -> StmResult<LeafRef<'a, K, V>> {
        tx.pin();
        let config = &self.shape.config;
        let mut slot = self.root_slot(hash);
        let mut shift = config.root_bits;
        let mut word = slot.read(tx)?;
        loop {
            // SAFETY: read after `tx.pin()`: a committed node stays alive for the attempt
            // (pinned, or kept in a version for its snapshot), and a node this attempt wrote
            // lives until the attempt ends.
            match unsafe { word.node() } {
                // The slice's width is left undecoded: `child` needs none.
                Node::Inner(_) => {
                    // SAFETY: as above, and the index is this trie's.
                    slot = unsafe { word.child(config.child_index(hash, shift)) };
                    shift += config.inner_bits;
                    word = read_below_root(tx, slot)?;
                }
                Node::Leaf(entries, tags) => {
                    return Ok(LeafRef {
                        slot,
                        entries,
                        tags,
                        shift,
                    });
                }
                Node::Empty => {
                    return Ok(LeafRef {
                        slot,
                        entries: &[],
                        tags: 0,
                        shift,
                    });
                }
            }
        }
    }

    /// How many slots of this trie (or of another whose count it shares: one of
    /// [`WRITE_COUNTS`], taken in turn by the tries of the program) this thread has written. An operation
    /// that runs user code between reading a leaf and writing it (`alter`'s closure, `retain`'s
    /// `keep`) compares it before and after: user code that wrote this trie (it can reach it
    /// through the transaction) changes it, and the operation then walks to its leaf again
    /// instead of writing over a copy of the one it read. (A write of another map sharing the
    /// count costs that walk and nothing else.)
    #[inline]
    fn writes_made(&self) -> u64 {
        writes_made_at(self.write_count())
    }

    /// This trie's count of [`writes_made`](Self::writes_made).
    #[inline(always)]
    fn write_count(&self) -> usize {
        usize::from(self.write_count) % WRITE_COUNTS
    }

    /// Replaces the node in `slot` by `node`, a new one.
    #[inline]
    fn replace(&self, tx: &Transaction, slot: &Slot<K, V>, node: NodeRef<K, V>) {
        // SAFETY: `node` was just built and is owned by nothing else; every value a slot holds
        // is a node of this trie, written with `write_owned` (or empty), which only its slot
        // refers to.
        unsafe { slot.write_owned(tx, node) };
        count_write(self.write_count());
    }

    /// Outside transactions, pinned ([`commute_stm::pinned`]): the slot that holds (or would
    /// hold) `hash`'s leaf and its node. Every slot is read whole (`load_seen` waits out commits
    /// in progress), so the leaf is the key's leaf of one committed state: a walk that went
    /// through a root slot that `clear` replaced meanwhile ends in the state just before that
    /// `clear` (no transaction writes below a replaced root slot any more: every one that would
    /// has read the root slot; an update alone checks the root slot it passed, see
    /// [`walk_alone_through`](Self::walk_alone_through)).
    // Always inlined: a lookup outside transactions walks one or two levels, and a call's
    // prologue and returned triple cost as much as the walk (`instructions`, `map-get/atomic`).
    #[inline(always)]
    fn walk_alone(&self, hash: u64) -> (&Slot<K, V>, NodeRef<K, V>, Seen) {
        self.descend_alone(self.root_slot(hash), hash, self.shape.config.root_bits)
    }

    /// [`walk_alone`](Self::walk_alone) from `slot`, whose children `hash`'s bits from `shift`
    /// up index: each slot read with `load_seen`, down to the first that holds no inner node.
    #[inline(always)]
    fn descend_alone<'t>(
        &'t self,
        mut slot: &'t Slot<K, V>,
        hash: u64,
        mut shift: u32,
    ) -> (&'t Slot<K, V>, NodeRef<K, V>, Seen) {
        let config = &self.shape.config;
        loop {
            let (word, seen) = slot.load_seen();
            if !word.is_inner() {
                return (slot, word, seen);
            }
            // SAFETY: an inner node of this trie, read while pinned: alive until the pin ends.
            slot = unsafe { word.child(config.child_index(hash, shift)) };
            shift += config.inner_bits;
        }
    }

    /// [`walk_alone`](Self::walk_alone) for an update alone: also what
    /// [`TVar::commit_owned_alone_through`] needs to replace the leaf, the root slot passed on
    /// the way if it held an inner node, whose change since the walk must fail the commit: a
    /// transaction that read the leaf, replaced the root slot's subtree (`clear`) and wrote the
    /// entries back elsewhere would otherwise commit between the walk and the commit, which
    /// then wrote where no one looks any more, a lost update. The slots of inner nodes below
    /// the root are not needed: one that holds an inner node holds it for good (see the module
    /// doc), so the walk's way from the root slot to the leaf stays.
    #[inline(always)]
    fn walk_alone_through(&self, hash: u64) -> WalkedThrough<'_, K, V> {
        let config = &self.shape.config;
        let root = self.root_slot(hash);
        let (word, seen) = root.load_seen();
        if !word.is_inner() {
            return (root, word, seen, None);
        }
        // SAFETY: an inner node of this trie, read while pinned: alive until the pin ends.
        let child = unsafe { word.child(config.child_index(hash, config.root_bits)) };
        let (slot, leaf, leaf_seen) =
            self.descend_alone(child, hash, config.root_bits + config.inner_bits);
        (slot, leaf, leaf_seen, Some((root, seen)))
    }

    /// Outside transactions: calls `f` with the entry for `key` (if any) of the latest
    /// committed state, without a transaction.
    pub(crate) fn get_alone<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        f: impl FnOnce(Option<&Entry<K, V>>) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        commute_stm::pinned(|| {
            let (_, word, _) = self.walk_alone(hash);
            // SAFETY: read while pinned: the node stays alive until the pin ends.
            match unsafe { word.node() } {
                Node::Leaf(entries, tags) => {
                    f(position(entries, tags, hash, key).map(|i| &entries[i]))
                }
                _ => f(None),
            }
        })
    }

    /// Outside transactions: replaces the value of `key` if the key is present, as a
    /// transaction of its own that reads and writes the key's leaf slot only (the length does
    /// not change); returns the old value, or gives the key and value back if the key is absent
    /// (a new key changes the length too) or if another commit changed the leaf first: the
    /// caller then runs a transaction.
    ///
    /// One try, no loop: a retry here would be a second copy of the whole update, and a loop's
    /// setup cost every update; the caller's transaction retries as transactions do.
    #[inline]
    pub(crate) fn update_alone(&self, hash: u64, key: K, value: V) -> Result<V::Removed, (K, V)>
    where
        K: Eq + Clone,
        V: MapValue,
    {
        // Let go of outside the pin if user code (the key's `Eq`) panics inside it.
        let entry = Unkept::new(Entry { key, value });
        // What the insert hands back, made inside the pin (before the commit); dropped out of
        // it if the commit is refused or user code panics.
        let mut removing = None;
        let refused = commute_stm::pinned(|| {
            let (slot, word, seen, through) = self.walk_alone_through(hash);
            // SAFETY: read while pinned.
            let Node::Leaf(entries, tags) = (unsafe { word.node() }) else {
                return Err(Refused::Before(entry.take()));
            };
            let Some(i) = position(entries, tags, hash, &entry.key) else {
                return Err(Refused::Before(entry.take()));
            };
            // Made before the commit, as a transaction's insert makes it before its write: a
            // `Clone` that panics leaves the map as it was.
            removing = Some(entries[i].value.removing_alone(TOKEN));
            // SAFETY: the entries of the leaf node matched just above.
            let node = unsafe { replaced(entries, tags, i, entry.take()) };
            let through = through.map(|(root, seen)| (&root.0, seen));
            // SAFETY: `node` is new and ours; every value a slot holds is a node of this trie
            // owned by the slot alone (see `replace`).
            match unsafe { slot.commit_owned_alone_through(seen, node, through) } {
                // The old leaf is retired, and alive while we are pinned.
                Ok(()) => {
                    let removing = removing.take().expect("made before the commit");
                    Ok(V::removed_alone(removing, TOKEN))
                }
                Err(node) => Err(Refused::Built(node, i)),
            }
        });
        match refused {
            Ok(old) => Ok(old),
            Err(Refused::Before(entry)) => Err((entry.key, entry.value)),
            Err(Refused::Built(node, i)) => {
                // Out of the pin: the copies dropped here run their owners' destructors, which
                // may wait for readers (a queue's `Taken::into_inner`), as a pinned thread
                // must not. The leaf is taken apart whatever the copy to hand back does.
                let dropped = catch_unwind(AssertUnwindSafe(move || drop(removing)));
                // SAFETY: our own leaf, never published, with the entry at `i`.
                let entry = unsafe { node.into_entry(i) };
                if let Err(payload) = dropped {
                    resume_unwind(payload);
                }
                Err((entry.key, entry.value))
            }
        }
    }

    /// The entry for `key`, borrowed for the transaction.
    #[inline(always)]
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
        Ok(position(leaf.entries, leaf.tags, hash, key).map(|i| &leaf.entries[i]))
    }

    /// Sets `key` (of hash `hash`: `hasher`'s) to `value`; returns the old value, or `None` if
    /// the key is new.
    pub(crate) fn insert<S: BuildHasher>(
        &self,
        tx: &Transaction,
        hash: u64,
        key: K,
        value: V,
        hasher: &S,
    ) -> StmResult<Option<V::Removed>>
    where
        K: Hash + Eq + Clone,
        V: MapValue,
    {
        // Let go of (outside the transaction) if the walk meets a conflict.
        let entry = Unkept::new(Entry { key, value });
        let leaf = self.find_leaf(tx, hash)?;
        if let Some(i) = position(leaf.entries, leaf.tags, hash, &entry.key) {
            let old = Unkept::new(leaf.entries[i].value.removed(tx, TOKEN));
            // SAFETY: a walk's entries, with entry `i`: a leaf node's.
            let node = unsafe { replaced(leaf.entries, leaf.tags, i, entry.take()) };
            self.replace(tx, leaf.slot, node);
            return Ok(Some(old.take()));
        }
        self.push(tx, &leaf, hash, entry.take(), hasher);
        Ok(None)
    }

    /// Adds `key` with `value` unless the key is present (then writes nothing and gives them
    /// back, for the caller to drop where it should).
    pub(crate) fn insert_new<S: BuildHasher>(
        &self,
        tx: &Transaction,
        hash: u64,
        key: K,
        value: V,
        hasher: &S,
    ) -> StmResult<Option<Entry<K, V>>>
    where
        K: Hash + Eq + Clone,
        V: Stored,
    {
        // Let go of (outside the transaction) if the walk meets a conflict.
        let entry = Unkept::new(Entry { key, value });
        let leaf = self.find_leaf(tx, hash)?;
        if position(leaf.entries, leaf.tags, hash, &entry.key).is_some() {
            return Ok(Some(entry.take()));
        }
        self.push(tx, &leaf, hash, entry.take(), hasher);
        Ok(None)
    }

    /// Calls `f` with the value of `key` (if present) and applies the change it returns, in one
    /// walk; returns `f`'s result and the change in the number of entries (-1, 0 or 1), and
    /// hands the key to `unkept` if no entry keeps it (for the caller to drop where it should:
    /// a closure rather than a third returned value, which cost STAMP vacation's actions about
    /// 40 instructions, `scripts/vacation-instructions.sh`). Only
    /// the key's leaf is read, and it is written only if the change is not [`Change::Keep`] (or
    /// a removal of an absent key); if `f` wrote this trie, the leaf is found again first.
    #[inline]
    pub(crate) fn alter<R, S: BuildHasher>(
        &self,
        tx: &Transaction,
        hash: u64,
        key: K,
        hasher: &S,
        f: impl FnOnce(Option<&V>) -> (Change<V>, R),
        unkept: impl FnOnce(K),
    ) -> StmResult<(R, i64)>
    where
        K: Hash + Eq + Clone,
        V: Stored,
    {
        // Let go of (outside the transaction) if a conflict stops the walks.
        let key = Unkept::new(key);
        let read = self.find_leaf(tx, hash)?;
        let i = position(read.entries, read.tags, hash, &*key);
        let writes = self.writes_made();
        let (change, result) = f(i.map(|i| &read.entries[i].value));
        if matches!(change, Change::Keep) {
            unkept(key.take());
            return Ok((result, 0));
        }
        let change = Unkept::new(change);
        // `f` may have written this trie (it can reach it through the transaction): the change
        // applies to the key's leaf as it is now, never to a copy of the one read before.
        let (leaf, i) = if self.writes_made() == writes {
            (read, i)
        } else {
            self.find_again(tx, hash, &key)?
        };
        let delta = match (change.take(), i) {
            (Change::Keep, _) | (Change::Remove, None) => {
                unkept(key.take());
                0
            }
            (Change::Set(value), Some(i)) => {
                let entry = Entry {
                    key: key.take(),
                    value,
                };
                // SAFETY: a walk's entries, with entry `i`: a leaf node's.
                let node = unsafe { replaced(leaf.entries, leaf.tags, i, entry) };
                self.replace(tx, leaf.slot, node);
                0
            }
            (Change::Set(value), None) => {
                let entry = Entry {
                    key: key.take(),
                    value,
                };
                self.push(tx, &leaf, hash, entry, hasher);
                1
            }
            (Change::Remove, Some(i)) => {
                let rest = without(leaf.entries, leaf.tags, i, hasher);
                self.replace(tx, leaf.slot, rest);
                unkept(key.take());
                -1
            }
        };
        Ok((result, delta))
    }

    /// [`alter`](Self::alter)'s walk to `key`'s leaf again, after its closure wrote the trie:
    /// the leaf and the key's place in it. Out of line: rare, and a second walk inlined into
    /// every `alter` costs the callers' code around it.
    #[cold]
    #[inline(never)]
    fn find_again<'a>(
        &'a self,
        tx: &'a Transaction,
        hash: u64,
        key: &K,
    ) -> StmResult<(LeafRef<'a, K, V>, Option<usize>)>
    where
        K: Eq,
    {
        let leaf = self.find_leaf(tx, hash)?;
        let i = position(leaf.entries, leaf.tags, hash, key);
        Ok((leaf, i))
    }

    /// Writes the leaf plus `entry` (a new key of hash `hash`), splitting it if it overflows.
    fn push<S: BuildHasher>(
        &self,
        tx: &Transaction,
        leaf: &LeafRef<'_, K, V>,
        hash: u64,
        entry: Entry<K, V>,
        hasher: &S,
    ) where
        K: Hash + Clone,
        V: Stored,
    {
        let node =
            self.shape
                .with_new_entry(leaf.entries, leaf.tags, hash, entry, leaf.shift, hasher);
        self.replace(tx, leaf.slot, node);
    }

    /// Removes `key`; returns its value if it was present. `counted` runs once the removal is
    /// written, before the value is handed back (through a `Clone` that may panic).
    pub(crate) fn remove<Q, S: BuildHasher>(
        &self,
        tx: &Transaction,
        hash: u64,
        key: &Q,
        hasher: &S,
        counted: impl FnOnce(),
    ) -> StmResult<Option<V::Removed>>
    where
        K: Borrow<Q> + Hash + Clone,
        V: MapValue,
        Q: Eq + ?Sized,
    {
        let leaf = self.find_leaf(tx, hash)?;
        let Some(i) = position(leaf.entries, leaf.tags, hash, key) else {
            return Ok(None);
        };
        let rest = without(leaf.entries, leaf.tags, i, hasher);
        self.replace(tx, leaf.slot, rest);
        counted();
        Ok(Some(leaf.entries[i].value.removed(tx, TOKEN)))
    }

    /// Calls `visit` with every non-empty leaf (its slot, entries and tags), in trie order.
    fn for_each_leaf<'a>(
        &'a self,
        tx: &'a Transaction,
        mut visit: impl FnMut(&'a Slot<K, V>, &'a [Entry<K, V>], u32) -> StmResult<()>,
    ) -> StmResult<()> {
        tx.pin();
        let mut below: Vec<&'a Slot<K, V>> = Vec::new();
        for root_slot in self.root.iter() {
            let mut slot = root_slot;
            let mut word = slot.read(tx)?;
            loop {
                // SAFETY: read after `tx.pin()`, as in `find_leaf`.
                match unsafe { word.node() } {
                    Node::Empty => {}
                    Node::Leaf(entries, tags) => visit(slot, entries, tags)?,
                    Node::Inner(children) => below.extend(children.iter().rev()),
                }
                let Some(next) = below.pop() else { break };
                slot = next;
                word = read_below_root(tx, slot)?;
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
        self.for_each_leaf(tx, |_, entries, _| {
            for e in entries {
                f(&e.key, &e.value);
            }
            Ok(())
        })
    }

    /// Keeps the entries for which `keep` is true; adds how many were removed to `removed` as
    /// it writes each leaf (so that a later `keep` that panics leaves the count of what was
    /// written). Only leaves that lose an entry are written; a survivor that moves into a
    /// tagged place from past them is hashed with `hasher` for its tag.
    pub(crate) fn retain<S: BuildHasher>(
        &self,
        tx: &Transaction,
        hasher: &S,
        mut keep: impl FnMut(&K, &V) -> bool,
        removed: &mut usize,
    ) -> StmResult<()>
    where
        K: Hash + Eq + Clone,
        V: Stored,
    {
        // This trie's count of the thread's writes expected by now: retain's own. More means
        // that `keep` wrote this trie (it can reach it through the transaction): from then on, a
        // leaf read before is written only if it is still where its keys live (a `clear` may
        // have retired the subtree the walk is in).
        let mut expected = self.writes_made();
        let mut foreign = false;
        self.for_each_leaf(tx, |slot, entries, tags| {
            let verdicts: Vec<bool> = entries.iter().map(|e| keep(&e.key, &e.value)).collect();
            foreign |= self.writes_made() != expected;
            let kept = verdicts.iter().filter(|&&k| k).count();
            if kept == entries.len() {
                return Ok(());
            }
            if foreign && !self.still_holds(tx, hasher, slot, entries)? {
                // Remove the rejected keys one by one from the map as it is now.
                for (e, _) in entries.iter().zip(&verdicts).filter(|(_, k)| !**k) {
                    *removed += usize::from(self.remove_entry(tx, hasher, &e.key)?);
                }
            } else if kept == 0 {
                self.replace(tx, slot, NodeRef::EMPTY);
                *removed += entries.len();
            } else {
                let mut leaf = LeafBuilder::new(kept);
                let mut new_tags = 0;
                for (i, e) in entries.iter().enumerate().filter(|&(i, _)| verdicts[i]) {
                    // The survivor's place in the new leaf: the survivors pushed so far.
                    let n = leaf.len;
                    if n < TAGGED {
                        let tag = if i < TAGGED {
                            tag_byte(tags, i)
                        } else {
                            tag_of(hasher.hash_one(&e.key))
                        };
                        new_tags |= tag << (8 * n);
                    }
                    leaf.push(e.share());
                }
                self.replace(tx, slot, leaf.finish(new_tags));
                *removed += entries.len() - kept;
            }
            expected = self.writes_made();
            Ok(())
        })
    }

    /// True if the walk to the first of `entries` (a leaf read from `slot` earlier in this
    /// attempt) still ends at `slot` holding them.
    fn still_holds<S: BuildHasher>(
        &self,
        tx: &Transaction,
        hasher: &S,
        slot: &Slot<K, V>,
        entries: &[Entry<K, V>],
    ) -> StmResult<bool>
    where
        K: Hash,
    {
        let Some(first) = entries.first() else {
            return Ok(true);
        };
        let now = self.find_leaf(tx, hasher.hash_one(&first.key))?;
        Ok(core::ptr::eq(now.slot, slot) && core::ptr::eq(now.entries, entries))
    }

    /// Removes `key`'s entry, if present (its value goes with the leaf it was in); returns
    /// whether it was.
    fn remove_entry<S: BuildHasher>(&self, tx: &Transaction, hasher: &S, key: &K) -> StmResult<bool>
    where
        K: Hash + Eq + Clone,
        V: Stored,
    {
        let hash = hasher.hash_one(key);
        let leaf = self.find_leaf(tx, hash)?;
        let Some(i) = position(leaf.entries, leaf.tags, hash, key) else {
            return Ok(false);
        };
        let rest = without(leaf.entries, leaf.tags, i, hasher);
        self.replace(tx, leaf.slot, rest);
        Ok(true)
    }

    /// Empties the trie: every root slot that is not empty becomes empty (the subtrees are
    /// retired whole).
    pub(crate) fn clear(&self, tx: &Transaction) -> StmResult<()> {
        for slot in self.root.iter() {
            if !matches!(slot.read(tx)?.into_bits(), 0) {
                self.replace(tx, slot, NodeRef::EMPTY);
            }
        }
        Ok(())
    }

    /// Sets `key` to `value` without a transaction (the caller owns the trie exclusively);
    /// returns whether the key is new. A present key's entry is replaced, key and value, or,
    /// with `keep_present`, left as it is (and `key` and `value` dropped).
    pub(crate) fn insert_owned<S: BuildHasher>(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        hasher: &S,
        keep_present: bool,
    ) -> bool
    where
        K: Hash + Eq + Clone,
        V: Stored,
    {
        let shape = self.shape;
        let config = shape.config;
        let root = self.root_index(hash);
        let mut slot: *mut Slot<K, V> = &mut self.root[root];
        let mut shift = config.root_bits;
        loop {
            // SAFETY: the trie is owned exclusively (`&mut self`): no transaction reads it, and
            // the nodes reached are alive until this function replaces them.
            let current = unsafe { (*slot).load_mut() };
            // SAFETY: as above.
            let node = unsafe { current.node() };
            let was_empty = matches!(node, Node::Empty);
            let (entries, tags) = match node {
                Node::Inner(children) => {
                    let first = children.as_ptr() as *mut Slot<K, V>;
                    // SAFETY: the index is below the node's width.
                    slot = unsafe { first.add(config.child_index(hash, shift)) };
                    shift += config.inner_bits;
                    continue;
                }
                Node::Leaf(entries, tags) => (entries, tags),
                Node::Empty => (&[][..], 0),
            };
            let entry = Entry { key, value };
            let (node, new) = match position(entries, tags, hash, &entry.key) {
                Some(_) if keep_present => {
                    // The user's key and value: dropped where the library drops them.
                    commute_stm::drop_outside(entry);
                    return false;
                }
                // SAFETY: entry `i` is among them: the entries of the leaf node matched above.
                Some(i) => (unsafe { replaced(entries, tags, i, entry) }, false),
                None => (
                    shape.with_new_entry(entries, tags, hash, entry, shift, hasher),
                    true,
                ),
            };
            // SAFETY: exclusive, as above: the old node is unreachable once its slot is
            // replaced, and nothing else frees it (but the `Unlinked` below).
            unsafe { *slot = shape.new_slot(node) };
            // The old node's keys and values are the user's: dropped at once outside
            // transactions and pins, after them inside one (`FromIterator` builds a map inside
            // a transaction too).
            // (An empty slot's node owns nothing: no deferred drop for it.)
            if !was_empty {
                commute_stm::drop_outside(Unlinked(current));
            }
            return new;
        }
    }
}

impl<K: 'static, V: 'static> Drop for RawTrie<K, V> {
    fn drop(&mut self) {
        let root = core::mem::take(&mut self.root);
        // An attempt (of any thread) may still hold the addresses of the trie's slots: its
        // nodes are freed once no `atomically` call running now remains, with whatever a late
        // commit left in them.
        // SAFETY: a trie exists only with `K, V: Send + Sync` (the bounds of the map's
        // constructors), so its nodes, keys and values may be freed on any thread.
        unsafe { commute_stm::drop_after_running_transactions(Box::new(DeadTrie { root })) };
    }
}

/// A node unlinked from a trie owned exclusively ([`RawTrie::insert_owned`]): freed, with its
/// subtree, when dropped.
struct Unlinked<K: 'static, V: 'static>(NodeRef<K, V>);

impl<K: 'static, V: 'static> Drop for Unlinked<K, V> {
    fn drop(&mut self) {
        // SAFETY: unlinked from a trie owned exclusively: nothing else reaches or frees it, and
        // the wrapper is dropped once.
        unsafe { self.0.free_subtree() }
    }
}

/// A dropped trie's root, which owns its nodes: dropped once no attempt can use them.
struct DeadTrie<K: 'static, V: 'static> {
    root: Box<[Slot<K, V>]>,
}

impl<K: 'static, V: 'static> Drop for DeadTrie<K, V> {
    fn drop(&mut self) {
        // SAFETY: no attempt can reach the trie any more: its nodes are unreachable, and each
        // root slot's subtree is freed once. (Nodes retired by commits are the core's to free.)
        let first_panic =
            unsafe { free_subtrees(self.root.iter_mut().map(|slot| slot.load_mut())) };
        if let Some(payload) = first_panic {
            resume_unwind(payload);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// splitmix64 of a `u64` key: well-spread hashes, the same in every run.
    struct SplitMix;

    struct SplitMixHasher(u64);

    impl core::hash::Hasher for SplitMixHasher {
        fn finish(&self) -> u64 {
            let mut h = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            h ^ (h >> 31)
        }

        fn write(&mut self, _: &[u8]) {
            unreachable!("SplitMix hashes u64 keys only")
        }

        fn write_u64(&mut self, key: u64) {
            self.0 = key;
        }
    }

    impl BuildHasher for SplitMix {
        type Hasher = SplitMixHasher;

        fn build_hasher(&self) -> SplitMixHasher {
            SplitMixHasher(0)
        }
    }

    /// The unchecked layout of an existing leaf is the checked one, for entries of several
    /// sizes and alignments.
    fn same_layouts<K, V>() {
        for len in 0..100 {
            let checked = leaf_layout::<K, V>(len);
            // SAFETY: `leaf_layout` succeeded for `len` just above.
            let unchecked = unsafe { existing_leaf_layout::<K, V>(len) };
            assert_eq!(checked, unchecked, "{len} entries");
        }
    }

    /// A map presized for more keys than 65,536 root slots hold as small leaves still gets a
    /// root of about one slot per two keys, so that its keys sit in root leaves: a root capped
    /// at 65,536 slots made most slots' leaves overflow into inner nodes of 16 slots, nearly one
    /// slot per key (1,000,000 keys: 63.7 bytes per entry against 37.4 for a map grown without
    /// presizing, and a walk of two levels).
    #[test]
    fn a_presized_map_past_65536_root_slots_holds_its_keys_in_root_leaves() {
        let keys = 300_000u64;
        let config = Config::for_capacity(keys as usize);
        assert_eq!(1u64 << config.root_bits, (keys / 2).next_power_of_two());
        let mut trie: RawTrie<u64, u64> = RawTrie::new(config);
        for key in 0..keys {
            assert!(trie.insert_owned(SplitMix.hash_one(key), key, key, &SplitMix, false));
        }
        let mut inner = 0;
        for slot in trie.root.iter_mut() {
            inner += usize::from(slot.load_mut().is_inner());
        }
        // About 1.1 keys per slot: a leaf past 8 entries is a rare tail (2 of 262,144 slots
        // with these hashes); under the old bound, 2,834 of 65,536.
        let slots = trie.root.len();
        assert!(
            inner * 10_000 < slots,
            "{inner} of {slots} root slots split into inner nodes"
        );
    }

    /// However large the capacity asked for, the root stops at `MAX_ROOT_BITS` (and the
    /// computation does not overflow).
    #[test]
    fn the_root_of_a_huge_capacity_stops_at_its_bound() {
        assert_eq!(Config::for_capacity(usize::MAX).root_bits, MAX_ROOT_BITS);
        assert_eq!(Config::for_capacity(1 << 40).root_bits, MAX_ROOT_BITS);
        assert_eq!(Config::for_capacity(0).root_bits, Config::DEFAULT.root_bits);
    }

    #[test]
    fn an_existing_leaf_has_the_layout_it_was_built_with() {
        same_layouts::<u64, u64>();
        same_layouts::<u8, ()>();
        same_layouts::<u32, u16>();
        same_layouts::<String, [u8; 3]>();
        same_layouts::<u128, u8>();
    }
}
