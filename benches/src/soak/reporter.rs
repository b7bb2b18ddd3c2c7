//! The main thread during a soak: the watchdog, a progress line per interval with the live
//! checks, and, afterwards, the resident-memory check and the throughput summary.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use commute::stats;

use super::Layout;
use super::args::SoakOptions;
use super::memory::{allowed_growth, live_heap_bytes, mib, resident_bytes};
use super::monitor::Monitor;
use super::shared::Shared;
use super::worker;

/// One reporting interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Seconds since the start, at the end of the interval.
    pub(crate) at: f64,
    /// Committed transactions per second over the interval.
    pub(crate) throughput: f64,
    /// Resident memory at the end of the interval.
    rss: Option<u64>,
    /// Live heap bytes at the end of the interval.
    heap: Option<u64>,
}

/// The main thread during the soak: watchdog every tick, a progress line and the live checks
/// every interval.
pub(crate) fn report_loop(
    opts: &SoakOptions,
    layout: &Layout,
    watched: &[usize],
    shared: &Shared,
    monitor: &Monitor,
    started: Instant,
    before: &stats::StatsSnapshot,
) -> Vec<Sample> {
    const TICK: Duration = Duration::from_millis(100);
    let end = started + Duration::from_secs(opts.seconds);
    let main = layout.main();
    let mut samples = Vec::new();
    // Per watched slot: progress seen, when it last changed, stall already reported.
    let mut last: Vec<(u64, Instant, bool)> = watched.iter().map(|_| (0, started, false)).collect();
    let mut next_line = started + opts.interval;
    let (mut prev_at, mut prev_commits) = (started, before.commits);
    let mut prev_faults = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep(
            TICK.min(end - now)
                .min(next_line.saturating_duration_since(now)),
        );
        let now = Instant::now();
        for (seen, &slot) in last.iter_mut().zip(watched) {
            let progress = monitor.slot(slot).progress.load(Ordering::Relaxed);
            if progress != seen.0 {
                *seen = (progress, now, false);
            }
            let stalled = now - seen.1;
            monitor.check(main, stalled < opts.stall || seen.2, || {
                format!(
                    "watchdog: the {} made no progress for {:.1} s",
                    layout.name(slot),
                    stalled.as_secs_f64()
                )
            });
            if stalled >= opts.stall {
                seen.2 = true;
            }
        }
        if now < next_line && now < end {
            continue;
        }
        next_line += opts.interval;
        live_checks(opts, shared, monitor, main);
        let snapshot = stats::snapshot();
        let seconds = (now - prev_at).as_secs_f64();
        let throughput = (snapshot.commits - prev_commits) as f64 / seconds;
        let faults: u64 = monitor.faults().iter().sum();
        let rss = resident_bytes();
        let heap = live_heap_bytes();
        let long = layout.long();
        println!(
            "soak: [{:6.1} s] {:9.0} tx/s, {:.3} aborts/commit, {:5} faults, {:9} checks, \
             rss {}{}{}",
            (now - started).as_secs_f64(),
            throughput,
            (snapshot.clone() - before.clone()).aborts_per_commit(),
            faults - prev_faults,
            monitor.checks(),
            rss.map_or("n/a".to_string(), |r| format!("{:.1} MiB", mib(r))),
            heap.map_or(String::new(), |h| format!(", heap {:.1} MiB", mib(h))),
            if watched.contains(&long) {
                format!(
                    ", {} long transactions",
                    monitor.slot(long).progress.load(Ordering::Relaxed)
                )
            } else {
                String::new()
            }
        );
        samples.push(Sample {
            at: (now - started).as_secs_f64(),
            throughput,
            rss,
            heap,
        });
        (prev_at, prev_commits, prev_faults) = (now, snapshot.commits, faults);
    }
    samples
}

/// The reporter's checks while the workers run.
fn live_checks(opts: &SoakOptions, shared: &Shared, monitor: &Monitor, main: usize) {
    // Transfers are published after they commit, one at most in flight per worker: the live
    // counter lies between what was published before and after reading it.
    let published_before = monitor.transfers();
    let counted = shared.transfers.atomic().get() as u64;
    let published_after = monitor.transfers();
    let slack = opts.threads as u64;
    monitor.check(
        main,
        published_before <= counted && counted <= published_after + slack,
        || {
            format!(
                "transfers counter reads {counted}, outside the published \
                 {published_before}..={published_after} (+{slack} in flight)"
            )
        },
    );
    // The non-transactional read path (a pinned load) of every heap value.
    for (b, boxed) in shared.boxes.iter().enumerate() {
        boxed.load_with(|value| worker::check_box_value(monitor, main, b, value));
    }
}

/// Checks resident memory after warm-up; returns (warm, most after warm-up, end).
pub(crate) fn memory_check(
    opts: &SoakOptions,
    monitor: &Monitor,
    samples: &[Sample],
) -> Option<(u64, u64, u64)> {
    let warm_up = (opts.seconds as f64 / 5.0).clamp(2.0, 20.0);
    let after: Vec<(f64, u64)> = samples
        .iter()
        .filter(|s| s.at >= warm_up)
        .filter_map(|s| s.rss.map(|r| (s.at, r)))
        .collect();
    let &(warm_at, warm) = after.first()?;
    let most = after.iter().map(|&(_, r)| r).max()?;
    let end = after.last()?.1;
    let bound = allowed_growth(warm);
    // Least-squares slope of RSS over time after warm-up, for the record.
    let n = after.len() as f64;
    let (mt, mr) = (
        after.iter().map(|s| s.0).sum::<f64>() / n,
        after.iter().map(|s| s.1 as f64).sum::<f64>() / n,
    );
    let var: f64 = after.iter().map(|s| (s.0 - mt).powi(2)).sum();
    let slope = if var > 0.0 {
        after
            .iter()
            .map(|s| (s.0 - mt) * (s.1 as f64 - mr))
            .sum::<f64>()
            / var
    } else {
        0.0
    };
    println!(
        "soak: memory: rss {:.1} MiB after warm-up ({:.1} s), at most {:.1} MiB after it, \
         {:.1} MiB at the end ({:+.1}%, bound +{:.1} MiB); trend {:+.2} MiB/min",
        mib(warm),
        warm_at,
        mib(most),
        mib(end),
        (most as f64 - warm as f64) * 100.0 / warm as f64,
        mib(bound),
        slope * 60.0 / (1024.0 * 1024.0),
    );
    let heaps: Vec<u64> = samples
        .iter()
        .filter(|s| s.at >= warm_up)
        .filter_map(|s| s.heap)
        .collect();
    if let (Some(low), Some(high)) = (heaps.iter().min(), heaps.iter().max()) {
        println!(
            "soak: memory: live heap after warm-up between {:.1} and {:.1} MiB (structures plus \
             retired values awaiting quiescence)",
            mib(*low),
            mib(*high)
        );
    }
    if opts.memory_check {
        monitor.check_shared(most <= warm + bound, || {
            format!(
                "memory: rss grew from {:.1} MiB after warm-up to {:.1} MiB (bound +{:.1} MiB)",
                mib(warm),
                mib(most),
                mib(bound)
            )
        });
    }
    Some((warm, most, end))
}

pub(crate) fn print_throughput(throughput: &[f64]) {
    // The first interval includes thread start-up: leave it out.
    let mut steady: Vec<f64> = throughput.iter().skip(1).copied().collect();
    if steady.is_empty() {
        return;
    }
    steady.sort_by(f64::total_cmp);
    let median = steady[steady.len() / 2];
    println!(
        "soak: throughput per interval: min {:.0}, median {:.0}, max {:.0} tx/s (min/median \
         {:.2})",
        steady[0],
        median,
        steady[steady.len() - 1],
        steady[0] / median
    );
}
