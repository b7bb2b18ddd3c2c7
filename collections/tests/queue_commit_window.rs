//! A transaction that pops, pushes two items and pops the first of them keeps a queue of one
//! item at one item. Its commit stores `head` pointing at the attempt's own first pending
//! node. The commit used to unlock `head` as soon as it was stored, before `tail`'s publishing
//! operation stamped the pending nodes: a reader in between met a node still stamped
//! `UNPUBLISHED` and took it for one of its own pending pushes. `len` answered 0, and a
//! one-call pop followed the node's private link to the next pending node and took that
//! node's stamp (`UNPUBLISHED`) as the version its commit must come after: the version did not
//! fit the lock word, the clock was corrupted, read validation stopped seeing commits, and two
//! pops freed the same node (glibc's "double free or corruption"). Both tests failed within
//! seconds, 3 runs of 3 (a reviewer's tests; the loom model
//! `queue_len_never_sees_a_head_before_its_node_is_stamped` is the exact case).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use commute::{TQueue, TVar, atomically};
use commute_test_support::deadline;

/// A queue of one item, and a thread that runs the pop-push-push-pop transaction on it in a
/// loop until `stop`, counting its commits.
struct Churned {
    q: Arc<TQueue<u64>>,
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    writer: JoinHandle<()>,
}

impl Churned {
    fn start() -> Churned {
        let q = Arc::new(TQueue::new());
        q.atomic().push(0);
        let (stop, commits) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let writer = pop_push_push_pop(&q, &stop, &commits);
        Churned {
            q,
            stop,
            commits,
            writer,
        }
    }

    /// Stops the writer; its commits.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.writer.join().unwrap();
        self.commits.load(Ordering::Relaxed)
    }
}

/// Runs the pop-push-push-pop transaction on `q` in a loop until `stop`; counts its commits.
fn pop_push_push_pop(
    q: &Arc<TQueue<u64>>,
    stop: &Arc<AtomicBool>,
    commits: &Arc<AtomicU64>,
) -> JoinHandle<()> {
    let (q, stop, commits) = (q.clone(), stop.clone(), commits.clone());
    std::thread::spawn(move || {
        let mut n = 1u64;
        while !stop.load(Ordering::Relaxed) {
            atomically(|tx| {
                q.pop(tx)?; // `head`, first in the write set
                q.push(tx, n);
                q.push(tx, n + 1);
                q.pop(tx)?; // `head` now names this attempt's first pending node
                Ok(())
            });
            n += 2;
            commits.fetch_add(1, Ordering::Relaxed);
        }
    })
}

#[test]
fn the_length_of_a_queue_kept_at_one_item_is_always_one() {
    let churned = Churned::start();
    let q = churned.q.clone();
    let end = Instant::now() + deadline(3);
    let (mut bad, mut reads) = (Vec::new(), 0u64);
    while Instant::now() < end && bad.len() < 3 {
        let len = atomically(|tx| q.len(tx));
        reads += 1;
        if len != 1 {
            bad.push(len);
        }
    }
    let commits = churned.stop();
    assert!(
        bad.is_empty(),
        "len() of a queue that every commit leaves at 1 item answered {bad:?} ({reads} reads, \
         {commits} commits)"
    );
    assert_eq!(q.atomic().len(), 1);
}

#[test]
fn one_call_pops_racing_the_commit_leave_the_clock_intact() {
    let churned = Churned::start();
    let q = churned.q.clone();
    let end = Instant::now() + deadline(2);
    let mut popped = 0u64;
    while Instant::now() < end {
        // Takes the item a commit leaves, now and then: the queue holds 0 or 1 item.
        popped += u64::from(q.atomic().pop().is_some());
    }
    let commits = churned.stop();
    assert!(q.atomic().len() <= 1, "the queue holds 0 or 1 item");

    // A corrupted clock shows as lost increments: read validation no longer sees commits.
    const PER_THREAD: u64 = 100_000;
    let x = Arc::new(TVar::new(0u64));
    let adders: Vec<_> = (0..2)
        .map(|_| {
            let x = x.clone();
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    atomically(|tx| {
                        let v = x.read(tx)?;
                        x.write(tx, v + 1);
                        Ok(())
                    });
                }
            })
        })
        .collect();
    for a in adders {
        a.join().unwrap();
    }
    assert_eq!(
        x.load(),
        2 * PER_THREAD,
        "increments were lost after {popped} one-call pops raced {commits} commits"
    );
}
