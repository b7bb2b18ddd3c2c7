//! `commute-server --state commute|mutex --workers N --port P [--write-timeout S]
//! [--next-job-max-wait S]`: serves until killed.

use std::sync::Arc;
use std::time::Duration;

use commute_server::{AppState, Mode, http};

fn main() {
    let mut mode = Mode::Commute;
    let mut workers = 2usize;
    let mut port = 8080u16;
    let mut limits = http::Limits::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--state" => mode = value().parse().unwrap_or_else(|e: String| usage(&e)),
            "--workers" => {
                workers = value()
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_WORKERS).contains(n))
                    .unwrap_or_else(|| usage(&format!("--workers N (1 to {MAX_WORKERS})")))
            }
            "--port" => port = value().parse().unwrap_or_else(|_| usage("--port P")),
            "--write-timeout" => limits.write_timeout = seconds(&flag, &value()),
            "--next-job-max-wait" => limits.next_job_max_wait = seconds(&flag, &value()),
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    // tokio panics when the system cannot start a worker thread, and unwinding then waits for
    // the workers it did start, which are never told to stop: the process hung. The panic is a
    // usage error, reported before any unwinding.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let why = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        usage(&format!("cannot start {workers} worker threads: {why}"))
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&format!("cannot start {workers} worker threads: {e}")));
    std::panic::set_hook(default_hook);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| usage(&format!("cannot bind port {port}: {e}")));
        let addr = listener.local_addr().expect("a bound address");
        println!(
            "listening on http://{addr} (state {}, {workers} worker threads)",
            mode.name()
        );
        http::serve_with(listener, Arc::new(AppState::new(mode)), limits).await;
    });
}

/// The most worker threads `--workers` takes: more would not serve faster. A number the
/// system cannot start (a limit on processes or memory) is a usage error too (see `main`).
const MAX_WORKERS: usize = 1024;

const USAGE: &str = "usage: commute-server [--state commute|mutex] [--workers N] \
     [--port P (0: any)] [--write-timeout SECONDS (30)] [--next-job-max-wait SECONDS (30)]";

/// A whole number of seconds, at least 1 (at most a day), for `flag`.
fn seconds(flag: &str, value: &str) -> Duration {
    value
        .parse()
        .ok()
        .filter(|s| (1..=86_400).contains(s))
        .map(Duration::from_secs)
        .unwrap_or_else(|| usage(&format!("{flag} SECONDS (1 to 86400)")))
}

/// Says what is wrong with the command line, and how to use it; exits with status 2.
fn usage(problem: &str) -> ! {
    eprintln!("commute-server: {problem}");
    eprintln!("{USAGE}");
    std::process::exit(2);
}
