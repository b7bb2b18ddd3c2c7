//! `conflicts`: conflict rates and throughput of commute's collections beside naive TVar-only
//! structures, lock-based structures and peer STM crates. `--help` for the options.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use commute_benches::args::{Options, USAGE};
use commute_benches::plot::write_svgs;
use commute_benches::report::{CellResult, json, table, targets};
use commute_benches::suite::{WORKLOADS, entries, select};

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
        "conflicts: {} cells ({} structures x threads {:?}), median of {} runs of {} ms each, on \
         {cores} cores{}",
        selected.len() * opts.threads.len(),
        selected.len(),
        opts.threads,
        opts.repeat,
        opts.duration.as_millis(),
        if cfg!(feature = "collections") {
            ""
        } else {
            " (commute's collections left out: build with --features collections)"
        },
    );
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
            let t = Instant::now();
            let mut reports = Vec::new();
            for entry in &here {
                if opts.report {
                    commute_stm::conflicts::enable();
                    commute_stm::conflicts::reset();
                }
                for &threads in &opts.threads {
                    let result = entry.run(threads, opts.duration);
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
            eprintln!(" {:.1} s", t.elapsed().as_secs_f64());
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
    print!("{}", table(&cells));
    let checked = targets(&cells);
    if !checked.is_empty() {
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

/// The run with the median throughput (the lower middle one for an even count).
fn median(mut runs: Vec<CellResult>) -> CellResult {
    runs.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
    let middle = (runs.len() - 1) / 2;
    runs.swap_remove(middle)
}
