//! Loom models of read-only snapshot transactions (`read_only`): writers keep the values they
//! replace for a registered reader, which reads them in its one attempt, and nothing it reads
//! is freed under it although it does not pin.
#![cfg(loom)]

use commute::{TBox, TQueue, TVar, atomically, read_only, reclaim_retired};
use commute_loom_tests::{
    Payload, capped_builder, free_kept_payloads, run_model, run_model_with, settle,
    spawn_payload_writer,
};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// A writer replaces a box's value twice while a snapshot reader reads it twice.
///
/// Catches a value freed while the unpinned reader still borrows it (a commit that retires it
/// instead of keeping it for the reader), a snapshot that moves between two reads (a version
/// not kept, or kept after the new value was stored), a reader that aborts or waits on the
/// writer for ever, and kept values never freed.
#[test]
fn snapshot_reads_a_replaced_box() {
    run_model("snapshot_reads_a_replaced_box", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = Arc::new(TBox::new(Payload::new(0, &drops)));
        let writer = spawn_payload_writer(&cell, &drops, 2);
        let mut attempts = 0;
        let (first, second) = read_only(|tx| {
            attempts += 1;
            let held = cell.read(tx)?;
            let first = held.id();
            thread::yield_now();
            let second = cell.read(tx)?.id();
            // Still alive, and unchanged.
            assert_eq!(held.id(), first);
            Ok((first, second))
        });
        assert_eq!(attempts, 1);
        assert_eq!(first, second, "the snapshot moved");
        writer.join().unwrap();
        // With no reader left, the next commit lets go of what was kept.
        free_kept_payloads(&cell, &drops, 3);
    });
}

/// A writer replaces a box's value three times while two snapshot readers, each on its own
/// thread, read it twice.
///
/// Every other model registers one reader, so only this one reaches the paths that several
/// give the version list: a reader that walks past a newer reader's version to its own (the
/// older one registered before the first commit, the newer one between two commits), and a
/// commit that cuts off only the versions below the oldest reader still registered, keeping
/// the newer one's (`keep` in `history.rs`). Catches a cut that frees a version a registered
/// reader can still reach (the payload's loom cell reports the read of a freed value), a
/// reader that takes a version stamped below its epoch (its snapshot moves between its two
/// reads), and kept values never freed once both readers have left: a cut that keeps only the
/// head of the list, and a reader that takes the newest version instead of walking to its own,
/// each fail it (the first as a null link followed, the second as a snapshot that moved), and
/// no other model. Three threads of several steps each: at a preemption bound of 2 it ran past
/// 13 minutes; at 1, 68,981 executions in about 8 s.
#[test]
fn two_snapshots_read_a_box_replaced_under_both() {
    run_model_with(
        "two_snapshots_read_a_box_replaced_under_both",
        capped_builder(1),
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let cell = Arc::new(TBox::new(Payload::new(0, &drops)));
            let read_twice = |cell: &TBox<Payload>| {
                read_only(|tx| {
                    let first = cell.read(tx)?.id();
                    thread::yield_now();
                    let second = cell.read(tx)?.id();
                    Ok((first, second))
                })
            };
            let writer = spawn_payload_writer(&cell, &drops, 3);
            let reader = {
                let cell = cell.clone();
                thread::spawn(move || read_twice(&cell))
            };
            let (first, second) = read_twice(&cell);
            assert_eq!(first, second, "the main reader's snapshot moved");
            let (first, second) = reader.join().unwrap();
            assert_eq!(first, second, "the other reader's snapshot moved");
            writer.join().unwrap();
            free_kept_payloads(&cell, &drops, 4);
        },
    );
}

/// A writer commits `x = y = n` twice while a snapshot reader reads `x`, then `y`.
///
/// Catches a torn snapshot: a commit classified as before the reader for one variable and
/// after it for the other (the registration and the committers' load not ordered), or a
/// version pushed after the value it keeps was overwritten.
#[test]
fn snapshot_sees_whole_commits() {
    run_model("snapshot_sees_whole_commits", || {
        let x = Arc::new(TVar::new(0u64));
        let y = Arc::new(TVar::new(0u64));
        let writer = {
            let (x, y) = (x.clone(), y.clone());
            thread::spawn(move || {
                for n in 1..=2 {
                    atomically(|tx| {
                        x.write(tx, n);
                        y.write(tx, n);
                        Ok(())
                    });
                }
            })
        };
        let mut attempts = 0;
        let (a, b) = read_only(|tx| {
            attempts += 1;
            Ok((x.read(tx)?, y.read(tx)?))
        });
        assert_eq!(attempts, 1);
        assert_eq!(a, b, "torn snapshot");
        writer.join().unwrap();
        settle();
    });
}

/// A consumer takes the front item and a producer pushes one while a snapshot reader walks the
/// queue.
///
/// Catches a snapshot walk that follows a link published after it (seeing the pushed item
/// without the take, or leaving its snapshot), nodes freed under the walk (they are retired
/// outside variables, so no version keeps them: commits after the snapshot must hold them for
/// it), and a taken item moved out and dropped while the snapshot still reads it in place
/// (`Taken::into_inner` must wait for the snapshot).
#[test]
fn snapshot_walks_a_queue_under_takes_and_pushes() {
    run_model("snapshot_walks_a_queue_under_takes_and_pushes", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let q: Arc<TQueue<Payload>> = Arc::new(TQueue::new());
        q.atomic().push(Payload::new(1, &drops));
        q.atomic().push(Payload::new(2, &drops));
        let worker = {
            let (q, drops) = (q.clone(), drops.clone());
            thread::spawn(move || {
                let taken = atomically(|tx| q.take(tx)).expect("two items queued");
                // Moves the item out (and drops it) once no snapshot can read it.
                drop(taken.into_inner());
                q.atomic().push(Payload::new(3, &drops));
            })
        };
        let mut attempts = 0;
        let ids = read_only(|tx| {
            attempts += 1;
            assert!(tx.is_snapshot());
            let mut ids = Vec::new();
            q.for_each(tx, |p| ids.push(p.id()))?;
            Ok(ids)
        });
        assert_eq!(attempts, 1);
        assert!(
            matches!(ids.as_slice(), [1, 2] | [2] | [2, 3]),
            "not a state of the queue: {ids:?}"
        );
        worker.join().unwrap();
        settle();
        reclaim_retired();
        assert_eq!(
            drops.fetch_add(0, Ordering::AcqRel),
            1,
            "the taken item not dropped once"
        );
    });
}
