//! The conflict profiler. One test function: the profiler is process-wide, and this file is its
//! own process, so nothing else runs transactions meanwhile.

use commute_stm::conflicts::{self, ConflictKind};
use commute_stm::{TVar, atomically, stats};
use commute_test_support::with_watchdog;
use std::sync::{Arc, Barrier};

/// Commits a write to `v` from another thread; returns the line of its `atomically` call.
fn write_from_another_thread(v: &Arc<TVar<u64>>) -> u32 {
    let v = v.clone();
    std::thread::spawn(move || {
        let line = line!() + 1;
        atomically(|tx| v.modify(tx, |x| x + 1));
        line
    })
    .join()
    .unwrap()
}

#[test]
fn the_profiler_names_the_hot_variable_and_loses_no_record() {
    with_watchdog(20, || {
        conflicts::enable();
        conflicts::reset();

        // 1. A planted hot variable: every first attempt reads it, then another transaction writes it.
        let hot = Arc::new(TVar::new(0u64).with_label("hot"));
        let cold = TVar::new(0u64);
        let mut writer_line = 0;
        let mut aborted_line = 0;
        for _ in 0..5 {
            let mut first = true;
            aborted_line = line!() + 1;
            atomically(|tx| {
                let h = hot.read(tx)?;
                if std::mem::take(&mut first) {
                    writer_line = write_from_another_thread(&hot);
                }
                cold.write(tx, h);
                Ok(())
            });
        }
        let report = conflicts::report();
        let (key, cost) = report.entries()[0];
        assert_eq!(key.kind, ConflictKind::ReadWrite);
        assert_eq!(key.var_label, Some("hot"));
        assert_eq!(key.var_created_at.unwrap().line(), hot.created_at().line());
        assert_eq!(
            (key.aborted_at.file(), key.aborted_at.line()),
            (file!(), aborted_line)
        );
        assert_eq!(key.written_by.map(|w| w.line()), Some(writer_line));
        assert_eq!(cost.aborts, 5);
        assert!(!cost.time_lost.is_zero());
        let text = report.to_string();
        let first_line = text.lines().nth(1).unwrap();
        assert!(
            first_line.contains("in 5 aborts (100%): TVar \"hot\""),
            "{text}"
        );
        assert!(
            first_line.contains(&format!("written by {}:{writer_line}", file!())),
            "{text}"
        );
        let json = report.to_json();
        assert!(json.contains("\"label\":\"hot\""), "{json}");
        assert!(json.contains("\"kind\":\"read-write\""), "{json}");

        // 2. A read-modify-write that fails its commit's validation is a write-write conflict,
        // whatever the size of the write set (past 8 entries, a commit drops the set's index).
        for (label, more) in [("rmw-small", 3), ("rmw-large", 12)] {
            conflicts::reset();
            let x = Arc::new(TVar::new(0u64).with_label(label));
            let others: Vec<TVar<u64>> = (0..more).map(|_| TVar::new(0)).collect();
            let mut first = true;
            atomically(|tx| {
                let v = x.read(tx)?;
                if std::mem::take(&mut first) {
                    write_from_another_thread(&x);
                }
                x.write(tx, v + 1);
                for o in &others {
                    o.write(tx, 1);
                }
                Ok(())
            });
            assert_eq!(x.load(), 2);
            let kinds: Vec<ConflictKind> = conflicts::report()
                .entries()
                .iter()
                .filter(|(k, _)| k.var_label == Some(label))
                .map(|(k, _)| k.kind)
                .collect();
            assert_eq!(kinds, [ConflictKind::WriteWrite], "{label}");
        }

        // 3. Under concurrency the profiler's counts equal the core's statistics.
        conflicts::reset();
        assert_eq!(conflicts::report().aborts, 0);
        let counter = Arc::new(TVar::new(0u64).with_label("counter"));
        let barrier = Arc::new(Barrier::new(2));
        let deltas: Vec<_> = (0..2)
            .map(|_| {
                let (counter, barrier) = (counter.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let before = stats::thread();
                    for _ in 0..30_000 {
                        atomically(|tx| counter.modify(tx, |x| x + 1));
                    }
                    stats::thread() - before
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let total: stats::StatsSnapshot = deltas.into_iter().sum();
        let report = conflicts::report();
        assert_eq!(report.commits, total.commits);
        assert_eq!(report.aborts, total.aborts() + total.retries);
        eprintln!("{report}");
        if report.aborts > 0 {
            let (key, _) = report.entries()[0];
            assert_eq!(key.var_label, Some("counter"));
            // A read-modify-write loses either at validation (write-write) or, more rarely, to a
            // lock held by the other committer (lock busy): which one comes first is timing.
            assert!(
                matches!(key.kind, ConflictKind::WriteWrite | ConflictKind::LockBusy),
                "{key:?}"
            );
        }
        assert_eq!(counter.load(), 60_000);

        // 4. Off: nothing is recorded.
        conflicts::disable();
        conflicts::reset();
        atomically(|tx| counter.modify(tx, |x| x + 1));
        assert_eq!(conflicts::report().commits, 0);
    });
}
