//! `TVar::modify_alone` when other commits change the variable between its load and its
//! commit: the commit is refused and `f` runs again on the new value, so no update is lost,
//! and each call returns the value it committed. First with one commit placed in that window,
//! then with threads that add one with `modify_alone` while others add one in transactions
//! (the values returned are then all different: each is the count after its own add).

use commute_stm::{TVar, atomically};
use commute_test_support::with_watchdog;
use std::collections::HashSet;
use std::sync::{Arc, Barrier};

const ROUNDS: u64 = 50_000;

#[test]
fn a_commit_between_the_load_and_the_commit_makes_f_run_again() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64));
        let mut seen = Vec::new();
        let got = v.modify_alone(|x| {
            seen.push(x);
            if seen.len() == 1 {
                let v2 = v.clone();
                std::thread::spawn(move || atomically(|tx| v2.modify(tx, |y| y + 100)))
                    .join()
                    .unwrap();
            }
            x + 1
        });
        assert_eq!(
            (seen, got, v.load()),
            (vec![0, 100], 101, 101),
            "f runs again on the value the other commit left"
        );
    });
}

#[test]
fn concurrent_modify_alone_and_transactions_lose_no_update() {
    with_watchdog(30, || {
        let v = Arc::new(TVar::new(0u64));
        let start = Arc::new(Barrier::new(4));
        let alone: Vec<_> = (0..2)
            .map(|_| {
                let (v, start) = (v.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    (0..ROUNDS)
                        .map(|_| v.modify_alone(|x| x + 1))
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let in_tx: Vec<_> = (0..2)
            .map(|_| {
                let (v, start) = (v.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..ROUNDS {
                        atomically(|tx| v.modify(tx, |x| x + 1));
                    }
                })
            })
            .collect();
        let mut returned = HashSet::new();
        for h in alone {
            for value in h.join().unwrap() {
                assert!(
                    returned.insert(value),
                    "modify_alone returned {value} twice"
                );
            }
        }
        for h in in_tx {
            h.join().unwrap();
        }
        assert_eq!(v.load(), 4 * ROUNDS, "updates were lost");
        assert!(returned.iter().all(|&x| (1..=4 * ROUNDS).contains(&x)));
    });
}
