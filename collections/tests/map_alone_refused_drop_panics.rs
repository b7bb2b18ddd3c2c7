//! An update alone (`atomic().insert` of a present key) builds the key's new leaf while pinned,
//! with copies of the leaf's other entries; if another commit changes the leaf first, the
//! update is refused and the built leaf is taken apart outside the pin (`NodeRef::into_entry`):
//! the caller's entry comes back, the copies are dropped. Before the fix, a copy whose `Drop`
//! panicked stopped that: the copies after the caller's entry were never dropped (the test saw
//! one value left alive) and the leaf's block leaked (memcheck: "definitely lost"), as the block
//! was released only after both `drop_in_place` calls. The refusal is made deterministic: the
//! first clone after arming (the copy of the replaced value that the update hands back, made
//! before its commit) has a helper thread commit a new key into the same leaf; the second (the
//! leaf's copy of key 0's value) panics when dropped.

use commute::{TMap, reclaim_retired};
use commute_test_support::hashers::OneLeaf;
use commute_test_support::with_watchdog;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};

type Map = TMap<u32, V, OneLeaf>;

/// Live values (made minus dropped).
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Set: the next clone, on any thread, has a helper thread commit key 9 into the map here.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Set: the next clone is a bomb.
static BOMB_NEXT: AtomicBool = AtomicBool::new(false);
static HELPED: Mutex<Option<Arc<Map>>> = Mutex::new(None);
/// A value; `bomb`: its drop panics.
#[derive(Debug)]
struct V {
    id: u32,
    bomb: bool,
}
impl V {
    fn new(id: u32) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        V { id, bomb: false }
    }
}
impl Clone for V {
    fn clone(&self) -> Self {
        let mut copy = V::new(self.id);
        if BOMB_NEXT.swap(false, Ordering::SeqCst) {
            // The leaf's first copy (of key 0's value, before the caller's entry).
            copy.bomb = true;
        }
        if ARMED.swap(false, Ordering::SeqCst) {
            let map = HELPED.lock().unwrap().take().expect("a map to write");
            std::thread::spawn(move || map.atomic().insert(9, V::new(9)))
                .join()
                .unwrap();
            BOMB_NEXT.store(true, Ordering::SeqCst);
        }
        copy
    }
}
impl Drop for V {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
        assert!(!self.bomb, "drop of a copy of value {}", self.id);
    }
}

fn settle() {
    for _ in 0..4 {
        reclaim_retired();
    }
}

#[test]
fn a_refused_update_alone_whose_copy_panics_in_drop_drops_the_other_copies() {
    with_watchdog(60, || {
        {
            let m: Arc<Map> = Arc::new(TMap::with_hasher(OneLeaf));
            for k in 0..3 {
                m.atomic().insert(k, V::new(k));
            }
            settle();
            *HELPED.lock().unwrap() = Some(m.clone());
            ARMED.store(true, Ordering::SeqCst);
            // Key 1 is present: an update alone, whose leaf copies keys 0 and 2 around it.
            let update = catch_unwind(AssertUnwindSafe(|| m.atomic().insert(1, V::new(10))));
            assert!(!ARMED.load(Ordering::SeqCst), "the helper ran");
            assert!(update.is_err(), "the copy's panic is passed on");
            let mut keys = m.atomic().keys();
            keys.sort_unstable();
            assert_eq!(keys, [0, 1, 2, 9], "the refused update changed nothing");
            assert_eq!(m.atomic().get(&1).map(|v| v.id), Some(1));
            assert_eq!(Arc::strong_count(&m), 1);
        }
        settle();
        assert_eq!(
            LIVE.load(Ordering::SeqCst),
            0,
            "values of the refused update's leaf were never dropped"
        );
    });
}
