//! Running one cell: spawn the workers, let them loop over the workload's operation for the
//! measuring time, and add up what they did.
//!
//! Every worker waits on a barrier, then runs operations in batches until the main thread
//! raises the stop flag. Commits and aborts are deltas over each worker thread's own counters,
//! summed: `commute::stats::thread()` for commute's structures, the peer-crate counters of
//! [`crate::peer`] for the peers. Setup (prefill) and teardown happen outside the measured time.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::report::CellResult;
use crate::rng::XorShift;

/// Operations between two looks at the stop flag.
const BATCH: usize = 16;

/// Where a structure's commits and aborts come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accounting {
    /// commute's per-thread statistics (`commute_stm::stats::thread()`).
    Commute,
    /// The attempt and commit counters of [`crate::peer::atomically`].
    Peer,
    /// Not an STM: no commits, no aborts.
    Lock,
}

/// One worker thread's view of the run.
#[derive(Debug)]
pub(crate) struct Worker {
    /// This worker's number, `0..threads`.
    pub(crate) index: usize,
    /// How many workers run the cell.
    pub(crate) threads: usize,
    /// This worker's random numbers (seeded by its index: every structure sees the same draws).
    pub(crate) rng: XorShift,
    /// Operations this worker has started so far.
    pub(crate) seq: u64,
}

impl Worker {
    /// Worker `index` of `threads` before its first operation, as a run starts it (its random
    /// numbers seeded by its index, so that a check can replay its draws).
    pub(crate) fn new(index: usize, threads: usize) -> Self {
        Worker {
            index,
            threads,
            rng: XorShift::new(0xC0FF_EE00 + index as u64),
            seq: 0,
        }
    }

    /// A record for logs and queues: the worker's number and its operation count.
    pub(crate) fn record(&self) -> u64 {
        Self::record_of(self.index as u64, self.seq)
    }

    /// The record of operation `seq` of worker `index` (which may be a number no worker has,
    /// to mark records of another origin).
    pub(crate) fn record_of(index: u64, seq: u64) -> u64 {
        debug_assert!(seq < 1 << RECORD_SEQ_BITS && index < 1 << (64 - RECORD_SEQ_BITS));
        index << RECORD_SEQ_BITS | seq
    }

    /// The worker's number and operation count of a [`record`](Self::record).
    pub(crate) fn parse_record(record: u64) -> (usize, u64) {
        (
            (record >> RECORD_SEQ_BITS) as usize,
            record & ((1 << RECORD_SEQ_BITS) - 1),
        )
    }
}

/// The bits of a [`Worker::record`] that hold the operation count.
const RECORD_SEQ_BITS: u32 = 48;

/// A workload on one structure, as the runner drives it.
pub(crate) trait Subject: Send + Sync + Sized + 'static {
    /// Where commits and aborts are counted.
    const ACCOUNTING: Accounting;

    /// Builds (and prefills) the shared structure for `threads` workers.
    fn new(threads: usize) -> Self;

    /// Runs one operation; returns how many operations it completed (0 for a pop that found
    /// the queue empty).
    fn op(&self, worker: &mut Worker) -> u64;

    /// Checks the structure after the run, given the operations completed (in all) and the
    /// operations each worker started (its final [`Worker::seq`], by worker number).
    fn check(&self, _ops: u64, _started: &[u64]) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    ops: u64,
    /// The worker's final [`Worker::seq`].
    started: u64,
    commits: u64,
    aborts: u64,
    end: Option<Instant>,
}

fn work<S: Subject>(
    subject: &S,
    index: usize,
    threads: usize,
    stop: &AtomicBool,
    start: &Barrier,
) -> Tally {
    let mut worker = Worker::new(index, threads);
    let stm_before = (S::ACCOUNTING == Accounting::Commute).then(commute_stm::stats::thread);
    let peer_before = crate::peer::counters();
    start.wait();
    let mut ops = 0;
    // At least one batch, even if the stop came before this worker was scheduled (a loaded
    // machine, very short cells): every cell measures something.
    loop {
        for _ in 0..BATCH {
            ops += subject.op(&mut worker);
            worker.seq += 1;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let end = Instant::now();
    let (commits, aborts) = match S::ACCOUNTING {
        Accounting::Commute => {
            let delta = commute_stm::stats::thread() - stm_before.unwrap_or_default();
            (delta.commits, delta.aborts())
        }
        Accounting::Peer => {
            let (commits, aborts) = crate::peer::counters();
            (commits - peer_before.0, aborts - peer_before.1)
        }
        Accounting::Lock => (0, 0),
    };
    Tally {
        ops,
        started: worker.seq,
        commits,
        aborts,
        end: Some(end),
    }
}

/// What the workers of one run did, added up.
#[derive(Debug)]
pub(crate) struct Measured {
    /// Operations completed by all workers.
    pub(crate) ops: u64,
    /// The operations each worker started, by worker number.
    pub(crate) started: Vec<u64>,
    /// From the start to the last worker's last operation.
    pub(crate) seconds: f64,
    /// Commits counted as the structure's [`Accounting`] says (0 for locks).
    pub(crate) commits: u64,
    /// Aborts, likewise.
    pub(crate) aborts: u64,
}

/// Runs `threads` workers on `subject` from one start for `duration`, then raises `stop` (which
/// a thread of the caller's may watch too) and adds up what the workers did.
pub(crate) fn measure<S: Subject>(
    subject: &S,
    threads: usize,
    duration: Duration,
    stop: &AtomicBool,
) -> Measured {
    let start = Barrier::new(threads + 1);
    let (began, tallies) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|index| {
                let start = &start;
                scope.spawn(move || work(subject, index, threads, stop, start))
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let tallies: Vec<Tally> = workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect();
        (began, tallies)
    });
    let ended = tallies.iter().filter_map(|t| t.end).max().unwrap_or(began);
    Measured {
        ops: tallies.iter().map(|t| t.ops).sum(),
        started: tallies.iter().map(|t| t.started).collect(),
        seconds: ended.duration_since(began).as_secs_f64(),
        commits: tallies.iter().map(|t| t.commits).sum(),
        aborts: tallies.iter().map(|t| t.aborts).sum(),
    }
}

/// Runs `S` with `threads` workers for `duration` and measures it.
///
/// # Panics
///
/// If the structure fails its check after the run (a lost update, a broken invariant): a
/// benchmark of a wrong structure is worthless.
pub(crate) fn run_cell<S: Subject>(
    workload: &'static str,
    structure: &'static str,
    threads: usize,
    duration: Duration,
) -> CellResult {
    let subject = S::new(threads);
    let measured = measure(&subject, threads, duration, &AtomicBool::new(false));
    if let Err(problem) = subject.check(measured.ops, &measured.started) {
        panic!("{workload} on {structure} with {threads} threads: {problem}");
    }
    drop(subject);
    commute_stm::reclaim_retired();
    let stm = S::ACCOUNTING != Accounting::Lock;
    CellResult {
        workload,
        structure,
        threads,
        ops: measured.ops,
        seconds: measured.seconds,
        commits: stm.then_some(measured.commits),
        aborts: stm.then_some(measured.aborts),
        long_read: None,
    }
}
