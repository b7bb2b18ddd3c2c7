//! Closures that `TMap::alter`, `upsert` and `retain` run inside the transaction can reach the
//! map itself (they may capture the transaction). The operation's own change then applies to
//! the map as it stands after the closure ran: before, it was written over a copy of the leaf
//! read earlier, which lost the closure's writes (a wrong `len`), brought back entries the
//! closure had removed, and, for `Owned` values, left the map lending a value that the
//! closure's removal had handed out (a use after free from safe code).

use commute::{Change, Owned, TMap, atomically};

/// A map of one leaf holding keys 1 to 3, each with the `Owned` value "value {key}".
fn owned_map() -> TMap<u32, Owned<String>> {
    let map = TMap::with_config(1, 2, 64);
    for k in 1..=3 {
        map.atomic().insert(k, Owned::new(format!("value {k}")));
    }
    map
}

/// The values the map lends for keys 1 to 3.
fn owned_values(map: &TMap<u32, Owned<String>>) -> Vec<Option<String>> {
    atomically(|tx| {
        let mut values = Vec::new();
        for k in 1..=3 {
            values.push(map.get_ref(tx, &k)?.map(|v| v.to_string()));
        }
        Ok(values)
    })
}

/// Every entry, sorted, and the length the map's counter gives.
fn contents(map: &TMap<u32, u32>) -> (Vec<(u32, u32)>, usize) {
    let mut entries = map.atomic().iter();
    entries.sort_unstable();
    (entries, map.atomic().len())
}

#[test]
fn an_alter_whose_closure_clears_a_grown_map_sets_its_key_in_the_cleared_map() {
    // One root slot, inner nodes of two, leaves of one entry: every key under inner nodes.
    let map: TMap<u32, u32> = TMap::with_config(1, 2, 1);
    for k in 0..16 {
        map.atomic().insert(k, k);
    }
    atomically(|tx| {
        map.alter(tx, 100, |old| {
            assert_eq!(old, None);
            map.clear(tx).unwrap();
            (Change::Set(1), ())
        })
    });
    assert_eq!(contents(&map), (vec![(100, 1)], 1));
}

#[test]
fn an_upsert_whose_closure_writes_the_same_leaf_keeps_both_writes() {
    let map: TMap<u32, u32> = TMap::with_config(1, 2, 64); // one leaf
    for k in 0..4 {
        map.atomic().insert(k, k);
    }
    atomically(|tx| {
        map.upsert(
            tx,
            1,
            || 0,
            |v| {
                map.insert(tx, 10, 10).unwrap();
                map.remove(tx, &2).unwrap();
                *v += 100;
            },
        )
    });
    assert_eq!(
        contents(&map),
        (vec![(0, 0), (1, 101), (3, 3), (10, 10)], 4)
    );
}

#[test]
fn a_retain_whose_keep_inserts_into_the_leaf_it_filters_keeps_the_insert() {
    let map: TMap<u32, u32> = TMap::with_config(1, 2, 64); // one leaf
    for k in 0..10 {
        map.atomic().insert(k, k);
    }
    atomically(|tx| {
        let mut once = true;
        map.retain(tx, |&k, _| {
            if once {
                once = false;
                map.insert(tx, 100, 100).unwrap();
            }
            k != 1
        })
    });
    let mut expected: Vec<(u32, u32)> = (0..10).filter(|&k| k != 1).map(|k| (k, k)).collect();
    expected.push((100, 100));
    assert_eq!(contents(&map), (expected, 10));
}

#[test]
fn a_retain_whose_keep_clears_the_map_leaves_it_empty() {
    for (root, inner, leaf) in [(1, 2, 64), (1, 2, 1), (4, 2, 2)] {
        let map: TMap<u32, u32> = TMap::with_config(root, inner, leaf);
        for k in 0..10 {
            map.atomic().insert(k, k);
        }
        atomically(|tx| {
            let mut once = true;
            map.retain(tx, |&k, _| {
                if once {
                    once = false;
                    map.clear(tx).unwrap();
                }
                k % 2 == 0
            })
        });
        assert_eq!(contents(&map), (vec![], 0), "shape {root}/{inner}/{leaf}");
    }
}

#[test]
fn an_owned_value_removed_by_retains_keep_leaves_the_map() {
    let map = owned_map();
    let taken = atomically(|tx| {
        let mut taken = None;
        map.retain(tx, |&k, _| {
            if taken.is_none() {
                taken = map.remove(tx, &2).unwrap();
            }
            k != 3
        })?;
        Ok(taken)
    });
    let moved: String = taken.expect("key 2 was present").into_inner();
    assert_eq!(moved, "value 2");
    let left = owned_values(&map);
    assert_eq!(left, [Some("value 1".to_string()), None, None]);
    assert_eq!(map.atomic().len(), 1);
}

#[test]
fn an_owned_neighbour_removed_by_alters_closure_leaves_the_map() {
    let map = owned_map();
    let taken = atomically(|tx| {
        let mut taken = None;
        map.alter(tx, 1, |_| {
            taken = map.remove(tx, &2).unwrap();
            (Change::Set(Owned::new("one".to_string())), ())
        })?;
        Ok(taken)
    });
    let moved: String = taken.expect("key 2 was present").into_inner();
    assert_eq!(moved, "value 2");
    let left = owned_values(&map);
    assert_eq!(
        left,
        [Some("one".to_string()), None, Some("value 3".to_string())]
    );
    assert_eq!(map.atomic().len(), 2);
}
