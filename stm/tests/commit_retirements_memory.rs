//! What a commit without allocations of its own retires (the old versions of a plain word that
//! a snapshot reader no longer needs, let go of by the next commit of the variable) reaches the
//! thread's reclamation: a thread that only writes words, while snapshots come and go, keeps
//! no growing list of them. Alone in its test binary, with a counting allocator.

use commute_stm::{TVar, atomically, read_only, reclaim_retired};
use commute_test_support::{CountingAllocator, allocated, with_watchdog};
use std::sync::Arc;
use std::sync::mpsc;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// `n` rounds of: a snapshot opens on the reader thread, this thread commits `x` (keeping its
/// old value for the snapshot), the snapshot ends, this thread commits `x` again (letting the
/// kept version go).
fn rounds(
    x: &TVar<u64>,
    n: u64,
    open: &mpsc::Sender<bool>,
    registered: &mpsc::Receiver<()>,
    close: &mpsc::Sender<()>,
    closed: &mpsc::Receiver<()>,
) {
    for i in 0..n {
        open.send(true).unwrap();
        registered.recv().unwrap();
        atomically(|tx| {
            x.write(tx, 2 * i + 1);
            Ok(())
        });
        close.send(()).unwrap();
        closed.recv().unwrap();
        atomically(|tx| {
            x.write(tx, 2 * i + 2);
            Ok(())
        });
    }
}

#[test]
fn versions_let_go_of_by_commits_of_words_are_reclaimed() {
    with_watchdog(60, || {
        let x = Arc::new(TVar::new(0u64));
        let (open, open_rx) = mpsc::channel::<bool>();
        let (registered_tx, registered) = mpsc::channel();
        let (close, close_rx) = mpsc::channel::<()>();
        let (closed_tx, closed) = mpsc::channel();
        let reader = {
            let x = x.clone();
            std::thread::spawn(move || {
                while open_rx.recv() == Ok(true) {
                    let before = x.load();
                    let seen = read_only(|tx| {
                        let v = x.read(tx)?;
                        registered_tx.send(()).unwrap();
                        close_rx.recv().unwrap();
                        // The commit made meanwhile is after the snapshot.
                        assert_eq!(x.read(tx)?, v);
                        Ok(v)
                    });
                    assert_eq!(seen, before);
                    closed_tx.send(()).unwrap();
                }
            })
        };
        // Warm up: every buffer at its working size.
        rounds(&x, 3_000, &open, &registered, &close, &closed);
        reclaim_retired();
        let before = allocated();
        rounds(&x, 3_000, &open, &registered, &close, &closed);
        reclaim_retired();
        let after = allocated();
        open.send(false).unwrap();
        reader.join().unwrap();
        assert_eq!(x.load(), 6_000);
        let grown = after.saturating_sub(before);
        assert!(
            grown < 64 * 1024,
            "3,000 rounds left {grown} bytes behind: versions let go of by commits of words \
             never reached reclamation"
        );
    });
}
