//! The workloads, written once against small traits ([`Counter`], [`Queue`], [`Map`],
//! [`Event`], [`Bank`], [`Ledger`]) that every structure family implements: commute's
//! collections, the naive TVar-only structures, lock-based structures and the peer STM crates.
//!
//! Each trait method is one whole operation: one transaction for the STM families, one locked
//! (or lock-free) operation otherwise.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use commute_stm::{StmResult, TVar, Transaction, atomically};
use crossbeam_queue::SegQueue;
use dashmap::DashMap;

use crate::naive::{NaiveCounter, NaiveMap, NaiveQueue};
use crate::peer::{self, PeerBank, PeerCounter, PeerMap, PeerQueue, PeerStm};
use crate::runner::{Accounting, Subject, Worker};
use crate::zipf::Zipf;

/// Keys of `map-uniform` and `map-zipf`, and accounts of `long-read` (all present from the
/// start).
pub(crate) const MAP_KEYS: u64 = 100_000;
/// The skew of `map-zipf` (YCSB's default).
pub(crate) const ZIPF_EXPONENT: f64 = 0.99;
/// Keys each thread cycles through in `map-disjoint`.
pub(crate) const DISJOINT_KEYS: u64 = 4096;
/// Items in the queue before `queue` starts.
pub(crate) const QUEUE_PREFILL: u64 = 1024;
/// Users with a session in `event` (all present from the start).
pub(crate) const USERS: u64 = 10_000;
/// Accounts in `bank`.
pub(crate) const ACCOUNTS: usize = 100;
/// Starting balance of each account in `bank` and `long-read`.
pub(crate) const BALANCE: u64 = 1_000;
/// Accounts `long-read`'s reader adds up between two of its pauses.
pub(crate) const PAUSE_EVERY: u64 = 10_000;
/// Each pause of `long-read`'s reader: a sleep that stands for work done on the accounts read,
/// not synchronisation.
pub(crate) const PAUSE: Duration = Duration::from_millis(1);

type Hasher = ahash::RandomState;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(rw: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rw.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(rw: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rw.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn zipf() -> &'static Zipf {
    static ZIPF: OnceLock<Zipf> = OnceLock::new();
    ZIPF.get_or_init(|| Zipf::new(MAP_KEYS as usize, ZIPF_EXPONENT))
}

// ----- the operations each family provides ---------------------------------------------------

/// A shared count.
pub(crate) trait Counter: Send + Sync + 'static {
    const ACCOUNTING: Accounting;
    fn create() -> Self;
    fn increment(&self);
    fn total(&self) -> u64;
}

/// A FIFO queue of records.
pub(crate) trait Queue: Send + Sync + 'static {
    const ACCOUNTING: Accounting;
    fn create() -> Self;
    fn enqueue(&self, record: u64);
    fn dequeue(&self) -> Option<u64>;
}

/// A map from `u64` keys to `u64` values.
pub(crate) trait Map: Send + Sync + 'static {
    const ACCOUNTING: Accounting;
    fn create() -> Self;
    /// An empty map sized for about `keys` keys, where the structure can be presized (std's
    /// `HashMap`, `DashMap`, `TMap`); the others ignore the hint.
    fn with_capacity(_keys: u64) -> Self
    where
        Self: Sized,
    {
        Self::create()
    }
    fn lookup(&self, key: u64) -> Option<u64>;
    fn upsert(&self, key: u64, value: u64);
    fn delete(&self, key: u64);
}

/// The event handler's shared state: a request counter, a session map and a log.
pub(crate) trait Event: EventTally + Send + Sync + 'static {
    const ACCOUNTING: Accounting;
    /// The state with a session for every user in `0..users`.
    fn create(users: u64) -> Self;
    /// One event: count the request, bump `user`'s session, append `record` to the log, all
    /// as one atomic step where the family can do that.
    fn handle(&self, user: u64, record: u64);
}

/// What the check after an event run reads of the state.
pub(crate) trait EventTally {
    /// The requests counted.
    fn requests(&self) -> u64;
    /// `user`'s session count.
    fn session(&self, user: u64) -> u64;
    /// Takes the log's first record.
    fn pop_log(&self) -> Option<u64>;
}

/// An event state of three structures of one family (every family's but the one `Mutex`'s),
/// read after a run through the workloads' own traits of its parts.
pub(crate) struct EventParts<C, M, Q> {
    requests: C,
    sessions: M,
    log: Q,
}

impl<C: Counter, M: Map, Q: Queue> EventTally for EventParts<C, M, Q> {
    fn requests(&self) -> u64 {
        self.requests.total()
    }
    fn session(&self, user: u64) -> u64 {
        self.sessions.lookup(user).unwrap_or(0)
    }
    fn pop_log(&self) -> Option<u64> {
        self.log.dequeue()
    }
}

/// An event handler that can run inside a caller's transaction (for `pool-event`).
pub(crate) trait TxEvent: Event {
    /// The event's work, as part of `tx`.
    fn handle_in(&self, tx: &Transaction, user: u64, record: u64) -> StmResult<()>;
}

/// Bank accounts.
pub(crate) trait Bank: Send + Sync + 'static {
    const ACCOUNTING: Accounting;
    fn create(accounts: usize, balance: u64) -> Self;
    /// Moves `amount` from `from` to `to` if `from` holds that much.
    fn transfer(&self, from: usize, to: usize, amount: u64);
    fn total(&self) -> u64;
}

/// Bank accounts that one thread sums in one long walk while others transfer (`long-read`).
pub(crate) trait Ledger: Bank {
    /// True if a walk reads one consistent state, so that every sum is the money in the
    /// accounts; false where it may see a transfer half done (`DashMap`).
    const CONSISTENT: bool;
    /// Sums every balance in one walk that pauses as [`Walk`] does: one transaction, or under
    /// one lock, where the structure has them.
    fn long_sum(&self) -> Sum;
}

/// One long read: the sum, and the attempts it took.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sum {
    /// The balances added up.
    pub(crate) money: u64,
    /// Runs of the walk: 1 but for a transaction that ran again.
    pub(crate) attempts: u64,
    /// Of those, the runs that did not read a snapshot (`Transaction::is_snapshot` false).
    pub(crate) ordinary: u64,
}

/// The running sum of a long read: after every [`PAUSE_EVERY`] balances it sleeps [`PAUSE`].
#[derive(Default)]
struct Walk {
    money: u64,
    seen: u64,
}

impl Walk {
    fn add(&mut self, balance: u64) {
        self.money += balance;
        self.seen += 1;
        if self.seen.is_multiple_of(PAUSE_EVERY) {
            std::thread::sleep(PAUSE);
        }
    }

    /// The sum of a walk that ran once, holding a lock.
    fn locked(self) -> Sum {
        Sum {
            money: self.money,
            attempts: 1,
            ordinary: 0,
        }
    }
}

// ----- the workloads -------------------------------------------------------------------------

/// `counter`: every operation increments one shared count.
pub(crate) struct CounterWorkload<C>(C);

impl<C: Counter> Subject for CounterWorkload<C> {
    const ACCOUNTING: Accounting = C::ACCOUNTING;
    fn new(_threads: usize) -> Self {
        CounterWorkload(C::create())
    }
    fn op(&self, _worker: &mut Worker) -> u64 {
        self.0.increment();
        1
    }
    fn check(&self, ops: u64, _started: &[u64]) -> Result<(), String> {
        let total = self.0.total();
        if total == ops {
            Ok(())
        } else {
            Err(format!("count is {total} after {ops} increments"))
        }
    }
}

/// `log`: every operation appends one record to one shared log.
pub(crate) struct LogWorkload<Q>(Q);

impl<Q: Queue> Subject for LogWorkload<Q> {
    const ACCOUNTING: Accounting = Q::ACCOUNTING;
    fn new(_threads: usize) -> Self {
        LogWorkload(Q::create())
    }
    fn op(&self, worker: &mut Worker) -> u64 {
        self.0.enqueue(worker.record());
        1
    }
    fn check(&self, ops: u64, _started: &[u64]) -> Result<(), String> {
        check_log(core::iter::from_fn(|| self.0.dequeue()), ops)
    }
}

/// Checks a log drained after a run of `ops` operations, each of which appended one
/// [`Worker::record`]: every append once, each worker's in the order it made them (its records
/// count 0, 1, 2, ...).
fn check_log(records: impl Iterator<Item = u64>, ops: u64) -> Result<(), String> {
    let mut due: Vec<u64> = Vec::new();
    let mut found = 0;
    for record in records {
        let (worker, seq) = Worker::parse_record(record);
        if due.len() <= worker {
            due.resize(worker + 1, 0);
        }
        if seq != due[worker] {
            return Err(format!(
                "worker {worker}'s append {seq} is in the log where its append {} was due",
                due[worker]
            ));
        }
        due[worker] += 1;
        found += 1;
    }
    if found == ops {
        Ok(())
    } else {
        Err(format!("the log holds {found} records after {ops} appends"))
    }
}

/// `queue`: the first half of the threads (rounded up) push, the others pop; one thread
/// alternates. Pops that find the queue empty do not count as operations.
pub(crate) struct QueueWorkload<Q>(Q);

/// The worker number in the records of [`QueueWorkload`]'s prefilled items: no worker's.
const PREFILL_WORKER: u64 = 0xFFFF;

/// Whether operation `seq` of worker `index` (of `threads`) on `queue` is a push.
fn pushes(threads: usize, index: usize, seq: u64) -> bool {
    if threads == 1 {
        seq.is_multiple_of(2)
    } else {
        index < threads.div_ceil(2)
    }
}

impl<Q: Queue> Subject for QueueWorkload<Q> {
    const ACCOUNTING: Accounting = Q::ACCOUNTING;
    fn new(_threads: usize) -> Self {
        let queue = Q::create();
        for i in 0..QUEUE_PREFILL {
            queue.enqueue(Worker::record_of(PREFILL_WORKER, i));
        }
        QueueWorkload(queue)
    }
    fn op(&self, worker: &mut Worker) -> u64 {
        if pushes(worker.threads, worker.index, worker.seq) {
            self.0.enqueue(worker.record());
            1
        } else {
            u64::from(self.0.dequeue().is_some())
        }
    }
    /// Drains the queue: it holds as many items as were prefilled and pushed but not popped,
    /// the prefilled ones first, and of each worker's pushes the last ones, in order (pops take
    /// from the front).
    fn check(&self, ops: u64, started: &[u64]) -> Result<(), String> {
        let threads = started.len();
        // Each worker's pushes were operations `first, first + step, ...` below its `started`.
        let step = if threads == 1 { 2 } else { 1 };
        let pushes_of = |index: usize, n: u64| -> u64 {
            (0..n.min(step))
                .find(|&seq| pushes(threads, index, seq))
                .map_or(0, |first| (n - first).div_ceil(step))
        };
        let pushed: u64 = started
            .iter()
            .enumerate()
            .map(|(i, &n)| pushes_of(i, n))
            .sum();
        // Every push completed an operation; the rest are pops that found an item.
        let popped = ops
            .checked_sub(pushed)
            .ok_or_else(|| format!("{ops} operations completed, fewer than {pushed} pushes"))?;
        let mut prefill_due = None;
        let mut last_seen: Vec<Option<u64>> = vec![None; threads];
        let mut left = 0;
        while let Some(record) = self.0.dequeue() {
            left += 1;
            let (worker, seq) = Worker::parse_record(record);
            if worker as u64 == PREFILL_WORKER {
                if last_seen.iter().any(Option::is_some) || prefill_due.is_some_and(|d| d != seq) {
                    return Err(format!("prefilled item {seq} is out of order"));
                }
                prefill_due = Some(seq + 1);
                continue;
            }
            let Some(last) = last_seen.get_mut(worker) else {
                return Err(format!(
                    "the queue holds a record of worker {worker}, of {threads}"
                ));
            };
            if let Some(before) = *last
                && seq != before + step
            {
                return Err(format!(
                    "worker {worker}'s push {seq} follows its push {before} in the queue"
                ));
            }
            *last = Some(seq);
        }
        if prefill_due.is_some_and(|due| due != QUEUE_PREFILL) {
            return Err("the prefilled items left end before the last".into());
        }
        for (index, &seen) in last_seen.iter().enumerate() {
            let Some(seen) = seen else { continue };
            let last_push = (0..started[index])
                .rev()
                .find(|&seq| pushes(threads, index, seq));
            if last_push != Some(seen) {
                return Err(format!(
                    "worker {index}'s pushes in the queue end at {seen}, its last was {last_push:?}"
                ));
            }
        }
        let expected = (QUEUE_PREFILL + pushed).checked_sub(popped);
        if expected == Some(left) {
            Ok(())
        } else {
            Err(format!(
                "the queue holds {left} items after {QUEUE_PREFILL} prefilled, {pushed} pushed \
                 and {popped} popped"
            ))
        }
    }
}

/// `map-disjoint`: each thread cycles through its own keys: a pass of inserts (new keys), two
/// passes of updates, a pass of removals, and again.
pub(crate) struct MapDisjoint<M>(M);

/// The key of `worker`'s `slot` in [`MapDisjoint`].
fn disjoint_key(worker: usize, slot: u64) -> u64 {
    (worker as u64) << 32 | slot
}

/// Whether operation `seq` of a [`MapDisjoint`] worker removes its key (else it sets the key to
/// `seq`).
fn disjoint_removes(seq: u64) -> bool {
    (seq / DISJOINT_KEYS) % 4 == 3
}

impl<M: Map> Subject for MapDisjoint<M> {
    const ACCOUNTING: Accounting = M::ACCOUNTING;
    fn new(threads: usize) -> Self {
        MapDisjoint(M::with_capacity(threads as u64 * DISJOINT_KEYS))
    }
    fn op(&self, worker: &mut Worker) -> u64 {
        let key = disjoint_key(worker.index, worker.seq % DISJOINT_KEYS);
        if disjoint_removes(worker.seq) {
            self.0.delete(key);
        } else {
            self.0.upsert(key, worker.seq);
        }
        1
    }
    /// Each worker's keys hold what its last operation on each left: absent after a removal
    /// (or none), else that operation's number.
    fn check(&self, _ops: u64, started: &[u64]) -> Result<(), String> {
        for (worker, &n) in started.iter().enumerate() {
            for slot in 0..DISJOINT_KEYS {
                // The worker's last operation on this slot: the highest `seq < n` that is
                // `slot` modulo the keys.
                let last =
                    (slot < n).then(|| slot + (n - 1 - slot) / DISJOINT_KEYS * DISJOINT_KEYS);
                let due = last.filter(|&seq| !disjoint_removes(seq));
                let found = self.0.lookup(disjoint_key(worker, slot));
                if found != due {
                    return Err(format!(
                        "worker {worker}'s key {slot} holds {found:?} where {due:?} was due"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `map-uniform` (`ZIPF = false`) and `map-zipf` (`ZIPF = true`): 90% lookups, 10% inserts or
/// updates, over [`MAP_KEYS`] keys all present from the start.
pub(crate) struct MapRandom<M, const ZIPF: bool>(M);

impl<M: Map, const ZIPF: bool> Subject for MapRandom<M, ZIPF> {
    const ACCOUNTING: Accounting = M::ACCOUNTING;
    fn new(_threads: usize) -> Self {
        let map = M::with_capacity(MAP_KEYS);
        for key in 0..MAP_KEYS {
            map.upsert(key, key);
        }
        MapRandom(map)
    }
    fn op(&self, worker: &mut Worker) -> u64 {
        let (key, sets) = Self::draw(worker);
        if sets {
            self.0.upsert(key, worker.seq);
        } else {
            std::hint::black_box(self.0.lookup(key));
        }
        1
    }
    /// Replays each worker's draws: a key no worker set holds its first value (the key itself),
    /// any other key the last value one of the workers set it to.
    fn check(&self, _ops: u64, started: &[u64]) -> Result<(), String> {
        let mut last_sets: HashMap<u64, Vec<u64>> = HashMap::new();
        for (index, &n) in started.iter().enumerate() {
            let mut worker = Worker::new(index, started.len());
            let mut last = HashMap::new();
            for seq in 0..n {
                if let (key, true) = Self::draw(&mut worker) {
                    last.insert(key, seq);
                }
            }
            for (key, seq) in last {
                last_sets.entry(key).or_default().push(seq);
            }
        }
        for key in 0..MAP_KEYS {
            let found = self.0.lookup(key);
            let ok = match (found, last_sets.get(&key)) {
                (Some(value), None) => value == key,
                (Some(value), Some(sets)) => sets.contains(&value),
                (None, _) => false,
            };
            if !ok {
                return Err(format!(
                    "key {key} holds {found:?}, where the workers' last values were {:?}",
                    last_sets.get(&key).map_or(&[key][..], Vec::as_slice)
                ));
            }
        }
        Ok(())
    }
}

impl<M: Map, const ZIPF: bool> MapRandom<M, ZIPF> {
    /// A worker's next key, and whether it sets it (else looks it up).
    fn draw(worker: &mut Worker) -> (u64, bool) {
        let key = if ZIPF {
            zipf().sample(&mut worker.rng) as u64
        } else {
            worker.rng.below(MAP_KEYS)
        };
        (key, worker.rng.below(10) == 0)
    }
}

/// `event`: one event handler per operation, for a random user.
pub(crate) struct EventWorkload<E>(E);

impl<E: Event> Subject for EventWorkload<E> {
    const ACCOUNTING: Accounting = E::ACCOUNTING;
    fn new(_threads: usize) -> Self {
        EventWorkload(E::create(USERS))
    }
    fn op(&self, worker: &mut Worker) -> u64 {
        let user = worker.rng.below(USERS);
        self.0.handle(user, worker.record());
        1
    }
    /// Each event counted once, in the counter, in one session and in the log (drained), each
    /// worker's records in the order it handled them.
    fn check(&self, ops: u64, _started: &[u64]) -> Result<(), String> {
        check_event_totals(&self.0, ops)?;
        check_log(core::iter::from_fn(|| self.0.pop_log()), ops)
    }
}

/// Checks an event state after `ops` events: the counter and the sessions' counts each add up
/// to `ops`.
pub(crate) fn check_event_totals(state: &impl EventTally, ops: u64) -> Result<(), String> {
    let requests = state.requests();
    if requests != ops {
        return Err(format!(
            "the request counter reads {requests} after {ops} events"
        ));
    }
    let sessions: u64 = (0..USERS).map(|user| state.session(user)).sum();
    if sessions != ops {
        return Err(format!(
            "the sessions count {sessions} visits after {ops} events"
        ));
    }
    Ok(())
}

/// `bank`: transfers of 1..=10 between two random distinct accounts of `N` ([`ACCOUNTS`];
/// `long-read`'s writers run it on [`MAP_KEYS`]).
pub(crate) struct BankWorkload<B, const N: usize = ACCOUNTS>(pub(crate) B);

impl<B: Bank, const N: usize> Subject for BankWorkload<B, N> {
    const ACCOUNTING: Accounting = B::ACCOUNTING;
    fn new(_threads: usize) -> Self {
        BankWorkload(B::create(N, BALANCE))
    }
    fn op(&self, worker: &mut Worker) -> u64 {
        let from = worker.rng.below(N as u64) as usize;
        let to = (from + 1 + worker.rng.below(N as u64 - 1) as usize) % N;
        self.0.transfer(from, to, 1 + worker.rng.below(10));
        1
    }
    fn check(&self, _ops: u64, _started: &[u64]) -> Result<(), String> {
        let (total, expected) = (self.0.total(), N as u64 * BALANCE);
        if total == expected {
            Ok(())
        } else {
            Err(format!("money is {total}, not {expected}"))
        }
    }
}

// ----- commute's collections -----------------------------------------------------------------

#[cfg(feature = "collections")]
mod collections {
    use super::*;
    use commute::{TCounter, TMap, TQueue};

    impl Counter for TCounter {
        const ACCOUNTING: Accounting = Accounting::Commute;
        fn create() -> Self {
            TCounter::new()
        }
        fn increment(&self) {
            atomically(|tx| {
                self.incr(tx);
                Ok(())
            });
        }
        fn total(&self) -> u64 {
            self.load() as u64
        }
    }

    impl Queue for TQueue<u64> {
        const ACCOUNTING: Accounting = Accounting::Commute;
        fn create() -> Self {
            TQueue::new()
        }
        fn enqueue(&self, record: u64) {
            atomically(|tx| {
                self.push(tx, record);
                Ok(())
            });
        }
        fn dequeue(&self) -> Option<u64> {
            atomically(|tx| self.pop(tx))
        }
    }

    impl Map for TMap<u64, u64> {
        const ACCOUNTING: Accounting = Accounting::Commute;
        fn create() -> Self {
            TMap::new()
        }
        fn with_capacity(keys: u64) -> Self {
            TMap::with_capacity(keys as usize)
        }
        fn lookup(&self, key: u64) -> Option<u64> {
            atomically(|tx| self.get(tx, &key))
        }
        fn upsert(&self, key: u64, value: u64) {
            atomically(|tx| self.insert(tx, key, value));
        }
        fn delete(&self, key: u64) {
            atomically(|tx| self.remove(tx, &key));
        }
    }

    impl Bank for TMap<u64, u64> {
        const ACCOUNTING: Accounting = Accounting::Commute;
        fn create(accounts: usize, balance: u64) -> Self {
            let map = TMap::with_capacity(accounts);
            for account in 0..accounts as u64 {
                map.atomic().insert(account, balance);
            }
            map
        }
        fn transfer(&self, from: usize, to: usize, amount: u64) {
            let (from, to) = (from as u64, to as u64);
            atomically(|tx| {
                let available = self.get(tx, &from)?.unwrap_or(0);
                if available >= amount {
                    self.insert(tx, from, available - amount)?;
                    self.upsert(tx, to, || 0, |b| *b += amount)?;
                }
                Ok(())
            });
        }
        fn total(&self) -> u64 {
            self.atomic().iter().into_iter().map(|(_, b)| b).sum()
        }
    }

    /// The reader sums the map on one snapshot (`commute::read_only`): writers neither abort
    /// it nor wait for it.
    impl Ledger for TMap<u64, u64> {
        const CONSISTENT: bool = true;
        fn long_sum(&self) -> Sum {
            let (mut attempts, mut ordinary) = (0, 0);
            let money = commute::read_only(|tx| {
                attempts += 1;
                ordinary += u64::from(!tx.is_snapshot());
                let mut walk = Walk::default();
                self.for_each(tx, |_, &balance| walk.add(balance))?;
                Ok(walk.money)
            });
            Sum {
                money,
                attempts,
                ordinary,
            }
        }
    }

    /// The event state on commute's collections.
    pub(crate) type CommuteEvent = EventParts<TCounter, TMap<u64, u64>, TQueue<u64>>;

    impl Event for CommuteEvent {
        const ACCOUNTING: Accounting = Accounting::Commute;
        fn create(users: u64) -> Self {
            let sessions = TMap::with_capacity(users as usize);
            for user in 0..users {
                sessions.atomic().insert(user, 0);
            }
            CommuteEvent {
                requests: TCounter::new(),
                sessions,
                log: TQueue::new(),
            }
        }
        fn handle(&self, user: u64, record: u64) {
            atomically(|tx| self.handle_in(tx, user, record));
        }
    }

    impl TxEvent for CommuteEvent {
        fn handle_in(&self, tx: &Transaction, user: u64, record: u64) -> StmResult<()> {
            self.requests.incr(tx);
            self.sessions.upsert(tx, user, || 0, |seen| *seen += 1)?;
            self.log.push(tx, record);
            Ok(())
        }
    }
}

#[cfg(feature = "collections")]
pub(crate) use collections::CommuteEvent;

// ----- naive TVar-only structures on commute's core -----------------------------------------

impl Counter for NaiveCounter {
    const ACCOUNTING: Accounting = Accounting::Commute;
    fn create() -> Self {
        NaiveCounter::new()
    }
    fn increment(&self) {
        atomically(|tx| self.incr(tx));
    }
    fn total(&self) -> u64 {
        self.load()
    }
}

impl Queue for NaiveQueue {
    const ACCOUNTING: Accounting = Accounting::Commute;
    fn create() -> Self {
        NaiveQueue::new()
    }
    fn enqueue(&self, record: u64) {
        atomically(|tx| self.push(tx, record));
    }
    fn dequeue(&self) -> Option<u64> {
        atomically(|tx| self.pop(tx))
    }
}

impl Map for NaiveMap {
    const ACCOUNTING: Accounting = Accounting::Commute;
    fn create() -> Self {
        NaiveMap::new()
    }
    fn lookup(&self, key: u64) -> Option<u64> {
        atomically(|tx| self.get(tx, key))
    }
    fn upsert(&self, key: u64, value: u64) {
        atomically(|tx| self.insert(tx, key, value));
    }
    fn delete(&self, key: u64) {
        atomically(|tx| self.remove(tx, key));
    }
}

/// The event state on the naive structures.
pub(crate) type NaiveEvent = EventParts<NaiveCounter, NaiveMap, NaiveQueue>;

impl Event for NaiveEvent {
    const ACCOUNTING: Accounting = Accounting::Commute;
    fn create(users: u64) -> Self {
        let sessions = NaiveMap::new();
        for user in 0..users {
            atomically(|tx| sessions.insert(tx, user, 0));
        }
        NaiveEvent {
            requests: NaiveCounter::new(),
            sessions,
            log: NaiveQueue::new(),
        }
    }
    fn handle(&self, user: u64, record: u64) {
        atomically(|tx| self.handle_in(tx, user, record));
    }
}

impl TxEvent for NaiveEvent {
    fn handle_in(&self, tx: &Transaction, user: u64, record: u64) -> StmResult<()> {
        self.requests.incr(tx)?;
        let seen = self.sessions.get(tx, user)?.unwrap_or(0);
        self.sessions.insert(tx, user, seen + 1)?;
        self.log.push(tx, record)
    }
}

/// Bank accounts as plain `TVar`s: the right structure for transfers, whose conflicts are real.
pub(crate) struct TVarBank(Box<[TVar<u64>]>);

impl Bank for TVarBank {
    const ACCOUNTING: Accounting = Accounting::Commute;
    fn create(accounts: usize, balance: u64) -> Self {
        TVarBank((0..accounts).map(|_| TVar::new(balance)).collect())
    }
    fn transfer(&self, from: usize, to: usize, amount: u64) {
        atomically(|tx| {
            let available = self.0[from].read(tx)?;
            if available >= amount {
                self.0[from].write(tx, available - amount);
                self.0[to].modify(tx, |b| b + amount)?;
            }
            Ok(())
        });
    }
    fn total(&self) -> u64 {
        self.0.iter().map(TVar::load).sum()
    }
}

// ----- lock-based and lock-free structures ---------------------------------------------------

impl Counter for AtomicU64 {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create() -> Self {
        AtomicU64::new(0)
    }
    fn increment(&self) {
        self.fetch_add(1, Ordering::Relaxed);
    }
    fn total(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
}

impl Counter for Mutex<u64> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create() -> Self {
        Mutex::new(0)
    }
    fn increment(&self) {
        *lock(self) += 1;
    }
    fn total(&self) -> u64 {
        *lock(self)
    }
}

impl Queue for Mutex<VecDeque<u64>> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create() -> Self {
        Mutex::new(VecDeque::new())
    }
    fn enqueue(&self, record: u64) {
        lock(self).push_back(record);
    }
    fn dequeue(&self) -> Option<u64> {
        lock(self).pop_front()
    }
}

impl Queue for SegQueue<u64> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create() -> Self {
        SegQueue::new()
    }
    fn enqueue(&self, record: u64) {
        self.push(record);
    }
    fn dequeue(&self) -> Option<u64> {
        self.pop()
    }
}

impl Map for Mutex<HashMap<u64, u64, Hasher>> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create() -> Self {
        Mutex::new(HashMap::default())
    }
    fn with_capacity(keys: u64) -> Self {
        Mutex::new(HashMap::with_capacity_and_hasher(
            keys as usize,
            Hasher::default(),
        ))
    }
    fn lookup(&self, key: u64) -> Option<u64> {
        lock(self).get(&key).copied()
    }
    fn upsert(&self, key: u64, value: u64) {
        lock(self).insert(key, value);
    }
    fn delete(&self, key: u64) {
        lock(self).remove(&key);
    }
}

impl Map for DashMap<u64, u64, Hasher> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create() -> Self {
        DashMap::default()
    }
    fn with_capacity(keys: u64) -> Self {
        DashMap::with_capacity_and_hasher(keys as usize, Hasher::default())
    }
    fn lookup(&self, key: u64) -> Option<u64> {
        self.get(&key).map(|v| *v)
    }
    fn upsert(&self, key: u64, value: u64) {
        self.insert(key, value);
    }
    fn delete(&self, key: u64) {
        self.remove(&key);
    }
}

/// A transfer between two accounts of a map under a lock (the `Mutex` and `RwLock` banks).
fn move_money(accounts: &mut HashMap<u64, u64, Hasher>, from: usize, to: usize, amount: u64) {
    let source = accounts.entry(from as u64).or_insert(0);
    if *source >= amount {
        *source -= amount;
        *accounts.entry(to as u64).or_insert(0) += amount;
    }
}

/// Accounts in one `HashMap` behind one `Mutex`: the reader holds it for its whole walk.
impl Bank for Mutex<HashMap<u64, u64, Hasher>> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create(accounts: usize, balance: u64) -> Self {
        Mutex::new((0..accounts as u64).map(|a| (a, balance)).collect())
    }
    fn transfer(&self, from: usize, to: usize, amount: u64) {
        move_money(&mut lock(self), from, to, amount);
    }
    fn total(&self) -> u64 {
        lock(self).values().sum()
    }
}

impl Ledger for Mutex<HashMap<u64, u64, Hasher>> {
    const CONSISTENT: bool = true;
    fn long_sum(&self) -> Sum {
        let mut walk = Walk::default();
        lock(self).values().for_each(|&b| walk.add(b));
        walk.locked()
    }
}

/// Accounts in one `HashMap` behind one `RwLock`: the reader holds the read lock for its whole
/// walk, each transfer the write lock.
impl Bank for RwLock<HashMap<u64, u64, Hasher>> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create(accounts: usize, balance: u64) -> Self {
        RwLock::new((0..accounts as u64).map(|a| (a, balance)).collect())
    }
    fn transfer(&self, from: usize, to: usize, amount: u64) {
        move_money(&mut write(self), from, to, amount);
    }
    fn total(&self) -> u64 {
        read(self).values().sum()
    }
}

impl Ledger for RwLock<HashMap<u64, u64, Hasher>> {
    const CONSISTENT: bool = true;
    fn long_sum(&self) -> Sum {
        let mut walk = Walk::default();
        read(self).values().for_each(|&b| walk.add(b));
        walk.locked()
    }
}

/// Accounts in a `DashMap`: a transfer takes the amount from one account, then adds it to the
/// other, each step under its own shard's lock (holding one entry while locking the other
/// deadlocks when both are in one shard), so a reader can see the money in flight.
impl Bank for DashMap<u64, u64, Hasher> {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create(accounts: usize, balance: u64) -> Self {
        let map = DashMap::with_capacity_and_hasher(accounts, Hasher::default());
        for account in 0..accounts as u64 {
            map.insert(account, balance);
        }
        map
    }
    fn transfer(&self, from: usize, to: usize, amount: u64) {
        let taken = self.get_mut(&(from as u64)).is_some_and(|mut source| {
            let enough = *source >= amount;
            if enough {
                *source -= amount;
            }
            enough
        });
        if taken {
            *self.entry(to as u64).or_insert(0) += amount;
        }
    }
    fn total(&self) -> u64 {
        self.iter().map(|entry| *entry.value()).sum()
    }
}

/// The reader walks the shards in turn, each under its read lock: not one consistent state.
impl Ledger for DashMap<u64, u64, Hasher> {
    const CONSISTENT: bool = false;
    fn long_sum(&self) -> Sum {
        let mut walk = Walk::default();
        self.iter().for_each(|entry| walk.add(*entry.value()));
        walk.locked()
    }
}

/// The event state behind one `Mutex` (the handler holds it throughout: as atomic as a
/// transaction, and a global lock).
pub(crate) struct MutexEvent(Mutex<EventState>);

/// The request count, the sessions and the log, together.
type EventState = (u64, HashMap<u64, u64, Hasher>, VecDeque<u64>);

impl Event for MutexEvent {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create(users: u64) -> Self {
        let sessions = (0..users).map(|user| (user, 0)).collect();
        MutexEvent(Mutex::new((0, sessions, VecDeque::new())))
    }
    fn handle(&self, user: u64, record: u64) {
        let mut state = lock(&self.0);
        let (requests, sessions, log) = &mut *state;
        *requests += 1;
        *sessions.entry(user).or_insert(0) += 1;
        log.push_back(record);
    }
}

impl EventTally for MutexEvent {
    fn requests(&self) -> u64 {
        lock(&self.0).0
    }
    fn session(&self, user: u64) -> u64 {
        lock(&self.0).1.get(&user).copied().unwrap_or(0)
    }
    fn pop_log(&self) -> Option<u64> {
        lock(&self.0).2.pop_front()
    }
}

/// The event state on `AtomicU64`, `DashMap` and `SegQueue`: each step atomic on its own, the
/// handler as a whole not (another thread can see the count bumped before the log record).
pub(crate) type LockFreeEvent = EventParts<AtomicU64, DashMap<u64, u64, Hasher>, SegQueue<u64>>;

impl Event for LockFreeEvent {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create(users: u64) -> Self {
        let sessions = DashMap::with_capacity_and_hasher(users as usize, Hasher::default());
        for user in 0..users {
            sessions.insert(user, 0);
        }
        LockFreeEvent {
            requests: AtomicU64::new(0),
            sessions,
            log: SegQueue::new(),
        }
    }
    fn handle(&self, user: u64, record: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self.sessions.entry(user).or_insert(0) += 1;
        self.log.push(record);
    }
}

/// Accounts behind one `Mutex` each, locked in index order.
pub(crate) struct MutexBank(Box<[Mutex<u64>]>);

impl Bank for MutexBank {
    const ACCOUNTING: Accounting = Accounting::Lock;
    fn create(accounts: usize, balance: u64) -> Self {
        MutexBank((0..accounts).map(|_| Mutex::new(balance)).collect())
    }
    fn transfer(&self, from: usize, to: usize, amount: u64) {
        let (first, second) = (from.min(to), from.max(to));
        let mut first = lock(&self.0[first]);
        let mut second = lock(&self.0[second]);
        let (source, target) = if from < to {
            (&mut *first, &mut *second)
        } else {
            (&mut *second, &mut *first)
        };
        if *source >= amount {
            *source -= amount;
            *target += amount;
        }
    }
    fn total(&self) -> u64 {
        self.0.iter().map(|account| *lock(account)).sum()
    }
}

// ----- the peer STM crates in the naive shapes ------------------------------------------------

impl<S: PeerStm> Counter for PeerCounter<S> {
    const ACCOUNTING: Accounting = Accounting::Peer;
    fn create() -> Self {
        PeerCounter::new()
    }
    fn increment(&self) {
        peer::atomically::<S, _>(|tx| self.incr(tx));
    }
    fn total(&self) -> u64 {
        self.load()
    }
}

impl<S: PeerStm> Queue for PeerQueue<S> {
    const ACCOUNTING: Accounting = Accounting::Peer;
    fn create() -> Self {
        PeerQueue::new()
    }
    fn enqueue(&self, record: u64) {
        peer::atomically::<S, _>(|tx| self.push(tx, record));
    }
    fn dequeue(&self) -> Option<u64> {
        peer::atomically::<S, _>(|tx| self.pop(tx))
    }
}

impl<S: PeerStm> Map for PeerMap<S> {
    const ACCOUNTING: Accounting = Accounting::Peer;
    fn create() -> Self {
        PeerMap::new()
    }
    fn lookup(&self, key: u64) -> Option<u64> {
        peer::atomically::<S, _>(|tx| self.get(tx, key))
    }
    fn upsert(&self, key: u64, value: u64) {
        peer::atomically::<S, _>(|tx| self.insert(tx, key, value));
    }
    fn delete(&self, key: u64) {
        peer::atomically::<S, _>(|tx| self.remove(tx, key));
    }
}

/// The event state on a peer crate's naive structures.
pub(crate) type PeerEvent<S> = EventParts<PeerCounter<S>, PeerMap<S>, PeerQueue<S>>;

impl<S: PeerStm> Event for PeerEvent<S> {
    const ACCOUNTING: Accounting = Accounting::Peer;
    fn create(users: u64) -> Self {
        let sessions = PeerMap::new();
        for user in 0..users {
            sessions.upsert(user, 0);
        }
        PeerEvent {
            requests: PeerCounter::new(),
            sessions,
            log: PeerQueue::new(),
        }
    }
    fn handle(&self, user: u64, record: u64) {
        peer::atomically::<S, _>(|tx| {
            self.requests.incr(tx)?;
            let seen = self.sessions.get(tx, user)?.unwrap_or(0);
            self.sessions.insert(tx, user, seen.wrapping_add(1))?;
            self.log.push(tx, record)
        });
    }
}

impl<S: PeerStm> Bank for PeerBank<S> {
    const ACCOUNTING: Accounting = Accounting::Peer;
    fn create(accounts: usize, balance: u64) -> Self {
        PeerBank::new(accounts, balance)
    }
    fn transfer(&self, from: usize, to: usize, amount: u64) {
        PeerBank::transfer(self, from, to, amount);
    }
    fn total(&self) -> u64 {
        PeerBank::total(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Mutex<VecDeque>` log that can lose, repeat or reorder an append, for the checks.
    #[derive(Default)]
    struct Faulty {
        items: Mutex<VecDeque<u64>>,
        appends: AtomicU64,
        fault: Option<Fault>,
        /// The number of the append (from 0) the fault hits.
        at: u64,
    }

    #[derive(Clone, Copy)]
    enum Fault {
        Lose,
        Repeat,
        Swap,
    }

    impl Queue for Faulty {
        const ACCOUNTING: Accounting = Accounting::Lock;
        fn create() -> Self {
            Faulty::default()
        }
        fn enqueue(&self, record: u64) {
            let n = self.appends.fetch_add(1, Ordering::Relaxed);
            let mut items = self.items.lock().unwrap();
            match self.fault.filter(|_| n == self.at) {
                Some(Fault::Lose) => {}
                Some(Fault::Repeat) => items.extend([record, record]),
                // Before the append before the last (the two workers alternate).
                Some(Fault::Swap) => {
                    let before = items.len() - 2;
                    items.insert(before, record);
                }
                None => items.push_back(record),
            }
        }
        fn dequeue(&self) -> Option<u64> {
            self.items.lock().unwrap().pop_front()
        }
    }

    /// Runs `rounds` operations of each of `workers`, interleaved as `measure`'s threads might
    /// run them; returns the check's verdict.
    fn run_and_check(
        subject: &impl Subject,
        mut workers: Vec<Worker>,
        rounds: u64,
    ) -> Result<(), String> {
        let mut done = 0;
        for _ in 0..rounds {
            for worker in &mut workers {
                done += subject.op(worker);
                worker.seq += 1;
            }
        }
        let started: Vec<u64> = workers.iter().map(|w| w.seq).collect();
        subject.check(done, &started)
    }

    /// Runs 10 appends of each of two workers, interleaved, on a log with `fault` at append
    /// `at`; returns the check's verdict.
    fn log_check(fault: Option<Fault>, at: u64) -> Result<(), String> {
        let log = LogWorkload(Faulty {
            fault,
            at,
            ..Faulty::default()
        });
        run_and_check(&log, workers(2), 10)
    }

    /// Runs 10 pushes and 10 pops (two workers) on a queue with `fault` at append `at` (the
    /// prefill's 1,024 appends come first); returns the check's verdict.
    fn queue_check(fault: Option<Fault>, at: u64) -> Result<(), String> {
        let queue = QueueWorkload::<Faulty>::new(2);
        let queue = QueueWorkload(Faulty {
            fault,
            at,
            ..queue.0
        });
        run_and_check(&queue, workers(2), 10)
    }

    #[test]
    fn the_queue_check_passes_a_fifo_queue_and_finds_a_lost_or_repeated_item() {
        assert_eq!(queue_check(None, 0), Ok(()));
        let one = QueueWorkload::<Faulty>::new(1);
        assert_eq!(run_and_check(&one, workers(1), 21), Ok(()));
        // Worker 0's push 3: its pushes left read 0, 1, 2, 4, ... (the pops took prefilled
        // items only).
        assert_eq!(
            queue_check(Some(Fault::Lose), QUEUE_PREFILL + 3),
            Err("worker 0's push 4 follows its push 2 in the queue".into())
        );
        assert_eq!(
            queue_check(Some(Fault::Repeat), QUEUE_PREFILL + 3),
            Err("worker 0's push 3 follows its push 3 in the queue".into())
        );
        // The last push lost: the queue ends one short of it.
        assert_eq!(
            queue_check(Some(Fault::Lose), QUEUE_PREFILL + 9),
            Err("worker 0's pushes in the queue end at 8, its last was Some(9)".into())
        );
        // The first prefilled item lost before the run: the rest are in order, and only the
        // count can tell.
        let queue = QueueWorkload::<Faulty>::new(2);
        queue.0.items.lock().unwrap().pop_front();
        assert_eq!(
            run_and_check(&queue, workers(2), 10),
            Err("the queue holds 1023 items after 1024 prefilled, 10 pushed and 10 popped".into())
        );
        // One from the middle: out of order.
        let queue = QueueWorkload::<Faulty>::new(2);
        queue.0.items.lock().unwrap().remove(500);
        assert_eq!(
            run_and_check(&queue, workers(2), 10),
            Err("prefilled item 501 is out of order".into())
        );
    }

    /// A `Mutex<HashMap>` that ignores operation `at` (from 0).
    struct ForgetfulMap {
        entries: Mutex<HashMap<u64, u64>>,
        ops: AtomicU64,
        at: u64,
    }

    impl Map for ForgetfulMap {
        const ACCOUNTING: Accounting = Accounting::Lock;
        fn create() -> Self {
            ForgetfulMap {
                entries: Mutex::default(),
                ops: AtomicU64::new(0),
                at: u64::MAX,
            }
        }
        fn lookup(&self, key: u64) -> Option<u64> {
            self.entries.lock().unwrap().get(&key).copied()
        }
        fn upsert(&self, key: u64, value: u64) {
            if self.ops.fetch_add(1, Ordering::Relaxed) != self.at {
                self.entries.lock().unwrap().insert(key, value);
            }
        }
        fn delete(&self, key: u64) {
            if self.ops.fetch_add(1, Ordering::Relaxed) != self.at {
                self.entries.lock().unwrap().remove(&key);
            }
        }
    }

    /// Runs 13,000 operations of one worker on a map that ignores operation `at`: the last of
    /// them are removals (12,288 on), the ones before updates.
    fn disjoint_check(at: u64) -> Result<(), String> {
        let map = MapDisjoint(ForgetfulMap {
            at,
            ..ForgetfulMap::create()
        });
        run_and_check(&map, workers(1), 13_000)
    }

    #[test]
    fn the_random_map_check_replays_the_draws_and_finds_a_forgotten_update() {
        // Two workers, 5,000 operations each (about 1,000 updates), both key distributions.
        let uniform = MapRandom::<ForgetfulMap, false>::new(2);
        assert_eq!(run_and_check(&uniform, workers(2), 5_000), Ok(()));
        let zipf = MapRandom::<ForgetfulMap, true>::new(2);
        assert_eq!(run_and_check(&zipf, workers(2), 5_000), Ok(()));
        // The prefill's 100,000 updates come first; then the run's 10th is forgotten.
        let forgetful = MapRandom::<ForgetfulMap, false>::new(2);
        let forgetful = MapRandom::<_, false>(ForgetfulMap {
            at: MAP_KEYS + 9,
            ..forgetful.0
        });
        let wrong = run_and_check(&forgetful, workers(2), 5_000).unwrap_err();
        assert!(
            wrong.contains("where the workers' last values were"),
            "{wrong}"
        );
    }

    #[test]
    fn the_disjoint_map_check_finds_an_update_or_removal_that_did_not_happen() {
        assert_eq!(disjoint_check(u64::MAX), Ok(()));
        // Slot 12's removal at 12,300: its update at 8,204 is still there.
        assert_eq!(
            disjoint_check(12_300),
            Err("worker 0's key 12 holds Some(8204) where None was due".into())
        );
        // Slot 1,808's last update (10,000): its update at 5,904 is there instead.
        assert_eq!(
            disjoint_check(10_000),
            Err("worker 0's key 1808 holds Some(5904) where Some(10000) was due".into())
        );
    }

    /// The one-`Mutex` event state, dropping one step of its sixth event.
    struct FaultyEvent {
        state: MutexEvent,
        events: AtomicU64,
        skip: Option<Step>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Step {
        Count,
        Session,
        Log,
    }

    impl Event for FaultyEvent {
        const ACCOUNTING: Accounting = Accounting::Lock;
        fn create(users: u64) -> Self {
            FaultyEvent {
                state: MutexEvent::create(users),
                events: AtomicU64::new(0),
                skip: None,
            }
        }
        fn handle(&self, user: u64, record: u64) {
            let skip = (self.events.fetch_add(1, Ordering::Relaxed) == 5)
                .then_some(self.skip)
                .flatten();
            let mut state = lock(&self.state.0);
            let (requests, sessions, log) = &mut *state;
            if skip != Some(Step::Count) {
                *requests += 1;
            }
            if skip != Some(Step::Session) {
                *sessions.entry(user).or_insert(0) += 1;
            }
            if skip != Some(Step::Log) {
                log.push_back(record);
            }
        }
    }

    impl EventTally for FaultyEvent {
        fn requests(&self) -> u64 {
            self.state.requests()
        }
        fn session(&self, user: u64) -> u64 {
            self.state.session(user)
        }
        fn pop_log(&self) -> Option<u64> {
            self.state.pop_log()
        }
    }

    /// Runs 10 events of each of two workers, interleaved, on a state that drops `skip` of the
    /// sixth event; returns the check's verdict.
    fn event_check(skip: Option<Step>) -> Result<(), String> {
        let events = EventWorkload(FaultyEvent {
            skip,
            ..FaultyEvent::create(USERS)
        });
        run_and_check(&events, workers(2), 10)
    }

    /// `threads` fresh workers, as `measure` starts them.
    fn workers(threads: usize) -> Vec<Worker> {
        (0..threads)
            .map(|index| Worker::new(index, threads))
            .collect()
    }

    #[test]
    fn the_event_check_passes_whole_events_and_finds_each_lost_step() {
        assert_eq!(event_check(None), Ok(()));
        assert_eq!(
            event_check(Some(Step::Count)),
            Err("the request counter reads 19 after 20 events".into())
        );
        assert_eq!(
            event_check(Some(Step::Session)),
            Err("the sessions count 19 visits after 20 events".into())
        );
        let log = event_check(Some(Step::Log)).unwrap_err();
        assert!(
            log.contains("worker 1's append 3 is in the log where its append 2 was due"),
            "{log}"
        );
    }

    #[test]
    fn the_log_check_passes_every_append_once_in_order() {
        assert_eq!(log_check(None, 0), Ok(()));
    }

    #[test]
    fn the_log_check_finds_a_lost_a_repeated_and_a_reordered_append() {
        let lost = log_check(Some(Fault::Lose), 5).unwrap_err();
        assert!(
            lost.contains("append 3 is in the log where its append 2 was due"),
            "{lost}"
        );
        // The last of the 20 appends: found by the count alone.
        let last = log_check(Some(Fault::Lose), 19).unwrap_err();
        assert_eq!(last, "the log holds 19 records after 20 appends");
        let repeated = log_check(Some(Fault::Repeat), 5).unwrap_err();
        assert!(
            repeated.contains("append 2 is in the log where its append 3"),
            "{repeated}"
        );
        let swapped = log_check(Some(Fault::Swap), 6).unwrap_err();
        assert!(
            swapped.contains("worker 0's append 3 is in the log where its append 2"),
            "{swapped}"
        );
    }
}
