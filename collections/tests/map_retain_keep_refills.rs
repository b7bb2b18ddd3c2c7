//! `retain`'s `keep` may write the map it filters (it can capture the transaction). Once it has,
//! the walk no longer writes a leaf it read before unless the leaf is still where its keys
//! live: it removes the rejected keys from the map as it is now, counting only those it finds.
//! Here `keep`, on its first call, clears the map and inserts some of its keys again: the keys
//! it rejects that are back leave, those that are not back are not counted, and the length
//! stays exact (a length that went below zero reads 0, so the test inserts more keys after
//! and reads it again).

use commute::{TMap, atomically};

/// Every entry, sorted, and the length the map's counter gives.
fn contents(map: &TMap<u32, u32>) -> (Vec<(u32, u32)>, usize) {
    let mut entries = map.atomic().iter();
    entries.sort_unstable();
    (entries, map.atomic().len())
}

#[test]
fn a_retain_whose_keep_clears_and_refills_the_map_counts_what_it_removes() {
    // One leaf; a grown trie of one-entry leaves; a root of four over leaves of two.
    for (root, inner, leaf) in [(1, 2, 64), (1, 2, 1), (4, 2, 2)] {
        let shape = format!("shape {root}/{inner}/{leaf}");
        let map: TMap<u32, u32> = TMap::with_config(root, inner, leaf);
        for k in 0..10 {
            map.atomic().insert(k, k);
        }
        let calls = atomically(|tx| {
            let mut calls = 0;
            map.retain(tx, |&k, _| {
                if calls == 0 {
                    map.clear(tx).unwrap();
                    for k in 0..5 {
                        map.insert(tx, k, k + 100).unwrap();
                    }
                }
                calls += 1;
                k % 2 == 0
            })?;
            Ok(calls)
        });
        if root == 1 {
            // The walk goes on in the subtree it read from the one root slot: each key of the
            // map as it was is judged once, the refilled ones not at all. (Under a wider root,
            // the root slots not yet walked are read as the refill left them.)
            assert_eq!(calls, 10, "{shape}");
        }
        // Keys 1 and 3 are back and rejected: removed; 5, 7 and 9 are not back.
        assert_eq!(
            contents(&map),
            (vec![(0, 100), (2, 102), (4, 104)], 3),
            "{shape}"
        );
        for k in 20..25 {
            map.atomic().insert(k, k);
        }
        assert_eq!(
            map.atomic().len(),
            8,
            "{shape}: the length after more inserts"
        );
    }
}
