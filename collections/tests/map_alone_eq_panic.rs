//! `atomic().insert` of a present key updates the key's leaf alone, while pinned. The docs and
//! the crate's own tests promise that what it lets go of there (the caller's new key and value
//! it does not keep) is dropped outside the pin, where a `Drop` may wait for readers (as a
//! queue's `Taken::into_inner` does, or `commute::wait_for_readers`, which panics inside a
//! pin). Before the fix, a key whose `Eq` panicked while the leaf was searched dropped the
//! caller's entry inside the pin (`RawTrie::update_alone` held it as a plain local): a `Drop`
//! that waits for readers then panicked while unwinding, and the child process aborted
//! (SIGABRT). (`a_clone_that_panics_in_an_update_alone_drops_the_copies_outside_the_pin` in
//! map_user_drops.rs covers the `Clone` path.)

use commute::TMap;
use commute_test_support::hashers::OneLeaf;
use commute_test_support::in_child_process;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

static EQ_PANICS: AtomicBool = AtomicBool::new(false);

/// A key whose `Eq` panics once armed.
#[derive(Clone, Debug)]
struct TouchyEq(u32);
impl PartialEq for TouchyEq {
    fn eq(&self, other: &Self) -> bool {
        assert!(!EQ_PANICS.load(Ordering::SeqCst), "Eq panics");
        self.0 == other.0
    }
}
impl Eq for TouchyEq {}
impl Hash for TouchyEq {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}

/// A value whose `Drop` waits for readers (allowed outside transactions and pins).
#[derive(Clone)]
struct WaitsOnDrop(bool);
impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        if self.0 {
            commute::wait_for_readers(commute::version_bound());
        }
    }
}

#[test]
fn an_eq_that_panics_in_an_update_alone_drops_the_callers_entry_outside_the_pin() {
    in_child_process(|| {
        let m: TMap<TouchyEq, WaitsOnDrop, OneLeaf> = TMap::with_hasher(OneLeaf);
        m.atomic().insert(TouchyEq(1), WaitsOnDrop(false));
        EQ_PANICS.store(true, Ordering::SeqCst);
        let update = catch_unwind(AssertUnwindSafe(|| {
            // Key 1 is present: an update alone, whose leaf search calls `Eq`.
            m.atomic().insert(TouchyEq(1), WaitsOnDrop(true));
        }));
        EQ_PANICS.store(false, Ordering::SeqCst);
        // Expected: the Eq panic, passed on. Seen: the process aborts (a panic in a
        // destructor while unwinding: `wait_for_readers` inside the pin).
        assert!(update.is_err(), "the Eq panicked");
        assert_eq!(m.atomic().len(), 1);
    });
}
