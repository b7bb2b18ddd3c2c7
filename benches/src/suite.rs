//! The suite: every workload with the structures that apply to it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use dashmap::DashMap;

use crate::naive::{NaiveCounter, NaiveMap, NaiveQueue};
use crate::peer::{FastStm, KovanStm, PeerBank, PeerCounter, PeerMap, PeerQueue, StmCore};
use crate::report::CellResult;
use crate::runner::{Accounting, Subject, run_cell};
use crate::workloads::*;

/// The workloads, in the order the suite runs them, each with a one-line description.
pub const WORKLOADS: [(&str, &str); 10] = [
    ("counter", "every transaction increments one shared count"),
    (
        "log",
        "every transaction appends one record to one shared log (nothing consumes it)",
    ),
    (
        "map-disjoint",
        "each thread inserts, updates and removes its own keys in one shared map",
    ),
    (
        "map-uniform",
        "90% lookups, 10% inserts-or-updates over 100,000 keys, uniform",
    ),
    (
        "map-zipf",
        "90% lookups, 10% inserts-or-updates over 100,000 keys, Zipf(0.99)",
    ),
    (
        "queue",
        "half the threads push, half pop (one thread alternates)",
    ),
    (
        "event",
        "an event handler: count the request, update a user's session, log a record",
    ),
    (
        "pool-event",
        "the event handler run as tasks of commute's TaskPool (an event loop on all cores)",
    ),
    (
        "bank",
        "transfers between 2 of 100 random accounts: real conflicts (control)",
    ),
    (
        "long-read",
        "one thread sums 100,000 accounts (1 ms pause per 10,000) while the others transfer",
    ),
];

/// One workload on one structure: a row of the table for each thread count.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The workload's name (one of [`WORKLOADS`]).
    pub workload: &'static str,
    /// The structure's name.
    pub structure: &'static str,
    /// Names that select this entry with `--structure`: its own name, and for sets (`event`)
    /// the names of the structures it is made of.
    pub parts: &'static [&'static str],
    /// True for STM structures (they report commits and aborts).
    pub stm: bool,
    run: fn(&'static str, &'static str, usize, Duration) -> CellResult,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("workload", &self.workload)
            .field("structure", &self.structure)
            .field("parts", &self.parts)
            .field("stm", &self.stm)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// Runs one cell: this entry with `threads` workers for `duration`.
    ///
    /// # Panics
    ///
    /// If the structure fails its consistency check after the run (a lost update).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::suite::entries;
    /// use std::time::Duration;
    ///
    /// let entry = entries().into_iter().find(|e| e.structure == "AtomicU64").unwrap();
    /// let cell = entry.run(1, Duration::from_millis(5));
    /// assert!(cell.ops > 0);
    /// ```
    pub fn run(&self, threads: usize, duration: Duration) -> CellResult {
        (self.run)(self.workload, self.structure, threads, duration)
    }

    /// True if `name` is this entry's structure or one of its parts.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::suite::entries;
    ///
    /// let naive_event = entries()
    ///     .into_iter()
    ///     .find(|e| e.workload == "event" && e.structure == "naive")
    ///     .unwrap();
    /// assert!(naive_event.is_named("naive-map"));
    /// ```
    pub fn is_named(&self, name: &str) -> bool {
        self.structure == name || self.parts.contains(&name)
    }
}

fn entry<S: Subject>(
    workload: &'static str,
    structure: &'static str,
    parts: &'static [&'static str],
) -> Entry {
    Entry {
        workload,
        structure,
        parts,
        stm: S::ACCOUNTING != Accounting::Lock,
        run: run_cell::<S>,
    }
}

/// Every (workload, structure) pair of the suite, in run order.
///
/// Without the `collections` feature, commute's collections (`TCounter`, `TQueue`, `TMap` and
/// the `event` set built on them) are left out.
///
/// # Examples
///
/// ```
/// let all = commute_benches::suite::entries();
/// assert!(all.iter().any(|e| e.workload == "bank" && e.structure == "fast-stm"));
/// ```
pub fn entries() -> Vec<Entry> {
    let mut all = Vec::new();

    #[cfg(feature = "collections")]
    all.push(entry::<CounterWorkload<commute::TCounter>>(
        "counter",
        "TCounter",
        &[],
    ));
    all.extend([
        entry::<CounterWorkload<NaiveCounter>>("counter", "naive-counter", &[]),
        entry::<CounterWorkload<AtomicU64>>("counter", "AtomicU64", &[]),
        entry::<CounterWorkload<Mutex<u64>>>("counter", "Mutex<u64>", &[]),
        entry::<CounterWorkload<PeerCounter<FastStm>>>("counter", "fast-stm", &[]),
        entry::<CounterWorkload<PeerCounter<StmCore>>>("counter", "stm-core", &[]),
        entry::<CounterWorkload<PeerCounter<KovanStm>>>("counter", "kovan-stm", &[]),
    ]);

    for (workload, is_log) in [("log", true), ("queue", false)] {
        #[cfg(feature = "collections")]
        all.push(if is_log {
            entry::<LogWorkload<commute::TQueue<u64>>>(workload, "TQueue", &[])
        } else {
            entry::<QueueWorkload<commute::TQueue<u64>>>(workload, "TQueue", &[])
        });
        all.extend(if is_log {
            [
                entry::<LogWorkload<NaiveQueue>>(workload, "naive-queue", &[]),
                entry::<LogWorkload<Mutex<VecDeque<u64>>>>(workload, "Mutex<VecDeque>", &[]),
                entry::<LogWorkload<SegQueue<u64>>>(workload, "SegQueue", &[]),
                entry::<LogWorkload<PeerQueue<FastStm>>>(workload, "fast-stm", &[]),
                entry::<LogWorkload<PeerQueue<StmCore>>>(workload, "stm-core", &[]),
                entry::<LogWorkload<PeerQueue<KovanStm>>>(workload, "kovan-stm", &[]),
            ]
        } else {
            [
                entry::<QueueWorkload<NaiveQueue>>(workload, "naive-queue", &[]),
                entry::<QueueWorkload<Mutex<VecDeque<u64>>>>(workload, "Mutex<VecDeque>", &[]),
                entry::<QueueWorkload<SegQueue<u64>>>(workload, "SegQueue", &[]),
                entry::<QueueWorkload<PeerQueue<FastStm>>>(workload, "fast-stm", &[]),
                entry::<QueueWorkload<PeerQueue<StmCore>>>(workload, "stm-core", &[]),
                entry::<QueueWorkload<PeerQueue<KovanStm>>>(workload, "kovan-stm", &[]),
            ]
        });
        if is_log {
            // The map workloads run between log and queue.
            all.extend(map_entries());
        }
    }

    #[cfg(feature = "collections")]
    all.push(entry::<EventWorkload<CommuteEvent>>(
        "event",
        "commute",
        &["TCounter", "TMap", "TQueue"],
    ));
    all.extend([
        entry::<EventWorkload<NaiveEvent>>(
            "event",
            "naive",
            &["naive-counter", "naive-map", "naive-queue"],
        ),
        entry::<EventWorkload<MutexEvent>>(
            "event",
            "Mutex",
            &["Mutex<u64>", "Mutex<HashMap>", "Mutex<VecDeque>"],
        ),
        entry::<EventWorkload<LockFreeEvent>>(
            "event",
            "lock-free",
            &["AtomicU64", "DashMap", "SegQueue"],
        ),
        entry::<EventWorkload<PeerEvent<FastStm>>>("event", "fast-stm", &[]),
        entry::<EventWorkload<PeerEvent<StmCore>>>("event", "stm-core", &[]),
        entry::<EventWorkload<PeerEvent<KovanStm>>>("event", "kovan-stm", &[]),
    ]);
    #[cfg(feature = "collections")]
    all.extend([
        Entry {
            workload: "pool-event",
            structure: "commute",
            parts: &["TCounter", "TMap", "TQueue", "TaskPool"],
            stm: true,
            run: crate::pool_event::run_cell::<CommuteEvent>,
        },
        Entry {
            workload: "pool-event",
            structure: "naive",
            parts: &["naive-counter", "naive-map", "naive-queue"],
            stm: true,
            run: crate::pool_event::run_cell::<NaiveEvent>,
        },
    ]);
    all.extend([
        entry::<BankWorkload<TVarBank>>("bank", "TVar", &[]),
        entry::<BankWorkload<MutexBank>>("bank", "Mutex<u64>", &[]),
        entry::<BankWorkload<PeerBank<FastStm>>>("bank", "fast-stm", &[]),
        entry::<BankWorkload<PeerBank<StmCore>>>("bank", "stm-core", &[]),
        entry::<BankWorkload<PeerBank<KovanStm>>>("bank", "kovan-stm", &[]),
    ]);
    // TMap's transfers on 100 accounts, with as many writers as threads: `long-read` runs
    // them too, but on 100,000 accounts with `threads - 1` writers, so at 1 or 2 threads (a
    // 2-core machine's --quick run) no lost update could show in its money check.
    #[cfg(feature = "collections")]
    all.push(entry::<BankWorkload<commute::TMap<u64, u64>>>(
        "bank",
        "TMap",
        &[],
    ));
    #[cfg(feature = "collections")]
    all.push(long_read::<commute::TMap<u64, u64>>("TMap"));
    all.extend([
        long_read::<LockedMap>("Mutex<HashMap>"),
        long_read::<RwLock<HashMap<u64, u64, ahash::RandomState>>>("RwLock<HashMap>"),
        long_read::<ShardedMap>("DashMap"),
    ]);
    all
}

type LockedMap = Mutex<HashMap<u64, u64, ahash::RandomState>>;
type ShardedMap = DashMap<u64, u64, ahash::RandomState>;

/// `long-read` on `L`: its own driver ([`crate::long_read`]), two phases a cell.
fn long_read<L: Ledger>(structure: &'static str) -> Entry {
    Entry {
        workload: "long-read",
        structure,
        parts: &[],
        stm: L::ACCOUNTING != Accounting::Lock,
        run: crate::long_read::run_cell::<L>,
    }
}

fn map_entries() -> Vec<Entry> {
    fn for_map<M: Map>(structure: &'static str) -> [Entry; 3] {
        [
            entry::<MapDisjoint<M>>("map-disjoint", structure, &[]),
            entry::<MapRandom<M, false>>("map-uniform", structure, &[]),
            entry::<MapRandom<M, true>>("map-zipf", structure, &[]),
        ]
    }
    let mut per_structure = Vec::new();
    #[cfg(feature = "collections")]
    per_structure.push(for_map::<commute::TMap<u64, u64>>("TMap"));
    per_structure.extend([
        for_map::<NaiveMap>("naive-map"),
        for_map::<LockedMap>("Mutex<HashMap>"),
        for_map::<ShardedMap>("DashMap"),
        for_map::<PeerMap<FastStm>>("fast-stm"),
        for_map::<PeerMap<StmCore>>("stm-core"),
        for_map::<PeerMap<KovanStm>>("kovan-stm"),
    ]);
    // Workload-major order: all of map-disjoint, then map-uniform, then map-zipf.
    (0..3)
        .flat_map(|w| per_structure.iter().map(move |row| row[w]))
        .collect()
}

/// The entries that `workloads` and `structures` select (empty lists select everything), in
/// run order.
///
/// # Errors
///
/// A message listing the valid names if a name matches nothing.
///
/// # Examples
///
/// ```
/// use commute_benches::suite::select;
///
/// let picked = select(&["counter".into()], &["AtomicU64".into()]).unwrap();
/// assert_eq!(picked.len(), 1);
/// assert!(select(&["nope".into()], &[]).is_err());
/// ```
pub fn select(workloads: &[String], structures: &[String]) -> Result<Vec<Entry>, String> {
    let all = entries();
    for w in workloads {
        if !WORKLOADS.iter().any(|(name, _)| name == w) {
            let names: Vec<_> = WORKLOADS.iter().map(|(name, _)| *name).collect();
            return Err(format!(
                "unknown workload `{w}`; the workloads are: {}",
                names.join(", ")
            ));
        }
    }
    for s in structures {
        if !all.iter().any(|e| e.is_named(s)) {
            let mut names: Vec<&str> = all
                .iter()
                .flat_map(|e| std::iter::once(e.structure).chain(e.parts.iter().copied()))
                .collect();
            names.sort_unstable();
            names.dedup();
            return Err(format!(
                "unknown structure `{s}`; the structures are: {}",
                names.join(", ")
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|e| workloads.is_empty() || workloads.iter().any(|w| w == e.workload))
        .filter(|e| structures.is_empty() || structures.iter().any(|s| e.is_named(s)))
        .collect())
}
