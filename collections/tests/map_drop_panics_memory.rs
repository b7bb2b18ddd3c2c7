//! A leaf freed by reclamation whose entries' drop panics. Before the fix,
//! `NodeRef::free_subtree` (raw.rs) dropped the entries with `ptr::drop_in_place` and only then
//! released the leaf's block: the panic skipped the release, and every such leaf leaked its
//! block. (The slice's drop glue drops the other entries, and the core catches the panic and
//! goes on with its other frees, so only memory leaks.) The test passes either way; run under
//! memcheck (a debug build), it showed "88 bytes in 1 blocks are definitely lost" (allocated in
//! `blocks::allocate` for the leaf) before the fix, and no leak after. `scripts/valgrind.sh`
//! runs it so, as every test binary of the crate; alone:
//!
//! valgrind --error-exitcode=7 --leak-check=full --errors-for-leak-kinds=definite \
//!     <debug binary> --test-threads=1

use commute::{TMap, reclaim_retired};
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, Ordering};

static ARMED: AtomicBool = AtomicBool::new(false);

/// A value whose drop panics once armed (the first drop after arming).
#[derive(Clone)]
struct Bomb(#[allow(dead_code)] [u64; 4]);
impl Drop for Bomb {
    fn drop(&mut self) {
        if ARMED.swap(false, Ordering::SeqCst) {
            panic!("drop panics");
        }
    }
}

#[test]
fn a_leaf_whose_value_drop_panics_is_still_freed() {
    {
        // One leaf holding both keys.
        let m: TMap<u32, Bomb> = TMap::with_config(1, 2, 8);
        m.atomic().insert(1, Bomb([1; 4]));
        m.atomic().insert(2, Bomb([2; 4]));
        for _ in 0..4 {
            reclaim_retired();
        }
        // Replace key 1: the old leaf (keys 1 and 2) is retired; its first drop panics.
        m.atomic().insert(1, Bomb([3; 4]));
        ARMED.store(true, Ordering::SeqCst);
        for _ in 0..4 {
            let _ = catch_unwind(reclaim_retired);
        }
        ARMED.store(false, Ordering::SeqCst);
        assert_eq!(m.atomic().len(), 2);
    }
    for _ in 0..4 {
        reclaim_retired();
    }
}
