//! Memory per entry of a `TMap` beside a `std` `HashMap` holding the same keys and values: the
//! `memory` binary's measurement (docs/benchmarks.md, "Memory per map entry").
//!
//! Each structure is built by inserting the same keys one at a time, on a thread of its own that
//! hands the finished map back and exits, so that what the build left behind (the thread's cache
//! of freed blocks, leaves replaced by the inserts, once reclaimed) is not counted: the figure is
//! the heap bytes the finished map holds, as [`CountingAllocator`] sees them (requested sizes,
//! without the allocator's own headers and rounding). A program that measures installs it as
//! its global allocator.

use std::collections::HashMap;
use std::thread;

use commute::{TMap, reclaim_retired};

/// The counting allocator the tests share ([`CountingAllocator`], [`allocated`]): [`measure`]
/// needs it as the program's global allocator.
pub use commute_test_support::{CountingAllocator, allocated};

/// What the issue "What a transaction costs" asks of a `TMap` entry: at most this many times a
/// `HashMap`'s.
///
/// # Examples
///
/// ```
/// assert!(commute_benches::memory::TARGET_RATIO > 1.0);
/// ```
pub const TARGET_RATIO: f64 = 1.2;

/// The values measured: a word, and a 32-byte record (STAMP vacation's row).
///
/// # Examples
///
/// ```
/// use commute_benches::memory::ValueKind;
///
/// assert_eq!(ValueKind::Record.name(), "[u64; 4]");
/// assert_eq!(ValueKind::Record.entry_bytes(), 40); // a u64 key and the record
/// ```
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

/// Heap bytes per entry of each structure, for one key count and value kind ([`measure`]).
///
/// # Examples
///
/// ```
/// use commute_benches::memory::{MemoryRow, ValueKind};
///
/// let row = MemoryRow { keys: 10, value: ValueKind::Word, hash_map: 20.0, tmap: 30.0, tmap_presized: 24.0 };
/// assert_eq!((row.ratio(), row.presized_ratio()), (1.5, 1.2));
/// ```
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
///
/// # Examples
///
/// ```
/// let keys: Vec<u64> = commute_benches::memory::keys(3).collect();
/// assert_eq!(keys.len(), 3);
/// assert!(keys[1] != keys[2]);
/// ```
pub fn keys(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Key counts from `from` to `to`: `from` times 1, 1.4, 1.4², ... (rounded down), each once: the
/// `memory` binary's `--sweep`. A map's bytes per entry move with its key count, in waves (a
/// `HashMap` doubles its table; a growing `TMap`'s leaves split into inner nodes level by
/// level), so that a few key counts can each fall on a crest or a trough of either.
///
/// # Panics
///
/// If `from` is 0 or greater than `to`.
///
/// # Examples
///
/// ```
/// use commute_benches::memory::sweep_counts;
///
/// assert_eq!(sweep_counts(1_000, 3_000), [1_000, 1_400, 1_959, 2_743]);
/// assert_eq!(sweep_counts(5, 5), [5]);
/// ```
pub fn sweep_counts(from: u64, to: u64) -> Vec<u64> {
    assert!(
        from > 0 && from <= to,
        "commute_benches::memory::sweep_counts: need 0 < from <= to, got {from} and {to}"
    );
    let mut counts = Vec::new();
    let mut step = 0;
    loop {
        let n = (from as f64 * 1.4f64.powi(step)) as u64;
        if n > to {
            return counts;
        }
        if counts.last() != Some(&n) {
            counts.push(n);
        }
        step += 1;
    }
}

/// The spread of one structure's ratios to `HashMap` over several key counts ([`spread`]).
///
/// # Examples
///
/// ```
/// use commute_benches::memory::{Spread, spread};
///
/// let s: Spread = spread([1.2, 0.8, 1.5]).unwrap();
/// assert!(s.min <= s.geometric_mean && s.geometric_mean <= s.max);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The lowest ratio.
    pub min: f64,
    /// The highest ratio.
    pub max: f64,
    /// The geometric mean of the ratios.
    pub geometric_mean: f64,
}

/// The spread of `ratios` (positive numbers); `None` if there are none.
///
/// # Panics
///
/// If a ratio is not a positive finite number.
///
/// # Examples
///
/// ```
/// use commute_benches::memory::spread;
///
/// let s = spread([0.5, 2.0]).unwrap();
/// assert_eq!((s.min, s.max, s.geometric_mean), (0.5, 2.0, 1.0));
/// assert!(spread([]).is_none());
/// ```
pub fn spread(ratios: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let (mut min, mut max, mut log_sum, mut n) = (f64::INFINITY, 0.0f64, 0.0, 0u32);
    for r in ratios {
        assert!(
            r.is_finite() && r > 0.0,
            "commute_benches::memory::spread: a ratio must be positive and finite, got {r}"
        );
        min = min.min(r);
        max = max.max(r);
        log_sum += r.ln();
        n += 1;
    }
    (n > 0).then(|| Spread {
        min,
        max,
        geometric_mean: (log_sum / f64::from(n)).exp(),
    })
}

/// Measures one row: each structure built on a thread of its own, then counted, then dropped.
/// Nothing else may allocate meanwhile.
///
/// # Panics
///
/// If [`CountingAllocator`] is not the program's global allocator (nothing would be counted).
///
/// # Examples
///
/// ```
/// use commute_benches::memory::{CountingAllocator, ValueKind, measure};
///
/// #[global_allocator]
/// static ALLOCATOR: CountingAllocator = CountingAllocator;
///
/// fn main() {
///     let row = measure(200, ValueKind::Word);
///     // Each structure holds at least its keys and values.
///     assert!(row.hash_map >= 16.0 && row.tmap >= 16.0 && row.tmap_presized >= 16.0);
/// }
/// ```
pub fn measure(keys: u64, value: ValueKind) -> MemoryRow {
    let probe = Box::new(0u64);
    assert!(
        allocated() >= size_of_val(&*probe),
        "commute_benches::memory::measure: install CountingAllocator as the #[global_allocator]"
    );
    drop(probe);
    match value {
        ValueKind::Word => measure_with(keys, value, |k| k),
        ValueKind::Record => measure_with(keys, value, |k| [k, k ^ 1, k ^ 2, k ^ 3]),
    }
}

fn measure_with<V>(n: u64, value: ValueKind, make: fn(u64) -> V) -> MemoryRow
where
    V: Clone + Send + Sync + 'static,
{
    let hash_map = held_by(n, move || {
        let mut map = HashMap::new();
        for k in keys(n) {
            map.insert(k, make(k));
        }
        map
    });
    let tmap = held_by(n, move || filled(TMap::new(), n, make));
    let tmap_presized = held_by(n, move || filled(TMap::with_capacity(n as usize), n, make));
    MemoryRow {
        keys: n,
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
fn held_by<T: Send + 'static>(entries: u64, build: impl FnOnce() -> T + Send + 'static) -> f64 {
    settle();
    let before = allocated();
    let built = thread::spawn(build).join().expect("the build panicked");
    settle();
    let held = allocated().saturating_sub(before);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary counts nothing (its global allocator is the system's): `measure` says
    /// so instead of printing zeros.
    #[test]
    #[should_panic(expected = "install CountingAllocator")]
    fn measuring_without_the_counting_allocator_panics() {
        measure(10, ValueKind::Word);
    }

    #[test]
    fn a_sweep_grows_by_two_fifths_and_stops_at_its_end() {
        let counts = sweep_counts(1_000, 1_000_000);
        assert_eq!((counts.len(), counts[0], counts[20]), (21, 1_000, 836_682));
        // Each about 1.4 times the last (`from * 1.4^k`, rounded down: within 2 of it).
        assert!(
            counts
                .windows(2)
                .all(|w| w[1] > w[0] && w[1] <= w[0] * 14 / 10 + 2)
        );
        // Small starts round down to the same count more than once: each is kept once.
        assert_eq!(sweep_counts(1, 3), [1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "need 0 < from <= to")]
    fn a_sweep_from_zero_panics() {
        sweep_counts(0, 10);
    }

    #[test]
    #[should_panic(expected = "positive and finite")]
    fn a_ratio_of_zero_panics() {
        spread([1.0, 0.0]);
    }
}
