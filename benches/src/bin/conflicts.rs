//! `conflicts`: conflict rates and throughput of commute's collections beside naive TVar-only
//! structures, lock-based structures and peer STM crates. `--help` for the options.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use commute_benches::args::{Options, USAGE};
use commute_benches::plot::write_svgs;
use commute_benches::probe::handoff_ns;
use commute_benches::report::{
    CellResult, LongRead, json, long_read_table, machine_line, table, targets,
};
use commute_benches::suite::{Entry, WORKLOADS, entries, select};

fn main() -> ExitCode {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = match Options::parse(std::env::args().skip(1), cores) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("conflicts: {message}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if opts.list {
        let all = entries();
        for (workload, about) in WORKLOADS {
            let names: Vec<&str> = all
                .iter()
                .filter(|e| e.workload == workload)
                .map(|e| e.structure)
                .collect();
            println!(
                "{workload:<13} {about}\n{:<13} structures: {}",
                "",
                names.join(", ")
            );
        }
        return ExitCode::SUCCESS;
    }
    if opts.child {
        return match run_child(&opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("conflicts (child): {message}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&opts, cores) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("conflicts: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Options, cores: usize) -> Result<(), String> {
    let selected = select(&opts.workloads, &opts.structures)?;
    let workloads: Vec<&str> = WORKLOADS
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| selected.iter().any(|e| e.workload == *w))
        .collect();
    eprintln!(
        "conflicts: {} cells ({} structures x threads {:?}), {} of {} ms each, on {cores} cores{}",
        selected.len() * opts.threads.len(),
        selected.len(),
        opts.threads,
        if opts.repeat == 1 {
            "one run".to_string()
        } else {
            format!("median of {} runs", opts.repeat)
        },
        opts.duration.as_millis(),
        if cfg!(feature = "collections") {
            ""
        } else {
            " (commute's collections left out: build with --features collections)"
        },
    );
    // Core-to-core handoff times, probed before each workload of each round and at the end.
    let mut handoffs: Vec<f64> = Vec::new();
    let started = Instant::now();
    // runs[cell] holds the cell's runs, one per round; cells in suite order. Rounds go through
    // the whole suite in turn, so that a burst of outside noise (seconds long on a shared
    // machine) spoils at most one run of a cell, not all of them.
    let mut runs: Vec<Vec<CellResult>> = Vec::new();
    for round in 0..opts.repeat {
        let mut cell = 0;
        let last_round = round + 1 == opts.repeat;
        for (i, workload) in workloads.iter().enumerate() {
            let here: Vec<_> = selected
                .iter()
                .filter(|e| e.workload == *workload)
                .collect();
            eprint!(
                "[{}{}/{}] {workload:<12} {} structures x {} thread counts ...",
                if opts.repeat > 1 {
                    format!("round {}/{}, ", round + 1, opts.repeat)
                } else {
                    String::new()
                },
                i + 1,
                workloads.len(),
                here.len(),
                opts.threads.len()
            );
            let _ = std::io::stderr().flush();
            let handoff = handoff_ns(PROBE);
            handoffs.extend(handoff);
            let t = Instant::now();
            let mut reports = Vec::new();
            for entry in &here {
                if opts.report {
                    commute_stm::conflicts::enable();
                    commute_stm::conflicts::reset();
                }
                let results = if opts.in_process || opts.report {
                    opts.threads
                        .iter()
                        .map(|&threads| entry.run(threads, opts.duration))
                        .collect()
                } else {
                    run_in_child(entry, opts)?
                };
                for result in results {
                    match runs.get_mut(cell) {
                        Some(cell_runs) => cell_runs.push(result),
                        None => runs.push(vec![result]),
                    }
                    cell += 1;
                }
                if opts.report && last_round {
                    let report = commute_stm::conflicts::report();
                    // Only commute-based structures go through the profiler.
                    if report.commits > 0 {
                        reports.push((entry.structure, report));
                    }
                }
            }
            let probe = handoff.map_or(String::new(), |ns| format!(" (handoff {ns:.0} ns)"));
            eprintln!(" {:.1} s{probe}", t.elapsed().as_secs_f64());
            for (structure, report) in reports {
                println!(
                    "conflict report: {workload} / {structure} (threads {:?})",
                    opts.threads
                );
                for line in report.to_string().lines().take(6) {
                    println!("    {line}");
                }
                println!();
            }
        }
    }
    let cells: Vec<CellResult> = runs.into_iter().map(median).collect();
    eprintln!(
        "conflicts: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    handoffs.extend(handoff_ns(PROBE));
    print!("{}", table(&cells));
    let long_reads = long_read_table(&cells);
    if !long_reads.is_empty() {
        print!("\n{long_reads}");
    }
    if let Some(line) = machine_line(&mut handoffs) {
        println!("\n{line}");
    }
    let checked = targets(&cells);
    if opts.quick {
        println!("\ntargets: not checked (a --quick run is too short to tell)");
    } else if !checked.is_empty() {
        print!("\n{checked}");
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, json(&cells))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("conflicts: wrote {}", path.display());
    }
    if let Some(dir) = &opts.svg {
        let files = write_svgs(&cells, dir)?;
        eprintln!(
            "conflicts: wrote {} plots in {}",
            files.len(),
            dir.display()
        );
    }
    Ok(())
}

/// How long each core-to-core probe runs (before every workload of every round, and at the end).
const PROBE: Duration = Duration::from_millis(20);

/// The run with the median throughput (the lower middle one for an even count).
fn median(mut runs: Vec<CellResult>) -> CellResult {
    runs.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
    let middle = (runs.len() - 1) / 2;
    runs.swap_remove(middle)
}

/// Runs `entry` at every thread count of `opts`, once, in a child process of this runner, and
/// reads its cells back: each structure starts from a fresh process, as a program of its own
/// would. (Run one after the other in one process, some peer crates left the heap in a state
/// that slowed the next structures' cells by a fifth.)
fn run_in_child(entry: &Entry, opts: &Options) -> Result<Vec<CellResult>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let threads: Vec<String> = opts.threads.iter().map(|t| t.to_string()).collect();
    let output = std::process::Command::new(&exe)
        .args(["--child", "--workload", entry.workload])
        .args(["--structure", entry.structure])
        .args(["--threads", &threads.join(",")])
        .args(["--duration-ms", &opts.duration.as_millis().to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} on {} failed ({}):\n{}",
            entry.workload,
            entry.structure,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let cells: Vec<CellResult> = text
        .lines()
        .filter_map(|line| parse_cell_line(entry, line))
        .collect();
    if cells.len() != opts.threads.len() {
        return Err(format!(
            "{} on {}: the child reported {} cells, not {}:\n{text}",
            entry.workload,
            entry.structure,
            cells.len(),
            opts.threads.len()
        ));
    }
    Ok(cells)
}

/// The child's side: run the selected entries once at every thread count, print each cell as
/// a line for the parent.
fn run_child(opts: &Options) -> Result<(), String> {
    for entry in select(&opts.workloads, &opts.structures)? {
        for &threads in &opts.threads {
            let c = entry.run(threads, opts.duration);
            let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            let long_read = c.long_read.map_or_else(
                || "-".to_string(),
                |r| {
                    format!(
                        "{},{},{},{},{},{}",
                        r.reads, r.attempts, r.ordinary, r.inexact, r.alone_ops, r.alone_seconds
                    )
                },
            );
            println!(
                "cell {} {} {} {} {} {} {} {long_read}",
                c.workload,
                c.structure,
                c.threads,
                c.ops,
                c.seconds,
                opt(c.commits),
                opt(c.aborts)
            );
        }
    }
    Ok(())
}

/// A child's line for `entry`: `cell <workload> <structure> <threads> <ops> <seconds>
/// <commits|-> <aborts|-> <long-read|->`, the last a [`LongRead`] as its six fields joined by
/// commas; `None` for other lines and other entries.
fn parse_cell_line(entry: &Entry, line: &str) -> Option<CellResult> {
    let mut words = line.split(' ');
    if words.next()? != "cell" || words.next()? != entry.workload {
        return None;
    }
    if words.next()? != entry.structure {
        return None;
    }
    let number = |w: Option<&str>| -> Option<Option<u64>> {
        match w? {
            "-" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    let threads = words.next()?.parse().ok()?;
    let ops = words.next()?.parse().ok()?;
    let seconds = words.next()?.parse().ok()?;
    let commits = number(words.next())?;
    let aborts = number(words.next())?;
    let long_read = match words.next()? {
        "-" => None,
        fields => {
            let mut fields = fields.split(',');
            let mut count = || fields.next()?.parse().ok();
            Some(LongRead {
                reads: count()?,
                attempts: count()?,
                ordinary: count()?,
                inexact: count()?,
                alone_ops: count()?,
                alone_seconds: fields.next()?.parse().ok()?,
            })
        }
    };
    Some(CellResult {
        workload: entry.workload,
        structure: entry.structure,
        threads,
        ops,
        seconds,
        commits,
        aborts,
        long_read,
    })
}
