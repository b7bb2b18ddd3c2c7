//! What an attempt leaves to run once it has ended (destructors of the values it let go of,
//! hooks) runs after the attempt has given back what it held: the irrevocable token, and a
//! snapshot reader's registration. Each test hung (caught by its watchdog) before, or, for the
//! last, let old values pile up.

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TBox, TVar, atomically, read_only};
use commute_test_support::{Counted, in_child_process, with_watchdog};
use irrevocable::conflict_unless_irrevocable;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

/// Adds 1 to `v` in a transaction that conflicts until it runs irrevocably.
fn irrevocable_update(v: &Arc<TVar<u64>>) {
    atomically(|tx| {
        conflict_unless_irrevocable(tx, v)?;
        v.modify(tx, |x| x + 1)
    });
}

/// A value whose drop runs an irrevocable transaction.
struct RunsIrrevocably(Arc<TVar<u64>>);

impl Drop for RunsIrrevocably {
    fn drop(&mut self) {
        irrevocable_update(&self.0);
    }
}

#[test]
fn a_destructor_run_by_a_panicking_irrevocable_attempt_may_run_irrevocably() {
    // In a child process: a hang would leave this thread inside `atomically`.
    in_child_process(|| {
        with_watchdog(30, || {
            let v = Arc::new(TVar::new(0u64));
            let inner = Arc::new(TVar::new(0u64));
            let mut b = Some(TBox::new(RunsIrrevocably(inner.clone())));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                atomically(|tx| -> commute_stm::StmResult<()> {
                    conflict_unless_irrevocable(tx, &v)?;
                    drop(b.take()); // freed by the rollback of the panic below
                    panic!("the irrevocable attempt panics")
                })
            }));
            assert!(r.is_err());
            assert!(inner.load() >= 1, "the destructor's transaction ran");
        })
    });
}

#[test]
fn a_commit_hook_of_a_snapshot_may_wait_for_snapshot_readers() {
    in_child_process(|| {
        with_watchdog(20, || {
            let v = TVar::new(1u64);
            let n = read_only(|tx| {
                let n = v.read(tx)?;
                tx.on_commit(|| commute_stm::wait_for_readers(0));
                Ok(n)
            });
            assert_eq!(n, 1);
        })
    });
}

#[test]
fn a_value_dropped_in_a_snapshot_may_wait_for_snapshot_readers() {
    struct WaitsOnDrop;
    impl Drop for WaitsOnDrop {
        fn drop(&mut self) {
            commute_stm::wait_for_readers(0);
        }
    }
    in_child_process(|| {
        with_watchdog(20, || {
            let mut b = Some(TBox::new(WaitsOnDrop));
            read_only(|_| {
                drop(b.take());
                Ok(())
            });
        })
    });
}

#[test]
fn a_thread_that_only_reads_snapshots_does_not_keep_old_values() {
    with_watchdog(60, || {
        let live = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(TBox::new(Counted::new(0, &live)));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (b, live, stop) = (b.clone(), live.clone(), stop.clone());
            thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    atomically(|tx| {
                        b.write(tx, Counted::new(i, &live));
                        Ok(())
                    });
                }
            })
        };
        // The reader is often the last to deregister, which hands it the versions kept for
        // it (and the replaced values they own).
        let start = std::time::Instant::now();
        let mut most = 0;
        while start.elapsed() < std::time::Duration::from_secs(3) && most < 20_000 {
            read_only(|tx| {
                let _ = b.read(tx)?.value();
                Ok(())
            });
            most = most.max(live.load(Ordering::Relaxed));
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert!(most < 5_000, "{most} values alive at once");
    });
}
