//! `TSet::insert` documents that "a present element is left as it is and nothing is written":
//! every form of an insert (in a transaction, one-call, `Extend`) keeps the element already
//! stored when an equal one comes again, as std's `HashSet::insert` does, and drops the copy
//! it does not keep. (The map differs on purpose: an update stores the key it was given.)
//!
//! The elements here compare by `id` only; `tag` tells which copy the set holds.

use commute::{TSet, atomically};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
