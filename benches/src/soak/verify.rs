//! The checks after every soak thread has stopped: drain the queues, then compare every
//! structure with the models rebuilt from the threads' logs of committed transactions.

use std::collections::{HashMap, HashSet};

use commute::{StmResult, TVar, Transaction, atomically};

use super::monitor::Monitor;
use super::shared::{
    self, BANK_TOTAL, BOUNDED_CAPACITY, BOX_SPREAD, Item, MAP_SPREAD, Shared, make_value,
};
use super::{Finished, WorkerLog};

/// The checks after every thread has stopped: drain the queues, then compare every structure
/// with the models rebuilt from the logs in `done`. What they find goes to `monitor`, whose
/// slot `main` takes the checks made inside transactions (the drains'). Tests call it on a
/// state and logs of their own, to see a check fire.
pub fn final_checks(shared: &Shared, monitor: &Monitor, main: usize, done: &Finished) {
    let logs = &done.logs;
    let sum = |f: fn(&WorkerLog) -> u64| logs.iter().map(f).sum::<u64>();

    // Bank.
    let total = atomically(|tx| {
        let mut total = 0;
        for account in shared.accounts.iter() {
            total += account.read(tx)?;
        }
        Ok(total)
    });
    monitor.check_shared(total == BANK_TOTAL, || {
        format!("bank: the accounts sum to {total}, not {BANK_TOTAL}")
    });
    let transfers = sum(|l| l.transfers);
    let counted = shared.transfers.load();
    monitor.check_shared(counted == transfers as i64, || {
        format!("bank: the transfers counter reads {counted}, the logs say {transfers}")
    });
    println!(
        "soak: bank: {} accounts, total {total} (conserved: {}); {transfers} transfers, \
         counter exact: {}",
        shared.accounts.len(),
        total == BANK_TOTAL,
        counted == transfers as i64
    );

    // Unbounded queue: drain, then every producer's items must all have been popped.
    let Drained {
        pushed,
        popped,
        drained,
        mut ok,
    } = drain_producers(
        "queue",
        |tx| shared.queue.pop(tx),
        &shared.queue_next,
        (|l| l.queue_pushed, |l| l.queue_popped),
        logs,
        monitor,
        main,
    );
    let adds = shared.queue_pushes.load();
    ok &= adds == pushed;
    monitor.check_shared(adds == pushed, || {
        format!("queue: the push counter reads {adds}, the logs say {pushed} pushed")
    });
    // The workers' count of the items left: their incrs less their decrs (the final drain
    // pops without counting).
    let left = pushed as i64 - (popped - drained) as i64;
    let counted = shared.queue_items.load();
    ok &= counted == left;
    monitor.check_shared(counted == left, || {
        format!(
            "queue: the items counter reads {counted}, the logs say {pushed} pushed and {} \
             popped",
            popped - drained
        )
    });
    let mix = logs
        .iter()
        .fold(0u64, |sum, l| sum.wrapping_add(l.push_mix));
    let mixed = shared.push_mix.load();
    ok &= mixed == mix;
    monitor.check_shared(mixed == mix, || {
        format!("queue: the commuted push mix is {mixed:#x}, the logs say {mix:#x}")
    });
    println!(
        "soak: queue: {pushed} items from {} producers, {popped} consumed ({drained} at the \
         end); every producer's items all consumed, push and item counters and push mix exact: \
         {ok}",
        logs.len(),
    );

    // Bounded queue: the same, then the capacity must be whole again.
    let Drained {
        pushed,
        popped,
        drained,
        ok,
    } = drain_producers(
        "bounded queue",
        |tx| shared.bounded.pop(tx),
        &shared.bounded_next,
        (|l| l.bounded_pushed, |l| l.bounded_popped),
        logs,
        monitor,
        main,
    );
    let accepted = (0..=BOUNDED_CAPACITY as u64)
        .take_while(|&i| shared.bounded.atomic().try_push(Item::new(0, i)).is_ok())
        .count();
    monitor.check_shared(accepted == BOUNDED_CAPACITY, || {
        format!(
            "bounded queue: empty, it took {accepted} items, not its capacity {BOUNDED_CAPACITY}"
        )
    });
    while let Some(item) = shared.bounded.atomic().pop() {
        monitor.check_shared(item.is_intact(), || format!("bounded queue: torn {item:?}"));
    }
    println!(
        "soak: bounded queue: {pushed} items, {popped} consumed ({drained} at the end); every \
         producer's items all consumed: {ok}; capacity whole again: {}",
        accepted == BOUNDED_CAPACITY
    );

    // Pipe: what is left continues the consumer's sequence.
    let mut next = done.pipe_popped;
    while let Some(item) = shared.pipe.atomic().pop() {
        monitor.check_shared(item.seq == next && item.is_intact(), || {
            format!("pipe: item {} left where {next} was next", item.seq)
        });
        next += 1;
    }
    monitor.check_shared(next == done.pipe_pushed, || {
        format!(
            "pipe: {} pushed, {} popped and {} left",
            done.pipe_pushed,
            done.pipe_popped,
            next - done.pipe_popped
        )
    });
    println!(
        "soak: pipe: {} items through a blocking queue of {}, in order, none lost: {}",
        done.pipe_pushed,
        shared.pipe.capacity(),
        next == done.pipe_pushed
    );

    // Map and set against the union of the owners' logs.
    let model: HashMap<u64, Vec<u64>> = logs
        .iter()
        .flat_map(|l| l.map.iter().map(|(&k, &v)| (k, make_value(v, MAP_SPREAD))))
        .collect();
    let found: HashMap<u64, Vec<u64>> = shared.map.atomic().iter().into_iter().collect();
    let len = shared.map.atomic().len();
    monitor.check_shared(found == model && len == model.len(), || {
        let missing = model.keys().filter(|k| !found.contains_key(k)).count();
        let extra = found.keys().filter(|k| !model.contains_key(k)).count();
        let differ = model
            .iter()
            .filter(|(k, v)| found.get(k).is_some_and(|f| f != *v))
            .count();
        format!(
            "map: {missing} keys missing, {extra} extra, {differ} with other values, len {len} \
             for {} keys",
            model.len()
        )
    });
    let writes = sum(|l| l.map_writes);
    let counted = shared.map_writes.load();
    monitor.check_shared(counted == writes as i64, || {
        format!("map: the writes counter reads {counted}, the logs say {writes}")
    });
    let set_model: HashSet<u64> = logs.iter().flat_map(|l| l.set.iter().copied()).collect();
    let set_found: HashSet<u64> = shared.set.atomic().iter().into_iter().collect();
    let set_len = shared.set.atomic().len();
    monitor.check_shared(set_found == set_model && set_len == set_model.len(), || {
        format!(
            "set: {} keys (len {set_len}), the logs say {}",
            set_found.len(),
            set_model.len()
        )
    });
    println!(
        "soak: map: {} keys equal to the model from {} logs: {}; {writes} writes, counter \
         exact: {}; set: {} keys equal to the model: {}",
        found.len(),
        logs.len(),
        found == model,
        counted == writes as i64,
        set_found.len(),
        set_found == set_model
    );

    // Heap values: each box's stamp counts its committed replacements.
    let mut boxes_ok = true;
    for (b, boxed) in shared.boxes.iter().enumerate() {
        let writes: u64 = logs.iter().map(|l| l.box_writes[b]).sum();
        let value = boxed.load();
        let ok = value == make_value(writes, BOX_SPREAD);
        boxes_ok &= ok;
        monitor.check_shared(ok, || {
            format!(
                "box {b}: holds {} words starting {:?}, the logs say {writes} replacements",
                value.len(),
                value.first()
            )
        });
    }
    let replacements: u64 = logs.iter().flat_map(|l| &l.box_writes).sum();
    let pipe_stamp = done
        .pipe_pushed
        .checked_sub(1)
        .map_or(0, |last| (last << 8) | u64::from(u32::MAX));
    // The workers' mark and the pipeline's are separate variables: the pipeline's stamps
    // (producer id u32::MAX in the low bits) would otherwise hide every worker's commute.
    let high = logs.iter().map(|l| l.high_water).max().unwrap_or(0);
    let high_found = shared.high_water.load();
    monitor.check_shared(high_found == high, || {
        format!("high water: {high_found}, the workers' logs say {high}")
    });
    let pipe_found = shared.pipe_high_water.load();
    monitor.check_shared(pipe_found == pipe_stamp, || {
        format!("pipe high water: {pipe_found}, the producer pushed up to {pipe_stamp}")
    });
    let high_ok = high_found == high && pipe_found == pipe_stamp;
    println!(
        "soak: heap values: {replacements} replacements of {} boxes, each equal to its log: \
         {boxes_ok}; commuted high-water marks exact (workers', pipeline's): {high_ok}",
        shared.boxes.len(),
    );

    // Long transactions: every unit conserved, one added per long commit.
    if let Some(long) = &done.long {
        let sum: i64 = atomically(|tx| {
            let mut sum = 0;
            for var in shared.long_vars.iter() {
                sum += var.read(tx)?;
            }
            Ok(sum)
        });
        let want = shared.long_sum(long.committed);
        monitor.check_shared(sum == want, || {
            format!("long variables sum to {sum}, not {want}")
        });
    }
}

/// Reads one count of a worker's log.
type LogCount = fn(&WorkerLog) -> u64;

/// What [`drain_producers`] found.
struct Drained {
    /// Items the logs say were pushed.
    pushed: u64,
    /// Items the logs say were popped, plus `drained`.
    popped: u64,
    /// Items popped by the drain.
    drained: u64,
    /// Every producer's items were all consumed, and as many popped as pushed.
    ok: bool,
}

/// Pops what is left in a queue of the producers' items (each checked as the workers check
/// theirs), then checks that every producer's items were all consumed and that the logs' pops
/// and the drain add up to their pushes. `counts` reads the pushes and the pops of one worker's
/// log.
fn drain_producers(
    queue: &str,
    pop: impl Fn(&Transaction) -> StmResult<Option<Item>>,
    next: &[TVar<u64>],
    counts: (LogCount, LogCount),
    logs: &[WorkerLog],
    monitor: &Monitor,
    main: usize,
) -> Drained {
    let mut drained = 0;
    while atomically(|tx| shared::pop_checked(tx, &pop, next, monitor, main)).is_some() {
        drained += 1;
    }
    let (pushed_of, popped_of) = counts;
    let mut ok = true;
    for (p, log) in logs.iter().enumerate() {
        let (pushed, consumed) = (pushed_of(log), next[p].load());
        ok &= consumed == pushed;
        monitor.check_shared(consumed == pushed, || {
            format!("{queue}: producer {p} pushed {pushed} items, {consumed} were consumed")
        });
    }
    let pushed = logs.iter().map(pushed_of).sum();
    let popped = logs.iter().map(popped_of).sum::<u64>() + drained;
    ok &= popped == pushed;
    monitor.check_shared(popped == pushed, || {
        format!("{queue}: {pushed} pushed, {popped} popped")
    });
    Drained {
        pushed,
        popped,
        drained,
        ok,
    }
}
