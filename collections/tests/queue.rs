//! `TQueue`: model tests against `VecDeque`, concurrent invariants, zero-abort pushes, memory.

mod common;
use common::run_threads;
use commute::{TQueue, TVar, atomically, stats};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    Pop,
    Peek,
    Len,
    IsEmpty,
    Iter,
    Drain,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 6 {
            0 | 1 => Op::Push(u8::arbitrary(g)),
            2 | 3 => Op::Pop,
            4 => Op::Peek,
            _ => match u8::arbitrary(g) % 4 {
                0 => Op::Len,
                1 => Op::IsEmpty,
                2 => Op::Iter,
                _ => Op::Drain,
            },
        }
    }
}

/// What an operation returned.
#[derive(Debug, PartialEq)]
enum Out {
    Pushed,
    Item(Option<u8>),
    Len(usize),
    IsEmpty(bool),
    Items(Vec<u8>),
}

/// Runs batches of operations, each batch one transaction, against the queue and a `VecDeque`.
fn matches_vecdeque(batches: Vec<Vec<Op>>) -> bool {
    let q = TQueue::new();
    let mut model = VecDeque::new();
    for batch in batches {
        let got = atomically(|tx| {
            let mut out = Vec::new();
            for op in &batch {
                out.push(match *op {
                    Op::Push(x) => {
                        q.push(tx, x);
                        Out::Pushed
                    }
                    Op::Pop => Out::Item(q.pop(tx)?),
                    Op::Peek => Out::Item(q.peek(tx)?),
                    Op::Len => Out::Len(q.len(tx)?),
                    Op::IsEmpty => Out::IsEmpty(q.is_empty(tx)?),
                    Op::Iter => Out::Items(q.iter(tx)?),
                    Op::Drain => Out::Items(q.drain(tx)?),
                });
            }
            Ok(out)
        });
        let want: Vec<_> = batch
            .iter()
            .map(|op| match *op {
                Op::Push(x) => {
                    model.push_back(x);
                    Out::Pushed
                }
                Op::Pop => Out::Item(model.pop_front()),
                Op::Peek => Out::Item(model.front().copied()),
                Op::Len => Out::Len(model.len()),
                Op::IsEmpty => Out::IsEmpty(model.is_empty()),
                Op::Iter => Out::Items(model.iter().copied().collect()),
                Op::Drain => Out::Items(model.drain(..).collect()),
            })
            .collect();
        if got != want {
            return false;
        }
    }
    q.atomic().iter() == model.iter().copied().collect::<Vec<_>>()
        && std::iter::from_fn(|| q.atomic().pop()).eq(model)
}

#[test]
fn behaves_like_vecdeque() {
    QuickCheck::new()
        .tests(500)
        .quickcheck(matches_vecdeque as fn(Vec<Vec<Op>>) -> bool);
}

#[test]
fn a_transaction_sees_its_own_pushes_in_order() {
    let q = TQueue::new();
    q.atomic().push(1);
    let popped = atomically(|tx| {
        q.push(tx, 2);
        q.push(tx, 3);
        let a = q.pop(tx)?; // committed item first
        let b = q.pop(tx)?; // then our own, in order
        q.push(tx, 4);
        let c = q.pop(tx)?;
        Ok((a, b, c, q.len(tx)?))
    });
    assert_eq!(popped, (Some(1), Some(2), Some(3), 1));
    assert_eq!(q.atomic().pop(), Some(4));
    assert_eq!(q.atomic().pop(), None);
}

/// The attempt's first push is remembered through its last until a second push (`push_node`):
/// a branch that pushes a second item and retries must leave the first one first, alone, and
/// a walk must still find it after the rollback.
#[test]
fn a_rolled_back_second_push_leaves_the_first_in_place() {
    let q = TQueue::new();
    q.atomic().push(0);
    let seen = atomically(|tx| {
        q.push(tx, 1);
        tx.or_else(
            |tx| {
                q.push(tx, 2);
                assert_eq!(q.iter(tx)?, vec![0, 1, 2]);
                tx.retry()
            },
            |tx| {
                assert_eq!(q.iter(tx)?, vec![0, 1]);
                q.push(tx, 3);
                Ok(())
            },
        )?;
        let all = q.iter(tx)?;
        let front = (q.pop(tx)?, q.pop(tx)?);
        Ok((all, front, q.iter(tx)?))
    });
    assert_eq!(seen, (vec![0, 1, 3], (Some(0), Some(1)), vec![3]));
    assert_eq!(q.atomic().iter(), vec![3]);
}

#[test]
fn rolled_back_pushes_never_appear_and_pops_are_not_lost() {
    common::with_watchdog(20, || {
        let q = TQueue::new();
        q.atomic().push("kept");
        let got = atomically(|tx| {
            tx.or_else(
                |tx| {
                    q.push(tx, "discarded");
                    let first = q.pop(tx)?;
                    assert_eq!(first, Some("kept"));
                    tx.retry()
                },
                |tx| q.peek(tx),
            )
        });
        assert_eq!(got, Some("kept"));
        assert_eq!(q.atomic().pop(), Some("kept"));
        assert_eq!(q.atomic().pop(), None);
    });
}

/// The sequence numbers of pusher `p`'s items among `items` (pairs of pusher and number), in
/// their order there.
fn of_pusher<P: PartialEq>(items: &[(P, u64)], p: P) -> Vec<u64> {
    items
        .iter()
        .filter(|(who, _)| *who == p)
        .map(|&(_, i)| i)
        .collect()
}

/// Items each of two pushers pushes, in pairs.
const PER_PUSHER: u64 = 20_000;

/// Two pushers (pusher 0 and 1), started behind `barrier` (of 3: the caller is the third),
/// each pushing its items `(p, 0..PER_PUSHER)` two per transaction; each returns its
/// statistics.
fn pair_pushers(
    q: &Arc<TQueue<(u64, u64)>>,
    barrier: &Arc<Barrier>,
) -> Vec<std::thread::JoinHandle<stats::StatsSnapshot>> {
    (0..2u64)
        .map(|p| {
            let (q, barrier) = (q.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let before = stats::thread();
                for i in (0..PER_PUSHER).step_by(2) {
                    // Two items per transaction: they must appear together and in order.
                    atomically(|tx| {
                        q.push(tx, (p, i));
                        q.push(tx, (p, i + 1));
                        Ok(())
                    });
                }
                stats::thread() - before
            })
        })
        .collect()
}

/// Joins the pushers of [`pair_pushers`] and checks what was taken from the queue, `got`:
/// every item once, each pusher's in order, each transaction's pair together; and that the
/// pushers never aborted, unless the consumer (whose statistics are `consumer`) went
/// irrevocable: it then holds the tail it read locked, and a push's commit aborts rather than
/// wait for it (a lock-busy abort; a push reads nothing that could fail validation).
fn check_pairs(
    pushers: Vec<std::thread::JoinHandle<stats::StatsSnapshot>>,
    got: &[(u64, u64)],
    consumer: &stats::StatsSnapshot,
) {
    let push_stats: Vec<_> = pushers.into_iter().map(|h| h.join().unwrap()).collect();
    for p in 0..2 {
        assert_eq!(
            of_pusher(got, p),
            (0..PER_PUSHER).collect::<Vec<_>>(),
            "pusher {p}: lost, duplicated or reordered"
        );
    }
    for pair in got.windows(2) {
        if pair[0].1 % 2 == 0 {
            assert_eq!(
                pair[1],
                (pair[0].0, pair[0].1 + 1),
                "a transaction's items were split"
            );
        }
    }
    let aborts: u64 = push_stats.iter().map(|s| s.aborts()).sum();
    eprintln!(
        "TQueue: pushers' aborts = {aborts} over {} commits; the consumer's irrevocable \
         commits = {}",
        push_stats.iter().map(|s| s.commits).sum::<u64>(),
        consumer.irrevocable_commits
    );
    let validation: u64 = push_stats.iter().map(|s| s.aborts_read_validation).sum();
    assert_eq!(validation, 0, "pushes failed validation");
    assert!(
        aborts == 0 || consumer.irrevocable_commits > 0,
        "pushes aborted ({aborts}) with no irrevocable consumer"
    );
}

/// Runs [`pair_pushers`] while the calling thread takes their items with `take` (one
/// transaction per call, returning what it took) until it has them all; then checks them
/// ([`check_pairs`]) and that the queue is empty. Returns the number of calls.
fn pushed_pairs_taken_by(mut take: impl FnMut(&TQueue<(u64, u64)>) -> Vec<(u64, u64)>) -> usize {
    let q = Arc::new(TQueue::new());
    let barrier = Arc::new(Barrier::new(3));
    let pushers = pair_pushers(&q, &barrier);
    barrier.wait();
    let before = stats::thread();
    let (mut got, mut calls) = (Vec::new(), 0);
    while got.len() < 2 * PER_PUSHER as usize {
        got.extend(take(&q));
        calls += 1;
    }
    check_pairs(pushers, &got, &(stats::thread() - before));
    assert_eq!(q.atomic().pop(), None);
    calls
}

/// Two threads push pairs of items (one transaction each) while this one pops them, one per
/// transaction: every item arrives once, each pusher's in order, each transaction's pair
/// together, and no push aborts unless the popper went irrevocable.
#[test]
fn two_pushers_and_a_popper_lose_nothing_and_keep_per_pusher_order() {
    common::with_watchdog(20, || {
        pushed_pairs_taken_by(|q| vec![atomically(|tx| q.pop_wait(tx))]);
    });
}

/// As above, with a drainer instead of the popper: each drain one transaction, blocking in
/// `pop_wait` while the queue is empty. A drain reads `tail` (where it ends), so a push that
/// commits meanwhile makes it run again, and a drainer that loses that race many times in a
/// row goes irrevocable; a push then aborts on the tail it holds (seen in about one run in
/// thirty of the debug build).
#[test]
fn two_pushers_and_a_drainer_lose_nothing_and_keep_per_pusher_order() {
    common::with_watchdog(20, || {
        let drains = pushed_pairs_taken_by(|q| {
            atomically(|tx| {
                let mut batch = q.drain(tx)?;
                if batch.is_empty() {
                    batch.push(q.pop_wait(tx)?);
                }
                Ok(batch)
            })
        });
        eprintln!("TQueue: {} items in {drains} drains", 2 * PER_PUSHER);
    });
}

/// `iter` while two threads push pairs of items (one transaction each) and one pops: every
/// snapshot is a window of the queue, so each pusher's items in it are consecutive and each
/// pair is whole unless its first item was popped; successive snapshots never go back.
#[test]
fn iter_snapshots_are_windows_of_the_queue_and_never_go_back() {
    common::with_watchdog(60, || {
        const PER_PUSHER: u64 = 100_000;
        const POPS: usize = 2 * PER_PUSHER as usize - 200;
        const WORKERS: usize = 3;
        let q = Arc::new(TQueue::new());
        let finished = Arc::new(AtomicUsize::new(0));
        let walked = {
            let q = q.clone();
            // Threads 0 and 1 push, 2 pops, 3 walks until the others have finished.
            run_threads(WORKERS + 1, move |t| match t {
                0 | 1 => {
                    for i in (0..PER_PUSHER).step_by(2) {
                        atomically(|tx| {
                            q.push(tx, (t, i));
                            q.push(tx, (t, i + 1));
                            Ok(())
                        });
                    }
                    finished.fetch_add(1, Ordering::Release);
                    None
                }
                2 => {
                    for _ in 0..POPS {
                        atomically(|tx| q.pop_wait(tx));
                    }
                    finished.fetch_add(1, Ordering::Release);
                    None
                }
                _ => Some(walk_until(&q, || {
                    finished.load(Ordering::Acquire) == WORKERS
                })),
            })
        };
        let (snapshots, last) = walked
            .into_iter()
            .flatten()
            .next()
            .expect("the walker's result");
        eprintln!("TQueue::iter: {snapshots} snapshots checked");
        // The snapshot taken after every worker had finished is what the pops left.
        assert_eq!(last.len(), 2 * PER_PUSHER as usize - POPS);
        let rest: Vec<_> = std::iter::from_fn(|| q.atomic().pop()).collect();
        assert_eq!(rest, last);
    });
}

/// Takes snapshots of `q` (items `(pusher, i)`, pushed in pairs `i`, `i + 1`) and checks each
/// (see `iter_snapshots_are_windows_of_the_queue_and_never_go_back`) until one taken after
/// `done()` held; returns how many it took and that last one.
fn walk_until(q: &TQueue<(usize, u64)>, done: impl Fn() -> bool) -> (u64, Vec<(usize, u64)>) {
    let mut last: [Option<(u64, u64)>; 2] = [None; 2];
    let mut snapshots = 0u64;
    loop {
        let finished = done();
        let snapshot = q.atomic().iter();
        snapshots += 1;
        for (k, &(p, i)) in snapshot.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(
                    snapshot.get(k + 1),
                    Some(&(p, i + 1)),
                    "a pair pushed by one transaction is split in a snapshot"
                );
            }
        }
        for (p, last) in last.iter_mut().enumerate() {
            let mine = of_pusher(&snapshot, p);
            assert!(
                mine.windows(2).all(|w| w[1] == w[0] + 1),
                "pusher {p}'s items are not consecutive in a snapshot"
            );
            if let (Some(&lo), Some(&hi)) = (mine.first(), mine.last()) {
                if let Some((last_lo, last_hi)) = *last {
                    assert!(
                        lo >= last_lo && hi >= last_hi,
                        "pusher {p}: a snapshot went back ({lo}..={hi} after {last_lo}..={last_hi})"
                    );
                }
                *last = Some((lo, hi));
            }
        }
        if finished {
            return (snapshots, snapshot);
        }
    }
}

#[test]
fn pushers_never_abort_while_a_naive_queue_tail_does() {
    common::with_watchdog(60, || {
        const N: u64 = 20_000;
        let q = Arc::new(TQueue::new());
        let naive_tail = Arc::new(TVar::new(0u64)); // a tail index every push reads and rewrites
        let barrier = Arc::new(Barrier::new(2));
        let results: Vec<_> = (0..2u64)
            .map(|p| {
                let (q, naive_tail, barrier) = (q.clone(), naive_tail.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let before = stats::thread();
                    for i in 0..N {
                        atomically(|tx| {
                            q.push(tx, p * N + i);
                            Ok(())
                        });
                    }
                    let ours = stats::thread() - before;
                    barrier.wait();
                    let before = stats::thread();
                    let mut rounds = 0;
                    // The naive tail must show the problem; keep going (bounded) until it does.
                    while rounds < 200 && (stats::thread() - before.clone()).aborts() == 0 {
                        for _ in 0..N / 4 {
                            atomically(|tx| naive_tail.modify(tx, |t| t + 1));
                        }
                        rounds += 1;
                    }
                    (ours, stats::thread() - before)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let ours: u64 = results.iter().map(|(o, _)| o.aborts()).sum();
        let naive: u64 = results.iter().map(|(_, n)| n.aborts()).sum();
        eprintln!(
            "2 pushing threads: TQueue aborts = {ours}; naive read-modify-write tail aborts = {naive}"
        );
        assert_eq!(ours, 0);
        assert!(
            naive > 0,
            "the naive tail never conflicted: the test shows nothing"
        );
        assert_eq!(q.atomic().len(), 2 * N as usize);
    });
}

#[test]
fn blocking_pop_wakes_on_push() {
    common::with_watchdog(20, || {
        for _ in 0..100 {
            let q = Arc::new(TQueue::new());
            let q2 = q.clone();
            let consumer = std::thread::spawn(move || q2.atomic().pop_wait());
            q.atomic().push(9u8);
            assert_eq!(consumer.join().unwrap(), 9);
        }
    });
}

#[test]
fn debug_from_iterator_and_extend() {
    let mut q: TQueue<u8> = (1..=3).collect();
    q.extend([4, 5]);
    assert_eq!(format!("{q:?}"), "[1, 2, 3, 4, 5]");
    assert_eq!(TQueue::<u8>::new().atomic().peek(), None);
}

/// The irrevocable commit path publishes pushes too (its own write-back, then the links):
/// pushes of a transaction that ran irrevocably appear once, in order, after the items before
/// them, and later pushes link after them.
#[test]
fn pushes_of_an_irrevocable_transaction_are_linked_in_order() {
    common::with_watchdog(20, || {
        let q: TQueue<u32> = (1..=2).collect();
        let v = Arc::new(TVar::new(0u64));
        let ran_irrevocably = atomically(|tx| {
            v.read(tx)?;
            if !tx.is_irrevocable() {
                // Push, then lose the commit to a writer of `v`: the attempt's pushes roll back.
                q.push(tx, 100);
                let v2 = v.clone();
                std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
                    .join()
                    .unwrap();
                v.write(tx, 0);
                return Ok(false);
            }
            assert_eq!(q.pop(tx)?, Some(1));
            q.push(tx, 3);
            q.push(tx, 4);
            Ok(true)
        });
        assert!(ran_irrevocably);
        q.atomic().push(5);
        let drained: Vec<u32> = std::iter::from_fn(|| q.atomic().pop()).collect();
        assert_eq!(drained, [2, 3, 4, 5]);
    });
}

/// The length is the tail's position less the head's (`Node::pos`): while pushers and poppers
/// commit on other threads, every transaction's `len` equals the number of items its own walk
/// of the same snapshot finds, in plain attempts and in snapshot ones, before and after its own
/// pushes and pops.
#[test]
fn len_agrees_with_a_walk_of_the_same_snapshot() {
    const ROUNDS: usize = 20_000;
    common::with_watchdog(60, || {
        let q: Arc<TQueue<u64>> = Arc::new((0..10).collect());
        let done = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (q, done) = (q.clone(), done.clone());
                std::thread::spawn(move || {
                    for i in 0..ROUNDS as u64 {
                        atomically(|tx| {
                            q.push(tx, i);
                            if i % 3 != t {
                                q.push(tx, i + 1);
                            }
                            Ok(())
                        });
                        atomically(|tx| q.pop(tx));
                    }
                    done.fetch_add(1, Ordering::Release);
                })
            })
            .collect();
        let mut checks = 0;
        while done.load(Ordering::Acquire) < 2 || checks < 100 {
            // Rolled back (its own error): the queue is left as it was.
            let Err((len, walked, after)) = commute::try_atomically::<(), _, _>(|tx| {
                let len = q.len(tx)?;
                let walked = q.iter(tx)?.len();
                q.push(tx, 7);
                q.push(tx, 8);
                let popped = usize::from(q.pop(tx)?.is_some());
                let after = q.len(tx)?;
                tx.abort((len, walked, after + popped))
            }) else {
                unreachable!("the closure always ends with its error")
            };
            assert_eq!(len, walked);
            assert_eq!(after, len + 2);
            let (len, walked) = commute::read_only(|tx| Ok((q.len(tx)?, q.iter(tx)?.len())));
            assert_eq!(len, walked);
            checks += 1;
        }
        for w in workers {
            w.join().unwrap();
        }
        let left = q.atomic().iter().len();
        assert_eq!(q.atomic().len(), left);
    });
}

/// One-call pushes and pops (`.atomic()`, commits of their own without a transaction) beside
/// transactional ones: one thread pushes singly with `.atomic().push`, one in pairs in
/// transactions, one pops with `.atomic().pop` and one with `pop_wait` in transactions. Every
/// item comes out exactly once, each popper sees each pusher's items in order, a one-call push
/// never counts an abort, and `len` (transactional) agrees with what is left.
#[test]
fn one_call_and_transactional_pushes_and_pops_lose_nothing() {
    common::with_watchdog(60, || {
        const PER_PUSHER: u64 = 20_000;
        const PER_POPPER: usize = PER_PUSHER as usize - 100;
        let q: Arc<TQueue<(usize, u64)>> = Arc::new(TQueue::new());
        let results = {
            let q = q.clone();
            run_threads(4, move |t| {
                let before = stats::thread();
                let mut got = Vec::new();
                match t {
                    0 => (0..PER_PUSHER).for_each(|i| q.atomic().push((0, i))),
                    1 => {
                        for i in (0..PER_PUSHER).step_by(2) {
                            atomically(|tx| {
                                q.push(tx, (1, i));
                                q.push(tx, (1, i + 1));
                                Ok(())
                            });
                        }
                    }
                    2 => {
                        while got.len() < PER_POPPER {
                            match q.atomic().pop() {
                                Some(item) => got.push(item),
                                None => std::thread::yield_now(),
                            }
                        }
                    }
                    _ => {
                        while got.len() < PER_POPPER {
                            got.push(atomically(|tx| q.pop_wait(tx)));
                        }
                    }
                }
                (got, stats::thread() - before)
            })
        };
        assert_eq!(results[0].1.aborts(), 0, "one-call pushes counted aborts");
        assert_eq!(
            results[0].1.commits, PER_PUSHER,
            "a commit per one-call push"
        );
        let rest: Vec<_> = std::iter::from_fn(|| q.atomic().pop()).collect();
        assert_eq!(rest.len(), 2 * (PER_PUSHER as usize - PER_POPPER));
        let mut all = Vec::new();
        for (got, _) in &results[2..] {
            for p in 0..2 {
                let mine = of_pusher(got, p);
                assert!(
                    mine.windows(2).all(|w| w[0] < w[1]),
                    "a popper saw pusher {p}'s items out of order"
                );
            }
            all.extend_from_slice(got);
        }
        all.extend_from_slice(&rest);
        all.sort_unstable();
        let want: Vec<_> = (0..2)
            .flat_map(|p| (0..PER_PUSHER).map(move |i| (p, i)))
            .collect();
        assert_eq!(all, want, "items lost or duplicated");
        assert_eq!(q.atomic().len(), 0);
    });
}
