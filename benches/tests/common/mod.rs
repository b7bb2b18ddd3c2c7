//! Helpers shared by the benches' test files (each test file is its own crate and includes this
//! module with `mod common;`, and uses some of them).
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` (a test's body) on a thread of its own and returns its result, or panics, naming the
/// test, if it has not finished after `secs` seconds: a test that can block (in `retry` or
/// `pop_wait`, joining threads that wait) then fails instead of hanging. A panic in `f` is
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

/// `command.output()`, but a child still running after `secs` seconds is killed and the test
/// fails, naming the command, instead of waiting for it for ever.
#[track_caller]
pub(crate) fn output_within(command: &mut Command, secs: u64) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    // Drain both pipes meanwhile, so that a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: {command:?} did not exit within {secs} s (killed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    }
}
