//! Ordered mode: tasks commit in the order of their sequence numbers (their task ids).
//!
//! `turn` holds the sequence number of the one task allowed to commit next. A task's first
//! attempt runs optimistically, in parallel with its neighbours; just before its closure returns
//! `Ok` it waits until `turn` reaches its number (`wait_turn`: a short spin, yields for up to
//! 200 µs, then `std::thread::park`), outside any STM operation. It then joins its snapshot to its
//! predecessor's commit by reading and writing `marker`, a private `TVar` that every ordered task
//! writes: if the predecessor committed after this attempt began, that read re-validates
//! everything the attempt read (the core's timestamp extension) and aborts it if an earlier task
//! wrote any of it. Without it, a read-only attempt would commit at its own (older) snapshot,
//! serialised *before* tasks that precede it in the order. After `atomically` returns (commit
//! hooks and children included) the worker calls `advance`, which moves `turn` on and unparks
//! the worker waiting for the next number.
//!
//! Every attempt after the first waits for the turn before it starts. So an attempt that waits
//! while holding anything (the core's irrevocable token is taken before the closure runs, and
//! only from the 17th attempt on) is always already at its turn, and only the task at the turn
//! can be invalidated by pool tasks: a conflict costs at most one re-run, at the turn. The one
//! thing a first attempt may hold while it waits is its pin (a collection's read takes it),
//! and a thread may wait for that: `Taken::into_inner`, in a commit hook of the task at the
//! turn (which runs before the turn moves on) or outside the pool while the task at the turn
//! waits for that thread. The attempt then gives way with a conflict
//! ([`Transaction::give_way`], checked while it waits), and its re-run waits for the turn
//! first, unpinned.
//!
//! Waking is a Dekker pair on `SeqCst` atomics: a waiter stores its number into its `parked`
//! slot and re-checks `turn` before parking; `advance` stores `turn` and then reads the slots.
//! Either the waiter sees the new turn or `advance` sees the slot and unparks it (an unpark that
//! comes before the park makes the park return at once). Under loom (where this module is
//! compiled alone, for the models of `loom-tests/tests/pool_order.rs`) the pair's accesses are
//! acquire and release with a `SeqCst` fence between each side's store and load
//! ([`crate::sync::SC_LOAD`]), and a waiter parks at once, without spinning or yielding first.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::{SC_LOAD, SC_STORE, loom_fence};
use crate::{StmResult, TVar, Transaction};

/// A `parked` slot whose worker is not waiting for a turn.
const NOT_PARKED: u64 = u64::MAX;

/// Spins on `turn` before yielding (each spin is one `spin_loop` hint).
const SPINS: u32 = 200;

/// How long a waiter yields before it parks. Handing the turn over through yields costs far
/// less than a park and unpark (two system calls and a wake-up), which matters most when the
/// workers outnumber the free cores and the predecessor needs this core to finish.
const YIELD_FOR: Duration = Duration::from_micros(200);

/// How often a parked attempt checks whether it must give way (see [`Order::wait_turn`]).
const GIVE_WAY_EVERY: Duration = Duration::from_millis(1);

/// The commit order of one ordered run.
pub(super) struct Order {
    /// The sequence number of the task that commits next.
    turn: CachePadded<AtomicU64>,
    /// Per worker: the turn it is parked waiting for, or `NOT_PARKED`.
    parked: Box<[CachePadded<AtomicU64>]>,
    /// Per worker: its thread, to unpark it.
    threads: Box<[OnceLock<Thread>]>,
    /// Written by every ordered task at its turn; read to join the predecessor's commit.
    marker: TVar<u64>,
}

impl Order {
    /// The order of a run whose first task is `first` on `workers` workers.
    pub(super) fn new(first: u64, workers: usize) -> Self {
        Order {
            turn: CachePadded::new(AtomicU64::new(first)),
            parked: (0..workers)
                .map(|_| CachePadded::new(AtomicU64::new(NOT_PARKED)))
                .collect(),
            threads: (0..workers).map(|_| OnceLock::new()).collect(),
            marker: TVar::new(0).with_label("commute::TaskPool commit order"),
        }
    }

    /// Records the calling thread as worker `worker`, so that `advance` can unpark it.
    pub(super) fn register(&self, worker: usize) {
        let _ = self.threads[worker].set(thread::current());
    }

    /// True if the task with sequence number `seq` may commit now: every task before it has
    /// committed or given up its turn.
    pub(super) fn is_turn(&self, seq: u64) -> bool {
        self.turn.load(Ordering::Acquire) == seq
    }

    /// Blocks until the task with sequence number `seq` may commit.
    ///
    /// Called inside an attempt (`tx`), it gives way, with a conflict, to a thread that waits
    /// for the attempt's pin ([`Transaction::give_way`], checked at least every
    /// `GIVE_WAY_EVERY` while it waits): such a thread (a commit hook of the task at the turn
    /// that moves a taken item out, say) may hold the turn up until the pin ends.
    pub(super) fn wait_turn(
        &self,
        seq: u64,
        worker: usize,
        tx: Option<&Transaction>,
    ) -> StmResult<()> {
        let give_way = || tx.map_or(Ok(()), Transaction::give_way);
        if self.turn.load(Ordering::Acquire) == seq {
            return Ok(());
        }
        // Under loom, straight to the handshake: the spins and yields only shorten the wait.
        if !cfg!(loom) {
            for _ in 0..SPINS {
                std::hint::spin_loop();
                if self.turn.load(Ordering::Acquire) == seq {
                    return Ok(());
                }
            }
            let yielding = Instant::now();
            loop {
                std::thread::yield_now();
                if self.turn.load(Ordering::Acquire) == seq {
                    return Ok(());
                }
                give_way()?;
                if yielding.elapsed() > YIELD_FOR {
                    break;
                }
            }
        }
        let slot = &self.parked[worker];
        slot.store(seq, SC_STORE);
        loom_fence();
        while self.turn.load(SC_LOAD) != seq {
            if tx.is_none() {
                thread::park();
                continue;
            }
            park_timeout(GIVE_WAY_EVERY);
            if let Err(e) = give_way() {
                // An `advance` that saw the slot may still unpark this thread: a later park
                // then returns at once, and its loop checks again.
                slot.store(NOT_PARKED, Ordering::Relaxed);
                return Err(e);
            }
        }
        slot.store(NOT_PARKED, Ordering::Relaxed);
        Ok(())
    }

    /// Joins the attempt's snapshot to the predecessor's commit (see the module doc). Call it at
    /// the turn, as the attempt's last transactional operation.
    ///
    /// # Errors
    ///
    /// A conflict when an earlier task wrote something this attempt read.
    pub(super) fn join_predecessor(&self, tx: &Transaction) -> StmResult<()> {
        self.marker.modify(tx, |n| n.wrapping_add(1)).map(drop)
    }

    /// Passes the turn from `seq` to the next task, once `seq` has committed or been given up.
    pub(super) fn advance(&self, seq: u64) {
        debug_assert_eq!(
            self.turn.load(Ordering::Relaxed),
            seq,
            "advanced out of turn"
        );
        let next = seq + 1;
        self.turn.store(next, SC_STORE);
        loom_fence();
        for (slot, thread) in self.parked.iter().zip(self.threads.iter()) {
            if slot.load(SC_LOAD) == next {
                if let Some(thread) = thread.get() {
                    thread.unpark();
                }
            }
        }
    }
}

/// Parks for at most `timeout` (loom has no timed park: there, a yield, after which the caller
/// checks again).
fn park_timeout(timeout: Duration) {
    #[cfg(not(loom))]
    std::thread::park_timeout(timeout);
    #[cfg(loom)]
    {
        let _ = timeout;
        crate::sync::yield_now();
    }
}
