//! Versions that callers hand the public API (`Transaction::observe_version`,
//! `wait_for_readers`) move the commit clock. A lock word holds 61 bits of version: a clock
//! moved past them gave every later commit the same version, which read validation cannot tell
//! apart, so that read-modify-writes lost updates and replaced `TBox` values were freed under
//! their readers. Such versions, which no commit hands out, are refused with a panic.

use commute_stm::{TVar, atomically, wait_for_readers, wait_for_readers_up_to};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Two threads each add 1 to one variable `per` times by read-modify-write: every update must
/// land.
fn assert_no_update_lost(per: u64) {
    let counter = Arc::new(TVar::new(0u64));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let c = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..per {
                    atomically(|tx| c.modify(tx, |x| x + 1));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(counter.load(), 2 * per, "lost updates");
}

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("accepted a version above 2^60");
    match (
        payload.downcast_ref::<String>(),
        payload.downcast_ref::<&str>(),
    ) {
        (Some(s), _) => s.clone(),
        (_, Some(s)) => (*s).to_string(),
        _ => String::new(),
    }
}

#[test]
fn observe_version_refuses_a_version_no_commit_hands_out() {
    let message = panic_message(|| {
        atomically(|tx| tx.observe_version(1 << 62));
    });
    assert!(message.contains("observe_version"), "{message}");
    assert!(message.contains("2^60"), "{message}");
    assert_no_update_lost(50_000);
}

#[test]
fn wait_for_readers_refuses_a_version_no_commit_hands_out() {
    let message = panic_message(|| wait_for_readers(u64::MAX));
    assert!(message.contains("wait_for_readers"), "{message}");
    let message = panic_message(|| wait_for_readers_up_to((1 << 60) + 1, 0));
    assert!(message.contains("wait_for_readers"), "{message}");
    assert_no_update_lost(50_000);
}

#[test]
fn the_highest_version_taken_leaves_every_later_commit_room() {
    // Moves the clock of the whole process to 2^60 for good (the other tests do not mind).
    atomically(|tx| tx.observe_version(1 << 60));
    assert!(atomically(|tx| Ok(tx.read_version())) >= 1 << 60);
    wait_for_readers(1 << 60);
    assert_no_update_lost(50_000);
}
