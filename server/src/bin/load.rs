//! Load benchmark: starts the server in this process (commute state, then one-Mutex state, at
//! each worker-thread count), drives it with hyper clients over keep-alive connections, checks
//! `/stats` exactly, and prints requests/s, latency p50/p99 and commute's aborts per commit.
//!
//! ```text
//! cargo run --release -p commute-server --bin load -- \
//!     [--requests 100000] [--connections 32] [--users 100] [--workers 1,2] [--reps 3]
//! ```
//!
//! The client runs on a current-thread runtime on the main thread, so it shares the machine's
//! cores with the server's workers: the figures are for comparing the two states on the same
//! machine, not absolute.

use std::time::Duration;

use commute_server::client::{Connection, LoadReport, run_load};
use commute_server::state::Stats;
use commute_server::{Mode, start_in_process};

struct Options {
    requests: usize,
    connections: usize,
    users: usize,
    workers: Vec<usize>,
    reps: usize,
}

fn main() {
    let opts = parse();
    println!(
        "{} requests (GET /hit/{{user}}, {} users) over {} keep-alive connections; best of {} runs",
        opts.requests, opts.users, opts.connections, opts.reps
    );
    println!();
    println!("| state | workers | requests/s | p50 | p99 | aborts/commit |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for &workers in &opts.workers {
        // The two states alternate run by run, so that a busy spell of the machine (its cores
        // are shared) does not fall on one of them only.
        let mut best: [Option<(LoadReport, (f64, u64))>; 2] = [None, None];
        for _ in 0..opts.reps {
            for (slot, mode) in [Mode::Commute, Mode::Mutex].into_iter().enumerate() {
                let (report, aborts) = one_run(&opts, mode, workers);
                let better = best[slot]
                    .as_ref()
                    .is_none_or(|(b, _)| report.per_second() > b.per_second());
                if better {
                    best[slot] = Some((report, aborts));
                }
            }
        }
        for (slot, mode) in [Mode::Commute, Mode::Mutex].into_iter().enumerate() {
            let (report, aborts) = best[slot].take().expect("at least one run");
            let aborts = match mode {
                Mode::Commute => format!("{:.5} ({} commits)", aborts.0, aborts.1),
                Mode::Mutex => "-".to_owned(),
            };
            println!(
                "| {} | {workers} | {:.0} | {} | {} | {aborts} |",
                mode.name(),
                report.per_second(),
                micros(report.quantile(0.50)),
                micros(report.quantile(0.99)),
            );
        }
    }
}

fn one_run(opts: &Options, mode: Mode, workers: usize) -> (LoadReport, (f64, u64)) {
    let server = start_in_process(mode, workers).expect("the server starts");
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a client runtime");
    let before = commute::stats::snapshot();
    let (report, stats) = client.block_on(async {
        let report = run_load(server.addr, opts.connections, opts.requests, opts.users)
            .await
            .unwrap_or_else(|e| fail(&format!("the load run failed: {e}")));
        let mut conn = Connection::open(server.addr)
            .await
            .unwrap_or_else(|e| fail(&format!("no connection for /stats: {e}")));
        let body = conn
            .get("/stats")
            .await
            .unwrap_or_else(|e| fail(&format!("/stats failed: {e}")));
        (report, Stats::from_json(&body).expect("/stats is JSON"))
    });
    let delta = commute::stats::snapshot() - before;
    let hits = opts.requests as u64;
    let users = opts.users.min(opts.requests) as u64;
    if (
        stats.requests,
        stats.log_len,
        stats.hits_sum,
        stats.sessions,
    ) != (hits, hits, hits, users)
    {
        fail(&format!(
            "{} state: /stats is wrong: {stats:?}",
            mode.name()
        ));
    }
    (report, (delta.aborts_per_commit(), delta.commits))
}

fn micros(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}

fn fail(problem: &str) -> ! {
    eprintln!("load: {problem}");
    std::process::exit(1);
}

/// The flags `load` takes.
const FLAGS: &str = "--requests N --connections N --users N --workers 1,2 --reps N";

fn parse() -> Options {
    let mut opts = Options {
        requests: 100_000,
        connections: 32,
        users: 100,
        workers: vec![1, 2],
        reps: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: load {FLAGS}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        let number = |v: &str| -> usize {
            v.parse()
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or_else(|| fail(&format!("{flag}: {v} is not a positive number")))
        };
        match flag.as_str() {
            "--requests" => opts.requests = number(&value),
            "--connections" => opts.connections = number(&value),
            "--users" => opts.users = number(&value),
            "--reps" => opts.reps = number(&value),
            "--workers" => opts.workers = value.split(',').map(number).collect(),
            other => fail(&format!("unknown flag {other}; flags: {FLAGS}")),
        }
    }
    opts
}
