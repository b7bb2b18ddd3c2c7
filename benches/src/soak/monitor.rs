//! What every soak thread reports: progress (for the watchdog), invariant checks, violations,
//! injected faults, and the committed counts that the reporter compares with live counters.
//!
//! Each thread owns a padded slot of single-writer counters (a plain load and store, as in the
//! core's statistics), so reporting costs no shared cache line on the hot path.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::fault::{FaultPoint, injected_point};

/// How many violation messages are kept for the final report.
const KEPT_MESSAGES: usize = 50;

/// One thread's counters, written only by that thread.
#[derive(Debug, Default)]
pub struct Slot {
    /// Operations finished (committed, or ended by a caught panic).
    pub progress: AtomicU64,
    /// Invariant checks made.
    pub checks: AtomicU64,
    /// Injected panics caught, by [`FaultPoint::index`].
    pub faults: [AtomicU64; FaultPoint::ALL.len()],
    /// Committed bank transfers (published by the commit hook, after the commit).
    pub transfers: AtomicU64,
}

#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Release);
}

impl Slot {
    /// Counts one finished operation.
    #[inline]
    pub fn progress(&self) {
        bump(&self.progress, 1);
    }

    /// Counts one caught injected panic.
    pub fn fault(&self, point: FaultPoint) {
        bump(&self.faults[point.index()], 1);
    }

    /// Publishes one committed transfer.
    #[inline]
    pub fn transfer(&self) {
        bump(&self.transfers, 1);
    }
}

/// The shared record of a soak run: one [`Slot`] per thread and the violations.
///
/// # Examples
///
/// ```
/// use commute_benches::soak::monitor::Monitor;
///
/// let monitor = Monitor::new(1);
/// monitor.check(0, 1 + 1 == 2, || "arithmetic".to_string());
/// monitor.check(0, false, || "deliberate".to_string());
/// assert_eq!(monitor.checks(), 2);
/// assert_eq!(monitor.violations(), 1);
/// assert!(monitor.messages()[0].contains("deliberate"));
/// ```
#[derive(Debug)]
pub struct Monitor {
    slots: Box<[CachePadded<Slot>]>,
    /// Checks of threads without a slot (the reporter's, the final ones).
    shared_checks: AtomicU64,
    violations: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl Monitor {
    /// A monitor with `threads` slots.
    pub fn new(threads: usize) -> Self {
        Monitor {
            slots: (0..threads).map(|_| CachePadded::default()).collect(),
            shared_checks: AtomicU64::new(0),
            violations: AtomicU64::new(0),
            messages: Mutex::new(Vec::new()),
        }
    }

    /// Thread `index`'s slot.
    ///
    /// # Panics
    ///
    /// If `index` is out of range.
    pub fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }

    /// Every slot, in thread order.
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().map(|s| &**s)
    }

    /// Counts an invariant check by thread `index`; a violation (with `what` as its message)
    /// unless `ok`.
    #[inline]
    pub fn check(&self, index: usize, ok: bool, what: impl FnOnce() -> String) {
        bump(&self.slots[index].checks, 1);
        if !ok {
            self.violation(what());
        }
    }

    /// Counts an invariant check made outside the threads' slots (reporter, final checks).
    pub fn check_shared(&self, ok: bool, what: impl FnOnce() -> String) {
        self.shared_checks.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.violation(what());
        }
    }

    /// Accounts for how an operation of thread `index` ended: a panic that the fault injector
    /// planted counts as a caught fault, any other panic is a violation, described as
    /// `"{who}: unexpected panic: {message}"`.
    pub(crate) fn caught(
        &self,
        index: usize,
        outcome: std::thread::Result<()>,
        who: impl FnOnce() -> String,
    ) {
        if let Err(payload) = outcome {
            match injected_point(&*payload) {
                Some(point) => self.slots[index].fault(point),
                None => self.violation(format!(
                    "{}: unexpected panic: {}",
                    who(),
                    super::panic_message(&*payload)
                )),
            }
        }
    }

    /// Records a violation.
    pub fn violation(&self, message: String) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if messages.len() < KEPT_MESSAGES {
            eprintln!("soak: VIOLATION: {message}");
            messages.push(message);
        }
    }

    /// Invariant checks so far.
    pub fn checks(&self) -> u64 {
        self.shared_checks.load(Ordering::Relaxed)
            + self
                .slots()
                .map(|s| s.checks.load(Ordering::Relaxed))
                .sum::<u64>()
    }

    /// Violations so far.
    pub fn violations(&self) -> u64 {
        self.violations.load(Ordering::Relaxed)
    }

    /// The first violation messages.
    pub fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Injected panics caught so far, by [`FaultPoint::index`].
    pub fn faults(&self) -> [u64; FaultPoint::ALL.len()] {
        let mut total = [0; FaultPoint::ALL.len()];
        for slot in self.slots() {
            for (t, f) in total.iter_mut().zip(&slot.faults) {
                *t += f.load(Ordering::Relaxed);
            }
        }
        total
    }

    /// Committed transfers published so far.
    pub fn transfers(&self) -> u64 {
        self.slots()
            .map(|s| s.transfers.load(Ordering::Acquire))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::Monitor;
    use crate::soak::fault::{FaultPoint, InjectedFault};

    #[test]
    fn caught_counts_injected_faults_and_reports_other_panics() {
        let monitor = Monitor::new(1);
        monitor.caught(0, Ok(()), || unreachable!("no panic, no message"));
        let injected = FaultPoint::InCommute;
        monitor.caught(0, Err(Box::new(InjectedFault(injected))), || {
            unreachable!("an injected fault is no violation")
        });
        monitor.caught(0, Err(Box::new("boom")), || "worker 0".to_string());
        let mut expected = [0; FaultPoint::ALL.len()];
        expected[injected.index()] = 1;
        assert_eq!(monitor.faults(), expected);
        assert_eq!(monitor.violations(), 1);
        assert_eq!(monitor.messages(), ["worker 0: unexpected panic: boom"]);
    }
}
