//! `TCounter`: model tests against a plain `i64`, exact totals under concurrency, the zero-abort
//! property of `add`, and unique ids.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use commute::{StmResult, TCounter, TVar, Transaction, atomically, stats};
use quickcheck::{Arbitrary, Gen, QuickCheck};

mod common;
use common::{Mode, aborts_of, run_group, run_threads};

// ----- model tests -------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Add(i64),
    Incr,
    Decr,
    Get,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 4 {
            0 => Op::Add(i64::from(i16::arbitrary(g))),
            1 => Op::Incr,
            2 => Op::Decr,
            _ => Op::Get,
        }
    }
}

fn model_op(model: &mut i64, op: &Op) -> Option<i64> {
    match *op {
        Op::Add(n) => *model = model.wrapping_add(n),
        Op::Incr => *model += 1,
        Op::Decr => *model -= 1,
        Op::Get => return Some(*model),
    }
    None
}

fn tx_op(c: &TCounter, tx: &Transaction, op: &Op) -> StmResult<Option<i64>> {
    match *op {
        Op::Add(n) => c.add(tx, n),
        Op::Incr => c.incr(tx),
        Op::Decr => c.decr(tx),
        Op::Get => return c.get(tx).map(Some),
    }
    Ok(None)
}

fn one_call_op(c: &TCounter, op: &Op) -> Option<i64> {
    match *op {
        Op::Add(n) => c.atomic().add(n),
        Op::Incr => c.atomic().incr(),
        Op::Decr => c.atomic().decr(),
        Op::Get => return Some(c.atomic().get()),
    }
    None
}

fn counter_matches_model(shards: u8, groups: Vec<(Mode, Vec<Op>)>) -> bool {
    let counter = TCounter::with_shards(usize::from(shards % 8) + 1);
    let mut model = 0i64;
    for (mode, ops) in groups {
        let (expected, got) = run_group(
            mode,
            &ops,
            |op| model_op(&mut model, op),
            |op| one_call_op(&counter, op),
            |tx, op| tx_op(&counter, tx, op),
        );
        if got != expected || counter.load() != model {
            return false;
        }
    }
    true
}

#[test]
fn transactions_match_a_plain_i64() {
    common::with_watchdog(20, || {
        QuickCheck::new()
            .tests(150)
            .rng(Gen::new(20))
            .quickcheck(counter_matches_model as fn(u8, Vec<(Mode, Vec<Op>)>) -> bool);
    });
}

#[test]
fn get_sees_own_pending_adds_and_load_sees_commits() {
    let c = TCounter::with_shards(4);
    let inside = atomically(|tx| {
        c.add(tx, 10);
        let first = c.get(tx)?;
        c.decr(tx);
        Ok((first, c.get(tx)?))
    });
    assert_eq!(inside, (10, 9));
    assert_eq!(c.load(), 9);
    assert_eq!(c.atomic().get(), 9);
}

#[test]
fn overflow_wraps() {
    let c = TCounter::new();
    c.atomic().add(i64::MAX);
    c.atomic().incr();
    assert_eq!(c.load(), i64::MIN);
}

#[test]
#[should_panic(expected = "too many")]
fn a_shard_count_with_no_power_of_two_above_it_panics() {
    // Rounded up, it would wrap to 0 shards: a counter that reads 0 and cannot be added to.
    let _ = TCounter::with_shards(usize::MAX / 2 + 2);
}

// ----- concurrency -------------------------------------------------------------------------

#[test]
fn concurrent_adds_give_the_exact_total() {
    common::with_watchdog(20, || {
        let counter = Arc::new(TCounter::new());
        let c = counter.clone();
        run_threads(4, move |t| {
            for i in 0..2_000i64 {
                match i % 3 {
                    0 => c.atomic().incr(),
                    1 => atomically(|tx| {
                        c.add(tx, t as i64 + 2);
                        c.decr(tx);
                        Ok(())
                    }),
                    _ => c.atomic().add(-1),
                }
            }
        });
        // Per thread: 667 incrs, 667 * (t + 1), -666.
        let expected: i64 = (0..4).map(|t| 667 + 667 * (t + 1) - 666).sum();
        assert_eq!(counter.load(), expected);
    });
}

#[test]
fn get_returns_a_consistent_total_under_concurrent_adds() {
    common::with_watchdog(20, || {
        // Every writer adds 1 to both counters in one transaction, so a consistent snapshot always
        // sees them equal, however the adds are spread over shards.
        let pair = Arc::new((TCounter::new(), TCounter::new()));
        let p = pair.clone();
        let readings = run_threads(3, move |t| {
            let (a, b) = &*p;
            let mut readings = 0;
            for _ in 0..1_500 {
                if t == 0 {
                    let (x, y) = atomically(|tx| Ok((a.get(tx)?, b.get(tx)?)));
                    assert_eq!(x, y, "a transaction saw a torn total");
                    readings += 1;
                } else {
                    atomically(|tx| {
                        a.incr(tx);
                        b.incr(tx);
                        Ok(())
                    });
                }
            }
            readings
        });
        assert_eq!(readings[0], 1_500);
        assert_eq!(pair.0.load(), 3_000);
        assert_eq!(pair.1.load(), 3_000);
    });
}

/// Two threads increment one plain `TVar` with read-modify-write transactions, `min` times each
/// and then on until one of them has seen an abort (or a generous cap); returns the aborts seen
/// and checks the total.
fn naive_counter_aborts(min: u64) -> u64 {
    const CAP: u64 = 2_000_000;
    let naive = Arc::new(TVar::new(0u64).with_label("naive counter"));
    let seen = Arc::new(AtomicBool::new(false));
    let (n, s) = (naive.clone(), seen.clone());
    let per_thread = run_threads(2, move |_| {
        let before = stats::thread();
        let mut done = 0u64;
        // Keep going until an abort is seen by either thread: even on a 2-core machine busy
        // with other tests the threads interleave eventually.
        while done < CAP && !(s.load(Ordering::Relaxed) && done >= min) {
            atomically(|tx| n.modify(tx, |x| x + 1));
            done += 1;
            if done % 64 == 0 && (stats::thread() - before.clone()).aborts() > 0 {
                s.store(true, Ordering::Relaxed);
            }
        }
        ((stats::thread() - before).aborts(), done)
    });
    let aborts: u64 = per_thread.iter().map(|(a, _)| a).sum();
    let total: u64 = per_thread.iter().map(|(_, d)| d).sum();
    assert_eq!(naive.load(), total, "the naive counter lost an update");
    aborts
}

#[test]
fn adds_never_abort_each_other_while_a_naive_counter_does() {
    common::with_watchdog(20, || {
        const ADDS: usize = 20_000;
        for shards in [None, Some(1)] {
            let counter = Arc::new(match shards {
                None => TCounter::new(),
                Some(n) => TCounter::with_shards(n),
            });
            let c = counter.clone();
            let aborts = aborts_of(2, move |_| {
                for _ in 0..ADDS {
                    atomically(|tx| {
                        c.incr(tx);
                        c.add(tx, 2);
                        Ok(())
                    });
                }
            });
            eprintln!(
                "TCounter ({} shards), 2 threads x {ADDS} add-only transactions: {aborts} aborts",
                counter.shard_count()
            );
            assert_eq!(aborts, 0, "add-only transactions aborted each other");
            assert_eq!(counter.load(), 2 * 3 * ADDS as i64);
        }
        let naive = naive_counter_aborts(ADDS as u64);
        eprintln!(
            "naive TVar<u64> read-modify-write counter, 2 threads x >= {ADDS} transactions: {naive} aborts"
        );
        assert!(
            naive > 0,
            "the naive counter never aborted: the threads never overlapped"
        );
    });
}

#[test]
fn an_add_does_not_abort_an_open_transaction_but_a_get_does() {
    common::with_watchdog(20, || {
        // The main thread opens a transaction, lets another thread commit an add to the same
        // counter (same shard: one shard only), then commits. Adds commute: one attempt. A
        // transaction that read the total must run again.
        for read_total in [false, true] {
            let counter = Arc::new(TCounter::with_shards(1));
            let opened = Arc::new(Barrier::new(2));
            let added = Arc::new(Barrier::new(2));
            let (c, o, a) = (counter.clone(), opened.clone(), added.clone());
            let other = std::thread::spawn(move || {
                o.wait();
                c.atomic().add(100);
                a.wait();
            });
            let mut attempts = 0;
            let mut ids = Vec::new();
            atomically(|tx| {
                attempts += 1;
                // Not transactional: an id taken by an attempt that is re-run is skipped.
                ids.push(TCounter::next_id());
                if read_total {
                    counter.get(tx)?;
                }
                counter.incr(tx);
                if attempts == 1 {
                    opened.wait();
                    added.wait();
                }
                Ok(())
            });
            other.join().unwrap();
            assert_eq!(counter.load(), 101);
            assert_eq!(
                attempts,
                if read_total { 2 } else { 1 },
                "read_total = {read_total}"
            );
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "a re-run attempt reused an id"
            );
        }
    });
}

// ----- ids and the rest --------------------------------------------------------------------

#[test]
fn ids_are_unique_across_threads_and_increase_within_one() {
    common::with_watchdog(20, || {
        let per_thread = run_threads(4, |_| {
            let ids: Vec<u64> = (0..5_000).map(|_| TCounter::next_id()).collect();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "ids of one thread must increase"
            );
            ids
        });
        let all: HashSet<u64> = per_thread.iter().flatten().copied().collect();
        assert_eq!(all.len(), 20_000, "an id was handed out twice");
        assert!(!all.contains(&0));
    });
}

#[test]
fn shard_counts_are_powers_of_two() {
    assert!(TCounter::new().shard_count().is_power_of_two());
    assert!(TCounter::new().shard_count() >= 2);
    assert_eq!(TCounter::with_shards(1).shard_count(), 1);
    assert_eq!(TCounter::with_shards(5).shard_count(), 8);
}

#[test]
#[should_panic(expected = "at least one shard")]
fn zero_shards_panics() {
    let _ = TCounter::with_shards(0);
}

#[test]
#[should_panic(expected = "inside a transaction")]
fn load_inside_a_transaction_panics() {
    let c = TCounter::new();
    atomically(|_| Ok(c.load()));
}

#[test]
fn debug_default_and_label() {
    let c = TCounter::default().with_label("hits");
    c.atomic().add(3);
    let shown = format!("{c:?}");
    assert!(
        shown.contains("TCounter") && shown.contains("value: 3"),
        "{shown}"
    );
    let a = c.atomic();
    assert_eq!(format!("{a:?}"), format!("Atomic({shown})"));
}
