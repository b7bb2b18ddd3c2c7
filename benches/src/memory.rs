//! Memory per entry of a `TMap` beside a `std` `HashMap` holding the same keys and values: the
//! `memory` binary's measurement (docs/benchmarks.md, "Memory per map entry").
//!
//! Each structure is built by inserting the same keys one at a time, on a thread of its own that
//! hands the finished map back and exits, so that what the build left behind (the thread's cache
//! of freed blocks, leaves replaced by the inserts, once reclaimed) is not counted: the figure is
//! the heap bytes the finished map holds, as a counting global allocator sees them (requested
//! sizes, without the allocator's own headers and rounding). The caller supplies that count.

use std::collections::HashMap;
use std::thread;

use commute::{TMap, reclaim_retired};

/// What the issue "What a transaction costs" asks of a `TMap` entry: at most this many times a
/// `HashMap`'s.
pub const TARGET_RATIO: f64 = 1.2;

/// The values measured: a word, and a 32-byte record (STAMP vacation's row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `u64`.
    Word,
    /// `[u64; 4]`.
    Record,
}

impl ValueKind {
    /// Both kinds.
    pub const ALL: [ValueKind; 2] = [ValueKind::Word, ValueKind::Record];

    /// The value's type, as the table prints it.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Word => "u64",
            ValueKind::Record => "[u64; 4]",
        }
    }

    /// The bytes of one key and value, as stored (`u64` keys).
    pub fn entry_bytes(self) -> usize {
        8 + match self {
            ValueKind::Word => 8,
            ValueKind::Record => 32,
        }
    }
}

/// Heap bytes per entry of each structure, for one key count and value kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryRow {
    /// Keys inserted.
    pub keys: u64,
    /// The values' kind.
    pub value: ValueKind,
    /// `HashMap<u64, V>` (std, default hasher), grown by its inserts.
    pub hash_map: f64,
    /// `TMap::new()`, grown by its inserts (local splits).
    pub tmap: f64,
    /// `TMap::with_capacity(keys)`.
    pub tmap_presized: f64,
}

impl MemoryRow {
    /// `TMap::new()`'s bytes over `HashMap`'s.
    pub fn ratio(&self) -> f64 {
        self.tmap / self.hash_map
    }

    /// `TMap::with_capacity`'s bytes over `HashMap`'s.
    pub fn presized_ratio(&self) -> f64 {
        self.tmap_presized / self.hash_map
    }
}

/// The `n` keys every structure gets: distinct, spread over the whole `u64` range.
pub fn keys(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Measures one row: each structure built on a thread of its own, then counted, then dropped.
/// `live` is the heap bytes allocated now (a counting global allocator's count); nothing else
/// may allocate meanwhile.
pub fn measure(keys: u64, value: ValueKind, live: fn() -> usize) -> MemoryRow {
    match value {
        ValueKind::Word => measure_with(keys, value, live, |k| k),
        ValueKind::Record => measure_with(keys, value, live, |k| [k, k ^ 1, k ^ 2, k ^ 3]),
    }
}

fn measure_with<V>(
    keys: u64,
    value: ValueKind,
    live: fn() -> usize,
    make: fn(u64) -> V,
) -> MemoryRow
where
    V: Clone + Send + Sync + 'static,
{
    let hash_map = held_by(keys, live, move || {
        let mut map = HashMap::new();
        for k in self::keys(keys) {
            map.insert(k, make(k));
        }
        map
    });
    let tmap = held_by(keys, live, move || filled(TMap::new(), keys, make));
    let tmap_presized = held_by(keys, live, move || {
        filled(TMap::with_capacity(keys as usize), keys, make)
    });
    MemoryRow {
        keys,
        value,
        hash_map,
        tmap,
        tmap_presized,
    }
}

/// `map` with the `n` keys inserted, one `.atomic()` insert each.
fn filled<V>(map: TMap<u64, V>, n: u64, make: fn(u64) -> V) -> TMap<u64, V>
where
    V: Clone + Send + Sync + 'static,
{
    for k in keys(n) {
        map.atomic().insert(k, make(k));
    }
    map
}

/// Bytes per entry that the structure `build` returns holds once built: built on a thread that
/// exits, then counted here after reclamation passes, then dropped on another thread.
fn held_by<T: Send + 'static>(
    entries: u64,
    live: fn() -> usize,
    build: impl FnOnce() -> T + Send + 'static,
) -> f64 {
    settle();
    let before = live();
    let built = thread::spawn(build).join().expect("the build panicked");
    settle();
    let held = live().saturating_sub(before);
    thread::spawn(move || drop(built))
        .join()
        .expect("the drop panicked");
    settle();
    held as f64 / entries as f64
}

/// Reclamation passes, on a thread of their own, until what exited threads left to reclaim is
/// freed: the blocks they free go to that thread's cache, which its exit frees too.
fn settle() {
    thread::spawn(|| {
        for _ in 0..4 {
            reclaim_retired();
        }
    })
    .join()
    .expect("reclamation panicked");
}
