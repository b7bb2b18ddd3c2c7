//! `TQueue` and `TBoundedQueue` memory: a popped item is dropped by the reclamation after its
//! pop, every item exactly once (popped, left in a dropped queue, or pushed by a rolled-back
//! attempt), never while a transaction can still read it, and pops that roll back drop nothing.
//! Its own test binary, so that no other test file's running transaction holds back
//! reclamation.

mod common;

use common::{reclaim_until, run_threads};
use commute::{TBoundedQueue, TQueue, TVar, atomically, reclaim_retired};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

/// How many instances of each item id are alive: the original and its clones.
struct Counts(Vec<AtomicIsize>);

impl Counts {
    fn new(ids: usize) -> Arc<Self> {
        Arc::new(Counts((0..ids).map(|_| AtomicIsize::new(0)).collect()))
    }

    fn live(&self, id: usize) -> isize {
        self.0[id].load(Ordering::SeqCst)
    }

    fn total(&self) -> isize {
        (0..self.0.len()).map(|id| self.live(id)).sum()
    }

    /// The ids with a live instance, for failure messages.
    fn alive(&self) -> Vec<usize> {
        (0..self.0.len()).filter(|&id| self.live(id) != 0).collect()
    }
}

const ALIVE: u64 = 0xA11E_A11E_A11E_A11E;
const DROPPED: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// A queue item that counts its instances per id and marks itself dropped, so that a read of a
/// dropped item (its node is still allocated) and a second drop both fail loudly. An armed item
/// panics in its drop, once it has done all that (its clones are not armed).
struct Tracked {
    id: usize,
    state: u64,
    armed: bool,
    counts: Arc<Counts>,
}

/// What an armed [`Tracked`] panics with.
const BOOM: &str = "deliberate panic in an item's drop";

impl Tracked {
    fn new(id: usize, counts: &Arc<Counts>) -> Self {
        Tracked::armed(id, counts, false)
    }

    /// An item whose drop panics ([`BOOM`]), if `armed`.
    fn armed(id: usize, counts: &Arc<Counts>, armed: bool) -> Self {
        counts.0[id].fetch_add(1, Ordering::SeqCst);
        Tracked {
            id,
            state: ALIVE,
            armed,
            counts: counts.clone(),
        }
    }

    fn id(&self) -> usize {
        // SAFETY: a plain read of our own field; volatile so that it is not folded into the
        // constant the constructor stored.
        let state = unsafe { std::ptr::read_volatile(&self.state) };
        assert_eq!(state, ALIVE, "read item {} after its drop", self.id);
        self.id
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.id(), &self.counts)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // SAFETY: as in `id`; the write is volatile so that it is not removed as dead.
        let state = unsafe { std::ptr::read_volatile(&self.state) };
        assert_eq!(state, ALIVE, "item {} dropped twice", self.id);
        // SAFETY: see above.
        unsafe { std::ptr::write_volatile(&mut self.state, DROPPED) };
        let before = self.counts.0[self.id].fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "item {} dropped more often than made", self.id);
        if self.armed {
            panic!("{BOOM}");
        }
    }
}

/// Asserts (after reclamation, with a deadline) that every item of `counts` was dropped.
#[track_caller]
fn assert_all_dropped(counts: &Counts, what: &str) {
    let dropped = reclaim_until(|| counts.total() == 0);
    assert!(dropped, "{what}: items {:?} still alive", counts.alive());
}

#[test]
fn a_popped_arc_is_released_by_the_next_reclamation() {
    let item = Arc::new(7u32);
    let q = TQueue::new();
    q.atomic().push(item.clone());
    let popped = atomically(|tx| q.pop(tx)).expect("pushed above");
    assert!(Arc::ptr_eq(&popped, &item));
    drop(popped);
    // No further pop: the queue must not keep its copy in the node that became the sentinel.
    let released = reclaim_until(|| Arc::strong_count(&item) == 1);
    assert!(
        released,
        "the queue still holds the popped Arc: strong count {}",
        Arc::strong_count(&item)
    );
    assert_eq!(q.atomic().len(), 0);
}

#[test]
fn a_popped_arc_is_released_by_the_next_reclamation_bounded() {
    let item = Arc::new(7u32);
    let q = TBoundedQueue::with_capacity(4);
    q.atomic().push(item.clone());
    let popped = atomically(|tx| q.pop(tx)).expect("pushed above");
    drop(popped);
    let released = reclaim_until(|| Arc::strong_count(&item) == 1);
    assert!(
        released,
        "the bounded queue still holds the popped Arc: strong count {}",
        Arc::strong_count(&item)
    );
}

#[test]
fn popped_items_and_dropped_queues_are_freed() {
    let live = Counts::new(1);
    let q = TQueue::new();
    for round in 0..100 {
        for _ in 0..100 {
            q.atomic().push(Tracked::new(0, &live));
        }
        for _ in 0..100 {
            drop(q.atomic().pop().expect("pushed above"));
        }
        let settled = reclaim_until(|| live.total() == 0);
        assert!(settled, "round {round}: {} live", live.total());
    }
    for _ in 0..10 {
        q.atomic().push(Tracked::new(0, &live));
    }
    drop(q);
    assert_all_dropped(&live, "after the drop");
}

/// Every item is dropped exactly once, whichever way it leaves: popped one per transaction,
/// several per transaction, popped by the transaction that pushed it, or still queued when the
/// queue is dropped (with the last pop's drop still pending, or already done).
#[test]
fn every_item_is_dropped_exactly_once() {
    const N: usize = 64;
    for reclaim_before_drop in [false, true] {
        let counts = Counts::new(N);
        let item = |id| Tracked::new(id, &counts);
        let q = TQueue::new();
        for id in 0..16 {
            q.atomic().push(item(id));
        }
        for id in 0..4 {
            assert_eq!(q.atomic().pop().map(|t| t.id()), Some(id));
        }
        let ids = atomically(|tx| {
            let a = q.pop(tx)?.map(|t| t.id());
            let b = q.pop(tx)?.map(|t| t.id());
            Ok([a, b])
        });
        assert_eq!(ids, [Some(4), Some(5)]);
        // Pops that drain the committed items and go on into the transaction's own pushes.
        let ids = atomically(|tx| {
            q.push(tx, item(16));
            q.push(tx, item(17));
            let mut ids = Vec::new();
            while let Some(t) = q.pop(tx)? {
                ids.push(t.id());
            }
            q.push(tx, item(18));
            Ok(ids)
        });
        assert_eq!(ids, (6..18).collect::<Vec<_>>());
        atomically(|tx| {
            for id in 19..N {
                q.push(tx, item(id));
            }
            Ok(())
        });
        assert_eq!(q.atomic().pop().map(|t| t.id()), Some(18));
        if reclaim_before_drop {
            let settled = reclaim_until(|| (0..19).all(|id| counts.live(id) == 0));
            assert!(settled, "popped items {:?} still alive", counts.alive());
        }
        drop(q);
        assert_all_dropped(&counts, "after dropping the queue");
    }
}

/// Commits a write of `gate` on another thread, and waits for it: an attempt that read `gate`
/// before then conflicts.
fn write_elsewhere(gate: &Arc<TVar<u32>>) {
    let gate = gate.clone();
    std::thread::spawn(move || {
        atomically(|tx| {
            gate.write(tx, 1);
            Ok(())
        })
    })
    .join()
    .unwrap();
}

/// A pop in an attempt that conflicts, panics, or sits in an `or_else` branch that retries
/// neither drops its item nor loses it; afterwards each item is dropped exactly once.
#[test]
fn pops_that_roll_back_neither_drop_nor_lose_the_item() {
    common::with_watchdog(20, || {
        let counts = Counts::new(4);
        let q = TQueue::new();
        for id in 0..4 {
            q.atomic().push(Tracked::new(id, &counts));
        }

        // A conflict: another thread writes a variable the attempt read, after its pop.
        let gate = Arc::new(TVar::new(0u32));
        let attempts = Cell::new(0);
        let popped = atomically(|tx| {
            attempts.set(attempts.get() + 1);
            gate.read(tx)?;
            let item = q.pop(tx)?.expect("four items");
            if attempts.get() == 1 {
                assert_eq!(counts.live(item.id()), 2, "the queue's copy and ours");
                write_elsewhere(&gate);
            }
            Ok(item.id())
        });
        assert_eq!(attempts.get(), 2, "the first attempt did not conflict");
        assert_eq!(
            popped, 0,
            "the rolled-back pop lost item 0, or the re-run skipped it"
        );

        // A panic after the pop.
        let result = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| -> commute::StmResult<()> {
                let item = q.pop(tx)?;
                assert_eq!(item.map(|t| t.id()), Some(1));
                panic!("deliberate panic after a pop");
            })
        }));
        assert!(result.is_err());
        assert_eq!(
            counts.live(1),
            1,
            "the panicking pop dropped or copied item 1"
        );

        // An `or_else` branch that pops and retries; the alternative pops for real.
        let popped = atomically(|tx| {
            tx.or_else(
                |tx| {
                    assert_eq!(q.pop(tx)?.map(|t| t.id()), Some(1));
                    assert_eq!(q.pop(tx)?.map(|t| t.id()), Some(2));
                    tx.retry()
                },
                |tx| Ok(q.pop(tx)?.map(|t| t.id())),
            )
        });
        assert_eq!(popped, Some(1));
        assert_eq!(q.atomic().peek().map(|t| t.id()), Some(2));

        let settled = reclaim_until(|| counts.live(0) == 0 && counts.live(1) == 0);
        assert!(settled, "popped items {:?} still alive", counts.alive());
        assert_eq!(
            (counts.live(2), counts.live(3)),
            (1, 1),
            "queued items dropped"
        );
        assert_eq!(
            q.atomic()
                .iter()
                .iter()
                .map(Tracked::id)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        drop(q);
        assert_all_dropped(&counts, "after dropping the queue");
    });
}

/// The ids of `items`, in order.
fn ids(items: &[Tracked]) -> Vec<usize> {
    items.iter().map(Tracked::id).collect()
}

/// A drain takes every item in one transaction, the committed ones and then the transaction's
/// own pushes, as repeated pops do: each item is dropped exactly once, by the reclamation after
/// the drain's commit; a drain in an `or_else` branch that retries, in an attempt that panics
/// or in one that conflicts drops nothing and loses nothing.
#[test]
fn drained_items_are_dropped_exactly_once_and_rolled_back_drains_drop_nothing() {
    common::with_watchdog(20, || {
        const N: usize = 12;
        let counts = Counts::new(N);
        let item = |id| Tracked::new(id, &counts);
        let q = TQueue::new();
        for id in 0..8 {
            q.atomic().push(item(id));
        }
        assert_eq!(atomically(|tx| q.drain(tx)).len(), 8, "a first drain");
        assert_all_dropped(&counts, "after the first drain");
        for id in 0..8 {
            q.atomic().push(item(id));
        }

        // An `or_else` branch that drains and retries; the alternative pops one.
        let popped = atomically(|tx| {
            tx.or_else(
                |tx| {
                    assert_eq!(ids(&q.drain(tx)?), (0..8).collect::<Vec<_>>());
                    assert_eq!(q.drain(tx)?.len(), 0, "drained twice");
                    tx.retry()
                },
                |tx| Ok(q.pop(tx)?.map(|t| t.id())),
            )
        });
        assert_eq!(popped, Some(0));

        // A panic after a drain.
        let result = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| -> commute::StmResult<()> {
                assert_eq!(ids(&q.drain(tx)?), (1..8).collect::<Vec<_>>());
                panic!("deliberate panic after a drain");
            })
        }));
        assert!(result.is_err());
        let settled = reclaim_until(|| counts.live(0) == 0);
        assert!(settled, "the popped item 0 is still alive");
        let queued: Vec<isize> = (1..8).map(|id| counts.live(id)).collect();
        assert_eq!(
            queued, [1; 7],
            "a rolled-back drain dropped or copied an item"
        );

        // A drain after a pop, into the transaction's own pushes, twice, in an attempt that
        // conflicts once: another thread writes a variable it read, after the drains.
        let gate = Arc::new(TVar::new(0u32));
        let attempts = Cell::new(0);
        let (first, drained, again) = atomically(|tx| {
            attempts.set(attempts.get() + 1);
            gate.read(tx)?;
            let first = q.pop(tx)?.map(|t| t.id());
            q.push(tx, item(8));
            q.push(tx, item(9));
            let drained = ids(&q.drain(tx)?);
            q.push(tx, item(10));
            let again = ids(&q.drain(tx)?);
            q.push(tx, item(11));
            if attempts.get() == 1 {
                write_elsewhere(&gate);
            }
            Ok((first, drained, again))
        });
        assert_eq!(attempts.get(), 2, "the first attempt did not conflict");
        assert_eq!(first, Some(1));
        assert_eq!(drained, (2..10).collect::<Vec<_>>());
        assert_eq!(again, [10]);
        let settled = reclaim_until(|| (0..=10).all(|id| counts.live(id) == 0));
        assert!(settled, "drained items {:?} still alive", counts.alive());
        assert_eq!(counts.live(11), 1, "the item pushed after the drains");
        assert_eq!(q.atomic().len(), 1);
        assert_eq!(ids(&q.atomic().drain()), [11]);
        assert_eq!(atomically(|tx| q.drain(tx)).len(), 0, "an empty queue");
        assert_all_dropped(&counts, "after the last drain");
        drop(q);
        assert_eq!(counts.total(), 0, "dropping the drained queue");
    });
}

/// Items whose drop panics, drained with others in one transaction: the panics pass on from
/// the reclamation that drops them (at the end of `atomically` or in `reclaim_retired`), and
/// still every item, panicking or not, is dropped exactly once.
#[test]
fn a_panicking_drop_of_a_drained_item_drops_every_other_item_once() {
    common::with_watchdog(20, || {
        const N: usize = 40;
        let counts = Counts::new(N);
        let q = TQueue::new();
        for id in 0..N {
            let armed = [3, 4, 13, 39].contains(&id);
            q.atomic().push(Tracked::armed(id, &counts, armed));
        }
        let mut panics = Vec::new();
        let mut note = |r: std::thread::Result<()>| {
            if let Err(payload) = r {
                panics.push(commute_test_support::panic_message(&*payload));
            }
        };
        note(catch_unwind(AssertUnwindSafe(|| {
            let drained = atomically(|tx| q.drain(tx));
            assert_eq!(ids(&drained), (0..N).collect::<Vec<_>>());
        })));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while counts.total() != 0 && std::time::Instant::now() < deadline {
            note(catch_unwind(reclaim_retired));
        }
        assert_eq!(counts.total(), 0, "items {:?} still alive", counts.alive());
        assert!(!panics.is_empty(), "no item's panic passed on");
        assert!(
            panics.iter().all(|m| m == BOOM),
            "a panic other than the items': {panics:?}"
        );
        assert_eq!(q.atomic().len(), 0);
        q.atomic().push(Tracked::new(0, &counts));
        assert_eq!(q.atomic().pop().map(|t| t.id()), Some(0));
        drop(q);
        assert_all_dropped(&counts, "after the last pop");
    });
}

/// Two threads: one pushes and pops, reclaiming after every chunk, the other walks the queue
/// (`for_each`, reading every item in place, and `iter`, cloning each) and pops now and then.
/// No walk reads a dropped item (`Tracked::id` checks), walks see ascending ids, and every item
/// is dropped exactly once. Run for `TQueue`, then for `TBoundedQueue`.
#[test]
fn walks_concurrent_with_pops_never_read_a_dropped_item() {
    common::with_watchdog(60, || {
        const ITEMS: usize = 4_000;
        const CHUNK: usize = 8;
        /// Items pushed before the first pop, so that walks find some.
        const BACKLOG: usize = 4 * CHUNK;
        for bounded in [false, true] {
            let counts = Counts::new(ITEMS);
            let q: Arc<TQueue<Tracked>> = Arc::new(TQueue::new());
            let bq: Arc<TBoundedQueue<Tracked>> =
                Arc::new(TBoundedQueue::with_capacity(2 * BACKLOG));
            let popped = Arc::new(AtomicUsize::new(0));
            let walks = Arc::new(AtomicUsize::new(0));
            let walker_gone = Arc::new(AtomicBool::new(false));
            {
                let (counts, q, bq, popped, walks, walker_gone) = (
                    counts.clone(),
                    q.clone(),
                    bq.clone(),
                    popped.clone(),
                    walks.clone(),
                    walker_gone.clone(),
                );
                run_threads(2, move |t| {
                    let pop = || {
                        let item = if bounded {
                            bq.atomic().pop()
                        } else {
                            q.atomic().pop()
                        };
                        if let Some(item) = item {
                            item.id();
                            popped.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    if t == 0 {
                        let push_chunk = |first: usize| {
                            atomically(|tx| {
                                for id in first..first + CHUNK {
                                    if bounded {
                                        bq.push(tx, Tracked::new(id, &counts))?;
                                    } else {
                                        q.push(tx, Tracked::new(id, &counts));
                                    }
                                }
                                Ok(())
                            })
                        };
                        for first in (0..BACKLOG).step_by(CHUNK) {
                            push_chunk(first);
                        }
                        let mut walked = 0;
                        for first in (BACKLOG..ITEMS).step_by(CHUNK) {
                            // Keep in step with the walker (no sleeping): a chunk starts only after
                            // it finished another walk, so that walks overlap every chunk's pops.
                            while walks.load(Ordering::SeqCst) == walked
                                && !walker_gone.load(Ordering::SeqCst)
                            {
                                std::thread::yield_now();
                            }
                            walked = walks.load(Ordering::SeqCst);
                            push_chunk(first);
                            for _ in 0..CHUNK {
                                pop();
                            }
                            // Drop what can be dropped now, as early as reclamation allows, while
                            // the other thread walks.
                            reclaim_retired();
                        }
                        while popped.load(Ordering::SeqCst) < ITEMS {
                            pop();
                        }
                    } else {
                        /// Tells the pusher, even if a check below fails, to stop waiting for walks.
                        struct Gone<'a>(&'a AtomicBool);
                        impl Drop for Gone<'_> {
                            fn drop(&mut self) {
                                self.0.store(true, Ordering::SeqCst);
                            }
                        }
                        let _gone = Gone(&walker_gone);
                        while popped.load(Ordering::SeqCst) < ITEMS {
                            let mut seen = Vec::new();
                            atomically(|tx| {
                                seen.clear();
                                if bounded {
                                    bq.for_each(tx, |item| seen.push(item.id()))
                                } else {
                                    q.for_each(tx, |item| seen.push(item.id()))
                                }
                            });
                            assert!(seen.windows(2).all(|w| w[0] < w[1]), "walk saw {seen:?}");
                            let cloned = if bounded {
                                bq.atomic().iter()
                            } else {
                                q.atomic().iter()
                            };
                            let ids: Vec<usize> = cloned.iter().map(Tracked::id).collect();
                            assert!(ids.windows(2).all(|w| w[0] < w[1]), "iter saw {ids:?}");
                            drop(cloned);
                            // Pop too, now and then, leaving some items for the walks.
                            if walks.fetch_add(1, Ordering::SeqCst) % 4 == 0 && seen.len() > CHUNK {
                                pop();
                            }
                        }
                    }
                });
            }
            assert_eq!(popped.load(Ordering::SeqCst), ITEMS);
            assert!(walks.load(Ordering::SeqCst) >= (ITEMS - BACKLOG) / CHUNK);
            assert_all_dropped(&counts, if bounded { "bounded" } else { "unbounded" });
        }
    });
}

#[test]
fn pushes_of_a_rolled_back_branch_are_freed_when_the_transaction_commits() {
    common::with_watchdog(20, || {
        let counts = Counts::new(1);
        let q = TQueue::new();
        atomically(|tx| {
            tx.or_else(
                |tx| {
                    q.push(tx, Tracked::new(0, &counts));
                    q.push(tx, Tracked::new(0, &counts));
                    tx.retry()
                },
                |_| Ok(()),
            )
        });
        // Not retired: never published, so freed with the attempt, no reclamation needed.
        assert_eq!(counts.total(), 0, "a rolled-back push leaked");
        assert_eq!(q.atomic().len(), 0);
    });
}

/// The bounded queue's items are dropped exactly once too: popped, drained, and left in a
/// dropped queue.
#[test]
fn bounded_items_are_dropped_exactly_once() {
    let counts = Counts::new(12);
    let q = TBoundedQueue::with_capacity(8);
    for id in 0..8 {
        q.atomic().push(Tracked::new(id, &counts));
    }
    for id in 0..5 {
        assert_eq!(q.atomic().pop().map(|t| t.id()), Some(id));
    }
    let settled = reclaim_until(|| (0..5).all(|id| counts.live(id) == 0));
    assert!(settled, "popped items {:?} still alive", counts.alive());
    for id in 8..12 {
        q.atomic().push(Tracked::new(id, &counts));
    }
    let drained = atomically(|tx| {
        let drained = q.drain(tx)?;
        q.push(tx, Tracked::new(0, &counts))?;
        Ok(ids(&drained))
    });
    assert_eq!(drained, [5, 6, 7, 8, 9, 10, 11]);
    let settled = reclaim_until(|| (1..12).all(|id| counts.live(id) == 0));
    assert!(settled, "drained items {:?} still alive", counts.alive());
    assert_eq!(counts.live(0), 1, "the item pushed after the drain");
    drop(q);
    assert_all_dropped(&counts, "after dropping the bounded queue");
}
