//! Read-only snapshot transactions (`read_only`): one attempt whatever the writers do, one
//! consistent snapshot, writers never held up, old values kept only while needed.
//!
//! The readers below wait, in the middle of their snapshot, until writers have committed more:
//! a writer blocked by the reader (or a reader that holds a lock) would deadlock, caught by
//! the watchdog.

use commute_stm::{TVar, atomically, read_only};
use commute_test_support::{spawn_counted, wait_for_more, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

#[test]
fn a_long_sum_commits_in_one_attempt_while_transfers_go_on() {
    with_watchdog(120, || {
        const N: usize = 1000;
        let accounts: Arc<Vec<TVar<i64>>> = Arc::new((0..N).map(|_| TVar::new(100)).collect());
        let (stop, commits) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let w = {
            let accounts = accounts.clone();
            spawn_counted(&stop, &commits, move |i| {
                let a = (i as usize * 7919) % N;
                let b = (i as usize * 104_729 + 1) % N;
                atomically(|tx| {
                    accounts[a].modify(tx, |x| x - 3)?;
                    accounts[b].modify(tx, |x| x + 3)
                });
            })
        };
        for _ in 0..5 {
            let mut attempts = 0;
            let mut during = 0;
            let sum = read_only(|tx| {
                attempts += 1;
                assert!(tx.is_snapshot() && !tx.is_irrevocable());
                let start = commits.load(Ordering::Acquire);
                let mut sum = 0;
                for (i, a) in accounts.iter().enumerate() {
                    sum += a.read(tx)?;
                    if i % 100 == 99 {
                        // Writers keep committing while the snapshot is open.
                        wait_for_more(&commits, 20);
                    }
                }
                during = commits.load(Ordering::Acquire) - start;
                Ok(sum)
            });
            assert_eq!(sum, 100 * N as i64);
            assert_eq!(attempts, 1);
            assert!(
                during >= 200,
                "writers committed {during} times during the read"
            );
        }
        stop.store(true, Ordering::Release);
        w.join().unwrap();
        let total: i64 = accounts.iter().map(TVar::load).sum();
        assert_eq!(total, 100 * N as i64);
    });
}

#[test]
fn old_versions_keep_a_cross_variable_invariant() {
    with_watchdog(120, || {
        // x + y == 0 always; x changes in every commit.
        let (x, y) = (Arc::new(TVar::new(0i64)), Arc::new(TVar::new(0i64)));
        let (stop, commits) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let w = {
            let (x, y) = (x.clone(), y.clone());
            spawn_counted(&stop, &commits, move |i| {
                atomically(|tx| {
                    let d = (i % 5) as i64 + 1;
                    x.modify(tx, |v| v + d)?;
                    y.modify(tx, |v| v - d)
                });
            })
        };
        for round in 0..200 {
            let (a, b) = read_only(|tx| {
                // Alternate the order in which the two are read.
                let first = if round % 2 == 0 { &x } else { &y };
                let a = first.read(tx)?;
                wait_for_more(&commits, 3);
                let second = if round % 2 == 0 { &y } else { &x };
                let b = second.read(tx)?;
                // Read again: the snapshot does not move.
                assert_eq!(first.read(tx)?, a);
                Ok((a, b))
            });
            assert_eq!(a + b, 0, "round {round}: {a} + {b}");
        }
        stop.store(true, Ordering::Release);
        w.join().unwrap();
        assert_eq!(x.load() + y.load(), 0);
    });
}

#[test]
fn a_snapshot_that_writes_runs_again_as_an_ordinary_transaction() {
    let hits = TVar::new(1u64);
    let mut kinds = Vec::new();
    let seen = read_only(|tx| {
        kinds.push(tx.is_snapshot());
        let h = hits.read(tx)?;
        hits.write(tx, h + 1);
        // Its own write is visible to it, in both attempts.
        assert_eq!(hits.read(tx)?, h + 1);
        Ok(h)
    });
    assert_eq!(kinds, [true, false]);
    assert_eq!(seen, 1);
    assert_eq!(hits.load(), 2);
}

#[test]
fn a_snapshot_run_again_is_not_counted_as_a_conflict() {
    // Alone on its thread, so the thread's statistics count only what happens here.
    thread::spawn(|| {
        let v = TVar::new(0u64);
        let before = commute_stm::stats::thread();
        read_only(|tx| v.modify(tx, |x| x + 1));
        let delta = commute_stm::stats::thread() - before;
        // One transaction, committed once (ordinary); its snapshot attempt was no conflict.
        assert_eq!((delta.commits, delta.aborts(), delta.retries), (1, 0, 0));
        assert!(delta.top_conflicts().is_empty());
    })
    .join()
    .unwrap();
}

#[test]
fn a_snapshot_that_retries_waits_as_an_ordinary_transaction() {
    with_watchdog(60, || {
        let gate = Arc::new(TVar::new(false));
        let opener = {
            let gate = gate.clone();
            thread::spawn(move || {
                // Open the gate once the reader waits on it (it is then blocked in retry).
                while commute_stm::blocked_transactions().is_empty() {
                    thread::yield_now();
                }
                atomically(|tx| {
                    gate.write(tx, true);
                    Ok(())
                });
            })
        };
        let mut kinds = Vec::new();
        read_only(|tx| {
            kinds.push(tx.is_snapshot());
            if !gate.read(tx)? {
                return tx.retry();
            }
            Ok(())
        });
        opener.join().unwrap();
        assert!(kinds[0]);
        assert!(kinds[1..].iter().all(|&s| !s));
    });
}

#[test]
fn a_panic_in_a_snapshot_leaves_writers_and_later_snapshots_working() {
    let v = TVar::new(5u32);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_only(|tx| -> commute_stm::StmResult<()> {
            v.read(tx)?;
            panic!("boom")
        })
    }));
    assert!(r.is_err());
    atomically(|tx| v.modify(tx, |x| x + 1));
    assert_eq!(read_only(|tx| v.read(tx)), 6);
}

/// A snapshot reads a variable held by the irrevocable transaction (for its whole attempt) as
/// it was, at once and in its first attempt: the irrevocable writer here waits for the snapshot
/// to finish before it commits, so a reader that waited for its lock (or gave the snapshot up
/// and ran as an ordinary transaction, which waits for the irrevocable token) would deadlock.
#[test]
fn a_snapshot_reads_past_the_irrevocable_transaction() {
    with_watchdog(60, || {
        let v = Arc::new(TVar::new(0u64));
        let (holding, held) = std::sync::mpsc::channel();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let writer = {
            let v = v.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    let now = v.read(tx)?;
                    if !tx.is_irrevocable() {
                        // Conflict on purpose until the attempt runs irrevocably.
                        let v2 = v.clone();
                        thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
                            .join()
                            .unwrap();
                        v.write(tx, 0);
                        return Ok(());
                    }
                    holding.send(now).unwrap();
                    wait.recv().unwrap();
                    v.write(tx, 999);
                    Ok(())
                })
            })
        };
        let before = held.recv().unwrap();
        let mut attempts = 0;
        let seen = read_only(|tx| {
            attempts += 1;
            v.read(tx)
        });
        assert_eq!((seen, attempts), (before, 1));
        go.send(()).unwrap();
        writer.join().unwrap();
        assert_eq!(v.load(), 999);
    });
}

/// A snapshot attempt that commutes a variable and then reads it sees the variable's value in
/// its snapshot, with its own operation applied: never a newer committed value beside the
/// snapshot's values of the others (the attempt then runs again as an ordinary transaction,
/// having written, but what its closure saw must be one state). One that published to it
/// (`publish_on_commit`, invisible to its own reads) sees the snapshot's value alone (a
/// reviewer's case: reading the newest committed value there passed every other test).
#[test]
fn a_snapshot_reads_a_variable_it_commuted_in_its_snapshot() {
    with_watchdog(30, || {
        for op in ["add", "commute", "publish"] {
            let x = Arc::new(TVar::new(0i64));
            let y = Arc::new(TVar::new(0i64));
            let mut sums = Vec::new();
            read_only(|tx| {
                let yv = y.read(tx)?;
                if tx.is_snapshot() {
                    // A transfer keeps x + y at 0.
                    let (x2, y2) = (x.clone(), y.clone());
                    thread::spawn(move || {
                        atomically(|tx| {
                            x2.modify(tx, |v| v + 1)?;
                            y2.modify(tx, |v| v - 1)
                        })
                    })
                    .join()
                    .unwrap();
                }
                match op {
                    "add" => x.add(tx, 10),
                    "commute" => x.commute(tx, |v| v + 10),
                    // SAFETY: the operation neither panics nor touches other memory.
                    _ => unsafe { x.publish_on_commit(tx, |v, _| v + 10) },
                }
                let xv = x.read(tx)?;
                sums.push((tx.is_snapshot(), xv + yv));
                Ok(())
            });
            let own = if op == "publish" { 0 } else { 10 };
            assert_eq!(sums, [(true, own), (false, own)], "{op}");
            assert_eq!(x.load() + y.load(), 10, "{op}");
        }
    });
}
