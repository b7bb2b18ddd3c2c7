//! `TSet::from_iter` and `TSet::extend` agree on duplicate elements: both keep the first of
//! several equal elements, as std's `HashSet` does (`TSet::insert` documents "a present element
//! is left as it is").
//!
//! `from_iter` went through `TMap::from_iter` (built without transactions), where a later
//! duplicate key replaces the earlier entry, key included: the set it built held the *last* of
//! the equal elements, so `iter.collect::<TSet<_>>()` and `TSet::new()` + `extend(iter)` gave
//! different sets for the same input. (A reviewer's test; it failed before the fix.)

use commute::TSet;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

#[derive(Clone, Debug)]
struct Tagged {
    id: u32,
    tag: &'static str,
}

impl PartialEq for Tagged {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Tagged {}

impl Hash for Tagged {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

fn tags(items: impl IntoIterator<Item = Tagged>) -> Vec<(u32, &'static str)> {
    let mut tags: Vec<_> = items.into_iter().map(|e| (e.id, e.tag)).collect();
    tags.sort();
    tags
}

fn input() -> Vec<Tagged> {
    vec![
        Tagged {
            id: 1,
            tag: "first",
        },
        Tagged {
            id: 2,
            tag: "first",
        },
        Tagged {
            id: 1,
            tag: "second",
        },
    ]
}

#[test]
fn extend_keeps_the_first_of_equal_elements_as_std_does() {
    let std_set: HashSet<Tagged> = input().into_iter().collect();
    let mut extended = TSet::new();
    extended.extend(input());
    assert_eq!(tags(extended.atomic().iter()), tags(std_set));
    assert_eq!(tags(extended.atomic().iter()), [(1, "first"), (2, "first")]);
}

#[test]
fn from_iter_keeps_the_same_element_as_extend() {
    let collected: TSet<Tagged> = input().into_iter().collect();
    let mut extended = TSet::new();
    extended.extend(input());
    assert_eq!(
        tags(collected.atomic().iter()),
        tags(extended.atomic().iter()),
        "collect() and extend() of the same elements hold different copies"
    );
}

/// The duplicates that `collect` leaves out are dropped, once each, and the map built the same
/// way keeps the last value (and key) of a key, as `TMap::insert` does.
#[test]
fn collect_drops_the_duplicates_it_leaves_out() {
    use commute::TMap;
    use commute_test_support::Counted;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let live = Arc::new(AtomicUsize::new(0));
    let set: TSet<u64> = [3, 1, 3, 2, 1].into_iter().collect();
    assert_eq!(set.atomic().len(), 3);
    let map: TMap<u64, Arc<Counted>> = (0..6u64)
        .map(|i| (i % 2, Arc::new(Counted::new(i, &live))))
        .collect();
    assert_eq!(
        live.load(Ordering::Relaxed),
        2,
        "the replaced values were dropped"
    );
    let mut kept: Vec<_> = map
        .atomic()
        .iter()
        .into_iter()
        .map(|(k, v)| (k, v.value()))
        .collect();
    kept.sort();
    assert_eq!(kept, [(0, 4), (1, 5)]);
    drop(map);
    commute::reclaim_retired();
    assert_eq!(live.load(Ordering::Relaxed), 0);
}
