//! Moving items out of queues without `Clone`: `TQueue::take` and `TBoundedQueue::take` hand
//! the item over through a `Taken` handle once the transaction has committed, exactly once,
//! and never from an attempt that was rolled back.

mod common;

use commute::{
    TBoundedQueue, TBox, TQueue, TVar, Taken, atomically, in_transaction, pinned, reclaim_retired,
    stats, try_atomically,
};
use commute_test_support::panic_message;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Counts its drops; not `Clone`, and dropped outside transactions only.
struct Probe {
    id: usize,
    drops: Arc<Vec<AtomicU32>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        assert!(
            !in_transaction(),
            "an item was dropped inside a transaction"
        );
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

fn counters(n: usize) -> Arc<Vec<AtomicU32>> {
    Arc::new((0..n).map(|_| AtomicU32::new(0)).collect())
}

fn total(counts: &[AtomicU32]) -> u32 {
    counts.iter().map(|c| c.load(Ordering::SeqCst)).sum()
}

/// Reclaims until `done` holds: popped items are dropped by reclamation passes, which may have
/// to wait for other threads' attempts to end.
fn reclaim_until(done: impl Fn() -> bool) {
    while !done() {
        reclaim_retired();
        std::thread::yield_now();
    }
}

fn is_committed<T>(taken: &Taken<T>) -> bool {
    format!("{taken:?}").contains("committed: true")
}

type Job = Box<dyn FnOnce() + Send>;

#[test]
fn jobs_taken_by_several_threads_run_exactly_once() {
    common::with_watchdog(120, || {
        const JOBS: usize = 3_000;
        const CONSUMERS: usize = 3;
        let runs = counters(JOBS);
        let drops = counters(JOBS);
        let jobs: Arc<TQueue<Job>> = Arc::new(TQueue::new());
        for id in 0..JOBS {
            let probe = Probe {
                id,
                drops: drops.clone(),
            };
            let runs = runs.clone();
            jobs.atomic().push(Box::new(move || {
                runs[probe.id].fetch_add(1, Ordering::SeqCst);
            }));
        }
        // Consumers read `noise` in their takes, and a writer keeps changing it: their attempts
        // are rolled back after taking, as are those that lose the race for the head.
        let noise = Arc::new(TVar::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (noise, stop) = (noise.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    atomically(|tx| noise.modify(tx, |n| n + 1));
                    std::thread::yield_now();
                }
            })
        };
        let before = stats::snapshot();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|c| {
                let (jobs, noise) = (jobs.clone(), noise.clone());
                std::thread::spawn(move || {
                    let (mut ran, mut left, mut rolled_back) = (0usize, 0usize, 0usize);
                    let mut n = 0usize;
                    loop {
                        // Every attempt's handle is kept: only the last one's take committed.
                        let mut handles: Vec<Taken<Job>> = Vec::new();
                        let more = atomically(|tx| {
                            noise.read(tx)?;
                            match jobs.take(tx)? {
                                Some(taken) => {
                                    handles.push(taken);
                                    // Give the writer and the other takers time to interfere.
                                    std::thread::yield_now();
                                    Ok(true)
                                }
                                None => Ok(false),
                            }
                        });
                        if !more {
                            assert!(handles.iter().all(|h| !is_committed(h)));
                            break;
                        }
                        let committed = handles.pop().unwrap();
                        assert!(is_committed(&committed));
                        for aborted in handles {
                            assert!(!is_committed(&aborted), "a rolled-back take");
                            rolled_back += 1;
                        }
                        n += 1;
                        if (n + c) % 5 == 0 {
                            drop(committed); // not run: dropped by reclamation
                            left += 1;
                        } else {
                            (committed.into_inner())();
                            ran += 1;
                        }
                    }
                    (ran, left, rolled_back)
                })
            })
            .collect();
        let (mut ran, mut left, mut rolled_back) = (0, 0, 0);
        for consumer in consumers {
            let (r, l, b) = consumer.join().unwrap();
            ran += r;
            left += l;
            rolled_back += b;
        }
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        let aborts = (stats::snapshot() - before).aborts();
        assert_eq!(ran + left, JOBS);
        assert_eq!(total(&runs) as usize, ran);
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) <= 1));
        reclaim_until(|| total(&drops) as usize == JOBS);
        assert!(drops.iter().all(|d| d.load(Ordering::SeqCst) == 1));
        assert!(jobs.atomic().is_empty());
        eprintln!(
            "{ran} jobs run, {left} dropped unrun, {aborts} aborted attempts, \
             {rolled_back} handles of rolled-back takes"
        );
    });
}

#[test]
fn take_moves_items_out_in_order() {
    let q: TQueue<String> = TQueue::new();
    for word in ["a", "b", "c"] {
        q.atomic().push(word.to_string());
    }
    let first = atomically(|tx| q.take(tx)).unwrap();
    assert_eq!(&*first, "a", "a committed handle reads its item");
    assert_eq!(first.into_inner(), "a");
    assert_eq!(q.atomic().take(), Some("b".to_string()));
    assert_eq!(q.atomic().take_wait(), "c");
    assert_eq!(q.atomic().take(), None);
    assert_eq!(q.atomic().len(), 0);
}

#[test]
fn a_transaction_takes_its_own_pushes() {
    let q: TQueue<Box<u32>> = TQueue::new();
    q.atomic().push(Box::new(1));
    let (a, b, c) = atomically(|tx| {
        q.push(tx, Box::new(2));
        let a = q.take(tx)?.unwrap();
        let b = q.take(tx)?.unwrap();
        q.push(tx, Box::new(3));
        Ok((a, b, q.take(tx)?))
    });
    assert_eq!((*a.into_inner(), *b.into_inner()), (1, 2));
    assert_eq!(*c.unwrap().into_inner(), 3);
    assert!(q.atomic().is_empty());
}

#[test]
fn a_rolled_back_take_leaves_the_item_and_its_handle_holds_nothing() {
    let drops = counters(2);
    let q = TQueue::new();
    for id in 0..2 {
        q.atomic().push(Probe {
            id,
            drops: drops.clone(),
        });
    }
    let mut smuggled = None;
    let result: Result<(), &str> = try_atomically(|tx| {
        smuggled = q.take(tx)?;
        tx.abort("changed my mind")
    });
    assert_eq!(result, Err("changed my mind"));
    let smuggled = smuggled.expect("the attempt took the front item");
    assert!(!is_committed(&smuggled));
    assert_eq!(q.atomic().len(), 2, "the item is still queued");
    let read = catch_unwind(AssertUnwindSafe(|| smuggled.id));
    assert!(read.is_err(), "a rolled-back handle cannot be read");
    let moved = catch_unwind(AssertUnwindSafe(|| smuggled.into_inner()));
    assert!(moved.is_err(), "a rolled-back handle gives nothing");
    assert_eq!(total(&drops), 0);
    // The item comes out once, to the next take.
    let first = q.atomic().take().unwrap();
    assert_eq!(first.id, 0);
    drop(first);
    assert_eq!(drops[0].load(Ordering::SeqCst), 1);
    drop(q);
    reclaim_until(|| total(&drops) == 2);
    assert_eq!(drops[0].load(Ordering::SeqCst), 1);
    assert_eq!(drops[1].load(Ordering::SeqCst), 1);
}

#[test]
fn a_take_in_a_retried_or_else_branch_is_rolled_back() {
    let q: TQueue<Box<u8>> = TQueue::new();
    q.atomic().push(Box::new(1));
    let gate = TVar::new(false);
    let mut from_first_branch = None;
    let second = atomically(|tx| {
        tx.or_else(
            |tx| {
                from_first_branch = q.take(tx)?;
                if gate.read(tx)? { Ok(None) } else { tx.retry() }
            },
            |tx| q.take(tx),
        )
    });
    assert!(!is_committed(from_first_branch.as_ref().unwrap()));
    assert_eq!(*second.unwrap().into_inner(), 1);
    drop(from_first_branch);
    assert!(q.atomic().is_empty());
}

#[test]
fn a_handle_dropped_without_into_inner_drops_the_item_once() {
    let drops = counters(3);
    let q = TQueue::new();
    for id in 0..3 {
        q.atomic().push(Probe {
            id,
            drops: drops.clone(),
        });
    }
    // After the commit, outside transactions.
    drop(atomically(|tx| q.take(tx)));
    // Inside the attempt that took it: the take stays a pop.
    atomically(|tx| {
        drop(q.take(tx)?);
        Ok(())
    });
    // After the commit, inside another transaction: dropped later, outside it.
    let taken = atomically(|tx| q.take(tx));
    let mut taken = Some(taken);
    atomically(|_| {
        drop(taken.take());
        Ok(())
    });
    assert!(q.atomic().is_empty());
    reclaim_until(|| total(&drops) == 3);
    assert!(drops.iter().all(|d| d.load(Ordering::SeqCst) == 1));
}

#[test]
fn into_inner_inside_a_transaction_panics() {
    let q = TQueue::new();
    q.atomic().push(Box::new(5));
    let taken = atomically(|tx| q.take(tx)).unwrap();
    let mut taken = Some(taken);
    let inside = catch_unwind(AssertUnwindSafe(|| {
        atomically(|_| {
            let t = taken.take().unwrap();
            Ok(*t.into_inner())
        })
    }));
    assert!(inside.is_err());
}

/// Runs `take` inside each kind of pin (`TBox::load_with`'s closure, `pinned`), where
/// `Taken::into_inner` may not wait for readers: it must panic, naming the pin, and leave the
/// queue's `len` as it was.
fn refused_inside_pins<R>(len: impl Fn() -> usize, take: impl Fn() -> R) {
    let config = TBox::new(0u8);
    let before = len();
    for in_load_with in [true, false] {
        let refused = catch_unwind(AssertUnwindSafe(|| {
            if in_load_with {
                config.load_with(|_| drop(take()));
            } else {
                pinned(|| drop(take()));
            }
        }))
        .expect_err("a one-call take inside a pin panics");
        let message = panic_message(&*refused);
        assert!(message.contains("pin"), "{message}");
        assert_eq!(len(), before, "the refused take left the item in the queue");
    }
}

/// Before the fix, the one-call takes committed their take inside the pin, then
/// `Taken::into_inner` panicked (no waiting for readers in a pin), and the handle dropped the
/// item on the way out: it had left the queue and was never returned. They now refuse before
/// their transaction.
#[test]
fn one_call_takes_inside_a_pin_refuse_before_taking() {
    let drops = counters(2);
    let q = TQueue::new();
    q.atomic().push(Probe {
        id: 0,
        drops: drops.clone(),
    });
    refused_inside_pins(|| q.atomic().len(), || q.atomic().take());
    refused_inside_pins(|| q.atomic().len(), || q.atomic().take_wait());
    let b = TBoundedQueue::with_capacity(1);
    let pushed = try_push_alone(
        &b,
        Probe {
            id: 1,
            drops: drops.clone(),
        },
    );
    assert!(pushed.is_ok());
    refused_inside_pins(|| b.atomic().len(), || b.atomic().take());
    refused_inside_pins(|| b.atomic().len(), || b.atomic().take_wait());
    reclaim_retired();
    assert_eq!(total(&drops), 0, "a refused take dropped its item");
    assert_eq!(q.atomic().take().map(|p| p.id), Some(0));
    assert_eq!(b.atomic().take_wait().id, 1);
}

#[test]
fn a_take_commits_into_a_queue_its_attempt_dropped() {
    let drops = counters(2);
    let q = Arc::new(TQueue::new());
    for id in 0..2 {
        q.atomic().push(Probe {
            id,
            drops: drops.clone(),
        });
    }
    let owner = RefCell::new(Some(q));
    let taken = atomically(|tx| {
        let q = owner.borrow_mut().take().expect("one attempt");
        let taken = q.take(tx)?;
        drop(q); // the last handle: the pop still lands in the queue's memory
        Ok(taken)
    })
    .unwrap();
    assert!(is_committed(&taken));
    let item = taken.into_inner();
    assert_eq!(item.id, 0);
    reclaim_until(|| total(&drops) == 1);
    assert_eq!(
        drops[1].load(Ordering::SeqCst),
        1,
        "the item left was dropped with the queue"
    );
    drop(item);
    assert_eq!(drops[0].load(Ordering::SeqCst), 1);
}

#[test]
fn into_inner_waits_for_an_attempt_that_reads_the_item() {
    common::with_watchdog(60, || {
        let q: Arc<TQueue<Box<u64>>> = Arc::new(TQueue::new());
        q.atomic().push(Box::new(7));
        let reading = Arc::new(AtomicBool::new(false));
        let moving = Arc::new(AtomicBool::new(false));
        let reader_done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (q, reading, moving, done) = (
                q.clone(),
                reading.clone(),
                moving.clone(),
                reader_done.clone(),
            );
            std::thread::spawn(move || {
                atomically(|tx| {
                    q.for_each(tx, |item| {
                        reading.store(true, Ordering::SeqCst);
                        // Hold the borrow until the mover has started, and a little longer.
                        while !moving.load(Ordering::SeqCst) {
                            std::thread::yield_now();
                        }
                        for _ in 0..100 {
                            assert_eq!(**item, 7);
                            std::thread::yield_now();
                        }
                    })?;
                    done.store(true, Ordering::SeqCst);
                    Ok(())
                })
            })
        };
        while !reading.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let taken = atomically(|tx| q.take(tx)).unwrap();
        moving.store(true, Ordering::SeqCst);
        let item = taken.into_inner();
        assert!(
            reader_done.load(Ordering::SeqCst),
            "the item moved while an attempt still borrowed it"
        );
        assert_eq!(*item, 7);
        reader.join().unwrap();
    });
}

#[test]
fn into_inner_does_not_wait_for_a_thread_blocked_in_retry() {
    common::with_watchdog(60, || {
        let q: Arc<TQueue<Box<u32>>> = Arc::new(TQueue::new());
        let idle: Arc<TQueue<Box<u32>>> = Arc::new(TQueue::new());
        let before = stats::snapshot();
        let sleeper = {
            let idle = idle.clone();
            std::thread::spawn(move || idle.atomic().take_wait())
        };
        // Wait until the sleeper's attempt has retried (it then sleeps, or is about to).
        while (stats::snapshot() - before.clone()).retries == 0 {
            std::thread::yield_now();
        }
        q.atomic().push(Box::new(1));
        assert_eq!(*q.atomic().take().unwrap(), 1);
        idle.atomic().push(Box::new(2));
        assert_eq!(*sleeper.join().unwrap(), 2);
    });
}

/// `try_push` of an item that is not `Clone`, in a transaction of its own, on a queue no other
/// thread uses (so that its one attempt commits).
fn try_push_alone<T: Send>(q: &TBoundedQueue<T>, item: T) -> Result<(), T> {
    let mut item = Some(item);
    atomically(|tx| q.try_push(tx, item.take().expect("one attempt")))
}

#[test]
fn bounded_take_gives_the_credit_back_and_moves_the_item() {
    let q: TBoundedQueue<Box<dyn FnOnce() -> u32 + Send>> = TBoundedQueue::with_capacity(1);
    assert!(try_push_alone(&q, Box::new(|| 1)).is_ok());
    assert!(try_push_alone(&q, Box::new(|| 2)).is_err(), "full");
    let taken = atomically(|tx| q.take(tx)).unwrap();
    assert!(
        try_push_alone(&q, Box::new(|| 3)).is_ok(),
        "the credit is back"
    );
    assert_eq!((taken.into_inner())(), 1);
    assert_eq!((q.atomic().take_wait())(), 3);
    assert!(q.atomic().take().is_none());
}

#[test]
fn bounded_rolled_back_take_keeps_item_and_credit() {
    let drops = counters(1);
    let q = TBoundedQueue::with_capacity(1);
    let pushed = try_push_alone(
        &q,
        Probe {
            id: 0,
            drops: drops.clone(),
        },
    );
    assert!(pushed.is_ok());
    let seen = AtomicUsize::new(0);
    let r: Result<(), ()> = try_atomically(|tx| {
        let taken = q.take(tx)?;
        seen.fetch_add(usize::from(taken.is_some()), Ordering::SeqCst);
        tx.abort(())
    });
    assert!(r.is_err());
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(q.atomic().len(), 1);
    assert_eq!(q.atomic().take().unwrap().id, 0);
    reclaim_until(|| total(&drops) == 1);
}

#[test]
fn a_handle_dropped_early_leaves_readers_snapshots_alone() {
    common::with_watchdog(60, || {
        let q: Arc<TQueue<Box<u32>>> = Arc::new(TQueue::new());
        q.atomic().push(Box::new(1));
        q.atomic().push(Box::new(2));
        let paused = Arc::new(AtomicBool::new(false));
        let resume = Arc::new(AtomicBool::new(false));
        let reader = {
            let (q, paused, resume) = (q.clone(), paused.clone(), resume.clone());
            std::thread::spawn(move || {
                let mut first = true;
                atomically(|tx| {
                    let walked = q.for_each(tx, |_| {
                        if std::mem::take(&mut first) {
                            // Between the first item and the second: both are taken meanwhile.
                            paused.store(true, Ordering::SeqCst);
                            while !resume.load(Ordering::SeqCst) {
                                std::thread::yield_now();
                            }
                        }
                    });
                    // Versions take 61 bits: whatever the walk met next, it was a version.
                    assert!(
                        tx.read_version() < 1 << 61,
                        "the walk took a node's bits for a version"
                    );
                    walked
                })
            })
        };
        while !paused.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let first = atomically(|tx| q.take(tx)).unwrap();
        let second = atomically(|tx| q.take(tx)).unwrap();
        drop(second); // before the reader's attempt ends
        resume.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        assert_eq!(*first.into_inner(), 1);
    });
}

#[test]
fn a_committed_handle_moves_to_another_thread() {
    common::with_watchdog(60, || {
        let q: TQueue<Job> = TQueue::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        q.atomic().push(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        let taken = atomically(|tx| q.take(tx)).unwrap();
        std::thread::spawn(move || (taken.into_inner())())
            .join()
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(q.atomic().is_empty());
    });
}

#[test]
fn a_queue_of_non_clone_items_collects_and_extends_in_order() {
    type Job = Box<dyn FnOnce() -> u32 + Send>;
    let mut q: TQueue<Job> = (1..=3u32).map(|i| Box::new(move || i) as Job).collect();
    q.extend([Box::new(|| 4u32) as Job]);
    let mut ran = Vec::new();
    while let Some(job) = q.atomic().take() {
        ran.push(job());
    }
    assert_eq!(ran, [1, 2, 3, 4]);
}

/// `take_wait` on a closed, empty queue would block forever: it panics, as `pop_wait` does
/// (it hung before, caught by the watchdog).
#[test]
fn take_wait_on_a_closed_empty_queue_panics_instead_of_blocking_forever() {
    common::with_watchdog(20, || {
        let message = |payload: Box<dyn std::any::Any + Send>| panic_message(&*payload);
        let q: TQueue<String> = TQueue::new();
        q.atomic().close();
        let text = message(
            catch_unwind(AssertUnwindSafe(|| q.atomic().take_wait())).expect_err("it panics"),
        );
        assert!(text.contains("closed and empty"), "{text}");
        let b: TBoundedQueue<String> = TBoundedQueue::with_capacity(1);
        b.atomic().close();
        let text = message(
            catch_unwind(AssertUnwindSafe(|| atomically(|tx| b.take_wait(tx))))
                .expect_err("it panics"),
        );
        assert!(text.contains("closed and empty"), "{text}");
        // The items sent before the close still come out.
        let q: TQueue<String> = TQueue::new();
        q.atomic().push("last".to_string());
        q.atomic().close();
        assert_eq!(q.atomic().take_wait(), "last");
    });
}
