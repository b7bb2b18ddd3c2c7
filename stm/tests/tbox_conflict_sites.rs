//! A conflict on a `TBox` is charged, in `stats`' per-site counts, to the box as its creator
//! named it: by the label given with `TBox::with_label`, and by the line of `TBox::new` (the
//! caller's, not a line inside the library), as for a `TVar`.

use commute_stm::stats::AbortCause;
use commute_stm::{TBox, atomically, stats};
use commute_test_support::with_watchdog;

#[path = "common/conflict_once.rs"]
mod conflict_once;
use conflict_once::conflict_once;
use std::sync::Arc;

/// Reads `b` in a transaction whose first attempt another thread's commit to `b` aborts;
/// returns the one conflict site that abort recorded.
fn conflict_on(b: &Arc<TBox<u64>>) -> stats::ConflictSite {
    let before = stats::thread();
    let b2 = b.clone();
    conflict_once(
        |tx| Ok(*b.read(tx)?),
        move || atomically(|tx| b2.modify(tx, |x| x + 1)),
    );
    let delta = stats::thread() - before;
    assert_eq!(delta.aborts_read_validation, 1, "{delta}");
    let sites = delta.top_conflicts();
    assert_eq!(sites.len(), 1, "{delta}");
    assert_eq!(sites[0].1, 1);
    assert_eq!(sites[0].0.cause, AbortCause::ReadValidation);
    sites[0].0
}

#[test]
fn a_conflict_on_a_labelled_tbox_names_its_label_and_creation_line() {
    with_watchdog(20, || {
        let line = line!() + 1;
        let b = Arc::new(TBox::new(0u64).with_label("tbox-config"));
        let site = conflict_on(&b);
        assert_eq!(site.var_label, Some("tbox-config"));
        assert_eq!(
            (site.var_created_at.file(), site.var_created_at.line()),
            (file!(), line)
        );
        assert!(
            site.to_string()
                .starts_with("read changed on TVar \"tbox-config\""),
            "{site}"
        );
    });
}

#[test]
fn a_conflict_on_an_unlabelled_tbox_names_its_creation_line() {
    with_watchdog(20, || {
        let line = line!() + 1;
        let b = Arc::new(TBox::new(0u64));
        let site = conflict_on(&b);
        assert_eq!(site.var_label, None);
        assert_eq!(
            (site.var_created_at.file(), site.var_created_at.line()),
            (file!(), line)
        );
    });
}
