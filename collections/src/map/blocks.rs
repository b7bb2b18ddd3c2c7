//! A per-thread cache of freed trie leaves, by size.
//!
//! Every update of a `TMap` allocates a leaf and retires the one it replaces, and the core frees
//! retired leaves in batches on whichever thread retired them: often not the thread that
//! allocated them. With glibc's allocator each such free goes to the allocating thread's arena,
//! under its lock, while that thread allocates from the same arena: on two busy threads the
//! arena locks were contended on most updates, and a third of the time went to sleeping on them
//! (`perf`: `__lll_lock_wait_private`). Here freed leaves go to a small cache of the freeing
//! thread instead, and that thread's next leaves of the same size come from it: no lock, no
//! trip through the allocator.
//!
//! The cache holds at most [`DEPTH`] blocks of each of [`CLASSES`] sizes (up to [`MAX_SIZE`]
//! bytes, 8-byte aligned): at most 132 KiB per thread, freed when the thread exits. Other
//! layouts go straight to the global allocator. Under loom the cache is off.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::alloc::{alloc, dealloc, handle_alloc_error};

/// Size classes are multiples of this many bytes.
const GRANULE: usize = 16;
/// The largest cached block, in bytes.
const MAX_SIZE: usize = 512;
/// Size classes: `GRANULE`, `2 * GRANULE`, ..., `MAX_SIZE`.
const CLASSES: usize = MAX_SIZE / GRANULE;
/// Blocks kept per size class.
const DEPTH: usize = 16;
/// The alignment of every cached block.
const ALIGN: usize = 8;

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

struct Cache {
    bins: [Vec<NonNull<u8>>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, bin) in self.bins.iter_mut().enumerate() {
            let layout = class_layout(class);
            for block in bin.drain(..) {
                // SAFETY: every cached block was allocated with its class's layout and is
                // owned by the cache alone.
                unsafe { dealloc(block.as_ptr(), layout) };
            }
        }
    }
}

std::thread_local! {
    static CACHE: core::cell::RefCell<Cache> = const {
        core::cell::RefCell::new(Cache {
            bins: [const { Vec::new() }; CLASSES],
        })
    };
}

/// Allocates a block for `layout` (non-zero size).
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    let real = match class_of(layout) {
        Some(class) => {
            let cached = CACHE
                .try_with(|c| {
                    c.try_borrow_mut()
                        .ok()
                        .and_then(|mut c| c.bins[class].pop())
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
    let block = unsafe { alloc(real) };
    NonNull::new(block).unwrap_or_else(|| handle_alloc_error(real))
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
                .try_with(|c| match c.try_borrow_mut() {
                    Ok(mut c) if c.bins[class].len() < DEPTH => {
                        let bin = &mut c.bins[class];
                        if bin.capacity() == 0 {
                            bin.reserve_exact(DEPTH);
                        }
                        bin.push(block);
                        true
                    }
                    _ => false,
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
        let same_class = Layout::from_size_align(48, 8).unwrap();
        let other = Layout::from_size_align(200, 8).unwrap();
        let a = allocate(small);
        // SAFETY: allocated just above with this layout.
        unsafe { release(a, small) };
        let b = allocate(same_class);
        assert_eq!(a, b, "48 bytes round to the class of 40");
        let c = allocate(other);
        assert_ne!(b, c);
        // SAFETY: each block is released once, with its layout.
        unsafe {
            release(b, same_class);
            release(c, other);
        }
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
        let blocks: Vec<_> = (0..DEPTH * 2).map(|_| allocate(layout)).collect();
        for b in blocks {
            // SAFETY: each block is released once, with its layout.
            unsafe { release(b, layout) };
        }
        let cached = CACHE.with(|c| c.borrow().bins[class_of(layout).unwrap()].len());
        assert_eq!(cached, DEPTH);
    }
}
