//! The documented panics of `#[track_caller]` functions name the caller's line, not the
//! library's: a panic raised inside a closure (`unwrap_or_else(|| panic!(..))`) is not reached
//! by `#[track_caller]`. Its own test binary: it sets the process's panic hook. (A reviewer's
//! test: two of the three pointed at `collections/src/counter.rs` before the fix.)

use std::panic::{UnwindSafe, catch_unwind};
use std::sync::Mutex;

use commute::TCounter;

/// Where the panics caught below were raised, as `file:line`.
static RAISED_AT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs `f`, which must panic, and returns the file of the panic's location.
fn file_of_panic(f: impl FnOnce() + UnwindSafe) -> String {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().expect("a panic location");
        RAISED_AT.lock().unwrap().push(at.file().to_owned());
    }));
    let result = catch_unwind(f);
    std::panic::set_hook(previous);
    assert!(result.is_err(), "it panics");
    RAISED_AT.lock().unwrap().pop().expect("the hook ran")
}

#[test]
fn the_counters_documented_panics_name_the_caller() {
    let here = file!();
    let below_zero = TCounter::with_shards(2);
    below_zero.atomic().decr();
    for (what, file) in [
        (
            "load_u64 below zero",
            file_of_panic(|| {
                let _ = below_zero.load_u64();
            }),
        ),
        (
            "with_shards(0)",
            file_of_panic(|| drop(TCounter::with_shards(0))),
        ),
        (
            "with_shards(usize::MAX)",
            file_of_panic(|| drop(TCounter::with_shards(usize::MAX))),
        ),
    ] {
        assert_eq!(file, here, "{what}");
    }
}
