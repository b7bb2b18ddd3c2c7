//! Items whose own `Debug` runs a transaction. `TQueue`, `TSet` and `TBox` format them after
//! their snapshot (or in a pin) and show them. `TMap` formats its values inside its snapshot
//! (so that collections among them show their contents there): such a value panics, as its
//! `Debug` documents ("transactions do not nest"), and the map's one-call `iter` copies format
//! instead.

use commute::{TBox, TMap, TQueue, TSet, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// An item whose `Debug` reads with a transaction of its own.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Item(u32);

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = atomically(|_tx| Ok(self.0));
        write!(f, "Item({n})")
    }
}

#[test]
fn queues_sets_and_boxes_show_such_items() {
    let q = TQueue::new();
    q.atomic().push(Item(1));
    assert_eq!(format!("{q:?}"), "[Item(1)]");
    let s: TSet<Item> = TSet::new();
    s.atomic().insert(Item(2));
    assert_eq!(format!("{s:?}"), "{Item(2)}");
    let b = TBox::new(Item(3));
    assert_eq!(format!("{b:?}"), "TBox { value: Item(3) }");
}

#[test]
fn a_map_panics_as_documented_and_its_copies_show_them() {
    let m: TMap<u32, Arc<Item>> = TMap::new();
    m.atomic().insert(1, Arc::new(Item(1)));
    let refused = catch_unwind(AssertUnwindSafe(|| format!("{m:?}"))).expect_err("documented");
    let message = commute_test_support::panic_message(&*refused);
    assert!(message.contains("transactions do not nest"), "{message}");
    assert_eq!(format!("{:?}", m.atomic().iter()), "[(1, Item(1))]");
    // The map is as it was: nothing of the refused snapshot stays.
    assert_eq!(m.atomic().get(&1).as_deref(), Some(&Item(1)));
}
