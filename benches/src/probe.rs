//! A probe of the machine's state: how long one cache line takes to go from one core to another.
//!
//! Every 2-thread figure of the runner rests on that time (a `TQueue` push takes the tail's line
//! from the other core, a `TMap` update often takes a slot's line), and on a shared virtual
//! machine it is not constant: the development VM measured 22-26 ns for minutes, then about
//! 200 ns for seconds or minutes (its two virtual CPUs placed apart, or one of them shared). The
//! runner probes it before each workload of each round and once at the end, shows each probe on
//! its progress line and sums them up under the table (`report::machine_line`), so that a table
//! can be read with the conditions it was measured in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

/// Written by the timing thread to stop the other one.
const STOP: u64 = u64::MAX;
/// Turns per timed chunk: the clock is read once a chunk, so its cost (tens of nanoseconds)
/// spreads over many turns.
const CHUNK: u64 = 64;

/// Nanoseconds per turn of two threads taking turns on one atomic word, each turn moving the
/// word's cache line from one core to the other: the median over chunks of 64 turns timed for
/// about `duration`, so that a chunk in which the other thread waited to be scheduled does not
/// count. `None` on a machine with fewer than two cores, where the two threads would
/// take turns on one core instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// if let Some(ns) = commute_benches::probe::handoff_ns(Duration::from_millis(5)) {
///     assert!(ns > 0.0 && ns.is_finite());
/// }
/// ```
pub fn handoff_ns(duration: Duration) -> Option<f64> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return None;
    }
    // Even values: the timing thread's turn; odd values: the other thread's.
    let word = CachePadded::new(AtomicU64::new(0));
    let mut chunks: Vec<Duration> = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            loop {
                let v = word.load(Ordering::Acquire);
                if v == STOP {
                    break;
                }
                if v % 2 == 1 {
                    word.store(v + 1, Ordering::Release);
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let start = Instant::now();
        let mut chunk_start = start;
        let mut next_check = CHUNK;
        loop {
            let v = word.load(Ordering::Acquire);
            if v % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            if v >= next_check {
                let now = Instant::now();
                chunks.push(now - chunk_start);
                chunk_start = now;
                if now - start >= duration {
                    word.store(STOP, Ordering::Release);
                    break;
                }
                next_check = v + CHUNK;
            }
            word.store(v + 1, Ordering::Release);
        }
    });
    chunks.sort_unstable();
    // A chunk is CHUNK turns (increments), each one transfer of the line.
    Some(chunks[(chunks.len() - 1) / 2].as_nanos() as f64 / CHUNK as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handoff_takes_some_time_and_the_probe_stops() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match handoff_ns(Duration::from_millis(20)) {
            // No bound on the figure: on a machine busy throughout, turns wait for the scheduler.
            Some(ns) => {
                assert!(cores >= 2);
                assert!(ns > 0.0 && ns.is_finite(), "{ns} ns per handoff");
            }
            None => assert!(cores < 2),
        }
    }
}
