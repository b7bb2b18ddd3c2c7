//! Every cell of the suite runs, briefly, at 1 and 2 threads: structures that lose updates or
//! money fail their checks here (the runner panics on a failed check).

use commute_test_support::with_watchdog;
use std::time::Duration;

use commute_benches::report::json;
use commute_benches::suite::{WORKLOADS, entries, select};

#[test]
fn every_entry_runs_and_passes_its_check() {
    with_watchdog(60, || {
        let mut cells = Vec::new();
        for entry in entries() {
            for threads in [1, 2] {
                let cell = entry.run(threads, Duration::from_millis(2));
                assert_eq!(cell.threads, threads);
                assert!(cell.seconds > 0.0, "{entry:?}");
                assert_eq!(cell.commits.is_some(), entry.stm, "{entry:?}");
                if entry.workload != "queue" {
                    assert!(cell.ops > 0, "{entry:?} did nothing");
                }
                assert_eq!(
                    cell.long_read.is_some(),
                    entry.workload == "long-read",
                    "{entry:?}"
                );
                if let Some(reader) = cell.long_read {
                    assert!(
                        reader.reads >= 1 && reader.attempts >= reader.reads,
                        "{entry:?}"
                    );
                    assert!(
                        reader.alone_ops > 0,
                        "{entry:?}: no writes without the reader"
                    );
                    if entry.structure != "DashMap" {
                        assert_eq!(reader.inexact, 0, "{entry:?}: one consistent state");
                    }
                }
                if let Some(commits) = cell.commits {
                    assert!(
                        commits >= cell.ops,
                        "{entry:?}: every operation is a commit"
                    );
                }
                cells.push(cell);
            }
        }
        let text = json(&cells);
        assert_eq!(text.matches("\"workload\"").count(), cells.len());
    });
}

#[test]
fn every_workload_has_stm_and_lock_based_structures() {
    // `pool-event` compares commute's pool with itself on naive structures only: the pool is
    // what it measures. `long-read` compares `TMap`'s snapshot reads with locked maps: the peers
    // have no map to walk.
    for (workload, _) in WORKLOADS.iter().filter(|(w, _)| *w != "pool-event") {
        let here = select(&[workload.to_string()], &[]).unwrap();
        assert!(here.iter().any(|e| e.stm), "{workload}");
        assert!(here.iter().any(|e| !e.stm), "{workload}");
        if *workload != "long-read" {
            assert!(here.iter().any(|e| e.structure == "fast-stm"), "{workload}");
        }
    }
    // A set is selected by any of its parts.
    let event = select(&["event".to_string()], &["naive-map".to_string()]).unwrap();
    assert_eq!(event.len(), 1);
    assert_eq!(event[0].structure, "naive");
}
