//! `apps`: the application suite (labyrinth, kmeans, btree, vacation, PyPy's conflict tests)
//! on sequential, global-lock and commute implementations, in one table. `--help` for the
//! options; docs/benchmarks.md, "Application suite", for what each measures.

use std::process::ExitCode;

use commute_benches::apps::suite::{
    AppsOptions, USAGE, best_of, json, progress_line, run_suite, table,
};

fn main() -> ExitCode {
    let opts = match AppsOptions::parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("apps: {message}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "apps: preset {}, threads {:?}, seed {}, PyPy tests {} s each, {}, {cores} cores\n",
        opts.preset.name,
        opts.threads,
        opts.seed,
        opts.seconds,
        if opts.reps == 1 {
            "one run".to_string()
        } else {
            format!("best of {} runs", opts.reps)
        }
    );
    let runs: Vec<_> = (0..opts.reps)
        .map(|_| run_suite(&opts, progress_line))
        .collect();
    let rows = best_of(runs);
    print!("{}", table(&rows));
    if let Some(path) = &opts.json {
        let text = json(&opts, &rows);
        if path.as_os_str() == "-" {
            print!("\n{text}");
        } else if let Err(e) = std::fs::write(path, text) {
            eprintln!("apps: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            eprintln!("apps: wrote {}", path.display());
        }
    }
    if rows.iter().all(|r| r.check.is_ok()) {
        ExitCode::SUCCESS
    } else {
        println!("\napps: a check FAILED");
        ExitCode::FAILURE
    }
}
