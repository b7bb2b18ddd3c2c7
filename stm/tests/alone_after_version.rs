//! `TVar::commit_alone_retiring(seen, value, after, ..)`: the commit takes a version above
//! `after` (a version that published what `value` makes reachable), so that a transaction
//! that sees the new value at its read version also sees what that version published.

use commute_stm::{TVar, atomically};
use std::sync::Arc;

#[test]
fn a_commit_alone_after_a_version_is_seen_only_with_that_version() {
    // The versions of commits to `stamp`, published into it (each commit's version is above the
    // version it replaces, so the last is far above the clock, which nobody moved).
    let stamp = Arc::new(TVar::new(0u64));
    let after = {
        let stamp = stamp.clone();
        std::thread::spawn(move || {
            for _ in 0..64 {
                atomically(|tx| {
                    // SAFETY: the operation neither panics nor touches other memory.
                    unsafe { stamp.publish_on_commit(tx, |_, version| version) };
                    Ok(())
                });
            }
            stamp.load()
        })
        .join()
        .unwrap()
    };
    assert!(after > 0);

    let first = Box::into_raw(Box::new(1u64));
    let slot = Arc::new(TVar::new(first as usize as u64));
    let (old, seen) = slot.load_seen();
    let second = Box::into_raw(Box::new(2u64));
    // SAFETY: `old` was boxed, is unlinked by this commit, and nothing else frees it.
    unsafe {
        slot.commit_alone_retiring(
            seen,
            second as usize as u64,
            after,
            old as usize as *mut u64,
        )
    }
    .unwrap_or_else(|_| panic!("nobody else commits"));

    // Another thread (whose own commits it could take on trust) reads the new value: its
    // snapshot must then include the version `after`.
    let (value, rv) = {
        let slot = slot.clone();
        std::thread::spawn(move || atomically(|tx| Ok((slot.read(tx)?, tx.read_version()))))
            .join()
            .unwrap()
    };
    assert_eq!(value, second as usize as u64);
    assert!(
        rv >= after,
        "a transaction saw the value committed after version {after:#x} at read version {rv:#x}"
    );
    // SAFETY: the slot's box, reachable from nothing else now.
    drop(unsafe { Box::from_raw(slot.load() as usize as *mut u64) });
}
