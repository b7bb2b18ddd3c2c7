//! The `apps` binary's options, presets, run order, table and JSON.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use super::btree::{self, Stream};
use super::kmeans::{self, KmeansParams, Points};
use super::labyrinth::{self, LabyrinthParams};
use super::{AppRun, pypy_conflicts};
use crate::args::{Arg, number, parse_names, parse_threads, positive};
use crate::report::{json_number, json_string};
use crate::vacation::report::short_ratio;
use crate::vacation::{self, client::Params};

/// The benchmarks, in the order they run.
pub const BENCHMARKS: [&str; 8] = [
    "labyrinth",
    "labyrinth-retry",
    "kmeans-low",
    "kmeans-high",
    "btree",
    "vacation-low",
    "vacation-high",
    "pypy-conflicts",
];

/// The `--help` text.
pub const USAGE: &str = "\
apps: programs STM users know, each on sequential (std collections, one thread), global-lock
(one Mutex around each operation) and commute implementations over the same input, each final
state checked: labyrinth (STAMP's Lee router, and a variant blocking in retry), kmeans-low and
kmeans-high (STAMP), btree (PyPy's multithread suite), vacation (STAMP) and PyPy-STM's
conflict tests. One table; docs/benchmarks.md, \"Application suite\", says what each measures.

USAGE:
    cargo run --release -p commute-benches --bin apps -- [OPTIONS]

OPTIONS:
    --preset NAME     default (about a minute at 1,2 threads on 2 cores) or smoke (a few
                      seconds, for CI)                                     (default)
    --threads LIST    thread counts of the concurrent implementations     (1,2)
    --only LIST       benchmarks to run, of: labyrinth, labyrinth-retry, kmeans-low,
                      kmeans-high, btree, vacation-low, vacation-high, pypy-conflicts
                      (kmeans and vacation name both mixes)                (all)
    --seconds S       seconds per PyPy conflict test (at least 0.01)   (3; smoke 0.3)
    --seed N          seed of every generated input                        (1)
    --reps N          run the suite N times; each row reports its fastest run, and a
                      check failed in any run fails the row                (1)
    --json FILE       also write the rows as a JSON array to FILE (- for stdout)
    --help            print this text

Sequential runs once per benchmark (1 thread); the others once per thread count. The PyPy
conflict tests always run 3 threads, as PyPy's do. A failed check exits with status 1.
";

/// A preset: the sizes of every benchmark.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// The preset's name.
    pub name: &'static str,
    /// labyrinth's grid and pairs.
    pub labyrinth: LabyrinthParams,
    /// labyrinth-retry's grid and pairs.
    pub labyrinth_retry: LabyrinthParams,
    /// labyrinth-retry: paths kept on the grid before the rip-up thread removes one.
    pub retry_keep: u64,
    /// labyrinth-retry: times each pair is routed.
    pub retry_rounds: usize,
    /// kmeans: points and coordinates (clusters set by the mix).
    pub kmeans: KmeansParams,
    /// btree: operations after the pre-inserted keys.
    pub btree_ops: usize,
    /// vacation: `-r` (and `-t` = 4 r).
    pub vacation_relations: u64,
    /// Seconds per PyPy conflict test.
    pub pypy_seconds: f64,
}

/// `--preset default`: each benchmark about 10 s over 1 and 2 threads on the 2-core machine.
pub const DEFAULT: Preset = Preset {
    name: "default",
    labyrinth: LabyrinthParams {
        x: 192,
        y: 192,
        z: 5,
        paths: 768,
    },
    labyrinth_retry: LabyrinthParams {
        x: 64,
        y: 64,
        z: 2,
        paths: 80,
    },
    retry_keep: 30,
    retry_rounds: 50,
    kmeans: KmeansParams {
        points: 16_384,
        dims: 32,
        clusters: 40,
    },
    btree_ops: 2_000_000,
    vacation_relations: 1 << 17,
    pypy_seconds: 3.0,
};

/// `--preset smoke`: every benchmark in a fraction of a second, for CI.
pub const SMOKE: Preset = Preset {
    name: "smoke",
    labyrinth: LabyrinthParams {
        x: 32,
        y: 32,
        z: 3,
        paths: 64,
    },
    labyrinth_retry: LabyrinthParams {
        x: 16,
        y: 16,
        z: 1,
        paths: 6,
    },
    retry_keep: 2,
    retry_rounds: 10,
    kmeans: KmeansParams {
        points: 1_024,
        dims: 8,
        clusters: 40,
    },
    btree_ops: 100_000,
    vacation_relations: 1 << 11,
    pypy_seconds: 0.3,
};

/// What the command line asked for.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::suite::AppsOptions;
///
/// let opts = AppsOptions::parse(["--preset", "smoke", "--only", "btree,kmeans"].map(String::from)).unwrap();
/// assert_eq!(opts.preset.name, "smoke");
/// assert_eq!(opts.only, ["kmeans-low", "kmeans-high", "btree"]);
/// assert_eq!(opts.threads, [1, 2]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AppsOptions {
    /// The sizes.
    pub preset: Preset,
    /// Thread counts of the concurrent implementations.
    pub threads: Vec<usize>,
    /// Benchmarks to run, in [`BENCHMARKS`] order.
    pub only: Vec<&'static str>,
    /// Seconds per PyPy conflict test.
    pub seconds: f64,
    /// Seed of every input.
    pub seed: u64,
    /// Times the suite runs; each row keeps its fastest run.
    pub reps: usize,
    /// Where to write JSON (`-` for stdout).
    pub json: Option<PathBuf>,
    /// Print [`USAGE`] and exit.
    pub help: bool,
}

impl AppsOptions {
    /// Parses the arguments after the program name.
    ///
    /// # Errors
    ///
    /// A message naming the bad option or value.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, String> {
        let mut preset = DEFAULT;
        let mut threads = vec![1, 2];
        let mut only: Vec<String> = Vec::new();
        let mut seconds = None;
        let mut seed = 1;
        let mut reps = 1;
        let mut json = None;
        let mut help = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = Arg::new(arg);
            let name = arg.name.clone();
            let mut value = || arg.value(&mut args);
            match name.as_str() {
                "--preset" => {
                    preset = match value()?.as_str() {
                        "default" => DEFAULT,
                        "smoke" => SMOKE,
                        other => {
                            return Err(format!("--preset: `{other}` is not default or smoke"));
                        }
                    }
                }
                "--threads" => threads = parse_threads(&value()?)?,
                "--only" => only.extend(parse_names(&name, &value()?)?),
                "--seconds" => {
                    let v = value()?;
                    seconds = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|s| s.is_finite() && *s >= MIN_SECONDS)
                            .ok_or_else(|| {
                                format!(
                                    "--seconds: `{v}` is not a number of at least {MIN_SECONDS}"
                                )
                            })?,
                    );
                }
                "--seed" => seed = number(&name, &value()?)?,
                "--reps" => reps = positive(&name, &value()?)? as usize,
                "--json" => json = Some(PathBuf::from(value()?)),
                "--help" | "-h" => help = arg.flag()?,
                other => return Err(format!("unknown option `{other}` (try --help)")),
            }
        }
        for name in &only {
            let known =
                BENCHMARKS.contains(&name.as_str()) || name == "kmeans" || name == "vacation";
            if !known {
                return Err(format!("--only: `{name}` is not a benchmark (try --help)"));
            }
        }
        let chosen = |b: &str| {
            only.is_empty()
                || only.iter().any(|o| {
                    o == b
                        || b.strip_prefix(o.as_str()).is_some_and(|r| {
                            r.starts_with('-') && (o == "kmeans" || o == "vacation")
                        })
                })
        };
        Ok(AppsOptions {
            seconds: seconds.unwrap_or(preset.pypy_seconds),
            preset,
            threads,
            only: BENCHMARKS.into_iter().filter(|b| chosen(b)).collect(),
            seed,
            reps,
            json,
            help,
        })
    }
}

/// The shortest `--seconds` accepted: PyPy's tests scale their abort floor to it, and a
/// shorter run has too few steps to judge.
pub const MIN_SECONDS: f64 = 0.01;

/// Runs the chosen benchmarks; `progress` is told each row as it finishes.
pub fn run_suite(opts: &AppsOptions, mut progress: impl FnMut(&AppRun)) -> Vec<AppRun> {
    let mut rows = Vec::new();
    let p = &opts.preset;
    let mut push = |rows: &mut Vec<AppRun>, run: AppRun| {
        progress(&run);
        rows.push(run);
    };
    for &bench in &opts.only {
        match bench {
            "labyrinth" => {
                let pairs = labyrinth::pairs(&p.labyrinth, opts.seed);
                let reference = labyrinth::run("sequential", &p.labyrinth, &pairs, 1);
                push(&mut rows, reference.clone());
                for &t in &opts.threads {
                    for i in &labyrinth::IMPLEMENTATIONS[1..] {
                        let mut run = labyrinth::run(i, &p.labyrinth, &pairs, t);
                        // One router claims the pairs in sequential's order and must route
                        // exactly as many (its check says how many).
                        if t == 1 && run.check.is_ok() && run.check != reference.check {
                            run.check = Err(format!(
                                "at 1 thread: {:?}, where sequential gave {:?}",
                                run.check, reference.check
                            ));
                        }
                        push(&mut rows, run);
                    }
                }
            }
            "labyrinth-retry" => {
                let pairs = labyrinth::pairs(&p.labyrinth_retry, opts.seed);
                for &t in &opts.threads {
                    let out = labyrinth::run_blocking(
                        &p.labyrinth_retry,
                        &pairs,
                        t,
                        p.retry_keep,
                        p.retry_rounds,
                    );
                    push(&mut rows, out.run);
                }
            }
            "kmeans-low" | "kmeans-high" => {
                let clusters = if bench == "kmeans-low" { 40 } else { 15 };
                let params = KmeansParams {
                    clusters,
                    ..p.kmeans
                };
                let points = Points::generate(params.points, params.dims, opts.seed);
                let reference = kmeans::run("sequential", &points, &params, 1, opts.seed);
                let named = |mut run: AppRun| {
                    run.benchmark = bench.to_string();
                    run
                };
                push(&mut rows, named(reference.run.clone()));
                for &t in &opts.threads {
                    for i in &kmeans::IMPLEMENTATIONS[1..] {
                        let r = kmeans::run(i, &points, &params, t, opts.seed);
                        let mut run = named(r.run);
                        run.check = run
                            .check
                            .and_then(|_| kmeans::compare(&reference.clustering, &r.clustering));
                        push(&mut rows, run);
                    }
                }
            }
            "btree" => {
                let stream = Stream::generate(p.btree_ops, opts.seed);
                let reference = btree::run("sequential", &stream, 1);
                push(&mut rows, reference.run.clone());
                for &t in &opts.threads {
                    for i in &btree::IMPLEMENTATIONS[1..] {
                        let r = btree::run(i, &stream, t);
                        let mut run = r.run;
                        if run.check.is_ok() && r.keys != reference.keys {
                            run.check = Err("the final key set differs from sequential's".into());
                        }
                        push(&mut rows, run);
                    }
                    push(&mut rows, btree::run_on_threads(&stream, t));
                }
            }
            "vacation-low" | "vacation-high" => {
                let (number, queries, user) = if bench == "vacation-low" {
                    (2, 90, 98)
                } else {
                    (4, 60, 90)
                };
                let params = |clients| Params {
                    number,
                    queries,
                    user,
                    relations: p.vacation_relations,
                    transactions: 4 * p.vacation_relations,
                    clients,
                };
                // The sequential baseline of `t` threads runs the same `t` clients' action
                // streams (one after another), as the vacation binary does: a row at `t`
                // threads is divided by the time of the same actions.
                let sequential = |t: usize| {
                    let seq = vacation::run_once(
                        vacation::Implementation::Sequential,
                        &params(t),
                        opts.seed,
                    );
                    let mut row = vacation_row(bench, &seq);
                    if t > 1 {
                        row.threads = t;
                        row.check = row
                            .check
                            .map(|c| format!("{c} (the {t} clients' streams, one after another)"));
                    }
                    (seq, row)
                };
                let (one, row) = sequential(1);
                push(&mut rows, row);
                for &t in &opts.threads {
                    if t > 1 {
                        push(&mut rows, sequential(t).1);
                    }
                    for i in [
                        vacation::Implementation::GlobalLock,
                        vacation::Implementation::Commute,
                    ] {
                        let run = vacation::run_once(i, &params(t), opts.seed);
                        let mut row = vacation_row(bench, &run);
                        // One client runs sequential's action stream: the final state is fixed.
                        if t == 1 && row.check.is_ok() && !run.check.same_state(&one.check) {
                            row.check = Err(format!(
                                "at 1 thread, the final state differs from sequential's on the \
                                 same actions (digest {:016x}, {} reservations; sequential: \
                                 {:016x}, {})",
                                run.check.digest,
                                run.check.reservations,
                                one.check.digest,
                                one.check.reservations
                            ));
                        }
                        push(&mut rows, row);
                    }
                }
            }
            "pypy-conflicts" => {
                for test in pypy_conflicts::TESTS {
                    push(&mut rows, pypy_conflicts::run(test, opts.seconds));
                }
            }
            other => unreachable!("{other} is not a benchmark"),
        }
    }
    rows
}

/// Merges the rows of several runs of the suite (in the same order each time): each row keeps
/// its fastest run, unless a run's check failed, which then stands for the row.
///
/// # Panics
///
/// If the runs do not have the same rows.
pub fn best_of(runs: Vec<Vec<AppRun>>) -> Vec<AppRun> {
    let mut runs = runs.into_iter();
    let mut best = runs.next().unwrap_or_default();
    for run in runs {
        assert_eq!(run.len(), best.len(), "every run has the same rows");
        for (kept, new) in best.iter_mut().zip(run) {
            assert_eq!(
                (&kept.benchmark, kept.implementation, kept.threads),
                (&new.benchmark, new.implementation, new.threads)
            );
            let failed = new.check.is_err() && kept.check.is_ok();
            if failed || (kept.check.is_ok() && new.seconds < kept.seconds) {
                *kept = new;
            }
        }
    }
    best
}

fn vacation_row(bench: &str, run: &vacation::RunResult) -> AppRun {
    let check = if run.check.ok() {
        Ok(format!(
            "{} customers holding {} reservations, STAMP's checks pass",
            run.check.customers, run.check.reservations
        ))
    } else {
        Err(run.check.messages.join("; "))
    };
    AppRun {
        benchmark: bench.to_string(),
        implementation: run.implementation.name(),
        threads: run.threads,
        seconds: run.seconds,
        work: run.transactions,
        commits: run.commits,
        aborts: run.aborts,
        check,
    }
}

/// `run`'s time over the time of its benchmark's `sequential` row, if there is one: 1.30 means
/// 30% slower than sequential, 0.50 twice as fast. The sequential row at `run`'s thread count
/// where there is one (vacation's: the same clients' actions), else the first.
pub fn ratio(rows: &[AppRun], run: &AppRun) -> Option<f64> {
    let sequential = |r: &&AppRun| r.benchmark == run.benchmark && r.implementation == "sequential";
    rows.iter()
        .filter(sequential)
        .find(|r| r.threads == run.threads)
        .or_else(|| rows.iter().find(sequential))
        .filter(|s| s.seconds > 0.0)
        .map(|s| run.seconds / s.seconds)
}

/// Prints a progress line for a finished row to stderr.
pub fn progress_line(run: &AppRun) {
    eprintln!(
        "[{} {} {}t] {:.3} s{}",
        run.benchmark,
        run.implementation,
        run.threads,
        run.seconds,
        if run.check.is_ok() {
            ""
        } else {
            " CHECK FAILED"
        }
    );
    let _ = std::io::stderr().flush();
}

/// The table: one row per run, a blank line between benchmarks, then every check's note.
pub fn table(rows: &[AppRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>3} {:<15} {:>9} {:>6} {:>8} {:>10} {:>9}  check",
        "benchmark", "thr", "impl", "time", "x seq", "speedup", "work", "aborts/c"
    );
    let _ = writeln!(out, "{}", "-".repeat(89));
    for (i, r) in rows.iter().enumerate() {
        if i > 0 && group(&rows[i - 1].benchmark) != group(&r.benchmark) {
            out.push('\n');
        }
        let ratio = ratio(rows, r);
        let _ = writeln!(
            out,
            "{:<16} {:>3} {:<15} {:>7.3} s {:>6} {:>8} {:>10} {:>9}  {}",
            r.benchmark,
            r.threads,
            r.implementation,
            r.seconds,
            ratio.map_or_else(String::new, |x| format!("{x:.2}")),
            ratio.map_or_else(String::new, |x| format!("{:.2}x", 1.0 / x)),
            r.work,
            r.aborts_per_commit().map_or_else(String::new, short_ratio),
            if r.check.is_ok() { "ok" } else { "FAILED" }
        );
    }
    let _ = writeln!(out, "\nchecks:");
    for r in rows {
        let (mark, note) = match &r.check {
            Ok(note) => ("ok", note),
            Err(problem) => ("FAILED", problem),
        };
        let _ = writeln!(
            out,
            "  {:<6} {} {} {}t: {note}",
            mark, r.benchmark, r.implementation, r.threads
        );
    }
    out
}

/// The rows a blank line does not separate: PyPy's three tests stay together.
fn group(benchmark: &str) -> &str {
    if benchmark.starts_with("pypy-") {
        "pypy"
    } else {
        benchmark
    }
}

/// The rows as a JSON array, one object per row.
pub fn json(opts: &AppsOptions, rows: &[AppRun]) -> String {
    let num = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
    let float = |v: Option<f64>| v.map_or_else(|| "null".to_string(), json_number);
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let (passed, note) = match &r.check {
            Ok(note) => (true, note),
            Err(problem) => (false, problem),
        };
        let _ = write!(
            out,
            "  {{\"benchmark\": {}, \"implementation\": {}, \"threads\": {}, \"preset\": {}, \
             \"seed\": {}, \"seconds\": {}, \"ratio_to_sequential\": {}, \"work\": {}, \
             \"commits\": {}, \"aborts\": {}, \"aborts_per_commit\": {}, \"check_passed\": {}, \
             \"check\": {}}}",
            json_string(&r.benchmark),
            json_string(r.implementation),
            r.threads,
            json_string(opts.preset.name),
            opts.seed,
            json_number(r.seconds),
            float(ratio(rows, r)),
            r.work,
            num(r.commits),
            num(r.aborts),
            float(r.aborts_per_commit()),
            passed,
            json_string(note)
        );
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<AppsOptions, String> {
        AppsOptions::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_every_option() {
        let opts = parse(&[]).unwrap();
        assert_eq!(opts.preset, DEFAULT);
        assert_eq!(opts.only, BENCHMARKS);
        assert_eq!(opts.seconds, 3.0);
        let opts = parse(&[
            "--preset=smoke",
            "--threads",
            "1,4",
            "--only",
            "vacation,labyrinth-retry",
            "--seconds",
            "0.5",
            "--seed=9",
            "--reps",
            "3",
            "--json",
            "-",
        ])
        .unwrap();
        assert_eq!(opts.reps, 3);
        assert_eq!(opts.preset, SMOKE);
        assert_eq!(opts.threads, [1, 4]);
        assert_eq!(
            opts.only,
            ["labyrinth-retry", "vacation-low", "vacation-high"]
        );
        assert_eq!((opts.seconds, opts.seed), (0.5, 9));
        assert_eq!(opts.json, Some(PathBuf::from("-")));
        assert_eq!(parse(&["--preset", "smoke"]).unwrap().seconds, 0.3);
    }

    fn row(seconds: f64, check: Result<String, String>) -> AppRun {
        AppRun {
            benchmark: "btree".into(),
            implementation: "commute",
            threads: 2,
            seconds,
            work: 1,
            commits: Some(1),
            aborts: Some(0),
            check,
        }
    }

    #[test]
    fn best_of_keeps_the_fastest_run_and_any_failure() {
        let ok = || Ok(String::new());
        let best = best_of(vec![
            vec![row(2.0, ok()), row(1.0, ok())],
            vec![row(1.5, ok()), row(3.0, Err("lost".into()))],
            vec![row(1.8, ok()), row(0.5, ok())],
        ]);
        assert_eq!(best[0].seconds, 1.5);
        assert_eq!(best[1].check, Err("lost".into()));
    }

    #[test]
    fn bad_input_is_an_error_that_names_it() {
        for (args, needle) in [
            (&["--preset", "huge"][..], "huge"),
            (&["--only", "genome"][..], "genome"),
            (&["--only", ","][..], "--only needs at least one name"),
            (&["--seconds", "1e-9"][..], "`1e-9`"),
            (&["--threads", "0"][..], "`0`"),
            (&["--seconds", "-1"][..], "`-1`"),
            (&["--reps", "0"][..], "`0`"),
            (&["--frob"][..], "--frob"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
