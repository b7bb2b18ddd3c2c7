//! `handoff`: items per second through blocking bounded queues, commute's `TBoundedQueue`
//! against `crossbeam-channel`'s `bounded`, for one producer and one consumer (capacity 1) and
//! for a two-stage pipeline (producer -> queue -> middle stage -> queue -> consumer, both
//! queues of capacity `--pipeline-capacity`, 1 by default). Threads block on every item or
//! nearly, so this measures the blocking path (`retry`'s wait and the committer's wake-up)
//! rather than the transactions.
//!
//! `handoff [--items N] [--runs R] [--pipeline-capacity C] [--only commute]`: R runs of each
//! case (taken in turn, so that outside noise spoils one run of each rather than all runs of
//! one), then the best and median items/s and commute's ratio to crossbeam. Every consumer
//! checks that each item arrived once. docs/benchmarks.md, "Hand-off", has the figures.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use commute::TBoundedQueue;

const USAGE: &str = "usage: handoff [--items N] [--runs R] [--pipeline-capacity C] [--only commute]
  --only commute         run the commute cases only (for a profiler)
  --items N              items moved per run (default 200000)
  --runs R               runs of each case (default 5)
  --pipeline-capacity C  capacity of each of the pipeline's two queues (default 1)
";

/// One way to move `items` items from a producer to a consumer through queues of capacity
/// `capacity`; returns items per second.
type Case = fn(u64, usize) -> f64;

fn main() -> ExitCode {
    let mut items: u64 = 200_000;
    let mut runs: usize = 5;
    let mut pipeline_capacity: usize = 1;
    let mut only_commute = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| {
            args.next()
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
        };
        match arg.as_str() {
            "--items" => match value(&mut args) {
                Some(n) if n > 0 => items = n,
                _ => return usage_error("--items takes a positive number"),
            },
            "--runs" => match value(&mut args) {
                Some(n) if n > 0 => runs = n as usize,
                _ => return usage_error("--runs takes a positive number"),
            },
            "--pipeline-capacity" => match value(&mut args) {
                Some(n) if n > 0 => pipeline_capacity = n as usize,
                _ => return usage_error("--pipeline-capacity takes a positive number"),
            },
            "--only" => match args.next().as_deref() {
                Some("commute") => only_commute = true,
                _ => return usage_error("--only takes `commute`"),
            },
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage_error(&format!("unknown argument {other}")),
        }
    }
    let cases: [(String, Case, usize); 4] = [
        ("crossbeam bounded(1)".into(), crossbeam_pair, 1),
        ("commute TBoundedQueue(1)".into(), commute_pair, 1),
        (
            format!("crossbeam pipeline, 2 x bounded({pipeline_capacity})"),
            crossbeam_pipeline,
            pipeline_capacity,
        ),
        (
            format!("commute pipeline, 2 x TBoundedQueue({pipeline_capacity})"),
            commute_pipeline,
            pipeline_capacity,
        ),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for run in 0..runs {
        eprint!("[run {}/{runs}]", run + 1);
        for (i, (name, case, capacity)) in cases.iter().enumerate() {
            if only_commute && !name.starts_with("commute") {
                continue;
            }
            let rate = case(items, *capacity);
            eprint!(" {:.0}", rate);
            rates[i].push(rate);
        }
        eprintln!();
    }
    println!("{items} items per run, {runs} runs; items/s");
    println!("{:<46} {:>12} {:>12}", "case", "best", "median");
    let mut summary = Vec::new();
    for ((name, _, _), rates) in cases.iter().zip(&mut rates) {
        if rates.is_empty() {
            println!("{name:<46} {:>12} {:>12}", "-", "-");
            summary.push((f64::NAN, f64::NAN));
            continue;
        }
        rates.sort_by(f64::total_cmp);
        let best = rates[rates.len() - 1];
        let median = rates[(rates.len() - 1) / 2];
        println!("{name:<46} {best:>12.0} {median:>12.0}");
        summary.push((best, median));
    }
    if !only_commute {
        println!(
            "commute / crossbeam, pair:     best {:.2}, median {:.2}",
            summary[1].0 / summary[0].0,
            summary[1].1 / summary[0].1
        );
        println!(
            "commute / crossbeam, pipeline: best {:.2}, median {:.2}",
            summary[3].0 / summary[2].0,
            summary[3].1 / summary[2].1
        );
    }
    ExitCode::SUCCESS
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("handoff: {message}\n{USAGE}");
    ExitCode::from(2)
}

/// Runs `producer` and `consumer` on two threads; items per second, from the start to the
/// consumer's last item. The consumer checks that it got every item, in order.
fn timed(items: u64, producer: impl FnOnce() + Send, consumer: impl FnOnce() -> u64 + Send) -> f64 {
    let start = Instant::now();
    let sum = std::thread::scope(|s| {
        s.spawn(producer);
        consumer()
    });
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(sum, items * (items - 1) / 2, "an item was lost or repeated");
    items as f64 / seconds
}

fn crossbeam_pair(items: u64, capacity: usize) -> f64 {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(capacity);
    timed(
        items,
        move || (0..items).for_each(|i| tx.send(i).unwrap()),
        move || (0..items).map(|_| rx.recv().unwrap()).sum(),
    )
}

fn commute_pair(items: u64, capacity: usize) -> f64 {
    let q = Arc::new(TBoundedQueue::<u64>::with_capacity(capacity));
    let p = q.clone();
    timed(
        items,
        move || (0..items).for_each(|i| p.atomic().push(i)),
        move || (0..items).map(|_| q.atomic().pop_wait()).sum(),
    )
}

fn crossbeam_pipeline(items: u64, capacity: usize) -> f64 {
    let (tx1, rx1) = crossbeam_channel::bounded::<u64>(capacity);
    let (tx2, rx2) = crossbeam_channel::bounded::<u64>(capacity);
    std::thread::scope(|s| {
        s.spawn(move || (0..items).for_each(|_| tx2.send(rx1.recv().unwrap()).unwrap()));
        timed(
            items,
            move || (0..items).for_each(|i| tx1.send(i).unwrap()),
            move || (0..items).map(|_| rx2.recv().unwrap()).sum(),
        )
    })
}

fn commute_pipeline(items: u64, capacity: usize) -> f64 {
    let first = Arc::new(TBoundedQueue::<u64>::with_capacity(capacity));
    let second = Arc::new(TBoundedQueue::<u64>::with_capacity(capacity));
    let (p, m1, m2, c) = (first.clone(), first, second.clone(), second);
    std::thread::scope(|s| {
        s.spawn(move || (0..items).for_each(|_| m2.atomic().push(m1.atomic().pop_wait())));
        timed(
            items,
            move || (0..items).for_each(|i| p.atomic().push(i)),
            move || (0..items).map(|_| c.atomic().pop_wait()).sum(),
        )
    })
}
