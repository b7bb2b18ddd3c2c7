//! `long-read`: one thread sums a whole map of [`MAP_KEYS`] accounts in one long read (pausing
//! [`PAUSE`] after every [`PAUSE_EVERY`] accounts), while the other threads run `bank`'s
//! transfers between random accounts of the same map, so that the money in it never changes.
//!
//! A cell runs two phases on one map, each for the measuring time: the writers alone, then the
//! writers beside the reader. The cell's operations, time, commits and aborts are the writers'
//! beside the reader; its [`LongRead`] holds the reader's sums and attempts, and the writers'
//! transfers without it. A thread count `threads` means `threads - 1` writers (at least 1)
//! and, in the second phase, the reader. The reader starts sum after sum until the writers
//! stop, and completes at least one, however short the phase.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::report::{CellResult, LongRead};
use crate::runner::{Accounting, Subject, measure};
use crate::workloads::{BALANCE, BankWorkload, Ledger, MAP_KEYS};

/// The accounts, and the writers' transfers between them.
type Accounts<L> = BankWorkload<L, { MAP_KEYS as usize }>;

/// Runs both phases of `long-read` on `L` and measures them.
///
/// # Panics
///
/// If a sum of a map read in one consistent state ([`Ledger::CONSISTENT`]) is not the money in
/// the map, or if the money changed by the end (the runner's check of every cell).
pub(crate) fn run_cell<L: Ledger>(
    workload: &'static str,
    structure: &'static str,
    threads: usize,
    duration: Duration,
) -> CellResult {
    let writers = threads.saturating_sub(1).max(1);
    let accounts = Accounts::<L>::new(writers);
    let alone = measure(&accounts, writers, duration, &AtomicBool::new(false));
    let stop = AtomicBool::new(false);
    let (beside, sums) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut sums = Vec::new();
            while sums.is_empty() || !stop.load(Ordering::Relaxed) {
                sums.push(accounts.0.long_sum());
            }
            sums
        });
        let beside = measure(&accounts, writers, duration, &stop);
        (beside, reader.join().expect("the reader panicked"))
    });
    let money = MAP_KEYS * BALANCE;
    let problem =
        |what: String| format!("{workload} on {structure} with {threads} threads: {what}");
    if let Some(wrong) = sums.iter().find(|s| s.money != money && L::CONSISTENT) {
        panic!(
            "{}",
            problem(format!("a sum read {}, not {money}", wrong.money))
        );
    }
    // Two runs of fresh workers have no one count per worker to give; the bank's check (the
    // money) needs none.
    if let Err(what) = accounts.check(alone.ops + beside.ops, &[]) {
        panic!("{}", problem(what));
    }
    drop(accounts);
    commute_stm::reclaim_retired();
    let stm = L::ACCOUNTING != Accounting::Lock;
    CellResult {
        workload,
        structure,
        threads,
        ops: beside.ops,
        seconds: beside.seconds,
        commits: stm.then_some(beside.commits),
        aborts: stm.then_some(beside.aborts),
        long_read: Some(LongRead {
            reads: sums.len() as u64,
            attempts: sums.iter().map(|s| s.attempts).sum(),
            ordinary: sums.iter().map(|s| s.ordinary).sum(),
            inexact: sums.iter().filter(|s| s.money != money).count() as u64,
            alone_ops: alone.ops,
            alone_seconds: alone.seconds,
        }),
    }
}
