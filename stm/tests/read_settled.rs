//! `TVar::read_settled`: a committed value that `settled` accepts is left out of the read set;
//! everything else reads, and is validated, as `TVar::read` is. Each test makes another
//! thread commit in the middle of an attempt (a scoped thread, joined before the attempt goes
//! on), so the interleaving is fixed.

use std::cell::Cell;

use commute_stm::{StmResult, TVar, Transaction, atomically};
use commute_test_support::with_watchdog;

/// Commits `f` on another thread, and waits for it.
fn commit_elsewhere(f: impl Fn(&Transaction) -> StmResult<()> + Sync) {
    std::thread::scope(|s| {
        s.spawn(|| atomically(&f));
    });
}

#[test]
fn an_unsettled_value_is_validated_as_a_read() {
    with_watchdog(30, || {
        let v = TVar::new(0u64);
        let attempts = Cell::new(0);
        atomically(|tx| {
            attempts.set(attempts.get() + 1);
            // SAFETY: no value is settled (`settled` is always false).
            let seen = unsafe { v.read_settled(tx, |_| false) }?;
            if attempts.get() == 1 {
                commit_elsewhere(|tx| v.modify(tx, |n| n + 10).map(drop));
            }
            v.write(tx, seen + 1);
            Ok(())
        });
        // The first attempt read 0, which the other commit replaced: it could not commit 1.
        assert_eq!(attempts.get(), 2);
        assert_eq!(v.load(), 11);
    });
}

#[test]
fn a_settled_value_newer_than_the_attempt_is_not_taken_as_settled() {
    with_watchdog(30, || {
        // `fixed` is 0 until set once (non-zero values are settled); `x` changes with it.
        let (x, fixed) = (TVar::new(0u64), TVar::new(0u64));
        let attempts = Cell::new(0);
        let seen = atomically(|tx| {
            attempts.set(attempts.get() + 1);
            let x_seen = x.read(tx)?;
            if attempts.get() == 1 {
                commit_elsewhere(|tx| {
                    x.write(tx, 1);
                    fixed.write(tx, 7);
                    Ok(())
                });
            }
            // SAFETY: `fixed` is written once, from 0, above.
            let fixed_seen = unsafe { fixed.read_settled(tx, |n| n != 0) }?;
            Ok((x_seen, fixed_seen))
        });
        // The first attempt's `x` is older than `fixed`'s 7: it must not see the two together.
        assert_eq!(seen, (1, 7));
        assert_eq!(attempts.get(), 2);
    });
}

#[test]
fn the_attempts_own_write_reads_back() {
    with_watchdog(30, || {
        let v = TVar::new(0u64);
        let read = atomically(|tx| {
            v.write(tx, 5);
            // SAFETY: non-zero values are written only over 0 (this write).
            unsafe { v.read_settled(tx, |n| n != 0) }
        });
        assert_eq!(read, 5);
        assert_eq!(v.load(), 5);
        // Settled and committed before the attempt: read as it is.
        let again = atomically(|tx| {
            // SAFETY: as above; nothing writes `v` any more.
            unsafe { v.read_settled(tx, |n| n != 0) }
        });
        assert_eq!(again, 5);
    });
}
