//! A per-thread cache of freed blocks, by size: trie leaves of `TMap`s and nodes of `TQueue`s.
//!
//! Every update of a `TMap` allocates a leaf and retires the one it replaces, every push of a
//! `TQueue` allocates a node that a later pop retires, and the core frees retired values in
//! batches on whichever thread retired them: often not the thread that allocated them. With
//! glibc's allocator each such free goes to the allocating thread's arena, under its lock, while
//! that thread allocates from the same arena: on two busy threads the arena locks were contended
//! on most updates, and a third of the time went to sleeping on them (`perf`:
//! `__lll_lock_wait_private`). Here freed blocks go to a small cache of the freeing thread
//! instead, and that thread's next blocks of the same size come from it: no lock, no trip
//! through the allocator (a `malloc` and a `free` cost about 170 instructions; the cache's
//! round trip well under half of that).
//!
//! The cache holds, of each of [`CLASSES`] sizes (multiples of [`GRANULE`] bytes up to
//! [`MAX_SIZE`], 8-byte aligned), at most [`DEPTH`] blocks or [`BIN_BYTES`] bytes, whichever is
//! more: at most 275 KiB per thread, freed when the thread exits. Other layouts go straight to
//! the global allocator. Under loom the cache is off.
//!
//! A layout of 8-byte alignment whose size is a multiple of [`GRANULE`] is its class's layout
//! itself, so its blocks are exactly what `Box` allocates and frees for a type of that layout:
//! [`allocate_for`] and [`release_for`] mix freely with `Box::new` and `Box::from_raw` (the
//! core frees the nodes of rolled-back pushes as boxes).

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};
use std::alloc::{alloc, dealloc, handle_alloc_error};

/// Size classes are multiples of this many bytes.
const GRANULE: usize = 8;
/// The largest cached block, in bytes.
const MAX_SIZE: usize = 512;
/// Size classes: `GRANULE`, `2 * GRANULE`, ..., `MAX_SIZE`.
const CLASSES: usize = MAX_SIZE / GRANULE;
/// Blocks kept per size class, at least.
const DEPTH: usize = 16;
/// Bytes kept per size class, at most, where that is more than [`DEPTH`] blocks: small blocks
/// (queue nodes) are retired in batches (a consumer that drains a log in one transaction).
const BIN_BYTES: usize = 2048;
/// The alignment of every cached block.
const ALIGN: usize = 8;

/// How many blocks each size class keeps: [`DEPTH`], or as many as fit in [`BIN_BYTES`].
const DEPTHS: [u32; CLASSES] = {
    let mut depths = [0; CLASSES];
    let mut class = 0;
    while class < CLASSES {
        let per_bytes = BIN_BYTES / ((class + 1) * GRANULE);
        let depth = if per_bytes > DEPTH { per_bytes } else { DEPTH };
        depths[class] = depth as u32;
        class += 1;
    }
    depths
};

/// The size class of a block of `layout`, if cacheable.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if cfg!(loom) || layout.align() > ALIGN || layout.size() == 0 || layout.size() > MAX_SIZE {
        return None;
    }
    Some((layout.size() - 1) / GRANULE)
}

/// The layout every block of size class `class` is really allocated with.
#[inline]
fn class_layout(class: usize) -> Layout {
    debug_assert!(class < CLASSES);
    // SAFETY: `(class + 1) * GRANULE` is at most `MAX_SIZE`, far below `isize::MAX`, and
    // `ALIGN` is a power of two.
    unsafe { Layout::from_size_align_unchecked((class + 1) * GRANULE, ALIGN) }
}

/// Each size class's cached blocks as a list linked through the blocks themselves (the first
/// word of a cached block is the next one), with its length: no storage of its own to grow.
struct Cache {
    heads: [Cell<*mut u8>; CLASSES],
    lens: [Cell<u32>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, head) in self.heads.iter().enumerate() {
            let layout = class_layout(class);
            let mut block = head.replace(ptr::null_mut());
            while !block.is_null() {
                // SAFETY: every cached block was allocated with its class's layout, holds the
                // next one in its first word, and is owned by the cache alone.
                unsafe {
                    let next = block.cast::<*mut u8>().read();
                    dealloc(block, layout);
                    block = next;
                }
            }
        }
    }
}

std::thread_local! {
    static CACHE: Cache = const {
        Cache {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            lens: [const { Cell::new(0) }; CLASSES],
        }
    };
}

/// Allocates a block for `layout` (non-zero size).
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    let real = match class_of(layout) {
        Some(class) => {
            let cached = CACHE
                .try_with(|c| {
                    let block = NonNull::new(c.heads[class].get())?;
                    // SAFETY: a cached block holds the next one in its first word (`release`).
                    c.heads[class].set(unsafe { block.cast::<*mut u8>().read() });
                    c.lens[class].set(c.lens[class].get() - 1);
                    Some(block)
                })
                .ok()
                .flatten();
            if let Some(block) = cached {
                return block;
            }
            class_layout(class)
        }
        None => layout,
    };
    // SAFETY: the layout has a non-zero size (the caller's promise, kept by rounding up).
    unsafe { alloc_exactly(real) }
}

/// A block from the global allocator for `layout`.
///
/// # Safety
///
/// `layout` has a non-zero size.
#[inline]
unsafe fn alloc_exactly(layout: Layout) -> NonNull<u8> {
    // SAFETY: forwarded from the caller.
    let block = unsafe { alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| handle_alloc_error(layout))
}

/// True if [`allocate`] and [`release`] use `layout` itself with the global allocator, as
/// `Box` does for a type of that layout: an uncached layout, or one that is its class's own
/// (8-byte aligned, its size a multiple of [`GRANULE`]).
#[inline]
fn as_box(layout: Layout) -> bool {
    class_of(layout).is_none_or(|class| class_layout(class) == layout)
}

/// Allocates an uninitialised block for a `T`, with `T`'s own layout (`T` is not zero-sized):
/// a block that may be freed as a `Box<T>` once it holds a `T`, or given to [`release_for`].
#[inline]
pub(crate) fn allocate_for<T>() -> NonNull<T> {
    let layout = Layout::new::<T>();
    assert!(layout.size() != 0, "allocate_for of a zero-sized type");
    if as_box(layout) {
        allocate(layout).cast()
    } else {
        // SAFETY: not zero-sized (checked above).
        unsafe { alloc_exactly(layout) }.cast()
    }
}

/// Frees a block of `T`'s layout whose value is dropped or moved out already.
///
/// # Safety
///
/// `block` came from [`allocate_for::<T>`](allocate_for) or from `Box::<T>::into_raw` (of a
/// `T` that is not zero-sized), and is not used again.
#[inline]
pub(crate) unsafe fn release_for<T>(block: NonNull<T>) {
    let layout = Layout::new::<T>();
    if as_box(layout) {
        // SAFETY: such a layout's blocks are allocated with `layout` itself, whether by the
        // cache, by `allocate_for` or by `Box` (the caller's promise).
        unsafe { release(block.cast(), layout) };
    } else {
        // SAFETY: allocated with `layout`, by `allocate_for` or by `Box` (the caller's promise).
        unsafe { dealloc(block.as_ptr().cast(), layout) };
    }
}

/// Frees a block that [`allocate`] returned for `layout`.
///
/// # Safety
///
/// `block` came from `allocate(layout)` with this same layout, and is not used again.
#[inline]
pub(crate) unsafe fn release(block: NonNull<u8>, layout: Layout) {
    let real = match class_of(layout) {
        Some(class) => {
            let kept = CACHE
                .try_with(|c| {
                    let len = c.lens[class].get();
                    if len >= DEPTHS[class] {
                        return false;
                    }
                    // SAFETY: the block is ours and at least one word long, 8-byte aligned
                    // (its class's layout): its first word links it to the next cached block.
                    unsafe { block.cast::<*mut u8>().write(c.heads[class].get()) };
                    c.heads[class].set(block.as_ptr());
                    c.lens[class].set(len + 1);
                    true
                })
                .unwrap_or(false);
            if kept {
                return;
            }
            class_layout(class)
        }
        None => layout,
    };
    // SAFETY: `block` was allocated with `real` (cached or not, `allocate` used the same
    // rounding) and is ours.
    unsafe { dealloc(block.as_ptr(), real) };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_released_block_is_reused_for_the_same_class_only() {
        let small = Layout::from_size_align(40, 8).unwrap();
        let same_class = Layout::from_size_align(36, 4).unwrap();
        let other = Layout::from_size_align(200, 8).unwrap();
        let a = allocate(small);
        // SAFETY: allocated just above with this layout.
        unsafe { release(a, small) };
        let b = allocate(same_class);
        assert_eq!(a, b, "36 bytes round to the class of 40");
        let c = allocate(other);
        assert_ne!(b, c);
        // SAFETY: each block is released once, with its layout.
        unsafe {
            release(b, same_class);
            release(c, other);
        }
    }

    #[test]
    fn blocks_for_a_type_go_to_and_from_boxes() {
        type Node = (u64, [u8; 16]);
        // A boxed value's block, released to the cache, comes back for the next value...
        let boxed = Box::into_raw(Box::new((7u64, [1u8; 16])));
        // SAFETY: the value is plain data, dropped by the release; the block is not used again.
        unsafe { release_for(NonNull::new(boxed).unwrap()) };
        let block = allocate_for::<Node>();
        assert_eq!(
            block.as_ptr(),
            boxed,
            "24 bytes at 8-byte alignment is a class of its own"
        );
        // ...and a cached block may be freed as a box once it holds a value.
        // SAFETY: the block has `Node`'s layout; it is written, then freed once, as a box.
        unsafe {
            block.as_ptr().write((8, [2; 16]));
            assert_eq!(*Box::from_raw(block.as_ptr()), (8, [2; 16]));
        }
        // A type whose layout is not its class's own bypasses the cache both ways.
        let odd_layout = Layout::new::<[u8; 12]>();
        assert!(!as_box(odd_layout));
        let class = class_of(odd_layout).unwrap();
        let cached = || CACHE.with(|c| c.lens[class].get());
        let before = cached();
        let odd = allocate_for::<[u8; 12]>();
        // SAFETY: allocated just above for this type, released once.
        unsafe { release_for(odd) };
        assert_eq!(
            cached(),
            before,
            "not cached: its class's blocks are 16 bytes"
        );
        assert!(as_box(Layout::new::<[u64; 3]>()) && as_box(Layout::new::<[u8; 4096]>()));
    }

    #[test]
    fn large_or_overaligned_layouts_bypass_the_cache() {
        assert!(class_of(Layout::from_size_align(4096, 8).unwrap()).is_none());
        assert!(class_of(Layout::from_size_align(64, 64).unwrap()).is_none());
        let big = Layout::from_size_align(4096, 8).unwrap();
        let block = allocate(big);
        // SAFETY: allocated just above with this layout.
        unsafe { release(block, big) };
    }

    #[test]
    fn a_full_bin_frees_to_the_allocator() {
        let layout = Layout::from_size_align(24, 8).unwrap();
        let class = class_of(layout).unwrap();
        let depth = DEPTHS[class] as usize;
        let blocks: Vec<_> = (0..depth * 2).map(|_| allocate(layout)).collect();
        for b in blocks {
            // SAFETY: each block is released once, with its layout.
            unsafe { release(b, layout) };
        }
        let cached = CACHE.with(|c| c.lens[class].get() as usize);
        assert_eq!(cached, depth);
        assert_eq!(depth, 2048 / 24, "small classes keep up to BIN_BYTES");
        assert_eq!(
            DEPTHS[CLASSES - 1] as usize,
            DEPTH,
            "large ones DEPTH blocks"
        );
    }
}
