//! Finding conflicts: run an event handler on a pool of threads with a plain `TVar` counter and
//! a naive log, let the conflict profiler name the hot spots, then swap in `TCounter` and
//! `TQueue` and compare.
//!
//! ```text
//! cargo run --release -p commute --example find_conflicts
//! ```

use commute::conflicts;
use commute::{StmResult, TCounter, TMap, TQueue, TVar, Transaction, atomically};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const USERS: u64 = 10_000;

/// Where the handler keeps its global state: the part that changes between the two runs.
trait Globals: Send + Sync + 'static {
    fn count_request(&self, tx: &Transaction) -> StmResult<()>;
    fn log(&self, tx: &Transaction, line: String) -> StmResult<()>;
}

/// The first version: what one writes without thinking about conflicts.
struct Naive {
    requests: TVar<u64>,
    log_len: TVar<u64>,
    log: TMap<u64, String>,
}

impl Globals for Naive {
    fn count_request(&self, tx: &Transaction) -> StmResult<()> {
        self.requests.modify(tx, |n| n + 1).map(drop)
    }
    fn log(&self, tx: &Transaction, line: String) -> StmResult<()> {
        // Every append reads and rewrites the length: every pair of events conflicts here.
        let at = self.log_len.modify(tx, |n| n + 1)?;
        self.log.insert(tx, at, line).map(drop)
    }
}

/// The fix: commute's conflict-free collections.
struct Commuting {
    requests: TCounter,
    log: TQueue<String>,
}

impl Globals for Commuting {
    fn count_request(&self, tx: &Transaction) -> StmResult<()> {
        self.requests.incr(tx);
        Ok(())
    }
    fn log(&self, tx: &Transaction, line: String) -> StmResult<()> {
        self.log.push(tx, line);
        Ok(())
    }
}

/// One event handler, run as a transaction per event.
fn handle<G: Globals>(g: &G, sessions: &TMap<u64, u64>, user: u64) {
    atomically(|tx| {
        g.count_request(tx)?;
        sessions.upsert(tx, user, || 0, |visits| *visits += 1)?;
        g.log(tx, format!("user {user} visited"))?;
        Ok(())
    });
}

/// Runs `events` events on `threads` worker threads; returns the elapsed time.
fn serve<G: Globals>(g: Arc<G>, threads: usize, events: u64) -> Duration {
    let sessions = Arc::new(TMap::new().with_label("sessions"));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads as u64)
        .map(|w| {
            let (g, sessions, barrier) = (g.clone(), sessions.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut seed = w * 0x9E37_79B9 + 1;
                // `events` in all: the first `events % threads` workers take one more.
                let own = events / threads as u64 + u64::from(w < events % threads as u64);
                for _ in 0..own {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    handle(&*g, &sessions, seed % USERS);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for w in workers {
        w.join().unwrap();
    }
    start.elapsed()
}

fn main() {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let events = 200_000;
    conflicts::enable();

    println!(
        "== naive globals: TVar counter, log length rewritten by every append ({threads} threads)"
    );
    conflicts::reset();
    let naive = Arc::new(Naive {
        requests: TVar::new(0).with_label("requests"),
        log_len: TVar::new(0).with_label("log"),
        log: TMap::new(),
    });
    let slow = serve(naive.clone(), threads, events);
    let report = conflicts::report();
    println!("{report}");
    let top: Vec<_> = report
        .entries()
        .iter()
        .take(2)
        .filter_map(|(k, _)| k.var_label)
        .collect();
    println!("top two: {top:?}\n");

    println!("== commute's collections: TCounter and TQueue");
    conflicts::reset();
    let fixed = Arc::new(Commuting {
        requests: TCounter::new().with_label("requests"),
        log: TQueue::new().with_label("log"),
    });
    let fast = serve(fixed.clone(), threads, events);
    println!("{}", conflicts::report());

    assert_eq!(naive.requests.load(), events, "every event counted once");
    assert_eq!(
        fixed.requests.load(),
        events as i64,
        "every event counted once"
    );
    println!(
        "naive: {:.0} events/s, commute: {:.0} events/s, speed-up {:.2}x",
        events as f64 / slow.as_secs_f64(),
        events as f64 / fast.as_secs_f64(),
        slow.as_secs_f64() / fast.as_secs_f64()
    );
}
