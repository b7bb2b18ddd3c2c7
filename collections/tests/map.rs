//! `TMap`: model tests against std's `HashMap` (with tiny tries so that buckets split), exact
//! invariants under concurrency, the zero-abort property of inserts of different keys while the
//! map grows, and memory reclamation.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::{Arc, Barrier};

use commute::{Change, StmResult, TMap, TVar, Transaction, atomically, stats};
use quickcheck::{Arbitrary, Gen, QuickCheck};

mod common;
use common::{Mode, Tagged, aborts_of, run_group, run_threads};

// ----- model tests -------------------------------------------------------------------------

/// Keys come from a small range so that operations meet on the same keys.
const KEYS: u8 = 24;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u16),
    InsertIfAbsent(u8, u16),
    Remove(u8),
    Get(u8),
    GetRef(u8),
    ContainsKey(u8),
    /// Insert `default` if absent, then add one.
    Upsert(u8, u16),
    /// `alter` with one of its outcomes, chosen from the current value (see `alter_rule`).
    Alter(u8, u16),
    Len,
    IsEmpty,
    Iter,
    Keys,
    Values,
    /// Keep the values not divisible by `2 + n % 5`.
    Retain(u8),
    Clear,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let k = u8::arbitrary(g) % KEYS;
        let v = u16::arbitrary(g);
        match u8::arbitrary(g) % 48 {
            0..=9 => Op::Insert(k, v),
            10..=12 => Op::InsertIfAbsent(k, v),
            13..=19 => Op::Remove(k),
            20..=22 => Op::Get(k),
            23..=24 => Op::GetRef(k),
            25..=26 => Op::ContainsKey(k),
            27..=30 => Op::Upsert(k, v),
            31..=32 => Op::Len,
            33 => Op::IsEmpty,
            34 => Op::Iter,
            40..=47 => Op::Alter(k, v),
            35 => {
                if bool::arbitrary(g) {
                    Op::Keys
                } else {
                    Op::Values
                }
            }
            36..=38 => Op::Retain(k),
            _ => Op::Clear,
        }
    }
}

/// The decision of an `Op::Alter(_, v)` given the current value, and its result (the old value
/// and which outcome it took), so that every outcome is exercised and checked: an absent key is
/// inserted for even `v` and left absent otherwise; a present value `x` is removed if
/// `x % 4 == 0`, left as it is if `x % 4 == 1`, and replaced by `x + v` (or `v`) otherwise.
fn alter_rule(current: Option<&u16>, v: u16) -> (Change<u16>, (Option<u16>, &'static str)) {
    let change = match current {
        None if v % 2 == 0 => Change::Set(v),
        None => Change::Keep,
        Some(&x) if x % 4 == 0 => Change::Remove,
        Some(&x) if x % 4 == 1 => Change::Keep,
        Some(&x) if x % 4 == 2 => Change::Set(x.wrapping_add(v)),
        Some(_) => Change::Set(v),
    };
    let outcome = match (&change, current) {
        (Change::Keep, _) => "keep",
        (Change::Set(_), None) => "insert",
        (Change::Set(_), Some(_)) => "replace",
        (Change::Remove, _) => "remove",
    };
    (change, (current.copied(), outcome))
}

#[derive(Debug, PartialEq)]
enum Out {
    /// An `alter`'s result: the old value and the outcome.
    Altered(Option<u16>, &'static str),
    Value(Option<u16>),
    Bool(bool),
    Len(usize),
    Entries(Vec<(u8, u16)>),
    Keys(Vec<u8>),
    Values(Vec<u16>),
    Unit,
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort_unstable();
    items
}

fn keep(m: u8) -> impl Fn(&u8, &u16) -> bool {
    move |_, v| v % (2 + u16::from(m % 5)) != 0
}

fn model_op(model: &mut HashMap<u8, u16>, op: &Op) -> Out {
    match *op {
        Op::Insert(k, v) => Out::Value(model.insert(k, v)),
        Op::InsertIfAbsent(k, v) => {
            let absent = !model.contains_key(&k);
            if absent {
                model.insert(k, v);
            }
            Out::Bool(absent)
        }
        Op::Remove(k) => Out::Value(model.remove(&k)),
        Op::Get(k) | Op::GetRef(k) => Out::Value(model.get(&k).copied()),
        Op::ContainsKey(k) => Out::Bool(model.contains_key(&k)),
        Op::Upsert(k, d) => {
            let v = model.entry(k).or_insert(d);
            *v = v.wrapping_add(1);
            Out::Unit
        }
        Op::Alter(k, v) => {
            let (change, (old, outcome)) = alter_rule(model.get(&k), v);
            match change {
                Change::Keep => {}
                Change::Set(new) => {
                    model.insert(k, new);
                }
                Change::Remove => {
                    model.remove(&k);
                }
            }
            Out::Altered(old, outcome)
        }
        Op::Len => Out::Len(model.len()),
        Op::IsEmpty => Out::Bool(model.is_empty()),
        Op::Iter => Out::Entries(sorted(model.iter().map(|(k, v)| (*k, *v)).collect())),
        Op::Keys => Out::Keys(sorted(model.keys().copied().collect())),
        Op::Values => Out::Values(sorted(model.values().copied().collect())),
        Op::Retain(m) => {
            let keep = keep(m);
            model.retain(|k, v| keep(k, v));
            Out::Unit
        }
        Op::Clear => {
            model.clear();
            Out::Unit
        }
    }
}

fn tx_op<S: BuildHasher>(map: &TMap<u8, u16, S>, tx: &Transaction, op: &Op) -> StmResult<Out> {
    Ok(match *op {
        Op::Insert(k, v) => Out::Value(map.insert(tx, k, v)?),
        Op::InsertIfAbsent(k, v) => Out::Bool(map.insert_if_absent(tx, k, v)?),
        Op::Remove(k) => Out::Value(map.remove(tx, &k)?),
        Op::Get(k) => Out::Value(map.get(tx, &k)?),
        Op::GetRef(k) => Out::Value(map.get_ref(tx, &k)?.copied()),
        Op::ContainsKey(k) => Out::Bool(map.contains_key(tx, &k)?),
        Op::Upsert(k, d) => {
            map.upsert(tx, k, || d, |v| *v = v.wrapping_add(1))?;
            Out::Unit
        }
        Op::Alter(k, v) => {
            let (old, outcome) = map.alter(tx, k, |cur| alter_rule(cur, v))?;
            Out::Altered(old, outcome)
        }
        Op::Len => Out::Len(map.len(tx)?),
        Op::IsEmpty => Out::Bool(map.is_empty(tx)?),
        Op::Iter => Out::Entries(sorted(map.iter(tx)?)),
        Op::Keys => Out::Keys(sorted(map.keys(tx)?)),
        Op::Values => Out::Values(sorted(map.values(tx)?)),
        Op::Retain(m) => {
            map.retain(tx, keep(m))?;
            Out::Unit
        }
        Op::Clear => {
            map.clear(tx)?;
            Out::Unit
        }
    })
}

fn one_call_op<S: BuildHasher>(map: &TMap<u8, u16, S>, op: &Op) -> Out {
    let a = map.atomic();
    match *op {
        Op::Insert(k, v) => Out::Value(a.insert(k, v)),
        Op::InsertIfAbsent(k, v) => Out::Bool(a.insert_if_absent(k, v)),
        Op::Remove(k) => Out::Value(a.remove(&k)),
        Op::Get(k) | Op::GetRef(k) => Out::Value(a.get(&k)),
        Op::ContainsKey(k) => Out::Bool(a.contains_key(&k)),
        Op::Upsert(k, d) => {
            a.upsert(k, || d, |v| *v = v.wrapping_add(1));
            Out::Unit
        }
        Op::Alter(k, v) => {
            let (old, outcome) = a.alter(k, |cur| alter_rule(cur, v));
            Out::Altered(old, outcome)
        }
        Op::Len => Out::Len(a.len()),
        Op::IsEmpty => Out::Bool(a.is_empty()),
        Op::Iter => Out::Entries(sorted(a.iter())),
        Op::Keys => Out::Keys(sorted(a.keys())),
        Op::Values => Out::Values(sorted(a.values())),
        Op::Retain(m) => {
            a.retain(keep(m));
            Out::Unit
        }
        Op::Clear => {
            a.clear();
            Out::Unit
        }
    }
}

fn map_matches_model<S: BuildHasher>(map: TMap<u8, u16, S>, groups: &[(Mode, Vec<Op>)]) -> bool {
    let mut model = HashMap::new();
    for (mode, ops) in groups {
        let (expected, got) = run_group(
            *mode,
            ops,
            |op| model_op(&mut model, op),
            |op| one_call_op(&map, op),
            |tx, op| tx_op(&map, tx, op),
        );
        let snapshot = sorted(map.atomic().iter());
        let expected_snapshot = sorted(model.iter().map(|(k, v)| (*k, *v)).collect());
        if got != expected || snapshot != expected_snapshot || map.atomic().len() != model.len() {
            eprintln!("mode {mode:?}, ops {ops:?}:\n got {got:?}\n expected {expected:?}");
            return false;
        }
    }
    true
}

fn quickcheck(prop: fn(Vec<(Mode, Vec<Op>)>) -> bool) {
    QuickCheck::new()
        .tests(200)
        .rng(Gen::new(24))
        .quickcheck(prop);
}

#[test]
fn tiny_tries_match_std_hashmap() {
    common::with_watchdog(20, || {
        // Buckets of one entry, two children per node: nearly every insert splits something.
        quickcheck(|groups| map_matches_model(TMap::with_config(2, 2, 1), &groups));
        quickcheck(|groups| map_matches_model(TMap::with_config(1, 4, 2), &groups));
    });
}

#[test]
fn default_shape_matches_std_hashmap() {
    common::with_watchdog(20, || {
        quickcheck(|groups| map_matches_model(TMap::new(), &groups));
    });
}

/// An empty map of the given shape whose keys are hashed by `H`.
fn hashed_by<H: Hasher + Default>(
    root_slots: usize,
    inner_slots: usize,
    leaf_capacity: usize,
) -> TMap<u8, u16, BuildHasherDefault<H>> {
    TMap::with_config_and_hasher(
        root_slots,
        inner_slots,
        leaf_capacity,
        BuildHasherDefault::default(),
    )
}

/// Hashes everything to the same value: every key collides on every bit.
#[derive(Default)]
struct Collide;

impl Hasher for Collide {
    fn finish(&self) -> u64 {
        0x5555_5555_5555_5555
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn full_hash_collisions_match_std_hashmap() {
    common::with_watchdog(20, || {
        // Splits go down until the hash bits run out, then the last bucket just grows.
        quickcheck(|groups| map_matches_model(hashed_by::<Collide>(2, 16, 2), &groups));
    });
}

/// Hashes a key to a spread of low bits (the trie's index) under one of two adjacent values of
/// the top 7 bits (the tag a leaf keeps per entry): most entries of a leaf share their tag with
/// others, and the two tags differ in their lowest bit, so that a lookup meets several
/// candidates, false ones included (a borrow out of a matching byte marks the byte above).
#[derive(Default)]
struct TwoTags(u64);

impl Hasher for TwoTags {
    fn finish(&self) -> u64 {
        let spread = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 8;
        ((0x3e | (self.0 & 1)) << 57) | spread
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0 << 8 | u64::from(b);
        }
    }
}

#[test]
fn shared_tags_and_long_leaves_match_std_hashmap() {
    common::with_watchdog(30, || {
        // One root slot and leaves of up to 8 or 24: entries past the four with tags in the
        // header, and leaves whose tags are nearly all alike.
        quickcheck(|groups| map_matches_model(hashed_by::<TwoTags>(1, 2, 8), &groups));
        quickcheck(|groups| map_matches_model(hashed_by::<TwoTags>(1, 2, 24), &groups));
        quickcheck(|groups| map_matches_model(TMap::with_config(1, 2, 24), &groups));
    });
}

#[test]
fn large_map_through_many_splits() {
    let map: TMap<u32, u32> = TMap::new();
    for chunk in (0..20_000u32).collect::<Vec<_>>().chunks(500) {
        atomically(|tx| {
            for &k in chunk {
                map.insert(tx, k, k * 2)?;
            }
            Ok(())
        });
    }
    assert_eq!(map.atomic().len(), 20_000);
    for k in (0..20_000).step_by(7) {
        assert_eq!(map.atomic().get(&k), Some(k * 2));
    }
    assert_eq!(map.atomic().get(&20_000), None);
    let mut keys = map.atomic().keys();
    keys.sort_unstable();
    assert_eq!(keys, (0..20_000).collect::<Vec<_>>());
}

#[test]
fn borrowed_lookups_and_string_keys() {
    let map: TMap<String, Vec<u8>> = TMap::new();
    map.atomic().insert("ada".to_string(), vec![1, 2]);
    let total = atomically(|tx| {
        let v = map.get_ref(tx, "ada")?.expect("present");
        Ok(v.iter().map(|&b| u32::from(b)).sum::<u32>())
    });
    assert_eq!(total, 3);
    assert!(map.atomic().contains_key("ada"));
    assert_eq!(map.atomic().remove("ada"), Some(vec![1, 2]));
}

#[test]
fn from_iter_extend_debug_default_label() {
    let mut map: TMap<u32, char> = [(1, 'a'), (2, 'b'), (1, 'c')].into_iter().collect();
    assert_eq!(map.atomic().len(), 2);
    assert_eq!(map.atomic().get(&1), Some('c'));
    map.extend([(3, 'd'), (2, 'e')]);
    assert_eq!(sorted_chars(&map), [(1, 'c'), (2, 'e'), (3, 'd')]);
    let map = map.with_label("letters");
    assert_eq!(sorted_chars(&map), [(1, 'c'), (2, 'e'), (3, 'd')]);
    assert_eq!(format!("{:?}", TMap::<u8, u8>::new()), "{}");
    let one: TMap<u8, u8> = [(7, 8)].into_iter().collect();
    assert_eq!(format!("{one:?}"), "{7: 8}");
    assert_eq!(format!("{:?}", one.atomic()), "Atomic({7: 8})");
    let d: TMap<u8, u8> = TMap::default();
    assert!(d.atomic().is_empty());
    // A big collected map (split while being built) keeps working transactionally.
    let big: TMap<u32, u32> = (0..5_000)
        .map(|k| (k, k))
        .collect::<TMap<_, _>>()
        .with_label("big");
    assert_eq!(big.atomic().len(), 5_000);
    big.atomic().retain(|k, _| k % 2 == 0);
    assert_eq!(big.atomic().len(), 2_500);
    assert_eq!(big.atomic().get(&4_998), Some(4_998));
}

fn sorted_chars(map: &TMap<u32, char>) -> Vec<(u32, char)> {
    sorted(map.atomic().iter())
}

#[test]
fn collect_works_inside_a_transaction() {
    let source = TVar::new(3u32);
    let map = atomically(|tx| {
        let n = source.read(tx)?;
        Ok((0..n).map(|k| (k, k)).collect::<TMap<u32, u32>>())
    });
    assert_eq!(map.atomic().len(), 3);
}

#[test]
#[should_panic(expected = "power of two")]
fn config_must_use_powers_of_two() {
    let _ = TMap::<u8, u8>::with_config(3, 2, 1);
}

// ----- concurrency -------------------------------------------------------------------------

/// A small deterministic generator (xorshift), one per thread.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn concurrent_writers_leave_the_union_of_their_writes() {
    common::with_watchdog(20, || {
        // Each thread owns the keys congruent to its index mod 4: it inserts them all, then removes
        // every third one again, mixing one-call and multi-key transactions.
        let map: Arc<TMap<u32, u32>> = Arc::new(TMap::with_config(4, 4, 2));
        let m = map.clone();
        run_threads(4, move |t| {
            let mine: Vec<u32> = (0..1_200).filter(|k| k % 4 == t as u32).collect();
            for pair in mine.chunks(2) {
                if pair[0] % 3 == 0 {
                    pair.iter()
                        .for_each(|&k| assert_eq!(m.atomic().insert(k, k + 1), None));
                } else {
                    atomically(|tx| {
                        for &k in pair {
                            m.insert(tx, k, k + 1)?;
                        }
                        Ok(())
                    });
                }
            }
            for &k in mine.iter().filter(|&&k| k % 3 == 0) {
                assert_eq!(m.atomic().remove(&k), Some(k + 1));
            }
        });
        let mut entries = map.atomic().iter();
        entries.sort_unstable();
        let expected: Vec<(u32, u32)> = (0..1_200)
            .filter(|k| k % 3 != 0)
            .map(|k| (k, k + 1))
            .collect();
        assert_eq!(entries, expected);
        assert_eq!(map.atomic().len(), expected.len());
    });
}

#[test]
fn concurrent_inserts_and_removes_of_the_same_keys_stay_consistent() {
    common::with_watchdog(20, || {
        // Four threads insert and remove the same 32 keys at random. Each counts the keys it added
        // (insert returned None) minus those it removed (remove returned Some): in every serial
        // order the sum of these tallies is the final length.
        let map: Arc<TMap<u32, usize>> = Arc::new(TMap::with_config(2, 2, 2));
        let m = map.clone();
        let tallies = run_threads(4, move |t| {
            let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1);
            let mut tally = 0i64;
            for _ in 0..1_500 {
                let r = xorshift(&mut rng);
                let k = (r % 32) as u32;
                tally += match (r >> 8) % 3 {
                    0 => i64::from(m.atomic().insert(k, t).is_none()),
                    1 => -i64::from(m.atomic().remove(&k).is_some()),
                    _ => atomically(|tx| {
                        // Move: remove one key and insert the next, in one transaction.
                        let removed = m.remove(tx, &k)?.is_some();
                        let added = m.insert(tx, (k + 1) % 32, t)?.is_none();
                        Ok(i64::from(added) - i64::from(removed))
                    }),
                };
            }
            tally
        });
        let len = map.atomic().len();
        assert_eq!(tallies.iter().sum::<i64>(), len as i64);
        assert_eq!(map.atomic().iter().len(), len);
        assert!(len <= 32);
    });
}

#[test]
fn transfers_between_keys_keep_every_snapshot_consistent() {
    common::with_watchdog(20, || {
        // Writers move amounts between random keys; readers check in one transaction that the
        // total over a snapshot of all entries never changes.
        const TOTAL: i64 = 1_000;
        let map: Arc<TMap<u32, i64>> = Arc::new(TMap::with_config(2, 2, 2));
        map.atomic().insert(0, TOTAL);
        let m = map.clone();
        run_threads(3, move |t| {
            let mut rng = 0x2545_f491_4f6c_dd1d ^ (t as u64 + 7);
            for _ in 0..1_000 {
                if t == 0 {
                    let sum: i64 = atomically(|tx| {
                        let mut sum = 0;
                        m.for_each(tx, |_, v| sum += v)?;
                        Ok(sum)
                    });
                    assert_eq!(sum, TOTAL, "a snapshot saw a half-done transfer");
                } else {
                    let r = xorshift(&mut rng);
                    let (from, to) = ((r % 16) as u32, ((r >> 8) % 16) as u32);
                    atomically(|tx| {
                        let have = m.get(tx, &from)?.unwrap_or(0);
                        if have > 0 && from != to {
                            m.insert(tx, from, have - 1)?;
                            m.upsert(tx, to, || 0, |v| *v += 1)?;
                        }
                        Ok(())
                    });
                }
            }
        });
        assert_eq!(
            map.atomic().iter().iter().map(|(_, v)| v).sum::<i64>(),
            TOTAL
        );
    });
}

#[test]
fn inserts_of_different_keys_never_abort_while_the_map_grows() {
    common::with_watchdog(20, || {
        // Two threads insert disjoint keys into one map that starts empty and splits its buckets
        // many times meanwhile (default shape: 64 root buckets of 8). Keys are split between the
        // threads by root bucket, so they never share a bucket; the length counter is shared.
        const PER_THREAD: usize = 4_000;
        let map: Arc<TMap<u64, u64>> = Arc::new(TMap::new().with_label("grown map"));
        let mut keys: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let mut k = 0;
        while keys.iter().any(|v| v.len() < PER_THREAD) {
            let side = map.root_index(&k) % 2;
            if keys[side].len() < PER_THREAD {
                keys[side].push(k);
            }
            k += 1;
        }
        let keys = Arc::new(keys);
        let (m, ks) = (map.clone(), keys.clone());
        let aborts = aborts_of(2, move |t| {
            for pair in ks[t].chunks(2) {
                atomically(|tx| {
                    for &k in pair {
                        m.insert(tx, k, k)?;
                    }
                    Ok(())
                });
            }
        });
        eprintln!(
            "TMap, 2 threads x {PER_THREAD} inserts of different keys from empty: {aborts} aborts"
        );
        assert_eq!(
            aborts, 0,
            "inserts of keys in different buckets aborted each other"
        );
        assert_eq!(map.atomic().len(), 2 * PER_THREAD);
        for k in keys.iter().flatten().step_by(13) {
            assert_eq!(map.atomic().get(k), Some(*k));
        }

        // The same inserts into a map whose length is a plain TVar<u64>, read-modify-written: every
        // pair of overlapping inserts now conflicts on it.
        let naive = Arc::new((
            TMap::<u64, u64>::new(),
            TVar::new(0u64).with_label("naive length"),
        ));
        let seen = Arc::new(AtomicBool::new(false));
        let (n, s, ks) = (naive.clone(), seen.clone(), keys.clone());
        let naive_aborts = aborts_of(2, move |t| {
            let before = stats::thread();
            let mut done = 0u64;
            // All the keys as above, then on (re-inserting) until an abort is seen, capped.
            for &k in ks[t].iter().cycle() {
                if done >= 2_000_000 || (s.load(Ordering::Relaxed) && done >= PER_THREAD as u64) {
                    break;
                }
                atomically(|tx| {
                    if n.0.insert(tx, k, k)?.is_none() {
                        n.1.modify(tx, |len| len + 1)?;
                    }
                    Ok(())
                });
                done += 1;
                if done % 64 == 0 && (stats::thread() - before.clone()).aborts() > 0 {
                    s.store(true, Ordering::Relaxed);
                }
            }
        });
        eprintln!(
            "same inserts with a naive TVar<u64> length (read-modify-write), 2 threads: \
         {naive_aborts} aborts"
        );
        assert!(
            naive_aborts > 0,
            "the naive length never aborted: the threads never overlapped"
        );
        assert_eq!(naive.1.load(), 2 * PER_THREAD as u64);
    });
}

/// One step of a per-key counter through `alter`, cycling through every outcome: insert 1 when
/// absent, replace by one more below 3, remove at 3; every fourth step (`step % 4 == 3`) keeps
/// the value. Returns the old value and the outcome.
fn counter_step(current: Option<&u64>, step: usize) -> (Change<u64>, (Option<u64>, &'static str)) {
    let change = match current {
        _ if step % 4 == 3 => Change::Keep,
        None => Change::Set(1),
        Some(&n) if n < 3 => Change::Set(n + 1),
        Some(_) => Change::Remove,
    };
    let outcome = match (&change, current) {
        (Change::Keep, _) => "keep",
        (Change::Set(_), None) => "insert",
        (Change::Set(_), Some(_)) => "replace",
        (Change::Remove, _) => "remove",
    };
    (change, (current.copied(), outcome))
}

#[test]
fn alters_of_different_keys_never_abort_each_other() {
    common::with_watchdog(20, || {
        // Two threads alter disjoint keys (split by root bucket, so they never share a bucket) of
        // one map that starts empty, in transactions of two keys, through every outcome: keys are
        // inserted, replaced, kept and removed, and buckets split meanwhile. The length counter is
        // shared. Each thread checks every result against its own sequential model.
        const PER_THREAD: usize = 1_000;
        const ROUNDS: usize = 6;
        let map: Arc<TMap<u64, u64>> = Arc::new(TMap::new().with_label("altered map"));
        let mut keys: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let mut k = 0;
        while keys.iter().any(|v| v.len() < PER_THREAD) {
            let side = map.root_index(&k) % 2;
            if keys[side].len() < PER_THREAD {
                keys[side].push(k);
            }
            k += 1;
        }
        let keys = Arc::new(keys);
        let (m, ks) = (map.clone(), keys.clone());
        let aborts = aborts_of(2, move |t| {
            let mut model: HashMap<u64, u64> = HashMap::new();
            let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
            for round in 0..ROUNDS {
                for (j, pair) in ks[t].chunks(2).enumerate() {
                    let step = round * 3 + j;
                    let got = atomically(|tx| {
                        let mut got = Vec::new();
                        for &k in pair {
                            got.push(m.alter(tx, k, |cur| counter_step(cur, step))?);
                        }
                        Ok(got)
                    });
                    for (&k, got) in pair.iter().zip(got) {
                        let (change, expected) = counter_step(model.get(&k), step);
                        assert_eq!(got, expected, "key {k}, step {step}");
                        match change {
                            Change::Keep => {}
                            Change::Set(n) => {
                                model.insert(k, n);
                            }
                            Change::Remove => {
                                model.remove(&k);
                            }
                        }
                        *outcomes.entry(expected.1).or_default() += 1;
                    }
                }
            }
            for outcome in ["keep", "insert", "replace", "remove"] {
                assert!(
                    outcomes.get(outcome).is_some_and(|&n| n > 0),
                    "no {outcome}"
                );
            }
            for &k in &ks[t] {
                assert_eq!(m.atomic().get(&k), model.get(&k).copied(), "key {k}");
            }
        });
        eprintln!(
            "TMap, 2 threads x {ROUNDS} x {PER_THREAD} alters of different keys: {aborts} aborts"
        );
        assert_eq!(
            aborts, 0,
            "alters of keys in different buckets aborted each other"
        );
        let live = keys
            .iter()
            .flatten()
            .filter(|k| map.atomic().get(k).is_some())
            .count();
        assert_eq!(map.atomic().len(), live);
    });
}

#[test]
fn an_alter_that_keeps_writes_nothing() {
    common::with_watchdog(20, || {
        // The main thread opens a transaction that reads two keys of a one-bucket map, then waits
        // while another thread runs one `alter` on that bucket, then writes elsewhere and commits.
        // Only an alter that sets or removes a present key writes the bucket and so forces the
        // main transaction to run again.
        type Case = (
            &'static str,
            u32,
            fn(Option<&u32>) -> (Change<u32>, ()),
            usize,
        );
        let cases: [Case; 6] = [
            ("keep a present key", 1, |_| (Change::Keep, ()), 1),
            ("keep an absent key", 9, |_| (Change::Keep, ()), 1),
            ("remove an absent key", 9, |_| (Change::Remove, ()), 1),
            ("replace a key read", 1, |_| (Change::Set(10), ()), 2),
            (
                "insert a key in the bucket",
                9,
                |_| (Change::Set(10), ()),
                2,
            ),
            ("remove a key in the bucket", 3, |_| (Change::Remove, ()), 2),
        ];
        for (name, key, f, expected_attempts) in cases {
            let map: Arc<TMap<u32, u32>> = Arc::new(TMap::with_config(1, 2, 64));
            for k in 1..=3 {
                map.atomic().insert(k, k);
            }
            let out = TVar::new(0u32);
            let opened = Arc::new(Barrier::new(2));
            let altered = Arc::new(Barrier::new(2));
            let (m, o, a) = (map.clone(), opened.clone(), altered.clone());
            let other = std::thread::spawn(move || {
                o.wait();
                m.atomic().alter(key, f);
                a.wait();
            });
            let mut attempts = 0;
            atomically(|tx| {
                attempts += 1;
                let one = map.get(tx, &1)?.unwrap_or(0);
                let two = map.get(tx, &2)?.unwrap_or(0);
                if attempts == 1 {
                    opened.wait();
                    altered.wait();
                }
                out.write(tx, one + two);
                Ok(())
            });
            other.join().unwrap();
            assert_eq!(attempts, expected_attempts, "{name}");
        }
    });
}

#[test]
fn an_alter_whose_closure_writes_its_own_bucket_keeps_that_write() {
    // One bucket: the closure's insert of another key lands where the alter then writes.
    let map: TMap<u32, u32> = TMap::with_config(1, 2, 64);
    atomically(|tx| {
        map.alter(tx, 1, |_| {
            map.insert(tx, 2, 2).ok();
            (Change::Set(1), ())
        })
    });
    let mut entries = map.atomic().iter();
    entries.sort_unstable();
    assert_eq!(entries, [(1, 1), (2, 2)]);
    assert_eq!(map.atomic().len(), 2);
}

#[test]
fn a_split_elsewhere_does_not_abort_an_open_transaction() {
    common::with_watchdog(20, || {
        // The main thread opens a transaction that reads and then writes a key under root bucket 0.
        // Meanwhile another thread inserts keys that split buckets. If they split under root bucket
        // 1, the open transaction commits at its first attempt; if they land in the same bucket as
        // the main thread's key, it must run again (a real conflict).
        for same_bucket in [false, true] {
            let map: Arc<TMap<u32, u32>> = Arc::new(TMap::with_config(2, 2, 2));
            let mut by_root: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
            for k in 0..200 {
                by_root[map.root_index(&k)].push(k);
            }
            let main_key = by_root[0][0];
            let others: Vec<u32> = if same_bucket {
                by_root[0][1..9].to_vec()
            } else {
                by_root[1][..8].to_vec()
            };
            let opened = Arc::new(Barrier::new(2));
            let inserted = Arc::new(Barrier::new(2));
            let (m, o, i) = (map.clone(), opened.clone(), inserted.clone());
            let other = std::thread::spawn(move || {
                o.wait();
                for k in others {
                    m.atomic().insert(k, k);
                }
                i.wait();
            });
            let mut attempts = 0;
            atomically(|tx| {
                attempts += 1;
                let seen = map.get(tx, &main_key)?;
                if attempts == 1 {
                    opened.wait();
                    inserted.wait();
                }
                map.insert(tx, main_key, seen.unwrap_or(0) + 1)?;
                Ok(())
            });
            other.join().unwrap();
            assert_eq!(map.atomic().len(), 9);
            assert_eq!(
                attempts,
                if same_bucket { 2 } else { 1 },
                "same_bucket = {same_bucket}"
            );
        }
    });
}

// ----- memory ------------------------------------------------------------------------------

/// A value that counts its live instances in a counter of its own test.
struct Tracked {
    live: &'static AtomicIsize,
    id: u32,
}

impl Tracked {
    fn new(live: &'static AtomicIsize, id: u32) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Tracked { live, id }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.live, self.id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Frees retired values until `live` reaches `expected` (see [`common::reclaim_until`]).
fn reclaim_until(live: &AtomicIsize, expected: isize) {
    let reached = common::reclaim_until(|| live.load(Ordering::Relaxed) == expected);
    let now = live.load(Ordering::Relaxed);
    assert!(reached, "{now} values live, expected {expected}: a leak");
}

#[test]
fn churn_frees_every_removed_value() {
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    let map: TMap<u32, Tracked> = TMap::with_config(2, 2, 2);
    let mut rng = 0x1234_5678_9abc_def1;
    for round in 0..6_000u32 {
        let k = (xorshift(&mut rng) % 64) as u32;
        if round % 2 == 0 {
            map.atomic().insert(k, Tracked::new(&LIVE, round));
        } else {
            atomically(|tx| {
                map.remove(tx, &k)?;
                map.upsert(tx, k ^ 1, || Tracked::new(&LIVE, round), |v| v.id += 1)
            });
        }
    }
    // Every value left is one entry of the map: copies in replaced buckets are all freed.
    let len = map.atomic().len();
    assert!(len > 0);
    reclaim_until(&LIVE, len as isize);
    map.atomic().retain(|k, _| k % 2 == 0);
    reclaim_until(&LIVE, map.atomic().len() as isize);
    map.atomic().clear();
    reclaim_until(&LIVE, 0);
}

#[test]
fn dropping_a_map_drops_every_value() {
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    let map: TMap<u32, Tracked> = TMap::with_config(2, 4, 3);
    for k in 0..2_000 {
        map.atomic().insert(k, Tracked::new(&LIVE, k));
    }
    for k in (0..2_000).step_by(3) {
        map.atomic().insert(k, Tracked::new(&LIVE, k + 1));
    }
    reclaim_until(&LIVE, 2_000);
    drop(map);
    reclaim_until(&LIVE, 0);
    // A collected map too (built without transactions).
    let map: TMap<u32, Tracked> = (0..500).map(|k| (k, Tracked::new(&LIVE, k))).collect();
    assert_eq!(LIVE.load(Ordering::Relaxed), 500);
    drop(map);
    reclaim_until(&LIVE, 0);
}

#[test]
fn a_rolled_back_insert_leaves_nothing_behind() {
    common::with_watchdog(20, || {
        static LIVE: AtomicIsize = AtomicIsize::new(0);
        let map: TMap<u32, Tracked> = TMap::with_config(1, 2, 1);
        map.atomic().insert(0, Tracked::new(&LIVE, 0));
        atomically(|tx| {
            tx.or_else(
                |tx| {
                    for k in 1..20 {
                        map.insert(tx, k, Tracked::new(&LIVE, k))?; // splits, all rolled back
                    }
                    tx.retry()
                },
                |_| Ok(()),
            )
        });
        assert_eq!(map.atomic().len(), 1);
        reclaim_until(&LIVE, 1);
    });
}

/// Entries do not keep their hashes: a split hashes every key of the bucket again, and so does a
/// removal for the entry it moves into the last tagged place. A key whose `Hash` panics there
/// leaves the map as it was, with every value accounted for.
#[test]
fn a_key_whose_hash_panics_in_a_split_or_a_removal_leaves_the_map_unchanged() {
    common::with_watchdog(20, || {
        static LIVE: AtomicIsize = AtomicIsize::new(0);
        static ARMED: AtomicBool = AtomicBool::new(false);
        /// A key whose hash panics for 4 once armed.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
        struct Touchy(u32);
        impl Hash for Touchy {
            fn hash<H: Hasher>(&self, state: &mut H) {
                let armed = ARMED.load(Ordering::Relaxed);
                assert!(!armed || self.0 != 4, "hashing key 4");
                self.0.hash(state);
            }
        }
        // One root slot and buckets of 8: keys 0 to 7 share one bucket, in that order, so key
        // 4 is its first entry past the four with tags.
        let map: TMap<Touchy, Tracked> = TMap::with_config(1, 2, 8);
        for k in 0..8 {
            map.atomic().insert(Touchy(k), Tracked::new(&LIVE, 10 + k));
        }
        let ids = |map: &TMap<Touchy, Tracked>| {
            let mut ids = Vec::new();
            atomically(|tx| {
                ids.clear();
                map.for_each(tx, |k, v| ids.push((k.0, v.id)))
            });
            ids.sort();
            ids
        };
        let before = ids(&map);
        ARMED.store(true, Ordering::Relaxed);
        let split = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map.atomic().insert(Touchy(8), Tracked::new(&LIVE, 99))
        }));
        assert!(
            split.is_err(),
            "a ninth key splits the bucket, hashing key 4"
        );
        for k in [0, 3] {
            let removal = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                map.atomic().remove(&Touchy(k))
            }));
            assert!(
                removal.is_err(),
                "removing key {k} moves key 4 into a tagged place"
            );
        }
        assert_eq!(ids(&map), before);
        // Lookups, updates and removals past the tagged entries hash no neighbour.
        assert_eq!(map.atomic().get(&Touchy(5)).map(|v| v.id), Some(15));
        let old = map.atomic().insert(Touchy(6), Tracked::new(&LIVE, 16));
        assert_eq!(old.map(|v| v.id), Some(16));
        assert_eq!(map.atomic().remove(&Touchy(7)).map(|v| v.id), Some(17));
        ARMED.store(false, Ordering::Relaxed);
        assert_eq!(map.atomic().remove(&Touchy(0)).map(|v| v.id), Some(10));
        assert_eq!(map.atomic().get(&Touchy(4)).map(|v| v.id), Some(14));
        reclaim_until(&LIVE, 6);
        drop(map);
        reclaim_until(&LIVE, 0);
    });
}

#[test]
fn a_panicking_clone_leaves_the_map_unchanged_and_leaks_nothing() {
    common::with_watchdog(20, || {
        static LIVE: AtomicIsize = AtomicIsize::new(0);
        static ARMED: AtomicBool = AtomicBool::new(false);
        /// A value whose clone panics for id 13 once armed (a bucket copy then stops half way).
        struct Fragile(Tracked);
        impl Clone for Fragile {
            fn clone(&self) -> Self {
                let armed = ARMED.load(Ordering::Relaxed);
                assert!(!armed || self.0.id != 13, "cloning value 13");
                Fragile(self.0.clone())
            }
        }
        // One root slot and buckets of 8: the eight keys share one bucket.
        let map: TMap<u32, Fragile> = TMap::with_config(1, 2, 8);
        for k in 0..8 {
            map.atomic().insert(k, Fragile(Tracked::new(&LIVE, 10 + k)));
        }
        let ids = |map: &TMap<u32, Fragile>| {
            let mut ids = Vec::new();
            atomically(|tx| {
                ids.clear();
                map.for_each(tx, |k, v| ids.push((*k, v.0.id)))
            });
            ids.sort();
            ids
        };
        let before = ids(&map);
        ARMED.store(true, Ordering::Relaxed);
        for k in [0, 5, 7] {
            let update = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                map.atomic().insert(k, Fragile(Tracked::new(&LIVE, 99)))
            }));
            assert!(update.is_err(), "copying the bucket clones value 13");
            let removal =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| map.atomic().remove(&k)));
            assert!(removal.is_err(), "so does removing a neighbour");
        }
        assert_eq!(ids(&map), before);
        reclaim_until(&LIVE, 8);
        drop(map);
        reclaim_until(&LIVE, 0);
    });
}

// ----- which key an update keeps ---------------------------------------------------------------

/// Unlike `HashMap::insert`, which keeps the stored key, an update of a present key stores the
/// key it was given, in every form that sets a value (as documented on `TMap::insert`).
#[test]
fn an_update_stores_the_key_it_was_given() {
    let tags = |map: &TMap<Tagged, u32>| {
        let mut tags = Vec::new();
        atomically(|tx| {
            tags.clear();
            map.for_each(tx, |k, v| tags.push((k.id, k.tag, *v)))
        });
        tags.sort();
        tags
    };
    let key = |tag| Tagged { id: 7, tag };
    let map = TMap::new();
    map.atomic().insert(key("first"), 1);
    assert_eq!(atomically(|tx| map.insert(tx, key("second"), 2)), Some(1));
    assert_eq!(tags(&map), [(7, "second", 2)]);
    assert_eq!(map.atomic().insert(key("third"), 3), Some(2));
    assert_eq!(tags(&map), [(7, "third", 3)]);
    map.atomic()
        .alter(key("fourth"), |v| (Change::Set(v.map_or(0, |v| v + 1)), ()));
    assert_eq!(tags(&map), [(7, "fourth", 4)]);
    // An insert that finds the key present writes nothing, the key included.
    assert!(!map.atomic().insert_if_absent(key("fifth"), 5));
    assert_eq!(tags(&map), [(7, "fourth", 4)]);
}
