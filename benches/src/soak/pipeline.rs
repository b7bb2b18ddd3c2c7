//! A blocking producer and consumer on a small bounded queue: the producer's `push` retries
//! (blocks) while the pipe is full, the consumer's `pop_wait` while it is empty. Each waits
//! through `or_else` on the shared `stop` variable too, so the end of the run wakes them. A lost
//! wake-up shows as a stalled thread (the watchdog); a lost, duplicated or reordered item as a
//! failed check.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::fault::{Fault, FaultPoint, atomically_with_fault};
use super::monitor::Monitor;
use super::shared::{Item, Shared};
use crate::rng::XorShift;

/// Runs the producer until `stop` (or until blocked when the run ends); returns the number of
/// items it pushed. Items carry `producer` as their producer id.
pub(crate) fn run_producer(
    shared: &Shared,
    monitor: &Monitor,
    slot: usize,
    producer: u32,
    seed: u64,
    fault_rate: f64,
    stop: &AtomicBool,
) -> u64 {
    let mut rng = XorShift::new(seed ^ 0x5049_5045);
    let pushed = Rc::new(Cell::new(0u64));
    while !stop.load(Ordering::Relaxed) {
        let fault = Fault::at(FaultPoint::draw(&mut rng, fault_rate));
        let seq = pushed.get();
        let stamp = (seq << 8) | u64::from(producer);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            atomically_with_fault(fault, &shared.high_water, |tx, fault| {
                let done = tx.or_else(
                    |tx| {
                        shared.pipe.push(tx, Item::new(producer, seq))?;
                        Ok(true)
                    },
                    |tx| shared.or_stopped(tx, false),
                )?;
                if done {
                    fault.between_writes();
                    shared.pipe_high_water.commute(tx, move |h| h.max(stamp));
                    let pushed = pushed.clone();
                    tx.on_commit(move || pushed.set(pushed.get() + 1));
                }
                Ok(())
            })
        }));
        monitor.caught(slot, outcome, || "pipeline producer".to_string());
        monitor.slot(slot).progress();
    }
    pushed.get()
}

/// Runs the consumer until `stop`; returns the number of items it popped (in order: each is
/// checked against the count so far).
pub(crate) fn run_consumer(
    shared: &Shared,
    monitor: &Monitor,
    slot: usize,
    seed: u64,
    fault_rate: f64,
    stop: &AtomicBool,
) -> u64 {
    let mut rng = XorShift::new(seed ^ 0x434F_4E53);
    let popped = Rc::new(Cell::new(0u64));
    while !stop.load(Ordering::Relaxed) {
        let fault = Fault::at(FaultPoint::draw(&mut rng, fault_rate));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            atomically_with_fault(fault, &shared.high_water, |tx, _| {
                let item = tx.or_else(
                    |tx| shared.pipe.pop_wait(tx).map(Some),
                    |tx| shared.or_stopped(tx, None),
                )?;
                if let Some(item) = item {
                    let want = popped.get();
                    monitor.check(slot, item.seq == want && item.is_intact(), || {
                        format!("pipe: popped item {} where {want} was next", item.seq)
                    });
                    let popped = popped.clone();
                    tx.on_commit(move || popped.set(popped.get() + 1));
                }
                Ok(())
            })
        }));
        monitor.caught(slot, outcome, || "pipeline consumer".to_string());
        monitor.slot(slot).progress();
    }
    popped.get()
}
