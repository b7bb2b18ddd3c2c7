//! The structures every soak thread shares, the items and values stored in them (each carries
//! enough redundancy to be checked for integrity when read back), and the checked pop used by
//! every consumer.

use commute::{StmResult, TBoundedQueue, TBox, TCounter, TMap, TQueue, TSet, TVar, Transaction};

use super::monitor::Monitor;

/// Bank accounts.
pub const ACCOUNTS: usize = 64;
/// Each account's opening balance.
pub const OPENING_BALANCE: i64 = 1_000;
/// The bank's total, conserved by every transfer.
pub const BANK_TOTAL: i64 = ACCOUNTS as i64 * OPENING_BALANCE;
/// Keys of the map (and of the set) each worker owns: its range is
/// `index * KEYS_PER_WORKER ..` and only it writes there.
pub const KEYS_PER_WORKER: u64 = 512;
/// Shared heap values replaced by the churn.
pub const BOXES: usize = 16;
/// Capacity of the bounded queue the workers share.
pub const BOUNDED_CAPACITY: usize = 64;
/// Capacity of the blocking producer/consumer pipe.
pub const PIPE_CAPACITY: usize = 8;
/// Opening value of every variable of the long transactions.
pub const LONG_OPENING: i64 = 100;

/// A queued item: its producer, the producer's sequence number, and a heap body derived from
/// both (so a torn or freed item shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The producing thread.
    pub producer: u32,
    /// The producer's sequence number: 0, 1, 2, ... in push order.
    pub seq: u64,
    body: Vec<u64>,
}

impl Item {
    /// The item `seq` of `producer`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::soak::shared::Item;
    ///
    /// assert!(Item::new(3, 17).is_intact());
    /// ```
    pub fn new(producer: u32, seq: u64) -> Self {
        let stamp = Self::stamp(producer, seq);
        Item {
            producer,
            seq,
            body: vec![stamp; 1 + (seq % 4) as usize],
        }
    }

    fn stamp(producer: u32, seq: u64) -> u64 {
        (u64::from(producer) << 48) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// True if the body still matches the producer and sequence number.
    pub fn is_intact(&self) -> bool {
        let stamp = Self::stamp(self.producer, self.seq);
        self.body.len() == 1 + (self.seq % 4) as usize && self.body.iter().all(|&w| w == stamp)
    }
}

/// The heap value stored for `v` (in the map, and with `BOXES` in the boxes): `v` repeated a
/// number of times that depends on `v`, so sizes vary and corruption shows.
///
/// # Examples
///
/// ```
/// use commute_benches::soak::shared::{decode_value, make_value};
///
/// assert_eq!(decode_value(&make_value(41, 3)), Some(41));
/// assert_eq!(decode_value(&[5, 6]), None);
/// ```
pub fn make_value(v: u64, spread: u64) -> Vec<u64> {
    vec![v; 1 + (v % spread) as usize]
}

/// The `v` of a value made by [`make_value`] with any spread, if the value is intact (all words
/// equal, non-empty).
pub fn decode_value(value: &[u64]) -> Option<u64> {
    let first = *value.first()?;
    value.iter().all(|&w| w == first).then_some(first)
}

/// The length [`make_value`] gives `v` with `spread`.
pub fn value_len(v: u64, spread: u64) -> usize {
    1 + (v % spread) as usize
}

/// Spread of map values (1 to 3 words).
pub const MAP_SPREAD: u64 = 3;
/// Spread of box values (1 to 64 words).
pub const BOX_SPREAD: u64 = 64;

/// Everything the soak's threads share.
#[derive(Debug)]
pub struct Shared {
    /// Bank accounts; every transfer conserves their sum.
    pub accounts: Box<[TVar<i64>]>,
    /// Committed transfers (a commutative counter).
    pub transfers: TCounter,
    /// The unbounded queue; producers are the workers.
    pub queue: TQueue<Item>,
    /// Per producer, the sequence number the next pop of its items must find.
    pub queue_next: Box<[TVar<u64>]>,
    /// Items pushed to `queue` (commutative adds on one variable, one per item: several in one
    /// transaction).
    pub queue_pushes: TVar<u64>,
    /// Items in `queue` as the workers count them: one `incr` per push, one `decr` per item
    /// popped, taken or drained (several of each in one transaction).
    pub queue_items: TCounter,
    /// The wrapping sum of [`push_mix`] over every item pushed to `queue`: one general
    /// `commute` per item (not idempotent, so a commute lost or applied twice shows).
    pub push_mix: TVar<u64>,
    /// The bounded queue; producers are the workers.
    pub bounded: TBoundedQueue<Item>,
    /// Per producer, the sequence number the next pop of `bounded` must find.
    pub bounded_next: Box<[TVar<u64>]>,
    /// The blocking pipe between the pipeline producer and consumer.
    pub pipe: TBoundedQueue<Item>,
    /// The map: each worker owns a key range.
    pub map: TMap<u64, Vec<u64>>,
    /// Committed map writes (a commutative counter).
    pub map_writes: TCounter,
    /// The set: each worker owns a key range.
    pub set: TSet<u64>,
    /// Heap values replaced by the churn: box `b` holds `make_value(stamp, BOX_SPREAD)`, where
    /// `stamp` counts its committed replacements.
    pub boxes: Box<[TBox<Vec<u64>>]>,
    /// The largest stamp committed by a worker's push (a general `commute`: `max`); also where
    /// injected commute panics are planted.
    pub high_water: TVar<u64>,
    /// The largest stamp committed by the pipeline producer (a `commute`: `max`). Kept apart
    /// from `high_water`: the producer's stamps carry its id `u32::MAX` and would dominate
    /// every worker's, so a lost worker commute could not show in one shared mark.
    pub pipe_high_water: TVar<u64>,
    /// The variables of the long transactions. Short writers move one unit between two of them;
    /// each long transaction adds one to every one.
    pub long_vars: Box<[TVar<i64>]>,
    /// Set at the end, to wake threads blocked in `retry`.
    pub stop: TVar<bool>,
}

impl Shared {
    /// The structures for `producers` producing threads (workers and the pipeline producer)
    /// and `long_vars` long-transaction variables.
    pub fn new(producers: usize, long_vars: usize) -> Self {
        Shared {
            accounts: (0..ACCOUNTS)
                .map(|_| TVar::new(OPENING_BALANCE).with_label("account"))
                .collect(),
            transfers: TCounter::new().with_label("transfers"),
            queue: TQueue::new().with_label("queue"),
            queue_next: (0..producers).map(|_| TVar::new(0)).collect(),
            queue_pushes: TVar::new(0).with_label("queue pushes"),
            queue_items: TCounter::new().with_label("queue items"),
            push_mix: TVar::new(0).with_label("push mix"),
            bounded: TBoundedQueue::with_capacity(BOUNDED_CAPACITY),
            bounded_next: (0..producers).map(|_| TVar::new(0)).collect(),
            pipe: TBoundedQueue::with_capacity(PIPE_CAPACITY),
            map: TMap::new().with_label("map"),
            map_writes: TCounter::new().with_label("map writes"),
            set: TSet::new().with_label("set"),
            boxes: (0..BOXES)
                .map(|_| TBox::new(make_value(0, BOX_SPREAD)).with_label("box"))
                .collect(),
            high_water: TVar::new(0).with_label("high water"),
            pipe_high_water: TVar::new(0).with_label("pipe high water"),
            long_vars: (0..long_vars)
                .map(|_| TVar::new(LONG_OPENING).with_label("long"))
                .collect(),
            stop: TVar::new(false),
        }
    }

    /// The alternative of a blocking operation: `value` once the run is stopping, else a retry
    /// (the thread waits until the operation can go on, or the run stops).
    ///
    /// # Errors
    ///
    /// The retry signal while the run goes on.
    pub(crate) fn or_stopped<T>(&self, tx: &Transaction, value: T) -> StmResult<T> {
        if self.stop.read(tx)? {
            Ok(value)
        } else {
            tx.retry()
        }
    }

    /// The sum of the long variables after `long_commits` long transactions.
    pub fn long_sum(&self, long_commits: u64) -> i64 {
        let n = self.long_vars.len() as i64;
        n * LONG_OPENING + n * long_commits as i64
    }
}

/// Pops one item and checks it against its producer's next sequence number (inside the
/// attempt: every attempt sees a consistent state, so a mismatch is a real violation): the
/// check that every item is consumed exactly once and in each producer's order.
///
/// # Errors
///
/// As for the queue's pop.
pub fn pop_checked(
    tx: &Transaction,
    pop: impl FnOnce(&Transaction) -> StmResult<Option<Item>>,
    next: &[TVar<u64>],
    monitor: &Monitor,
    slot: usize,
) -> StmResult<Option<Item>> {
    let Some(item) = pop(tx)? else {
        return Ok(None);
    };
    check_popped(tx, &item, next, monitor, slot)?;
    Ok(Some(item))
}

/// Checks one item popped (or taken, or drained) against its producer's next sequence number,
/// and moves that number past it: the check of [`pop_checked`].
///
/// # Errors
///
/// As for the read of the producer's cursor.
pub fn check_popped(
    tx: &Transaction,
    item: &Item,
    next: &[TVar<u64>],
    monitor: &Monitor,
    slot: usize,
) -> StmResult<()> {
    let Some(want) = next.get(item.producer as usize) else {
        monitor.check(slot, false, || {
            format!("popped an item of no producer: {item:?}")
        });
        return Ok(());
    };
    let expected = want.read(tx)?;
    monitor.check(slot, item.seq == expected && item.is_intact(), || {
        format!(
            "producer {}: popped item {} (intact: {}) where {expected} was next",
            item.producer,
            item.seq,
            item.is_intact()
        )
    });
    want.write(tx, expected.max(item.seq + 1));
    Ok(())
}

/// What [`push_mix`](Shared::push_mix) adds for item `seq` of `producer`: never 0, and
/// different for each item, so that the sum shows a commute lost or applied twice.
pub fn push_mix(producer: u32, seq: u64) -> u64 {
    ((u64::from(producer) << 40) ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// Drains `queue` in one transaction and checks what the drain returns (the check of the
/// workers' drains): each item as a pop's is checked ([`check_popped`], moving the producers'
/// cursors `next`), as many items as were pushed (`pushes`) and not popped, and the queue
/// empty after the drain. Returns how many items it drained.
///
/// # Errors
///
/// As for the queue's reads.
pub fn drain_checked(
    tx: &Transaction,
    queue: &TQueue<Item>,
    next: &[TVar<u64>],
    pushes: &TVar<u64>,
    monitor: &Monitor,
    slot: usize,
) -> StmResult<u64> {
    let mut popped = 0u64;
    for cursor in next {
        popped += cursor.read(tx)?;
    }
    let pushed = pushes.read(tx)?;
    let items = queue.drain(tx)?;
    let drained = items.len() as u64;
    monitor.check(slot, pushed.checked_sub(popped) == Some(drained), || {
        format!("queue drain: {drained} items drained, but {pushed} pushed and {popped} popped")
    });
    for item in &items {
        check_popped(tx, item, next, monitor, slot)?;
    }
    let empty = queue.is_empty(tx)?;
    monitor.check(slot, empty, || {
        "queue drain: the queue is not empty after its drain".to_string()
    });
    Ok(drained)
}

/// Pops up to `most` items with [`pop_checked`], stopping early at an empty queue; returns how
/// many it popped.
///
/// # Errors
///
/// As for the queue's pop.
pub(crate) fn pop_up_to(
    tx: &Transaction,
    most: u64,
    pop: impl Fn(&Transaction) -> StmResult<Option<Item>>,
    next: &[TVar<u64>],
    monitor: &Monitor,
    slot: usize,
) -> StmResult<u64> {
    let mut popped = 0;
    while popped < most && pop_checked(tx, &pop, next, monitor, slot)?.is_some() {
        popped += 1;
    }
    Ok(popped)
}

/// Walks `queue` in one snapshot and checks it against the producers' pop cursors `next` and
/// the count of items pushed, `pushes` (the check of the workers' scans): each producer's items
/// are those its cursor has not passed, in order and intact; there are as many as were pushed
/// and not popped; and the queue's `len` counts as many as the walk found.
///
/// # Errors
///
/// As for the queue's reads.
pub fn scan_checked(
    tx: &Transaction,
    queue: &TQueue<Item>,
    next: &[TVar<u64>],
    pushes: &TVar<u64>,
    monitor: &Monitor,
    slot: usize,
) -> StmResult<()> {
    let next = next
        .iter()
        .map(|v| v.read(tx))
        .collect::<StmResult<Vec<u64>>>()?;
    let pushed = pushes.read(tx)?;
    let mut expected = next.clone();
    let mut items = 0u64;
    let mut wrong: Option<String> = None;
    queue.for_each(tx, |item| {
        items += 1;
        match expected.get_mut(item.producer as usize) {
            Some(seq) if *seq == item.seq && item.is_intact() => *seq += 1,
            want => {
                wrong.get_or_insert_with(|| {
                    format!(
                        "queue scan: producer {} item {} (intact: {}) where {want:?} was next",
                        item.producer,
                        item.seq,
                        item.is_intact()
                    )
                });
            }
        }
    })?;
    monitor.check(slot, wrong.is_none(), || wrong.clone().unwrap_or_default());
    let popped: u64 = next.iter().sum();
    monitor.check(slot, pushed.checked_sub(popped) == Some(items), || {
        format!("queue scan: {items} items, but {pushed} pushed and {popped} popped")
    });
    let len = queue.len(tx)?;
    monitor.check(slot, len as u64 == items, || {
        format!("queue scan: the queue's len is {len}, the walk found {items} items")
    });
    Ok(())
}

/// A write of one of a worker's own map keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapWrite {
    /// Insert (or replace) the value of `v`.
    Insert(u64),
    /// Remove the key.
    Remove,
    /// Add one to the key's `v`, inserting 0 if absent.
    Bump,
}

/// Writes `key` of `map` as `write` says, where `logged` is the `v` the writing worker's log
/// holds for the key: only that worker writes it, and its log is up to date between its
/// transactions, so what `insert` and `remove` hand back (the value they replaced or removed)
/// must be the logged value in every attempt.
///
/// # Errors
///
/// As for the map's writes.
pub fn write_map_key(
    tx: &Transaction,
    map: &TMap<u64, Vec<u64>>,
    key: u64,
    write: MapWrite,
    logged: Option<u64>,
    monitor: &Monitor,
    slot: usize,
) -> StmResult<()> {
    let returned = match write {
        MapWrite::Insert(v) => map.insert(tx, key, make_value(v, MAP_SPREAD))?,
        MapWrite::Remove => map.remove(tx, &key)?,
        MapWrite::Bump => {
            map.upsert(
                tx,
                key,
                || make_value(0, MAP_SPREAD),
                |old| *old = make_value(old[0] + 1, MAP_SPREAD),
            )?;
            return Ok(());
        }
    };
    let want = logged.map(|v| make_value(v, MAP_SPREAD));
    monitor.check(slot, returned == want, || {
        format!("map key {key}: {write:?} handed back {returned:?}, the log says {want:?}")
    });
    Ok(())
}

/// Inserts `key` into `set` (or removes it, unless `insert`), where `logged` says whether the
/// writing worker's log holds the key: only that worker writes it, so the key's presence before
/// the write, and what `insert` or `remove` returns (whether it changed the set), must agree
/// with the log in every attempt.
///
/// # Errors
///
/// As for the set's operations.
pub fn write_set_key(
    tx: &Transaction,
    set: &TSet<u64>,
    key: u64,
    insert: bool,
    logged: bool,
    monitor: &Monitor,
    slot: usize,
) -> StmResult<()> {
    let present = set.contains(tx, &key)?;
    monitor.check(slot, present == logged, || {
        format!("set key {key}: present {present}, the log says {logged}")
    });
    let (changed, what) = if insert {
        (set.insert(tx, key)?, "insert")
    } else {
        (set.remove(tx, &key)?, "remove")
    };
    // An insert changes the set where the key was absent, a removal where it was present.
    monitor.check(slot, changed == (insert != logged), || {
        format!("set key {key}: {what} returned {changed}, the log says present {logged}")
    });
    Ok(())
}
