//! Loom model of irrevocable mode racing an ordinary committer.
#![cfg(loom)]

use std::cell::Cell;

use commute_loom_tests::{capped_builder, model_builder, run_model_with, settle};
use commute_stm::{
    IRREVOCABLE_AFTER, StmResult, TVar, Transaction, atomically, read_only, stats, try_atomically,
};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use loom::thread;

/// One thread is driven into irrevocable mode, then races an ordinary transaction of another
/// thread: both commit, and the outcome is one of the two serial orders.
///
/// Driving the victim there takes `IRREVOCABLE_AFTER` real conflicts: in each setup round the
/// victim reads `a`, lets the helper commit a change to `a`, and then fails validation. Those
/// rounds run with loom's exploration switched off (one fixed schedule); exploration starts
/// once the victim's attempt is irrevocable, so loom checks every interleaving of the race
/// itself.
///
/// Catches an irrevocable transaction that can be overtaken (its locks not honoured by a
/// committer or reader), a committer that waits for the irrevocable lock holder while holding
/// locks the holder needs (deadlock), and locks or the irrevocable token left behind.
#[test]
fn irrevocable_vs_committer() {
    let mut builder = model_builder();
    // Exploration starts inside the victim's irrevocable attempt (`loom::explore`).
    builder.expect_explicit_explore = true;
    // The setup rounds are long (every branch point counts, explored or not).
    builder.max_branches = 20_000;
    run_model_with("irrevocable_vs_committer", builder, || {
        let a = Arc::new(TVar::new(0u64));
        let b = Arc::new(TVar::new(0u64));
        let setup = Handshake::new();

        let helper = {
            let (a, b, setup) = (a.clone(), b.clone(), setup.clone());
            thread::spawn(move || {
                setup.help(&a);
                // The race: an ordinary read-write transaction against the irrevocable one.
                atomically(|tx| {
                    let seen = b.read(tx)?;
                    a.write(tx, seen + 1);
                    Ok(())
                });
            })
        };

        let before = stats::thread();
        let rounds = Cell::new(0u32);
        let irrevocable_seen = atomically(|tx| {
            if tx.is_irrevocable() {
                setup.start_race();
                let seen = a.read(tx)?;
                b.write(tx, seen + 10);
                return Ok(seen);
            }
            setup_round(tx, &rounds, &a, &b, &setup)?;
            Ok(u64::MAX)
        });
        let after = stats::thread();
        helper.join().unwrap();

        assert_eq!(after.irrevocable_commits, before.irrevocable_commits + 1);
        let rounds = u64::from(rounds.get());
        let (a, b) = (a.load(), b.load());
        if irrevocable_seen == rounds {
            // Victim first: b = rounds + 10, then the helper: a = b + 1.
            assert_eq!((a, b), (rounds + 11, rounds + 10));
        } else {
            // Helper first: a = 0 + 1, then the victim: b = a + 10.
            assert_eq!((irrevocable_seen, a, b), (1, 1, 11));
        }
    });
}

/// A snapshot reader reads `x`, then `y`, while the irrevocable transaction commits
/// `x = y = 1` (it holds both locks from its writes to its commit). Driven into irrevocable
/// mode as in `irrevocable_vs_committer`; the reader, on the helper's thread, registers once the
/// race has begun.
///
/// Catches a torn snapshot at an irrevocable commit: one that loads `SNAPSHOTS` without the
/// sequentially consistent order after turning its locks into plain ones (the `loom_fence` of
/// `history::writer_view`), so that it counts itself before a reader that still sees the
/// irrevocable lock and reads the old value under it; and a reader whose load of the value under
/// the irrevocable lock is not acquire, so that it can take a value stored after the lock
/// changed while its re-check of the lock still finds the irrevocable one.
#[test]
fn snapshot_reads_around_an_irrevocable_commit() {
    let mut builder = model_builder();
    // Exploration starts inside the victim's irrevocable attempt (`loom::explore`).
    builder.expect_explicit_explore = true;
    // The setup rounds are long (every branch point counts, explored or not).
    builder.max_branches = 20_000;
    run_model_with(
        "snapshot_reads_around_an_irrevocable_commit",
        builder,
        || {
            let a = Arc::new(TVar::new(0u64));
            let x = Arc::new(TVar::new(0u64));
            let y = Arc::new(TVar::new(0u64));
            let setup = Handshake::new();

            let reader = {
                let (a, x, y, setup) = (a.clone(), x.clone(), y.clone(), setup.clone());
                thread::spawn(move || {
                    setup.help(&a);
                    // The race: a snapshot of both variables against the irrevocable commit.
                    let mut attempts = 0;
                    let pair = read_only(|tx| {
                        attempts += 1;
                        Ok((x.read(tx)?, y.read(tx)?))
                    });
                    assert_eq!(attempts, 1);
                    assert!(pair == (0, 0) || pair == (1, 1), "torn snapshot: {pair:?}");
                })
            };

            let rounds = Cell::new(0u32);
            atomically(|tx| {
                if tx.is_irrevocable() {
                    setup.start_race();
                    x.write(tx, 1);
                    y.write(tx, 1);
                    return Ok(());
                }
                setup_round(tx, &rounds, &a, &x, &setup)
            });
            reader.join().unwrap();
            settle();
            assert_eq!((x.load(), y.load()), (1, 1));
        },
    );
}

/// The handshake of the setup rounds that drive the victim into irrevocable mode (see
/// `irrevocable_vs_committer`): the victim has read `a` in round `read`; the helper has
/// committed its change for round `changed`; `racing`: the victim is irrevocable, and the race
/// has begun.
struct Handshake {
    read: AtomicU32,
    changed: AtomicU32,
    racing: AtomicBool,
}

impl Handshake {
    fn new() -> Arc<Self> {
        Arc::new(Handshake {
            read: AtomicU32::new(0),
            changed: AtomicU32::new(0),
            racing: AtomicBool::new(false),
        })
    }

    /// The helper's side of the setup rounds: a change to `a` committed for each round the
    /// victim has read it in; returns once the race has begun.
    fn help(&self, a: &TVar<u64>) {
        while let Some(round) = self.next_round() {
            atomically(|tx| a.modify(tx, |n| n + 1));
            self.changed.store(round, Ordering::Release);
        }
    }

    /// The helper's next setup round (once the victim has read `a` for it), or `None` once the
    /// race has begun.
    fn next_round(&self) -> Option<u32> {
        loop {
            if self.racing.load(Ordering::Acquire) {
                return None;
            }
            let round = self.read.load(Ordering::Acquire);
            if round > self.changed.load(Ordering::Relaxed) {
                return Some(round);
            }
            thread::yield_now();
        }
    }

    /// Called by the victim's attempt once it is irrevocable: the first time, starts the race
    /// (loom's exploration begins here) and lets the helper go on to it.
    fn start_race(&self) {
        if !self.racing.load(Ordering::Relaxed) {
            loom::explore();
            self.racing.store(true, Ordering::Release);
        }
    }

    /// Waits until the race has begun.
    fn wait_for_race(&self) {
        while !self.racing.load(Ordering::Acquire) {
            thread::yield_now();
        }
    }
}

/// A setup round of the victim's attempt, before it is irrevocable: reads `a`, writes `written`
/// (so that the attempt commits with a read to validate), has the helper change `a` (`setup`),
/// and returns, so that the commit fails its validation.
fn setup_round(
    tx: &Transaction,
    rounds: &Cell<u32>,
    a: &TVar<u64>,
    written: &TVar<u64>,
    setup: &Handshake,
) -> StmResult<()> {
    let round = rounds.get() + 1;
    assert!(
        round <= IRREVOCABLE_AFTER,
        "not irrevocable after {} conflicts",
        round - 1
    );
    rounds.set(round);
    a.read(tx)?;
    written.write(tx, 0);
    setup.read.store(round, Ordering::Release);
    while setup.changed.load(Ordering::Acquire) != round {
        thread::yield_now();
    }
    Ok(())
}

/// Once the victim is irrevocable, the helper increments `x`; the victim waits for that
/// commit, locks `x` (an irrevocable write locks at once) and gives the lock back: it fails with
/// an error of its own (`try_atomically`), which rolls the attempt back, or the write was in
/// the first branch of an `or_else` that retried, which rolls the branch back. A third thread,
/// which waited for the race to begin, increments `x` too. Both increments land, and the
/// victim's write is never seen.
///
/// Catches an irrevocable attempt that gives a lock back with a store that is not a release
/// (`Transaction::reset`, and the branch's rollback in the write set): a plain store starts no
/// release sequence of its own, so the third thread, whose lock-word read finds the word the
/// victim restored, is not ordered after the helper's commit that the victim acquired, can read
/// `x`'s value from before it, and loses the helper's increment.
///
/// Preemption bound at most 1: three threads in the race, whose turns the waits give (at 2 the
/// first version of this model, without the victim's wait, ran for more than ten minutes).
#[test]
fn a_lock_an_irrevocable_attempt_gives_back_passes_on_the_value_under_it() {
    for (name, by_branch) in [
        (
            "a_lock_an_irrevocable_attempt_gives_back_passes_on_the_value_under_it",
            false,
        ),
        (
            "a_lock_an_irrevocable_branch_gives_back_passes_on_the_value_under_it",
            true,
        ),
    ] {
        let mut builder = capped_builder(1);
        // Exploration starts inside the victim's irrevocable attempt (`loom::explore`).
        builder.expect_explicit_explore = true;
        // The setup rounds are long (every branch point counts, explored or not).
        builder.max_branches = 20_000;
        run_model_with(name, builder, move || {
            irrevocable_lock_given_back(by_branch)
        });
    }
}

fn irrevocable_lock_given_back(by_branch: bool) {
    let a = Arc::new(TVar::new(0u64));
    let x = Arc::new(TVar::new(0u64));
    let setup = Handshake::new();
    let helped = Arc::new(AtomicBool::new(false));
    let helper = {
        let (a, x, setup, helped) = (a.clone(), x.clone(), setup.clone(), helped.clone());
        thread::spawn(move || {
            setup.help(&a);
            atomically(|tx| x.modify(tx, |n| n + 1));
            helped.store(true, Ordering::Release);
        })
    };
    let third = {
        let (x, setup) = (x.clone(), setup.clone());
        thread::spawn(move || {
            setup.wait_for_race();
            atomically(|tx| x.modify(tx, |n| n + 1));
        })
    };
    let rounds = Cell::new(0u32);
    let victim = try_atomically(|tx| {
        if tx.is_irrevocable() {
            setup.start_race();
            while !helped.load(Ordering::Acquire) {
                thread::yield_now();
            }
            if by_branch {
                tx.or_else(
                    |tx| {
                        x.write(tx, POISON);
                        tx.retry()
                    },
                    |_| Ok(()),
                )?;
                return Ok(());
            }
            x.write(tx, POISON);
            return tx.abort("given up");
        }
        Ok(setup_round(tx, &rounds, &a, &x, &setup)?)
    });
    assert_eq!(victim, if by_branch { Ok(()) } else { Err("given up") });
    helper.join().unwrap();
    third.join().unwrap();
    settle();
    assert_eq!(x.load(), 2, "an increment was lost");
}

/// The value the victim writes before it gives up: nobody may ever see it.
const POISON: u64 = 99;
