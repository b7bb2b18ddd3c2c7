//! The cases of the `instructions` binary: one operation of commute beside its lock-based
//! baseline, each run a given number of times, single-threaded, for counting instructions per
//! operation under valgrind's callgrind.
//!
//! A case builds its state (maps filled, queue prefilled; the random keys of the map cases come
//! from a pre-generated fixed-seed sequence), runs [`WARMUP`] operations so that the library's
//! buffers and caches reach their steady state, then runs the requested number of operations in
//! [`measured`], and returns a checksum of what the operations returned (the same for a row's
//! commute cases and its baseline: they do the same work). The binary runs each case under
//! callgrind with two operation counts and divides the difference of the two instruction totals
//! by the difference of the counts, which cancels start-up, set-up, warm-up and teardown.
//!
//! Every hasher has fixed seeds, so that maps have the same shape in every run and the counts
//! are deterministic.
//!
//! # Examples
//!
//! ```
//! use commute_benches::instructions::{CASES, WARMUP};
//!
//! let case = CASES.iter().find(|c| c.name == "counter/commute").unwrap();
//! assert_eq!(case.run(64), WARMUP + 64); // the counter's final value
//! ```

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::Mutex;

use commute::{
    StmError, StmResult, TCounter, TMap, TQueue, TVar, Transaction, atomically, read_only,
};
use dashmap::DashMap;

use crate::rng::XorShift;
use crate::tl2_floor;

/// Operations run before the measured ones (a multiple of [`LOG_BATCH`]).
pub const WARMUP: u64 = 1024;
/// Keys of the map cases (all present from the start).
pub const MAP_KEYS: u64 = 100_000;
/// Users with a session in the event case (all present from the start).
pub const USERS: u64 = 10_000;
/// Rows of each of the vacation case's three tables.
pub const ROWS: u64 = 10_000;
/// Keys a transaction (or a lock) of the bulk cases writes; [`WARMUP`] is a multiple of it.
pub const BULK: u64 = 1024;
/// Items in the queue before the queue case starts, so that a pop takes an item pushed earlier.
pub const QUEUE_PREFILL: u64 = 16;
/// The event case's consumer drains the log after every this many events.
pub const LOG_BATCH: u64 = 64;
/// Length of the pre-generated random sequences (a power of two); operation `i` uses entry
/// `i % SEQUENCE`.
const SEQUENCE: usize = 1 << 16;

/// Which side of a row a case is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// commute's structure.
    Commute,
    /// The lock-based (or lock-free) baseline.
    Baseline,
}

/// One case: one operation, run `ops` times after the warm-up.
#[derive(Debug)]
pub struct Case {
    /// `row/variant`, e.g. `map-get/dashmap`.
    pub name: &'static str,
    /// The row of the table the case belongs to.
    pub row: &'static str,
    /// commute or baseline.
    pub side: Side,
    /// What one operation is, for the table.
    pub what: &'static str,
    run: fn(u64) -> u64,
}

impl Case {
    /// Builds the case's state, runs [`WARMUP`] operations and then `ops` more, and returns the
    /// checksum of the operations' results.
    ///
    /// # Panics
    ///
    /// If the final state is not what the operations should have left (a broken case).
    pub fn run(&self, ops: u64) -> u64 {
        (self.run)(ops)
    }
}

/// Cases are equal when their names are.
impl PartialEq for Case {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Case {}

/// A row of the table: the targets that commute's cases of the row are checked against.
#[derive(Debug)]
pub struct Row {
    /// The row's name (the prefix of its cases' names).
    pub name: &'static str,
    /// At most this many instructions per operation.
    pub max: Option<f64>,
    /// At most this many times the baseline's instructions per operation.
    pub max_ratio: Option<f64>,
    /// For the row's one-call case (`.atomic()`, named `<row>/atomic`): at most this many times
    /// the baseline, as well (the issue's "a single collection operation through `.atomic()`
    /// within 1.5x" of `DashMap` and `Mutex<VecDeque>`: the lookup and the queue rows; the
    /// update's baseline is a `Mutex<HashMap>`, and its row keeps its own 3x).
    pub atomic_max_ratio: Option<f64>,
}

impl Row {
    /// The targets as text: `<= 250, <= 1.5x base`, or empty.
    pub fn target_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(max) = self.max {
            parts.push(format!("<= {max}"));
        }
        if let Some(ratio) = self.max_ratio {
            parts.push(format!("<= {ratio}x base"));
        }
        parts.join(", ")
    }

    /// The targets that `case`, one of this row's, is checked against: the row's, and for its
    /// `.atomic()` case also `atomic_max_ratio` (the stricter ratio wins).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::instructions::{CASES, ROWS_TABLE};
    ///
    /// let queue = ROWS_TABLE.iter().find(|r| r.name == "queue").unwrap();
    /// let atomic = CASES.iter().find(|c| c.name == "queue/atomic").unwrap();
    /// assert_eq!(queue.targets_of(atomic).target_text(), "<= 700, <= 1.5x base");
    /// ```
    pub fn targets_of(&self, case: &Case) -> Row {
        let atomic = case.name.strip_prefix(self.name) == Some("/atomic");
        let max_ratio = match (self.max_ratio, self.atomic_max_ratio.filter(|_| atomic)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Row {
            name: self.name,
            max: self.max,
            max_ratio,
            atomic_max_ratio: None,
        }
    }

    /// Whether `per_op` (against a baseline of `base`) meets the targets; `None` without targets.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::instructions::ROWS_TABLE;
    ///
    /// let get = ROWS_TABLE.iter().find(|r| r.name == "map-get").unwrap();
    /// assert_eq!(get.met(240.0, 200.0), Some(true));
    /// assert_eq!(get.met(240.0, 100.0), Some(false)); // over 1.5x the baseline
    /// ```
    pub fn met(&self, per_op: f64, base: f64) -> Option<bool> {
        if self.max.is_none() && self.max_ratio.is_none() {
            return None;
        }
        let under_max = self.max.is_none_or(|max| per_op <= max);
        let under_ratio = self.max_ratio.is_none_or(|r| per_op <= r * base);
        Some(under_max && under_ratio)
    }
}

/// The rows, in table order, with the issue's targets.
pub const ROWS_TABLE: &[Row] = &[
    Row {
        name: "rmw",
        max: Some(150.0),
        max_ratio: None,
        atomic_max_ratio: None,
    },
    Row {
        name: "counter",
        max: Some(150.0),
        max_ratio: None,
        atomic_max_ratio: None,
    },
    Row {
        name: "map-get",
        max: Some(250.0),
        max_ratio: Some(1.5),
        atomic_max_ratio: Some(1.5),
    },
    Row {
        name: "map-update",
        max: Some(500.0),
        max_ratio: Some(3.0),
        atomic_max_ratio: None,
    },
    Row {
        name: "map-bulk",
        max: None,
        max_ratio: None,
        atomic_max_ratio: None,
    },
    Row {
        name: "queue",
        max: Some(700.0),
        max_ratio: None,
        atomic_max_ratio: Some(1.5),
    },
    Row {
        name: "event",
        max: Some(1200.0),
        max_ratio: None,
        atomic_max_ratio: None,
    },
    Row {
        name: "vacation",
        max: None,
        max_ratio: None,
        atomic_max_ratio: None,
    },
    Row {
        name: "anatomy",
        max: None,
        max_ratio: None,
        atomic_max_ratio: None,
    },
];

/// Every case, in table order: a row's commute cases, then its baseline.
pub const CASES: &[Case] = &[
    Case {
        name: "rmw/commute",
        row: "rmw",
        side: Side::Commute,
        what: "TVar::modify in atomically",
        run: rmw_commute,
    },
    Case {
        name: "rmw/mutex",
        row: "rmw",
        side: Side::Baseline,
        what: "Mutex<u64> increment",
        run: rmw_mutex,
    },
    Case {
        name: "counter/commute",
        row: "counter",
        side: Side::Commute,
        what: "TCounter::incr in atomically",
        run: counter_commute,
    },
    Case {
        name: "counter/atomic",
        row: "counter",
        side: Side::Commute,
        what: "TCounter .atomic().incr()",
        run: counter_atomic,
    },
    Case {
        name: "counter/mutex",
        row: "counter",
        side: Side::Baseline,
        what: "Mutex<u64> increment",
        run: counter_mutex,
    },
    Case {
        name: "map-get/commute",
        row: "map-get",
        side: Side::Commute,
        what: "TMap::get in atomically",
        run: map_get_commute,
    },
    Case {
        name: "map-get/atomic",
        row: "map-get",
        side: Side::Commute,
        what: "TMap .atomic().get",
        run: map_get_atomic,
    },
    Case {
        name: "map-get/grown",
        row: "map-get",
        side: Side::Commute,
        what: "TMap::get in atomically, grown",
        run: map_get_grown,
    },
    Case {
        name: "map-get/atomic-grown",
        row: "map-get",
        side: Side::Commute,
        what: "TMap .atomic().get, grown",
        run: map_get_atomic_grown,
    },
    Case {
        name: "map-get/dashmap",
        row: "map-get",
        side: Side::Baseline,
        what: "DashMap::get",
        run: map_get_dashmap,
    },
    Case {
        name: "map-update/commute",
        row: "map-update",
        side: Side::Commute,
        what: "TMap::insert in atomically",
        run: map_update_commute,
    },
    Case {
        name: "map-update/atomic",
        row: "map-update",
        side: Side::Commute,
        what: "TMap .atomic().insert",
        run: map_update_atomic,
    },
    Case {
        name: "map-update/snapshot",
        row: "map-update",
        side: Side::Commute,
        what: "TMap::insert, a read_only open",
        run: map_update_beside_snapshot,
    },
    Case {
        name: "map-update/grown",
        row: "map-update",
        side: Side::Commute,
        what: "TMap::insert in atomically, grown",
        run: map_update_grown,
    },
    Case {
        name: "map-update/atomic-grown",
        row: "map-update",
        side: Side::Commute,
        what: "TMap .atomic().insert, grown",
        run: map_update_atomic_grown,
    },
    Case {
        name: "map-update/mutex",
        row: "map-update",
        side: Side::Baseline,
        what: "Mutex<HashMap>::insert",
        run: map_update_mutex,
    },
    Case {
        name: "map-bulk/commute",
        row: "map-bulk",
        side: Side::Commute,
        what: "TMap::insert, 1,024 per atomically",
        run: map_bulk_commute,
    },
    Case {
        name: "map-bulk/mutex",
        row: "map-bulk",
        side: Side::Baseline,
        what: "Mutex<HashMap>::insert, 1,024 a lock",
        run: map_bulk_mutex,
    },
    Case {
        name: "queue/commute",
        row: "queue",
        side: Side::Commute,
        what: "TQueue push + pop, 2 atomically",
        run: queue_commute,
    },
    Case {
        name: "queue/atomic",
        row: "queue",
        side: Side::Commute,
        what: "TQueue .atomic() push + pop",
        run: queue_atomic,
    },
    Case {
        name: "queue/mutex",
        row: "queue",
        side: Side::Baseline,
        what: "Mutex<VecDeque> push + pop",
        run: queue_mutex,
    },
    Case {
        name: "event/commute",
        row: "event",
        side: Side::Commute,
        what: "TCounter+TMap+TQueue, 1 tx",
        run: event_commute,
    },
    Case {
        name: "event/mutex",
        row: "event",
        side: Side::Baseline,
        what: "Mutex<(u64, HashMap, VecDeque)>",
        run: event_mutex,
    },
    Case {
        name: "vacation/commute",
        row: "vacation",
        side: Side::Commute,
        what: "3 TMap tables, 1 tx",
        run: vacation_commute,
    },
    Case {
        name: "vacation/mutex",
        row: "vacation",
        side: Side::Baseline,
        what: "Mutex<[HashMap; 3]>",
        run: vacation_mutex,
    },
    Case {
        name: "anatomy/empty",
        row: "anatomy",
        side: Side::Commute,
        what: "atomically with an empty closure",
        run: anatomy_empty,
    },
    Case {
        name: "anatomy/read",
        row: "anatomy",
        side: Side::Commute,
        what: "atomically reading one TVar",
        run: anatomy_read,
    },
    Case {
        name: "anatomy/write",
        row: "anatomy",
        side: Side::Commute,
        what: "atomically writing one TVar",
        run: anatomy_write,
    },
    Case {
        name: "anatomy/floor-empty",
        row: "anatomy",
        side: Side::Commute,
        what: "bare TL2: empty closure",
        run: floor_empty,
    },
    Case {
        name: "anatomy/floor-read",
        row: "anatomy",
        side: Side::Commute,
        what: "bare TL2: one read",
        run: floor_read,
    },
    Case {
        name: "anatomy/floor-write",
        row: "anatomy",
        side: Side::Commute,
        what: "bare TL2: one write",
        run: floor_write,
    },
    Case {
        name: "anatomy/floor-rmw",
        row: "anatomy",
        side: Side::Commute,
        what: "bare TL2: read-modify-write",
        run: floor_rmw,
    },
    Case {
        name: "anatomy/mutex",
        row: "anatomy",
        side: Side::Baseline,
        what: "Mutex<u64> lock, read, unlock",
        run: anatomy_mutex,
    },
];

/// The case called `name`.
pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

// ----- the loop ------------------------------------------------------------------------------

/// Runs `op(i)` for `i` in `first..first + ops`: the measured operations. Never inlined, so that
/// callgrind can restrict collection to it (`--toggle-collect='*instructions::measured*'`).
#[inline(never)]
pub fn measured<F: FnMut(u64)>(first: u64, ops: u64, mut op: F) {
    for i in first..first + ops {
        op(black_box(i));
    }
}

/// Runs the warm-up operations, then the measured ones; returns the number of operations run.
fn drive<F: FnMut(u64)>(ops: u64, mut op: F) -> u64 {
    warm_up(&mut op);
    measured(WARMUP, ops, op);
    WARMUP + ops
}

/// [`drive`] for operations run [`BULK`] at a time: `batch(first, len)` runs operations
/// `first..first + len` (`len` is `BULK` but for the last batch, if `ops` is not a multiple).
/// [`measured`]'s operations are the batches.
fn drive_bulk<F: FnMut(u64, u64)>(ops: u64, mut batch: F) -> u64 {
    const { assert!(WARMUP.is_multiple_of(BULK)) };
    let end = WARMUP + ops;
    let mut run = |b: u64| {
        let first = b * BULK;
        batch(first, BULK.min(end - first));
    };
    for b in 0..WARMUP / BULK {
        run(b);
    }
    measured(WARMUP / BULK, ops.div_ceil(BULK), run);
    end
}

#[inline(never)]
fn warm_up<F: FnMut(u64)>(op: &mut F) {
    for i in 0..WARMUP {
        op(black_box(i));
    }
}

/// The hasher of every map: ahash (TMap's default) with fixed seeds, so that every run of a
/// case gives its maps the same shape.
fn hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

/// `SEQUENCE` numbers below `below`, from a fixed seed.
fn sequence(seed: u64, below: u64) -> Vec<u64> {
    let mut rng = XorShift::new(seed);
    (0..SEQUENCE).map(|_| rng.below(below)).collect()
}

/// Entry `i` of a pre-generated sequence.
#[inline(always)]
fn at(seq: &[u64], i: u64) -> u64 {
    seq[i as usize & (SEQUENCE - 1)]
}

/// The value stored under `key` in the map cases.
fn value_of(key: u64) -> u64 {
    key * 3 + 1
}

// ----- read-modify-write of one variable ------------------------------------------------------

fn rmw_commute(ops: u64) -> u64 {
    let var = TVar::new(0u64);
    let total = drive(ops, |_| {
        black_box(atomically(|tx| var.modify(tx, |x| x + 1)));
    });
    assert_eq!(var.load(), total);
    var.load()
}

fn rmw_mutex(ops: u64) -> u64 {
    let var = Mutex::new(0u64);
    let total = drive(ops, |_| {
        let mut guard = var.lock().unwrap();
        *guard += 1;
        black_box(*guard);
    });
    let value = *var.lock().unwrap();
    assert_eq!(value, total);
    value
}

// ----- anatomy: what a transaction costs before it does anything --------------------------

fn anatomy_empty(ops: u64) -> u64 {
    drive(ops, |i| {
        black_box(atomically(|_| Ok(i)));
    })
}

/// The floor of the protocol: a bare TL2 (`tl2_floor`), none of commute's features.
fn floor_empty(ops: u64) -> u64 {
    drive(ops, |i| {
        black_box(tl2_floor::atomically(|_| Ok(i)));
    })
}

fn floor_read(ops: u64) -> u64 {
    let var = tl2_floor::Var::new(7);
    let total = drive(ops, |_| {
        black_box(tl2_floor::atomically(|tx| var.read(tx)));
    });
    assert_eq!(var.load(), 7);
    total
}

fn floor_write(ops: u64) -> u64 {
    let var = tl2_floor::Var::new(0);
    let total = drive(ops, |i| {
        tl2_floor::atomically(|tx| {
            var.write(tx, i);
            Ok(())
        });
    });
    assert_eq!(var.load(), total - 1);
    total
}

fn floor_rmw(ops: u64) -> u64 {
    let var = tl2_floor::Var::new(0);
    let total = drive(ops, |_| {
        black_box(tl2_floor::atomically(|tx| var.modify(tx, |x| x + 1)));
    });
    assert_eq!(var.load(), total);
    total
}

fn anatomy_mutex(ops: u64) -> u64 {
    let var = Mutex::new(7u64);
    drive(ops, |_| {
        black_box(*var.lock().unwrap());
    })
}

fn anatomy_read(ops: u64) -> u64 {
    let var = TVar::new(7u64);
    let total = drive(ops, |_| {
        black_box(atomically(|tx| var.read(tx)));
    });
    assert_eq!(var.load(), 7);
    total
}

fn anatomy_write(ops: u64) -> u64 {
    let var = TVar::new(0u64);
    let total = drive(ops, |i| {
        atomically(|tx| {
            var.write(tx, i);
            Ok(())
        });
    });
    assert_eq!(var.load(), total - 1);
    total
}

// ----- counter increment ---------------------------------------------------------------------

fn counter_commute(ops: u64) -> u64 {
    let counter = TCounter::new();
    let total = drive(ops, |_| {
        atomically(|tx| {
            counter.incr(tx);
            Ok(())
        })
    });
    assert_eq!(counter.load(), total as i64);
    total
}

fn counter_atomic(ops: u64) -> u64 {
    let counter = TCounter::new();
    let total = drive(ops, |_| counter.atomic().incr());
    assert_eq!(counter.load(), total as i64);
    total
}

fn counter_mutex(ops: u64) -> u64 {
    let counter = Mutex::new(0u64);
    let total = drive(ops, |_| *counter.lock().unwrap() += 1);
    let value = *counter.lock().unwrap();
    assert_eq!(value, total);
    value
}

// ----- map lookup and update, 100k keys --------------------------------------------------------

/// The map rows' map: `MAP_KEYS` keys, presized (its root has a slot per two keys, so its walks
/// stop at the root).
fn filled_tmap() -> TMap<u64, u64> {
    filled(TMap::with_capacity_and_hasher(MAP_KEYS as usize, hasher()))
}

/// The same keys and values in a map grown by its inserts (`TMap::new`'s shape: a root of 64
/// slots, and inner nodes of 16 under the slots that overflowed: at 100,000 keys a walk passes
/// 2.3 inner nodes on average).
fn grown_tmap() -> TMap<u64, u64> {
    filled(TMap::with_hasher(hasher()))
}

/// `map` with the keys `0..MAP_KEYS` inserted, each with the value [`value_of`] gives it.
fn filled(map: TMap<u64, u64>) -> TMap<u64, u64> {
    for key in 0..MAP_KEYS {
        map.atomic().insert(key, value_of(key));
    }
    map
}

/// The update rows' checksum part of a map after its updates: still `MAP_KEYS` keys, and the
/// sum of their values.
fn updated_sum(map: &TMap<u64, u64>) -> u64 {
    assert_eq!(map.atomic().len(), MAP_KEYS as usize);
    (0..MAP_KEYS)
        .map(|k| map.atomic().get(&k).unwrap())
        .sum::<u64>()
}

/// The baselines' map: the keys and values of [`filled_tmap`] in a presized `HashMap`.
fn filled_hashmap() -> HashMap<u64, u64, ahash::RandomState> {
    let mut map = HashMap::with_capacity_and_hasher(MAP_KEYS as usize, hasher());
    map.extend((0..MAP_KEYS).map(|key| (key, value_of(key))));
    map
}

/// [`updated_sum`] of a baseline's map.
fn updated_hashmap_sum(map: Mutex<HashMap<u64, u64, ahash::RandomState>>) -> u64 {
    let map = map.into_inner().unwrap();
    assert_eq!(map.len(), MAP_KEYS as usize);
    map.values().sum()
}

fn map_keys() -> Vec<u64> {
    sequence(1, MAP_KEYS)
}

fn map_get_commute(ops: u64) -> u64 {
    map_get_in(&filled_tmap(), ops)
}

fn map_get_grown(ops: u64) -> u64 {
    map_get_in(&grown_tmap(), ops)
}

/// `ops` lookups of present keys in `map` (filled), each in a transaction of its own.
fn map_get_in(map: &TMap<u64, u64>, ops: u64) -> u64 {
    let keys = map_keys();
    let mut sum = 0;
    drive(ops, |i| {
        let key = at(&keys, i);
        sum += black_box(atomically(|tx| map.get(tx, &key))).unwrap();
    });
    sum
}

fn map_get_atomic(ops: u64) -> u64 {
    map_get_atomic_in(&filled_tmap(), ops)
}

fn map_get_atomic_grown(ops: u64) -> u64 {
    map_get_atomic_in(&grown_tmap(), ops)
}

/// `ops` one-call lookups of present keys in `map` (filled).
fn map_get_atomic_in(map: &TMap<u64, u64>, ops: u64) -> u64 {
    let keys = map_keys();
    let mut sum = 0;
    drive(ops, |i| {
        sum += black_box(map.atomic().get(&at(&keys, i))).unwrap();
    });
    sum
}

fn map_get_dashmap(ops: u64) -> u64 {
    // A fixed shard count (the default depends on the machine's cores).
    let map = DashMap::with_capacity_and_hasher_and_shard_amount(MAP_KEYS as usize, hasher(), 8);
    for key in 0..MAP_KEYS {
        map.insert(key, value_of(key));
    }
    let keys = map_keys();
    let mut sum = 0;
    drive(ops, |i| {
        sum += *black_box(map.get(&at(&keys, i))).unwrap();
    });
    sum
}

/// The checksum of the update cases: the sum of the replaced values, plus the sum of the final
/// values over all keys.
fn map_update_commute(ops: u64) -> u64 {
    map_update_in(&filled_tmap(), ops)
}

fn map_update_grown(ops: u64) -> u64 {
    map_update_in(&grown_tmap(), ops)
}

/// `ops` inserts of present keys into `map` (filled), each in a transaction of its own.
fn map_update_in(map: &TMap<u64, u64>, ops: u64) -> u64 {
    let keys = map_keys();
    let mut sum = 0;
    drive(ops, |i| {
        sum += black_box(atomically(|tx| map.insert(tx, at(&keys, i), i))).unwrap();
    });
    sum + updated_sum(map)
}

/// `map_update_commute` while another thread holds a `read_only` snapshot open (blocked in a
/// channel, so it adds no instructions per operation): what a writer pays for a long reader.
fn map_update_beside_snapshot(ops: u64) -> u64 {
    let map = std::sync::Arc::new(filled_tmap());
    let (opened, open) = std::sync::mpsc::channel();
    let (close, closed) = std::sync::mpsc::channel::<()>();
    let reader = {
        let map = map.clone();
        std::thread::spawn(move || {
            read_only(|tx| {
                let first = map.get(tx, &0)?;
                opened.send(()).expect("the case waits for the snapshot");
                closed.recv().expect("the case closes the snapshot");
                // Still the value of the snapshot's start, whatever was inserted since.
                assert_eq!(map.get(tx, &0)?, first);
                Ok(())
            })
        })
    };
    open.recv().expect("the reader opens its snapshot");
    let sum = map_update_in(&map, ops);
    close.send(()).expect("the reader waits");
    reader.join().expect("the reader's checks hold");
    sum
}

fn map_update_atomic(ops: u64) -> u64 {
    map_update_atomic_in(&filled_tmap(), ops)
}

fn map_update_atomic_grown(ops: u64) -> u64 {
    map_update_atomic_in(&grown_tmap(), ops)
}

/// `ops` one-call inserts of present keys into `map` (filled).
fn map_update_atomic_in(map: &TMap<u64, u64>, ops: u64) -> u64 {
    let keys = map_keys();
    let mut sum = 0;
    drive(ops, |i| {
        sum += black_box(map.atomic().insert(at(&keys, i), i)).unwrap();
    });
    sum + updated_sum(map)
}

fn map_update_mutex(ops: u64) -> u64 {
    let map = Mutex::new(filled_hashmap());
    let keys = map_keys();
    let mut sum = 0;
    drive(ops, |i| {
        sum += black_box(map.lock().unwrap().insert(at(&keys, i), i)).unwrap();
    });
    sum + updated_hashmap_sum(map)
}

// ----- map updates in bulk --------------------------------------------------------------------

/// Updates of present keys, [`BULK`] to a transaction, in the presized map of the map cases: a
/// bulk load's transactions. Each holds a thousand writes, some of them to one bucket (two
/// keys of one root slot), so that its commit tells the buckets it publishes from the copies
/// it overwrote among a thousand allocations (quadratic in the writes before `2c48bd6`).
fn map_bulk_commute(ops: u64) -> u64 {
    let map = filled_tmap();
    let keys = map_keys();
    let mut sum = 0;
    drive_bulk(ops, |first, len| {
        sum += atomically(|tx| {
            let mut old = 0;
            for i in first..first + len {
                old += map.insert(tx, at(&keys, i), i)?.unwrap();
            }
            Ok(old)
        });
    });
    sum + updated_sum(&map)
}

fn map_bulk_mutex(ops: u64) -> u64 {
    let map = Mutex::new(filled_hashmap());
    let keys = map_keys();
    let mut sum = 0;
    drive_bulk(ops, |first, len| {
        let mut map = map.lock().unwrap();
        for i in first..first + len {
            sum += map.insert(at(&keys, i), i).unwrap();
        }
    });
    sum + updated_hashmap_sum(map)
}

// ----- queue push then pop ---------------------------------------------------------------------

/// The checksum of the queue cases: the sum of the popped items (operation `i` pushes
/// `QUEUE_PREFILL + i` and pops `i`).
fn queue_commute(ops: u64) -> u64 {
    let queue = TQueue::new();
    for item in 0..QUEUE_PREFILL {
        queue.atomic().push(item);
    }
    let mut sum = 0;
    drive(ops, |i| {
        atomically(|tx| {
            queue.push(tx, QUEUE_PREFILL + i);
            Ok(())
        });
        let item = black_box(atomically(|tx| queue.pop(tx))).unwrap();
        debug_assert_eq!(item, i);
        sum += item;
    });
    assert_eq!(queue.atomic().len(), QUEUE_PREFILL as usize);
    sum
}

fn queue_atomic(ops: u64) -> u64 {
    let queue = TQueue::new();
    for item in 0..QUEUE_PREFILL {
        queue.atomic().push(item);
    }
    let mut sum = 0;
    drive(ops, |i| {
        queue.atomic().push(QUEUE_PREFILL + i);
        let item = black_box(queue.atomic().pop()).unwrap();
        debug_assert_eq!(item, i);
        sum += item;
    });
    assert_eq!(queue.atomic().len(), QUEUE_PREFILL as usize);
    sum
}

fn queue_mutex(ops: u64) -> u64 {
    let queue = Mutex::new((0..QUEUE_PREFILL).collect::<VecDeque<u64>>());
    let mut sum = 0;
    drive(ops, |i| {
        queue.lock().unwrap().push_back(QUEUE_PREFILL + i);
        let item = black_box(queue.lock().unwrap().pop_front()).unwrap();
        debug_assert_eq!(item, i);
        sum += item;
    });
    assert_eq!(queue.lock().unwrap().len(), QUEUE_PREFILL as usize);
    sum
}

// ----- the talk's event ------------------------------------------------------------------------

/// A user's session: requests seen and the last request's record.
type Session = (u64, u64);

fn event_users() -> Vec<u64> {
    sequence(2, USERS)
}

/// The event cases' checksum: the sum of the records the consumer popped. Both check that the
/// request count and the sessions' counts add up to the events handled, and that the log is
/// empty after the last full batch.
fn event_commute(ops: u64) -> u64 {
    let requests = TCounter::new();
    let sessions: TMap<u64, Session> = TMap::with_capacity_and_hasher(USERS as usize, hasher());
    for user in 0..USERS {
        sessions.atomic().insert(user, (0, 0));
    }
    let log: TQueue<u64> = TQueue::new();
    let users = event_users();
    let mut consumed = 0;
    let total = drive(ops, |i| {
        let user = at(&users, i);
        atomically(|tx| {
            requests.incr(tx);
            sessions.upsert(
                tx,
                user,
                || (0, 0),
                |session| {
                    session.0 += 1;
                    session.1 = i;
                },
            )?;
            log.push(tx, i);
            Ok(())
        });
        if (i + 1) % LOG_BATCH == 0 {
            // The consumer: drains the log in one transaction (as the lock-based case drains
            // its `VecDeque`).
            consumed += atomically(|tx| Ok(log.drain(tx)?.into_iter().sum::<u64>()));
        }
    });
    assert_eq!(requests.load(), total as i64);
    let seen: u64 = sessions.atomic().values().iter().map(|s| s.0).sum();
    assert_eq!(seen, total);
    assert_eq!(log.atomic().len() as u64, total % LOG_BATCH);
    consumed
}

fn event_mutex(ops: u64) -> u64 {
    type State = (
        u64,
        HashMap<u64, Session, ahash::RandomState>,
        VecDeque<u64>,
    );
    let mut sessions = HashMap::with_capacity_and_hasher(USERS as usize, hasher());
    sessions.extend((0..USERS).map(|user| (user, (0, 0))));
    let state: Mutex<State> = Mutex::new((0, sessions, VecDeque::new()));
    let users = event_users();
    let mut consumed = 0;
    let total = drive(ops, |i| {
        let user = at(&users, i);
        let mut guard = state.lock().unwrap();
        let (requests, sessions, log) = &mut *guard;
        *requests += 1;
        let session = sessions.entry(user).or_insert((0, 0));
        session.0 += 1;
        session.1 = i;
        log.push_back(i);
        drop(guard);
        if (i + 1) % LOG_BATCH == 0 {
            let mut guard = state.lock().unwrap();
            consumed += guard.2.drain(..).sum::<u64>();
        }
    });
    let (requests, sessions, log) = state.into_inner().unwrap();
    assert_eq!(requests, total);
    assert_eq!(sessions.values().map(|s| s.0).sum::<u64>(), total);
    assert_eq!(log.len() as u64, total % LOG_BATCH);
    consumed
}

// ----- a STAMP vacation-like reservation -------------------------------------------------------

/// A row of a vacation table: (total, used, free, price).
type Reservation = (u32, u32, u32, u32);

/// Queries of one reservation action.
const QUERIES: usize = 2;

/// The initial row `id` of table `kind` (the same in both cases).
fn vacation_row(kind: usize, id: u64) -> Reservation {
    let mut rng = XorShift::new(0x7ac0 + kind as u64 * ROWS + id);
    let total = 100 + rng.below(400) as u32;
    let price = 50 + 10 * rng.below(50) as u32;
    (total, 0, total, price)
}

/// The queries of the actions: action `i` makes queries `QUERIES * i ..`, each a table kind (0:
/// cars, 1: flights, 2: rooms) and a row id, packed as `kind * ROWS + id`.
fn vacation_queries() -> Vec<u64> {
    sequence(3, 3 * ROWS)
}

/// The vacation tables as one reservation sees them: in a transaction, or behind the lock.
trait Tables {
    type Error;
    /// Row `id` of table `kind`.
    fn query(&mut self, kind: usize, id: u64) -> Result<Option<Reservation>, Self::Error>;
    /// Writes row `id` of table `kind`.
    fn reserve(&mut self, kind: usize, id: u64, row: Reservation) -> Result<(), Self::Error>;
}

impl Tables for (&[TMap<u64, Reservation>; 3], &Transaction) {
    type Error = StmError;
    #[inline(always)]
    fn query(&mut self, kind: usize, id: u64) -> StmResult<Option<Reservation>> {
        self.0[kind].get(self.1, &id)
    }
    #[inline(always)]
    fn reserve(&mut self, kind: usize, id: u64, row: Reservation) -> StmResult<()> {
        self.0[kind].insert(self.1, id, row).map(drop)
    }
}

impl Tables for [HashMap<u64, Reservation, ahash::RandomState>; 3] {
    type Error = std::convert::Infallible;
    #[inline(always)]
    fn query(&mut self, kind: usize, id: u64) -> Result<Option<Reservation>, Self::Error> {
        Ok(self[kind].get(&id).copied())
    }
    #[inline(always)]
    fn reserve(&mut self, kind: usize, id: u64, row: Reservation) -> Result<(), Self::Error> {
        self[kind].insert(id, row);
        Ok(())
    }
}

/// One reservation, the same in both cases (STAMP vacation's `MAKE_RESERVATION` without the
/// customer table): query `QUERIES` random rows, remember the most expensive row with a free
/// place of each kind, then reserve one place in each remembered row. Returns the sum of the
/// prices reserved.
#[inline(always)]
fn reservation<T: Tables>(queries: &[u64], i: u64, tables: &mut T) -> Result<u64, T::Error> {
    let mut best: [Option<(u64, Reservation)>; 3] = [None; 3];
    for q in 0..QUERIES as u64 {
        let packed = at(queries, i * QUERIES as u64 + q);
        let (kind, id) = ((packed / ROWS) as usize, packed % ROWS);
        let better = tables
            .query(kind, id)?
            .filter(|row| row.2 > 0 && best[kind].is_none_or(|(_, b)| row.3 > b.3));
        if let Some(row) = better {
            best[kind] = Some((id, row));
        }
    }
    let mut paid = 0;
    for (kind, chosen) in best.into_iter().enumerate() {
        if let Some((id, (total, used, free, price))) = chosen {
            tables.reserve(kind, id, (total, used + 1, free - 1, price))?;
            paid += u64::from(price);
        }
    }
    Ok(paid)
}

/// The checksum of the vacation cases: the prices paid, plus the places used in all tables.
fn vacation_commute(ops: u64) -> u64 {
    let tables: [TMap<u64, Reservation>; 3] = std::array::from_fn(|kind| {
        let table = TMap::with_capacity_and_hasher(ROWS as usize, hasher());
        for id in 0..ROWS {
            table.atomic().insert(id, vacation_row(kind, id));
        }
        table
    });
    let queries = vacation_queries();
    let mut paid = 0;
    drive(ops, |i| {
        paid += black_box(atomically(|tx| {
            reservation(&queries, i, &mut (&tables, tx))
        }));
    });
    let used: u64 = tables
        .iter()
        .flat_map(|t| t.atomic().values())
        .map(|(total, used, free, _)| {
            assert_eq!(used + free, total);
            u64::from(used)
        })
        .sum();
    paid + used
}

fn vacation_mutex(ops: u64) -> u64 {
    let tables: Mutex<[HashMap<u64, Reservation, ahash::RandomState>; 3]> =
        Mutex::new(std::array::from_fn(|kind| {
            let mut table = HashMap::with_capacity_and_hasher(ROWS as usize, hasher());
            table.extend((0..ROWS).map(|id| (id, vacation_row(kind, id))));
            table
        }));
    let queries = vacation_queries();
    let mut paid = 0;
    drive(ops, |i| {
        let mut guard = tables.lock().unwrap();
        let Ok(price) = reservation(&queries, i, &mut *guard);
        paid += black_box(price);
    });
    let used: u64 = tables
        .into_inner()
        .unwrap()
        .iter()
        .flat_map(|t| t.values())
        .map(|&(total, used, free, _)| {
            assert_eq!(used + free, total);
            u64::from(used)
        })
        .sum();
    paid + used
}
