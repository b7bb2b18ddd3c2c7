//! The documented panics of `#[track_caller]` functions name the caller's line, not the
//! library's: a panic raised inside a closure (`unwrap_or_else(|| panic!(..))`) is not reached
//! by `#[track_caller]`. Its own test binary: it sets the process's panic hook. (A reviewer's
//! test: two of the three pointed at `collections/src/counter.rs` before the fix.)

use std::panic::{UnwindSafe, catch_unwind};
use std::sync::Mutex;

use std::time::Duration;

use commute::{TBoundedQueue, TCounter, TMap, TQueue, TSet, atomically};

/// Where the panics caught below were raised, as `file:line`.
static RAISED_AT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// One test at a time swaps the process's panic hook.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `f`, which must panic, and returns the file of the panic's location, or this file
/// where the message names a line of it (the panic of a transaction begun inside another is
/// raised behind the thread context's closure, which `#[track_caller]` does not cross: its
/// message names the caller).
fn file_of_panic(f: impl FnOnce() + UnwindSafe) -> String {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().expect("a panic location");
        let payload = info.payload();
        let message = (payload.downcast_ref::<String>().map(String::as_str))
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let here = file!();
        let named = if message.contains(&format!("at {here}:")) {
            here
        } else {
            at.file()
        };
        RAISED_AT.lock().unwrap().push(named.to_owned());
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

/// Runs `f` inside a transaction, where every one-call form refuses to run, and returns the
/// file its panic names.
fn file_of_nested(f: impl Fn() + std::panic::RefUnwindSafe) -> String {
    file_of_panic(|| {
        atomically(|_| {
            f();
            Ok(())
        })
    })
}

#[test]
fn the_one_call_forms_name_the_caller() {
    let here = file!();
    let q = TQueue::<u8>::new();
    let b = TBoundedQueue::<u8>::with_capacity(4);
    let c = TCounter::new();
    let s = TSet::<u8>::new();
    let m = TMap::<u8, u8>::new();
    let wait = Duration::from_millis(1);
    let nested: Vec<(&str, String)> = vec![
        ("queue push", file_of_nested(|| q.atomic().push(1))),
        (
            "queue take",
            file_of_nested(|| {
                let _ = q.atomic().take();
            }),
        ),
        (
            "queue take_wait",
            file_of_nested(|| {
                let _ = q.atomic().take_wait();
            }),
        ),
        (
            "queue len",
            file_of_nested(|| {
                let _ = q.atomic().len();
            }),
        ),
        (
            "queue is_empty",
            file_of_nested(|| {
                let _ = q.atomic().is_empty();
            }),
        ),
        ("queue close", file_of_nested(|| q.atomic().close())),
        (
            "queue is_closed",
            file_of_nested(|| {
                let _ = q.atomic().is_closed();
            }),
        ),
        (
            "queue pop",
            file_of_nested(|| {
                let _ = q.atomic().pop();
            }),
        ),
        (
            "queue send",
            file_of_nested(|| {
                let _ = q.atomic().send(1);
            }),
        ),
        (
            "queue recv",
            file_of_nested(|| {
                let _ = q.atomic().recv();
            }),
        ),
        (
            "queue recv_timeout",
            file_of_nested(|| {
                let _ = q.atomic().recv_timeout(wait);
            }),
        ),
        (
            "queue drain",
            file_of_nested(|| {
                let _ = q.atomic().drain();
            }),
        ),
        (
            "queue peek",
            file_of_nested(|| {
                let _ = q.atomic().peek();
            }),
        ),
        (
            "queue iter",
            file_of_nested(|| {
                let _ = q.atomic().iter();
            }),
        ),
        (
            "bounded take",
            file_of_nested(|| {
                let _ = b.atomic().take();
            }),
        ),
        (
            "bounded take_wait",
            file_of_nested(|| {
                let _ = b.atomic().take_wait();
            }),
        ),
        (
            "bounded len",
            file_of_nested(|| {
                let _ = b.atomic().len();
            }),
        ),
        (
            "bounded is_empty",
            file_of_nested(|| {
                let _ = b.atomic().is_empty();
            }),
        ),
        ("bounded close", file_of_nested(|| b.atomic().close())),
        (
            "bounded is_closed",
            file_of_nested(|| {
                let _ = b.atomic().is_closed();
            }),
        ),
        (
            "bounded is_full",
            file_of_nested(|| {
                let _ = b.atomic().is_full();
            }),
        ),
        ("bounded push", file_of_nested(|| b.atomic().push(1))),
        (
            "bounded try_push",
            file_of_nested(|| {
                let _ = b.atomic().try_push(1);
            }),
        ),
        (
            "bounded pop",
            file_of_nested(|| {
                let _ = b.atomic().pop();
            }),
        ),
        (
            "bounded send",
            file_of_nested(|| {
                let _ = b.atomic().send(1);
            }),
        ),
        (
            "bounded recv",
            file_of_nested(|| {
                let _ = b.atomic().recv();
            }),
        ),
        (
            "bounded recv_timeout",
            file_of_nested(|| {
                let _ = b.atomic().recv_timeout(wait);
            }),
        ),
        (
            "bounded drain",
            file_of_nested(|| {
                let _ = b.atomic().drain();
            }),
        ),
        (
            "bounded peek",
            file_of_nested(|| {
                let _ = b.atomic().peek();
            }),
        ),
        (
            "bounded iter",
            file_of_nested(|| {
                let _ = b.atomic().iter();
            }),
        ),
        ("counter add", file_of_nested(|| c.atomic().add(1))),
        ("counter incr", file_of_nested(|| c.atomic().incr())),
        ("counter decr", file_of_nested(|| c.atomic().decr())),
        (
            "counter get",
            file_of_nested(|| {
                let _ = c.atomic().get();
            }),
        ),
        (
            "set insert",
            file_of_nested(|| {
                let _ = s.atomic().insert(1);
            }),
        ),
        (
            "set remove",
            file_of_nested(|| {
                let _ = s.atomic().remove(&1);
            }),
        ),
        (
            "set toggle",
            file_of_nested(|| {
                let _ = s.atomic().toggle(1);
            }),
        ),
        (
            "set contains",
            file_of_nested(|| {
                let _ = s.atomic().contains(&1);
            }),
        ),
        (
            "set len",
            file_of_nested(|| {
                let _ = s.atomic().len();
            }),
        ),
        (
            "set is_empty",
            file_of_nested(|| {
                let _ = s.atomic().is_empty();
            }),
        ),
        (
            "set iter",
            file_of_nested(|| {
                let _ = s.atomic().iter();
            }),
        ),
        ("set clear", file_of_nested(|| s.atomic().clear())),
        ("set retain", file_of_nested(|| s.atomic().retain(|_| true))),
        (
            "map get",
            file_of_nested(|| {
                let _ = m.atomic().get(&1);
            }),
        ),
        (
            "map insert",
            file_of_nested(|| {
                let _ = m.atomic().insert(1, 1);
            }),
        ),
        (
            "map insert_if_absent",
            file_of_nested(|| {
                let _ = m.atomic().insert_if_absent(1, 1);
            }),
        ),
        (
            "map remove",
            file_of_nested(|| {
                let _ = m.atomic().remove(&1);
            }),
        ),
        (
            "map upsert",
            file_of_nested(|| m.atomic().upsert(1, || 0, |v| *v += 1)),
        ),
        (
            "map alter",
            file_of_nested(|| m.atomic().alter(1, |_| (commute::Change::Keep, ()))),
        ),
        (
            "map len",
            file_of_nested(|| {
                let _ = m.atomic().len();
            }),
        ),
        (
            "map is_empty",
            file_of_nested(|| {
                let _ = m.atomic().is_empty();
            }),
        ),
        (
            "map iter",
            file_of_nested(|| {
                let _ = m.atomic().iter();
            }),
        ),
        (
            "map keys",
            file_of_nested(|| {
                let _ = m.atomic().keys();
            }),
        ),
        (
            "map values",
            file_of_nested(|| {
                let _ = m.atomic().values();
            }),
        ),
        ("map clear", file_of_nested(|| m.atomic().clear())),
        (
            "map retain",
            file_of_nested(|| m.atomic().retain(|_, _| true)),
        ),
        (
            "counter load",
            file_of_nested(|| {
                let _ = c.load();
            }),
        ),
        (
            "queue extend",
            file_of_nested(|| TQueue::<u8>::new().extend([1])),
        ),
        (
            "bounded extend",
            file_of_nested(|| TBoundedQueue::<u8>::with_capacity(1).extend([1])),
        ),
        (
            "set extend",
            file_of_nested(|| TSet::<u8>::new().extend([1])),
        ),
        (
            "map extend",
            file_of_nested(|| TMap::<u8, u8>::new().extend([(1, 1)])),
        ),
        ("atomically", file_of_nested(|| atomically(|_| Ok(())))),
        (
            "read_only",
            file_of_nested(|| commute::read_only(|_| Ok(()))),
        ),
    ];
    let wrong: Vec<String> = nested
        .into_iter()
        .filter(|(_, file)| file != here)
        .map(|(what, file)| format!("{what}: {file}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "named the library, not the caller: {wrong:#?}"
    );
}

#[test]
fn the_closed_queues_panics_name_the_caller() {
    let here = file!();
    let closed_queue = || {
        let q = TQueue::<u8>::new();
        q.atomic().close();
        q
    };
    let closed_bounded = || {
        let b = TBoundedQueue::<u8>::with_capacity(2);
        b.atomic().close();
        b
    };
    let (q, b) = (closed_queue(), closed_bounded());
    let wrong = [
        ("queue push", file_of_panic(|| q.atomic().push(1))),
        (
            "queue take_wait",
            file_of_panic(|| {
                let _ = q.atomic().take_wait();
            }),
        ),
        (
            "queue pop_wait",
            file_of_panic(|| {
                let _ = q.atomic().pop_wait();
            }),
        ),
        ("queue extend", file_of_panic(|| closed_queue().extend([1]))),
        ("bounded push", file_of_panic(|| b.atomic().push(1))),
        (
            "bounded take_wait",
            file_of_panic(|| {
                let _ = b.atomic().take_wait();
            }),
        ),
        (
            "bounded pop_wait",
            file_of_panic(|| {
                let _ = b.atomic().pop_wait();
            }),
        ),
        (
            "bounded extend",
            file_of_panic(|| closed_bounded().extend([1])),
        ),
    ]
    .into_iter()
    .filter(|(_, file)| file != here)
    .map(|(what, file)| format!("{what}: {file}"))
    .collect::<Vec<_>>();
    assert!(
        wrong.is_empty(),
        "named the library, not the caller: {wrong:#?}"
    );
}
