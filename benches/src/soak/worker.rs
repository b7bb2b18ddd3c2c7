//! A mixed-workload worker: draws an operation, plants a fault in it (sometimes), runs it as a
//! transaction under `catch_unwind`, and logs what its committed transactions did.
//!
//! Logging goes through `on_commit` hooks registered by the operation itself, so only
//! committed attempts are logged; an injected commit-hook panic is planted after those hooks,
//! so a transaction that committed is logged even when a hook then panics. The final checks
//! rebuild each structure's expected contents from these logs.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use commute::Transaction;

use super::args::Mode;
use super::fault::{Fault, FaultPoint, atomically_with_fault};
use super::monitor::Monitor;
use super::shared::{
    ACCOUNTS, BANK_TOTAL, BOUNDED_CAPACITY, BOX_SPREAD, BOXES, Item, KEYS_PER_WORKER, MAP_SPREAD,
    MapWrite, Shared, decode_value, drain_checked, make_value, pop_up_to, push_mix, scan_checked,
    value_len, write_map_key, write_set_key,
};
use crate::rng::XorShift;

/// The operations of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Move money between two accounts (the debit in two writes of one variable, read back
    /// between them; a counter add).
    Transfer,
    /// Sum every account; the sum must be the bank's total in every attempt.
    Audit,
    /// Push 1 to 4 items on the unbounded queue.
    QueuePush,
    /// Pop up to 4 items from the unbounded queue, each checked.
    QueuePop,
    /// Take up to 3 items from the unbounded queue (`take`), each checked: the front item
    /// (peeked) in the attempt, the handle's item after the commit.
    QueueTake,
    /// Drain the unbounded queue, each item checked, as many as pushed and not popped.
    QueueDrain,
    /// Walk the unbounded queue in place: it must be what the pops left of the pushes.
    QueueScan,
    /// Try to push 1 to 3 items on the bounded queue.
    BoundedPush,
    /// Pop up to 3 items from the bounded queue, each checked; sometimes check its length.
    BoundedPop,
    /// Insert, remove or upsert one of the worker's own map keys.
    MapWrite,
    /// Compare 16 of the worker's own map keys with its model.
    MapCheck,
    /// Read a key of any worker; the value must be intact.
    MapRead,
    /// Insert or remove one of the worker's own set keys, checking membership first.
    SetWrite,
    /// Replace a shared heap value with the next one.
    BoxReplace,
    /// Read a shared heap value; it must be intact.
    BoxRead,
    /// Move one unit between two variables of the long transactions.
    LongShortWrite,
}

/// Weights of the mixed mode (percent).
const MIXED: &[(Op, u64)] = &[
    (Op::Transfer, 15),
    (Op::Audit, 3),
    (Op::QueuePush, 9),
    (Op::QueuePop, 6),
    (Op::QueueTake, 3),
    (Op::QueueDrain, 1),
    (Op::QueueScan, 2),
    (Op::BoundedPush, 6),
    (Op::BoundedPop, 7),
    (Op::MapWrite, 13),
    (Op::MapCheck, 3),
    (Op::MapRead, 5),
    (Op::SetWrite, 6),
    (Op::BoxReplace, 6),
    (Op::BoxRead, 4),
    (Op::LongShortWrite, 11),
];

/// Weights of the churn mode: heap allocation and release, with their checks.
const CHURN: &[(Op, u64)] = &[
    (Op::QueuePush, 14),
    (Op::QueuePop, 16),
    (Op::QueueScan, 2),
    (Op::BoundedPush, 8),
    (Op::BoundedPop, 9),
    (Op::MapWrite, 23),
    (Op::MapCheck, 2),
    (Op::SetWrite, 12),
    (Op::BoxReplace, 12),
    (Op::BoxRead, 2),
];

/// What one worker's committed transactions did.
#[derive(Clone, Debug, Default)]
pub struct WorkerLog {
    /// Its own map keys and the `v` of each value.
    pub map: HashMap<u64, u64>,
    /// Its own set keys present.
    pub set: HashSet<u64>,
    /// Items it pushed on the unbounded queue (its next sequence number).
    pub queue_pushed: u64,
    /// Items it popped from the unbounded queue.
    pub queue_popped: u64,
    /// Items it pushed on the bounded queue.
    pub bounded_pushed: u64,
    /// Items it popped from the bounded queue.
    pub bounded_popped: u64,
    /// Committed transfers.
    pub transfers: u64,
    /// Committed map writes.
    pub map_writes: u64,
    /// Committed replacements of each box.
    pub box_writes: Vec<u64>,
    /// The largest stamp it committed to `high_water`.
    pub high_water: u64,
    /// The wrapping sum of `push_mix` over the items it pushed on the unbounded queue.
    pub push_mix: u64,
}

/// One mixed-workload thread.
pub(crate) struct Worker<'a> {
    index: usize,
    /// Mixed-workload workers in the run (owners of map keys).
    workers: usize,
    shared: &'a Shared,
    monitor: &'a Monitor,
    rng: XorShift,
    fault_rate: f64,
    ops: &'static [(Op, u64)],
    total_weight: u64,
    log: Rc<RefCell<WorkerLog>>,
}

impl<'a> Worker<'a> {
    /// Worker `index` (also its producer id and monitor slot).
    pub(crate) fn new(
        index: usize,
        workers: usize,
        shared: &'a Shared,
        monitor: &'a Monitor,
        seed: u64,
        fault_rate: f64,
        mode: Mode,
    ) -> Self {
        let ops = match mode {
            Mode::Churn => CHURN,
            Mode::Mixed => MIXED,
        };
        let log = WorkerLog {
            box_writes: vec![0; BOXES],
            ..WorkerLog::default()
        };
        Worker {
            index,
            workers,
            shared,
            monitor,
            rng: XorShift::new(seed ^ (index as u64).wrapping_mul(0xA076_1D64_78BD_642F)),
            fault_rate,
            ops,
            total_weight: ops.iter().map(|(_, w)| w).sum(),
            log: Rc::new(RefCell::new(log)),
        }
    }

    /// Runs operations until `stop`; returns the log.
    pub(crate) fn run(mut self, stop: &AtomicBool) -> WorkerLog {
        let slot = self.monitor.slot(self.index);
        while !stop.load(Ordering::Relaxed) {
            let op = self.draw_op();
            let fault = Fault::at(FaultPoint::draw(&mut self.rng, self.fault_rate));
            let outcome = catch_unwind(AssertUnwindSafe(|| self.run_op(op, fault)));
            self.monitor.caught(self.index, outcome, || {
                format!("worker {} in {op:?}", self.index)
            });
            // Published after the transaction (and its hooks) ended: the reporter's counter
            // check allows one committed, unpublished transfer per thread.
            let transfers = self.log.borrow().transfers;
            slot.transfers.store(transfers, Ordering::Release);
            slot.progress();
        }
        self.log.borrow().clone()
    }

    fn draw_op(&mut self) -> Op {
        let mut roll = self.rng.below(self.total_weight);
        for &(op, weight) in self.ops {
            if roll < weight {
                if op == Op::LongShortWrite && self.shared.long_vars.len() < 2 {
                    return Op::Transfer;
                }
                return op;
            }
            roll -= weight;
        }
        unreachable!("the roll is below the total weight")
    }

    /// Registers `update` of the log to run if the attempt commits.
    fn log_on_commit(&self, tx: &Transaction, update: impl FnOnce(&mut WorkerLog) + 'static) {
        let log = self.log.clone();
        tx.on_commit(move || update(&mut log.borrow_mut()));
    }

    fn own_key(&mut self) -> u64 {
        self.index as u64 * KEYS_PER_WORKER + self.rng.below(KEYS_PER_WORKER)
    }

    fn run_op(&mut self, op: Op, fault: Fault) {
        let s = self.shared;
        let m = self.monitor;
        let me = self.index;
        let sink = &s.high_water;
        match op {
            Op::Transfer => {
                let from = self.rng.below(ACCOUNTS as u64) as usize;
                let to = (from + 1 + self.rng.below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
                let amount = 1 + self.rng.below(50) as i64;
                atomically_with_fault(fault, sink, |tx, fault| {
                    // The debit in two writes of one variable, the first read back.
                    let half = amount / 2;
                    let a = s.accounts[from].read(tx)?;
                    s.accounts[from].write(tx, a - half);
                    let between = s.accounts[from].read(tx)?;
                    m.check(me, between == a - half, || {
                        format!("transfer: read {between} back after writing {}", a - half)
                    });
                    s.accounts[from].write(tx, between - (amount - half));
                    fault.between_writes();
                    let b = s.accounts[to].read(tx)?;
                    s.accounts[to].write(tx, b + amount);
                    s.transfers.incr(tx);
                    self.log_on_commit(tx, |log| log.transfers += 1);
                    Ok(())
                });
            }
            Op::Audit => atomically_with_fault(fault, sink, |tx, _| {
                let mut total = 0;
                for account in s.accounts.iter() {
                    total += account.read(tx)?;
                }
                m.check(me, total == BANK_TOTAL, || {
                    format!("audit: the accounts sum to {total}, not {BANK_TOTAL}")
                });
                Ok(())
            }),
            Op::QueuePush => {
                let n = 1 + self.rng.below(4);
                let first = self.log.borrow().queue_pushed;
                let stamp = ((first + n) << 8) | me as u64;
                atomically_with_fault(fault, sink, |tx, fault| {
                    // Per item: an add, an incr and a general commute (not idempotent) of one
                    // variable each, several times in one transaction.
                    let mut mix = 0u64;
                    for i in 0..n {
                        s.queue.push(tx, Item::new(me as u32, first + i));
                        s.queue_pushes.add(tx, 1);
                        s.queue_items.incr(tx);
                        let x = push_mix(me as u32, first + i);
                        s.push_mix.commute(tx, move |h| h.wrapping_add(x));
                        mix = mix.wrapping_add(x);
                        if i == 0 {
                            fault.between_writes();
                        }
                    }
                    s.high_water.commute(tx, move |h| h.max(stamp));
                    self.log_on_commit(tx, move |log| {
                        log.queue_pushed += n;
                        log.high_water = log.high_water.max(stamp);
                        log.push_mix = log.push_mix.wrapping_add(mix);
                    });
                    Ok(())
                });
            }
            Op::QueuePop => {
                let most = 1 + self.rng.below(4);
                atomically_with_fault(fault, sink, |tx, _| {
                    let pop = |tx: &Transaction| {
                        let item = s.queue.pop(tx)?;
                        if item.is_some() {
                            s.queue_items.decr(tx);
                        }
                        Ok(item)
                    };
                    let popped = pop_up_to(tx, most, pop, &s.queue_next, m, me)?;
                    self.log_on_commit(tx, move |log| log.queue_popped += popped);
                    Ok(())
                });
            }
            Op::QueueTake => {
                let most = 1 + self.rng.below(3);
                let into_inner = self.rng.below(8) == 0;
                let taken = atomically_with_fault(fault, sink, |tx, _| {
                    // The front item, peeked, is what the take must hand over: checked as a
                    // pop's in the attempt, against the handle's after the commit.
                    let handles = RefCell::new(Vec::new());
                    let take = |tx: &Transaction| {
                        let Some(front) = s.queue.peek(tx)? else {
                            return Ok(None);
                        };
                        let handle = s.queue.take(tx)?;
                        m.check(me, handle.is_some(), || {
                            format!("queue take: no item where {front:?} was in front")
                        });
                        if let Some(handle) = handle {
                            handles.borrow_mut().push((front.clone(), handle));
                        }
                        s.queue_items.decr(tx);
                        Ok(Some(front))
                    };
                    let popped = pop_up_to(tx, most, take, &s.queue_next, m, me)?;
                    self.log_on_commit(tx, move |log| log.queue_popped += popped);
                    Ok(handles.into_inner())
                });
                for (front, handle) in taken {
                    let item = if into_inner {
                        handle.into_inner()
                    } else {
                        (*handle).clone()
                    };
                    m.check(me, item == front, || {
                        format!("queue take: the handle holds {item:?}, {front:?} was taken")
                    });
                }
            }
            Op::QueueDrain => atomically_with_fault(fault, sink, |tx, _| {
                let drained = drain_checked(tx, &s.queue, &s.queue_next, &s.queue_pushes, m, me)?;
                for _ in 0..drained {
                    s.queue_items.decr(tx);
                }
                self.log_on_commit(tx, move |log| log.queue_popped += drained);
                Ok(())
            }),
            Op::QueueScan => atomically_with_fault(fault, sink, |tx, _| {
                // In one snapshot: each producer's items are those its pop cursor has not
                // passed, in order, as many as were pushed and not popped, and as many as the
                // queue's length says.
                scan_checked(tx, &s.queue, &s.queue_next, &s.queue_pushes, m, me)
            }),
            Op::BoundedPush => {
                let n = 1 + self.rng.below(3);
                let first = self.log.borrow().bounded_pushed;
                atomically_with_fault(fault, sink, |tx, fault| {
                    let mut pushed = 0;
                    for i in 0..n {
                        if s.bounded
                            .try_push(tx, Item::new(me as u32, first + i))?
                            .is_err()
                        {
                            break;
                        }
                        pushed += 1;
                        fault.between_writes();
                    }
                    self.log_on_commit(tx, move |log| log.bounded_pushed += pushed);
                    Ok(())
                });
            }
            Op::BoundedPop => {
                let most = 1 + self.rng.below(3);
                let check_len = self.rng.below(8) == 0;
                atomically_with_fault(fault, sink, |tx, _| {
                    let pop = |tx: &Transaction| s.bounded.pop(tx);
                    let popped = pop_up_to(tx, most, pop, &s.bounded_next, m, me)?;
                    if check_len {
                        let len = s.bounded.len(tx)?;
                        m.check(me, len <= BOUNDED_CAPACITY, || {
                            format!("the bounded queue holds {len} > {BOUNDED_CAPACITY} items")
                        });
                    }
                    self.log_on_commit(tx, move |log| log.bounded_popped += popped);
                    Ok(())
                });
            }
            Op::MapWrite => {
                let key = self.own_key();
                let kind = self.rng.below(3);
                let v = self.rng.next_u64() >> 20;
                let write = match kind {
                    0 => MapWrite::Insert(v),
                    1 => MapWrite::Remove,
                    _ => MapWrite::Bump,
                };
                let log = self.log.clone();
                atomically_with_fault(fault, sink, |tx, fault| {
                    let logged = log.borrow().map.get(&key).copied();
                    write_map_key(tx, &s.map, key, write, logged, m, me)?;
                    fault.between_writes();
                    s.map_writes.incr(tx);
                    self.log_on_commit(tx, move |log| {
                        log.map_writes += 1;
                        match write {
                            MapWrite::Insert(v) => {
                                log.map.insert(key, v);
                            }
                            MapWrite::Remove => {
                                log.map.remove(&key);
                            }
                            MapWrite::Bump => *log.map.entry(key).or_insert(0) += 1,
                        }
                    });
                    Ok(())
                });
            }
            Op::MapCheck => {
                let keys: Vec<u64> = (0..16).map(|_| self.own_key()).collect();
                let log = self.log.clone();
                atomically_with_fault(fault, sink, |tx, _| {
                    // Only this thread writes these keys, and its log is up to date between
                    // its transactions: every attempt must see exactly the log.
                    let log = log.borrow();
                    for key in &keys {
                        let found = s.map.get(tx, key)?;
                        let want = log.map.get(key).map(|&v| make_value(v, MAP_SPREAD));
                        m.check(me, found == want, || {
                            format!("map key {key}: found {found:?}, the log says {want:?}")
                        });
                    }
                    Ok(())
                });
            }
            Op::MapRead => {
                let owner = self.rng.below(self.workers as u64);
                let key = owner * KEYS_PER_WORKER + self.rng.below(KEYS_PER_WORKER);
                if fault.point().is_none() {
                    // The one-call form, for coverage.
                    if let Some(value) = s.map.atomic().get(&key) {
                        check_map_value(m, me, key, &value);
                    }
                } else {
                    atomically_with_fault(fault, sink, |tx, _| {
                        if let Some(value) = s.map.get_ref(tx, &key)? {
                            check_map_value(m, me, key, value);
                        }
                        Ok(())
                    });
                }
            }
            Op::SetWrite => {
                let key = self.own_key();
                let insert = self.rng.below(2) == 0;
                let log = self.log.clone();
                atomically_with_fault(fault, sink, |tx, fault| {
                    let logged = log.borrow().set.contains(&key);
                    write_set_key(tx, &s.set, key, insert, logged, m, me)?;
                    fault.between_writes();
                    self.log_on_commit(tx, move |log| {
                        if insert {
                            log.set.insert(key);
                        } else {
                            log.set.remove(&key);
                        }
                    });
                    Ok(())
                });
            }
            Op::BoxReplace => {
                let b = self.rng.below(BOXES as u64) as usize;
                atomically_with_fault(fault, sink, |tx, fault| {
                    let current = s.boxes[b].read(tx)?;
                    let stamp = check_box_value(m, me, b, current);
                    s.boxes[b].write(tx, make_value(stamp + 1, BOX_SPREAD));
                    fault.between_writes();
                    self.log_on_commit(tx, move |log| log.box_writes[b] += 1);
                    Ok(())
                });
            }
            Op::BoxRead => {
                let b = self.rng.below(BOXES as u64) as usize;
                atomically_with_fault(fault, sink, |tx, _| {
                    check_box_value(m, me, b, s.boxes[b].read(tx)?);
                    Ok(())
                });
            }
            Op::LongShortWrite => {
                let n = s.long_vars.len() as u64;
                let i = self.rng.below(n) as usize;
                let j = ((i as u64 + 1 + self.rng.below(n - 1)) % n) as usize;
                atomically_with_fault(fault, sink, |tx, fault| {
                    let a = s.long_vars[i].read(tx)?;
                    s.long_vars[i].write(tx, a - 1);
                    fault.between_writes();
                    let b = s.long_vars[j].read(tx)?;
                    s.long_vars[j].write(tx, b + 1);
                    Ok(())
                });
            }
        }
    }
}

/// Checks a map value read from `key`; a violation unless intact.
fn check_map_value(monitor: &Monitor, slot: usize, key: u64, value: &[u64]) {
    let ok = decode_value(value).is_some_and(|v| value.len() == value_len(v, MAP_SPREAD));
    monitor.check(slot, ok, || {
        format!("map key {key} holds a torn value {value:?}")
    });
}

/// Checks box `b`'s value; returns its stamp (0 if torn, after recording the violation).
pub(crate) fn check_box_value(monitor: &Monitor, slot: usize, b: usize, value: &[u64]) -> u64 {
    let stamp = decode_value(value).filter(|&v| value.len() == value_len(v, BOX_SPREAD));
    monitor.check(slot, stamp.is_some(), || {
        format!("box {b} holds a torn value of {} words", value.len())
    });
    stamp.unwrap_or(0)
}
