//! A retired value that stands for a run of values (`TVar::retire_run_on_commit`) counts as the
//! run towards its thread's next reclamation pass. Alone in its test binary: another test's
//! running transaction would hold values back.

use commute_stm::{TVar, atomically};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn a_run_brings_the_reclamation_pass_as_its_values_would() {
    with_watchdog(60, || {
        // A fresh thread: its first pass waits for a batch of retirements.
        std::thread::spawn(|| {
            let live = Arc::new(AtomicUsize::new(0));
            let head = TVar::new(0u64);
            let retire = |values: usize| {
                let value = Box::into_raw(Box::new(Counted::new(0, &live)));
                atomically(|tx| {
                    head.write(tx, values as u64);
                    // SAFETY: `value` is ours alone and retired once: the closure reads
                    // nothing, so it cannot conflict and runs once.
                    unsafe { head.retire_run_on_commit(tx, value, values) };
                    Ok(())
                });
            };
            retire(1);
            assert_eq!(
                live.load(Ordering::SeqCst),
                1,
                "one value, counted as one, was freed at once: no batch to wait for?"
            );
            retire(64);
            assert_eq!(
                live.load(Ordering::SeqCst),
                0,
                "a run of 64 values did not make a pass due at its commit"
            );
        })
        .join()
        .unwrap();
    });
}
