//! `TaskPool` (unordered mode) and panics left behind by put-aside tasks run as alternatives of
//! one transaction: a child added in a branch that retried, or a value written there, is dropped
//! after the alternatives' bodies ran. The panic of its `Drop` must not be blamed on another
//! task (which was then counted panicked and removed from the run without ever committing).
//! Every test failed before its fix; each closure's drops are counted.

mod common;

use common::with_watchdog;
use commute::{PoolReport, TBox, TVar, TaskPanic, TaskPool, atomically};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Panics when dropped (unless the thread is unwinding already).
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("bomb dropped");
        }
    }
}

/// Counts the closures made and dropped.
#[derive(Clone, Default)]
struct Drops {
    made: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

/// Held by a closure: counts its drop.
struct Counted(Arc<AtomicUsize>);

impl Drops {
    fn token(&self) -> Counted {
        self.made.fetch_add(1, Ordering::SeqCst);
        Counted(self.dropped.clone())
    }

    fn check(&self) {
        assert_eq!(
            self.dropped.load(Ordering::SeqCst),
            self.made.load(Ordering::SeqCst),
            "every closure is dropped once"
        );
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Opens `gate` once the pool's only worker blocks in `retry`, or gives up when `done` is set.
fn open_when_blocked(
    pool: &TaskPool,
    gate: Arc<TVar<bool>>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<bool> {
    let watcher = pool.watcher();
    std::thread::spawn(move || {
        loop {
            if !watcher.blocked_transactions().is_empty() {
                atomically(|tx| {
                    gate.write(tx, true);
                    Ok(())
                });
                return true;
            }
            if done.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::yield_now();
        }
    })
}

/// Runs `pool`, opening `gate` once its worker blocks.
fn run_opening(pool: &mut TaskPool, gate: Arc<TVar<bool>>) -> Result<PoolReport, TaskPanic> {
    let done = Arc::new(AtomicBool::new(false));
    let opener = open_when_blocked(pool, gate, done.clone());
    let result = pool.run();
    done.store(true, Ordering::SeqCst);
    opener.join().unwrap();
    result
}

/// The auditor's case: the culprit adds a child holding a bomb in its first run as an
/// alternative, then retries; the innocent task, tried after it, retries too, so the whole
/// transaction retries and the child is dropped at the end of that attempt. The culprit later
/// commits; the child's panic is its own (after its commit: the commit stands).
#[test]
fn a_child_left_by_one_alternative_is_not_blamed_on_another() {
    with_watchdog(30, || {
        let drops = Drops::default();
        let gate = Arc::new(TVar::new(false));
        let committed = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let mut pool = TaskPool::new().with_threads(1);

        let (g, c, d, t) = (
            gate.clone(),
            committed.clone(),
            drops.clone(),
            drops.token(),
        );
        let mut attempts = 0u32;
        let culprit = pool.add(move |tx, ctx| {
            let _ = &t;
            attempts += 1;
            if !g.read(tx)? {
                if attempts == 2 {
                    let (bomb, t) = (Bomb, d.token());
                    ctx.add(tx, move |_, _| {
                        let _ = (&bomb, &t);
                        Ok(())
                    });
                }
                return tx.retry();
            }
            let c = c.clone();
            tx.on_commit(move || {
                c[0].fetch_add(1, Ordering::SeqCst);
            });
            Ok(())
        });

        let (g, c, t) = (gate.clone(), committed.clone(), drops.token());
        let innocent = pool.add(move |tx, _| {
            let _ = &t;
            if !g.read(tx)? {
                return tx.retry();
            }
            let c = c.clone();
            tx.on_commit(move || {
                c[1].fetch_add(1, Ordering::SeqCst);
            });
            Ok(())
        });

        let err = run_opening(&mut pool, gate).expect_err("the bomb's panic is reported");
        let r = err.report();
        let commits = [0, 1].map(|i| committed[i].load(Ordering::SeqCst));
        eprintln!("{err} (culprit {culprit}, innocent {innocent}); {r}; commits {commits:?}");
        assert_eq!(commits, [1, 1], "each task committed once");
        assert_eq!(err.task(), culprit, "the panic is the culprit's");
        assert_eq!(err.message(), Some("bomb dropped"));
        assert_eq!((r.tasks, r.panicked), (1, 1), "{r:?}");
        drop(pool);
        drops.check();
    })
}

/// The brief's second case: in the same attempt of the alternatives' transaction, the culprit
/// adds a child holding a bomb and retries, and the task after it proceeds and commits. No gate:
/// each task's attempts are counted.
#[test]
fn a_child_left_by_a_retried_alternative_beside_a_committing_one() {
    with_watchdog(30, || {
        let drops = Drops::default();
        let committed = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let mut pool = TaskPool::new().with_threads(1);

        // Retries always; on its second attempt (its first as an alternative) it adds the bomb.
        let (d, t) = (drops.clone(), drops.token());
        let mut attempts = 0u32;
        let culprit = pool.add(move |tx, ctx| {
            let _ = &t;
            attempts += 1;
            if attempts == 2 {
                let (bomb, t) = (Bomb, d.token());
                ctx.add(tx, move |_, _| {
                    let _ = (&bomb, &t);
                    Ok(())
                });
            }
            tx.retry()
        });

        // Retries alone, then commits as an alternative (after the culprit retried).
        let (c, t) = (committed.clone(), drops.token());
        let mut attempts = 0u32;
        let innocent = pool.add(move |tx, _| {
            let _ = &t;
            attempts += 1;
            if attempts == 1 {
                return tx.retry();
            }
            let c = c.clone();
            tx.on_commit(move || {
                c[1].fetch_add(1, Ordering::SeqCst);
            });
            Ok(())
        });

        let err = pool.run().expect_err("the bomb's panic is reported");
        let r = err.report();
        let commits = [0, 1].map(|i| committed[i].load(Ordering::SeqCst));
        eprintln!("{err} (culprit {culprit}, innocent {innocent}); {r}; commits {commits:?}");
        assert_eq!(commits, [0, 1]);
        assert_eq!(err.task(), culprit, "the panic is the culprit's");
        assert_eq!(err.message(), Some("bomb dropped"));
        assert_eq!((r.tasks, r.panicked, r.retried), (1, 1, 2), "{r:?}");
        drop(pool);
        drops.check();
    })
}

/// A task run alone whose attempt adds a child holding a bomb and retries: it counts as
/// panicked once and leaves the run (as before the fix); in ordered mode, a child added in an
/// `or_else` branch that retried, in an attempt that commits: the commit stands, the task
/// counts as panicked.
#[test]
fn a_discarded_child_of_a_task_run_alone_is_its_own_panic() {
    with_watchdog(30, || {
        for ordered in [false, true] {
            let drops = Drops::default();
            let ran = Arc::new(AtomicU32::new(0));
            let mut pool = if ordered {
                TaskPool::ordered()
            } else {
                TaskPool::new()
            }
            .with_threads(1);
            let (d, t, ran2) = (drops.clone(), drops.token(), ran.clone());
            let task = pool.add(move |tx, ctx| {
                let _ = &t;
                let add_bomb = |tx: &commute::Transaction| {
                    let (bomb, t) = (Bomb, d.token());
                    ctx.add(tx, move |_, _| {
                        let _ = (&bomb, &t);
                        Ok(())
                    });
                };
                if ordered {
                    tx.or_else(
                        |tx| {
                            add_bomb(tx);
                            tx.retry()
                        },
                        |_| Ok(()),
                    )?;
                    let ran2 = ran2.clone();
                    tx.on_commit(move || {
                        ran2.fetch_add(1, Ordering::SeqCst);
                    });
                    Ok(())
                } else {
                    add_bomb(tx);
                    tx.retry()
                }
            });
            let err = pool.run().expect_err("the bomb's panic is reported");
            let r = err.report();
            assert_eq!(err.task(), task);
            assert_eq!(err.message(), Some("bomb dropped"));
            assert_eq!((r.tasks, r.panicked, r.retried), (0, 1, 0), "{r:?}");
            assert_eq!(ran.load(Ordering::SeqCst), u32::from(ordered), "the commit");
            drop(pool);
            drops.check();
        }
    })
}

/// A value written by a retried alternative, whose `Drop` panics when the whole transaction
/// retries, is not anybody's the pool can tell: no task is removed, every alternative goes back
/// to the queue, and the culprit, run alone, panics as itself.
#[test]
fn a_value_left_by_a_retried_alternative_removes_no_task() {
    with_watchdog(30, || {
        let drops = Drops::default();
        let gate = Arc::new(TVar::new(false));
        let slot = Arc::new(TBox::new(None::<Bomb>));
        let committed = Arc::new(AtomicU32::new(0));
        let mut pool = TaskPool::new().with_threads(1);

        let (s, t) = (slot.clone(), drops.token());
        let mut attempts = 0u32;
        let culprit = pool.add(move |tx, _| {
            let _ = &t;
            attempts += 1;
            if attempts >= 2 {
                s.write(tx, Some(Bomb));
            }
            tx.retry()
        });

        let (g, c, t) = (gate.clone(), committed.clone(), drops.token());
        let innocent = pool.add(move |tx, _| {
            let _ = &t;
            if !g.read(tx)? {
                return tx.retry();
            }
            let c = c.clone();
            tx.on_commit(move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
            Ok(())
        });

        let err = run_opening(&mut pool, gate).expect_err("the bomb's panic is reported");
        let r = err.report();
        eprintln!("{err} (culprit {culprit}, innocent {innocent}); {r}");
        assert_eq!(
            committed.load(Ordering::SeqCst),
            1,
            "the innocent task committed"
        );
        assert_eq!(
            err.task(),
            culprit,
            "the culprit's own panic is the one reported"
        );
        assert_eq!((r.tasks, r.panicked), (1, 1), "{r:?}");
        drop(pool);
        drops.check();
    })
}

/// Inside a pin, the core keeps what rolled-back attempts leave (a discarded child among
/// them) until the pin ends: such a child was neither dropped by the worker nor blamed on its
/// task (`run` returned `Ok`, and the child's panic came out of the caller's pin afterwards).
/// `run` refuses to start inside a pin, before it runs anything.
#[test]
fn run_refuses_to_start_inside_a_pin() {
    with_watchdog(30, || {
        let ran = Arc::new(AtomicU32::new(0));
        let mut pool = TaskPool::new().with_threads(1);
        let r = ran.clone();
        pool.add(move |tx, ctx| {
            r.fetch_add(1, Ordering::SeqCst);
            tx.or_else(
                |tx| {
                    let bomb = Bomb;
                    ctx.add(tx, move |_, _| {
                        let _ = &bomb;
                        Ok(())
                    });
                    tx.retry()
                },
                |_| Ok(()),
            )
        });
        let refused = catch_unwind(AssertUnwindSafe(|| commute::pinned(|| pool.run())))
            .expect_err("run inside a pin is refused");
        let message = refused
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| refused.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        assert!(message.contains("inside a pin"), "{message}");
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no task ran");
        // Outside the pin the same pool runs, and the child's panic is its task's.
        let err = pool
            .run()
            .expect_err("the discarded child's panic is reported");
        assert_eq!((err.report().tasks, err.report().panicked), (0, 1));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    })
}
