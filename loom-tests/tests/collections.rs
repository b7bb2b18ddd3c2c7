//! Loom models of the collections: `TCounter`, `TQueue`, `TBoundedQueue` and `TMap`.
//!
//! Under `cfg(loom)` the collections take tiny shapes: `TCounter` has 2 shards, `TMap::new()` is
//! a trie of 2 root slots, inner nodes of 2 and leaves of 2 (fixed hash seeds), and the core
//! scans retired values for reclamation in batches of one (at almost every commit). The models below pick keys by their hash bits
//! so that a bucket splits inside the model.
#![cfg(loom)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

use commute::{
    Owned, StmResult, TBoundedQueue, TCounter, TMap, TQueue, TVar, Taken, Transaction, atomically,
    reclaim_retired, stats,
};
use commute_loom_tests::{
    capped_builder, run_model, run_model_with, settle, silence_panics_starting_with,
};
use loom::cell::UnsafeCell;
use loom::sync::{Arc, Mutex};
use loom::thread;

// ---------------------------------------------------------------------------------------------
// Queue items whose reads, frees and leaks the models check.

/// How many `Item`s are alive in one execution.
///
/// A std atomic, not a loom one: it is only bookkeeping for the assertions, and a loom atomic
/// would add a branch point to every clone and drop. Loom runs its threads one at a time, and
/// every execution makes a new counter.
#[derive(Clone)]
struct Live(StdArc<StdAtomicUsize>);

impl Live {
    fn new() -> Self {
        Live(StdArc::new(StdAtomicUsize::new(0)))
    }

    fn count(&self) -> usize {
        self.0.load(StdOrdering::SeqCst)
    }
}

/// A queue item whose reads loom checks against its drop.
///
/// Reads go through a loom `UnsafeCell` that the drop writes: reading an item after (or not
/// ordered with) the free of its node is a causality violation, or finds the `FREED` mark. Every
/// item, clone or original, counts itself in `Live`, so a node that is never freed shows up
/// as a live item after `reclaim_retired`.
#[repr(C)]
struct Item {
    // Padding first: the allocator reuses the first words of a freed block, and a read of a
    // freed item should still find the cell's loom identity intact to report the race.
    _pad: [u64; 2],
    id: UnsafeCell<u64>,
    live: Live,
}

// SAFETY: shared references only read the cell; the one write is in `drop`, which has `&mut`.
unsafe impl Sync for Item {}

const FREED: u64 = u64::MAX;

impl Item {
    fn new(id: u64, live: &Live) -> Self {
        live.0.fetch_add(1, StdOrdering::SeqCst);
        Item {
            _pad: [0; 2],
            id: UnsafeCell::new(id),
            live: live.clone(),
        }
    }

    fn id(&self) -> u64 {
        // SAFETY: only `drop` writes the cell; loom checks that it does not race with us.
        let id = self.id.with(|p| unsafe { *p });
        assert_ne!(id, FREED, "read a freed item");
        id
    }
}

impl Clone for Item {
    fn clone(&self) -> Self {
        Item::new(self.id(), &self.live)
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        // SAFETY: loom checks that no read of the cell is concurrent with this write.
        self.id.with_mut(|p| unsafe { *p = FREED });
        self.live.0.fetch_sub(1, StdOrdering::SeqCst);
    }
}

/// Runs `f` as one transaction and asserts that it committed on its first attempt.
fn atomically_without_abort<T>(what: &str, f: impl Fn(&Transaction) -> StmResult<T>) -> T {
    let before = stats::thread();
    let result = atomically(f);
    let after = stats::thread();
    assert_eq!(after.aborts(), before.aborts(), "{what} aborted");
    assert_eq!(after.retries, before.retries, "{what} retried");
    assert_eq!(after.commits, before.commits + 1);
    result
}

/// Pops every item left, in its own transactions; their ids in order.
fn drain(queue: &TQueue<Item>) -> Vec<u64> {
    std::iter::from_fn(|| queue.atomic().pop().map(|item| item.id())).collect()
}

/// After every thread is joined and the queue drained: frees what can be freed, checks that
/// no item is alive (popped items are dropped by the reclamation after their pop, without
/// waiting for another pop), then drops the queue and checks that nothing is.
fn check_queue_freed(queue: Arc<TQueue<Item>>, live: &Live) {
    settle();
    reclaim_retired();
    assert_eq!(
        live.count(),
        0,
        "a popped item, or the item of a rolled-back push, was not freed"
    );
    drop(queue);
    assert_eq!(live.count(), 0, "dropping the queue leaked an item");
}

// ---------------------------------------------------------------------------------------------
// TCounter

/// Two threads add to a pair of counters in one transaction each (a 2-shard counter, where
/// they use different shards, and a 1-shard counter, where they share one), while the main
/// thread also reads the pair: the reader sees the pair equal, the totals are exact, and the
/// adders never abort.
///
/// Catches an add that reads its shard (it then conflicts with the other adder on the shared
/// shard), an add applied to a stale shard value (lost update), and a `get` that does not read
/// all shards at one serial point.
#[test]
fn counter_adds_never_abort() {
    run_model("counter_adds_never_abort", || {
        let pair = Arc::new((TCounter::new(), TCounter::with_shards(1)));
        assert_eq!(pair.0.shard_count(), 2, "loom counters have 2 shards");
        let adder = {
            let pair = pair.clone();
            thread::spawn(move || {
                atomically_without_abort("an adder", |tx| {
                    pair.0.add(tx, 1);
                    pair.1.add(tx, 1);
                    Ok(())
                });
            })
        };
        atomically_without_abort("an adder", |tx| {
            pair.0.add(tx, 2);
            pair.1.incr(tx);
            pair.1.incr(tx);
            Ok(())
        });
        let seen = atomically(|tx| {
            let sharded = pair.0.get(tx)?;
            let single = pair.1.get(tx)?;
            // Inside the attempt: the pair moves together in every snapshot.
            assert_eq!(sharded, single, "get saw half of an add");
            Ok(sharded)
        });
        assert!(seen == 2 || seen == 3, "get saw {seen}");
        adder.join().unwrap();
        assert_eq!((pair.0.load(), pair.1.load()), (3, 3));
    });
}

/// Two threads take ids from the per-thread blocks (2 ids a block under loom): all distinct,
/// never 0, increasing within a thread.
///
/// Catches a block reservation that is not atomic (two threads given the same block) and a
/// thread that runs past the end of its block.
#[test]
fn counter_next_id_unique() {
    run_model("counter_next_id_unique", || {
        let other = thread::spawn(|| [TCounter::next_id(), TCounter::next_id()]);
        let mine = [
            TCounter::next_id(),
            TCounter::next_id(),
            TCounter::next_id(),
        ];
        let theirs = other.join().unwrap();
        assert!(mine.is_sorted() && mine[0] < mine[1] && mine[1] < mine[2]);
        assert!(theirs[0] < theirs[1]);
        let mut all: Vec<u64> = mine.iter().chain(&theirs).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            5,
            "an id was handed out twice: {mine:?} {theirs:?}"
        );
        assert!(all[0] != 0);
    });
}

// ---------------------------------------------------------------------------------------------
// TQueue

/// A queue holding items `ids`, in order, each pushed by a one-call push.
fn queue_of(ids: &[u64], live: &Live) -> Arc<TQueue<Item>> {
    let queue = Arc::new(TQueue::new());
    for &id in ids {
        queue.atomic().push(Item::new(id, live));
    }
    queue
}

/// Two pushers push two items each (one in a single transaction, one in two) while the main
/// thread pops `pops` times: nothing is lost or duplicated, each pusher's order is kept, the
/// items of one transaction stay together, pushers never abort, and afterwards every replaced
/// sentinel is freed. If `one_call`, the second pusher's pushes and the pops are one-call
/// operations (`.atomic()`: commits of their own, without a transaction).
fn two_pushers_and_popper(pops: usize, one_call: bool) {
    let live = Live::new();
    let queue = Arc::new(TQueue::new());
    let together = {
        let (queue, live) = (queue.clone(), live.clone());
        thread::spawn(move || {
            atomically_without_abort("a push", |tx| {
                queue.push(tx, Item::new(11, &live));
                queue.push(tx, Item::new(12, &live));
                Ok(())
            });
        })
    };
    let apart = {
        let (queue, live) = (queue.clone(), live.clone());
        thread::spawn(move || {
            for id in [21, 22] {
                if one_call {
                    queue.atomic().push(Item::new(id, &live));
                } else {
                    atomically_without_abort("a push", |tx| {
                        queue.push(tx, Item::new(id, &live));
                        Ok(())
                    });
                }
            }
        })
    };
    let mut popped: Vec<u64> = (0..pops)
        .filter_map(|_| {
            let item = if one_call {
                queue.atomic().pop()
            } else {
                atomically(|tx| queue.pop(tx))
            };
            item.map(|item| item.id())
        })
        .collect();
    together.join().unwrap();
    apart.join().unwrap();
    popped.extend(drain(&queue));
    let at = |id: u64| popped.iter().position(|&p| p == id);
    let mut sorted = popped.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [11, 12, 21, 22], "lost or duplicated: {popped:?}");
    assert!(at(21) < at(22), "one pusher's order lost: {popped:?}");
    assert_eq!(
        at(12),
        at(11).map(|i| i + 1),
        "one transaction's pushes split: {popped:?}"
    );
    check_queue_freed(queue, &live);
}

/// Two pushers and a popper that pops once (the rest is drained after joining); see
/// `two_pushers_and_popper`.
///
/// Catches a push that links its node before commit or reads the tail (lost or duplicated
/// nodes, pushers aborting each other), a commit-time link that is not made under the tail's
/// lock, a pop that takes a node whose push has not committed, and replaced sentinels that are
/// never retired (leaks).
///
/// Preemption bound at most 2: three threads (about 35,000 executions at 2). At 3 the model
/// exceeds loom's branch limit (also at `LOOM_MAX_BRANCHES=20000`) with no assertion failing
/// first; where its executions stretch was not found (`docs/reliability.md`).
#[test]
fn queue_two_pushers_and_popper() {
    run_model_with("queue_two_pushers_and_popper", capped_builder(2), || {
        two_pushers_and_popper(1, false);
    });
}

/// As `queue_two_pushers_and_popper`, with one pusher's pushes and the pop made by one-call
/// operations (`.atomic()`: `TVar::publish_box_alone`, `TVar::commit_alone_retiring`) beside
/// the other pusher's transaction.
///
/// Catches a one-call push that publishes its node without the tail's lock, or links it before
/// it is stamped (lost or duplicated items, a pop of an unpublished node), and a one-call pop
/// whose marker is not retired (leaks).
///
/// Preemption bound at most 2: three threads. At 3, as `queue_two_pushers_and_popper`.
#[test]
fn queue_one_call_pushes_and_pop() {
    run_model_with("queue_one_call_pushes_and_pop", capped_builder(2), || {
        two_pushers_and_popper(1, true);
    });
}

/// Two one-call pops race for the two items of a queue while a one-call push adds a third:
/// the pops take the first two items, one each, and the third is left.
///
/// Catches a one-call pop whose commit does not check that `head` is still the sentinel it
/// read (both pops take the same item), one that reads a node freed by the other pop's
/// reclamation (loom reports it), and markers that are not retired (leaks).
///
/// Preemption bound at most 2: three threads.
#[test]
fn queue_one_call_pops_race() {
    run_model_with("queue_one_call_pops_race", capped_builder(2), || {
        let live = Live::new();
        let queue = queue_of(&[1, 2], &live);
        let pusher = {
            let (queue, live) = (queue.clone(), live.clone());
            thread::spawn(move || queue.atomic().push(Item::new(3, &live)))
        };
        let popper = {
            let queue = queue.clone();
            thread::spawn(move || queue.atomic().pop().map(|item| item.id()))
        };
        let mine = queue.atomic().pop().map(|item| item.id());
        let theirs = popper.join().unwrap();
        pusher.join().unwrap();
        let mut popped = [mine, theirs];
        popped.sort_unstable();
        assert_eq!(
            popped,
            [Some(1), Some(2)],
            "the pops took {mine:?} and {theirs:?}"
        );
        assert_eq!(drain(&queue), [3]);
        check_queue_freed(queue, &live);
    });
}

/// As `queue_two_pushers_and_popper`, with two racing pops, so that a pop can fall between the
/// two pushes of one pusher or find the queue empty after taking an item.
///
/// Catches the same bugs, and a pop that finds the queue empty (it reads `tail`) without
/// conflicting with a push that commits meanwhile.
///
/// Preemption bound 1: at 2 this model takes 1.26 million executions (over two minutes).
#[test]
fn queue_two_pushers_and_two_pops() {
    run_model_with("queue_two_pushers_and_two_pops", capped_builder(1), || {
        two_pushers_and_popper(2, false);
    });
}

/// A transaction pushes in the first branch of an `or_else`, which then retries, and pushes
/// again in the second branch after reading a variable that the main thread changes (so the
/// attempt may conflict and re-run). The main thread then waits for the item: exactly one
/// item arrives, from the second branch of the committed attempt, and the nodes of every
/// rolled-back push are freed.
///
/// Catches pushes of a rolled-back branch or attempt that still get published (the
/// `ROLLED_BACK` item or a duplicate appears), nodes of rolled-back pushes that leak, and a
/// lost wake-up of a popper blocked on an empty queue (an "empty" that is not a transactional
/// read of `tail`: loom reports the popper as a deadlock).
#[test]
fn queue_rolled_back_push_never_appears() {
    const ROLLED_BACK: u64 = 99;
    run_model("queue_rolled_back_push_never_appears", || {
        let live = Live::new();
        let queue = Arc::new(TQueue::new());
        let gate = Arc::new(TVar::new(0u64));
        let pusher = {
            let (queue, gate, live) = (queue.clone(), gate.clone(), live.clone());
            thread::spawn(move || {
                atomically(|tx| {
                    tx.or_else(
                        |tx| {
                            queue.push(tx, Item::new(ROLLED_BACK, &live));
                            tx.retry()
                        },
                        |tx| {
                            let seen = gate.read(tx)?;
                            queue.push(tx, Item::new(10 + seen, &live));
                            Ok(())
                        },
                    )
                });
            })
        };
        atomically(|tx| {
            gate.write(tx, 1);
            Ok(())
        });
        let first = atomically(|tx| queue.pop_wait(tx)).id();
        assert!(first == 10 || first == 11, "popped {first}");
        pusher.join().unwrap();
        assert_eq!(drain(&queue), [], "an extra item after {first}");
        assert_eq!(queue.atomic().len(), 0);
        check_queue_freed(queue, &live);
    });
}

/// A transaction sets a flag and pushes; a popper reads the flag, then pops. Whatever the
/// popper's attempt sees must be one snapshot: the item without the flag is impossible, even
/// in an attempt that is rolled back later.
///
/// Catches a pop that follows a link published by a newer commit without
/// `observe_version` (its snapshot mixes states: a failure of opacity).
#[test]
fn queue_pop_snapshot_includes_push() {
    run_model("queue_pop_snapshot_includes_push", || {
        let live = Live::new();
        let queue = Arc::new(TQueue::new());
        let flag = Arc::new(TVar::new(false));
        let pusher = {
            let (queue, flag, live) = (queue.clone(), flag.clone(), live.clone());
            thread::spawn(move || {
                atomically(|tx| {
                    flag.write(tx, true);
                    queue.push(tx, Item::new(1, &live));
                    Ok(())
                });
            })
        };
        let popped = atomically(|tx| {
            let flagged = flag.read(tx)?;
            let popped = queue.pop(tx)?.map(|item| item.id());
            assert!(
                flagged || popped.is_none(),
                "popped {popped:?} from a snapshot without its push"
            );
            Ok(popped)
        });
        pusher.join().unwrap();
        let rest = drain(&queue);
        assert_eq!(popped.into_iter().chain(rest).collect::<Vec<_>>(), [1]);
        check_queue_freed(queue, &live);
    });
}

/// Two threads pop from a queue of three items (one pops twice, the other once): each item is
/// popped once, in order, and a pop never reads the node a concurrent pop has replaced and
/// freed. The main thread's pop reads the sentinel and its successor while the other thread
/// pops both, retiring them.
///
/// Catches sentinels freed at commit without waiting for running transactions (no grace
/// period, or a pop that does not pin), and freed or leaked nodes.
#[test]
fn queue_pops_never_read_freed_nodes() {
    run_model("queue_pops_never_read_freed_nodes", || {
        let live = Live::new();
        let queue = Arc::new(TQueue::new());
        atomically(|tx| {
            for id in 1..=3 {
                queue.push(tx, Item::new(id, &live));
            }
            Ok(())
        });
        let popper = {
            let queue = queue.clone();
            thread::spawn(move || {
                let first = atomically(|tx| queue.pop(tx)).map(|item| item.id());
                let second = atomically(|tx| queue.pop(tx)).map(|item| item.id());
                [first.unwrap(), second.unwrap()]
            })
        };
        let mine = atomically(|tx| queue.pop(tx)).unwrap().id();
        let theirs = popper.join().unwrap();
        assert!(theirs[0] < theirs[1], "out of order: {theirs:?}");
        let mut all = vec![mine, theirs[0], theirs[1]];
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3], "{mine} {theirs:?}");
        check_queue_freed(queue, &live);
    });
}

/// A transaction pops the queue's one item, pushes two and pops the first of them, while the
/// main thread reads the length: every committed state holds one item. The commit stores
/// `head` pointing at the attempt's own first pending node; it used to unlock `head` before
/// `tail`'s publishing operation stamped that node, and a reader in between took the node for
/// one of its own pending pushes (`len` answered 0; a one-call pop took its unpublished
/// successor's stamp as a version, corrupting the clock: a double free). A reviewer's model.
#[test]
fn queue_len_never_sees_a_head_before_its_node_is_stamped() {
    run_model(
        "queue_len_never_sees_a_head_before_its_node_is_stamped",
        || {
            let live = Live::new();
            let queue = queue_of(&[1], &live);
            let writer = {
                let (queue, live) = (queue.clone(), live.clone());
                thread::spawn(move || {
                    atomically(|tx| {
                        queue.pop(tx)?;
                        queue.push(tx, Item::new(2, &live));
                        queue.push(tx, Item::new(3, &live));
                        queue.pop(tx)?;
                        Ok(())
                    });
                })
            };
            let len = atomically(|tx| queue.len(tx));
            writer.join().unwrap();
            assert_eq!(len, 1, "every committed state of the queue holds one item");
            assert_eq!(drain(&queue), [3]);
            check_queue_freed(queue, &live);
        },
    );
}

/// The main thread walks the queue (`for_each`, reading every item in place) while one thread
/// pushes two items in one transaction and another pops the two items there were, one at a
/// time: the walk sees one of the states a serial order allows, and never reads an item whose
/// node a pop has freed (the second pop frees the node of the first item).
///
/// Catches a walk that does not pin (loom reports the read of a freed item), one that mixes
/// states (half of a transaction's pushes, or popped items beside items pushed after them in a
/// snapshot without the pops), and one that runs past the end of its snapshot; and a length
/// (the tail's position less the head's) that is not the walk's.
///
/// Preemption bound at most 2: three threads.
#[test]
fn queue_walk_sees_one_state() {
    run_model_with("queue_walk_sees_one_state", capped_builder(2), || {
        let live = Live::new();
        let queue = queue_of(&[1, 2], &live);
        let pusher = {
            let (queue, live) = (queue.clone(), live.clone());
            thread::spawn(move || {
                atomically(|tx| {
                    queue.push(tx, Item::new(3, &live));
                    queue.push(tx, Item::new(4, &live));
                    Ok(())
                });
            })
        };
        let popper = {
            let queue = queue.clone();
            thread::spawn(move || {
                let first = queue.atomic().pop().map(|item| item.id());
                let second = queue.atomic().pop().map(|item| item.id());
                [first, second]
            })
        };
        let (seen, len) = atomically(|tx| {
            let mut seen = Vec::new();
            queue.for_each(tx, |item| seen.push(item.id()))?;
            Ok((seen, queue.len(tx)?))
        });
        let serial: [&[u64]; 6] = [&[1, 2], &[1, 2, 3, 4], &[2], &[2, 3, 4], &[], &[3, 4]];
        assert!(serial.contains(&seen.as_slice()), "the walk saw {seen:?}");
        assert_eq!(len, seen.len(), "the length of the walk's state");
        pusher.join().unwrap();
        assert_eq!(popper.join().unwrap(), [Some(1), Some(2)]);
        assert_eq!(drain(&queue), [3, 4]);
        check_queue_freed(queue, &live);
    });
}

/// The main thread drains the queue (`TQueue::drain`, one transaction) while another thread
/// pushes an item and then pops one: the drain takes a run from the front as a serial order
/// allows, every item is taken exactly once, no read meets a freed node, and every node and
/// item is freed afterwards.
///
/// Catches a drain that retires a sentinel it did not unlink (freed while the queue still
/// reaches it: loom reports the read), one that moves `head` short of its last item (that item
/// is taken twice) or past it, and one that misses nodes published during its walk.
#[test]
fn queue_drain_vs_push_and_pop() {
    run_model("queue_drain_vs_push_and_pop", || {
        let live = Live::new();
        let queue = queue_of(&[1, 2], &live);
        let other = {
            let (queue, live) = (queue.clone(), live.clone());
            thread::spawn(move || {
                atomically_without_abort("a push", |tx| {
                    queue.push(tx, Item::new(3, &live));
                    Ok(())
                });
                queue.atomic().pop().map(|item| item.id())
            })
        };
        let drained: Vec<u64> = atomically(|tx| queue.drain(tx))
            .iter()
            .map(Item::id)
            .collect();
        let popped = other.join().unwrap();
        let serial: [(&[u64], Option<u64>); 3] =
            [(&[1, 2], Some(3)), (&[1, 2, 3], None), (&[2, 3], Some(1))];
        assert!(
            serial.contains(&(drained.as_slice(), popped)),
            "drained {drained:?}, popped {popped:?}"
        );
        assert_eq!(drain(&queue), []);
        check_queue_freed(queue, &live);
    });
}

/// A thread pops the only item and reclaims at once, while the main thread reads the item in
/// place (`for_each`) and clones it (`peek`) in one transaction that may be pinned before the
/// pop commits: the reader sees the item or an empty queue, never a dropped item, and the
/// popped item is dropped by reclamation alone, with no later pop.
///
/// Catches a popped item dropped at the pop's commit, or retired without waiting for readers
/// pinned before it (loom reports the reader's clone racing with the drop), and a popped item
/// kept alive in the sentinel until the next pop (`check_queue_freed` finds it alive).
#[test]
fn queue_popped_item_dropped_after_readers_only() {
    run_model("queue_popped_item_dropped_after_readers_only", || {
        let live = Live::new();
        let queue = Arc::new(TQueue::new());
        queue.atomic().push(Item::new(1, &live));
        let popper = {
            let queue = queue.clone();
            thread::spawn(move || {
                let popped = queue.atomic().pop().map(|item| item.id());
                reclaim_retired();
                popped
            })
        };
        let seen = atomically(|tx| {
            let mut walked = Vec::new();
            queue.for_each(tx, |item| walked.push(item.id()))?;
            let front = queue.peek(tx)?.map(|item| item.id());
            Ok((walked, front))
        });
        assert!(
            seen == (vec![1], Some(1)) || seen == (vec![], None),
            "the reader saw {seen:?}"
        );
        assert_eq!(popper.join().unwrap(), Some(1));
        assert_eq!(drain(&queue), []);
        check_queue_freed(queue, &live);
    });
}

/// A taker moves the front item out ([`TQueue::take`], then `Taken::into_inner`, then drops
/// it), or drops its handle unused, while the main thread's transaction reads the item: the
/// move or the drop comes after the reader's attempt, and the item is dropped once.
///
/// Catches an `into_inner` that does not wait for the grace period of the take's commit (loom
/// reports the reader's read racing with the moved item's drop), and a handle and a marker that
/// both drop the item, or neither (`check_queue_freed`).
fn taken_item_vs_reader(consume: bool) {
    let live = Live::new();
    let queue = Arc::new(TQueue::new());
    queue.atomic().push(Item::new(1, &live));
    let taker = {
        let queue = queue.clone();
        thread::spawn(move || {
            let taken = atomically(|tx| queue.take(tx)).expect("the item is queued");
            let id = if consume {
                taken.into_inner().id()
            } else {
                drop(taken);
                1
            };
            reclaim_retired();
            id
        })
    };
    let seen = atomically(|tx| {
        let mut walked = Vec::new();
        queue.for_each(tx, |item| walked.push(item.id()))?;
        Ok(walked)
    });
    assert!(seen == [1] || seen.is_empty(), "the reader saw {seen:?}");
    assert_eq!(taker.join().unwrap(), 1);
    assert_eq!(drain(&queue), []);
    check_queue_freed(queue, &live);
}

#[test]
fn queue_taken_item_moves_after_readers_only() {
    run_model("queue_taken_item_moves_after_readers_only", || {
        taken_item_vs_reader(true)
    });
}

#[test]
fn queue_unused_taken_item_dropped_once() {
    run_model("queue_unused_taken_item_dropped_once", || {
        taken_item_vs_reader(false)
    });
}

/// Waits for the main thread to put a handle into `slot`, and takes it.
fn wait_for_handle<H>(slot: &Mutex<Option<H>>) -> H {
    loop {
        if let Some(handle) = slot.lock().unwrap().take() {
            return handle;
        }
        thread::yield_now();
    }
}

/// The main thread takes the front item while another thread runs a transaction that may
/// still read it (so the take's marker waits for it), then hands the
/// [`Taken`] handle over through a mutex to that thread, which reads the item
/// through it (`Deref`) and drops it unused, while the main thread reclaims, running the
/// marker: whichever of the two comes second drops the item, after the other's reads (the
/// handle's, when the marker comes second).
///
/// Catches an item's fate (`Ticket::fate`) that does not order what the first of the two did
/// with the item before the second's drop of it (loom reports the handle's read racing with
/// the marker's drop). The other models keep the handle on the thread that reclaims.
#[test]
fn queue_taken_item_read_elsewhere_dropped_after_the_read() {
    run_model(
        "queue_taken_item_read_elsewhere_dropped_after_the_read",
        || {
            let live = Live::new();
            let queue = queue_of(&[1], &live);
            let slot = Arc::new(Mutex::new(None));
            let reader = {
                let (queue, slot) = (queue.clone(), slot.clone());
                thread::spawn(move || {
                    let front = atomically(|tx| queue.peek(tx)).map(|item| item.id());
                    assert!(front.is_none() || front == Some(1));
                    let taken: Taken<Item> = wait_for_handle(&slot);
                    assert_eq!(taken.id(), 1);
                })
            };
            let taken = atomically(|tx| queue.take(tx)).expect("the item is queued");
            *slot.lock().unwrap() = Some(taken);
            reclaim_retired();
            reader.join().unwrap();
            assert_eq!(drain(&queue), []);
            check_queue_freed(queue, &live);
        },
    );
}

/// The main thread's take hands its [`Taken`] handle to another thread from inside the attempt,
/// before the commit, and that thread drops it unused while the attempt commits and the main
/// thread then reclaims: the handle's drop and the commit meet in the ticket's `state` in either
/// order. A handle dropped first leaves its share of the item to the commit, which gives it to
/// the take's marker; a handle dropped after the commit gives its share to the marker itself.
/// Either way the item is dropped once, and nothing of the queue is leaked.
///
/// Catches a commit that does not take over the share of a handle dropped before it (the item
/// is never dropped), and a handle that, dropped before the commit, drops the item itself (it
/// is dropped twice, or while still in the queue). The other models drop their handles on the
/// thread whose take committed, after the commit.
#[test]
fn queue_taken_handle_sent_out_before_the_commit_dropped_elsewhere() {
    run_model(
        "queue_taken_handle_sent_out_before_the_commit_dropped_elsewhere",
        || {
            let live = Live::new();
            let queue = queue_of(&[1], &live);
            let slot = Arc::new(Mutex::new(None));
            let dropper = {
                let slot = slot.clone();
                thread::spawn(move || {
                    let taken: Taken<Item> = wait_for_handle(&slot);
                    drop(taken);
                })
            };
            atomically_without_abort("the take", |tx| {
                let taken = queue.take(tx)?.expect("the item is queued");
                *slot.lock().unwrap() = Some(taken);
                Ok(())
            });
            reclaim_retired();
            dropper.join().unwrap();
            assert_eq!(drain(&queue), []);
            check_queue_freed(queue, &live);
        },
    );
}

// ---------------------------------------------------------------------------------------------
// TBoundedQueue

/// A full queue of capacity 1: a pusher blocks (retry) until the main thread's pop returns the
/// credit, then its item is the next one popped.
///
/// Catches a pop that does not give the credit back, or whose commit does not wake the
/// blocked pusher (loom reports it as a deadlock), a pop of an empty queue that does not wait
/// for the push, and a push over capacity.
#[test]
fn bounded_blocked_push_woken_by_pop() {
    run_model("bounded_blocked_push_woken_by_pop", || {
        let queue = Arc::new(TBoundedQueue::with_capacity(1));
        queue.atomic().push(1u64);
        let pusher = {
            let queue = queue.clone();
            thread::spawn(move || queue.atomic().push(2))
        };
        assert_eq!(queue.atomic().pop(), Some(1));
        assert_eq!(queue.atomic().pop_wait(), 2);
        pusher.join().unwrap();
        assert_eq!(queue.atomic().try_push(3), Ok(()));
        assert_eq!(queue.atomic().try_push(4), Err(4), "over capacity");
    });
}

/// A full queue of capacity 1 closed while a sender waits for room (or before it looks): the
/// sender gets its item back, and a receiver drains the one item, then sees the queue closed.
///
/// Catches a close whose commit does not wake a blocked `send` (loom reports a deadlock), a
/// send that lands after the close, and a `recv` that reports closed before draining.
#[test]
fn bounded_close_wakes_a_blocked_send() {
    run_model("bounded_close_wakes_a_blocked_send", || {
        let queue = Arc::new(TBoundedQueue::with_capacity(1));
        queue.atomic().push(1u64);
        let sender = {
            let queue = queue.clone();
            thread::spawn(move || queue.atomic().send(2))
        };
        queue.atomic().close();
        assert_eq!(sender.join().unwrap(), Err(commute::Closed(2)));
        assert_eq!(queue.atomic().recv(), Some(1));
        assert_eq!(queue.atomic().recv(), None);
    });
}

/// The start of `TQueue::push`'s panic on a closed queue, which the model below expects.
const CLOSED_PUSH: &str = "TQueue::push on a closed queue";

/// A close commits while another thread looks at the queue and then pushes to it, alone or in a
/// transaction: once that thread has seen the close (`is_closed`), its push panics and lands
/// nothing; a push that did not see it either lands its item or panics.
///
/// Catches a flag for pushes set after the close's commit (as a hook once did) or published
/// without ordering: a push after the close was seen would be accepted, and its item land after
/// the close, where a receiver that saw the queue closed and drained never looks.
fn push_after_a_seen_close(one_call: bool) {
    run_model("queue_push_after_a_seen_close_panics", move || {
        let queue = Arc::new(TQueue::new());
        let closer = {
            let queue = queue.clone();
            thread::spawn(move || queue.atomic().close())
        };
        let seen_closed = atomically(|tx| queue.is_closed(tx));
        let pushed = catch_unwind(AssertUnwindSafe(|| {
            if one_call {
                queue.atomic().push(7u64);
            } else {
                atomically(|tx| {
                    queue.push(tx, 7u64);
                    Ok(())
                });
            }
        }))
        .is_ok();
        closer.join().unwrap();
        if seen_closed {
            assert!(!pushed, "a push after the close was seen was accepted");
        }
        let items = std::iter::from_fn(|| queue.atomic().pop()).count();
        assert_eq!(
            items,
            usize::from(pushed),
            "what landed is what was accepted"
        );
    });
}

#[test]
fn queue_push_after_a_seen_close_panics() {
    silence_panics_starting_with(CLOSED_PUSH);
    push_after_a_seen_close(true);
    push_after_a_seen_close(false);
}

// ---------------------------------------------------------------------------------------------
// TMap

type Map = TMap<u64, u64>;

/// The first key (from 1) whose hash has `bits` in its low `width` bits and that is not in
/// `taken`.
fn key_with_low_bits(map: &Map, bits: u64, width: u32, taken: &[u64]) -> u64 {
    let mask = (1u64 << width) - 1;
    (1..)
        .find(|k| map.hasher().hash_one(k) & mask == bits && !taken.contains(k))
        .unwrap()
}

/// Three keys of root slot 0 of a map of 2 root slots, inner nodes of 2 and leaves of 1 (the
/// split models' shape): `b` differs from `a` in hash bit 1, so the two split the root slot
/// into sibling leaves; `c` shares bits 0 and 1 with `a` and differs in bit 2, so it splits
/// `a`'s leaf again, one level down.
fn split_keys(map: &Map) -> (u64, u64, u64) {
    let a = key_with_low_bits(map, 0b000, 3, &[]);
    let b = key_with_low_bits(map, 0b10, 2, &[a]);
    let c = key_with_low_bits(map, 0b100, 3, &[a]);
    (a, b, c)
}

/// In a map of 2 root slots, inner nodes of 2 and leaves of 1, one root bucket holds `a`; a
/// thread inserts `b`, splitting the bucket by hash bit 1, while the main thread inserts `c`,
/// which shares bits 0 and 1 with `a`, so its insert splits `a`'s new leaf again (or, if it
/// goes first, splits two levels at once). Inside the main thread's transaction the length
/// matches the keys it sees; at the end all three keys are there and the length is 3.
///
/// Catches a split that loses or duplicates an entry, an insert into a leaf that a concurrent
/// split has replaced (its slot must be read and validated), and a length that drifts from
/// the entries.
#[test]
fn map_concurrent_splits_keep_every_key() {
    run_model("map_concurrent_splits_keep_every_key", || {
        let map: Arc<Map> = Arc::new(TMap::with_config(2, 2, 1));
        let (a, b, c) = split_keys(&map);
        map.atomic().insert(a, 1);
        let splitter = {
            let map = map.clone();
            thread::spawn(move || map.atomic().insert(b, 2))
        };
        let inserted = atomically(|tx| {
            let old = map.insert(tx, c, 3)?;
            let has_b = map.contains_key(tx, &b)?;
            let len = map.len(tx)?;
            assert_eq!(len, 2 + usize::from(has_b), "len inside a transaction");
            assert_eq!(map.get(tx, &a)?, Some(1), "a lost inside a transaction");
            Ok(old)
        });
        assert_eq!(inserted, None);
        assert_eq!(splitter.join().unwrap(), None);
        let mut entries = map.atomic().iter();
        entries.sort_unstable();
        let mut expected = vec![(a, 1), (b, 2), (c, 3)];
        expected.sort_unstable();
        assert_eq!(entries, expected);
        assert_eq!(map.atomic().len(), 3);
    });
}

/// After a split (keys `a` and `b` in sibling leaves), a thread inserts `c` into `a`'s leaf,
/// splitting it, while the main thread updates `b`: neither aborts.
///
/// Catches a split that writes (or reads) more than the one slot it replaces, and a length
/// update that is not a commutative add.
#[test]
fn map_split_does_not_conflict_with_sibling() {
    run_model("map_split_does_not_conflict_with_sibling", || {
        let map: Arc<Map> = Arc::new(TMap::with_config(2, 2, 1));
        let (a, b, c) = split_keys(&map);
        map.atomic().insert(a, 1);
        map.atomic().insert(b, 2);
        let splitter = {
            let map = map.clone();
            thread::spawn(move || {
                atomically_without_abort("an insert into another leaf", |tx| map.insert(tx, c, 3))
            })
        };
        let old =
            atomically_without_abort("an update of a sibling leaf", |tx| map.insert(tx, b, 20));
        assert_eq!(old, Some(2));
        assert_eq!(splitter.join().unwrap(), None);
        assert_eq!(map.atomic().len(), 3);
        assert_eq!(
            (
                map.atomic().get(&a),
                map.atomic().get(&b),
                map.atomic().get(&c)
            ),
            (Some(1), Some(20), Some(3))
        );
    });
}

/// In a map of 2 root slots, inner nodes of 2 and leaves of 1, root slot 0 is an inner node
/// whose first child holds `a`, and root slot 1 holds `x`. A thread inserts `c`, which shares
/// bits 0 and 1 with `a` (so the child becomes an inner node over two new leaves), and sets
/// `x` to 2, in one transaction; the main thread reads `x`, then looks `c` up: `c` is there
/// exactly when `x` is 2.
///
/// Catches a walk that takes a slot below the root that holds an inner node as settled (not
/// recorded, `TVar::read_settled`) without checking that its version is no newer than the
/// attempt's read version: the reader then follows the split made after its snapshot and sees
/// `c` beside the old `x`.
#[test]
fn map_walk_through_a_new_inner_node_sees_one_state() {
    run_model("map_walk_through_a_new_inner_node_sees_one_state", || {
        let map: Arc<Map> = Arc::new(TMap::with_config(2, 2, 1));
        let (a, b, c) = split_keys(&map);
        let x = key_with_low_bits(&map, 0b1, 1, &[]);
        for (k, v) in [(a, 1), (b, 1), (x, 1)] {
            map.atomic().insert(k, v);
        }
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    map.insert(tx, c, 3)?;
                    map.insert(tx, x, 2)
                })
            })
        };
        let (x_now, has_c) = atomically(|tx| Ok((map.get(tx, &x)?, map.contains_key(tx, &c)?)));
        assert_eq!(
            x_now == Some(2),
            has_c,
            "a torn walk: x {x_now:?}, c there: {has_c}"
        );
        assert_eq!(writer.join().unwrap(), Some(1));
        assert_eq!(map.atomic().get(&c), Some(3));
    });
}

/// A thread overwrites key `k` while the main thread removes it; another key shares the leaf.
/// The outcome is one of the two serial orders, with the length (checked inside both
/// transactions too) matching.
///
/// Catches a remove and an insert of one key that both commit against the same old leaf (one
/// is lost), and a length counted for an insert that only replaced a value.
#[test]
fn map_insert_vs_remove_same_key() {
    run_model("map_insert_vs_remove_same_key", || {
        let map: Arc<Map> = Arc::new(TMap::new());
        let k = key_with_low_bits(&map, 0, 1, &[]);
        let other = key_with_low_bits(&map, 0, 1, &[k]);
        map.atomic().insert(k, 1);
        map.atomic().insert(other, 0);
        let inserter = {
            let map = map.clone();
            thread::spawn(move || {
                atomically(|tx| {
                    let old = map.insert(tx, k, 2)?;
                    assert_eq!(map.len(tx)?, 2, "len after insert");
                    Ok(old)
                })
            })
        };
        let removed = atomically(|tx| {
            let removed = map.remove(tx, &k)?;
            assert_eq!(map.len(tx)?, 1, "len after remove");
            assert_eq!(map.get(tx, &k)?, None);
            Ok(removed)
        });
        let replaced = inserter.join().unwrap();
        let now = map.atomic().get(&k);
        match (replaced, removed) {
            // The insert first: the remove takes its value.
            (Some(1), Some(2)) => assert_eq!(now, None),
            // The remove first: the insert adds the key again.
            (None, Some(1)) => assert_eq!(now, Some(2)),
            outcome => panic!("not serialisable: {outcome:?}, now {now:?}"),
        }
        assert_eq!(map.atomic().len(), 1 + usize::from(now.is_some()));
        assert_eq!(map.atomic().get(&other), Some(0));
    });
}

/// How the taker of [`owned_value_vs_reader`] gets the value of key 1 out of the map.
#[derive(Clone, Copy)]
enum Out {
    /// `remove` in a transaction, then `into_inner`.
    Move,
    /// `remove` in a transaction, the handle dropped unused.
    Leave,
    /// `.atomic().insert` of a new value (a commit of its own outside transactions), the old
    /// value moved out of the handle it returns.
    Replace,
}

/// A map of [`Owned`] items holds keys 1 and 2 in one bucket (every bucket update shares the
/// other key's cell); a taker gets key 1's item out (see [`Out`]) while the main thread's
/// transaction reads both items: the move or drop comes after the reader's attempt, every item
/// is dropped exactly once, and nothing is left once the map is dropped.
///
/// Catches a handle that does not wait for the grace period of the removal's commit (loom
/// reports the reader's read racing with the moved item's drop), cell shares that are not
/// counted (an item dropped twice, or never: `Live`), and a last share that drops an item
/// already moved out.
fn owned_value_vs_reader(out: Out) {
    let live = Live::new();
    let map: Arc<TMap<u64, Owned<Item>>> = Arc::new(TMap::new());
    map.atomic().insert(1, Owned::new(Item::new(1, &live)));
    map.atomic().insert(2, Owned::new(Item::new(2, &live)));
    let taker = {
        let (map, live) = (map.clone(), live.clone());
        thread::spawn(move || {
            let id = match out {
                Out::Move => atomically(|tx| map.remove(tx, &1))
                    .expect("key 1 is there")
                    .into_inner()
                    .id(),
                Out::Leave => {
                    drop(atomically(|tx| map.remove(tx, &1)).expect("key 1 is there"));
                    1
                }
                Out::Replace => map
                    .atomic()
                    .insert(1, Owned::new(Item::new(3, &live)))
                    .expect("key 1 is there")
                    .into_inner()
                    .id(),
            };
            reclaim_retired();
            id
        })
    };
    let seen = atomically(|tx| {
        let one = map.get_ref(tx, &1)?.map(|item| item.id());
        let two = map.get_ref(tx, &2)?.map(|item| item.id());
        Ok((one, two))
    });
    let after = match out {
        Out::Replace => Some(3),
        Out::Move | Out::Leave => None,
    };
    assert!(
        seen == (Some(1), Some(2)) || seen == (after, Some(2)),
        "the reader saw {seen:?}"
    );
    assert_eq!(taker.join().unwrap(), 1);
    assert_eq!(map.atomic().len(), 1 + usize::from(after.is_some()));
    drop(map);
    settle();
    reclaim_retired();
    assert_eq!(live.count(), 0, "an item was leaked");
}

#[test]
fn map_owned_value_moves_after_readers_only() {
    run_model("map_owned_value_moves_after_readers_only", || {
        owned_value_vs_reader(Out::Move)
    });
}

#[test]
fn map_owned_value_left_in_its_handle_dropped_once() {
    run_model("map_owned_value_left_in_its_handle_dropped_once", || {
        owned_value_vs_reader(Out::Leave)
    });
}

#[test]
fn map_owned_value_replaced_alone_moves_after_readers_only() {
    run_model(
        "map_owned_value_replaced_alone_moves_after_readers_only",
        || owned_value_vs_reader(Out::Replace),
    );
}

/// A map holds one [`Owned`] item. The main thread removes it while another thread runs a
/// transaction that may still read it (so the old bucket waits for it), then hands the handle
/// over through a mutex to that thread, which reads the item through it and then drops it
/// unused (`consume` false) or moves the item out (`into_inner`), while the main thread
/// reclaims, freeing the old bucket and its share of the item's cell: the last share drops
/// the item if it was left, after the other's reads, and never drops an item moved out.
///
/// Catches a cell count whose last release is not ordered after the other shares' (loom
/// reports the handle's read racing with the bucket's drop of the item, or the moved item
/// dropped twice): the other models release every share on one thread.
fn owned_value_read_elsewhere(consume: bool) {
    let live = Live::new();
    let map: Arc<TMap<u64, Owned<Item>>> = Arc::new(TMap::new());
    map.atomic().insert(1, Owned::new(Item::new(1, &live)));
    let slot = Arc::new(Mutex::new(None));
    let reader = {
        let (map, slot) = (map.clone(), slot.clone());
        thread::spawn(move || {
            let seen = atomically(|tx| Ok(map.get_ref(tx, &1)?.map(|item| item.id())));
            assert!(seen.is_none() || seen == Some(1));
            let taken: Taken<Item> = wait_for_handle(&slot);
            assert_eq!(taken.id(), 1);
            if consume {
                assert_eq!(taken.into_inner().id(), 1);
            }
        })
    };
    let taken = map.atomic().remove(&1).expect("key 1 is there");
    *slot.lock().unwrap() = Some(taken);
    reclaim_retired();
    reader.join().unwrap();
    drop(map);
    settle();
    reclaim_retired();
    assert_eq!(live.count(), 0, "an item was leaked, or dropped twice");
}

#[test]
fn map_owned_value_read_elsewhere_dropped_after_the_read() {
    run_model(
        "map_owned_value_read_elsewhere_dropped_after_the_read",
        || owned_value_read_elsewhere(false),
    );
    run_model("map_owned_value_read_elsewhere_moved_once", || {
        owned_value_read_elsewhere(true)
    });
}
