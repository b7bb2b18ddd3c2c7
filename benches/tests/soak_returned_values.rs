//! The soak's writes of a worker's own map and set keys (`write_map_key`, `write_set_key`) check
//! what `insert` and `remove` hand back against the worker's log: they pass a map and a set that
//! agree with the log, and find a key whose value or presence the log does not account for.

use commute::{TMap, TSet, atomically};
use commute_benches::soak::monitor::Monitor;
use commute_benches::soak::shared::{
    MAP_SPREAD, MapWrite, make_value, write_map_key, write_set_key,
};
use commute_test_support::with_watchdog;

/// Runs `write` of `key` on `map` as a worker whose log holds `logged`; returns the messages.
fn map_write(
    map: &TMap<u64, Vec<u64>>,
    key: u64,
    write: MapWrite,
    logged: Option<u64>,
) -> Vec<String> {
    let monitor = Monitor::new(1);
    atomically(|tx| write_map_key(tx, map, key, write, logged, &monitor, 0));
    monitor.messages()
}

/// Runs an insert (or a removal) of `key` on `set` as a worker whose log says `logged`;
/// returns the checks made and the messages.
fn set_write(set: &TSet<u64>, key: u64, insert: bool, logged: bool) -> (u64, Vec<String>) {
    let monitor = Monitor::new(1);
    atomically(|tx| write_set_key(tx, set, key, insert, logged, &monitor, 0));
    (monitor.checks(), monitor.messages())
}

#[test]
fn map_writes_that_agree_with_the_log_pass_and_others_are_found() {
    with_watchdog(20, || {
        let none: Vec<String> = Vec::new();
        let map = TMap::new();
        // Each write as the log, kept up to date, says: absent, 7, 8 after a bump, absent.
        assert_eq!(map_write(&map, 3, MapWrite::Insert(7), None), none);
        assert_eq!(map_write(&map, 3, MapWrite::Bump, Some(7)), none);
        assert_eq!(map.atomic().get(&3), Some(make_value(8, MAP_SPREAD)));
        assert_eq!(map_write(&map, 3, MapWrite::Insert(9), Some(8)), none);
        assert_eq!(map_write(&map, 3, MapWrite::Remove, Some(9)), none);
        assert_eq!(map.atomic().get(&3), None);
        assert_eq!(map_write(&map, 3, MapWrite::Remove, None), none);

        // A value the log does not hold, found by the removal that hands it back.
        map.atomic().insert(4, make_value(5, MAP_SPREAD));
        assert_eq!(
            map_write(&map, 4, MapWrite::Remove, None),
            ["map key 4: Remove handed back Some([5, 5, 5]), the log says None"]
        );
        // A value the log holds but the map lost, found by the insert that replaces nothing.
        assert_eq!(
            map_write(&map, 5, MapWrite::Insert(1), Some(2)),
            ["map key 5: Insert(1) handed back None, the log says Some([2, 2, 2])"]
        );
    });
}

#[test]
fn set_writes_that_agree_with_the_log_pass_and_others_are_found() {
    with_watchdog(20, || {
        let set = TSet::new();
        for (insert, logged) in [(true, false), (true, true), (false, true), (false, false)] {
            assert_eq!(
                set_write(&set, 6, insert, logged),
                (2, Vec::<String>::new()),
                "insert {insert}, logged {logged}"
            );
        }
        // A key the log does not hold: present, and the removal finds it.
        set.atomic().insert(7);
        assert_eq!(
            set_write(&set, 7, false, false).1,
            [
                "set key 7: present true, the log says false",
                "set key 7: remove returned true, the log says present false",
            ]
        );
    });
}
