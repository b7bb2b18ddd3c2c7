//! The profiler's switch, moved while an `atomically` call runs: attempts that begin while it is
//! off are not recorded, and those that begin while it is on are. One test: the switch is
//! process-wide. It failed before (a reviewer's): the switch was read once per call, so a call
//! switched off in its first attempt recorded all its later ones, and one switched on recorded
//! none.

use commute_stm::{TVar, atomically, conflicts};
use std::sync::Arc;

/// A commit to `v` on another thread, spawned and joined.
fn write_elsewhere(v: &Arc<TVar<u64>>) {
    let v = v.clone();
    std::thread::spawn(move || atomically(|tx| v.modify(tx, |x| x + 1)))
        .join()
        .unwrap();
}

/// Runs a transaction whose first three attempts conflict (another thread writes what they
/// read before they commit); `first` runs at the start of the first attempt.
fn three_conflicts_then_commit(hot: &Arc<TVar<u64>>, first: impl Fn()) {
    let out = TVar::new(0u64);
    let mut attempts = 0;
    atomically(|tx| {
        attempts += 1;
        if attempts == 1 {
            first();
        }
        let h = hot.read(tx)?;
        if attempts <= 3 {
            write_elsewhere(hot);
        }
        out.write(tx, h);
        Ok(())
    });
    assert_eq!(attempts, 4);
}

#[test]
fn attempts_are_recorded_as_the_switch_stood_when_they_began() {
    let hot = Arc::new(TVar::new(0u64).with_label("hot"));
    conflicts::enable();
    conflicts::reset();
    three_conflicts_then_commit(&hot, conflicts::disable);
    let off = conflicts::report();
    // The first attempt began while on; the rest, and the other thread's commits, while off.
    assert_eq!((off.commits, off.aborts), (0, 1), "switched off:\n{off}");

    conflicts::reset();
    three_conflicts_then_commit(&hot, conflicts::enable);
    let on = conflicts::report();
    // The first attempt began while off; the other thread's three commits, two aborts and
    // the commit, while on.
    assert_eq!((on.commits, on.aborts), (4, 2), "switched on:\n{on}");
    conflicts::disable();
}
