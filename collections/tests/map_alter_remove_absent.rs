//! `alter` returning `Change::Remove` for a key that is absent when the change applies removes
//! nothing, and counts nothing: the key was absent all along, or the closure removed it itself
//! (it can capture the transaction). The length stays the number of entries.

use commute::{Change, TMap, atomically};

/// Every entry, sorted, and the length the map's counter gives.
fn contents(map: &TMap<u32, u32>) -> (Vec<(u32, u32)>, usize) {
    let mut entries = map.atomic().iter();
    entries.sort_unstable();
    (entries, map.atomic().len())
}

#[test]
fn removing_an_absent_key_with_alter_leaves_the_length_alone() {
    // One leaf, and a grown trie of one-entry leaves.
    for (root, inner, leaf) in [(1, 2, 64), (1, 2, 1)] {
        let shape = format!("shape {root}/{inner}/{leaf}");
        let map: TMap<u32, u32> = TMap::with_config(root, inner, leaf);
        for k in 0..4 {
            map.atomic().insert(k, k);
        }
        // Absent all along, alone and in a transaction.
        let seen = map.atomic().alter(9, |v| (Change::Remove, v.copied()));
        assert_eq!(seen, None, "{shape}");
        let seen = atomically(|tx| map.alter(tx, 10, |v| (Change::Remove, v.copied())));
        assert_eq!(seen, None, "{shape}");
        assert_eq!(
            contents(&map),
            (vec![(0, 0), (1, 1), (2, 2), (3, 3)], 4),
            "{shape}"
        );
        // Present when the closure runs, which removes it itself: one removal, counted once.
        let seen = atomically(|tx| {
            map.alter(tx, 1, |v| {
                let seen = v.copied();
                map.remove(tx, &1).unwrap();
                (Change::Remove, seen)
            })
        });
        assert_eq!(seen, Some(1), "{shape}");
        assert_eq!(contents(&map), (vec![(0, 0), (2, 2), (3, 3)], 3), "{shape}");
        // The length goes on counting from there.
        map.atomic().insert(20, 20);
        assert_eq!(map.atomic().len(), 4, "{shape}");
    }
}
