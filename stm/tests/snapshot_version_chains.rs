//! Several snapshot readers registered between commits of the same variables, each reading
//! only once all the commits are done: each must see the state of the moment it registered,
//! which for the older readers lies deep in the variables' chains of kept versions.

use commute_stm::{TBox, TVar, atomically, read_only, reclaim_retired};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

const READERS: u64 = 5;

#[test]
fn each_of_several_snapshots_reads_its_own_version_of_a_long_chain() {
    with_watchdog(30, || {
        let live = Arc::new(AtomicUsize::new(0));
        let x = Arc::new(TVar::new(0u64));
        let y = Arc::new(TVar::new(0u64)); // written every other round
        let p = Arc::new(TVar::new(0u64)); // published to (`publish_on_commit`) every round
        let b = Arc::new(TBox::new(Counted::new(0, &live)));
        let mut readers = Vec::new();
        for i in 0..READERS {
            let (registered_tx, registered_rx) = mpsc::channel();
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let (rx, ry, rb, rp) = (x.clone(), y.clone(), b.clone(), p.clone());
            let handle = std::thread::spawn(move || {
                read_only(|tx| {
                    assert!(tx.is_snapshot(), "reader {i} left its snapshot");
                    let _ = registered_tx.send(());
                    if release_rx.recv().is_err() {
                        return Ok(None);
                    }
                    // Read only now, after every later commit: from the kept versions.
                    Ok(Some((
                        rx.read(tx)?,
                        ry.read(tx)?,
                        rb.read(tx)?.value(),
                        rp.read(tx)?,
                    )))
                })
            });
            registered_rx.recv().expect("the reader registers");
            readers.push((i, handle, release_tx));
            // A commit after reader `i` (and before reader `i + 1`).
            atomically(|tx| {
                x.write(tx, i + 1);
                if i % 2 == 1 {
                    y.write(tx, i + 1);
                }
                b.write(tx, Counted::new(i + 1, &live));
                // SAFETY: the operation neither panics nor touches other memory.
                unsafe { p.publish_on_commit(tx, |old, _version| old + 1) };
                Ok(())
            });
            reclaim_retired();
        }
        // The oldest readers read first, then the others; each sees its registration's state.
        for (i, handle, release) in readers {
            release.send(()).unwrap();
            let seen = handle.join().unwrap().expect("released");
            // Sequential model: reader `i` registered after commits 1..=i.
            // Commit `k` (1-based) wrote y = k if `k - 1` is odd.
            let model_y = (1..=i).filter(|k| (k - 1) % 2 == 1).max().unwrap_or(0);
            assert_eq!(
                seen,
                (i, model_y, i, i),
                "reader {i}: (x, y, box, published) of its snapshot"
            );
        }
        assert_eq!(x.load(), READERS);
        assert_eq!(p.load(), READERS);
        drop(b);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while live.load(Ordering::Relaxed) != 0 {
            assert!(std::time::Instant::now() < deadline, "kept versions leaked");
            reclaim_retired();
            std::thread::yield_now();
        }
    });
}
