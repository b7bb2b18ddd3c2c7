//! The `memory` binary's measurement: it counts every entry, and it gives every byte back.
//! Alone in its test binary, with a counting allocator: other tests would allocate meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use commute_benches::memory::{ValueKind, measure};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn every_entry_is_counted_and_every_byte_given_back() {
    // A first measurement settles what the runtime allocates once (thread bookkeeping).
    let _ = measure(64, ValueKind::Word, live);
    for keys in [1_000, 20_000] {
        for value in ValueKind::ALL {
            let before = live();
            let row = measure(keys, value, live);
            // Each structure holds at least its keys and values.
            let floor = value.entry_bytes() as f64;
            for (name, bytes) in [
                ("HashMap", row.hash_map),
                ("TMap::new", row.tmap),
                ("TMap::with_capacity", row.tmap_presized),
            ] {
                assert!(
                    bytes >= floor,
                    "{name} with {keys} {value:?} entries: {bytes} bytes per entry, under {floor}"
                );
            }
            // Built, counted and dropped: nothing is left behind, not even in a block cache.
            assert_eq!(
                live(),
                before,
                "bytes left after measuring {keys} {value:?} entries"
            );
        }
    }
}
