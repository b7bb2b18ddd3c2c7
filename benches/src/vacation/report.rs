//! The `vacation` binary's table and JSON.

use std::fmt::Write as _;

use super::args::VacationOptions;
use super::{Implementation, RunResult, best};

/// One implementation's repetitions, summed up.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The fastest run.
    pub best: RunResult,
    /// Every run's time, in the order they ran.
    pub seconds: Vec<f64>,
    /// The best time over `sequential`'s best time, if `sequential` ran.
    pub ratio: Option<f64>,
    /// Whether every run's final state passed the checks.
    pub checks_passed: bool,
}

/// Sums up `runs` (every repetition of every implementation, in any order).
///
/// # Panics
///
/// If an implementation of `implementations` has no run.
pub fn summarise(implementations: &[Implementation], runs: &[RunResult]) -> Vec<Summary> {
    let of = |i: Implementation| -> Vec<RunResult> {
        runs.iter()
            .filter(|r| r.implementation == i)
            .cloned()
            .collect()
    };
    let sequential = implementations
        .contains(&Implementation::Sequential)
        .then(|| best(&of(Implementation::Sequential)).seconds);
    implementations
        .iter()
        .map(|&i| {
            let mine = of(i);
            let fastest = best(&mine).clone();
            Summary {
                ratio: sequential.map(|s| fastest.seconds / s),
                seconds: mine.iter().map(|r| r.seconds).collect(),
                checks_passed: mine.iter().all(|r| r.check.ok()),
                best: fastest,
            }
        })
        .collect()
}

/// The heading line: the benchmark, its parameters, the seed, the repetitions.
pub fn heading(opts: &VacationOptions) -> String {
    let p = &opts.params;
    let name = if opts.custom_mix {
        "vacation".to_string()
    } else {
        format!("vacation-{}", opts.preset.name())
    };
    format!(
        "{name}: -n{} -q{} -u{} -r{} -t{} -c{} (ids 1 to {}, {} actions), seed {}, {}",
        p.number,
        p.queries,
        p.user,
        p.relations,
        p.transactions,
        p.clients,
        p.query_range(),
        p.actions(),
        opts.seed,
        if opts.reps == 1 {
            "one run".to_string()
        } else {
            format!("best of {} runs", opts.reps)
        }
    )
}

/// The table: one row per implementation.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} {:>7} {:>10} {:>7} {:>12} {:>10} {:>8} {:>9}  check",
        "impl", "threads", "time", "x seq", "transactions", "commits", "aborts", "aborts/c"
    );
    let _ = writeln!(out, "{}", "-".repeat(90));
    for s in summaries {
        let r = &s.best;
        let opt = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
        let _ = writeln!(
            out,
            "{:<13} {:>7} {:>8.3} s {:>7} {:>12} {:>10} {:>8} {:>9}  {}",
            r.implementation.name(),
            r.threads,
            r.seconds,
            s.ratio.map_or_else(String::new, |x| format!("{x:.2}")),
            r.transactions,
            opt(r.commits),
            opt(r.aborts),
            r.aborts_per_commit().map_or_else(String::new, short_ratio),
            if s.checks_passed { "ok" } else { "FAILED" }
        );
    }
    out
}

/// Aborts per commit as the conflicts runner prints it: 0, 4 decimals, or scientific.
pub(crate) fn short_ratio(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x >= 0.001 {
        format!("{x:.4}")
    } else {
        format!("{x:.1e}")
    }
}

/// The results as a JSON array, one object per implementation.
pub fn json(opts: &VacationOptions, summaries: &[Summary]) -> String {
    let p = &opts.params;
    let num = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
    let float = |v: Option<f64>| v.map_or_else(|| "null".to_string(), |v| format!("{v:.6}"));
    let mut out = String::from("[\n");
    for (i, s) in summaries.iter().enumerate() {
        let r = &s.best;
        let all: Vec<String> = s.seconds.iter().map(|t| format!("{t:.6}")).collect();
        let _ = write!(
            out,
            "  {{\"implementation\": \"{}\", \"preset\": {}, \"n\": {}, \"q\": {}, \"u\": {}, \
             \"r\": {}, \"t\": {}, \"clients\": {}, \"threads\": {}, \"seed\": {}, \
             \"seconds\": {:.6}, \"seconds_all\": [{}], \"ratio_to_sequential\": {}, \
             \"transactions\": {}, \"commits\": {}, \"aborts\": {}, \"aborts_per_commit\": {}, \
             \"checks_passed\": {}}}",
            r.implementation.name(),
            if opts.custom_mix {
                "null".to_string()
            } else {
                format!("\"{}\"", opts.preset.name())
            },
            p.number,
            p.queries,
            p.user,
            p.relations,
            p.transactions,
            p.clients,
            r.threads,
            opts.seed,
            r.seconds,
            all.join(", "),
            float(s.ratio),
            r.transactions,
            num(r.commits),
            num(r.aborts),
            float(r.aborts_per_commit()),
            s.checks_passed
        );
        out.push_str(if i + 1 < summaries.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}
