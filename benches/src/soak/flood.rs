//! Hash flooding: keys chosen to collide under a *known* hasher must not slow down a `TMap`
//! built with the default, randomly seeded hasher.
//!
//! An attacker who knows the hash function picks keys whose hashes share their low bits: under
//! that hasher they all fall under one root slot and down one path of the trie, which grows
//! deeper (a lookup walks more levels) where a table with chained buckets would degrade to a
//! list. [`colliding_keys`] finds such keys by brute force for a fixed-seed
//! `ahash::RandomState`; [`measure`] times inserts and lookups of them against as many random
//! keys, in a default `TMap` and in one using the fixed-seed hasher.

use std::hash::BuildHasher;
use std::time::Instant;

use commute::TMap;

use crate::rng::XorShift;

/// The seeds of the hasher the attacker knows.
pub const KNOWN_SEEDS: (u64, u64, u64, u64) = (1, 2, 3, 4);

/// The fixed-seed hasher the attacker knows.
///
/// # Examples
///
/// ```
/// use std::hash::BuildHasher;
///
/// let h = commute_benches::soak::flood::known_hasher();
/// assert_eq!(h.hash_one(7u64), commute_benches::soak::flood::known_hasher().hash_one(7u64));
/// ```
pub fn known_hasher() -> ahash::RandomState {
    let (a, b, c, d) = KNOWN_SEEDS;
    ahash::RandomState::with_seeds(a, b, c, d)
}

/// `count` keys (`u64`s, key 0 first) whose hashes under `hasher` share their low `bits` bits,
/// found by brute force on `threads` threads (each scans its own residue class in order, so
/// the result does not depend on scheduling). Expect `count << bits` hashes of work.
///
/// # Panics
///
/// If `bits` is above 63 or `threads` is 0.
///
/// # Examples
///
/// ```
/// use std::hash::BuildHasher;
/// use commute_benches::soak::flood::{colliding_keys, known_hasher};
///
/// let h = known_hasher();
/// let keys = colliding_keys(&h, 6, 10, 2);
/// assert_eq!(keys.len(), 10);
/// assert!(keys.iter().all(|k| h.hash_one(k) & 63 == h.hash_one(0u64) & 63));
/// ```
pub fn colliding_keys<S: BuildHasher + Sync>(
    hasher: &S,
    bits: u32,
    count: usize,
    threads: usize,
) -> Vec<u64> {
    assert!(
        bits < 64 && threads > 0,
        "bits below 64, at least one thread"
    );
    let mask = (1u64 << bits) - 1;
    let target = hasher.hash_one(0u64) & mask;
    let step = threads as u64;
    let mut keys: Vec<u64> = std::thread::scope(|s| {
        let searchers: Vec<_> = (0..threads)
            .map(|t| {
                let share = count / threads + usize::from(t < count % threads);
                s.spawn(move || {
                    let mut found = Vec::with_capacity(share);
                    let mut key = t as u64;
                    while found.len() < share {
                        if hasher.hash_one(key) & mask == target {
                            found.push(key);
                        }
                        key += step;
                    }
                    found
                })
            })
            .collect();
        searchers
            .into_iter()
            .flat_map(|h| h.join().expect("a key search panicked"))
            .collect()
    });
    keys.sort_unstable();
    keys
}

/// Timings of the flooding check, in nanoseconds per operation (best of several rounds).
#[derive(Clone, Debug, PartialEq)]
pub struct FloodReport {
    /// Keys per set.
    pub keys: usize,
    /// Low hash bits the colliding keys share under the known hasher.
    pub bits: u32,
    /// Default hasher, colliding keys.
    pub default_colliding_ns: f64,
    /// Default hasher, random keys.
    pub default_random_ns: f64,
    /// Known hasher, colliding keys.
    pub known_colliding_ns: f64,
    /// Known hasher, random keys.
    pub known_random_ns: f64,
    /// Root slots the colliding keys fall under with the default hasher.
    pub default_roots: usize,
    /// Root slots the colliding keys fall under with the known hasher.
    pub known_roots: usize,
    /// Seconds spent finding the keys.
    pub search_seconds: f64,
}

impl FloodReport {
    /// Colliding over random keys, default hasher (about 1 when flooding is defeated).
    pub fn default_ratio(&self) -> f64 {
        self.default_colliding_ns / self.default_random_ns
    }

    /// Colliding over random keys, known hasher (above 1: the trie is deeper).
    pub fn known_ratio(&self) -> f64 {
        self.known_colliding_ns / self.known_random_ns
    }
}

/// Nanoseconds per operation of inserting `keys` into a fresh map from `make`, then looking
/// each up `lookups` times (one-call forms: each operation is its own transaction).
fn time_map<S: BuildHasher>(
    make: &impl Fn() -> TMap<u64, u64, S>,
    keys: &[u64],
    lookups: usize,
) -> f64 {
    let map = make();
    let started = Instant::now();
    for &k in keys {
        map.atomic().insert(k, k);
    }
    for _ in 0..lookups {
        for &k in keys {
            assert_eq!(map.atomic().get(&k), Some(k), "key {k} lost");
        }
    }
    started.elapsed().as_nanos() as f64 / (keys.len() * (1 + lookups)) as f64
}

/// How many root slots of `map` the `keys` fall under.
fn roots_used<S: BuildHasher>(map: &TMap<u64, u64, S>, keys: &[u64]) -> usize {
    let mut used: Vec<usize> = keys.iter().map(|k| map.root_index(k)).collect();
    used.sort_unstable();
    used.dedup();
    used.len()
}

/// Finds `count` keys colliding in their low `bits` bits under [`known_hasher`], then times
/// them against as many random keys (from `seed`) in a default `TMap` and in a `TMap` with the
/// known hasher, best of `rounds` rounds.
///
/// # Panics
///
/// If a key inserted is not found again (a map bug), or as for [`colliding_keys`].
///
/// # Examples
///
/// ```
/// let report = commute_benches::soak::flood::measure(64, 6, 1, 1);
/// assert_eq!(report.known_roots, 1); // 6 bits = the default map's 64 root slots
/// assert!(report.default_roots > 1);
/// ```
pub fn measure(count: usize, bits: u32, seed: u64, rounds: usize) -> FloodReport {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let colliding = colliding_keys(&known_hasher(), bits, count, threads);
    let search_seconds = started.elapsed().as_secs_f64();
    let mut rng = XorShift::new(seed);
    let random: Vec<u64> = (0..count).map(|_| rng.next_u64()).collect();
    let default_map = || TMap::<u64, u64>::new();
    let known_map = || TMap::<u64, u64, ahash::RandomState>::with_hasher(known_hasher());
    let default_roots = roots_used(&default_map(), &colliding);
    let known_roots = roots_used(&known_map(), &colliding);
    let lookups = 8;
    let mut best = [f64::INFINITY; 4];
    for _ in 0..rounds.max(1) {
        // Interleaved, so that drift in the machine's speed hits every variant alike.
        let times = [
            time_map(&default_map, &colliding, lookups),
            time_map(&default_map, &random, lookups),
            time_map(&known_map, &colliding, lookups),
            time_map(&known_map, &random, lookups),
        ];
        for (b, t) in best.iter_mut().zip(times) {
            *b = b.min(t);
        }
    }
    FloodReport {
        keys: count,
        bits,
        default_colliding_ns: best[0],
        default_random_ns: best[1],
        known_colliding_ns: best[2],
        known_random_ns: best[3],
        default_roots,
        known_roots,
        search_seconds,
    }
}
