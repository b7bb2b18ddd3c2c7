//! Helpers shared by the collections' test files (each test file is its own crate and includes
//! this module with `mod common;`).

use std::sync::{Arc, Barrier};

use commute::stats;

/// Runs `f(thread_index)` on `threads` threads started together; returns their results.
pub(crate) fn run_threads<R: Send + 'static>(
    threads: usize,
    f: impl Fn(usize) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (f, start) = (f.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                f(t)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Sums, over the threads that ran `f`, the conflict aborts of their transactions.
pub(crate) fn aborts_of(threads: usize, f: impl Fn(usize) + Send + Sync + 'static) -> u64 {
    run_threads(threads, move |t| {
        let before = stats::thread();
        f(t);
        (stats::thread() - before).aborts()
    })
    .into_iter()
    .sum()
}
