//! `soak`: every workload of commute at once, with injected panics, checked continuously and
//! at the end. `--help` for the options; docs/reliability.md for what it checks and the figures.

use std::process::ExitCode;

use commute_benches::soak::args::{SoakOptions, USAGE};
use commute_benches::soak::memory::CountingAlloc;
use commute_benches::soak::run;

// Counts live heap bytes for the exact leak check at the end of the run.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = match SoakOptions::parse(std::env::args().skip(1), cores) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let report = run(&opts);
    if report.violations > 0 {
        for message in &report.messages {
            eprintln!("soak: violation: {message}");
        }
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
