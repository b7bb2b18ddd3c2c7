//! `TSet`: model tests against std's `HashSet`, exact invariants under concurrency, and the
//! zero-abort property of inserts of different (or already present) elements.

use std::collections::HashSet;
use std::sync::Arc;

use commute::{StmResult, TSet, Transaction};
use quickcheck::{Arbitrary, Gen, QuickCheck};

mod common;
use common::{Mode, aborts_of, run_group, run_threads};

// ----- model tests -------------------------------------------------------------------------

const ELEMENTS: u16 = 40;

#[derive(Clone, Debug)]
enum Op {
    Insert(u16),
    Remove(u16),
    Toggle(u16),
    Contains(u16),
    Len,
    IsEmpty,
    Iter,
    /// Keep the elements not divisible by `2 + n % 4`.
    Retain(u16),
    Clear,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let x = u16::arbitrary(g) % ELEMENTS;
        match u8::arbitrary(g) % 34 {
            30..=33 => Op::Toggle(x),
            0..=10 => Op::Insert(x),
            11..=17 => Op::Remove(x),
            18..=21 => Op::Contains(x),
            22..=23 => Op::Len,
            24 => Op::IsEmpty,
            25..=26 => Op::Iter,
            27..=28 => Op::Retain(x),
            _ => Op::Clear,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Out {
    Bool(bool),
    Len(usize),
    Elements(Vec<u16>),
    Unit,
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort_unstable();
    v
}

fn keep(n: u16) -> impl Fn(&u16) -> bool {
    move |x| x % (2 + n % 4) != 0
}

fn model_op(model: &mut HashSet<u16>, op: &Op) -> Out {
    match *op {
        Op::Insert(x) => Out::Bool(model.insert(x)),
        Op::Remove(x) => Out::Bool(model.remove(&x)),
        Op::Toggle(x) => Out::Bool(!model.remove(&x) && model.insert(x)),
        Op::Contains(x) => Out::Bool(model.contains(&x)),
        Op::Len => Out::Len(model.len()),
        Op::IsEmpty => Out::Bool(model.is_empty()),
        Op::Iter => Out::Elements(sorted(model.iter().copied().collect())),
        Op::Retain(n) => {
            model.retain(keep(n));
            Out::Unit
        }
        Op::Clear => {
            model.clear();
            Out::Unit
        }
    }
}

fn tx_op(set: &TSet<u16>, tx: &Transaction, op: &Op) -> StmResult<Out> {
    Ok(match *op {
        Op::Insert(x) => Out::Bool(set.insert(tx, x)?),
        Op::Remove(x) => Out::Bool(set.remove(tx, &x)?),
        Op::Toggle(x) => Out::Bool(set.toggle(tx, x)?),
        Op::Contains(x) => Out::Bool(set.contains(tx, &x)?),
        Op::Len => Out::Len(set.len(tx)?),
        Op::IsEmpty => Out::Bool(set.is_empty(tx)?),
        Op::Iter => {
            let mut borrowed = Vec::new();
            set.for_each(tx, |x| borrowed.push(*x))?;
            let cloned = set.iter(tx)?;
            assert_eq!(sorted(borrowed), sorted(cloned.clone()));
            Out::Elements(sorted(cloned))
        }
        Op::Retain(n) => {
            set.retain(tx, keep(n))?;
            Out::Unit
        }
        Op::Clear => {
            set.clear(tx)?;
            Out::Unit
        }
    })
}

fn one_call_op(set: &TSet<u16>, op: &Op) -> Out {
    let a = set.atomic();
    match *op {
        Op::Insert(x) => Out::Bool(a.insert(x)),
        Op::Remove(x) => Out::Bool(a.remove(&x)),
        Op::Toggle(x) => Out::Bool(a.toggle(x)),
        Op::Contains(x) => Out::Bool(a.contains(&x)),
        Op::Len => Out::Len(a.len()),
        Op::IsEmpty => Out::Bool(a.is_empty()),
        Op::Iter => Out::Elements(sorted(a.iter())),
        Op::Retain(n) => {
            a.retain(keep(n));
            Out::Unit
        }
        Op::Clear => {
            a.clear();
            Out::Unit
        }
    }
}

fn set_matches_model(set: TSet<u16>, groups: &[(Mode, Vec<Op>)]) -> bool {
    let mut model = HashSet::new();
    for (mode, ops) in groups {
        let (expected, got) = run_group(
            *mode,
            ops,
            |op| model_op(&mut model, op),
            |op| one_call_op(&set, op),
            |tx, op| tx_op(&set, tx, op),
        );
        let snapshot = sorted(set.atomic().iter());
        if got != expected
            || snapshot != sorted(model.iter().copied().collect())
            || set.atomic().len() != model.len()
        {
            eprintln!("mode {mode:?}, ops {ops:?}:\n got {got:?}\n expected {expected:?}");
            return false;
        }
    }
    true
}

#[test]
fn sets_match_std_hashset() {
    common::with_watchdog(20, || {
        let prop: fn(Vec<(Mode, Vec<Op>)>) -> bool =
            |groups| set_matches_model(TSet::with_config(2, 2, 1), &groups);
        QuickCheck::new()
            .tests(200)
            .rng(Gen::new(24))
            .quickcheck(prop);
        let prop: fn(Vec<(Mode, Vec<Op>)>) -> bool =
            |groups| set_matches_model(TSet::new(), &groups);
        QuickCheck::new()
            .tests(100)
            .rng(Gen::new(24))
            .quickcheck(prop);
    });
}

#[test]
fn from_iter_extend_debug_default_label() {
    let mut set: TSet<&str> = ["a", "b", "a"].into_iter().collect();
    assert_eq!(set.atomic().len(), 2);
    set.extend(["c", "a"]);
    assert_eq!(sorted_strs(&set), ["a", "b", "c"]);
    let set = set.with_label("letters");
    assert_eq!(sorted_strs(&set), ["a", "b", "c"]);
    let one: TSet<u8> = [5].into_iter().collect();
    assert_eq!(format!("{one:?}"), "{5}");
    assert_eq!(format!("{:?}", one.atomic()), "Atomic({5})");
    assert!(TSet::<u8>::default().atomic().is_empty());
    let owned: TSet<String> = TSet::new();
    owned.atomic().insert("x".to_string());
    assert!(owned.atomic().contains("x"), "lookups borrow like std's");
}

fn sorted_strs(set: &TSet<&'static str>) -> Vec<&'static str> {
    let mut v = set.atomic().iter();
    v.sort_unstable();
    v
}

// ----- concurrency -------------------------------------------------------------------------

#[test]
fn concurrent_inserts_and_removes_stay_consistent_with_len() {
    common::with_watchdog(20, || {
        // Three threads insert and remove the same 48 elements. Each tallies the elements it added
        // minus those it removed; the tallies sum to the final length in every serial order.
        let set: Arc<TSet<u32>> = Arc::new(TSet::with_config(2, 2, 2));
        let s = set.clone();
        let tallies = run_threads(3, move |t| {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 3);
            let mut tally = 0i64;
            for _ in 0..1_500 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let x = (rng % 48) as u32;
                tally += if rng >> 40 & 1 == 0 {
                    i64::from(s.atomic().insert(x))
                } else {
                    -i64::from(s.atomic().remove(&x))
                };
            }
            tally
        });
        let len = set.atomic().len();
        assert_eq!(tallies.iter().sum::<i64>(), len as i64);
        assert_eq!(set.atomic().iter().len(), len);
    });
}

#[test]
fn inserts_of_different_or_present_elements_never_abort() {
    common::with_watchdog(20, || {
        // Two threads insert disjoint elements (split by root bucket) into an empty set, then both
        // insert every element again: present elements are only read, never written.
        const PER_THREAD: usize = 3_000;
        let set: Arc<TSet<u64>> = Arc::new(TSet::new());
        let mut mine: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let mut x = 0;
        while mine.iter().any(|v| v.len() < PER_THREAD) {
            let side = set.root_index(&x) % 2;
            if mine[side].len() < PER_THREAD {
                mine[side].push(x);
            }
            x += 1;
        }
        let mine = Arc::new(mine);
        let (s, m) = (set.clone(), mine.clone());
        let aborts = aborts_of(2, move |t| {
            for &x in &m[t] {
                assert!(s.atomic().insert(x));
            }
        });
        eprintln!("TSet, 2 threads x {PER_THREAD} inserts of different elements: {aborts} aborts");
        assert_eq!(aborts, 0);
        let (s, m) = (set.clone(), mine.clone());
        let aborts = aborts_of(2, move |_| {
            for &x in m.iter().flatten() {
                assert!(!s.atomic().insert(x));
            }
        });
        eprintln!(
            "TSet, 2 threads x {} re-inserts of present elements: {aborts} aborts",
            2 * PER_THREAD
        );
        assert_eq!(aborts, 0);
        assert_eq!(set.atomic().len(), 2 * PER_THREAD);
    });
}
