//! `TaskPool` (unordered mode): put-aside tasks run as alternatives of one transaction; when the
//! one that proceeded fails to commit (a conflict), the rollback drops what a retried
//! alternative wrote, and a panic of that value's `Drop` belongs to no task the pool can name.
//! The one that proceeded did not commit: it must not be counted as committed or panicked, nor
//! leave the run; it runs again and commits.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use commute::{TBox, TVar, TaskPool, atomically};

/// Panics when first dropped.
struct Bomb(Arc<AtomicBool>);

impl Drop for Bomb {
    fn drop(&mut self) {
        if !self.0.swap(true, Ordering::SeqCst) && !std::thread::panicking() {
            panic!("bomb dropped");
        }
    }
}

#[test]
fn a_value_dropped_after_a_failed_commit_is_not_blamed_on_the_task_that_proceeded() {
    common::with_watchdog(20, || {
        let y = Arc::new(TVar::new(0u64));
        let slot = Arc::new(TBox::new(None::<Bomb>));
        let fired = Arc::new(AtomicBool::new(false));
        let written = Arc::new(TVar::new(0u64));
        let innocent_commits = Arc::new(AtomicU32::new(0));
        let mut pool = TaskPool::new().with_threads(1);

        // Retries alone; as an alternative, writes the bomb and retries; then commits.
        let (yc, s, f) = (y.clone(), slot.clone(), fired.clone());
        let mut attempts = 0u32;
        let culprit = pool.add(move |tx, _| {
            attempts += 1;
            yc.read(tx)?;
            match attempts {
                1 => tx.retry(),
                2 => {
                    s.write(tx, Some(Bomb(f.clone())));
                    tx.retry()
                }
                _ => Ok(()),
            }
        });

        // Retries alone; as an alternative, proceeds, but its commit fails once (another
        // thread changes what it read); then commits.
        let (yi, w, n) = (y.clone(), written.clone(), innocent_commits.clone());
        let mut attempts = 0u32;
        let conflicted = AtomicBool::new(false);
        let innocent = pool.add(move |tx, _| {
            attempts += 1;
            let seen = yi.read(tx)?;
            if attempts == 1 {
                return tx.retry();
            }
            if !conflicted.swap(true, Ordering::SeqCst) {
                let y = yi.clone();
                std::thread::spawn(move || {
                    atomically(|tx| {
                        y.write(tx, seen + 1);
                        Ok(())
                    });
                })
                .join()
                .unwrap();
            }
            w.modify(tx, |x| x + 1)?;
            let n = n.clone();
            tx.on_commit(move || {
                n.fetch_add(1, Ordering::SeqCst);
            });
            Ok(())
        });

        let err = pool
            .run()
            .expect_err("the bomb's panic is reported, as no task panicked");
        let r = err.report();
        assert!(fired.load(Ordering::SeqCst), "the bomb went off");
        assert_eq!(err.message(), Some("bomb dropped"));
        assert_eq!(
            err.task(),
            culprit,
            "named after an alternative that retried"
        );
        assert_ne!(err.task(), innocent);
        assert_eq!(
            innocent_commits.load(Ordering::SeqCst),
            1,
            "the task whose commit failed ran again and committed once"
        );
        assert_eq!(written.load(), 1);
        assert_eq!((r.tasks, r.panicked), (2, 0), "{r:?}");
    });
}
