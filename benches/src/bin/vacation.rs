//! `vacation`: STAMP's vacation on a sequential, a global-lock and a commute manager, with
//! STAMP's end-of-run checks on every final state. `--help` for the options;
//! docs/benchmarks.md, "vacation", for what it measures.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use commute_benches::probe::handoff_ns;
use commute_benches::vacation::args::{USAGE, VacationOptions};
use commute_benches::vacation::report::{heading, json, summarise, table};
use commute_benches::vacation::{Implementation, RunResult, run_once};

fn main() -> ExitCode {
    let opts = match VacationOptions::parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("vacation: {message}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    println!("{}\n", heading(&opts));
    let load_before = load_average();
    let handoff = handoff_ns(Duration::from_millis(20));
    // Repetitions go round the implementations in turn, so that a burst of outside noise
    // spoils one run of each, not all runs of one.
    let mut runs: Vec<RunResult> = Vec::new();
    for rep in 0..opts.reps {
        eprint!("[run {}/{}]", rep + 1, opts.reps);
        for &implementation in &opts.implementations {
            let run = run_once(implementation, &opts.params, opts.seed);
            eprint!(" {} {:.3} s", implementation.name(), run.seconds);
            let _ = std::io::stderr().flush();
            runs.push(run);
        }
        eprintln!();
    }
    let summaries = summarise(&opts.implementations, &runs);
    print!("{}", table(&summaries));
    println!("\n{}", machine_line(load_before, load_average(), handoff));
    let mut failed = false;
    for run in runs.iter().filter(|r| !r.check.ok()) {
        failed = true;
        println!(
            "\ncheck FAILED: {} ({} threads): {} violations",
            run.implementation.name(),
            run.threads,
            run.check.violations
        );
        for message in &run.check.messages {
            println!("    {message}");
        }
    }
    if !compare_states(&opts, &runs) {
        failed = true;
    }
    if let Some(path) = &opts.json {
        let text = json(&opts, &summaries);
        if path.as_os_str() == "-" {
            print!("\n{text}");
        } else if let Err(e) = std::fs::write(path, text) {
            eprintln!("vacation: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            eprintln!("vacation: wrote {}", path.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Compares final states where they must be equal: every run with one client (all
/// implementations run the same stream in the same order), and `sequential`'s runs always (it
/// runs the clients one after another). Prints what it compared; false on a difference.
fn compare_states(opts: &VacationOptions, runs: &[RunResult]) -> bool {
    let deterministic: Vec<&RunResult> = runs
        .iter()
        .filter(|r| opts.params.clients == 1 || r.implementation == Implementation::Sequential)
        .collect();
    let Some(first) = deterministic.first() else {
        println!(
            "\nfinal states: not compared (-c{}, no sequential run)",
            opts.params.clients
        );
        return true;
    };
    let c = &first.check;
    let summary = format!(
        "{} cars, {} flights, {} rooms, {} customers holding {} reservations",
        c.rows[0], c.rows[1], c.rows[2], c.customers, c.reservations
    );
    let differing: Vec<&&RunResult> = deterministic
        .iter()
        .filter(|r| !r.check.same_state(c))
        .collect();
    if differing.is_empty() {
        if opts.params.clients == 1 {
            println!(
                "\nfinal states: identical in every run of {} ({summary})",
                names(&opts.implementations)
            );
        } else {
            println!(
                "\nfinal states: sequential's runs identical ({summary}); the others not compared \
                 (-c{}: their clients interleave differently in each run)",
                opts.params.clients
            );
        }
        return true;
    }
    println!(
        "\nfinal states DIFFER: {} ran the same actions and ended differently:",
        names(&opts.implementations)
    );
    for r in deterministic {
        let c = &r.check;
        println!(
            "    {:<12} rows {:?}, {} customers, {} reservations, digest {:016x}",
            r.implementation.name(),
            c.rows,
            c.customers,
            c.reservations,
            c.digest
        );
    }
    false
}

/// The machine's state around the run: cores, load average before and after (Linux), and how
/// long a cache line took to move between two cores (the conflicts runner's probe). On a shared
/// machine the load says whether the client threads had the cores to themselves.
fn machine_line(before: Option<String>, after: Option<String>, handoff: Option<f64>) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut line = format!("machine: {cores} cores");
    if let (Some(before), Some(after)) = (before, after) {
        line += &format!(", load average {before} before the runs and {after} after");
    }
    match handoff {
        // Tens of nanoseconds when two cores are free; microseconds and more when the probe's
        // two threads could not run at once (other processes held a core).
        Some(ns) if ns < 1_000.0 => {
            line += &format!(", a cache line moved between two cores in {ns:.0} ns");
        }
        Some(_) => line += ", two threads could not get two cores at once (the probe timed out)",
        None => {}
    }
    line
}

/// The 1-minute load average, where the system tells it.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(String::from)
}

fn names(implementations: &[Implementation]) -> String {
    let names: Vec<&str> = implementations.iter().map(|i| i.name()).collect();
    names.join(", ")
}
