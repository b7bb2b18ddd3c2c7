//! The conflict profiler names a collection's variables by the collection's label and the
//! user's creation site (README "Finding conflicts": "It names the variable (its label ... or
//! its creation site)"), whichever code of the library makes them, and whenever.
//!
//! A map that has grown splits its leaves into new slots: a conflict on one of those named a
//! line inside the library (`find_conflicts` printed `TVar created at
//! collections/src/map/raw.rs:953:29` for its unlabelled log map, and the labelled `"sessions"`
//! map twice, once at the example's line and once at `raw.rs`). A queue's ends and a bounded
//! queue's credits were made by helpers that `#[track_caller]` did not reach.
//!
//! One test function: the profiler is process-wide, and this file is its own process.

use std::sync::Arc;

use commute::StmResult;
use commute::conflicts;
use commute::{TBoundedQueue, TMap, TQueue, Transaction, atomically};
use commute_test_support::with_watchdog;

/// Runs `mine` in a transaction whose first attempt has `theirs` commit on another thread
/// between `mine`'s reads and its commit, so that the attempt aborts on what both touch.
/// Returns the labels and sites the conflict report names.
fn conflict_between(
    mine: impl Fn(&Transaction) -> StmResult<()>,
    theirs: impl FnOnce() + Send + 'static,
) -> Vec<(Option<&'static str>, String)> {
    conflicts::reset();
    let mut theirs = Some(theirs);
    atomically(|tx| {
        mine(tx)?;
        if let Some(theirs) = theirs.take() {
            std::thread::spawn(theirs).join().unwrap();
        }
        Ok(())
    });
    let report = conflicts::report();
    assert!(report.aborts >= 1, "the planted conflict aborted: {report}");
    report
        .entries()
        .iter()
        .filter_map(|(k, _)| {
            k.var_created_at
                .map(|site| (k.var_label, format!("{}:{}", site.file(), site.line())))
        })
        .collect()
}

/// A read of `key` and a write of it, against another thread's write of it.
fn map_conflict(map: &Arc<TMap<u64, u64>>, key: u64) -> Vec<(Option<&'static str>, String)> {
    let other = map.clone();
    conflict_between(
        |tx| {
            let v = map.get(tx, &key)?.unwrap_or(0);
            map.insert(tx, key, v + 1)?;
            Ok(())
        },
        move || {
            other.atomic().insert(key, 1_000_000);
        },
    )
}

/// Checks that every site in `sites` is `line` of this file, with `label`.
fn check(
    wrong: &mut Vec<String>,
    what: &str,
    sites: &[(Option<&'static str>, String)],
    label: Option<&str>,
    line: u32,
) {
    let expected = format!("{}:{line}", file!());
    if sites.is_empty() || sites.iter().any(|(l, s)| *s != expected || *l != label) {
        wrong.push(format!(
            "{what} created at {expected} ({label:?}): the report names {sites:?}"
        ));
    }
}

#[test]
fn conflicts_name_the_users_collection() {
    with_watchdog(60, || {
        conflicts::enable();
        let mut wrong = Vec::new();

        // The control: a map that has not grown is named by the user's site.
        let small_line = line!() + 1;
        let small: Arc<TMap<u64, u64>> = Arc::new(TMap::new());
        small.atomic().insert(7, 7);
        check(
            &mut wrong,
            "a small map",
            &map_conflict(&small, 7),
            None,
            small_line,
        );

        let plain_line = line!() + 1;
        let plain: Arc<TMap<u64, u64>> = Arc::new(TMap::new());
        let labelled_line = line!() + 1;
        let labelled: Arc<TMap<u64, u64>> = Arc::new(TMap::new().with_label("sessions"));
        // Enough keys that every root slot's leaf has split into new slots.
        for k in 0..20_000 {
            plain.atomic().insert(k, k);
            labelled.atomic().insert(k, k);
        }
        let sites = map_conflict(&plain, 12_345);
        check(&mut wrong, "a grown map", &sites, None, plain_line);
        let sites = map_conflict(&labelled, 12_345);
        check(
            &mut wrong,
            "a grown map",
            &sites,
            Some("sessions"),
            labelled_line,
        );

        // Two pops of the one item: both read and write the head.
        let queue_line = line!() + 1;
        let queue: Arc<TQueue<u64>> = Arc::new(TQueue::new());
        queue.atomic().push(1);
        let other = queue.clone();
        let sites = conflict_between(
            |tx| queue.pop(tx).map(drop),
            move || assert_eq!(other.atomic().pop(), Some(1)),
        );
        check(&mut wrong, "a queue", &sites, None, queue_line);

        // Two pushes of a bounded queue of one place: both take its one credit.
        let bounded_line = line!() + 1;
        let bounded: Arc<TBoundedQueue<u64>> = Arc::new(TBoundedQueue::with_capacity(1));
        let other = bounded.clone();
        let sites = conflict_between(
            |tx| bounded.try_push(tx, 1).map(drop),
            move || assert_eq!(other.atomic().try_push(2), Ok(())),
        );
        check(&mut wrong, "a bounded queue", &sites, None, bounded_line);

        conflicts::disable();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    });
}
