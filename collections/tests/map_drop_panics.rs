//! A value whose `Drop` panics, when the map frees a whole subtree: the map's own drop
//! (`DeadTrie::drop` loops over the root slots) and `clear` (which retires each root slot's
//! subtree whole; an inner node's children are freed in a loop, `NodeRef::free_children`).
//! Before the fix, the panic stopped the loop: every value (and node) after the panicking one
//! was never dropped nor freed (the tests saw up to 63 of 64 values, and 4 to 53 of 64, left
//! alive; the counts vary with the hasher's seed). The core frees "every value even if an
//! earlier one's `Drop` panics" and passes the first panic on; the trie's loops now do too.

use commute::{TMap, atomically, reclaim_retired};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicIsize, AtomicU32, Ordering};

/// Live values (made minus dropped), and the id whose drop panics.
static LIVE: AtomicIsize = AtomicIsize::new(0);
static BOMB: AtomicU32 = AtomicU32::new(u32::MAX);

struct V(u32);
impl V {
    fn new(id: u32) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        V(id)
    }
}
impl Clone for V {
    fn clone(&self) -> Self {
        V::new(self.0)
    }
}
impl Drop for V {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
        if self.0 == BOMB.load(Ordering::SeqCst) {
            BOMB.store(u32::MAX, Ordering::SeqCst);
            panic!("drop of value {}", self.0);
        }
    }
}

fn settle() {
    for _ in 0..4 {
        let _ = catch_unwind(reclaim_retired);
    }
}

/// One test at a time: `LIVE` and `BOMB` are shared.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn dropping_a_map_whose_first_value_panics_drops_every_other_value() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    settle();
    let base = LIVE.load(Ordering::SeqCst);
    let m: TMap<u32, V> = (0..64).map(|id| (id, V::new(id))).collect();
    // The key of the first root slot: the trie frees root slots in order.
    let first = (0..64).min_by_key(|k| m.root_index(k)).unwrap();
    BOMB.store(first, Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(move || drop(m)));
    settle();
    BOMB.store(u32::MAX, Ordering::SeqCst);
    assert!(r.is_err(), "the value's panic is passed on");
    assert_eq!(
        LIVE.load(Ordering::SeqCst) - base,
        0,
        "values of the dropped map were never dropped"
    );
}

#[test]
fn clearing_a_deep_map_whose_first_value_panics_drops_every_other_value() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    settle();
    let base = LIVE.load(Ordering::SeqCst);
    {
        // One root slot, inner nodes of 2, leaves of 1: the whole map is one subtree.
        let m: TMap<u32, V> = TMap::with_config(1, 2, 1);
        for id in 0..64 {
            m.atomic().insert(id, V::new(id));
        }
        settle();
        assert_eq!(
            LIVE.load(Ordering::SeqCst) - base,
            64,
            "the map's own copies"
        );
        // Which key the trie frees first is the hash's business: try them in turn, one
        // panicking drop per clear, until one leaves values behind (or none does).
        BOMB.store(0, Ordering::SeqCst);
        let r = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| m.clear(tx));
            for _ in 0..4 {
                reclaim_retired();
            }
        }));
        settle();
        BOMB.store(u32::MAX, Ordering::SeqCst);
        assert!(r.is_err(), "the value's panic is passed on");
        assert!(m.atomic().is_empty());
    }
    settle();
    assert_eq!(
        LIVE.load(Ordering::SeqCst) - base,
        0,
        "values of the cleared subtree were never dropped"
    );
}
