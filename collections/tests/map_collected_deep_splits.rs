//! A map or set collected from an iterator is built without transactions, by a walk of its own
//! down the inner nodes that earlier splits of the build made; a leaf below them that overflows
//! splits at its own level. Keys that all fall under one root slot make the leaves under that
//! slot's inner node split again: every key must then be where a lookup walks to it, in a
//! transaction or alone, and the map must go on working transactionally.

use commute::{TMap, TSet, atomically};
use commute_test_support::hashers::KeyAsHash;

/// How many keys are collected.
const KEYS: u32 = 400;

/// Key `k` of the collected ones: its hash is itself (`KeyAsHash`), so every key has the
/// default root's 6 low bits at 0 (root slot 0), and the bits above them spread: the next 4
/// give 16 children of about 25 keys each, which split again by the next 4.
fn key(k: u32) -> u32 {
    k << 6
}

#[test]
fn every_key_of_a_map_collected_into_split_leaves_is_found() {
    let map: TMap<u32, u32, KeyAsHash> = (0..KEYS).map(|k| (key(k), k)).collect();
    assert_eq!(map.atomic().len(), KEYS as usize);
    for k in 0..KEYS {
        assert_eq!(map.atomic().get(&key(k)), Some(k), "key {k} alone");
    }
    let found = atomically(|tx| {
        let mut found = Vec::new();
        for k in 0..KEYS {
            found.push(map.get(tx, &key(k))?);
        }
        Ok(found)
    });
    let expected: Vec<Option<u32>> = (0..KEYS).map(Some).collect();
    assert_eq!(found, expected, "in a transaction");
    // Keys of the same root slot that were not collected are absent.
    for k in KEYS..KEYS + 50 {
        assert!(
            !map.atomic().contains_key(&key(k)),
            "key {k} was not collected"
        );
    }
    // Updates go to the leaves the build made: each replaces the collected value.
    for k in 0..KEYS {
        assert_eq!(map.atomic().insert(key(k), k + 1), Some(k), "key {k}");
    }
    for k in (0..KEYS).step_by(2) {
        assert_eq!(
            atomically(|tx| map.remove(tx, &key(k))),
            Some(k + 1),
            "key {k}"
        );
    }
    assert_eq!(map.atomic().len(), KEYS as usize / 2);
    let mut entries = map.atomic().iter();
    entries.sort_unstable();
    let expected: Vec<(u32, u32)> = (1..KEYS).step_by(2).map(|k| (key(k), k + 1)).collect();
    assert_eq!(entries, expected);
}

#[test]
fn every_element_of_a_set_collected_into_split_leaves_is_found() {
    let set: TSet<u32, KeyAsHash> = (0..KEYS).map(key).chain((0..KEYS).map(key)).collect();
    assert_eq!(set.atomic().len(), KEYS as usize);
    for k in 0..KEYS {
        assert!(set.atomic().contains(&key(k)), "element {k}");
    }
    for k in 0..KEYS {
        assert!(!set.atomic().insert(key(k)), "element {k} is present");
    }
    assert_eq!(set.atomic().len(), KEYS as usize);
    for k in 0..KEYS {
        assert!(set.atomic().remove(&key(k)), "element {k}");
    }
    assert!(set.atomic().is_empty());
    assert_eq!(set.atomic().iter(), Vec::<u32>::new());
}
