//! The soak suite itself: every injected fault leaves no partial effect, a short soak with a
//! high fault rate finds nothing wrong, and the binary keeps its output and exit-status
//! contract.

use commute_test_support::output_within;
use commute_test_support::with_watchdog;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::rc::Rc;

use commute::{TVar, atomically, in_transaction};
use commute_benches::soak::args::SoakOptions;
use commute_benches::soak::fault::{
    Fault, FaultPoint, atomically_with_fault, injected_point, install_quiet_hook,
};
use commute_benches::soak::run;

/// Held by the tests that run many transactions in this process: the in-process soak's long
/// transactions pin old versions for as long as they run, which would hold back the reclamation
/// that `values_retired_by_exited_threads_are_reclaimed_without_help` measures.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A transfer with `point` planted in it, on fresh variables: only a panic in a commit hook
/// leaves the transfer (and the hooks registered before it) in place.
#[test]
fn every_fault_point_panics_where_planned_and_leaves_no_partial_effect() {
    with_watchdog(20, || {
        install_quiet_hook();
        for point in FaultPoint::ALL {
            let (a, b, sink) = (TVar::new(100i64), TVar::new(0i64), TVar::new(7u64));
            let logged = Rc::new(Cell::new(false));
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                atomically_with_fault(Fault::at(Some(point)), &sink, |tx, fault| {
                    let x = a.read(tx)?;
                    a.write(tx, x - 10);
                    fault.between_writes();
                    let y = b.read(tx)?;
                    b.write(tx, y + 10);
                    let logged = logged.clone();
                    tx.on_commit(move || logged.set(true));
                    Ok(())
                })
            }));
            let payload = outcome.expect_err("a planted fault always fires here");
            assert_eq!(injected_point(&*payload), Some(point));
            assert!(!in_transaction());
            let committed = point == FaultPoint::InOnCommit;
            let want = if committed { (90, 10) } else { (100, 0) };
            assert_eq!((a.load(), b.load()), want, "{point:?}");
            assert_eq!(logged.get(), committed, "{point:?}: the logging hook");
            assert_eq!(
                sink.load(),
                7,
                "{point:?}: the panicking commute was applied"
            );
            // Nothing stays locked: the same variables commit at once.
            atomically(|tx| {
                a.write(tx, 0);
                b.write(tx, 0);
                sink.add(tx, 1);
                Ok(())
            });
            assert_eq!((a.load(), b.load(), sink.load()), (0, 0, 8));
        }
    });
}

#[test]
fn no_fault_runs_the_body_once_and_commits() {
    let (v, sink) = (TVar::new(1u32), TVar::new(0u64));
    let runs = Cell::new(0);
    let got = atomically_with_fault(Fault::NONE, &sink, |tx, fault| {
        runs.set(runs.get() + 1);
        v.write(tx, 2);
        fault.between_writes();
        v.read(tx)
    });
    assert_eq!((got, v.load(), runs.get()), (2, 2, 1));
}

#[test]
fn a_short_soak_with_many_faults_finds_no_violation() {
    with_watchdog(60, || {
        let _alone = HEAVY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut opts = SoakOptions::defaults(2);
        opts.seconds = 1;
        opts.threads = 3;
        opts.fault_rate = 0.2;
        opts.long_vars = 300;
        opts.flood_keys = 0;
        opts.memory_check = false;
        let report = run(&opts);
        assert_eq!(report.violations, 0, "{:#?}", report.messages);
        assert!(report.transactions > 0 && report.checks > 0);
        for point in FaultPoint::ALL {
            assert!(report.faults[point.index()] > 0, "no {point:?} fault fired");
        }
        let long = report.long.expect("the long-transaction thread ran");
        assert!(long.committed > 0);
        assert!(long.max_attempts <= commute::IRREVOCABLE_AFTER + 1);
    });
}

#[test]
fn the_binary_prints_the_summary_line_and_exits_by_its_verdict() {
    let soak = env!("CARGO_BIN_EXE_soak");
    let help = output_within(Command::new(soak).arg("--help"), 20);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--fault-rate F"));

    let bad = output_within(Command::new(soak).arg("--fault-rate=2"), 20);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`2`"));

    let run = output_within(
        Command::new(soak)
            .args([
                "--seconds",
                "1",
                "--threads",
                "2",
                "--seed",
                "7",
                "--fault-rate",
                "0.05",
            ])
            .args([
                "--long-vars",
                "200",
                "--flood-keys",
                "0",
                "--no-memory-check",
            ]),
        60,
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let last = stdout.lines().last().unwrap();
    let words: Vec<&str> = last.split(' ').collect();
    assert_eq!(
        (words[0], words[2], words[4], words[7], words[9]),
        ("soak:", "transactions,", "aborts,", "checks,", "violations"),
        "{last}"
    );
    assert_eq!(words[8], "0", "{last}");
    assert!(words[1].parse::<u64>().unwrap() > 0);
}

/// Values retired by a thread that exits while another thread is still pinned go to the core's
/// global orphan list (`ThreadCtx::drop` in stm/src/internal/thread.rs), and nothing but the
/// hidden `commute::reclaim_retired()` ever reclaims that list: batch reclamation only scans
/// the retiring thread's own list. A program that starts short-lived threads beside a busy
/// reader therefore keeps every exited thread's last retirements for ever (about 30 KiB per
/// thread of 1 KiB values here; 90 MiB after 3000 threads in a longer run). The soak does not
/// show it because its threads live for the whole run and it calls `reclaim_retired()` before
/// its heap check. Fixed: batch reclamation now sweeps the orphan list too. What may stay live is
/// a backlog of a few reclamation batches (16 values, or 4 per thread slot, each) held back by the reader's pins, so
/// the bound is 512, where the leak left about 7,400 (the reader is stopped before the final
/// batches, so that a reader preempted while pinned cannot hold everything back).
#[test]
fn values_retired_by_exited_threads_are_reclaimed_without_help() {
    with_watchdog(60, || {
        use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
        use std::time::{Duration, Instant};

        let _alone = HEAVY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);

        static LIVE: AtomicI64 = AtomicI64::new(0);
        struct Payload(#[allow(dead_code)] [u8; 1024]);
        impl Payload {
            fn new(byte: u8) -> Self {
                LIVE.fetch_add(1, Ordering::Relaxed);
                Payload([byte; 1024])
            }
        }
        impl Drop for Payload {
            fn drop(&mut self) {
                LIVE.fetch_sub(1, Ordering::Relaxed);
            }
        }

        let value = commute::TBox::new(Payload::new(0));
        let stop = AtomicBool::new(false);
        let threads = 300;
        std::thread::scope(|s| {
            // A reader that keeps a transaction (and so a pin) open most of the time.
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    atomically(|tx| {
                        value.read(tx)?;
                        let started = Instant::now();
                        while started.elapsed() < Duration::from_micros(50) {}
                        Ok(())
                    });
                }
            });
            for _ in 0..threads {
                // A short-lived writer: 100 replacements, then it exits.
                std::thread::scope(|w| {
                    w.spawn(|| {
                        for i in 0..100u8 {
                            atomically(|tx| {
                                value.write(tx, Payload::new(i));
                                Ok(())
                            });
                        }
                    });
                });
            }
            stop.store(true, Ordering::Relaxed);
        });
        // The reader has stopped (a preempted pinned reader may hold reclamation back for as long as
        // it is descheduled: that is epoch reclamation, not a leak). A live thread keeps retiring:
        // its own batches, with nothing pinned now, must take care of the exited threads' orphans.
        for i in 0..1000u32 {
            atomically(|tx| {
                value.write(tx, Payload::new(i as u8));
                Ok(())
            });
        }
        let left = LIVE.load(Ordering::Relaxed);
        commute::reclaim_retired();
        let after_help = LIVE.load(Ordering::Relaxed);
        assert!(
            left < 512,
            "{left} payloads still live after {threads} short-lived threads exited ({after_help} \
         after reclaim_retired())"
        );
    });
}
