//! `TMap`'s and `TSet`'s `FromIterator` is documented to work inside a transaction ("Builds the
//! map directly, without transactions (so it works inside one too)"), and the map's docs
//! promise that its keys and values are "never [dropped] inside a transaction, so their `Drop`
//! may use commute". Before the fix, collecting a map inside a transaction dropped the copies of
//! every leaf it rebuilt (and the earlier value of a duplicate key) right there, inside the
//! transaction (`RawTrie::insert_owned` freed the old leaf at once): the first two tests counted
//! such drops, and the third panicked in a value's `Drop` that uses commute.

use commute::{TCounter, TMap, TSet, atomically, in_transaction};
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A value whose `Drop` notes whether it ran inside a transaction.
struct Noted {
    id: u32,
    inside: Arc<AtomicUsize>,
}

impl Clone for Noted {
    fn clone(&self) -> Self {
        Noted {
            id: self.id,
            inside: self.inside.clone(),
        }
    }
}
impl PartialEq for Noted {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
    }
}
impl Eq for Noted {}
impl Hash for Noted {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.id.hash(h)
    }
}
impl Drop for Noted {
    fn drop(&mut self) {
        if in_transaction() {
            self.inside.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_map_collected_inside_a_transaction_drops_no_value_inside_it() {
    let inside = Arc::new(AtomicUsize::new(0));
    let i2 = inside.clone();
    let len = atomically(move |tx| {
        let m: TMap<u32, Noted> = (0..20)
            .map(|k| {
                (
                    k,
                    Noted {
                        id: k,
                        inside: i2.clone(),
                    },
                )
            })
            .collect();
        m.len(tx)
    });
    assert_eq!(len, 20);
    assert_eq!(
        inside.load(Ordering::SeqCst),
        0,
        "values of the map were dropped inside the transaction"
    );
}

#[test]
fn a_set_collected_inside_a_transaction_drops_no_element_inside_it() {
    let inside = Arc::new(AtomicUsize::new(0));
    let i2 = inside.clone();
    atomically(move |_| {
        let s: TSet<Noted> = (0..20)
            .map(|k| Noted {
                id: k,
                inside: i2.clone(),
            })
            .collect();
        drop(s);
        Ok(())
    });
    assert_eq!(
        inside.load(Ordering::SeqCst),
        0,
        "elements of the set were dropped inside the transaction"
    );
}

/// The consequence the docs rule out: a value whose `Drop` uses commute (as documented to be
/// allowed) makes the collect panic.
#[derive(Clone)]
struct Counts(Arc<TCounter>);
impl Drop for Counts {
    fn drop(&mut self) {
        self.0.atomic().incr();
    }
}

#[test]
fn collecting_values_whose_drop_uses_commute_inside_a_transaction_does_not_panic() {
    let drops = Arc::new(TCounter::new());
    let d2 = drops.clone();
    let r = catch_unwind(AssertUnwindSafe(move || {
        atomically(move |tx| {
            let m: TMap<u32, Counts> = (0..20).map(|k| (k, Counts(d2.clone()))).collect();
            m.len(tx)
        })
    }));
    assert!(r.is_ok(), "collect inside a transaction panicked");
}
