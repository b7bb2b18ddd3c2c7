//! Starvation: one thread runs long transactions over thousands of `TVar`s while the workers
//! keep writing those same variables with short transactions.
//!
//! Without help a long transaction would never commit (some short write lands inside every
//! attempt). The core promises that after [`IRREVOCABLE_AFTER`] conflicts in a row the
//! transaction runs irrevocably and commits, so each long transaction takes at most
//! `IRREVOCABLE_AFTER + 1` attempts: counted here by a counter bumped at the top of the closure,
//! and checked for every long transaction.
//!
//! Each long transaction reads every variable, checks their sum (short writes move one unit
//! between two variables, each long transaction adds one to every variable, so the sum is known
//! from the number of long commits) and writes every variable.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use commute::IRREVOCABLE_AFTER;

use super::fault::{Fault, FaultPoint, atomically_with_fault};
use super::monitor::Monitor;
use super::shared::Shared;
use crate::rng::XorShift;

/// What the long-transaction thread saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LongReport {
    /// Long transactions committed.
    pub committed: u64,
    /// Of which committed in irrevocable mode.
    pub irrevocable: u64,
    /// The most attempts any long transaction took (committed or ended by an injected panic).
    pub max_attempts: u32,
    /// Attempts of all long transactions.
    pub attempts: u64,
}

/// Runs long transactions until `stop`, as monitor slot `slot`.
pub(crate) fn run_long(
    shared: &Shared,
    monitor: &Monitor,
    slot: usize,
    seed: u64,
    fault_rate: f64,
    stop: &AtomicBool,
) -> LongReport {
    let mut rng = XorShift::new(seed ^ 0x4C4F_4E47);
    let mut report = LongReport::default();
    let committed = Rc::new(Cell::new(0u64));
    let mut values = Vec::with_capacity(shared.long_vars.len());
    let bound = IRREVOCABLE_AFTER + 1;
    while !stop.load(Ordering::Relaxed) {
        let fault = Fault::at(FaultPoint::draw(&mut rng, fault_rate));
        let attempts = Cell::new(0u32);
        let irrevocable = Cell::new(false);
        let before = committed.get();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            atomically_with_fault(fault, &shared.high_water, |tx, fault| {
                attempts.set(attempts.get() + 1);
                irrevocable.set(tx.is_irrevocable());
                values.clear();
                let mut sum = 0i64;
                for var in shared.long_vars.iter() {
                    let v = var.read(tx)?;
                    sum += v;
                    values.push(v);
                }
                let want = shared.long_sum(committed.get());
                monitor.check(slot, sum == want, || {
                    format!("long transaction: the variables sum to {sum}, not {want}")
                });
                for (i, (var, v)) in shared.long_vars.iter().zip(&values).enumerate() {
                    var.write(tx, v + 1);
                    if i == 0 {
                        fault.between_writes();
                    }
                }
                let committed = committed.clone();
                tx.on_commit(move || committed.set(committed.get() + 1));
                Ok(())
            })
        }));
        monitor.caught(slot, outcome, || "long transaction".to_string());
        let n = attempts.get();
        monitor.check(slot, n <= bound, || {
            format!("a long transaction took {n} attempts (at most {bound} allowed)")
        });
        report.max_attempts = report.max_attempts.max(n);
        report.attempts += u64::from(n);
        if committed.get() > before {
            report.committed += 1;
            if irrevocable.get() {
                report.irrevocable += 1;
            }
        }
        monitor.slot(slot).progress();
    }
    report
}
