//! `TSet::insert` documents that "a present element is left as it is and nothing is written":
//! every form of an insert (in a transaction, one-call, `Extend`) keeps the element already
//! stored when an equal one comes again, as std's `HashSet::insert` does, and drops the copy
//! it does not keep. (The map differs on purpose: an update stores the key it was given.)
//!
//!
//! `TSet::from_iter` agrees: it keeps the first of several equal elements, as `extend` and
//! std's `HashSet` do. It went through `TMap::from_iter`, where a later duplicate key replaces
//! the earlier entry, key included, so that `collect()` and `extend()` of one input held
//! different elements (a reviewer's test; it failed before the fix).
//!
//! The elements here compare by `id` only; `tag` tells which copy the set holds.

mod common;

use common::Tagged;
use commute::{TSet, atomically};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn tags(set: &TSet<Tagged>) -> Vec<(u32, &'static str)> {
    let mut tags: Vec<_> = set
        .atomic()
        .iter()
        .into_iter()
        .map(|e| (e.id, e.tag))
        .collect();
    tags.sort();
    tags
}

fn t(id: u32, tag: &'static str) -> Tagged {
    Tagged { id, tag }
}

#[test]
fn every_insert_form_keeps_the_element_already_there() {
    let set = TSet::new();
    assert!(set.atomic().insert(t(1, "first")));
    assert!(atomically(|tx| set.insert(tx, t(2, "first"))));

    // In a transaction.
    assert!(!atomically(|tx| set.insert(tx, t(1, "tx"))));
    // One call.
    assert!(!set.atomic().insert(t(2, "one-call")));
    assert_eq!(tags(&set), [(1, "first"), (2, "first")]);

    // Extend, with present elements and a new one (in several leaves' worth of elements).
    let mut set = set;
    set.extend([t(1, "extend"), t(3, "extend"), t(2, "extend")]);
    set.extend((10..60).map(|id| t(id, "bulk")));
    set.extend((10..60).map(|id| t(id, "again")));
    let all = tags(&set);
    assert_eq!(all.len(), 53);
    assert_eq!(&all[..3], [(1, "first"), (2, "first"), (3, "extend")]);
    assert!(all[3..].iter().all(|&(_, tag)| tag == "bulk"), "{all:?}");
    assert_eq!(set.atomic().len(), 53);
}

/// An element that counts its drops.
#[derive(Debug)]
struct Counted {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted {
            id: self.id,
            drops: self.drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Counted {}

impl Hash for Counted {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

#[test]
fn present_elements_are_not_rewritten_so_the_stored_copy_is_never_dropped() {
    // The stored copy of a present element is left in place: re-inserting it (in any form)
    // never retires it, so its drop counter stays at zero while the set lives.
    let stored = Arc::new(AtomicUsize::new(0));
    let others = Arc::new(AtomicUsize::new(0));
    let mut set = TSet::new();
    assert!(set.atomic().insert(Counted {
        id: 1,
        drops: stored.clone()
    }));
    // `insert` clones the value for its transaction: the clone shares `stored`'s counter;
    // count what the set holds from now on.
    commute::reclaim_retired();
    let base = stored.load(Ordering::Relaxed);
    let again = || Counted {
        id: 1,
        drops: others.clone(),
    };
    for _ in 0..20 {
        assert!(!set.atomic().insert(again()));
        assert!(!atomically(|tx| set.insert(tx, again())));
        set.extend([again()]);
    }
    for _ in 0..64 {
        commute::reclaim_retired();
    }
    assert_eq!(
        stored.load(Ordering::Relaxed),
        base,
        "the stored element was replaced (and the old copy dropped) by an insert of an equal one"
    );
    let held: Vec<Counted> = set.atomic().iter();
    assert!(
        Arc::ptr_eq(&held[0].drops, &stored),
        "the set holds the first copy"
    );
}

/// Two copies of element 1 (the first tagged "first") and one of element 2.
fn with_duplicates() -> Vec<Tagged> {
    vec![t(1, "first"), t(2, "first"), t(1, "second")]
}

#[test]
fn collect_and_extend_keep_the_first_of_equal_elements_as_std_does() {
    let std_set: std::collections::HashSet<Tagged> = with_duplicates().into_iter().collect();
    let mut std_tags: Vec<_> = std_set.into_iter().map(|e| (e.id, e.tag)).collect();
    std_tags.sort();
    let collected: TSet<Tagged> = with_duplicates().into_iter().collect();
    let mut extended = TSet::new();
    extended.extend(with_duplicates());
    assert_eq!(std_tags, [(1, "first"), (2, "first")]);
    assert_eq!(tags(&extended), std_tags, "extend()");
    assert_eq!(tags(&collected), std_tags, "collect()");
}

/// The duplicates that `collect` leaves out are dropped, once each, and the map built the same
/// way keeps the last value (and key) of a key, as `TMap::insert` does.
#[test]
fn collect_drops_the_duplicates_it_leaves_out() {
    use commute::TMap;
    use commute_test_support::Counted;

    let set: TSet<u64> = [3, 1, 3, 2, 1].into_iter().collect();
    assert_eq!(set.atomic().len(), 3);
    let live = Arc::new(AtomicUsize::new(0));
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
    // Freed once no transaction running at the drop remains (the other tests run some).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while live.load(Ordering::Relaxed) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the map's values leaked"
        );
        commute::reclaim_retired();
        std::thread::yield_now();
    }
}
