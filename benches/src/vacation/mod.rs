//! `vacation`: a port of STAMP's vacation benchmark (Cao Minh et al., IISWC 2008), a travel
//! agency's database run by client threads, on three implementations of its manager:
//!
//! - **`sequential`**: std `HashMap`s of plain structs, one thread, no synchronisation at all:
//!   the baseline every ratio is taken against;
//! - **`global-lock`**: the same structures under one `std::sync::Mutex`, locked around each
//!   action;
//! - **`commute`**: each table a `commute::TMap`, each action one `atomically`.
//!
//! The port follows STAMP's `vacation.c`, `client.c`, `manager.c`, `reservation.c` and
//! `customer.c`: the same tables, the same actions drawn the same way (`-n -q -u -r -t -c` mean
//! what they mean there), the same population, and the manager operations with the same
//! results. What differs: a seeded xorshift generator instead of STAMP's Mersenne Twister (so
//! the streams are not STAMP's, only drawn alike), hash maps instead of STAMP's red-black
//! trees, and STAMP's in-transaction `TM_RESTART` checks turned into assertions (every commute
//! attempt sees a consistent state). See `docs/benchmarks.md`, "vacation".
//!
//! ```text
//! cargo run --release -p commute-benches --bin vacation -- --preset low
//! ```

pub mod args;
pub mod check;
pub mod client;
pub mod manager;
pub mod report;
pub mod tm;

use std::sync::{Barrier, Mutex};
use std::time::Instant;

use commute::atomically;

use check::{CheckReport, check};
use client::{Client, Params, perform, population};
use manager::{Kind, Reservation, SeqTables};
use tm::{TxManager, TxTables};

/// The three implementations of the manager.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::Implementation;
///
/// assert_eq!(Implementation::parse("global-lock"), Some(Implementation::GlobalLock));
/// assert_eq!(Implementation::Commute.name(), "commute");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// Plain tables, one thread, no synchronisation.
    Sequential,
    /// Plain tables under one `Mutex`, held for each action.
    GlobalLock,
    /// `TMap`s, each action one transaction.
    Commute,
}

impl Implementation {
    /// All three, in the order they run and print.
    pub const ALL: [Implementation; 3] = [
        Implementation::Sequential,
        Implementation::GlobalLock,
        Implementation::Commute,
    ];

    /// The name used by `--impl` and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Sequential => "sequential",
            Implementation::GlobalLock => "global-lock",
            Implementation::Commute => "commute",
        }
    }

    /// The implementation called `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Implementation::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Threads it runs the clients on: `sequential` runs every client's actions, one client
    /// after another, on one thread; the others run one thread per client, as STAMP does.
    pub fn threads(self, clients: usize) -> usize {
        match self {
            Implementation::Sequential => 1,
            _ => clients,
        }
    }
}

/// One run of one implementation: its time, counts and the checks of its final state.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Which implementation.
    pub implementation: Implementation,
    /// Threads the clients ran on.
    pub threads: usize,
    /// Seconds from the start of the clients to the end of the last one (population and checks
    /// are not timed, as in STAMP).
    pub seconds: f64,
    /// Actions run (one transaction, or one locked section, each).
    pub transactions: u64,
    /// Committed transactions (`commute` only, from `commute::stats`).
    pub commits: Option<u64>,
    /// Attempts rolled back by conflicts (`commute` only).
    pub aborts: Option<u64>,
    /// The checks of the final state.
    pub check: CheckReport,
}

impl RunResult {
    /// Aborts per commit, for `commute`.
    pub fn aborts_per_commit(&self) -> Option<f64> {
        match (self.commits, self.aborts) {
            (Some(c), Some(a)) if c > 0 => Some(a as f64 / c as f64),
            _ => None,
        }
    }
}

/// Populates the tables of `implementation` from `seed`, runs the clients and checks the
/// result.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::client::Params;
/// use commute_benches::vacation::{Implementation, run_once};
///
/// let p = Params { number: 2, queries: 90, user: 98, relations: 200, transactions: 500, clients: 1 };
/// let seq = run_once(Implementation::Sequential, &p, 1);
/// let stm = run_once(Implementation::Commute, &p, 1);
/// assert!(seq.check.ok() && stm.check.ok());
/// assert!(seq.check.same_state(&stm.check));
/// assert_eq!(stm.commits, Some(500));
/// ```
pub fn run_once(implementation: Implementation, params: &Params, seed: u64) -> RunResult {
    let start = population(params.relations, seed);
    let clients: Vec<Client> = (0..params.clients)
        .map(|i| Client::new(params, seed, i))
        .collect();
    let threads = implementation.threads(params.clients);
    let per_client = params.actions_per_client();
    let relations = params.relations as usize;
    let (seconds, stats, held, mut report) = match implementation {
        Implementation::Sequential => {
            let mut tables = seq_tables(&start, relations, seed);
            let mut clients = clients;
            let job = || {
                let mut held = 0;
                for client in &mut clients {
                    for _ in 0..per_client {
                        let action = client.next_action();
                        let Ok(n) = perform(&mut tables, &action);
                        held += n;
                    }
                }
                held
            };
            let (seconds, held) = run_threads(vec![job]);
            (seconds, None, held, check(&tables, params.relations))
        }
        Implementation::GlobalLock => {
            let tables = Mutex::new(seq_tables(&start, relations, seed));
            let jobs = clients.into_iter().map(|mut client| {
                let tables = &tables;
                move || {
                    let mut held = 0;
                    for _ in 0..per_client {
                        let action = client.next_action();
                        let mut guard = tables.lock().expect("no client panics");
                        let Ok(n) = perform(&mut *guard, &action);
                        held += n;
                    }
                    held
                }
            });
            let (seconds, held) = run_threads(jobs.collect());
            let tables = tables.into_inner().expect("no client panicked");
            (seconds, None, held, check(&tables, params.relations))
        }
        Implementation::Commute => {
            let tables = tx_tables(&start, relations, seed);
            let jobs = clients.into_iter().map(|mut client| {
                let tables = &tables;
                move || {
                    let before = commute::stats::thread();
                    let mut held = 0;
                    for _ in 0..per_client {
                        let action = client.next_action();
                        // The committed attempt's count: a rolled-back one made no change.
                        held += atomically(|tx| perform(&mut TxManager::new(tables, tx), &action));
                    }
                    let delta = commute::stats::thread() - before;
                    (held, (delta.commits, delta.aborts()))
                }
            });
            let (seconds, results) = run_threads(jobs.collect());
            let (held, deltas): (Vec<i64>, Vec<(u64, u64)>) = results.into_iter().unzip();
            let stats = deltas
                .into_iter()
                .fold((0, 0), |(c, a), (dc, da)| (c + dc, a + da));
            (seconds, Some(stats), held, check(&tables, params.relations))
        }
    };
    // The populated tables hold no reservation: what the customers hold at the end is what
    // the actions made, less what they cancelled.
    report.account(held.iter().sum());
    RunResult {
        implementation,
        threads,
        seconds,
        transactions: params.actions(),
        commits: stats.map(|s| s.0),
        aborts: stats.map(|s| s.1),
        check: report,
    }
}

/// Runs each job on a thread of its own, all released at once; returns the seconds from the
/// release to the end of the last job, and the jobs' results.
pub(crate) fn run_threads<R: Send, F: FnOnce() -> R + Send>(jobs: Vec<F>) -> (f64, Vec<R>) {
    let start = Barrier::new(jobs.len() + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    job()
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let results: Vec<R> = handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect();
        (began.elapsed().as_secs_f64(), results)
    })
}

/// The plain tables, populated.
fn seq_tables(start: &client::Population, relations: usize, seed: u64) -> SeqTables {
    let mut tables = SeqTables::with_capacity(relations, seed);
    for kind in Kind::ALL {
        let table = &mut tables.rows[kind as usize];
        for &(id, units, price) in &start.rows[kind as usize] {
            table.insert(id, Reservation::new(units, price));
        }
    }
    for &id in &start.customers {
        tables.customers.insert(id, Vec::new());
    }
    tables
}

/// commute's tables, populated.
fn tx_tables(start: &client::Population, relations: usize, seed: u64) -> TxTables {
    let tables = TxTables::with_capacity(relations, seed);
    for kind in Kind::ALL {
        let rows: Vec<(u64, Reservation)> = start.rows[kind as usize]
            .iter()
            .map(|&(id, units, price)| (id, Reservation::new(units, price)))
            .collect();
        tables.load_rows(kind, &rows);
    }
    tables.load_customers(&start.customers);
    tables
}

/// The fastest of `runs`. On a shared machine, other processes only ever add time to a run
/// (they take the cores, the caches, the memory bandwidth), so the fastest run is the one that
/// was disturbed least.
///
/// # Panics
///
/// If `runs` is empty.
pub fn best(runs: &[RunResult]) -> &RunResult {
    runs.iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .expect("at least one run")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(clients: usize, number: u64, queries: u64, user: u64) -> Params {
        Params {
            number,
            queries,
            user,
            relations: 300,
            transactions: 3000,
            clients,
        }
    }

    #[test]
    fn one_client_ends_in_the_same_state_everywhere() {
        for p in [
            params(1, 2, 90, 98),
            params(1, 4, 60, 90),
            params(1, 8, 10, 50),
        ] {
            let runs: Vec<RunResult> = Implementation::ALL
                .iter()
                .map(|&i| run_once(i, &p, 5))
                .collect();
            for run in &runs {
                assert!(run.check.ok(), "{p:?} {run:?}");
                assert!(run.check.same_state(&runs[0].check), "{p:?}: {runs:?}");
            }
            assert!(runs[0].check.reservations > 0, "{runs:?}");
        }
    }

    #[test]
    fn several_clients_keep_the_invariants() {
        let p = params(3, 4, 5, 50);
        for i in Implementation::ALL {
            let run = run_once(i, &p, 9);
            assert!(run.check.ok(), "{run:?}");
            assert_eq!(run.threads, i.threads(3));
            assert_eq!(run.transactions, 3000);
        }
    }

    #[test]
    fn the_seed_changes_the_final_state() {
        let p = params(1, 2, 90, 98);
        let a = run_once(Implementation::Sequential, &p, 1);
        let b = run_once(Implementation::Sequential, &p, 2);
        assert!(!a.check.same_state(&b.check));
    }

    /// The order of a hash table's entries is its buckets' order: equal orders in tables built
    /// apart (as in two processes) mean the same layout, and so the same instruction counts.
    #[test]
    fn the_seed_fixes_every_tables_layout() {
        let start = client::population(300, 4);
        let orders = |seed| {
            let plain = seq_tables(&start, 300, seed);
            let tx = tx_tables(&start, 300, seed);
            let plain_rows: Vec<Vec<u64>> = plain
                .rows
                .iter()
                .map(|t| t.keys().copied().collect())
                .collect();
            let tx_rows: Vec<Vec<u64>> = tx.rows.iter().map(|t| t.atomic().keys()).collect();
            let customers = (
                plain.customers.keys().copied().collect::<Vec<_>>(),
                tx.customers.atomic().keys(),
            );
            (plain_rows, tx_rows, customers)
        };
        let first = orders(4);
        assert_eq!(first, orders(4));
        assert_ne!(first, orders(5));
    }
}
