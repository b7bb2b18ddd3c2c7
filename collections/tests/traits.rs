//! std traits on the collections: `IntoIterator` for owned queues, maps and sets, `Extend`,
//! `Debug` inside transactions and of nested collections, and `TCounter::load_u64`.

use std::sync::Arc;

use commute::{TBoundedQueue, TCounter, TMap, TQueue, TSet, atomically};

#[test]
fn queue_into_iter_yields_items_front_to_back() {
    let mut q: TQueue<u32> = (1..=5).collect();
    q.atomic().pop();
    q.extend([6, 7]);
    let items: Vec<u32> = q.into_iter().collect();
    assert_eq!(items, [2, 3, 4, 5, 6, 7]);
    let empty: TQueue<u32> = TQueue::new();
    assert_eq!(empty.into_iter().count(), 0);
}

#[test]
fn queue_into_iter_hands_out_clones_and_the_queue_keeps_its_own() {
    let item = Arc::new(7u32);
    let q: TQueue<Arc<u32>> = [item.clone(), item.clone()].into_iter().collect();
    let items: Vec<Arc<u32>> = q.into_iter().collect();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| Arc::ptr_eq(i, &item)));
    drop(items);
    // The queue's own copies go with it, by a reclamation pass if another thread (another test)
    // was inside `atomically` when it was dropped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Arc::strong_count(&item) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue's copies were never dropped"
        );
        commute::reclaim_retired();
        std::thread::yield_now();
    }
}

#[test]
fn map_into_iter_yields_every_entry_once() {
    let mut m: TMap<u32, String> = (0..100).map(|k| (k, k.to_string())).collect();
    m.extend([(100, "100".to_string()), (0, "zero".to_string())]);
    let mut entries: Vec<(u32, String)> = m.into_iter().collect();
    entries.sort();
    assert_eq!(entries.len(), 101);
    assert_eq!(entries[0], (0, "zero".to_string()));
    assert!(entries[1..].iter().all(|(k, v)| *v == k.to_string()));
}

#[test]
fn set_into_iter_yields_every_element_once() {
    let mut s: TSet<u32> = (0..50).collect();
    s.extend(25..75);
    let mut elements: Vec<u32> = s.into_iter().collect();
    elements.sort_unstable();
    assert_eq!(elements, (0..75).collect::<Vec<_>>());
}

#[test]
fn bounded_queue_extend_pushes_all_in_order() {
    let mut q = TBoundedQueue::with_capacity(4);
    q.atomic().push(0);
    q.extend([1, 2, 3]);
    assert_eq!(q.atomic().iter(), [0, 1, 2, 3]);
    q.extend(std::iter::empty());
    assert_eq!(q.atomic().len(), 4);
}

#[test]
fn bounded_queue_extend_past_capacity_panics_and_pushes_nothing() {
    let mut q = TBoundedQueue::with_capacity(3);
    q.atomic().push('a');
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.extend(['b', 'c', 'd'])));
    let message = *r
        .expect_err("three items do not fit in two free places")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("capacity 3, 1 queued"), "{message}");
    assert_eq!(q.atomic().iter(), ['a']);
    // The credits of the rolled-back pushes are back: two items still fit.
    q.extend(['b', 'c']);
    assert_eq!(q.atomic().iter(), ['a', 'b', 'c']);
    assert_eq!(q.into_iter().collect::<String>(), "abc");
}

#[test]
fn counter_load_u64_reads_non_negative_counts() {
    let c = TCounter::new();
    assert_eq!(c.load_u64(), 0);
    c.atomic().add(5);
    c.atomic().decr();
    assert_eq!(c.load_u64(), 4);
}

#[test]
#[should_panic(expected = "TCounter::load_u64: the count is negative (-1)")]
fn counter_load_u64_panics_on_a_negative_count() {
    let c = TCounter::new();
    c.atomic().decr();
    c.load_u64();
}

/// A count that only went up, past `i64::MAX`, wrapped: `load_u64` says so (its message blamed
/// decrements only, and the type's doc promised a `u64` for any count that only goes up).
#[test]
#[should_panic(expected = "or it wrapped past i64::MAX")]
fn counter_load_u64_panics_on_a_count_wrapped_past_i64_max() {
    let c = TCounter::new();
    c.atomic().add(i64::MAX);
    c.atomic().incr();
    c.load_u64();
}

/// `Debug` inside a transaction shows a placeholder for every collection, as `TVar`'s does:
/// the maps, sets and queues panicked ("transactions do not nest"), so a `Debug` of a struct
/// holding one, logged inside a transaction, took the transaction down.
#[test]
fn debug_inside_a_transaction_shows_a_placeholder_and_does_not_panic() {
    let map: TMap<u32, u32> = [(1, 2)].into_iter().collect();
    let set: TSet<u32> = [3].into_iter().collect();
    let queue: TQueue<u32> = [4].into_iter().collect();
    let bounded = TBoundedQueue::with_capacity(2);
    bounded.atomic().push(5u32);
    let counter = TCounter::with_shards(1);
    let shown = atomically(|_| Ok(format!("{map:?} {set:?} {queue:?} {bounded:?} {counter:?}")));
    assert_eq!(
        shown,
        "TMap(<in a transaction>) TSet(<in a transaction>) TQueue(<in a transaction>) \
         TBoundedQueue { capacity: 2, items: <in a transaction> } \
         TCounter { value: <in a transaction>, shards: 1 }"
    );
    assert_eq!(
        format!("{map:?} {set:?} {queue:?} {bounded:?}"),
        "{1: 2} {3} [4] TBoundedQueue { capacity: 2, items: [5] }"
    );
}

/// A map's values are formatted in the map's snapshot, and the collections among them read it:
/// a map of counters shows the counts (it showed `<in a transaction>`), a map of maps, sets and
/// queues shows theirs (it panicked: the inner `Debug` started a transaction inside the
/// outer's). (A reviewer's test, for the first two.)
#[test]
fn a_maps_debug_shows_the_collections_among_its_values() {
    let counters: TMap<u32, Arc<TCounter>> = TMap::new();
    let hits = Arc::new(TCounter::with_shards(2));
    hits.atomic().add(42);
    counters.atomic().insert(1, hits);
    assert_eq!(
        format!("{counters:?}"),
        "{1: TCounter { value: 42, shards: 2 }}"
    );

    let inner: TMap<u32, u32> = [(7, 8)].into_iter().collect();
    let maps: TMap<u32, Arc<TMap<u32, u32>>> = [(1, Arc::new(inner))].into_iter().collect();
    assert_eq!(format!("{maps:?}"), "{1: {7: 8}}");

    let sets: TMap<u32, Arc<TSet<u32>>> = TMap::new();
    sets.atomic().insert(1, Arc::new([9].into_iter().collect()));
    let queues: TMap<u32, Arc<TQueue<u32>>> = TMap::new();
    queues
        .atomic()
        .insert(2, Arc::new([10, 11].into_iter().collect()));
    assert_eq!(format!("{sets:?} {queues:?}"), "{1: {9}} {2: [10, 11]}");
    // Outside the map's formatting, they take snapshots of their own again.
    assert_eq!(
        format!("{:?}", counters.atomic().get(&1).unwrap()),
        "TCounter { value: 42, shards: 2 }"
    );
}
