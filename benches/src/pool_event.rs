//! `pool-event`: the `event` handler run through commute's `TaskPool`, as an event loop would:
//! batches of events are added to a pool and run as transactions on the pool's workers.
//!
//! Unlike the other workloads (each worker loops over its own operations), a cell here runs
//! batches of `BATCH` events through a fresh pool until the measuring time is used; the time
//! counted is the pools' own `run` time, and commits and aborts come from their reports (which
//! include the pool's bookkeeping, if it ever conflicted).

use std::sync::Arc;
use std::time::{Duration, Instant};

use commute::TaskPool;

use crate::report::CellResult;
use crate::rng::XorShift;
use crate::workloads::{TxEvent, USERS};

/// Events per pool run.
const BATCH: u64 = 4_096;

/// Runs `E`'s handler through a `TaskPool` with `threads` workers for about `duration`.
pub(crate) fn run_cell<E: TxEvent>(
    workload: &'static str,
    structure: &'static str,
    threads: usize,
    duration: Duration,
) -> CellResult {
    let state = Arc::new(E::create(USERS));
    let mut rng = XorShift::new(0x5EED);
    let (mut ops, mut commits, mut aborts) = (0, 0, 0);
    let mut busy = Duration::ZERO;
    let started = Instant::now();
    // At least one batch, however short the cell.
    while ops == 0 || started.elapsed() < duration {
        let mut pool = TaskPool::new().with_threads(threads);
        for i in 0..BATCH {
            let state = state.clone();
            let (user, record) = (rng.below(USERS), ops + i);
            pool.add(move |tx, _| state.handle_in(tx, user, record));
        }
        let report = pool.run().expect("an event handler panicked");
        ops += report.tasks;
        commits += report.commits;
        aborts += report.aborts;
        busy += report.elapsed;
    }
    CellResult {
        workload,
        structure,
        threads,
        ops,
        seconds: busy.as_secs_f64(),
        commits: Some(commits),
        aborts: Some(aborts),
        long_read: None,
    }
}
