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
use crate::workloads::{TxEvent, USERS, check_event_totals};

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
    if let Err(problem) = check(&*state, ops) {
        panic!("{workload} on {structure} with {threads} threads: {problem}");
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

/// Checks the state after `ops` events through pools: the counter and the sessions add up to
/// `ops`, and the log (drained) holds every event's record, `0..ops`, once (in any order: a
/// pool's tasks commit in the order its workers finish them).
fn check<E: TxEvent>(state: &E, ops: u64) -> Result<(), String> {
    check_event_totals(state, ops)?;
    check_records(core::iter::from_fn(|| state.pop_log()).collect(), ops)
}

/// Checks that `records` are `0..ops`, each once, in any order.
fn check_records(mut records: Vec<u64>, ops: u64) -> Result<(), String> {
    records.sort_unstable();
    if let Some((&record, i)) = records.iter().zip(0..).find(|&(&record, i)| record != i) {
        return Err(format!("the log holds record {record} where {i} was due"));
    }
    if records.len() as u64 != ops {
        return Err(format!(
            "the log holds {} records after {ops} events",
            records.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_records;

    #[test]
    fn the_pool_log_check_takes_any_order_and_finds_a_lost_or_repeated_record() {
        assert_eq!(check_records(vec![2, 0, 3, 1], 4), Ok(()));
        assert_eq!(
            check_records(vec![2, 0, 1], 4),
            Err("the log holds 3 records after 4 events".into())
        );
        assert_eq!(
            check_records(vec![2, 0, 3], 4),
            Err("the log holds record 2 where 1 was due".into())
        );
        assert_eq!(
            check_records(vec![2, 0, 1, 3], 3),
            Err("the log holds 4 records after 3 events".into())
        );
        assert_eq!(
            check_records(vec![2, 0, 2, 1], 4),
            Err("the log holds record 2 where 3 was due".into())
        );
        assert_eq!(
            check_records(vec![0, 1, 3, 4], 4),
            Err("the log holds record 3 where 2 was due".into())
        );
    }
}
