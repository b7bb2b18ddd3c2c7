//! The `memory` binary's measurement: it counts every entry, and it gives every byte back.
//! Alone in its test binary, with a counting allocator: other tests would allocate meanwhile.

use commute_benches::memory::{CountingAllocator, ValueKind, allocated, measure};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn every_entry_is_counted_and_every_byte_given_back() {
    // A first measurement settles what the runtime allocates once (thread bookkeeping).
    let _ = measure(64, ValueKind::Word);
    for keys in [1_000, 20_000] {
        for value in ValueKind::ALL {
            let before = allocated();
            let row = measure(keys, value);
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
                allocated(),
                before,
                "bytes left after measuring {keys} {value:?} entries"
            );
        }
    }
}
