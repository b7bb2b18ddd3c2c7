//! PyPy-STM's conflict tests (`pypy/module/pypystm/test_pypy_c`), as checks of the runner:
//! three threads run for a few seconds each (three in PyPy's tests); the abort counters must
//! tell thread-local work from a real conflict.
//!
//! - `pypy-local`: each thread increments a field of its own object (a `TVar`) and updates its
//!   own map (a `TMap`), one transaction per step. Nothing is shared, so the three threads
//!   together must show fewer than [`LOCAL_ABORT_LIMIT`] aborts.
//! - `pypy-shared`: each thread runs `x += 1` on one shared `TVar` (read, add, write). The
//!   conflict is real, and the counters must see it: more than [`SHARED_ABORT_FLOOR`] aborts in
//!   PyPy's 3 s (scaled to the seconds given), and the final `x` must equal the commits (no
//!   lost increment). Threads conflict only while two of them run at once: the floor is judged
//!   when the threads had at least [`PARALLELISM_TO_JUDGE`] cores on average (their CPU time
//!   over the wall time, from `/proc`), and reported as not judged otherwise (a loaded 2-core
//!   machine where they mostly took turns).
//! - `pypy-shared-add`: the same increment as a commutative `TVar::add`: the fix commute
//!   offers for it, which must show no aborts at all (shown for comparison, not a PyPy test).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use commute::{TMap, TVar, atomically};

use super::{AppRun, counts_since, sum_counts};

/// Threads, as in PyPy's tests.
pub const THREADS: usize = 3;

/// Thread-local work must total fewer aborts than this.
pub const LOCAL_ABORT_LIMIT: u64 = 500;

/// A shared `x += 1` must show more aborts than this in 3 s (scaled linearly for other
/// durations).
pub const SHARED_ABORT_FLOOR: u64 = 20_000;

/// The tests, in the order they run.
pub const TESTS: [&str; 3] = ["pypy-local", "pypy-shared", "pypy-shared-add"];

/// The abort floor of `pypy-shared` for a run of `seconds` per thread.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::pypy_conflicts::shared_floor;
/// assert_eq!(shared_floor(3.0), 20_000);
/// assert_eq!(shared_floor(0.3), 2_000);
/// ```
pub fn shared_floor(seconds: f64) -> u64 {
    (SHARED_ABORT_FLOOR as f64 * seconds / 3.0).round() as u64
}

/// Average cores the shared test's threads must have had for its floor to be judged: below
/// it, the threads mostly took turns on one core, and turns do not conflict.
pub const PARALLELISM_TO_JUDGE: f64 = 1.5;

/// CPU seconds the calling thread has used, from `/proc/thread-self/stat` (Linux; `None`
/// elsewhere). The kernel reports it in ticks of 1/100 s.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// What [`timed`] measured.
struct Timed {
    wall: f64,
    steps: u64,
    counts: (u64, u64),
    /// CPU seconds of all threads over the wall time: the cores they had on average.
    parallelism: Option<f64>,
}

/// Runs `threads` copies of `step` (given the thread's index) until `seconds` have passed.
fn timed(threads: usize, seconds: f64, step: impl Fn(usize) + Sync) -> Timed {
    let stop = AtomicBool::new(false);
    let began = Instant::now();
    let results: Vec<(u64, (u64, u64), Option<f64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, step) = (&stop, &step);
                s.spawn(move || {
                    let before = commute::stats::thread();
                    let cpu_before = thread_cpu_seconds();
                    let mut steps = 0u64;
                    // At least one batch each, however short the run: a run with no steps
                    // would pass its checks without testing anything.
                    loop {
                        for _ in 0..64 {
                            step(t);
                        }
                        steps += 64;
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    let cpu = thread_cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
                    (steps, counts_since(before), cpu)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = began.elapsed().as_secs_f64();
    let cpu: Option<f64> = results.iter().map(|r| r.2).sum();
    Timed {
        wall,
        steps: results.iter().map(|r| r.0).sum(),
        counts: sum_counts(results.iter().map(|r| r.1)),
        parallelism: cpu.map(|c| c / wall),
    }
}

/// Checks a `pypy-local` thread's map after its object reached `count`: increment `n` (1 to
/// `count`) inserted `n` at key `n % 1024`, so the map holds exactly the last
/// `min(count, 1024)` increments, each at its key.
fn check_local_map(count: u64, entries: Vec<(u64, u64)>) -> Result<(), String> {
    let want = count.min(1024);
    if entries.len() as u64 != want {
        return Err(format!(
            "{} keys after {count} increments, not {want}",
            entries.len()
        ));
    }
    match entries
        .iter()
        .find(|&&(k, v)| v == 0 || v % 1024 != k || v > count || v + 1024 <= count)
    {
        Some((k, v)) => Err(format!(
            "key {k} holds {v}, not the last of the {count} increments at that key"
        )),
        None => Ok(()),
    }
}

/// Runs the test `name` (one of [`TESTS`]) for `seconds` on [`THREADS`] threads.
///
/// # Panics
///
/// On an unknown test.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::pypy_conflicts::run;
///
/// let local = run("pypy-local", 0.05);
/// assert!(local.check.is_ok(), "{:?}", local.check);
/// ```
pub fn run(name: &str, seconds: f64) -> AppRun {
    let (wall, steps, (commits, aborts), check) = match name {
        "pypy-local" => {
            let objects: Vec<TVar<u64>> = (0..THREADS).map(|_| TVar::new(0)).collect();
            let maps: Vec<TMap<u64, u64>> = (0..THREADS).map(|_| TMap::new()).collect();
            let Timed {
                wall,
                steps,
                counts,
                ..
            } = timed(THREADS, seconds, |t| {
                atomically(|tx| {
                    let n = objects[t].modify(tx, |x| x + 1)?;
                    maps[t].insert(tx, n % 1024, n)?;
                    Ok(())
                });
            });
            let total: u64 = objects.iter().map(TVar::load).sum();
            let maps_check =
                objects
                    .iter()
                    .zip(&maps)
                    .enumerate()
                    .try_for_each(|(t, (object, map))| {
                        check_local_map(object.load(), map.atomic().iter())
                            .map_err(|what| format!("thread {t}'s map: {what}"))
                    });
            let check = if let Err(what) = maps_check {
                Err(what)
            } else if counts.1 >= LOCAL_ABORT_LIMIT {
                Err(format!(
                    "{} aborts on thread-local work (the limit is {LOCAL_ABORT_LIMIT})",
                    counts.1
                ))
            } else if total != steps {
                Err(format!("{total} increments of {steps} survived"))
            } else {
                Ok(format!(
                    "{} aborts < {LOCAL_ABORT_LIMIT}, each map holds its last 1024 increments",
                    counts.1
                ))
            };
            (wall, steps, counts, check)
        }
        "pypy-shared" | "pypy-shared-add" => {
            let commutative = name == "pypy-shared-add";
            let x = Arc::new(TVar::new(0u64));
            let Timed {
                wall,
                steps,
                counts,
                parallelism,
            } = timed(THREADS, seconds, |_| {
                atomically(|tx| {
                    if commutative {
                        x.add(tx, 1);
                    } else {
                        x.modify(tx, |v| v + 1)?;
                    }
                    Ok(())
                });
            });
            let floor = shared_floor(seconds);
            let cores = parallelism.map_or_else(String::new, |p| format!(", {p:.2} cores"));
            let judged = parallelism.is_none_or(|p| p >= PARALLELISM_TO_JUDGE);
            let check = if x.load() != steps {
                Err(format!("x = {} after {steps} increments", x.load()))
            } else if commutative && counts.1 != 0 {
                Err(format!("{} aborts on commutative adds", counts.1))
            } else if !commutative && counts.1 <= floor && !judged {
                Ok(format!(
                    "x = {steps}, {} aborts; floor {floor} not judged: the threads had {} \
                     cores on average, under {PARALLELISM_TO_JUDGE} (they took turns)",
                    counts.1,
                    parallelism.map_or_else(String::new, |p| format!("{p:.2}"))
                ))
            } else if !commutative && counts.1 <= floor {
                Err(format!(
                    "only {} aborts on a shared x += 1 (PyPy's floor, scaled to {seconds} s: \
                     {floor}{cores})",
                    counts.1
                ))
            } else if commutative {
                Ok(format!("x = {steps}, no aborts{cores}"))
            } else {
                Ok(format!("x = {steps}, {} aborts > {floor}{cores}", counts.1))
            };
            (wall, steps, counts, check)
        }
        other => panic!("pypy-conflicts: no test `{other}`"),
    };
    AppRun {
        benchmark: name.to_string(),
        implementation: "commute",
        threads: THREADS,
        seconds: wall,
        work: steps,
        commits: Some(commits),
        aborts: Some(aborts),
        check,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_map_check_wants_the_last_increments() {
        let last = |count: u64| -> Vec<(u64, u64)> {
            (count.saturating_sub(1023).max(1)..=count)
                .map(|n| (n % 1024, n))
                .collect()
        };
        assert_eq!(check_local_map(5, last(5)), Ok(()));
        assert_eq!(check_local_map(5000, last(5000)), Ok(()));
        assert!(check_local_map(5000, Vec::new()).is_err());
        assert!(check_local_map(5000, last(4999)).is_err());
        let mut stale = last(5000);
        stale[3].1 -= 1024;
        assert!(check_local_map(5000, stale).is_err());
    }

    #[test]
    fn a_tiny_run_still_steps() {
        let run = run("pypy-shared-add", 1e-6);
        assert!(run.work >= 64 * THREADS as u64, "{run:?}");
    }
}
