//! A panic of user code inside `TMap::remove`, `TMap::retain` or `TMap::alter`, caught inside
//! the transaction, must leave the map's length counter in step with its entries once the
//! transaction commits. Before the fix, all three wrote the trie first and only then (after
//! more user code) adjusted the length: `remove` cloned the removed value (`Stored::removed`)
//! after writing the leaf without it; `retain` rewrote leaf after leaf and subtracted the total
//! at the end, so a `keep` that panicked on a later leaf left the earlier leaves' removals
//! uncounted; `alter` with `Change::Remove` dropped the key it does not keep after the write.
//! Each test saw `len()` one above the number of entries the map holds.

use commute::{Change, TMap, TSet, atomically};
use std::cell::Cell;
use std::hash::{Hash, Hasher};

use commute_test_support::hashers::KeyAsHash;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    /// Set while a test's own thread wants `V::clone` to panic (the test threads share `V`).
    static FRAGILE: Cell<bool> = const { Cell::new(false) };
    /// Set while a test's own thread wants the next drop of a `K` to panic.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// A value whose `Clone` panics while `FRAGILE` is set.
#[derive(Debug, PartialEq)]
struct V(u32);
impl Clone for V {
    fn clone(&self) -> Self {
        assert!(!FRAGILE.get(), "Clone panics");
        V(self.0)
    }
}

#[track_caller]
fn assert_in_step(m: &TMap<u32, V, KeyAsHash>) {
    let (len, entries) = atomically(|tx| {
        let mut n = 0;
        m.for_each(tx, |_, _| n += 1)?;
        Ok((m.len(tx)?, n))
    });
    assert_eq!(
        len, entries,
        "len() = {len}, but the map holds {entries} entries"
    );
}

#[test]
fn a_remove_whose_value_clone_panics_keeps_the_length_in_step() {
    let m: TMap<u32, V, KeyAsHash> = TMap::with_config_and_hasher(4, 2, 8, KeyAsHash);
    for k in 0..4 {
        m.atomic().insert(k, V(k));
    }
    atomically(|tx| {
        FRAGILE.set(true);
        let r = catch_unwind(AssertUnwindSafe(|| m.remove(tx, &1)));
        FRAGILE.set(false);
        assert!(r.is_err(), "the value's Clone panicked");
        Ok(())
    });
    assert_in_step(&m);
}

#[test]
fn a_retain_whose_keep_panics_keeps_the_length_in_step() {
    let m: TMap<u32, V, KeyAsHash> = TMap::with_config_and_hasher(4, 2, 8, KeyAsHash);
    for k in 0..4 {
        m.atomic().insert(k, V(k));
    }
    atomically(|tx| {
        // Drops key 0 (first leaf), then panics at key 2 (third leaf).
        let r = catch_unwind(AssertUnwindSafe(|| {
            m.retain(tx, |k, _| {
                assert_ne!(*k, 2, "keep panics");
                *k != 0
            })
        }));
        assert!(r.is_err(), "keep panicked");
        Ok(())
    });
    assert_in_step(&m);
}

#[test]
fn a_set_retain_whose_keep_panics_keeps_the_length_in_step() {
    let s: TSet<u32, KeyAsHash> = TSet::with_hasher(KeyAsHash);
    for k in 0..4 {
        s.atomic().insert(k);
    }
    atomically(|tx| {
        let r = catch_unwind(AssertUnwindSafe(|| {
            s.retain(tx, |k| {
                assert_ne!(*k, 2, "keep panics");
                *k != 0
            })
        }));
        assert!(r.is_err(), "keep panicked");
        Ok(())
    });
    let (len, elements) = atomically(|tx| Ok((s.len(tx)?, s.iter(tx)?.len())));
    assert_eq!(
        len, elements,
        "len() = {len}, but the set holds {elements} elements"
    );
}

/// A key whose drop panics once armed (the next drop after arming).
#[derive(Clone, Debug)]
struct K(u32);
impl PartialEq for K {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for K {}
impl Hash for K {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}
impl Drop for K {
    fn drop(&mut self) {
        if ARMED.replace(false) {
            panic!("key drop panics");
        }
    }
}

#[test]
fn an_alter_removal_whose_key_drop_panics_keeps_the_length_in_step() {
    let m: TMap<K, u32> = TMap::new();
    for k in 0..4 {
        m.atomic().insert(K(k), k);
    }
    atomically(|tx| {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let key = K(1);
            ARMED.set(true);
            m.alter(tx, key, |_| (Change::Remove, ()))
        }));
        ARMED.set(false);
        assert!(r.is_err(), "the key's drop panicked");
        Ok(())
    });
    let (len, entries) = atomically(|tx| Ok((m.len(tx)?, m.iter(tx)?.len())));
    assert_eq!(
        len, entries,
        "len() = {len}, but the map holds {entries} entries"
    );
}
