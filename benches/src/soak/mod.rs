//! The soak, fault and memory-safety suite behind the `soak` binary.
//!
//! A run starts every workload at once on shared structures ([`shared::Shared`]): mixed
//! workers (bank transfers and audits, an unbounded and a bounded queue, a map and a set,
//! counters, heap values in `TBox`es, short writes to the variables of the long transactions),
//! a thread of long transactions over thousands of `TVar`s, and a blocking producer/consumer
//! pair. A configurable fraction of transactions panics at an injected point
//! ([`fault`]); every panic is caught around `atomically`. Invariants are checked
//! continuously (inside attempts, which must all see consistent states, and by the reporter
//! thread) and at the end, against models rebuilt from per-thread logs of committed
//! transactions. The reporter also runs a watchdog (every thread must keep making progress),
//! prints throughput and resident memory per interval, and checks that memory stays flat
//! after warm-up ([`memory`]). Before the soak, [`flood`] checks that keys chosen to collide
//! under a known hasher do not slow a default `TMap` down.
//!
//! Everything ends in one line, `soak: N transactions, M aborts, K invariant checks,
//! V violations`.

pub mod args;
pub mod fault;
pub mod flood;
mod long;
pub mod memory;
pub mod monitor;
mod pipeline;
mod reporter;
pub mod shared;
pub mod verify;
mod worker;

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use commute::{atomically, stats};

pub use long::LongReport;
pub use worker::WorkerLog;

use args::{Mode, SoakOptions};
use fault::FaultPoint;
use memory::live_heap_bytes;
use monitor::Monitor;
use shared::Shared;

/// Low hash bits shared by the flooding check's keys (about a million hashes per key).
pub const FLOOD_BITS: u32 = 20;

/// The most colliding keys may cost per operation in a default `TMap`, relative to as many
/// random keys (the flooding check's bound; measured: about 1).
pub const FLOOD_MAX_RATIO: f64 = 3.0;

/// What a soak run found.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    /// Committed transactions (all threads, from the core's statistics).
    pub transactions: u64,
    /// Conflict aborts (retries not included).
    pub aborts: u64,
    /// Explicit retries (blocking).
    pub retries: u64,
    /// Invariant checks made.
    pub checks: u64,
    /// Violations found.
    pub violations: u64,
    /// Injected panics caught, by [`FaultPoint::index`].
    pub faults: [u64; FaultPoint::ALL.len()],
    /// The long-transaction thread's figures (when it ran).
    pub long: Option<LongReport>,
    /// Resident memory at the end of warm-up, the most after it, and at the end (bytes).
    pub rss: Option<(u64, u64, u64)>,
    /// Live heap bytes left after the structures were dropped, over the level before they were
    /// built (when the binary runs on the counting allocator).
    pub heap_left: Option<i64>,
    /// Committed transactions per second, per reporting interval.
    pub throughput: Vec<f64>,
    /// The hash-flooding figures (when the check ran).
    pub flood: Option<flood::FloodReport>,
    /// The first violation messages.
    pub messages: Vec<String>,
}

impl SoakReport {
    /// The final line: `soak: N transactions, M aborts, K invariant checks, V violations`.
    ///
    /// # Examples
    ///
    /// ```
    /// let report = commute_benches::soak::SoakReport::default();
    /// assert_eq!(
    ///     report.summary(),
    ///     "soak: 0 transactions, 0 aborts, 0 invariant checks, 0 violations"
    /// );
    /// ```
    pub fn summary(&self) -> String {
        format!(
            "soak: {} transactions, {} aborts, {} invariant checks, {} violations",
            self.transactions, self.aborts, self.checks, self.violations
        )
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string payload)".to_string()
    }
}

/// Monitor slots: the workers first, then these.
struct Layout {
    workers: usize,
}

impl Layout {
    fn long(&self) -> usize {
        self.workers
    }
    fn producer(&self) -> usize {
        self.workers + 1
    }
    fn consumer(&self) -> usize {
        self.workers + 2
    }
    /// The main thread's slot (reporter and final checks; not watched).
    fn main(&self) -> usize {
        self.workers + 3
    }
    fn slots(&self) -> usize {
        self.workers + 4
    }
    fn name(&self, slot: usize) -> String {
        if slot < self.workers {
            format!("worker {slot}")
        } else if slot == self.long() {
            "long-transaction thread".to_string()
        } else if slot == self.producer() {
            "pipeline producer".to_string()
        } else if slot == self.consumer() {
            "pipeline consumer".to_string()
        } else {
            "main thread".to_string()
        }
    }
}

/// What the threads hand back when they finish: what the final checks
/// ([`verify::final_checks`]) compare the structures with.
#[derive(Debug, Default)]
pub struct Finished {
    /// The workers' logs, by worker.
    pub logs: Vec<WorkerLog>,
    /// The long-transaction thread's report, if it ran.
    pub long: Option<LongReport>,
    /// Items the pipe's producer pushed.
    pub pipe_pushed: u64,
    /// Items the pipe's consumer popped.
    pub pipe_popped: u64,
}

/// Runs a soak as `opts` asks, printing progress lines and the summary; returns the figures.
///
/// # Examples
///
/// ```no_run
/// use commute_benches::soak::{args::SoakOptions, run};
///
/// let mut opts = SoakOptions::defaults(2);
/// opts.seconds = 1;
/// opts.long_vars = 200;
/// opts.flood_keys = 0;
/// opts.fault_rate = 0.1;
/// let report = run(&opts);
/// assert_eq!(report.violations, 0, "{:?}", report.messages);
/// assert!(report.transactions > 0 && report.checks > 0);
/// ```
pub fn run(opts: &SoakOptions) -> SoakReport {
    fault::install_quiet_hook();
    let layout = Layout {
        workers: opts.threads,
    };
    let long_on = opts.mode == Mode::Mixed && opts.long_vars >= 2;
    let monitor = Monitor::new(layout.slots());
    let main = layout.main();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "soak: {} s, mode {:?}, {} workers{} + a blocking producer/consumer pair, seed {}, \
         fault rate {}, on {cores} cores",
        opts.seconds,
        opts.mode,
        opts.threads,
        if long_on {
            format!(" + long transactions over {} TVars", opts.long_vars)
        } else {
            String::new()
        },
        opts.seed,
        opts.fault_rate,
    );

    let mut report = SoakReport::default();
    if opts.flood_keys > 0 {
        let flood = flood::measure(opts.flood_keys, FLOOD_BITS, opts.seed, 5);
        print_flood(&flood);
        monitor.check_shared(flood.default_ratio() <= FLOOD_MAX_RATIO, || {
            format!(
                "hash flooding: colliding keys cost {:.2}x random keys with the default hasher \
                 (at most {FLOOD_MAX_RATIO}x allowed)",
                flood.default_ratio()
            )
        });
        report.flood = Some(flood);
    }

    // Everything the soak allocates from here on must be freed again by the end.
    let heap_before = live_heap_bytes();
    let shared = Shared::new(opts.threads, if long_on { opts.long_vars } else { 0 });
    let stop = AtomicBool::new(false);
    let before = stats::snapshot();
    let started = Instant::now();
    let mut samples = Vec::new();
    let finished = std::thread::scope(|s| {
        let (shared, monitor, stop) = (&shared, &monitor, &stop);
        let workers: Vec<_> = (0..opts.threads)
            .map(|i| {
                s.spawn(move || {
                    let worker = worker::Worker::new(
                        i,
                        opts.threads,
                        shared,
                        monitor,
                        opts.seed,
                        opts.fault_rate,
                        opts.mode,
                    );
                    worker.run(stop)
                })
            })
            .collect();
        let long = long_on.then(|| {
            let slot = layout.long();
            s.spawn(move || long::run_long(shared, monitor, slot, opts.seed, opts.fault_rate, stop))
        });
        let (producer_slot, consumer_slot) = (layout.producer(), layout.consumer());
        let producer = s.spawn(move || {
            pipeline::run_producer(
                shared,
                monitor,
                producer_slot,
                u32::MAX,
                opts.seed,
                opts.fault_rate,
                stop,
            )
        });
        let consumer = s.spawn(move || {
            pipeline::run_consumer(
                shared,
                monitor,
                consumer_slot,
                opts.seed,
                opts.fault_rate,
                stop,
            )
        });

        let mut watched: Vec<usize> = (0..opts.threads).collect();
        if long_on {
            watched.push(layout.long());
        }
        watched.extend([layout.producer(), layout.consumer()]);
        samples = reporter::report_loop(opts, &layout, &watched, shared, monitor, started, &before);

        stop.store(true, Ordering::Relaxed);
        atomically(|tx| {
            shared.stop.write(tx, true);
            Ok(())
        });
        let join = |slot: usize, handle| join_or_report(monitor, &layout.name(slot), handle);
        Finished {
            logs: workers
                .into_iter()
                .enumerate()
                .map(|(i, w)| join_or_report(monitor, &layout.name(i), w))
                .collect(),
            long: long.map(|l| join_or_report(monitor, &layout.name(layout.long()), l)),
            pipe_pushed: join(layout.producer(), producer),
            pipe_popped: join(layout.consumer(), consumer),
        }
    });
    let soak_seconds = started.elapsed().as_secs_f64();
    let delta = stats::snapshot() - before;

    verify::final_checks(&shared, &monitor, main, &finished);
    report.long = finished.long;
    if let Some(long) = &finished.long {
        println!(
            "soak: starvation: {} long transactions over {} TVars committed ({} irrevocable), \
             max {} attempts (bound {}), {:.1} attempts on average",
            long.committed,
            opts.long_vars,
            long.irrevocable,
            long.max_attempts,
            commute::IRREVOCABLE_AFTER + 1,
            long.attempts as f64 / long.committed.max(1) as f64,
        );
    }
    report.rss = reporter::memory_check(opts, &monitor, &samples);
    drop(shared);
    drop(finished);
    commute::reclaim_retired();
    report.heap_left = memory::heap_check(&monitor, heap_before);
    report.throughput = samples.iter().map(|s| s.throughput).collect();
    reporter::print_throughput(&report.throughput);

    report.faults = monitor.faults();
    let faults: u64 = report.faults.iter().sum();
    let by_point: Vec<String> = FaultPoint::ALL
        .iter()
        .map(|p| format!("{} {}", p.name(), report.faults[p.index()]))
        .collect();
    println!(
        "soak: faults injected and caught: {faults} ({})",
        by_point.join(", ")
    );
    report.transactions = delta.commits;
    report.aborts = delta.aborts();
    report.retries = delta.retries;
    println!(
        "soak: {:.1} s, {:.0} transactions/s, {:.3} aborts per commit, {} irrevocable commits, \
         {} retries",
        soak_seconds,
        delta.commits as f64 / soak_seconds,
        delta.aborts_per_commit(),
        delta.irrevocable_commits,
        delta.retries,
    );
    report.checks = monitor.checks();
    report.violations = monitor.violations();
    report.messages = monitor.messages();
    println!("{}", report.summary());
    report
}

/// Joins a soak thread; a thread that died (a panic outside the caught operations) is a
/// violation, and its results are taken as empty.
fn join_or_report<T: Default>(
    monitor: &Monitor,
    name: &str,
    handle: std::thread::ScopedJoinHandle<'_, T>,
) -> T {
    handle.join().unwrap_or_else(|payload| {
        monitor.violation(format!("the {name} died: {}", panic_message(&*payload)));
        T::default()
    })
}

fn print_flood(f: &flood::FloodReport) {
    println!(
        "soak: hash flooding: {} keys sharing their low {} hash bits under a known hasher \
         (found in {:.1} s): they fall under {} root slot(s) of a TMap using that hasher, {} with \
         the default hasher",
        f.keys, f.bits, f.search_seconds, f.known_roots, f.default_roots
    );
    println!(
        "soak: hash flooding: default hasher {:.0} ns/op colliding vs {:.0} ns/op random \
         ({:.2}x); known hasher {:.0} vs {:.0} ns/op ({:.2}x, a deeper trie)",
        f.default_colliding_ns,
        f.default_random_ns,
        f.default_ratio(),
        f.known_colliding_ns,
        f.known_random_ns,
        f.known_ratio()
    );
}
