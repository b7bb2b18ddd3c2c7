//! A map collected from an iterator keeps, of several equal keys, the last entry (its value as
//! std's `HashMap` does, and its key too, as `TMap::insert` does and the docs say), wherever
//! the key sits in its leaf: the build replaces that key's entry and no other. Keys that share
//! one leaf put the duplicates at every place of it.

mod common;

use common::Tagged;
use commute::TMap;
use commute_test_support::hashers::OneLeaf;
use std::hash::BuildHasher;

/// Keys `0..n` tagged "first" with value `id`, then again, in another order, the keys whose
/// `id % 3 != 1`, tagged "last", with value `id + 1000`.
fn with_duplicates(n: u32) -> Vec<(Tagged, u32)> {
    let first = (0..n).map(|id| (Tagged { id, tag: "first" }, id));
    let last = (0..n)
        .rev()
        .filter(|id| id % 3 != 1)
        .map(|id| (Tagged { id, tag: "last" }, id + 1000));
    first.chain(last).collect()
}

/// What the map must hold: the last entry of each key, as (id, tag, value), sorted.
fn expected(n: u32) -> Vec<(u32, &'static str, u32)> {
    (0..n)
        .map(|id| {
            if id % 3 != 1 {
                (id, "last", id + 1000)
            } else {
                (id, "first", id)
            }
        })
        .collect()
}

fn entries<S: BuildHasher>(map: &TMap<Tagged, u32, S>) -> Vec<(u32, &'static str, u32)> {
    let mut entries: Vec<_> = map
        .atomic()
        .iter()
        .into_iter()
        .map(|(k, v)| (k.id, k.tag, v))
        .collect();
    entries.sort_unstable();
    entries
}

#[test]
fn a_collected_map_keeps_the_last_of_equal_keys_in_a_shared_leaf() {
    // Every key hashes to 0: one leaf, keys in the order of insertion (past the four tagged
    // places too).
    for n in [2, 4, 6, 12] {
        let map: TMap<Tagged, u32, OneLeaf> = with_duplicates(n).into_iter().collect();
        assert_eq!(entries(&map), expected(n), "{n} keys");
        assert_eq!(map.atomic().len(), n as usize, "{n} keys");
        for id in 0..n {
            let want = if id % 3 != 1 { id + 1000 } else { id };
            let key = Tagged { id, tag: "lookup" };
            assert_eq!(map.atomic().get(&key), Some(want), "key {id} of {n}");
        }
    }
}
