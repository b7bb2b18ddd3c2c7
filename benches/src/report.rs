//! Results of the cells and their presentation: the text table and the JSON array.

use std::fmt::Write as _;

/// The measurement of one cell: one workload on one structure with one thread count.
///
/// # Examples
///
/// ```
/// use commute_benches::report::CellResult;
///
/// let cell = CellResult {
///     workload: "counter",
///     structure: "TCounter",
///     threads: 2,
///     ops: 3_000_000,
///     seconds: 1.5,
///     commits: Some(3_000_000),
///     aborts: Some(3),
///     long_read: None,
/// };
/// assert_eq!(cell.ops_per_sec(), 2_000_000.0);
/// assert_eq!(cell.aborts_per_commit(), Some(1e-6));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CellResult {
    /// The workload's name (`counter`, `log`, ...).
    pub workload: &'static str,
    /// The structure's name (`TCounter`, `naive-counter`, `Mutex<u64>`, `fast-stm`, ...).
    pub structure: &'static str,
    /// Worker threads.
    pub threads: usize,
    /// Operations completed by all workers (an operation is one transaction, or one locked
    /// operation; pops that found the queue empty are not counted).
    pub ops: u64,
    /// Measured wall-clock time.
    pub seconds: f64,
    /// Committed transactions, for STM structures.
    pub commits: Option<u64>,
    /// Rolled-back attempts (conflicts), for STM structures.
    pub aborts: Option<u64>,
    /// For a `long-read` cell, the reader's figures and the writers' without it (the cell's
    /// own `ops`, `seconds`, `commits` and `aborts` are the writers' beside the reader).
    pub long_read: Option<LongRead>,
}

/// What a `long-read` cell measured besides the writers' throughput next to the reader.
///
/// # Examples
///
/// ```
/// use commute_benches::report::LongRead;
///
/// let reader = LongRead { reads: 4, attempts: 6, ordinary: 0, inexact: 0, alone_ops: 3_000,
///     alone_seconds: 0.5 };
/// assert_eq!(reader.attempts_per_read(), 1.5);
/// assert_eq!(reader.alone_per_ms(), 6.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongRead {
    /// Whole-map sums the reader completed beside the writers.
    pub reads: u64,
    /// Attempts those sums took (one per sum for the lock-based maps).
    pub attempts: u64,
    /// Attempts that ran as ordinary transactions, not on a snapshot (commute's `TMap` only).
    pub ordinary: u64,
    /// Sums that differed from the money in the map (only a map whose walk is not one
    /// consistent state, `DashMap`, may have any: the runner stops on a wrong sum of the others).
    pub inexact: u64,
    /// Transfers the writers completed without the reader.
    pub alone_ops: u64,
    /// The measured time of that phase.
    pub alone_seconds: f64,
}

impl LongRead {
    /// Attempts per completed sum (0 without sums).
    pub fn attempts_per_read(&self) -> f64 {
        if self.reads > 0 {
            self.attempts as f64 / self.reads as f64
        } else {
            0.0
        }
    }

    /// The writers' transfers per millisecond without the reader.
    pub fn alone_per_ms(&self) -> f64 {
        if self.alone_seconds > 0.0 {
            self.alone_ops as f64 / self.alone_seconds / 1e3
        } else {
            0.0
        }
    }
}

impl CellResult {
    /// Operations per second.
    ///
    /// # Examples
    ///
    /// ```
    /// # let cell = commute_benches::report::CellResult { workload: "log", structure: "SegQueue",
    /// #     threads: 1, ops: 10, seconds: 2.0, commits: None, aborts: None,
    /// #     long_read: None };
    /// assert_eq!(cell.ops_per_sec(), 5.0);
    /// ```
    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Aborts per commit: `None` for structures that are not STM, 0 when nothing committed.
    ///
    /// # Examples
    ///
    /// ```
    /// # let cell = commute_benches::report::CellResult { workload: "log", structure: "SegQueue",
    /// #     threads: 1, ops: 10, seconds: 2.0, commits: None, aborts: None,
    /// #     long_read: None };
    /// assert_eq!(cell.aborts_per_commit(), None);
    /// ```
    pub fn aborts_per_commit(&self) -> Option<f64> {
        match (self.commits, self.aborts) {
            (Some(0), Some(_)) => Some(0.0),
            (Some(commits), Some(aborts)) => Some(aborts as f64 / commits as f64),
            _ => None,
        }
    }
}

/// `12345678.9` as `12.35M`, `950.2k`, ...
fn human(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn ratio(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if x < 0.001 {
        format!("{x:.1e}")
    } else {
        format!("{x:.4}")
    }
}

/// The cells as a text table: one row per cell, a blank line between workloads.
///
/// Columns: workload, structure, threads, ops, seconds, ops/s, `x1t` (throughput relative to
/// the same structure's 1-thread cell, when there is one), commits, aborts, aborts per commit
/// (blank for structures that are not STM).
///
/// # Examples
///
/// ```
/// use commute_benches::report::{CellResult, table};
///
/// let cell = CellResult { workload: "counter", structure: "AtomicU64", threads: 1, ops: 100,
///     seconds: 1.0, commits: None, aborts: None, long_read: None };
/// let text = table(&[cell]);
/// assert!(text.contains("AtomicU64"));
/// ```
pub fn table(cells: &[CellResult]) -> String {
    let width = cells
        .iter()
        .map(|c| c.structure.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let mut out = String::new();
    let header = format!(
        "{:<12} {:<width$} {:>3} {:>11} {:>6} {:>9} {:>5} {:>11} {:>9} {:>9}",
        "workload",
        "structure",
        "thr",
        "ops",
        "secs",
        "ops/s",
        "x1t",
        "commits",
        "aborts",
        "aborts/c"
    );
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    let mut previous = None;
    for cell in cells {
        if previous.is_some_and(|w| w != cell.workload) {
            out.push('\n');
        }
        previous = Some(cell.workload);
        let single = cells.iter().find(|c| {
            c.workload == cell.workload && c.structure == cell.structure && c.threads == 1
        });
        let scaling = match single {
            Some(one) if cell.threads != 1 && one.ops_per_sec() > 0.0 => {
                format!("{:.2}", cell.ops_per_sec() / one.ops_per_sec())
            }
            _ => String::new(),
        };
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<12} {:<width$} {:>3} {:>11} {:>6.3} {:>9} {:>5} {:>11} {:>9} {:>9}",
            cell.workload,
            cell.structure,
            cell.threads,
            cell.ops,
            cell.seconds,
            human(cell.ops_per_sec()),
            scaling,
            opt(cell.commits),
            opt(cell.aborts),
            cell.aborts_per_commit().map(ratio).unwrap_or_default(),
        );
    }
    out
}

/// The `long-read` cells as a table of their own; empty if the run has none.
///
/// Columns: structure, threads, `reads` (the reader's whole-map sums), `att/read` (attempts per
/// sum), `ordinary` (attempts that did not run on a snapshot), `exact` (whether every sum was
/// the money in the map), the writers' transfers per millisecond without the reader
/// (`alone/ms`) and beside it (`beside/ms`), and `beside/alone`.
///
/// # Examples
///
/// ```
/// use commute_benches::report::{CellResult, LongRead, long_read_table};
///
/// let reader = LongRead { reads: 10, attempts: 10, ordinary: 0, inexact: 3, alone_ops: 2_000,
///     alone_seconds: 1.0 };
/// let cell = CellResult { workload: "long-read", structure: "DashMap", threads: 2, ops: 1_000,
///     seconds: 1.0, commits: None, aborts: None, long_read: Some(reader) };
/// let text = long_read_table(&[cell]);
/// assert!(text.contains("no: 3 of 10"), "{text}");
/// assert!(text.lines().last().unwrap().ends_with(" 0.50"), "{text}");
/// ```
pub fn long_read_table(cells: &[CellResult]) -> String {
    let rows: Vec<(&CellResult, &LongRead)> = cells
        .iter()
        .filter_map(|c| Some((c, c.long_read.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let width = rows
        .iter()
        .map(|(c, _)| c.structure.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let mut out = String::from(
        "long-read: one thread sums the whole map while thr - 1 threads (at least 1) transfer\n",
    );
    let header = format!(
        "{:<width$} {:>3} {:>6} {:>8} {:>8} {:>14} {:>9} {:>9} {:>12}",
        "structure",
        "thr",
        "reads",
        "att/read",
        "ordinary",
        "exact",
        "alone/ms",
        "beside/ms",
        "beside/alone"
    );
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    for (cell, reader) in rows {
        let (alone, beside) = (reader.alone_per_ms(), cell.ops_per_sec() / 1e3);
        let exact = if reader.inexact == 0 {
            "yes".to_string()
        } else {
            format!("no: {} of {}", reader.inexact, reader.reads)
        };
        let _ = writeln!(
            out,
            "{:<width$} {:>3} {:>6} {:>8.2} {:>8} {:>14} {:>9.1} {:>9.1} {:>12}",
            cell.structure,
            cell.threads,
            reader.reads,
            reader.attempts_per_read(),
            reader.ordinary,
            exact,
            alone,
            beside,
            if alone > 0.0 {
                format!("{:.2}", beside / alone)
            } else {
                String::new()
            },
        );
    }
    out
}

/// `s` as a JSON string literal, quoted and escaped.
///
/// # Examples
///
/// ```
/// assert_eq!(commute_benches::report::json_string("a\"b"), r#""a\"b""#);
/// ```
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `x` as a JSON number, or `null` when it is not finite (JSON has no NaN or infinity).
///
/// # Examples
///
/// ```
/// use commute_benches::report::json_number;
/// assert_eq!(json_number(1.5), "1.5");
/// assert_eq!(json_number(f64::NAN), "null");
/// ```
pub fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_string()
    }
}

/// The cells as a JSON array of objects with exactly the keys `workload`, `structure`,
/// `threads`, `ops`, `seconds`, `ops_per_sec`, `commits`, `aborts`, `aborts_per_commit`,
/// `long_read` (`commits`, `aborts` and `aborts_per_commit` are `null` for structures that are
/// not STM; `long_read` is `null` but for `long-read` cells, where it is an object with the keys
/// `reads`, `attempts`, `ordinary`, `inexact`, `alone_ops`, `alone_seconds`, `alone_per_ms`).
///
/// Written by hand: ten flat fields do not need serde.
///
/// # Examples
///
/// ```
/// use commute_benches::report::{CellResult, json};
///
/// let cell = CellResult { workload: "counter", structure: "Mutex<u64>", threads: 2, ops: 10,
///     seconds: 0.5, commits: None, aborts: None, long_read: None };
/// let text = json(&[cell]);
/// assert!(text.contains(r#""structure": "Mutex<u64>""#));
/// assert!(text.contains(r#""aborts_per_commit": null"#));
/// ```
pub fn json(cells: &[CellResult]) -> String {
    let mut out = String::from("[\n");
    for (i, cell) in cells.iter().enumerate() {
        let opt = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
        let _ = write!(
            out,
            "  {{\"workload\": {}, \"structure\": {}, \"threads\": {}, \"ops\": {}, \
             \"seconds\": {}, \"ops_per_sec\": {}, \"commits\": {}, \"aborts\": {}, \
             \"aborts_per_commit\": {}, \"long_read\": {}}}",
            json_string(cell.workload),
            json_string(cell.structure),
            cell.threads,
            cell.ops,
            json_number(cell.seconds),
            json_number(cell.ops_per_sec()),
            opt(cell.commits),
            opt(cell.aborts),
            cell.aborts_per_commit()
                .map_or_else(|| "null".to_string(), json_number),
            cell.long_read.map_or_else(
                || "null".to_string(),
                |r| format!(
                    "{{\"reads\": {}, \"attempts\": {}, \"ordinary\": {}, \"inexact\": {}, \
                     \"alone_ops\": {}, \"alone_seconds\": {}, \"alone_per_ms\": {}}}",
                    r.reads,
                    r.attempts,
                    r.ordinary,
                    r.inexact,
                    r.alone_ops,
                    json_number(r.alone_seconds),
                    json_number(r.alone_per_ms()),
                )
            ),
        );
        out.push_str(if i + 1 < cells.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

/// The throughput of a cell, if the run has it.
fn rate(cells: &[CellResult], workload: &str, structure: &str, threads: usize) -> Option<f64> {
    find(cells, workload, structure, threads).map(CellResult::ops_per_sec)
}

fn find<'a>(
    cells: &'a [CellResult],
    workload: &str,
    structure: &str,
    threads: usize,
) -> Option<&'a CellResult> {
    cells
        .iter()
        .find(|c| c.workload == workload && c.structure == structure && c.threads == threads)
}

/// The line that gives a run's core-to-core handoff times ([`crate::probe::handoff_ns`], in
/// nanoseconds, in any order): the fastest and the median probe, and how many probes read over
/// twice the fastest (the machine was in a slower state then). `None` without probes (a
/// one-core machine). Sorts `handoffs`.
///
/// # Examples
///
/// ```
/// let line = commute_benches::report::machine_line(&mut [30.0, 26.0, 200.0]).unwrap();
/// assert!(line.contains("26 ns at best, 30 ns in the median of 3 probes"), "{line}");
/// assert!(line.contains("1 read over twice the best"), "{line}");
/// assert_eq!(commute_benches::report::machine_line(&mut []), None);
/// ```
pub fn machine_line(handoffs: &mut [f64]) -> Option<String> {
    handoffs.sort_by(f64::total_cmp);
    let fastest = *handoffs.first()?;
    let median = handoffs[(handoffs.len() - 1) / 2];
    let slow = handoffs.iter().filter(|&&ns| ns > 2.0 * fastest).count();
    Some(format!(
        "machine: a cache line moved between two cores in {fastest:.0} ns at best, {median:.0} ns \
         in the median of {} probes between workloads; {slow} read over twice the best (see \
         docs/benchmarks.md, \"Reading the table\")",
        handoffs.len(),
    ))
}

/// The conflict-free structure of each of the four workloads the targets name.
const OURS: [(&str, &str); 4] = [
    ("counter", "TCounter"),
    ("log", "TQueue"),
    ("map-disjoint", "TMap"),
    ("event", "commute"),
];

/// The runner issue's targets, checked against this run: at 2 threads (when the run has 1 and
/// 2 threads) and at 16 (when it has 1 and 16). Each line gives the measured figures and
/// whether the target held; a target whose cells the run lacks is left out. Empty if no target
/// applies.
///
/// # Examples
///
/// ```
/// use commute_benches::report::{CellResult, targets};
///
/// let cell = |structure, threads, ops| CellResult {
///     workload: "counter",
///     structure,
///     threads,
///     ops,
///     seconds: 1.0,
///     commits: Some(ops),
///     aborts: Some(0),
///     long_read: None,
/// };
/// let text = targets(&[cell("TCounter", 1, 100), cell("TCounter", 2, 190)]);
/// assert!(text.contains("TCounter/counter 1.90x: held"), "{text}");
/// ```
pub fn targets(cells: &[CellResult]) -> String {
    let has = |t: usize| cells.iter().any(|c| c.threads == t);
    let verdict = |ok: bool| if ok { "held" } else { "missed" };
    let mut out = String::new();
    // (thread count, its scaling target over 1 thread, TMap's target against DashMap)
    for (t, scaling, vs_dashmap) in [(2, 1.8, 0.5), (16, 12.0, 0.7)] {
        if !(has(1) && has(t)) {
            continue;
        }
        let mut lines = Vec::new();
        let mut line = |target: String, items: Vec<String>| {
            if !items.is_empty() {
                lines.push(format!("{target}: {}", items.join(", ")));
            }
        };
        if t == 2 {
            let apc = |w, s, ok: fn(f64) -> bool| {
                let apc = find(cells, w, s, t)?.aborts_per_commit()?;
                Some(format!("{s}/{w} {}: {}", ratio(apc), verdict(ok(apc))))
            };
            line(
                "aborts/commit <= 0.001".into(),
                OURS.iter()
                    .filter_map(|&(w, s)| apc(w, s, |a| a <= 0.001))
                    .collect(),
            );
            line(
                "naive aborts/commit >= 0.2".into(),
                [("counter", "naive-counter"), ("log", "naive-queue")]
                    .iter()
                    .filter_map(|&(w, s)| apc(w, s, |a| a >= 0.2))
                    .collect(),
            );
            line(
                ">= 5x fast-stm".into(),
                OURS.iter()
                    .filter_map(|&(w, s)| {
                        let x = rate(cells, w, s, t)? / rate(cells, w, "fast-stm", t)?;
                        Some(format!("{s}/{w} {x:.1}x: {}", verdict(x >= 5.0)))
                    })
                    .collect(),
            );
        }
        line(
            format!("{t} threads >= {scaling}x 1 thread"),
            OURS[..3]
                .iter()
                .filter_map(|&(w, s)| {
                    let x = rate(cells, w, s, t)? / rate(cells, w, s, 1)?;
                    Some(format!("{s}/{w} {x:.2}x: {}", verdict(x >= scaling)))
                })
                .collect(),
        );
        line(
            format!("TMap >= {vs_dashmap}x DashMap on map-uniform"),
            rate(cells, "map-uniform", "TMap", t)
                .zip(rate(cells, "map-uniform", "DashMap", t))
                .map(|(ours, dash)| {
                    let x = ours / dash;
                    format!("{x:.2}x: {}", verdict(x >= vs_dashmap))
                })
                .into_iter()
                .collect(),
        );
        if !lines.is_empty() {
            let _ = writeln!(out, "targets at {t} threads:");
            for line in lines {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(structure: &'static str, threads: usize, ops: u64, stm: bool) -> CellResult {
        CellResult {
            workload: "counter",
            structure,
            threads,
            ops,
            seconds: 0.5,
            commits: stm.then_some(ops),
            aborts: stm.then_some(ops / 10),
            long_read: None,
        }
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let text = json(&[
            cell("naive-counter", 1, 100, true),
            cell("AtomicU64", 2, 50, false),
        ]);
        let keys = [
            "workload",
            "structure",
            "threads",
            "ops",
            "seconds",
            "ops_per_sec",
            "commits",
            "aborts",
            "aborts_per_commit",
            "long_read",
        ];
        for line in text.lines().filter(|l| l.contains('{')) {
            let found: Vec<&str> = line
                .split('"')
                .skip(1)
                .step_by(2)
                .filter(|k| keys.contains(k))
                .collect();
            assert_eq!(found, keys, "{line}");
        }
        assert!(text.contains("\"aborts_per_commit\": 0.1"));
        assert!(text.contains(
            "\"commits\": null, \"aborts\": null, \"aborts_per_commit\": null, \"long_read\": null"
        ));
        assert!(text.trim_start().starts_with('[') && text.trim_end().ends_with(']'));
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn json_gives_a_long_read_cell_its_reader() {
        let reader = LongRead {
            reads: 3,
            attempts: 4,
            ordinary: 1,
            inexact: 0,
            alone_ops: 500,
            alone_seconds: 0.25,
        };
        let text = json(&[CellResult {
            workload: "long-read",
            long_read: Some(reader),
            ..cell("TMap", 2, 100, true)
        }]);
        assert!(
            text.contains(
                "\"long_read\": {\"reads\": 3, \"attempts\": 4, \"ordinary\": 1, \
                 \"inexact\": 0, \"alone_ops\": 500, \"alone_seconds\": 0.25, \
                 \"alone_per_ms\": 2}}"
            ),
            "{text}"
        );
        assert_eq!(long_read_table(&[cell("TMap", 2, 100, true)]), "");
    }

    #[test]
    fn table_shows_scaling_against_one_thread_and_blanks_for_locks() {
        let text = table(&[
            cell("TCounter", 1, 100, true),
            cell("TCounter", 2, 190, true),
        ]);
        assert!(text.lines().nth(3).unwrap().contains(" 1.90 "), "{text}");
        let locks = table(&[cell("AtomicU64", 1, 100, false)]);
        assert!(
            locks.lines().nth(2).unwrap().trim_end().ends_with(" 200"),
            "{locks}"
        );
    }

    #[test]
    fn targets_check_each_threshold_and_skip_what_the_run_lacks() {
        let mk = |workload, structure, threads, ops, aborts| CellResult {
            workload,
            structure,
            threads,
            ops,
            seconds: 1.0,
            commits: Some(ops),
            aborts: Some(aborts),
            long_read: None,
        };
        let cells = [
            mk("counter", "TCounter", 1, 100, 0),
            mk("counter", "TCounter", 2, 150, 0),
            mk("counter", "naive-counter", 2, 50, 15),
            mk("counter", "fast-stm", 2, 10, 5),
            mk("map-uniform", "TMap", 2, 60, 0),
            CellResult {
                commits: None,
                aborts: None,
                ..mk("map-uniform", "DashMap", 2, 100, 0)
            },
        ];
        let text = targets(&cells);
        assert!(text.starts_with("targets at 2 threads:"), "{text}");
        assert!(text.contains("TCounter/counter 0: held"), "{text}");
        assert!(
            text.contains("naive-counter/counter 0.3000: held"),
            "{text}"
        );
        assert!(text.contains("TCounter/counter 15.0x: held"), "{text}");
        assert!(text.contains("TCounter/counter 1.50x: missed"), "{text}");
        assert!(text.contains("map-uniform: 0.60x: held"), "{text}");
        assert!(
            !text.contains("TQueue") && !text.contains("16 threads"),
            "{text}"
        );
        assert_eq!(
            targets(&cells[..1]),
            "",
            "one thread count: nothing to check"
        );
    }
}
