//! Helpers shared by the core's test files (each test file is its own crate and includes this
//! module with `mod common;`).
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` (a test's body) on a thread of its own and returns its result, or panics, naming the
/// test, if it has not finished after `secs` seconds: a test that can block (in `retry`, on a
/// barrier, joining a thread that waits) then fails instead of hanging. A panic in `f` is
/// re-raised here with its own payload, so `#[should_panic(expected = ...)]` still works. On a
/// timeout the blocked thread is left behind; the test binary exits without it.
#[track_caller]
pub(crate) fn with_watchdog<R: Send + 'static>(
    secs: u64,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    let (done, finished) = mpsc::channel();
    let body = std::thread::Builder::new()
        .name(format!("{test} (body)"))
        .spawn(move || {
            let result = f();
            let _ = done.send(());
            result
        })
        .expect("spawn the test body");
    match finished.recv_timeout(Duration::from_secs(secs)) {
        // Finished, or panicked (the sender is dropped while unwinding).
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match body.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: {test} did not finish within {secs} s (blocked or livelocked?)")
        }
    }
}
