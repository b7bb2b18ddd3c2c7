//! `TMap::iter`, `keys`, `values` (and `TSet::iter`) clone every entry into a vector while the
//! walk goes on. Before the fix, when the walk met a conflict (or a `Clone` panicked), the
//! clones made so far were dropped right there, inside the transaction (each test counted one
//! such drop), although the map's docs promise that keys and values are "never [dropped]
//! inside a transaction, so their `Drop` may use commute", and every other operation lets go
//! of such copies outside (`Unkept` / `drop_outside`).
//!
//! The conflict is made deterministic: the first clone of an armed value has another thread
//! update two keys (the one whose leaf was read, and one not yet read) and commit first, so the
//! walk's next read fails validation and the attempt is rolled back.

use commute::{TMap, TSet, atomically, in_transaction};
use std::hash::{Hash, Hasher};

use commute_test_support::hashers::KeyAsHash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Drops inside a transaction on the tests' own threads (not the helper thread's).
static DROPPED_INSIDE: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WATCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
fn watch() {
    WATCHED.with(|w| w.set(true));
}
fn note_drop() {
    if in_transaction() && WATCHED.with(|w| w.get()) {
        DROPPED_INSIDE.fetch_add(1, Ordering::SeqCst);
    }
}
static ARMED: AtomicBool = AtomicBool::new(false);
/// One test at a time: `ARMED` and `DROPPED_INSIDE` are shared (and a clone on any thread
/// disarms `ARMED`).
static SERIAL: Mutex<()> = Mutex::new(());
static MAP: OnceLock<TMap<u32, Item, KeyAsHash>> = OnceLock::new();
static SET: OnceLock<TSet<Item, KeyAsHash>> = OnceLock::new();

/// A key or value: its first clone after arming has another thread update keys 0 and 1.
#[derive(Debug)]
struct Item(u32);
impl Clone for Item {
    fn clone(&self) -> Self {
        if ARMED.swap(false, Ordering::SeqCst) {
            std::thread::spawn(|| {
                atomically(|tx| {
                    if let Some(m) = MAP.get() {
                        m.insert(tx, 0, Item(100))?;
                        m.insert(tx, 1, Item(101))?;
                    }
                    if let Some(s) = SET.get() {
                        s.insert(tx, Item(64))?;
                        s.insert(tx, Item(65))?;
                    }
                    Ok(())
                })
            })
            .join()
            .unwrap();
        }
        Item(self.0)
    }
}
impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Item {}
impl Hash for Item {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u32(self.0)
    }
}
impl Drop for Item {
    fn drop(&mut self) {
        note_drop();
    }
}

#[test]
fn values_whose_walk_meets_a_conflict_drops_its_clones_outside_the_transaction() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = MAP.get_or_init(|| TMap::with_config_and_hasher(2, 2, 8, KeyAsHash));
    m.atomic().insert(0, Item(0));
    m.atomic().insert(1, Item(1));
    DROPPED_INSIDE.store(0, Ordering::SeqCst);
    watch();
    ARMED.store(true, Ordering::SeqCst);
    let mut values = atomically(|tx| m.values(tx));
    values.sort_by_key(|i| i.0);
    assert_eq!(
        values,
        [Item(100), Item(101)],
        "the rerun sees the other commit"
    );
    assert_eq!(
        DROPPED_INSIDE.load(Ordering::SeqCst),
        0,
        "clones of map values were dropped inside the transaction"
    );
}

#[test]
fn set_iter_whose_walk_meets_a_conflict_drops_its_clones_outside_the_transaction() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = SET.get_or_init(|| TSet::with_hasher(KeyAsHash));
    // Elements 0 and 1 under root slots 0 and 1 (of 64); the other thread adds 64 and 65 there.
    s.atomic().insert(Item(0));
    s.atomic().insert(Item(1));
    DROPPED_INSIDE.store(0, Ordering::SeqCst);
    watch();
    ARMED.store(true, Ordering::SeqCst);
    let got = atomically(|tx| s.iter(tx));
    assert_eq!(got.len(), 4);
    assert_eq!(
        DROPPED_INSIDE.load(Ordering::SeqCst),
        0,
        "clones of set elements were dropped inside the transaction"
    );
}

/// A value whose clone panics after the first: `iter`'s clones made so far are dropped in the
/// transaction while it unwinds.
static CLONES_LEFT: AtomicUsize = AtomicUsize::new(usize::MAX);
#[derive(Debug)]
struct Fragile(Arc<()>);
impl Clone for Fragile {
    fn clone(&self) -> Self {
        let left = CLONES_LEFT.fetch_sub(1, Ordering::SeqCst);
        assert!(left > 1, "Clone panics");
        Fragile(self.0.clone())
    }
}
impl Drop for Fragile {
    fn drop(&mut self) {
        note_drop();
    }
}

#[test]
fn iter_whose_clone_panics_drops_its_clones_outside_the_transaction() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m: TMap<u32, Fragile, KeyAsHash> = TMap::with_config_and_hasher(2, 2, 8, KeyAsHash);
    m.atomic().insert(0, Fragile(Arc::new(())));
    m.atomic().insert(1, Fragile(Arc::new(())));
    m.atomic().insert(2, Fragile(Arc::new(())));
    let before = DROPPED_INSIDE.load(Ordering::SeqCst);
    watch();
    CLONES_LEFT.store(2, Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(|| atomically(|tx| m.values(tx))));
    CLONES_LEFT.store(usize::MAX, Ordering::SeqCst);
    assert!(r.is_err(), "the second Clone panicked");
    assert_eq!(
        DROPPED_INSIDE.load(Ordering::SeqCst) - before,
        0,
        "the clone made before the panic was dropped inside the transaction"
    );
}
