//! The conflict profiler charges an attempt that conflicted on several variables to each of
//! them, as `ConflictReport::aborts` documents ("counts once here and once in each of their
//! entries"): a transaction that read `a` and `b`, both changed by one other commit before its
//! own commit, shows one abort in `a`'s entry and one in `b`'s, at its call site, and one abort
//! in the report's total.
//!
//! Catches the profile recording an aborted attempt under its first variable only (the loop
//! over keys in `ProfileCell::abort` cut to `keys.iter().take(1)`).

use commute_stm::conflicts::{self, ConflictKind};
use commute_stm::{TVar, atomically};
use commute_test_support::with_watchdog;
use std::sync::Arc;

#[test]
fn an_attempt_that_conflicted_on_two_variables_is_charged_to_both() {
    with_watchdog(20, || {
        conflicts::enable();
        let a = Arc::new(TVar::new(0u64).with_label("several-a"));
        let b = Arc::new(TVar::new(0u64).with_label("several-b"));
        let out = TVar::new(0u64);
        let before = conflicts::report().aborts;
        let mut first = true;
        let aborted_line = line!() + 1;
        atomically(|tx| {
            let sum = a.read(tx)? + b.read(tx)?;
            if std::mem::take(&mut first) {
                // One other commit changes both variables this attempt read.
                let (a2, b2) = (a.clone(), b.clone());
                std::thread::spawn(move || {
                    atomically(|tx| {
                        a2.modify(tx, |x| x + 1)?;
                        b2.modify(tx, |x| x + 1)
                    })
                })
                .join()
                .unwrap();
            }
            out.write(tx, sum);
            Ok(())
        });
        let report = conflicts::report();
        assert_eq!(report.aborts - before, 1, "{report}");
        let ours: Vec<_> = report
            .entries()
            .iter()
            .filter(|(k, _)| k.aborted_at.file() == file!() && k.aborted_at.line() == aborted_line)
            .collect();
        let mut labels: Vec<_> = ours.iter().map(|(k, _)| k.var_label).collect();
        labels.sort();
        assert_eq!(labels, [Some("several-a"), Some("several-b")], "{report}");
        for (key, cost) in ours {
            assert_eq!(key.kind, ConflictKind::ReadWrite, "{report}");
            assert_eq!(cost.aborts, 1, "{report}");
        }
        assert_eq!(out.load(), 2);
    });
}
