//! Version tags: a commit's version carries its thread's tag (registry slot + 1) in its low 10
//! bits, and a transaction accepts a version newer than its snapshot without validation when its
//! own thread wrote it. Threads beyond the 1,023 that get a tag all share `NO_TAG`: they must
//! never take each other's commits for their own.
//!
//! One test in its own binary (see `common/tags.rs`).

#[path = "common/tags.rs"]
mod tags;

use commute_stm::{TVar, atomically};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::sync::mpsc;

#[test]
fn tagless_threads_validate_each_others_commits() {
    with_watchdog(20, || {
        // `a == b` always: the only writer changes both in one transaction.
        let a = Arc::new(TVar::new(0u64));
        let b = Arc::new(TVar::new(0u64));

        // 1. Use up every tag: the parked threads stay alive until the end.
        let parked = tags::use_up_tags();

        // 2. Two tag-less threads. The reader reads `a`, then lets the writer commit to both
        //    variables, then reads `b`: `b`'s version is newer than the reader's snapshot and
        //    carries the writer's tag, `NO_TAG`, which is also the reader's. Taken for an own
        //    write, it would be accepted unvalidated, and the read-only transaction would commit
        //    `a` from before the writer and `b` from after it.
        let (read_a, reader_read_a) = mpsc::channel::<()>();
        let (wrote, writer_wrote) = mpsc::channel::<()>();
        let writer = {
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                reader_read_a.recv().expect("the reader read `a`");
                atomically(|tx| {
                    a.modify(tx, |x| x + 1)?;
                    b.modify(tx, |x| x + 1)
                });
                wrote.send(()).expect("the reader waits");
            })
        };
        let reader = std::thread::spawn(move || {
            let mut attempts = 0;
            let seen = atomically(|tx| {
                attempts += 1;
                let x = a.read(tx)?;
                if attempts == 1 {
                    read_a.send(()).expect("the writer waits");
                    writer_wrote.recv().expect("the writer committed");
                }
                Ok((x, b.read(tx)?))
            });
            (seen, attempts)
        });
        writer.join().unwrap();
        let (seen, attempts) = reader.join().unwrap();

        // 3. Tag-less threads commit large write sets (past the write set's index threshold),
        //    each variable read and written: a large set of a tag-less thread is sorted before
        //    it is locked, and its validation finds its own locks by searching the sorted set.
        //    Alone, such a thread never aborts (a search that missed its own lock would fail
        //    the validation); two of them, in opposite orders, lose no update.
        const VARS: usize = 12;
        const ROUNDS: u64 = 200;
        let vars: Arc<Vec<TVar<u64>>> = Arc::new((0..VARS).map(|_| TVar::new(0)).collect());
        let alone_aborts = {
            let vars = vars.clone();
            std::thread::spawn(move || {
                let before = commute_stm::stats::thread();
                for _ in 0..ROUNDS {
                    atomically(|tx| {
                        // Written in an order other than the addresses', so that the sort
                        // matters.
                        for i in (0..VARS).map(|i| (i * 5) % VARS) {
                            vars[i].modify(tx, |x| x + 1)?;
                        }
                        Ok(())
                    });
                }
                commute_stm::stats::thread().aborts() - before.aborts()
            })
            .join()
            .unwrap()
        };
        let movers: Vec<_> = [false, true]
            .into_iter()
            .map(|reversed| {
                let vars = vars.clone();
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        atomically(|tx| {
                            for i in 0..VARS {
                                let v = &vars[if reversed { VARS - 1 - i } else { i }];
                                v.modify(tx, |x| x + 1)?;
                            }
                            Ok(())
                        });
                    }
                })
            })
            .collect();
        for m in movers {
            m.join().unwrap();
        }
        parked.release();

        assert_eq!(
            seen.0, seen.1,
            "a tag-less thread took another tag-less thread's commit for its own: it saw a = {}, \
             b = {}",
            seen.0, seen.1
        );
        assert_eq!(seen, (1, 1));
        assert_eq!(
            attempts, 2,
            "the reader's first attempt meets the writer's commit and runs again"
        );
        assert_eq!(
            alone_aborts, 0,
            "a tag-less thread alone aborted its large commits"
        );
        assert!(
            vars.iter().all(|v| v.load() == 3 * ROUNDS),
            "a tag-less thread's large commit lost an update: {:?}",
            vars.iter().map(TVar::load).collect::<Vec<_>>()
        );
    });
}
